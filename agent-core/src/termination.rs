//! The Kubernetes termination message: one line with the reason an agent failed, written where
//! `kubectl describe pod` shows it (`terminationMessagePath`, `/dev/termination-log`).

use std::io::Write;
use std::path::{Path, PathBuf};

/// The environment variable that overrides the path for every agent.
pub const ENV: &str = "AGENT_TERMINATION_LOG";
/// The kubelet's default `terminationMessagePath`.
pub const DEFAULT_PATH: &str = "/dev/termination-log";
/// The kubelet reads at most this many bytes of the message.
pub const MAX_BYTES: usize = 4096;

/// Where to write: `AGENT_TERMINATION_LOG` if set and non-empty, else `/dev/termination-log`
/// when it exists (the kubelet creates it), else nowhere.
pub fn path_from_env<'a>(mut vars: impl Iterator<Item = (&'a str, &'a str)>) -> Option<PathBuf> {
    match vars.find(|(k, _)| *k == ENV) {
        Some((_, v)) if !v.is_empty() => Some(PathBuf::from(v)),
        _ => Path::new(DEFAULT_PATH).exists().then(|| PathBuf::from(DEFAULT_PATH)),
    }
}

/// Cuts a message so that it and its newline fit the kubelet's limit, on a character boundary.
pub fn truncate(message: &str) -> &str {
    let max = MAX_BYTES - 1;
    if message.len() <= max {
        return message;
    }
    let mut end = max;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

/// Writes the message (truncated, newline-terminated), replacing what was there. A failure to
/// write is logged, never fatal: the exit code and stderr still carry the reason.
pub fn write(path: Option<&Path>, message: &str) {
    let Some(path) = path else { return };
    let result = std::fs::File::create(path).and_then(|mut f| {
        f.write_all(truncate(message).as_bytes())?;
        f.write_all(b"\n")
    });
    if let Err(e) = result {
        tracing::warn!(path = %path.display(), error = %e, "cannot write the termination message");
    }
}

/// Empties the termination message: an earlier run's reason no longer holds.
pub fn clear(path: Option<&Path>) {
    let Some(path) = path else { return };
    if let Err(e) = std::fs::File::create(path) {
        tracing::warn!(path = %path.display(), error = %e, "cannot clear the termination message");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_default() {
        let p = path_from_env([("AGENT_TERMINATION_LOG", "/tmp/x")].into_iter());
        assert_eq!(p, Some(PathBuf::from("/tmp/x")));
    }

    #[test]
    fn truncates_on_char_boundary() {
        let long = "é".repeat(3000); // 6000 bytes
        let t = truncate(&long);
        assert!(t.len() < MAX_BYTES && t.len() >= MAX_BYTES - 2, "{}", t.len());
        assert!(t.chars().all(|c| c == 'é'));
    }

    #[test]
    fn writes_one_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("term");
        write(Some(&p), "first");
        write(Some(&p), "second reason");
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "second reason\n");
    }
}
