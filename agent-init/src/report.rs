//! What `--check` and `--print` show: the files, their keys and where each value came from —
//! never a secret value.

use std::fmt::Write;

use crate::render::{Origin, Rendered, Resolution};

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
        let origin_width = f.resolutions.iter().map(|r| origin(r).len()).max().unwrap_or(0);
        for r in &f.resolutions {
            let _ = writeln!(out, "  {:<width$}  {:<origin_width$}  {}", r.placeholder, origin(r), r.at);
        }
    }
    let n = files.len();
    let _ = writeln!(out, "{n} file{} valid; nothing written (--check)", if n == 1 { "" } else { "s" });
    out
}

/// Where a value came from; `, secret` for a variable named like a secret.
fn origin(r: &Resolution) -> &'static str {
    match (r.origin, r.secret) {
        (Origin::Secret, _) => "secret",
        (Origin::Env, false) => "env",
        (Origin::Env, true) => "env, secret",
        (Origin::Default, false) => "default",
        (Origin::Default, true) => "default, secret",
    }
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
