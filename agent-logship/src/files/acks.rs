//! Per-file acknowledgement tracking: records are numbered in file order as they are sent; acks
//! may come back in any order; the committed position moves only over the contiguous prefix of
//! acknowledged records. [`AckWindow`] is the pure core; [`Tracker`] shares it with the sink.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use crate::flow::Acknowledge;
use crate::frame::Position;

/// Sent records not yet all acknowledged, and the committed position before them.
#[derive(Debug, Clone)]
pub struct AckWindow {
    committed: Position,
    /// Sequence number of `pending[0]`.
    first: u64,
    /// Per sent record in order: the position just past it, when it was sent, acknowledged yet.
    pending: VecDeque<(Position, Instant, bool)>,
}

impl AckWindow {
    pub fn new(committed: Position) -> Self {
        AckWindow { committed, first: 0, pending: VecDeque::new() }
    }

    /// A record ending at `end` is sent now: its sequence number.
    pub fn sent(&mut self, end: Position, at: Instant) -> u64 {
        self.pending.push_back((end, at, false));
        self.first + self.pending.len() as u64 - 1
    }

    /// Record `seq` is acknowledged; returns whether the committed position moved. Unknown or
    /// repeated sequence numbers change nothing.
    pub fn ack(&mut self, seq: u64) -> bool {
        let Some(i) = seq.checked_sub(self.first) else { return false };
        let Some(slot) = usize::try_from(i).ok().and_then(|i| self.pending.get_mut(i)) else {
            return false;
        };
        slot.2 = true;
        let mut moved = false;
        while let Some((end, _, true)) = self.pending.front() {
            self.committed = *end;
            self.pending.pop_front();
            self.first += 1;
            moved = true;
        }
        moved
    }

    pub fn committed(&self) -> Position {
        self.committed
    }

    /// Records sent and not acknowledged (out-of-order acks included).
    pub fn outstanding(&self) -> usize {
        self.pending.len()
    }

    /// When the oldest unacknowledged record was sent.
    pub fn oldest(&self) -> Option<Instant> {
        self.pending.iter().find(|p| !p.2).map(|p| p.1)
    }
}

/// What the checkpoint needs to verify a file at an offset later: the hash of the window before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verify {
    pub at: u64,
    pub hash: u64,
}

/// One tracked file as the checkpoint and the status see it.
#[derive(Debug)]
pub struct TrackState {
    pub fingerprint: u64,
    pub path: Arc<str>,
    /// The name in the ids (see `FileMeta::name`).
    pub name: Arc<str>,
    pub dev: u64,
    pub ino: u64,
    /// Size at the last look (for the lag).
    pub size: u64,
    pub window: AckWindow,
    /// Verifications of what the reader read, oldest first (see [`TrackState::read_to`]): the
    /// checkpoint's `verify` is taken from these, never from the file as it is when the
    /// checkpoint is written (rewritten in place meanwhile, it would vouch for other bytes).
    pub marks: VecDeque<Verify>,
    /// What the checkpoint says verifies the committed position (at or before it).
    pub verify: Option<Verify>,
    /// Where records were ended by the clock (the flush timeout, a stop) rather than by the next
    /// record's start, past the committed position: kept in the checkpoint so that a re-read
    /// ends them there too (the same records, the same ids).
    pub cuts: Vec<u64>,
    /// The reader still reads this file (not let go yet).
    pub reading: bool,
    pub seen: SystemTime,
}

/// Marks are kept at least this far apart (but the newest), which bounds them by the bytes read
/// past the committed position; the verification lags the committed position by less.
const MARK_GAP: u64 = 4096;

impl TrackState {
    /// A record read ends at `mark.at`, and the window before it, as read, hashes to `mark.hash`.
    pub fn read_to(&mut self, mark: Verify) {
        let n = self.marks.len();
        if n >= 2 && mark.at.saturating_sub(self.marks[n - 2].at) < MARK_GAP {
            self.marks[n - 1] = mark;
        } else {
            self.marks.push_back(mark);
        }
    }

    /// Brings `verify` and `cuts` up to the committed position, for the checkpoint: the newest
    /// mark at or before it verifies it; cuts at or before it are behind any re-read.
    pub fn settle(&mut self) {
        let at = self.window.committed().offset;
        if let Some(i) = self.marks.iter().rposition(|m| m.at <= at) {
            self.verify = Some(self.marks[i]);
            // Kept: the next read may replace the newest mark, never one behind it.
            self.marks.drain(..i);
        }
        self.cuts.retain(|c| *c > at);
    }
}

/// A file's acknowledgement tracker, shared by its reader, its records' [`crate::flow::Ack`]s and
/// the checkpoint writer.
#[derive(Debug)]
pub struct Tracker {
    state: Mutex<TrackState>,
    /// Set when a committed position moved: the checkpoint is due.
    dirty: Arc<AtomicBool>,
}

impl Tracker {
    pub fn new(state: TrackState, dirty: Arc<AtomicBool>) -> Self {
        Tracker { state: Mutex::new(state), dirty }
    }

    /// The state, even if a panicking thread poisoned the lock (the state stays consistent: every
    /// change is a single assignment or push).
    pub fn lock(&self) -> MutexGuard<'_, TrackState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Acknowledge for Tracker {
    fn acknowledge(&self, seq: u64) {
        self.acknowledge_all(&[seq]);
    }

    fn acknowledge_all(&self, seqs: &[u64]) {
        let mut state = self.lock();
        let mut moved = false;
        for seq in seqs {
            moved |= state.window.ack(*seq);
        }
        if moved {
            self.dirty.store(true, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(offset: u64) -> Position {
        Position { offset, chain: u128::from(offset) * 7 }
    }

    fn state(committed: u64) -> TrackState {
        TrackState {
            fingerprint: 1,
            path: "/l/a.log".into(),
            name: "a.log".into(),
            dev: 1,
            ino: 2,
            size: 0,
            window: AckWindow::new(pos(committed)),
            marks: VecDeque::new(),
            verify: None,
            cuts: Vec::new(),
            reading: true,
            seen: SystemTime::now(),
        }
    }

    fn mark(at: u64) -> Verify {
        Verify { at, hash: at * 3 }
    }

    #[test]
    fn the_verification_is_a_mark_of_what_was_read_at_or_before_the_committed_position() {
        let mut s = state(0);
        s.cuts = vec![100, 9000];
        for at in (100..=20_000).step_by(100) {
            s.read_to(mark(at));
        }
        assert!(s.marks.len() <= 20_000 / MARK_GAP as usize + 2, "thinned: {}", s.marks.len());
        assert_eq!(s.marks.back(), Some(&mark(20_000)), "the newest is kept");
        s.settle();
        assert_eq!(s.verify, None, "nothing committed: nothing verified");
        let now = Instant::now();
        let seqs: Vec<u64> = [5000, 20_000].iter().map(|e| s.window.sent(pos(*e), now)).collect();
        s.window.ack(seqs[0]);
        s.settle();
        let v = s.verify.expect("a mark before 5000");
        assert!(v.at <= 5000 && 5000 - v.at < MARK_GAP, "{v:?}");
        assert_eq!(s.marks.front(), Some(&v), "older marks dropped");
        assert_eq!(s.cuts, [9000], "cuts behind the committed position dropped");
        s.window.ack(seqs[1]);
        s.settle();
        assert_eq!((s.verify, s.marks.len()), (Some(mark(20_000)), 1), "all read and committed: exact");
        assert!(s.cuts.is_empty());
    }

    #[test]
    fn contiguous_prefix_only() {
        let now = Instant::now();
        let mut w = AckWindow::new(pos(5));
        let s: Vec<u64> = [10, 20, 30, 40].iter().map(|e| w.sent(pos(*e), now)).collect();
        assert_eq!(s, vec![0, 1, 2, 3]);
        assert!(!w.ack(2), "a gap before it");
        assert_eq!(w.committed(), pos(5));
        assert!(!w.ack(9), "unknown");
        assert!(w.ack(0));
        assert_eq!(w.committed(), pos(10));
        assert!(w.ack(1), "moves over the earlier out-of-order ack");
        assert_eq!(w.committed(), pos(30));
        assert!(!w.ack(1), "repeated");
        assert_eq!(w.outstanding(), 1);
        assert!(w.ack(3));
        assert_eq!((w.committed(), w.outstanding(), w.oldest()), (pos(40), 0, None));
        assert_eq!(w.sent(pos(50), now), 4, "numbers keep counting");
    }
}
