//! A file's identity from its content: the xxh3 hash of its first line, and a hash of a window of
//! bytes to verify that two files with the same first line really hold the same content. Pure.

use xxhash_rust::xxh3::xxh3_64;

/// The first line is hashed up to this many bytes: a file whose first line is longer is
/// fingerprinted by its first 4 KiB.
pub const FINGERPRINT_CAP: usize = 4096;

/// The window of bytes just before an offset that verifies a file at that offset (see
/// [`window_hash`]).
pub const WINDOW: u64 = 1024;

/// The fingerprint of a file whose first bytes are `head` (at least [`FINGERPRINT_CAP`] bytes or
/// the whole file): the hash of its first line, newline included, or of its first
/// [`FINGERPRINT_CAP`] bytes when that line is longer. `None` while the first line is incomplete
/// and the file shorter than the cap: the file is not read yet (its identity could still change).
/// Also returns how many bytes were hashed.
pub fn fingerprint(head: &[u8]) -> Option<(u64, usize)> {
    let head = &head[..head.len().min(FINGERPRINT_CAP)];
    let len = match head.iter().position(|b| *b == b'\n') {
        Some(nl) => nl + 1,
        None if head.len() == FINGERPRINT_CAP => FINGERPRINT_CAP,
        None => return None,
    };
    Some((xxh3_64(&head[..len]), len))
}

/// The fingerprint of a let-go file (deleted, or rotated away, and quiet) whose only line never
/// got its newline: the hash of all of it, which will not change any more. It differs from the
/// fingerprint the line would have had with its newline. `None` for an empty file.
pub fn final_fingerprint(head: &[u8]) -> Option<u64> {
    fingerprint(head).map(|(f, _)| f).or_else(|| (!head.is_empty()).then(|| xxh3_64(head)))
}

/// Where the verification window before `at` starts.
pub fn window_start(at: u64) -> u64 {
    at.saturating_sub(WINDOW)
}

/// The hash of the bytes `[window_start(at), at)`, given exactly those bytes.
pub fn window_hash(bytes: &[u8]) -> u64 {
    xxh3_64(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_only() {
        let (a, n) = fingerprint(b"hello\nworld\n").expect("complete line");
        assert_eq!(n, 6);
        assert_eq!(Some((a, 6)), fingerprint(b"hello\nother things"));
        assert_ne!(Some(a), fingerprint(b"hellO\n").map(|f| f.0));
        assert_eq!(fingerprint(b"no newline yet"), None);
        assert_eq!(fingerprint(b""), None);
    }

    #[test]
    fn a_let_go_file_is_known_by_all_of_it_when_its_line_never_ended() {
        let partial = final_fingerprint(b"died writing this").expect("not empty");
        assert_ne!(Some(partial), fingerprint(b"died writing this\n").map(|f| f.0));
        assert_ne!(Some(partial), final_fingerprint(b"died writing thi"));
        assert_eq!(final_fingerprint(b"a line\nmore"), fingerprint(b"a line\n").map(|f| f.0));
        assert_eq!(final_fingerprint(b""), None);
    }

    #[test]
    fn long_first_line_is_capped() {
        let long = vec![b'x'; FINGERPRINT_CAP + 10];
        let (a, n) = fingerprint(&long).expect("capped");
        assert_eq!(n, FINGERPRINT_CAP);
        assert_eq!(fingerprint(&long[..FINGERPRINT_CAP]).map(|f| f.0), Some(a));
        assert_eq!(fingerprint(&long[..FINGERPRINT_CAP - 1]), None);
    }
}
