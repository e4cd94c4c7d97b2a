//! The seam between a file source and the framing of its bytes into records: the source reads
//! bytes and knows nothing of formats; a [`Frame`] knows formats and nothing of files.

use tokio::time::Instant;

use crate::record::Record;

/// Where a file's next record starts, and the hash chain up to there: enough to resume framing
/// (after a restart, or on a copy of the file) and produce the same records with the same ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub offset: u64,
    pub chain: u128,
}

/// Cuts one file's bytes into records. The source feeds bytes in file order, starting at the
/// [`Position`] the frame was made for.
pub trait Frame: Send {
    /// Feeds the next bytes of the file. Records that are complete (the line after them has
    /// begun a new record) are pushed to `out`; a pending record waits for more.
    fn push(&mut self, bytes: &[u8], now: Instant, out: &mut Vec<Record>);

    /// No new bytes: emits the pending record if no line came for the flush timeout. A line
    /// without its newline is never emitted here (the writer may not have finished it).
    fn idle(&mut self, now: Instant, out: &mut Vec<Record>);

    /// Emits the pending record now, as `idle` would once the flush timeout has passed: the agent
    /// is stopping, or the frames hold more than they may. A line without its newline still
    /// waits (read again at the next start, never cut).
    fn flush(&mut self, out: &mut Vec<Record>);

    /// The file is let go (rotated away and read to its end, or deleted): emits everything
    /// pending, a last line without newline included.
    fn finish(&mut self, out: &mut Vec<Record>);

    /// A frame resumed at a position: the records of the first read ended by the clock (`idle`,
    /// `flush`) at these offsets, ascending. The frame ends records there again whatever follows,
    /// so that a re-read yields the same records (and ids) even when a continuation line came
    /// after the cut. Frames whose records end by their bytes alone have nothing to do.
    fn cut_at(&mut self, _cuts: &[u64]) {}

    /// Where the next record will start: the end of the last record pushed to `out`.
    fn position(&self) -> Position;

    /// Bytes taken in but not yet in an emitted record (pending record and partial line).
    fn pending_bytes(&self) -> usize;
}

/// Makes a frame for a file, starting at a position.
pub type MakeFrame = std::sync::Arc<dyn Fn(Position) -> Box<dyn Frame> + Send + Sync>;
