//! Java `.properties` text as `java.util.Properties.load` reads it (docs/agent-init.md,
//! checked against OpenJDK 17's `Properties.LineReader` and `loadConvert`): an encoder whose
//! output both `load(InputStream)` (ISO-8859-1) and `load(Reader)` read back exactly, and a
//! parser that keeps every line so a writer can change values and reproduce the rest byte for
//! byte.
//!
//! Writing: [`escape_key`] and [`escape_value`] for substituted text, [`ascii_only`] for text that
//! is already in properties syntax (template literals, comments). Their output is ASCII only, so
//! the two readers cannot disagree about it.
//!
//! Reading: [`Document::parse`] follows `LineReader` and `load0` rule for rule, including the
//! corners:
//! - line terminators are `\n`, `\r` and `\r\n`; a physical line ending in an odd number of
//!   backslashes continues on the next one, whose leading whitespace (space, tab, form feed) is
//!   dropped; a continuation onto a line that is empty or whitespace only ends the logical line
//!   there;
//! - a comment (`#` or `!` first after leading whitespace) never continues, whatever it ends
//!   with; a line that is nothing but whitespace and one backslash continues into the next line
//!   as if that line started the logical line (so if it is a comment, both vanish);
//! - at the end of the text a final odd backslash is dropped; a lone backslash as the last line
//!   (`\`, or `\` + `\n`/`\r` at the very end) is the entry `""` = `""` in Java, and is here too;
//! - the key ends at the first unescaped `=`, `:`, space, tab or form feed; then whitespace, at
//!   most one `=` or `:`, and whitespace again are the separator; trailing whitespace of the value
//!   is kept;
//! - escapes `\t \n \r \f \uXXXX` (exactly four hex digits, else an error), any other `\x` is `x`.
//!
//! The parser works on text, i.e. it reads like `load(Reader)`; `load(InputStream)` sees the same
//! for ASCII text. Two deliberate differences, both errors rather than silent guesses: a `\uXXXX`
//! escape that yields an unpaired UTF-16 surrogate is [`PropertiesError::LoneSurrogate`] (Java
//! keeps it in its string; Rust text cannot hold it), and [`Document::to_text`] writes every line
//! terminator as `\n`.

use std::fmt::Write as _;

/// Why properties text could not be decoded. Positions are 1-based; columns count chars. Each
/// message is one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PropertiesError {
    /// `\u` not followed by four hex digits (Java: IllegalArgumentException "Malformed \uxxxx
    /// encoding."). The position is that of the backslash.
    #[error("line {line} column {column}: malformed \\uXXXX escape")]
    MalformedUnicode { line: usize, column: usize },
    /// A `\uXXXX` escape yields half of a UTF-16 surrogate pair without the other half. The
    /// position is that of the escape's backslash.
    #[error("line {line} column {column}: \\uXXXX escape is an unpaired UTF-16 surrogate")]
    LoneSurrogate { line: usize, column: usize },
}

impl PropertiesError {
    /// Where: `(line, column)`, 1-based.
    pub fn position(&self) -> (usize, usize) {
        match self {
            PropertiesError::MalformedUnicode { line, column }
            | PropertiesError::LoneSurrogate { line, column } => (*line, *column),
        }
    }

    /// What, without the position.
    pub fn reason(&self) -> &'static str {
        match self {
            PropertiesError::MalformedUnicode { .. } => "malformed \\uXXXX escape",
            PropertiesError::LoneSurrogate { .. } => "\\uXXXX escape is an unpaired UTF-16 surrogate",
        }
    }
}

// ---- encoding -----------------------------------------------------------------------------------

/// Escapes a key: `\` first, then `=`, `:`, `#`, `!`, every space, tab/newline/CR/form-feed as
/// `\t \n \r \f`, any other char outside printable ASCII (0x20..=0x7E) as `\uXXXX` (4 upper-case
/// hex digits), chars above U+FFFF as a UTF-16 surrogate pair (`\uD83D\uDE00`).
pub fn escape_key(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 4);
    for c in s.chars() {
        escape_char(&mut out, c, true);
    }
    out
}

/// Escapes a value fragment like [`escape_key`], except spaces: only a space at the very start of
/// the value is escaped (`\ `), when `at_value_start` is true and it is the fragment's first char;
/// other spaces stay (Java keeps them, trailing ones included). `=`, `:`, `#`, `!` are escaped
/// anywhere, which both readers accept.
///
/// Pass `at_value_start = true` when nothing precedes the fragment in the value (also when
/// everything before it rendered empty), else a leading space would be taken as separator
/// whitespace and dropped.
pub fn escape_value(s: &str, at_value_start: bool) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 4);
    for (i, c) in s.chars().enumerate() {
        escape_char(&mut out, c, at_value_start && i == 0);
    }
    out
}

fn escape_char(out: &mut String, c: char, escape_space: bool) {
    match c {
        '\\' => out.push_str("\\\\"),
        '=' | ':' | '#' | '!' => {
            out.push('\\');
            out.push(c);
        }
        ' ' if escape_space => out.push_str("\\ "),
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\x0c' => out.push_str("\\f"),
        ' '..='~' => out.push(c),
        _ => push_unicode_escape(out, c),
    }
}

/// `\uXXXX` for each UTF-16 code unit of `c`.
fn push_unicode_escape(out: &mut String, c: char) {
    let mut units = [0u16; 2];
    for unit in c.encode_utf16(&mut units) {
        // Writing to a String cannot fail.
        let _ = write!(out, "\\u{unit:04X}");
    }
}

/// Makes already-escaped properties text ASCII only: every char outside printable ASCII becomes
/// `\uXXXX` (a surrogate pair above U+FFFF), except the line terminators `\n` `\r` and the
/// properties whitespace tab and form feed, which are kept as they are (they are ASCII, so both
/// readers agree on them, and as `\u0009`/`\u000C` they would stop being separators). For
/// template literal text and comments, which are already in properties syntax: the decoded
/// meaning is unchanged.
///
/// A char escaped by a backslash (`\é`, which Java reads as `é`) becomes `\u00E9` without that
/// backslash, since `\\u00E9` would read as a backslash followed by `u00E9`. So apply this to
/// whole lines, or to fragments that do not follow an odd number of backslashes.
pub fn ascii_only(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + raw.len() / 4);
    let mut odd_backslashes = false;
    for c in raw.chars() {
        match c {
            '\n' | '\r' => {
                out.push(c);
                odd_backslashes = false;
            }
            '\t' | '\x0c' | ' '..='~' => {
                out.push(c);
                odd_backslashes = c == '\\' && !odd_backslashes;
            }
            _ => {
                if odd_backslashes {
                    out.pop();
                }
                push_unicode_escape(&mut out, c);
                odd_backslashes = false;
            }
        }
    }
    out
}

// ---- decoding -----------------------------------------------------------------------------------

/// A char of a logical line, with where it came from: byte offset in the entry's raw text (only
/// meaningful in [`Document::parse`]) and its line and column.
#[derive(Debug, Clone, Copy)]
struct LChar {
    c: char,
    raw: usize,
    line: usize,
    column: usize,
}

/// Decodes escapes as `Properties.load` does (`\t \n \f \r \\ \uXXXX`; any other `\x` is `x`; a
/// malformed `\u` is an error), after joining continuation lines as Java's line reader does: a
/// backslash that ends a line (an odd run of backslashes before `\n`, `\r` or `\r\n`) is dropped
/// with the terminator and the next line's leading spaces, tabs and form feeds; a final odd
/// backslash at the end of `raw` is dropped. So `unescape(&entry.value_raw)` is the value Java
/// reads.
///
/// A line terminator not preceded by an odd backslash is kept as a literal char (such text never
/// occurs inside a value that [`Document::parse`] produced). Error positions are relative to
/// `raw`: line 1 column 1 is its first char.
pub fn unescape(raw: &str) -> Result<String, PropertiesError> {
    unescape_at(raw, 1, 1)
}

/// [`unescape`] with `raw` starting at `line`:`column` of some text, for error positions.
fn unescape_at(raw: &str, line: usize, column: usize) -> Result<String, PropertiesError> {
    decode(&join_continuations(raw, line, column))
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c')
}

fn join_continuations(raw: &str, mut line: usize, mut column: usize) -> Vec<LChar> {
    let mut out = Vec::with_capacity(raw.len());
    let mut odd_backslashes = false;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' || c == '\r' {
            if odd_backslashes {
                out.pop();
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                line += 1;
                column = 1;
                while chars.next_if(|&c| is_blank(c)).is_some() {
                    column += 1;
                }
                odd_backslashes = false;
                continue;
            }
            out.push(LChar { c, raw: 0, line, column });
            if c == '\r' && chars.peek() == Some(&'\n') {
                chars.next();
                out.push(LChar { c: '\n', raw: 0, line, column: column + 1 });
            }
            line += 1;
            column = 1;
            continue;
        }
        out.push(LChar { c, raw: 0, line, column });
        column += 1;
        odd_backslashes = c == '\\' && !odd_backslashes;
    }
    if odd_backslashes {
        out.pop();
    }
    out
}

/// `loadConvert`, on a joined logical line (or part of one), with UTF-16 surrogate pairs from
/// `\uXXXX` escapes combined into one char.
fn decode(chars: &[LChar]) -> Result<String, PropertiesError> {
    let mut out = String::with_capacity(chars.len());
    // A high surrogate from an escape, waiting for its low half, and where its escape starts.
    let mut high: Option<(u16, &LChar)> = None;
    let lone = |at: &LChar| PropertiesError::LoneSurrogate { line: at.line, column: at.column };
    let mut k = 0;
    while k < chars.len() {
        let here = &chars[k];
        let c = if here.c != '\\' {
            k += 1;
            here.c
        } else if let Some(next) = chars.get(k + 1) {
            if next.c == 'u' {
                let unit = chars
                    .get(k + 2..k + 6)
                    .and_then(|hex| {
                        hex.iter().try_fold(0u16, |acc, d| Some((acc << 4) | d.c.to_digit(16)? as u16))
                    })
                    .ok_or(PropertiesError::MalformedUnicode { line: here.line, column: here.column })?;
                k += 6;
                match unit {
                    0xD800..=0xDBFF => {
                        if let Some((_, at)) = high {
                            return Err(lone(at));
                        }
                        high = Some((unit, here));
                        continue;
                    }
                    0xDC00..=0xDFFF => {
                        let Some((h, _)) = high.take() else { return Err(lone(here)) };
                        let code = 0x10000 + ((u32::from(h) - 0xD800) << 10) + (u32::from(unit) - 0xDC00);
                        char::from_u32(code).ok_or(lone(here))?
                    }
                    // Not a surrogate, so a valid char.
                    _ => char::from_u32(u32::from(unit)).ok_or(lone(here))?,
                }
            } else {
                k += 2;
                match next.c {
                    't' => '\t',
                    'n' => '\n',
                    'r' => '\r',
                    'f' => '\x0c',
                    other => other,
                }
            }
        } else {
            // A final lone backslash: Java's line reader never lets one through.
            k += 1;
            continue;
        };
        if let Some((_, at)) = high {
            return Err(lone(at));
        }
        out.push(c);
    }
    match high {
        Some((_, at)) => Err(lone(at)),
        None => Ok(out),
    }
}

// ---- the line-preserving parser -----------------------------------------------------------------

/// A parsed .properties text that keeps every line, so a writer can reproduce it byte for byte
/// (up to line terminators, see [`Document::to_text`]).
///
/// Physical lines are what the text splits into at `\n`, `\r` and `\r\n`, so a text ending in a
/// terminator has a last, empty [`Line::Other`] and an empty text is one empty line. An entry
/// that continues over several physical lines is one [`Line::Entry`].
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub lines: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// A physical line that gives no entry, raw, without its terminator: a blank line, a comment
    /// line (`#` or `!` after optional leading whitespace), or a line of whitespace and one
    /// backslash that continues into a blank line, a comment or the end of the text.
    Other {
        raw: String,
        line: usize,
    },
    Entry(Entry),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key, decoded (`a\ b` -> `a b`).
    pub key: String,
    /// The raw text from the start of the logical line up to where the value starts: leading
    /// whitespace, the raw key, the separator and whitespace around it (e.g. `  DBURL = `). It
    /// spans lines when the key or separator does (a continuation is kept as `\` + `\n` + the
    /// next line's leading whitespace).
    pub head: String,
    /// The raw value text (escapes not decoded), including any continuation sequences (`\` +
    /// `\n` + the next line's leading whitespace) exactly as written except that the terminator
    /// is always `\n`, without the final line terminator. A continuation right after the
    /// separator belongs here, not to `head`. [`unescape`] of it is the value.
    pub value_raw: String,
    /// 1-based line number where the entry starts.
    pub line: usize,
    /// 1-based column (in chars) where `value_raw` starts, on line [`Entry::value_line`].
    pub value_column: usize,
}

impl Entry {
    /// The line where `value_raw` starts: [`Entry::line`] plus the line breaks in `head`.
    pub fn value_line(&self) -> usize {
        self.line + self.head.matches('\n').count()
    }

    /// The decoded value, as Java reads it; errors carry positions in the whole text.
    pub fn value(&self) -> Result<String, PropertiesError> {
        unescape_at(&self.value_raw, self.value_line(), self.value_column)
    }

    /// The entry's raw text: `head` then `value_raw`.
    pub fn raw(&self) -> String {
        let mut s = String::with_capacity(self.head.len() + self.value_raw.len());
        s.push_str(&self.head);
        s.push_str(&self.value_raw);
        s
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Terminator {
    None,
    Lf,
    Cr,
    CrLf,
}

struct Physical<'a> {
    text: &'a str,
    terminator: Terminator,
}

fn physical_lines(text: &str) -> Vec<Physical<'_>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut k) = (0, 0);
    while k < bytes.len() {
        let terminator = match bytes[k] {
            b'\n' => Terminator::Lf,
            b'\r' if bytes.get(k + 1) == Some(&b'\n') => Terminator::CrLf,
            b'\r' => Terminator::Cr,
            _ => {
                k += 1;
                continue;
            }
        };
        out.push(Physical { text: &text[start..k], terminator });
        k += if terminator == Terminator::CrLf { 2 } else { 1 };
        start = k;
    }
    out.push(Physical { text: &text[start..], terminator: Terminator::None });
    out
}

/// One logical line being read: its raw text (terminators as `\n`) and its chars with their
/// origin.
struct Logical {
    raw: String,
    chars: Vec<LChar>,
}

/// Reads the logical line that starts at physical line `start` as `LineReader.readLine` does.
/// Returns the index of the first physical line after it, and the logical line, or `None` when
/// the lines `start..next` give no entry (blank, comment, empty continuation).
fn read_logical(phys: &[Physical<'_>], start: usize) -> (usize, Option<Logical>) {
    let mut logical = Logical { raw: String::new(), chars: Vec::new() };
    let mut i = start;
    loop {
        let p = &phys[i];
        if i > start {
            logical.raw.push('\n');
        }
        let rest = p.text.trim_start_matches(is_blank);
        let blanks = &p.text[..p.text.len() - rest.len()];
        logical.raw.push_str(blanks);
        if rest.is_empty() {
            // A blank line is skipped at the start of a logical line; after a continuation it
            // ends the logical line, or, when that is still empty, is skipped too.
            return (i + 1, (!logical.chars.is_empty()).then_some(logical));
        }
        if logical.chars.is_empty() && (rest.starts_with('#') || rest.starts_with('!')) {
            // A comment never continues.
            return (i + 1, None);
        }
        let first_column = blanks.chars().count() + 1;
        let mut odd_backslashes = false;
        for (k, c) in rest.chars().enumerate() {
            logical.chars.push(LChar { c, raw: logical.raw.len(), line: i + 1, column: first_column + k });
            logical.raw.push(c);
            odd_backslashes = c == '\\' && !odd_backslashes;
        }
        if !odd_backslashes {
            return (i + 1, Some(logical));
        }
        // The backslash at the end of the line is not part of the logical line.
        logical.chars.pop();
        let next_is_last_and_empty = i + 2 == phys.len() && phys[i + 1].text.is_empty();
        match p.terminator {
            // The end of the text: Java keeps even an empty logical line (entry "" = "").
            Terminator::None => return (i + 1, Some(logical)),
            // The terminator is the last thing in the text: the same. The empty last line stays
            // a line of its own, so a writer replacing this value keeps the final newline. For
            // `\r\n`, Java continues over the `\r`, skips the `\n` and meets the end with an
            // empty or non-empty line: no entry, or the same entry.
            _ if next_is_last_and_empty => {
                let empty_crlf = p.terminator == Terminator::CrLf && logical.chars.is_empty();
                return (i + 1, (!empty_crlf).then_some(logical));
            }
            _ => i += 1,
        }
    }
}

/// `load0`'s split of a logical line: the key's length and where the value starts.
fn split_key(chars: &[LChar]) -> (usize, usize) {
    let limit = chars.len();
    let (mut key_len, mut value_start) = (0, limit);
    let mut has_separator = false;
    let mut odd_backslashes = false;
    while key_len < limit {
        let c = chars[key_len].c;
        if !odd_backslashes && (c == '=' || c == ':') {
            value_start = key_len + 1;
            has_separator = true;
            break;
        }
        if !odd_backslashes && is_blank(c) {
            value_start = key_len + 1;
            break;
        }
        odd_backslashes = c == '\\' && !odd_backslashes;
        key_len += 1;
    }
    while value_start < limit {
        let c = chars[value_start].c;
        if !is_blank(c) {
            if !has_separator && (c == '=' || c == ':') {
                has_separator = true;
            } else {
                break;
            }
        }
        value_start += 1;
    }
    (key_len, value_start)
}

fn entry(logical: Logical, line: usize) -> Result<Entry, PropertiesError> {
    let Logical { raw, chars } = logical;
    let (key_len, value_start) = split_key(&chars);
    let key = decode(&chars[..key_len])?;
    // The value's raw text starts right after the last char of the head; an empty logical line
    // (a lone backslash) has its backslash as value.
    let split = match value_start.checked_sub(1).map(|k| chars[k]) {
        Some(last) => last.raw + last.c.len_utf8(),
        None => raw.rfind('\\').unwrap_or(raw.len()),
    };
    let (head, value_raw) = raw.split_at(split);
    let value_column = head.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Ok(Entry { key, head: head.to_owned(), value_raw: value_raw.to_owned(), line, value_column })
}

impl Document {
    /// Splits `text` into logical lines by Java's rules (see the module documentation). Keys are
    /// decoded here, so the only errors are a malformed `\u` or an unpaired surrogate in a key,
    /// with its line and column; values are decoded by [`Document::pairs`] / [`Entry::value`].
    pub fn parse(text: &str) -> Result<Document, PropertiesError> {
        let phys = physical_lines(text);
        let mut lines = Vec::new();
        let mut i = 0;
        while i < phys.len() {
            let (next, logical) = read_logical(&phys, i);
            match logical {
                Some(logical) => lines.push(Line::Entry(entry(logical, i + 1)?)),
                None => {
                    lines.extend((i..next).map(|k| Line::Other { raw: phys[k].text.to_owned(), line: k + 1 }))
                }
            }
            i = next;
        }
        Ok(Document { lines })
    }

    /// Reproduces the text: the lines (an entry as `head` + `value_raw`) joined with `\n`. Line
    /// terminators are normalised to `\n`, also inside continued entries, so a text with only
    /// `\n` terminators comes back byte for byte. (Normalising changes what Java reads in one
    /// degenerate case only: a last line of whitespace and one backslash ended by `\r\n`, no
    /// entry, becomes one ended by `\n`, which Java reads as the entry `""` = `""`.)
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (k, line) in self.lines.iter().enumerate() {
            if k > 0 {
                out.push('\n');
            }
            match line {
                Line::Other { raw, .. } => out.push_str(raw),
                Line::Entry(e) => {
                    out.push_str(&e.head);
                    out.push_str(&e.value_raw);
                }
            }
        }
        out
    }

    /// The entries.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.lines.iter().filter_map(|l| match l {
            Line::Entry(e) => Some(e),
            Line::Other { .. } => None,
        })
    }

    /// The decoded (key, value) pairs in order, as `Properties.load` reads them (collected into a
    /// map, the last duplicate wins, as in Java; here all are kept in order).
    pub fn pairs(&self) -> Result<Vec<(String, String)>, PropertiesError> {
        self.entries().map(|e| Ok((e.key.clone(), e.value()?))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        Document::parse(text).unwrap().pairs().unwrap()
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_owned(), v.to_owned())
    }

    fn entries(text: &str) -> Vec<Entry> {
        Document::parse(text).unwrap().entries().cloned().collect()
    }

    // ---- encoding ---------------------------------------------------------------------------

    #[test]
    fn escape_key_escapes_backslash_first_and_every_special() {
        assert_eq!(escape_key(r"a\b"), r"a\\b");
        assert_eq!(escape_key(r"\u0041"), r"\\u0041");
        assert_eq!(escape_key("a=b:c#d!e"), r"a\=b\:c\#d\!e");
        assert_eq!(escape_key(" a b "), r"\ a\ b\ ");
        assert_eq!(escape_key("\t\n\r\x0c"), r"\t\n\r\f");
    }

    #[test]
    fn non_ascii_becomes_padded_upper_case_unicode_escapes() {
        assert_eq!(escape_key("é"), r"\u00E9");
        assert_eq!(escape_key("\u{1}\u{7f}"), r"\u0001\u007F");
        assert_eq!(escape_key("日本"), r"\u65E5\u672C");
        assert_eq!(escape_key("😀"), r"\uD83D\uDE00");
        assert_eq!(escape_value("x😀", false), r"x\uD83D\uDE00");
    }

    #[test]
    fn escape_value_escapes_only_a_leading_space() {
        assert_eq!(escape_value("  a b  ", true), r"\  a b  ");
        assert_eq!(escape_value("  a b  ", false), "  a b  ");
        assert_eq!(escape_value("a=b:c#d!e", false), r"a\=b\:c\#d\!e");
        assert_eq!(escape_value(r"C:\new\dir", true), r"C\:\\new\\dir");
        assert_eq!(escape_value("", true), "");
        assert_eq!(escape_value("\tx", true), r"\tx");
    }

    #[test]
    fn escaped_values_read_back() {
        for v in
            ["", " ", "  lead and trail  ", r"C:\new\dir", "a=b", "#!:=", "\t\n\r\x0c", "é😀日", r"\u0041"]
        {
            let line = format!("{}={}", escape_key("k ey"), escape_value(v, true));
            assert!(line.is_ascii(), "{line}");
            assert_eq!(pairs(&line), [pair("k ey", v)], "{line}");
        }
    }

    #[test]
    fn ascii_only_escapes_non_ascii_and_keeps_structure() {
        assert_eq!(
            ascii_only("k = é # x\n# ü\r\n\tk2\x0c:😀"),
            "k = \\u00E9 # x\n# \\u00FC\r\n\tk2\x0c:\\uD83D\\uDE00"
        );
        assert_eq!(ascii_only("a\u{1}b\u{7f}"), r"a\u0001b\u007F");
        // An escaped non-ASCII char loses its backslash; an escaped backslash does not.
        assert_eq!(ascii_only(r"k=\é"), r"k=\u00E9");
        assert_eq!(ascii_only(r"k=\\é"), r"k=\\\u00E9");
        assert_eq!(ascii_only("k=\\\n\\é"), "k=\\\n\\u00E9");
        for raw in [r"k=\é", r"k=\\é", r"k=\\\é", "k=a\\\n  é", "é\\ é=ü"] {
            assert_eq!(pairs(&ascii_only(raw)), pairs(raw), "{raw}");
        }
    }

    // ---- decoding ---------------------------------------------------------------------------

    #[test]
    fn unescape_as_load_convert() {
        assert_eq!(unescape(r"\t\n\r\f\\").unwrap(), "\t\n\r\x0c\\");
        assert_eq!(unescape(r"\x\y\=\:\ \#").unwrap(), "xy=: #");
        assert_eq!(unescape(r"\u0041\u00e9\u00E9").unwrap(), "Aéé");
        assert_eq!(unescape(r"\uD83D\uDE00").unwrap(), "😀");
        assert_eq!(unescape(r"C:\new\dir").unwrap(), "C:\newdir");
        assert_eq!(unescape(r"C:\x\y").unwrap(), "C:xy");
    }

    #[test]
    fn malformed_unicode_escapes_are_errors_with_positions() {
        let malformed = |line, column| Err(PropertiesError::MalformedUnicode { line, column });
        assert_eq!(unescape(r"ab\u12"), malformed(1, 3));
        assert_eq!(unescape(r"ab\u12G4"), malformed(1, 3));
        assert_eq!(unescape(r"\u"), malformed(1, 1));
        assert_eq!(unescape("x\\\n  \\u+123"), malformed(2, 3));
        assert_eq!(
            PropertiesError::MalformedUnicode { line: 2, column: 3 }.to_string(),
            r"line 2 column 3: malformed \uXXXX escape"
        );
        // `\\u` is an escaped backslash and a `u`.
        assert_eq!(unescape(r"\\u12").unwrap(), r"\u12");
    }

    #[test]
    fn unpaired_surrogates_are_errors() {
        let lone = |line, column| Err(PropertiesError::LoneSurrogate { line, column });
        assert_eq!(unescape(r"\uD83D"), lone(1, 1));
        assert_eq!(unescape(r"a\uDE00"), lone(1, 2));
        assert_eq!(unescape(r"\uD83Dx"), lone(1, 1));
        assert_eq!(unescape(r"\uD83D\uD83D\uDE00"), lone(1, 1));
    }

    #[test]
    fn unescape_joins_continuations() {
        assert_eq!(unescape("a\\\n   b").unwrap(), "ab");
        assert_eq!(unescape("a\\\r\n\t\x0c b").unwrap(), "ab");
        assert_eq!(unescape("a\\\rb").unwrap(), "ab");
        // Even backslashes do not continue.
        assert_eq!(unescape("a\\\\\nb").unwrap(), "a\\\nb");
        // An escape can be split by a continuation.
        assert_eq!(unescape("\\u00\\\n  41").unwrap(), "A");
        // A final odd backslash is dropped, as at the end of a file.
        assert_eq!(unescape("ab\\").unwrap(), "ab");
        assert_eq!(unescape("ab\\\\\\").unwrap(), "ab\\");
    }

    // ---- parsing ----------------------------------------------------------------------------

    #[test]
    fn key_ends_at_first_unescaped_separator_or_whitespace() {
        assert_eq!(pairs("a b c"), [pair("a", "b c")]);
        assert_eq!(pairs("a=b=c"), [pair("a", "b=c")]);
        assert_eq!(pairs("a:b"), [pair("a", "b")]);
        assert_eq!(pairs("a  =  b  "), [pair("a", "b  ")]);
        assert_eq!(pairs("a \t= :b"), [pair("a", ":b")]);
        assert_eq!(pairs("a : = b"), [pair("a", "= b")]);
        assert_eq!(pairs(r"a\ b\=c\:d = v"), [pair("a b=c:d", "v")]);
        assert_eq!(pairs(r"a\\=b"), [pair(r"a\", "b")]);
        assert_eq!(pairs("key"), [pair("key", "")]);
        assert_eq!(pairs("key   "), [pair("key", "")]);
        assert_eq!(pairs("=v"), [pair("", "v")]);
        assert_eq!(pairs("  \t\x0ckey=v"), [pair("key", "v")]);
        // Only space, tab and form feed are whitespace.
        assert_eq!(pairs("a\u{a0}b=c"), [pair("a\u{a0}b", "c")]);
    }

    #[test]
    fn head_and_value_raw_split_the_line() {
        let e = &entries("  DBURL = jdbc:x\\:1 ")[0];
        assert_eq!((e.head.as_str(), e.value_raw.as_str()), ("  DBURL = ", "jdbc:x\\:1 "));
        assert_eq!((e.key.as_str(), e.line, e.value_column, e.value_line()), ("DBURL", 1, 11, 1));
        let e = &entries("k")[0];
        assert_eq!((e.head.as_str(), e.value_raw.as_str(), e.value_column), ("k", "", 2));
    }

    #[test]
    fn windows_path_unescaped_is_garbage_as_in_java() {
        assert_eq!(pairs(r"path=C:\new\dir"), [pair("path", "C:\newdir")]);
        assert_eq!(pairs(r"path=C:\x\y"), [pair("path", "C:xy")]);
        assert_eq!(pairs(r"path=C:\\new\\dir"), [pair("path", r"C:\new\dir")]);
    }

    #[test]
    fn comments_and_blank_lines() {
        let doc = Document::parse("# c1\n  ! c2\n\n \t \nk=v # not a comment\n#k2=v2").unwrap();
        assert_eq!(doc.pairs().unwrap(), [pair("k", "v # not a comment")]);
        assert_eq!(doc.lines.len(), 6);
        assert_eq!(doc.lines[1], Line::Other { raw: "  ! c2".to_owned(), line: 2 });
        // A comment never continues, whatever it ends with.
        assert_eq!(pairs("# c \\\nk=v"), [pair("k", "v")]);
        assert_eq!(pairs("! c \\\\\\\nk=v"), [pair("k", "v")]);
        // `#` later in a line, or in a continued line, is ordinary.
        assert_eq!(pairs("k#=v"), [pair("k#", "v")]);
        assert_eq!(pairs("k=\\\n  #v"), [pair("k", "#v")]);
    }

    #[test]
    fn continuations() {
        assert_eq!(pairs("k=a\\\n   b\\\n\tc"), [pair("k", "abc")]);
        assert_eq!(pairs("k=a\\\r\n   b\\\r  c\nx=y"), [pair("k", "abc"), pair("x", "y")]);
        // An even number of backslashes does not continue.
        assert_eq!(pairs("k=a\\\\\nb"), [pair("k", "a\\"), pair("b", "")]);
        // The key and the separator can continue too.
        assert_eq!(pairs("ke\\\n  y\\\n   = v"), [pair("key", "v")]);
        assert_eq!(pairs("k = \\\n   v"), [pair("k", "v")]);
        // A continuation onto a blank line ends the logical line.
        assert_eq!(pairs("k=a\\\n\nx=y"), [pair("k", "a"), pair("x", "y")]);
        assert_eq!(pairs("k=a\\\n  \t\nx=y"), [pair("k", "a"), pair("x", "y")]);
        // A continued line is not a comment.
        assert_eq!(pairs("k=\\\n#v\n!x"), [pair("k", "#v")]);
    }

    #[test]
    fn continued_entry_keeps_raw_text_and_positions() {
        let text = "a=1\n  key \\\n  = v1\\\n    v2\nb=2";
        let doc = Document::parse(text).unwrap();
        assert_eq!(doc.to_text(), text);
        let e = doc.entries().nth(1).unwrap();
        assert_eq!(e.head, "  key \\\n  = ");
        assert_eq!(e.value_raw, "v1\\\n    v2");
        assert_eq!((e.line, e.value_line(), e.value_column), (2, 3, 5));
        assert_eq!(e.value().unwrap(), "v1v2");
        assert_eq!(doc.entries().nth(2).unwrap().line, 5);
        // A continuation right after the separator belongs to the value.
        let e = &entries("k=\\\n  v")[0];
        assert_eq!((e.head.as_str(), e.value_raw.as_str()), ("k=", "\\\n  v"));
    }

    #[test]
    fn end_of_text_corners_as_java() {
        // A final odd backslash is dropped, with or without a terminator after it.
        assert_eq!(pairs("k=v\\"), [pair("k", "v")]);
        assert_eq!(pairs("k=v\\\n"), [pair("k", "v")]);
        assert_eq!(pairs("k=v\\\r\n"), [pair("k", "v")]);
        assert_eq!(pairs("k=v\\\n   "), [pair("k", "v")]);
        // The final empty line stays its own line, so replacing the value keeps the newline.
        let doc = Document::parse("k=v\\\n").unwrap();
        assert_eq!(doc.lines.len(), 2);
        assert_eq!(doc.to_text(), "k=v\\\n");
        // A lone backslash as last line is the entry "" = "" in Java...
        assert_eq!(pairs("\\"), [pair("", "")]);
        assert_eq!(pairs("a=b\n  \\"), [pair("a", "b"), pair("", "")]);
        assert_eq!(pairs("  \\\n"), [pair("", "")]);
        assert_eq!(pairs("\\\r"), [pair("", "")]);
        // ... but not when more follows, nor over `\r\n`.
        assert_eq!(pairs("\\\r\n"), []);
        assert_eq!(pairs("\\\n  "), []);
        assert_eq!(pairs("\\\n\n"), []);
        assert_eq!(pairs("\\\n# c\nk=v"), [pair("k", "v")]);
        assert_eq!(pairs("\\\n\\\nk=v"), [pair("k", "v")]);
        let doc = Document::parse("\\\n# c").unwrap();
        assert!(doc.lines.iter().all(|l| matches!(l, Line::Other { .. })), "{doc:?}");
    }

    #[test]
    fn terminators_are_normalised() {
        let doc = Document::parse("a=1\r\nb=2\rc=3\\\r\n  4\n").unwrap();
        assert_eq!(doc.pairs().unwrap(), [pair("a", "1"), pair("b", "2"), pair("c", "34")]);
        assert_eq!(doc.to_text(), "a=1\nb=2\nc=3\\\n  4\n");
        assert_eq!(Document::parse("").unwrap().lines, [Line::Other { raw: String::new(), line: 1 }]);
    }

    #[test]
    fn duplicates_are_all_kept_in_order() {
        assert_eq!(pairs("k=1\nk=2"), [pair("k", "1"), pair("k", "2")]);
    }

    #[test]
    fn unicode_escapes_in_keys_and_values() {
        assert_eq!(pairs(r"\u006B\u00E9y=\uD83D\uDE00 \u65e5"), [pair("kéy", "😀 日")]);
        assert_eq!(pairs("é 日本=😀"), [pair("é", "日本=😀")]);
    }

    #[test]
    fn malformed_escape_in_key_fails_parse_in_value_fails_pairs() {
        assert_eq!(
            Document::parse("a=1\n  k\\u12x=v"),
            Err(PropertiesError::MalformedUnicode { line: 2, column: 4 })
        );
        assert_eq!(Document::parse("k\\uD800=v"), Err(PropertiesError::LoneSurrogate { line: 1, column: 2 }));
        let doc = Document::parse("a=1\nk = x\\\n   y\\u00").unwrap();
        assert_eq!(doc.pairs(), Err(PropertiesError::MalformedUnicode { line: 3, column: 5 }));
        let doc = Document::parse("k =  \\u00").unwrap();
        assert_eq!(doc.pairs(), Err(PropertiesError::MalformedUnicode { line: 1, column: 6 }));
    }
}
