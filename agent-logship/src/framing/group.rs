//! Lines to records: the multi-line rules, the size cut, the tiling offsets and the hash chain.
//!
//! Rules (log4j and CRI payloads): a line the record-start matcher accepts begins a record;
//! any other line continues the pending one (a Java stack trace: `java.lang.X: msg`,
//! `\tat ...`, `Caused by: ...`, `\t... N more`); lines before any record start form a record
//! of their own. A record is emitted when the next one begins, after the flush timeout without
//! a byte, or when the file is let go. JSON: one record per line, blank lines skipped (covered
//! by the next record's offsets). Whitespace-only groups are never shipped: the next record's
//! range covers them.
//!
//! Every decision depends only on the bytes (and, for the flush, the clock), never on how the
//! bytes were chunked; a frame resumed at an emitted position, given where the clock ended
//! records after it (the checkpoint keeps those cuts), sees what the first one saw after it, so
//! it yields the same records and chain.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use tokio::time::Instant;

use super::lines::{Line, Lines};
use super::{Format, FramingOptions, RecordStart, cri};
use crate::frame::{Frame, Position};
use crate::record::{CriLine, Record, Stream};

/// `xxh3_128(previous chain (16 LE bytes), offset (8 LE bytes), bytes)`.
pub fn chain(previous: u128, offset: u64, bytes: &[u8]) -> u128 {
    chain_with(&mut Vec::new(), previous, offset, bytes)
}

/// [`chain`] with a reused buffer: the one-shot hash over a copy is several times faster than
/// the streaming hasher (whose state is set up per call) and gives the same value.
fn chain_with(scratch: &mut Vec<u8>, previous: u128, offset: u64, bytes: &[u8]) -> u128 {
    scratch.clear();
    scratch.extend_from_slice(&previous.to_le_bytes());
    scratch.extend_from_slice(&offset.to_le_bytes());
    scratch.extend_from_slice(bytes);
    let chain = xxhash_rust::xxh3::xxh3_128(scratch);
    // A large record's room is not kept: every file would hold its largest record's size.
    if scratch.capacity() > CHUNK {
        *scratch = Vec::new();
    }
    chain
}

/// What the group gets: one line, or a piece of one.
#[derive(Debug, Clone, Copy)]
struct Segment<'a> {
    /// File offset of `text[0]`.
    text_offset: u64,
    text: &'a [u8],
    /// File offset after this piece of the file.
    end: u64,
    /// Begins a logical line (joined to the record with `\n`), or glues on (no separator).
    new_line: bool,
    /// The line may begin a record (tested against the matcher).
    may_start: bool,
    /// The logical line is complete after this piece.
    done: bool,
    /// CRI: runtime time and stream of the line.
    cri: Option<(&'a [u8], Stream)>,
}

#[derive(Debug)]
struct Pending {
    /// Grows in place inside the group's chunk (see [`Group::text`]).
    text: BytesMut,
    end: u64,
    cut: bool,
    cri: Option<Box<CriLine>>,
    blank: bool,
    /// The text begins with a date and time the record-start check has seen (for masking).
    dated: bool,
}

#[derive(Debug)]
struct Group {
    format: Format,
    options: Arc<FramingOptions>,
    max: usize,
    pos: Position,
    pending: Option<Pending>,
    /// The last piece left a logical line open: no flush on idle.
    open: bool,
    /// Where a first read ended records by the clock, ascending (see [`Frame::cut_at`]).
    cuts: std::collections::VecDeque<u64>,
    last_activity: Option<Instant>,
    /// For [`chain_with`].
    scratch: Vec<u8>,
    /// The rest of the chunk the records' texts are written into: each record takes what it
    /// needs and gives the rest back (`BytesMut` splits share the allocation), so a chunk serves
    /// some hundred records with one allocation. Measured: an allocation per record (and its
    /// free on another thread) was a tenth of the shipper's CPU.
    chunk: BytesMut,
}

/// The size of the chunks records are written into: some eighty Calypso records; small, as each
/// file being read keeps the rest of one (a node agent may read hundreds).
const CHUNK: usize = 16 * 1024;

impl Group {
    fn add(&mut self, seg: Segment<'_>, out: &mut Vec<Record>) {
        self.open = !seg.done;
        match self.format {
            Format::Json => self.add_json(seg, out),
            Format::Log4j | Format::Cri => self.add_multiline(seg, out),
        }
    }

    fn add_json(&mut self, seg: Segment<'_>, out: &mut Vec<Record>) {
        if seg.new_line && seg.done && is_blank(seg.text) {
            return;
        }
        if seg.new_line {
            // Cannot be pending here: a JSON record is emitted when its line is done.
            self.start(seg, false, out);
        } else {
            self.append(false, seg, out);
        }
        if seg.done {
            self.flush(out);
        }
    }

    fn add_multiline(&mut self, seg: Segment<'_>, out: &mut Vec<Record>) {
        let Some(p) = &self.pending else {
            self.start(seg, false, out);
            return;
        };
        if !seg.new_line {
            self.append(false, seg, out);
            return;
        }
        let other_stream = match (&p.cri, seg.cri) {
            (Some(a), Some((_, b))) => a.stream != b,
            _ => false,
        };
        while self.cuts.front().is_some_and(|c| *c < p.end) {
            self.cuts.pop_front();
        }
        let cut_here = self.cuts.front() == Some(&p.end);
        let starts =
            seg.may_start && self.options.record_start.matches(&seg.text[..seg.text.len().min(self.max)]);
        if starts || other_stream || cut_here {
            self.flush(out);
            let dated = starts && matches!(self.options.record_start, RecordStart::Timestamp);
            self.start(seg, dated, out);
        } else {
            self.append(true, seg, out);
        }
    }

    /// An empty text with room for at least `bytes`: the rest of the chunk, or a new chunk.
    fn text(&mut self, bytes: usize) -> BytesMut {
        if self.chunk.capacity() < bytes {
            self.chunk = BytesMut::with_capacity(CHUNK.max(bytes));
        }
        self.chunk.split_off(0)
    }

    fn start(&mut self, seg: Segment<'_>, dated: bool, out: &mut Vec<Record>) {
        // A whitespace-only pending group (not emitted by `flush`) is folded into this record.
        let text = self.text(seg.text.len().min(self.max) + 256);
        self.pending = Some(Pending {
            text,
            end: seg.text_offset,
            cut: false,
            cri: seg.cri.map(|(time, stream)| {
                Box::new(CriLine { time: String::from_utf8_lossy(time).into_owned(), stream })
            }),
            blank: true,
            dated,
        });
        self.append(false, seg, out);
    }

    /// Appends a piece to the pending record (there is one), cutting at the limit.
    fn append(&mut self, newline: bool, seg: Segment<'_>, out: &mut Vec<Record>) {
        let max = self.max;
        let mut sep = usize::from(newline);
        let mut text = seg.text;
        let mut text_offset = seg.text_offset;
        loop {
            let Some(p) = self.pending.as_mut() else {
                let text = self.text(0);
                self.pending = Some(Pending {
                    text,
                    end: text_offset,
                    cut: false,
                    cri: None,
                    blank: true,
                    dated: false,
                });
                continue;
            };
            let room = max - p.text.len();
            if sep + text.len() <= room {
                if sep == 1 {
                    p.text.extend_from_slice(b"\n");
                }
                p.text.extend_from_slice(text);
                p.blank = p.blank && is_blank(text);
                p.end = seg.end;
                return;
            }
            // Over the limit: emit the first `max` bytes, the rest begins the next record.
            let cri = p.cri.clone();
            if room > sep {
                let k = room - sep;
                if sep == 1 {
                    p.text.extend_from_slice(b"\n");
                }
                p.text.extend_from_slice(&text[..k]);
                p.blank = p.blank && is_blank(&text[..k]);
                p.end = text_offset + k as u64;
                text = &text[k..];
                text_offset += k as u64;
            }
            p.cut = true;
            self.flush(out);
            let rest = self.text(text.len().min(max));
            self.pending =
                Some(Pending { text: rest, end: text_offset, cut: true, cri, blank: true, dated: false });
            sep = 0;
        }
    }

    fn flush(&mut self, out: &mut Vec<Record>) {
        let Some(p) = self.pending.take() else { return };
        // The rest of the record's room is the next records' chunk, unless the record outgrew a
        // chunk: the rest would keep its whole allocation alive (megabytes per file, for good).
        let large = p.text.capacity() > CHUNK;
        if p.blank {
            // Not shipped (nothing to read); covered by the next record's range. Its room is
            // used again.
            self.chunk = if large { BytesMut::new() } else { p.text };
            self.chunk.clear();
            return;
        }
        let offset = self.pos.offset;
        // Masked here, before anything else sees the record: the chain (and so the `_id`) is made
        // of the masked bytes, and so is the document.
        let masked = self.options.redactor.as_ref().and_then(|r| match self.format {
            Format::Json => r.json_line(&p.text),
            Format::Log4j | Format::Cri if p.dated => r.dated_bytes(&p.text),
            Format::Log4j | Format::Cri => r.bytes(&p.text),
        });
        let redacted = masked.is_some();
        let mut text = p.text;
        let (bytes, rest) = match masked {
            // The record's room goes back to the chunk.
            Some(masked) => (Bytes::from(masked), {
                text.clear();
                text
            }),
            None => {
                let rest = text.split_off(text.len());
                (text.freeze(), rest)
            }
        };
        let chain = chain_with(&mut self.scratch, self.pos.chain, offset, &bytes);
        self.pos = Position { offset: p.end, chain };
        self.chunk = if large { BytesMut::new() } else { rest };
        out.push(Record { offset, end: p.end, bytes, cut: p.cut, cri: p.cri, chain, redacted });
    }
}

fn is_blank(text: &[u8]) -> bool {
    text.iter().all(u8::is_ascii_whitespace)
}

/// The [`Frame`] for every format: lines, the CRI prefix layer when asked, and the group.
#[derive(Debug)]
pub(crate) struct GroupFrame {
    lines: Lines,
    /// CRI only: the stream of an open `P` sequence.
    cri: Option<Option<Stream>>,
    group: Group,
}

impl GroupFrame {
    pub fn new(format: Format, options: Arc<FramingOptions>, at: Position) -> Self {
        let max = options.max_record_bytes.max(1);
        GroupFrame {
            lines: Lines::new(at.offset, max),
            cri: (format == Format::Cri).then_some(None),
            group: Group {
                format,
                options,
                max,
                pos: at,
                pending: None,
                open: false,
                cuts: Default::default(),
                last_activity: None,
                scratch: Vec::new(),
                chunk: BytesMut::new(),
            },
        }
    }
}

/// One physical line to the group, through the CRI layer when there is one.
fn feed(cri: &mut Option<Option<Stream>>, group: &mut Group, line: Line<'_>, out: &mut Vec<Record>) {
    let Some(open) = cri else {
        let seg = Segment {
            text_offset: line.offset,
            text: line.raw,
            end: line.end,
            new_line: !line.cont,
            may_start: !line.cont,
            done: line.done,
            cri: None,
        };
        group.add(seg, out);
        return;
    };
    if line.cont {
        // The rest of an over-long physical line: payload bytes, whatever they look like.
        let seg = Segment {
            text_offset: line.offset,
            text: line.raw,
            end: line.end,
            new_line: false,
            may_start: false,
            done: line.done && open.is_none(),
            cri: None,
        };
        group.add(seg, out);
        return;
    }
    let seg = match cri::parse(line.raw) {
        Some(parts) => {
            let glued = *open == Some(parts.stream);
            *open = parts.partial.then_some(parts.stream);
            Segment {
                text_offset: line.offset + parts.text_at as u64,
                text: &line.raw[parts.text_at..],
                end: line.end,
                new_line: !glued,
                may_start: !glued,
                done: line.done && !parts.partial,
                cri: (!glued).then_some((parts.time, parts.stream)),
            }
        }
        None => {
            *open = None;
            Segment {
                text_offset: line.offset,
                text: line.raw,
                end: line.end,
                new_line: true,
                may_start: true,
                done: line.done,
                cri: None,
            }
        }
    };
    group.add(seg, out);
}

impl Frame for GroupFrame {
    fn push(&mut self, bytes: &[u8], now: Instant, out: &mut Vec<Record>) {
        if bytes.is_empty() {
            return;
        }
        self.group.last_activity = Some(now);
        let (cri, group) = (&mut self.cri, &mut self.group);
        self.lines.push(bytes, &mut |line| feed(cri, group, line, out));
    }

    fn idle(&mut self, now: Instant, out: &mut Vec<Record>) {
        let g = &self.group;
        let quiet =
            g.last_activity.is_none_or(|t| now.saturating_duration_since(t) >= g.options.flush_timeout);
        if quiet {
            self.flush(out);
        }
    }

    fn flush(&mut self, out: &mut Vec<Record>) {
        let g = &mut self.group;
        // An unfinished line that is not part of the pending record does not hold it back: the
        // writer may have stopped mid-line for good. One that is (an over-long line, an open
        // CRI `P` sequence) does: emitting would end a record inside a line.
        if !g.open && g.pending.is_some() {
            g.flush(out);
        }
    }

    fn finish(&mut self, out: &mut Vec<Record>) {
        let (cri, group) = (&mut self.cri, &mut self.group);
        self.lines.finish(&mut |line| feed(cri, group, line, out));
        if let Some(open) = &mut self.cri {
            *open = None;
        }
        self.group.open = false;
        self.group.flush(out);
    }

    fn cut_at(&mut self, cuts: &[u64]) {
        self.group.cuts = cuts.iter().copied().filter(|c| *c > self.group.pos.offset).collect();
    }

    fn position(&self) -> Position {
        self.group.pos
    }

    fn pending_bytes(&self) -> usize {
        self.lines.buffered() + self.group.pending.as_ref().map_or(0, |p| p.text.len())
    }
}
