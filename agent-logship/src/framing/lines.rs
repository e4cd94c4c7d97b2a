//! Bytes to physical lines. Complete lines inside one pushed chunk are handed out as slices of
//! it (no copy); only the unfinished tail is buffered. A line longer than the record limit is
//! handed out in pieces of exactly `max` bytes as it grows, so a writer that never writes a
//! newline cannot make us hold more than that. The pieces depend only on the bytes (counted
//! from the line start), never on how they arrived.

/// One physical line, or one piece of an over-long one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Line<'a> {
    /// File offset of `raw[0]`.
    pub offset: u64,
    /// The bytes; no `\n`; a `\r` before the `\n` removed.
    pub raw: &'a [u8],
    /// File offset just past this piece (its `\n` included).
    pub end: u64,
    /// The piece ends the line (a `\n` followed, or the file was let go).
    pub done: bool,
    /// The piece continues a line whose earlier bytes were handed out already.
    pub cont: bool,
}

/// The unfinished-line buffer's room kept between lines.
const KEEP: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) struct Lines {
    buf: Vec<u8>,
    /// File offset of `buf[0]` (or of the next byte when empty).
    at: u64,
    max: usize,
    /// The buffered line's beginning was handed out already (over-long line).
    cont: bool,
}

impl Lines {
    pub fn new(at: u64, max: usize) -> Self {
        Lines { buf: Vec::new(), at, max: max.max(1), cont: false }
    }

    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub fn push(&mut self, mut bytes: &[u8], f: &mut impl FnMut(Line<'_>)) {
        if !self.buf.is_empty() || self.cont {
            match memchr::memchr(b'\n', bytes) {
                None => {
                    self.buf.extend_from_slice(bytes);
                    self.drain_long(f);
                    return;
                }
                Some(i) => {
                    self.buf.extend_from_slice(&bytes[..i]);
                    bytes = &bytes[i + 1..];
                    let buf = std::mem::take(&mut self.buf);
                    let cont = std::mem::take(&mut self.cont);
                    let at = self.at;
                    self.at = emit_line(&buf, at, true, cont, self.max, f);
                    // A long line's room is not kept: a file that once had one would hold it
                    // for good (hundreds of files, each a megabyte).
                    if buf.capacity() <= KEEP {
                        self.buf = buf;
                        self.buf.clear();
                    }
                }
            }
        }
        // Whole lines straight from the chunk.
        while let Some(i) = memchr::memchr(b'\n', bytes) {
            self.at = emit_line(&bytes[..i], self.at, true, false, self.max, f);
            bytes = &bytes[i + 1..];
        }
        self.buf.extend_from_slice(bytes);
        self.drain_long(f);
    }

    /// Hands out the unfinished line, if any (the file is let go).
    pub fn finish(&mut self, f: &mut impl FnMut(Line<'_>)) {
        if !self.buf.is_empty() {
            let buf = std::mem::take(&mut self.buf);
            let at = self.at;
            self.at = emit_line(&buf, at, false, self.cont, self.max, f);
        }
        self.cont = false;
    }

    /// An unfinished line past the limit: hand out its complete `max`-byte pieces now.
    fn drain_long(&mut self, f: &mut impl FnMut(Line<'_>)) {
        if self.buf.len() <= self.max {
            return;
        }
        let mut from = 0;
        while self.buf.len() - from > self.max {
            let piece = &self.buf[from..from + self.max];
            let end = self.at + self.max as u64;
            f(Line { offset: self.at, raw: piece, end, done: false, cont: self.cont });
            self.at = end;
            self.cont = true;
            from += self.max;
        }
        self.buf.drain(..from);
    }
}

/// Hands out one line (`raw` without its `\n`), in `max`-byte pieces when longer; returns the
/// offset after it.
fn emit_line(
    raw: &[u8],
    mut at: u64,
    newline: bool,
    mut cont: bool,
    max: usize,
    f: &mut impl FnMut(Line<'_>),
) -> u64 {
    let mut rest = raw;
    while rest.len() > max {
        let end = at + max as u64;
        f(Line { offset: at, raw: &rest[..max], end, done: false, cont });
        at = end;
        cont = true;
        rest = &rest[max..];
    }
    let end = at + rest.len() as u64 + u64::from(newline);
    let text = match rest {
        [head @ .., b'\r'] if newline => head,
        _ => rest,
    };
    f(Line { offset: at, raw: text, end, done: true, cont });
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize, finish: bool) -> Vec<(u64, Vec<u8>, u64, bool, bool)> {
        let mut v = Vec::new();
        let mut l = Lines::new(0, max);
        let mut f = |x: Line<'_>| v.push((x.offset, x.raw.to_vec(), x.end, x.done, x.cont));
        for c in chunks {
            l.push(c, &mut f);
        }
        if finish {
            l.finish(&mut f);
        }
        v
    }

    #[test]
    fn lines_and_crlf() {
        let v = split(&[b"ab\r\ncd\nef"], 100, false);
        assert_eq!(v, vec![(0, b"ab".to_vec(), 4, true, false), (4, b"cd".to_vec(), 7, true, false)]);
        let v = split(&[b"ab\r", b"\ncd\nef"], 100, true);
        assert_eq!(v[0], (0, b"ab".to_vec(), 4, true, false));
        assert_eq!(v[2], (7, b"ef".to_vec(), 9, true, false));
    }

    #[test]
    fn long_lines_same_pieces_however_they_arrive() {
        let whole = split(&[b"abcdefghij\nxy\n"], 4, false);
        let bytewise: Vec<&[u8]> = b"abcdefghij\nxy\n".chunks(1).collect();
        assert_eq!(split(&bytewise, 4, false), whole);
        assert_eq!(whole[0], (0, b"abcd".to_vec(), 4, false, false));
        assert_eq!(whole[1], (4, b"efgh".to_vec(), 8, false, true));
        assert_eq!(whole[2], (8, b"ij".to_vec(), 11, true, true));
    }
}
