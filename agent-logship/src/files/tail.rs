//! One open file and what reading it needs: positional reads through the open fd (so a rename or
//! a deletion does not stop us), the first-line fingerprint, the verification window, the check
//! that the bytes we read are still there (truncation, or a rewrite grown past our offset), and
//! framing of new bytes into records.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::acks::{Tracker, Verify};
use super::fingerprint::{
    FINGERPRINT_CAP, WINDOW, final_fingerprint, fingerprint, window_hash, window_start,
};
use crate::frame::Frame;
use crate::record::{FileMeta, Record};

/// Bytes read per `pread`.
const CHUNK: usize = 64 * 1024;
/// Bytes read from one file per loop turn before the others get theirs.
pub const TURN: u64 = 1024 * 1024;

/// `pread` until `buf` is full or the file ends; the bytes read.
pub fn read_at(file: &File, mut offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], offset) {
            Ok(0) => break,
            Ok(k) => {
                n += k;
                offset += k as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The fingerprint of an open file now (`None`: no complete first line yet, or unreadable).
pub fn file_fingerprint(file: &File) -> Option<u64> {
    let mut head = vec![0; FINGERPRINT_CAP];
    let n = read_at(file, 0, &mut head).ok()?;
    fingerprint(&head[..n]).map(|f| f.0)
}

/// [`file_fingerprint`] of a let-go file, whose first line may never be complete.
pub fn file_final_fingerprint(file: &File) -> Option<u64> {
    let mut head = vec![0; FINGERPRINT_CAP];
    let n = read_at(file, 0, &mut head).ok()?;
    final_fingerprint(&head[..n])
}

/// The `len` bytes before `at` in `file` (fewer at its start), if all of them are there.
fn bytes_before(file: &File, at: u64, len: u64) -> Option<Vec<u8>> {
    let start = at.saturating_sub(len);
    let mut buf = vec![0; (at - start) as usize];
    let n = read_at(file, start, &mut buf).ok()?;
    (n == buf.len()).then_some(buf)
}

/// The hash of the window before `at` in `file`, if all of it is there.
pub fn file_window(file: &File, at: u64) -> Option<u64> {
    bytes_before(file, at, at - window_start(at)).map(|w| window_hash(&w))
}

/// A [`Reading::tail`] for a reading that starts at `at` in `file`: the bytes before it.
pub fn file_tail(file: &File, at: u64) -> Vec<u8> {
    bytes_before(file, at, TAIL as u64).unwrap_or_default()
}

/// The offset just past the last complete line before `size` (where `start_at=end` begins).
pub fn last_line_end(file: &File, size: u64) -> u64 {
    let mut end = size;
    let mut buf = vec![0; CHUNK];
    while end > 0 {
        let start = end.saturating_sub(CHUNK as u64);
        let len = (end - start) as usize;
        match read_at(file, start, &mut buf[..len]) {
            Ok(n) if n == len => {}
            _ => return 0,
        }
        if let Some(i) = buf[..len].iter().rposition(|b| *b == b'\n') {
            return start + i as u64 + 1;
        }
        end = start;
    }
    0
}

pub fn dev_ino_size(file: &File) -> io::Result<(u64, u64, u64)> {
    let m = file.metadata()?;
    Ok((m.dev(), m.ino(), m.len()))
}

/// A file being read under a known identity: its frame, how far it was read, its tracker.
pub struct Reading {
    pub fingerprint: u64,
    pub frame: Box<dyn Frame>,
    /// Bytes fed to the frame (the next byte to read).
    pub read: u64,
    /// The last (up to [`TAIL`]) bytes fed, ending at `read`: they tell whether what we read is
    /// still in the file, find the copy of a truncated file, and give the verification window
    /// before a record that ended a little before `read`.
    pub tail: Vec<u8>,
    pub tracker: Arc<Tracker>,
    pub meta: Arc<FileMeta>,
    /// Records the clock ended (flush timeout, stop), held until their cuts are saved.
    pub timed: Vec<Record>,
}

impl std::fmt::Debug for Reading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reading").field("fingerprint", &self.fingerprint).field("read", &self.read).finish()
    }
}

/// What a look at a file found.
#[derive(Debug, PartialEq, Eq)]
pub enum Look {
    /// Read this many new bytes (records may have been produced).
    Read(u64),
    /// Nothing new.
    Idle,
    /// The bytes we read are gone: truncated, or replaced by other content.
    Replaced,
}

impl Reading {
    /// Whether the bytes before `read` in `file` (of size `size`) are still the ones we read.
    pub fn still_there(&self, file: &File, size: u64) -> bool {
        if size < self.read {
            return false;
        }
        if self.tail.is_empty() {
            // Nothing read yet: the first line identifies it.
            return file_fingerprint(file) == Some(self.fingerprint);
        }
        let start = self.read - self.tail.len() as u64;
        let mut buf = vec![0; self.tail.len()];
        matches!(read_at(file, start, &mut buf), Ok(n) if n == buf.len()) && buf == self.tail
    }

    /// Whether `file` holds the bytes we read, up to `read` (the copy of a truncated file).
    pub fn continues_in(&self, file: &File) -> bool {
        match dev_ino_size(file) {
            Ok((_, _, size)) => {
                size >= self.read
                    && file_fingerprint(file) == Some(self.fingerprint)
                    && self.still_there(file, size)
            }
            Err(_) => false,
        }
    }

    /// Reads up to [`TURN`] new bytes from `file` (of size `size`) into the frame.
    pub fn read_new(
        &mut self,
        file: &File,
        size: u64,
        buf: &mut [u8],
        out: &mut Vec<Record>,
    ) -> io::Result<u64> {
        let mut total = 0;
        while self.read < size && total < TURN {
            let want = ((size - self.read) as usize).min(buf.len());
            let n = read_at(file, self.read, &mut buf[..want])?;
            if n == 0 {
                break;
            }
            let bytes = &buf[..n];
            let (start, first) = (self.read, out.len());
            self.frame.push(bytes, tokio::time::Instant::now(), out);
            // The chunk's last record: where the committed position stops once it is acknowledged.
            if let Some(end) = out[first..].last().map(|r| r.end) {
                self.mark(window_before(&self.tail, start, bytes, end).map(|hash| Verify { at: end, hash }));
            }
            self.read += n as u64;
            total += n as u64;
            if n >= TAIL {
                self.tail.clear();
                self.tail.extend_from_slice(&bytes[n - TAIL..]);
            } else {
                self.tail.extend_from_slice(bytes);
                let excess = self.tail.len().saturating_sub(TAIL);
                self.tail.drain(..excess);
            }
        }
        Ok(total)
    }

    /// Notes where the last of `records` (emitted without reading: the clock, a stop, the file
    /// let go) ends, for the checkpoint's verification.
    pub fn mark_end_of(&self, records: &[Record]) {
        if let Some(end) = records.last().map(|r| r.end) {
            self.mark(window_before(&self.tail, self.read, &[], end).map(|hash| Verify { at: end, hash }));
        }
    }

    /// Notes the start as verified by the bytes before it (a file started at its end: they
    /// are what was skipped).
    pub fn mark_start(&self) {
        self.mark(
            window_before(&self.tail, self.read, &[], self.read).map(|hash| Verify { at: self.read, hash }),
        );
    }

    fn mark(&self, mark: Option<Verify>) {
        if let Some(mark) = mark {
            self.tracker.lock().read_to(mark);
        }
    }

    /// Notes the ends of the held [`Reading::timed`] records as cuts; whether there are any.
    pub fn held_cuts(&mut self) -> bool {
        if self.timed.is_empty() {
            return false;
        }
        self.mark_end_of(&self.timed);
        self.tracker.lock().cuts.extend(self.timed.iter().map(|r| r.end));
        true
    }
}

/// Bytes of history a reading keeps: a record may end this far before the chunk that ends it
/// begins (a line split between two reads) and still get its verification window.
pub const TAIL: usize = 4 * WINDOW as usize;

/// The verification window's hash before `at`, from the bytes read around it: `tail` (ending at
/// `start`) and then `bytes`. `None` when not all of the window is there.
pub fn window_before(tail: &[u8], start: u64, bytes: &[u8], at: u64) -> Option<u64> {
    let have_from = start.checked_sub(tail.len() as u64)?;
    let from = window_start(at);
    if from < have_from || at > start + bytes.len() as u64 || at < from {
        return None;
    }
    let (lo, hi, t) = ((from - have_from) as usize, (at - have_from) as usize, tail.len());
    Some(if hi <= t {
        window_hash(&tail[lo..hi])
    } else if lo >= t {
        window_hash(&bytes[lo - t..hi - t])
    } else {
        let mut w = Vec::with_capacity(hi - lo);
        w.extend_from_slice(&tail[lo..]);
        w.extend_from_slice(&bytes[..hi - t]);
        window_hash(&w)
    })
}

/// A file the source holds open.
#[derive(Debug)]
pub struct Reader {
    pub file: Arc<File>,
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
    /// Size at the last look.
    pub size: u64,
    /// `None` until identified (complete first line), or while it is a copy of a file another
    /// reader reads (then `alias_size` says the size it had when judged so).
    pub reading: Option<Reading>,
    pub alias_size: Option<u64>,
    /// Found by the first scan (where `start_at` applies).
    pub at_startup: bool,
    /// The globs still find it under some name; if not, since when they do not.
    pub gone_since: Option<Instant>,
    pub last_growth: Instant,
    /// Read to its end and let go: nothing more to do with it.
    pub finished: bool,
}

impl Reader {
    pub fn new(file: File, path: PathBuf, at_startup: bool) -> io::Result<Reader> {
        let (dev, ino, size) = dev_ino_size(&file)?;
        Ok(Reader {
            file: Arc::new(file),
            path,
            dev,
            ino,
            size,
            reading: None,
            alias_size: None,
            at_startup,
            gone_since: None,
            last_growth: Instant::now(),
            finished: false,
        })
    }

    /// Rotated away or deleted, and quiet, for the grace: its content will not change any more.
    pub fn let_go(&self, grace: std::time::Duration) -> bool {
        self.gone_since.is_some_and(|g| g.elapsed() >= grace) && self.last_growth.elapsed() >= grace
    }

    /// Nothing of it will be read: let go after it was read, a copy of another file, or empty.
    /// (One never read, whose only line has no newline, is kept until it has been.)
    pub fn done_with(&self) -> bool {
        self.reading.is_none() && (self.finished || self.alias_size.is_some() || self.size == 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_before_a_record_end_comes_from_the_bytes_read_around_it() {
        let file: Vec<u8> = (0..6000u32).map(|i| (i * 7 % 251) as u8).collect();
        let want = |at: usize| window_hash(&file[at.saturating_sub(WINDOW as usize)..at]);
        // A chunk [3000, 5000) after a tail of what came before it.
        let (start, bytes) = (3000u64, &file[3000..5000]);
        let tail = &file[3000 - TAIL.min(3000)..3000];
        for at in [4000, 5000, 3000, 3500, 2200] {
            assert_eq!(window_before(tail, start, bytes, at), Some(want(at as usize)), "{at}");
        }
        assert_eq!(window_before(tail, start, bytes, 5001), None, "past what was read");
        let short = &file[2900..3000];
        assert_eq!(window_before(short, start, bytes, 3500), None, "the window begins before the tail");
        assert_eq!(window_before(&file[..100], 100, &[], 60), Some(want(60)), "at the file's start");
    }
}
