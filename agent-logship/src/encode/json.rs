//! A minimal JSON writer into a reused `Vec<u8>`: strings escaped by a table lookup per byte
//! (runs of plain bytes copied at once), invalid UTF-8 replaced by U+FFFD.

/// For each byte: 0 = copy, `u` = `\u00XX`, else the letter after the backslash.
static ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[0x08] = b'b';
    t[0x0c] = b'f';
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t
};

/// Appends `s` as a JSON string (quotes included).
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    escaped(out, s);
    out.push(b'"');
}

/// Appends `s` escaped for the inside of a JSON string, invalid UTF-8 replaced by U+FFFD as
/// `String::from_utf8_lossy` does. One pass, eight bytes at a time: a word without a byte that
/// needs a look (controls, `"`, `\\`, non-ASCII) is skipped, otherwise the first such byte is
/// found from the word's flags and handled; plain bytes are copied in runs. A short string or
/// the tail of one is one padded word, so level names and loggers cost one check.
pub fn escaped(out: &mut Vec<u8>, b: &[u8]) {
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        let flags = look(word_at(b, i));
        if flags == 0 {
            i += 8;
            continue;
        }
        // The lowest flag is exact (see `look`), and padding is never flagged.
        i += (flags.trailing_zeros() / 8) as usize;
        let c = b[i];
        if c < 0x80 {
            out.extend_from_slice(&b[start..i]);
            write_escape(out, c, ESCAPE[usize::from(c)]);
            i += 1;
            start = i;
            continue;
        }
        // A multi-byte character: valid ones stay in the run; an invalid sequence becomes one
        // U+FFFD (its length as `Utf8Error::error_len` says; cut at the end: the rest).
        let window = &b[i..b.len().min(i + 4)];
        let width = utf8_width(c);
        match std::str::from_utf8(window) {
            Ok(_) => i += width.max(1),
            Err(e) if e.valid_up_to() >= width && width > 0 => i += width,
            Err(e) => {
                out.extend_from_slice(&b[start..i]);
                out.extend_from_slice("\u{fffd}".as_bytes());
                i += e.error_len().unwrap_or(window.len());
                start = i;
            }
        }
    }
    out.extend_from_slice(&b[start..]);
}

/// The eight bytes at `i` as a little-endian word; past the end, spaces (never flagged).
#[inline]
fn word_at(b: &[u8], i: usize) -> u64 {
    match b.get(i..i + 8) {
        Some(w) => u64::from_le_bytes(<[u8; 8]>::try_from(w).unwrap_or([b' '; 8])),
        None => {
            let mut w = [b' '; 8];
            let rest = &b[i..];
            w[..rest.len()].copy_from_slice(rest);
            u64::from_le_bytes(w)
        }
    }
}

/// A flag (the byte's high bit) for each byte of `w` that is a control, `"`, `\\` or not ASCII.
/// The classic "has a byte less than n" / "has a zero byte" word tricks: a borrow may flag bytes
/// above a flagged one wrongly, never below, so the lowest flag is exact.
#[inline]
fn look(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let control = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    (w & HIGH) | control | zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\')))
}

/// The length of the UTF-8 sequence a lead byte announces; 0 for a byte that cannot lead one.
fn utf8_width(lead: u8) -> usize {
    match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 0,
    }
}

fn write_escape(out: &mut Vec<u8>, c: u8, e: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    if e == b'u' {
        out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]]);
    } else {
        out.extend_from_slice(&[b'\\', e]);
    }
}

/// Appends `"key":` (the key is ours: plain ASCII, still escaped to be safe).
pub fn key(out: &mut Vec<u8>, k: &str) {
    string(out, k.as_bytes());
    out.push(b':');
}

/// Appends a number.
pub fn u64(out: &mut Vec<u8>, mut n: u64) {
    let mut b = [0u8; 20];
    let mut i = b.len();
    loop {
        i -= 1;
        b[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&b[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes() {
        let mut v = Vec::new();
        string(&mut v, b"a\"b\\c\n\t\x01\x7f\xff\xc3\xa9");
        assert_eq!(String::from_utf8(v).expect("utf8"), "\"a\\\"b\\\\c\\n\\t\\u0001\x7f\u{fffd}é\"");
        let mut v = Vec::new();
        for n in [0, 7, 10, 1234567890123, u64::MAX] {
            v.clear();
            u64(&mut v, n);
            assert_eq!(v, n.to_string().into_bytes());
        }
    }

    proptest! {
        #[test]
        fn serde_reads_back_what_we_write(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut v = Vec::new();
            string(&mut v, &bytes);
            let back: String = serde_json::from_slice(&v).expect("valid JSON");
            prop_assert_eq!(back, String::from_utf8_lossy(&bytes).into_owned());
        }

        /// Mostly plain text (the eight-byte skip) with specials, multi-byte characters and
        /// broken sequences anywhere, also right at word edges and at the end.
        #[test]
        fn log_like_text_reads_back(parts in prop::collection::vec(prop::sample::select(vec![
            &b"plain ascii text "[..], b"x", b"\"", b"\\", b"\n", b"\t", b"\x01", b"\x7f", "é".as_bytes(),
            "€".as_bytes(), "😀".as_bytes(), b"\xe2\x82", b"\xf0\x9f", b"\xff", b"\xc0\xaf", b"\xed\xa0\x80",
        ]), 0..40)) {
            let bytes = parts.concat();
            let mut v = Vec::new();
            string(&mut v, &bytes);
            let back: String = serde_json::from_slice(&v).expect("valid JSON");
            prop_assert_eq!(back, String::from_utf8_lossy(&bytes).into_owned());
        }
    }
}
