//! CRI log lines (`<RFC3339Nano time> <stdout|stderr> <P|F> <text>`): the runtime's prefix
//! split off, so the group sees payloads. `P` (partial) pieces of one stream are glued to the
//! pieces that follow up to the `F` one: the runtime cut a long line there, not the program.

use crate::record::Stream;

/// A parsed CRI line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CriParts<'a> {
    pub time: &'a [u8],
    pub stream: Stream,
    pub partial: bool,
    /// Offset of the payload in the line.
    pub text_at: usize,
}

/// Splits a CRI line; `None` when it is not one (kept whole as text by the caller).
pub(crate) fn parse(line: &[u8]) -> Option<CriParts<'_>> {
    let sp1 = memchr::memchr(b' ', line)?;
    let time = &line[..sp1];
    // An RFC 3339 time begins with a date; cheap sanity check, the encoder parses it fully.
    if time.len() < 20 || !time[..4].iter().all(u8::is_ascii_digit) || time[4] != b'-' {
        return None;
    }
    let rest = &line[sp1 + 1..];
    let (stream, rest_at) = if rest.starts_with(b"stdout ") {
        (Stream::Stdout, 7)
    } else if rest.starts_with(b"stderr ") {
        (Stream::Stderr, 7)
    } else {
        return None;
    };
    let tag_at = sp1 + 1 + rest_at;
    let partial = match line.get(tag_at) {
        Some(b'P') => true,
        Some(b'F') => false,
        _ => return None,
    };
    let text_at = match line.get(tag_at + 1) {
        None => tag_at + 1,
        Some(b' ') => tag_at + 2,
        // Tags may grow more letters (`F:x` in future runtimes); not a line we know.
        Some(_) => return None,
    };
    Some(CriParts { time, stream, partial, text_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines() {
        let l = b"2026-11-27T13:53:32.123456789Z stdout F hello world";
        let p = parse(l).expect("cri");
        assert_eq!(p.time, b"2026-11-27T13:53:32.123456789Z");
        assert_eq!(p.stream, Stream::Stdout);
        assert!(!p.partial);
        assert_eq!(&l[p.text_at..], b"hello world");
        let l = b"2026-11-27T13:53:32.1+01:00 stderr P ";
        let p = parse(l).expect("cri");
        assert!(p.partial);
        assert_eq!(&l[p.text_at..], b"");
        let l = b"2026-11-27T13:53:32.1+01:00 stderr F";
        assert_eq!(parse(l).map(|p| p.text_at), Some(l.len()));
    }

    #[test]
    fn rejects_other_lines() {
        for l in [
            &b"hello"[..],
            b"2026-11-27 13:53:32,123 INFO [main] x",
            b"2026-11-27T13:53:32.1Z stdin F x",
            b"2026-11-27T13:53:32.1Z stdout X x",
            b"2026-11-27T13:53:32.1Z stdout Fx",
            b"",
        ] {
            assert_eq!(parse(l), None, "{}", String::from_utf8_lossy(l));
        }
    }
}
