//! Which lines begin a record: the Calypso timestamp (hand-written, a few byte compares per
//! line) or a user regex (`AGENT_LOGSHIP_RECORD_START`).

use std::borrow::Cow;

/// Decides whether a line begins a new record.
#[derive(Debug, Clone, Default)]
pub enum RecordStart {
    /// `yyyy-MM-dd HH:mm:ss,SSS` at the start of the line (also `.` for `,` and `T` for the
    /// space), as Calypso's log4j pattern writes it.
    #[default]
    Timestamp,
    /// A line the regex matches (unanchored: write `^` to anchor it at the line start).
    Regex(regex_lite::Regex),
}

/// A record-start pattern that does not compile.
#[derive(Debug, thiserror::Error)]
pub enum RecordStartError {
    #[error("record start pattern {pattern:?} is not a valid regex: {source}")]
    BadRegex {
        pattern: String,
        #[source]
        source: regex_lite::Error,
    },
    #[error("record start pattern is empty")]
    Empty,
}

impl RecordStart {
    /// The user's pattern, compiled.
    pub fn regex(pattern: &str) -> Result<Self, RecordStartError> {
        if pattern.is_empty() {
            return Err(RecordStartError::Empty);
        }
        regex_lite::Regex::new(pattern)
            .map(RecordStart::Regex)
            .map_err(|source| RecordStartError::BadRegex { pattern: pattern.to_owned(), source })
    }

    /// Whether `line` (one line's text, no newline) begins a record.
    pub fn matches(&self, line: &[u8]) -> bool {
        match self {
            RecordStart::Timestamp => starts_with_timestamp(line),
            RecordStart::Regex(re) => {
                let text = match std::str::from_utf8(line) {
                    Ok(s) => Cow::Borrowed(s),
                    Err(_) => String::from_utf8_lossy(line),
                };
                re.is_match(&text)
            }
        }
    }
}

/// `yyyy-MM-dd HH:mm:ss,SSS` (or `T`, `.`) at the start of `line`.
pub fn starts_with_timestamp(line: &[u8]) -> bool {
    let Some(b) = line.get(..23) else { return false };
    let d = |i: usize| b[i].is_ascii_digit();
    d(0) && d(1)
        && d(2)
        && d(3)
        && b[4] == b'-'
        && d(5)
        && d(6)
        && b[7] == b'-'
        && d(8)
        && d(9)
        && (b[10] == b' ' || b[10] == b'T')
        && d(11)
        && d(12)
        && b[13] == b':'
        && d(14)
        && d(15)
        && b[16] == b':'
        && d(17)
        && d(18)
        && (b[19] == b',' || b[19] == b'.')
        && d(20)
        && d(21)
        && d(22)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_variants() {
        let s = RecordStart::Timestamp;
        assert!(s.matches(b"2026-11-27 13:53:32,123 INFO [main] x"));
        assert!(s.matches(b"2026-11-27T13:53:32.123"));
        assert!(s.matches(b"2026-11-27 13:53:32.123Z"));
        assert!(!s.matches(b"2026-11-27 13:53:32"));
        assert!(!s.matches(b"\tat com.calypso.X.y(X.java:1)"));
        assert!(!s.matches(b" 2026-11-27 13:53:32,123"));
        assert!(!s.matches(b"2026/11/27 13:53:32,123"));
        assert!(!s.matches(b""));
    }

    #[test]
    fn user_regex() {
        let s = RecordStart::regex(r"^\[\d+\]").expect("valid");
        assert!(s.matches(b"[12] hello"));
        assert!(!s.matches(b"x [12] hello"));
        assert!(s.matches(b"[1] caf\xff"));
    }

    #[test]
    fn bad_regex_names_the_pattern() {
        let e = RecordStart::regex("^(unclosed").expect_err("invalid");
        assert!(e.to_string().contains("^(unclosed"), "{e}");
        assert!(matches!(RecordStart::regex(""), Err(RecordStartError::Empty)));
    }
}
