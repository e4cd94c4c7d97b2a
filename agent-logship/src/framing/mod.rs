//! Framing: a file's bytes cut into [`Record`](crate::record::Record)s, for the three formats
//! (`log4j`, `json`, `cri`). Pure state machines behind the [`Frame`](crate::frame::Frame) seam:
//! no IO, no clock of their own (the source passes `now`).
//!
//! The layers, each its own module: [`lines`] splits bytes into physical lines (bounding a line
//! that never ends), [`cri`] turns CRI lines into payload pieces, [`group`] groups lines into
//! records by the multi-line rules, cuts oversized records and keeps the offsets and hash chain,
//! [`start`] decides which lines begin a record.

mod cri;
mod group;
mod lines;
mod pod;
mod start;

use std::sync::Arc;
use std::time::Duration;

use crate::frame::{MakeFrame, Position};
use crate::redaction::Redactor;

pub use group::chain;
pub use pod::pod_from_path;
pub use start::{RecordStart, RecordStartError};

/// The format of a file's lines (`AGENT_LOGSHIP_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Calypso's log4j lines with multi-line stack traces (the default).
    #[default]
    Log4j,
    /// One JSON object per line (log4j2 `EcsLayout`, `JsonTemplateLayout`).
    Json,
    /// Container runtime lines (`<time> <stream> <P|F> <text>`), payloads grouped as log4j.
    Cri,
}

/// How records are framed; fed by settings (see [`FramingOptions::default`]).
#[derive(Debug, Clone)]
pub struct FramingOptions {
    /// Which lines begin a record (`AGENT_LOGSHIP_RECORD_START`; default the Calypso timestamp).
    pub record_start: RecordStart,
    /// A record longer than this is cut into pieces, all flagged (`AGENT_LOGSHIP_MAX_RECORD_BYTES`,
    /// default 1 MiB). Also bounds the memory one file's framing holds (about twice this).
    pub max_record_bytes: usize,
    /// The pending record is emitted after this long without a new byte
    /// (`AGENT_LOGSHIP_FLUSH_TIMEOUT`, default 2 s).
    pub flush_timeout: Duration,
    /// Masks the credentials in every record as it is framed (`AGENT_LOGSHIP_REDACT`, on by
    /// default): the record's bytes, and so its chain and `_id`, never hold them.
    pub redactor: Option<Arc<Redactor>>,
}

impl Default for FramingOptions {
    fn default() -> Self {
        FramingOptions {
            record_start: RecordStart::Timestamp,
            max_record_bytes: 1024 * 1024,
            flush_timeout: Duration::from_secs(2),
            redactor: Some(Arc::new(Redactor::new(Vec::new()))),
        }
    }
}

/// The frame maker for a format: the file source calls it with the position to resume from.
pub fn make_frame(format: Format, options: FramingOptions) -> MakeFrame {
    let options = Arc::new(options);
    Arc::new(move |at: Position| -> Box<dyn crate::frame::Frame> {
        Box::new(group::GroupFrame::new(format, Arc::clone(&options), at))
    })
}

#[cfg(test)]
mod tests;
