//! The Events spool in the data dir: every occurrence taken from the API server is written here
//! (and fsynced) before it counts as taken, and leaves only when Elasticsearch has it. Events
//! exist nowhere else after the API server's hour, so an outage of any length, a restart or a
//! SIGKILL must not lose them; the spool is bounded (`AGENT_LOGSHIP_SPOOL_MAX_BYTES`): when full,
//! its oldest segment is dropped, and the caller is told how many occurrences went with it.
//!
//! On disk: segments `events-<first seq>.spool`, one entry per line,
//! `<seq>\t<event time, Unix ms>\t<"id">\t<"index">\t<source JSON>` (id and index as JSON
//! strings: no raw tab or newline can appear in any field), and `events-spool.ack`, the first sequence number not yet
//! acknowledged (written atomically). A torn last line (a crash mid-write) is cut off at open.
//!
//! Segments go before the position is written, so that a full volume frees its space: at open
//! the position is never put before the first segment left, so a crash in between (or a
//! position that could not be written) only re-reads entries that are still there.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

const PREFIX: &str = "events-";
const SUFFIX: &str = ".spool";
const ACK_FILE: &str = "events-spool.ack";
/// Segments per spool: dropping the oldest segment drops at most this share of it.
const SEGMENTS: u64 = 16;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("events spool {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// One occurrence's document, ready for `_bulk`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    /// The occurrence's time (for the shipped-event age metric).
    pub time_ms: i64,
    pub id: String,
    pub index: String,
    pub source: Vec<u8>,
}

/// A document to append.
#[derive(Debug, Clone, Copy)]
pub struct NewEntry<'a> {
    pub time_ms: i64,
    pub id: &'a str,
    pub index: &'a str,
    pub source: &'a [u8],
}

/// What a full spool dropped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Dropped {
    /// Entries dropped before the reader ever had them: they will not be shipped.
    pub entries: u64,
    /// Entries the reader holds (on their way, unacknowledged) whose spool copy went: they are
    /// still shipped from memory, but a crash before that loses them.
    pub held: u64,
    pub bytes: u64,
}

impl Dropped {
    fn add(&mut self, other: Dropped) {
        self.entries += other.entries;
        self.held += other.held;
        self.bytes += other.bytes;
    }
}

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    /// Existing segments, oldest first: (first seq, size in bytes).
    segments: Vec<(u64, u64)>,
    /// The newest segment, open for appending.
    writer: Option<File>,
    next_seq: u64,
    /// Every entry before this is acknowledged (or dropped).
    committed: u64,
    /// Acknowledged entries at or after `committed` (acknowledgements come out of order).
    acked: BTreeSet<u64>,
    /// Where the last read ended: (next seq, its segment, its byte offset there), so a reader
    /// that keeps up does not scan its segment from the start each time.
    resume: Option<(u64, u64, u64)>,
    /// Entries before this were handed to the reader: in memory there, on their way.
    read_to: u64,
}

impl Spool {
    /// Opens (or creates) the spool in `dir`, bounded to `max_bytes`.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Spool, SpoolError> {
        let io = |source| SpoolError::Io { path: dir.to_owned(), source };
        fs::create_dir_all(dir).map_err(io)?;
        let committed = match fs::read_to_string(dir.join(ACK_FILE)) {
            Ok(s) => s.trim().parse().unwrap_or(0),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io(e)),
        };
        let mut segments = Vec::new();
        for entry in fs::read_dir(dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name();
            let first =
                name.to_str().and_then(|n| n.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?.parse::<u64>().ok());
            if let Some(first) = first {
                segments.push((first, entry.metadata().map_err(io)?.len()));
            }
        }
        segments.sort_unstable();
        let mut spool = Spool {
            dir: dir.to_owned(),
            max_bytes: max_bytes.max(1),
            segment_bytes: (max_bytes / SEGMENTS).max(64 * 1024),
            segments,
            writer: None,
            next_seq: committed,
            committed,
            acked: BTreeSet::new(),
            resume: None,
            read_to: committed,
        };
        spool.recover_tail()?;
        // An ack file lost, or older than the segments removed after it was written (a crash,
        // a full volume), must not hold the position below what is left: nothing before the
        // first segment exists any more.
        if let Some(&(first, _)) = spool.segments.first() {
            spool.advance_to(first);
            spool.read_to = spool.read_to.max(first);
        }
        spool.remove_acknowledged()?;
        Ok(spool)
    }

    /// The newest segment: its torn last line cut off, the next sequence number read from it.
    fn recover_tail(&mut self) -> Result<(), SpoolError> {
        let Some(&(first, _)) = self.segments.last() else { return Ok(()) };
        let path = self.segment_path(first);
        let io = |source| SpoolError::Io { path: path.clone(), source };
        let mut reader = BufReader::new(File::open(&path).map_err(io)?);
        // The file ends after its last complete entry: a crash mid-write leaves a partial line
        // (or, written over, an unreadable one) only at the end. A bad line before good ones is
        // left for `read` to skip, not cut with the good ones after it.
        let (mut offset, mut good, mut next) = (0u64, 0u64, first);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(io)?;
            if n == 0 {
                break;
            }
            offset += n as u64;
            if let Some(entry) = parse(&line) {
                good = offset;
                next = entry.seq + 1;
            }
        }
        let f = OpenOptions::new().write(true).open(&path).map_err(io)?;
        f.set_len(good).map_err(io)?;
        f.sync_all().map_err(io)?;
        if let Some(last) = self.segments.last_mut() {
            last.1 = good;
        }
        self.next_seq = self.next_seq.max(next);
        Ok(())
    }

    fn segment_path(&self, first: u64) -> PathBuf {
        self.dir.join(format!("{PREFIX}{first:020}{SUFFIX}"))
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.1).sum()
    }

    /// Entries written and not yet acknowledged or dropped.
    pub fn pending(&self) -> u64 {
        self.next_seq - self.committed - self.acked.len() as u64
    }

    /// The first sequence number not yet acknowledged.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Appends documents and syncs them to disk (one write per segment touched, one sync);
    /// returns what had to be dropped to stay within the bound. A write that fails is undone
    /// (the file cut back to where it was): those entries are not in the spool, and the caller
    /// may append them again.
    pub fn append<'a>(
        &mut self,
        docs: impl IntoIterator<Item = NewEntry<'a>>,
    ) -> Result<Dropped, SpoolError> {
        let mut out = Vec::new();
        let mut first = self.next_seq;
        for doc in docs {
            if self.writer.is_none() || self.segments.last().is_none_or(|s| s.1 >= self.segment_bytes) {
                self.flush(&mut out, first)?;
                // The segment being left is synced before the next one begins.
                self.sync()?;
                first = self.next_seq;
                self.start_segment()?;
            }
            let before = out.len();
            write_entry(&mut out, self.next_seq, doc);
            if let Some(last) = self.segments.last_mut() {
                last.1 += (out.len() - before) as u64;
            }
            self.next_seq += 1;
        }
        self.flush(&mut out, first)?;
        self.sync()?;
        // Only now, with the new entries safe, is room made (the bound is passed by one append
        // at most in between).
        let mut dropped = Dropped::default();
        while self.bytes() > self.max_bytes && self.segments.len() > 1 {
            match self.drop_oldest() {
                Ok(d) => dropped.add(d),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot drop the oldest Events spool segment; the spool stays over its bound");
                    break;
                }
            }
        }
        Ok(dropped)
    }

    fn sync(&self) -> Result<(), SpoolError> {
        match (self.writer.as_ref(), self.segments.last()) {
            (Some(w), Some(last)) => {
                w.sync_data().map_err(|source| SpoolError::Io { path: self.segment_path(last.0), source })
            }
            _ => Ok(()),
        }
    }

    /// Writes `out` (entries from `first` on, already counted in the newest segment's size) to
    /// the newest segment; on failure cuts the file back and forgets them.
    fn flush(&mut self, out: &mut Vec<u8>, first: u64) -> Result<(), SpoolError> {
        if out.is_empty() {
            return Ok(());
        }
        let Some((segment, size)) = self.segments.last().copied() else { return Ok(()) };
        let path = self.segment_path(segment);
        let written = match self.writer.as_mut() {
            Some(w) => w.write_all(out),
            None => Err(io::Error::other("no segment open")),
        };
        if let Err(source) = written {
            let before = size - out.len() as u64;
            if let Some(w) = self.writer.as_ref() {
                let _ = w.set_len(before);
            }
            if let Some(last) = self.segments.last_mut() {
                last.1 = before;
            }
            self.next_seq = first;
            // Appending goes on at the cut-back end (the file is opened for appending).
            out.clear();
            return Err(SpoolError::Io { path, source });
        }
        out.clear();
        Ok(())
    }

    fn start_segment(&mut self) -> Result<(), SpoolError> {
        let first = self.next_seq;
        let path = self.segment_path(first);
        let io = |source| SpoolError::Io { path: path.clone(), source };
        if self.segments.last().is_some_and(|s| s.0 == first) {
            // The newest segment is empty (or was cut back to empty): append to it.
            self.writer = Some(OpenOptions::new().append(true).open(&path).map_err(io)?);
            return Ok(());
        }
        let f = OpenOptions::new().create(true).append(true).open(&path).map_err(io)?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io)?;
        self.writer = Some(f);
        self.segments.push((first, 0));
        Ok(())
    }

    /// Drops the oldest segment, acknowledged or not. The position is written with the next
    /// acknowledgement (`open` already never starts before the first segment).
    fn drop_oldest(&mut self) -> Result<Dropped, SpoolError> {
        let (first, bytes) = self.segments[0];
        let end = self.segments.get(1).map_or(self.next_seq, |s| s.0);
        let unread = (first.max(self.read_to)..end).count() as u64;
        let held = (first.max(self.committed)..end.min(self.read_to))
            .filter(|s| !self.acked.contains(s))
            .count() as u64;
        remove(&self.segment_path(first))?;
        self.segments.remove(0);
        self.advance_to(end);
        self.read_to = self.read_to.max(end);
        Ok(Dropped { entries: unread, held, bytes })
    }

    /// Up to `max` entries from sequence number `from` on (fewer when the spool has no more);
    /// entries dropped meanwhile are skipped.
    pub fn read(&mut self, from: u64, max: usize) -> Result<Vec<Entry>, SpoolError> {
        let from = from.max(self.segments.first().map_or(from, |s| s.0));
        let start = self.segments.iter().rposition(|s| s.0 <= from).unwrap_or(0);
        let mut out = Vec::new();
        for &(first, _) in &self.segments[start..] {
            let path = self.segment_path(first);
            let io = |source| SpoolError::Io { path: path.clone(), source };
            let mut reader = BufReader::new(File::open(&path).map_err(io)?);
            let mut offset = match self.resume {
                Some((seq, segment, offset)) if seq == from && segment == first => offset,
                _ => 0,
            };
            reader.seek(SeekFrom::Start(offset)).map_err(io)?;
            let mut line = Vec::new();
            loop {
                line.clear();
                let n = reader.read_until(b'\n', &mut line).map_err(io)?;
                if n == 0 || line.last() != Some(&b'\n') {
                    break;
                }
                offset += n as u64;
                let Some(entry) = parse(&line) else {
                    // Damaged on disk: skipped, said, and the rest still shipped.
                    tracing::warn!(path = %path.display(), offset, "an Events spool entry is not readable: skipped");
                    continue;
                };
                if entry.seq >= from {
                    self.resume = Some((entry.seq + 1, first, offset));
                    self.read_to = self.read_to.max(entry.seq + 1);
                    out.push(entry);
                    if out.len() >= max {
                        return Ok(out);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Entries now in Elasticsearch: the committed position moves over the acknowledged prefix,
    /// and segments entirely before it are removed.
    pub fn acknowledge(&mut self, seqs: &[u64]) -> Result<(), SpoolError> {
        let before = self.committed;
        self.acked.extend(seqs.iter().filter(|s| **s >= self.committed && **s < self.next_seq));
        while self.acked.remove(&self.committed) {
            self.committed += 1;
        }
        if self.committed == before {
            return Ok(());
        }
        // Space first: on a full volume the position cannot be written until a segment is gone.
        let removed = self.remove_acknowledged();
        let saved = self.save_committed();
        removed.and(saved)
    }

    fn advance_to(&mut self, seq: u64) {
        if seq > self.committed {
            self.committed = seq;
            self.acked = self.acked.split_off(&seq);
            while self.acked.remove(&self.committed) {
                self.committed += 1;
            }
        }
    }

    fn save_committed(&self) -> Result<(), SpoolError> {
        let path = self.dir.join(ACK_FILE);
        let tmp = self.dir.join(format!("{ACK_FILE}.tmp"));
        let write = || -> io::Result<()> {
            let mut f = OpenOptions::new().create(true).write(true).truncate(true).open(&tmp)?;
            writeln!(f, "{}", self.committed)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(&self.dir)?.sync_all()
        };
        write().map_err(|source| SpoolError::Io { path, source })
    }

    /// Removes the segments whose every entry is before the committed position, the newest
    /// included (the next append begins a new one): an acknowledged spool takes no room.
    fn remove_acknowledged(&mut self) -> Result<(), SpoolError> {
        while let Some(&(first, _)) = self.segments.first() {
            let end = self.segments.get(1).map_or(self.next_seq, |s| s.0);
            if end > self.committed {
                break;
            }
            if self.segments.len() == 1 {
                self.writer = None;
            }
            remove(&self.segment_path(first))?;
            self.segments.remove(0);
        }
        Ok(())
    }
}

fn remove(path: &Path) -> Result<(), SpoolError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(SpoolError::Io { path: path.to_owned(), source: e })
        }
        _ => Ok(()),
    }
}

fn write_entry(out: &mut Vec<u8>, seq: u64, doc: NewEntry<'_>) {
    use std::io::Write as _;
    let _ = write!(out, "{seq}\t{}\t", doc.time_ms);
    crate::encode::json::string(out, doc.id.as_bytes());
    out.push(b'\t');
    crate::encode::json::string(out, doc.index.as_bytes());
    out.push(b'\t');
    out.extend_from_slice(doc.source);
    out.push(b'\n');
}

fn parse(line: &[u8]) -> Option<Entry> {
    let line = line.strip_suffix(b"\n")?;
    let mut parts = line.splitn(5, |b| *b == b'\t');
    let mut number = || std::str::from_utf8(parts.next()?).ok()?.parse::<i64>().ok();
    let seq = u64::try_from(number()?).ok()?;
    let time_ms = number()?;
    let id = serde_json::from_slice(parts.next()?).ok()?;
    let index = serde_json::from_slice(parts.next()?).ok()?;
    let source = parts.next()?.to_vec();
    Some(Entry { seq, time_ms, id, index, source })
}

#[cfg(test)]
mod tests;
