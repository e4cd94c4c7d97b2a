//! `yyyy-MM-dd HH:mm:ss,SSS LEVEL [thread] [Category] message` and the Java stack trace that
//! may follow on the next lines. Tolerant: padded levels, thread names with spaces and
//! brackets, a missing category, extra spaces; what does not fit stays in the message.

/// The first line's fields; slices of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The 23 bytes of the timestamp (`yyyy-MM-dd HH:mm:ss,SSS`, or with `T` / `.`).
    pub time: &'a [u8],
    pub level: Option<&'a [u8]>,
    pub thread: Option<&'a [u8]>,
    pub logger: Option<&'a [u8]>,
    /// The rest of the first line.
    pub message: &'a [u8],
}

/// A trailing Java stack trace; slices of the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackTrace<'a> {
    /// The exception class of the trace's first line (`java.lang.IllegalStateException`).
    pub error_type: Option<&'a [u8]>,
    /// Its message (may span lines, up to the first `at` frame).
    pub error_message: Option<&'a [u8]>,
    /// The trace: from its first line to the record's end.
    pub stack_trace: &'a [u8],
}

/// A whole log4j record, read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Log4jRecord<'a> {
    pub header: Option<Header<'a>>,
    /// The first line's message and the lines after it that are not the trace; the whole text
    /// when the first line has no header.
    pub message: &'a [u8],
    pub trace: Option<StackTrace<'a>>,
    /// More than one line.
    pub multiline: bool,
}

const LEVELS: [&[u8]; 8] = [b"TRACE", b"DEBUG", b"INFO", b"WARN", b"WARNING", b"ERROR", b"FATAL", b"SEVERE"];

/// The header of a first line, `None` when it does not begin with the Calypso timestamp.
pub fn parse_header(line: &[u8]) -> Option<Header<'_>> {
    if !crate::framing::RecordStart::Timestamp.matches(line) {
        return None;
    }
    let time = &line[..23];
    let mut rest = skip_spaces(&line[23..]);
    // A zone designator some patterns add (`,123Z`, `,123 +0100`) is not a level; skip `Z`.
    if let [b'Z', tail @ ..] = rest
        && tail.first().is_none_or(|b| *b == b' ')
    {
        rest = skip_spaces(tail);
    }
    let word_end = rest.iter().position(|b| !b.is_ascii_alphabetic()).unwrap_or(rest.len());
    let word = &rest[..word_end];
    let level = LEVELS.iter().any(|l| l.eq_ignore_ascii_case(word)).then_some(word);
    if level.is_some() {
        rest = skip_spaces(&rest[word_end..]);
    }
    let mut thread = None;
    let mut logger = None;
    if let Some((inside, after)) = bracketed(rest) {
        thread = Some(inside);
        rest = skip_spaces(after);
        if let Some((inside, after)) = bracketed(rest) {
            logger = Some(inside);
            rest = skip_spaces(after);
        }
    }
    // `- message` as some patterns write it.
    if let [b'-', b' ', tail @ ..] = rest {
        rest = skip_spaces(tail);
    }
    Some(Header { time, level, thread, logger, message: rest })
}

fn skip_spaces(s: &[u8]) -> &[u8] {
    let n = s.iter().position(|b| *b != b' ' && *b != b'\t').unwrap_or(s.len());
    &s[n..]
}

/// `[...]` with nested brackets balanced: (inside, after).
fn bracketed(s: &[u8]) -> Option<(&[u8], &[u8])> {
    if s.first() != Some(&b'[') {
        return None;
    }
    // Mostly no bracket inside (`[main]`, `[pool-2-thread-7]`): the first `]` closes it.
    let close = memchr::memchr(b']', s)?;
    if memchr::memchr(b'[', &s[1..close]).is_none() {
        return Some((&s[1..close], &s[close + 1..]));
    }
    let mut depth = 0usize;
    for (i, b) in s.iter().enumerate() {
        match b {
            b'[' => depth += 1,
            b']' => {
                depth -= 1;
                if depth == 0 {
                    return Some((&s[1..i], &s[i + 1..]));
                }
            }
            _ => {}
        }
    }
    None
}

/// Reads a record: header, message, trailing stack trace.
pub fn parse_record(text: &[u8]) -> Log4jRecord<'_> {
    let first_end = memchr::memchr(b'\n', text).unwrap_or(text.len());
    let header = parse_header(&text[..first_end]);
    let multiline = first_end < text.len();
    let message_start = match &header {
        Some(h) => h.message.as_ptr() as usize - text.as_ptr() as usize,
        None => 0,
    };
    let trace = match (&header, multiline) {
        (Some(_), true) => find_trace(text, first_end + 1),
        (Some(_), false) => None,
        // No header (lines before the first record, a late stack trace): from the first line.
        (None, _) => find_trace(text, 0),
    };
    let message_end = match &trace {
        Some((start, _)) => start.saturating_sub(1).max(message_start),
        None => text.len(),
    };
    let mut message = &text[message_start..message_end];
    if header.is_none() && message.is_empty() {
        // A bare stack trace: keep it readable as the message too.
        message = text;
    }
    Log4jRecord { header, message, trace: trace.map(|(_, t)| t), multiline }
}

/// The trace in `text` starting at a line at or after `from`: its start and its parts.
fn find_trace(text: &[u8], from: usize) -> Option<(usize, StackTrace<'_>)> {
    // The first exception line (`pkg.Class` or `pkg.Class: message`) followed by a frame.
    let mut candidate: Option<(usize, &[u8], Option<usize>)> = None;
    let mut at = from;
    while at < text.len() {
        let end = memchr::memchr(b'\n', &text[at..]).map_or(text.len(), |i| at + i);
        let line = &text[at..end];
        if is_frame(line) {
            let (start, error_type, error_message) = match candidate {
                Some((start, ty, msg_at)) => {
                    let msg = msg_at.map(|m| trim_end(&text[m..at.saturating_sub(1).max(m)]));
                    (start, Some(ty), msg.filter(|m| !m.is_empty()))
                }
                None => (at, None, None),
            };
            return Some((start, StackTrace { error_type, error_message, stack_trace: &text[start..] }));
        }
        if candidate.is_none()
            && let Some((ty, msg_at)) = exception_line(line)
        {
            candidate = Some((at, ty, msg_at.map(|m| at + m)));
        }
        at = end + 1;
    }
    None
}

/// `\tat pkg.Class.method(File.java:12)` (any leading whitespace).
fn is_frame(line: &[u8]) -> bool {
    let t = skip_spaces(line);
    t.len() < line.len() && t.starts_with(b"at ")
}

/// `[Exception in thread "x" ]pkg.Class[: message]`: the class and where the message starts.
fn exception_line(line: &[u8]) -> Option<(&[u8], Option<usize>)> {
    let mut skip = 0;
    if line.starts_with(b"Exception in thread \"") {
        let close = memchr::memchr(b'"', &line[21..])?;
        skip = 21 + close + 1;
        if line.get(skip) != Some(&b' ') {
            return None;
        }
        skip += 1;
    }
    let rest = &line[skip..];
    let name_end = rest.iter().position(|b| *b == b':').unwrap_or(rest.len());
    let name = trim_end(&rest[..name_end]);
    let qualified = name.contains(&b'.')
        && name.first().is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_' || *b == b'$')
        && name.last() != Some(&b'.')
        && name.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'$'));
    if !qualified {
        return None;
    }
    let msg_at = (name_end < rest.len()).then(|| {
        let after = &rest[name_end + 1..];
        skip + name_end + 1 + (after.len() - skip_spaces(after).len())
    });
    Some((&rest[..name.len()], msg_at))
}

fn trim_end(s: &[u8]) -> &[u8] {
    let n = s.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |i| i + 1);
    &s[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(b: Option<&[u8]>) -> Option<&str> {
        b.map(|b| std::str::from_utf8(b).expect("utf8"))
    }

    #[test]
    fn calypso_header() {
        let h = parse_header(b"2026-11-27 13:53:32,123 ERROR [RMI TCP Connection(2)-10.0.0.1] [com.calypso.DS] Connection lost").expect("h");
        assert_eq!(h.time, b"2026-11-27 13:53:32,123");
        assert_eq!(s(h.level), Some("ERROR"));
        assert_eq!(s(h.thread), Some("RMI TCP Connection(2)-10.0.0.1"));
        assert_eq!(s(h.logger), Some("com.calypso.DS"));
        assert_eq!(h.message, b"Connection lost");
    }

    #[test]
    fn header_variations() {
        let h = parse_header(b"2026-11-27 13:53:32,123 INFO  [main]  started [ok]").expect("h");
        assert_eq!((s(h.level), s(h.thread), s(h.logger)), (Some("INFO"), Some("main"), None));
        assert_eq!(h.message, b"started [ok]");
        let h = parse_header(b"2026-11-27 13:53:32,123 WARNING [pool [1] thread] just text").expect("h");
        assert_eq!((s(h.level), s(h.thread), s(h.logger)), (Some("WARNING"), Some("pool [1] thread"), None));
        assert_eq!(h.message, b"just text");
        let h = parse_header(b"2026-11-27T13:53:32.123 hello world").expect("h");
        assert_eq!((h.level, h.thread, h.message), (None, None, &b"hello world"[..]));
        let h = parse_header(b"2026-11-27 13:53:32,123 FATAL [unclosed thread").expect("h");
        assert_eq!((s(h.level), h.thread, h.message), (Some("FATAL"), None, &b"[unclosed thread"[..]));
        let h = parse_header(b"2026-11-27 13:53:32,123 trace [t] [c] - m").expect("h");
        assert_eq!((s(h.level), h.message), (Some("trace"), &b"m"[..]));
        assert_eq!(parse_header(b"no header here"), None);
    }

    #[test]
    fn trailing_stack_trace() {
        let text = b"2026-11-27 13:53:33,001 ERROR [main] [DS] Connection lost\nwhile saving trade 42\ncom.calypso.tk.core.PersistenceException: could not read\n  more of the message\n\tat com.calypso.A.b(A.java:1)\nCaused by: java.sql.SQLException: reset\n\tat oracle.X.y(X.java:2)\n\t... 12 more";
        let r = parse_record(text);
        assert_eq!(r.message, b"Connection lost\nwhile saving trade 42");
        let t = r.trace.expect("trace");
        assert_eq!(s(t.error_type), Some("com.calypso.tk.core.PersistenceException"));
        assert_eq!(s(t.error_message), Some("could not read\n  more of the message"));
        assert!(t.stack_trace.starts_with(b"com.calypso.tk.core.PersistenceException"));
        assert!(t.stack_trace.ends_with(b"\t... 12 more"));
        assert!(r.multiline);
    }

    #[test]
    fn traces_without_message_or_header() {
        let r = parse_record(b"2026-11-27 13:53:33,001 ERROR [main] [DS] boom\njava.lang.NullPointerException\n\tat a.B.c(B.java:1)");
        let t = r.trace.expect("trace");
        assert_eq!((s(t.error_type), t.error_message), (Some("java.lang.NullPointerException"), None));
        assert_eq!(r.message, b"boom");
        let r = parse_record(b"2026-11-27 13:53:33,001 ERROR [main] [DS] boom\n\tat a.B.c(B.java:1)");
        assert_eq!(r.trace.map(|t| t.stack_trace), Some(&b"\tat a.B.c(B.java:1)"[..]));
        let r = parse_record(b"2026-11-27 13:53:33,001 ERROR [main] [DS] boom\nException in thread \"main\" java.lang.Error: x\n\tat a.B.c(B.java:1)");
        assert_eq!(r.trace.and_then(|t| s(t.error_type)), Some("java.lang.Error"));
    }

    #[test]
    fn no_trace_keeps_everything_in_the_message() {
        let r = parse_record(b"2026-11-27 13:53:33,001 INFO [main] [DS] table:\ncom.calypso.x: 1\nrow 2");
        assert_eq!(r.trace, None);
        assert_eq!(r.message, b"table:\ncom.calypso.x: 1\nrow 2");
        let r = parse_record(b"orphan line\n\tat x.Y.z(Y.java:1)");
        assert_eq!(r.header, None);
        assert_eq!(r.message, b"orphan line");
    }
}
