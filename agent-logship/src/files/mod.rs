//! The files source: finds log files by glob ([`discover`]), knows each by a fingerprint of its
//! content start ([`fingerprint`]), reads each through its open fd ([`tail`]), follows rotation,
//! and advances a file's checkpoint ([`checkpoint`]) only over records the sink acknowledged
//! ([`acks`]). The reading loop runs on a thread of its own ([`source`]); docs/agent-logship-files.md
//! states the identity rule and its limits.

pub mod acks;
pub mod checkpoint;
pub mod discover;
pub mod fingerprint;
pub mod pathglob;
pub mod source;
pub mod tail;

use std::path::PathBuf;
use std::time::Duration;

pub use source::{FileStatus, FilesSource};

/// Where to start a file that is there at startup and has no checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartAt {
    #[default]
    Beginning,
    End,
}

/// The files source's settings (the lead declares them as `AGENT_LOGSHIP_*` settings).
#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// Globs of the files to read (`*`, `?`, `**`). Default `/var/log/calypso/*.log`.
    pub paths: Vec<String>,
    /// Globs of files not to read. Default none.
    pub exclude: Vec<String>,
    /// Files there at startup without a checkpoint start here. Default beginning.
    pub start_at: StartAt,
    /// Where the checkpoint file lives.
    pub data_dir: PathBuf,
    /// Rescan of the globs when the watcher said nothing. Default 10 s.
    pub rescan_interval: Duration,
    /// How often open files are looked at for growth when no event came. Default 250 ms.
    pub poll_interval: Duration,
    /// A file rotated away or deleted is let go after giving no new bytes this long. Default 2 s.
    pub rotate_grace: Duration,
    /// Checkpoint entries of files not seen this long are dropped. Default 24 h.
    pub forget_after: Duration,
    /// At most one checkpoint write per this interval. Default 1 s.
    pub checkpoint_interval: Duration,
    /// What the frames may hold in all (records waiting for their next line): beyond it, a
    /// file's pending record is shipped at once, as the flush timeout would. Default 8 MiB (the
    /// lead sets `AGENT_LOGSHIP_MAX_INFLIGHT_BYTES`).
    pub framed_max_bytes: usize,
    /// Names the masking the records are framed with (the redaction rules' digest, or `off`):
    /// kept in the checkpoint, so that a start with other rules says what that means for the
    /// records read again after it. Default empty (not kept).
    pub masking: String,
}

impl FilesConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        FilesConfig {
            paths: vec!["/var/log/calypso/*.log".into()],
            exclude: Vec::new(),
            start_at: StartAt::Beginning,
            data_dir: data_dir.into(),
            rescan_interval: Duration::from_secs(10),
            poll_interval: Duration::from_millis(250),
            rotate_grace: Duration::from_secs(2),
            forget_after: Duration::from_secs(24 * 3600),
            checkpoint_interval: Duration::from_secs(1),
            framed_max_bytes: 8 << 20,
            masking: String::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("no usable path glob in {0:?}")]
    NoPaths(Vec<String>),
    #[error("the files source must be started inside a tokio runtime")]
    NoRuntime,
    #[error("cannot start the file reading thread: {0}")]
    Thread(std::io::Error),
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
    #[error("the checkpoint writer stopped: {0}")]
    Join(#[from] tokio::task::JoinError),
}
