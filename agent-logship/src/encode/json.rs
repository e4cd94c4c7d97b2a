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
    match std::str::from_utf8(s) {
        Ok(_) => escape(out, s),
        Err(_) => escape(out, String::from_utf8_lossy(s).as_bytes()),
    }
    out.push(b'"');
}

fn escape(out: &mut Vec<u8>, b: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let e = ESCAPE[usize::from(c)];
        if e == 0 {
            continue;
        }
        out.extend_from_slice(&b[start..i]);
        if e == b'u' {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(c >> 4)],
                HEX[usize::from(c & 15)],
            ]);
        } else {
            out.extend_from_slice(&[b'\\', e]);
        }
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
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
    }
}
