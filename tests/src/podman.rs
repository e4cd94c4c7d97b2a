//! podman as the image and pod tests run it (docs/images.md, "The sim overlay as real pods"): runc, not
//! crun, which refuses this machine's hybrid cgroups, and cgroupfs, with no systemd to manage
//! them.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The global flags every podman call here needs.
pub const FLAGS: [&str; 3] = ["--runtime", "runc", "--cgroup-manager=cgroupfs"];

/// `podman <FLAGS> <args>`, without stdin, waited for.
///
/// # Panics
///
/// When podman cannot be started at all.
pub fn run(args: &[&str]) -> Output {
    command(args).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("podman {args:?}: {e}"))
}

/// `podman <FLAGS> <args>`, to be configured and spawned by the caller.
pub fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new("podman");
    cmd.args(FLAGS).args(args);
    cmd
}

/// A finished command's stdout and stderr together, for messages.
pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The workspace's root directory (the tests' crate is `tests/`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map_or_else(|| PathBuf::from(".."), PathBuf::from)
}
