//! Name patterns as users write them in settings (sensor patterns, secret variable names): `*`
//! is any run of characters, `?` any one, ASCII letter case ignored. Pure.

/// Whether `pattern` matches all of `text`, in linear time: on a mismatch only the last `*` is
/// retried, one character further (the classic greedy algorithm; enough since `*` matches
/// anything).
pub fn matches(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    let (mut p, mut t) = (0, 0);
    let mut retry: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                retry = Some((p, t));
                p += 1;
            }
            Some(c) if *c == b'?' || c.eq_ignore_ascii_case(&text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match retry {
                Some((star, from)) => {
                    p = star + 1;
                    t = from + 1;
                    retry = Some((star, from + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn stars_questions_and_case() {
        assert!(matches("*", ""));
        assert!(matches("A*B*C", "aXXbYYc"));
        assert!(!matches("A*B*C", "aXXbYY"));
        assert!(matches("?B", "ab"));
        assert!(!matches("?B", "b"));
        assert!(matches("*_KEY", "A_KEY_KEY"), "the star retries past a false start");
        assert!(matches("PIN", "pin"));
        assert!(!matches("PIN", "PINS"));
    }
}
