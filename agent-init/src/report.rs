//! What `--check` and `--print` show: the files, their keys and where each value came from —
//! never a secret value.

use std::fmt::Write;

use crate::render::{Origin, Rendered};

/// `--check`: each file with its mode and keys, each placeholder with its origin and position.
pub fn check(files: &[Rendered]) -> String {
    let mut out = String::new();
    for f in files {
        let keys = if f.keys.is_empty() { String::new() } else { format!(", {} keys", f.keys.len()) };
        let _ = writeln!(out, "{} (mode {:04o}{keys})", f.output, f.mode());
        if !f.keys.is_empty() {
            let _ = writeln!(out, "  keys: {}", f.keys.join(", "));
        }
        let width = f.resolutions.iter().map(|r| r.placeholder.chars().count()).max().unwrap_or(0);
        for r in &f.resolutions {
            let origin = match r.origin {
                Origin::Env => "env",
                Origin::Default => "default",
                Origin::Secret => "secret",
            };
            let _ = writeln!(out, "  {:<width$}  {origin:<7}  {}", r.placeholder, r.at);
        }
    }
    let n = files.len();
    let _ = writeln!(out, "{n} file{} valid; nothing written (--check)", if n == 1 { "" } else { "s" });
    out
}

/// `--print`: the rendered files, secret values shown as `<redacted>`.
pub fn print(files: &[Rendered]) -> String {
    let mut out = String::new();
    for f in files {
        let _ = writeln!(out, "==> {} (mode {:04o}) <==", f.output, f.mode());
        out.push_str(&f.redacted);
        if !f.redacted.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}
