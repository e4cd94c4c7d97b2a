//! Authentication as the security layer of Elasticsearch checks it: `Authorization: Basic
//! base64(user:password)` or `Authorization: ApiKey KEY`. The secrets are never shown: not in
//! `Debug`, not in the 401 reasons (which name the user, as Elasticsearch does, never the
//! password).

use std::fmt;

/// The credentials the double accepts.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    Basic {
        user: String,
        password: String,
    },
    /// The key as the client sends it after `ApiKey ` (Elasticsearch's `encoded` form:
    /// base64 of `id:api_key`).
    ApiKey(String),
    /// AWS Signature Version 4 with this key, as Amazon OpenSearch Service checks it: checked
    /// once the body is read ([`super::sigv4`]), not here.
    SigV4(super::sigv4::SigV4Key),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Basic { user, .. } => write!(f, "Basic {{ user: {user:?}, password: *** }}"),
            Auth::ApiKey(_) => f.write_str("ApiKey(***)"),
            Auth::SigV4(key) => key.fmt(f),
        }
    }
}

/// Why a request is not authenticated (the reason of the 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("missing authentication credentials for REST request [{0}]")]
    Missing(String),
    #[error("unable to authenticate user [{user}] for REST request [{path}]")]
    WrongUser { user: String, path: String },
    #[error(
        "unable to authenticate with provided credentials and anonymous access is not allowed for this request"
    )]
    WrongKey,
}

/// Checks the `Authorization` header of a request for `path`.
pub fn check(expected: Option<&Auth>, header: Option<&[u8]>, path: &str) -> Result<(), Denied> {
    let Some(expected) = expected.filter(|a| !matches!(a, Auth::SigV4(_))) else {
        return Ok(());
    };
    let header = header.and_then(|h| std::str::from_utf8(h).ok()).map(str::trim);
    let Some((scheme, token)) = header.and_then(|h| h.split_once(' ')) else {
        return Err(Denied::Missing(path.to_owned()));
    };
    let token = token.trim();
    match (expected, scheme.to_ascii_lowercase().as_str()) {
        (Auth::Basic { user, password }, "basic") => {
            let decoded = base64_decode(token).and_then(|b| String::from_utf8(b).ok());
            let (given_user, given_password) =
                decoded.as_deref().and_then(|d| d.split_once(':')).unwrap_or(("", ""));
            if given_user == user && given_password == password {
                Ok(())
            } else {
                Err(Denied::WrongUser { user: given_user.to_owned(), path: path.to_owned() })
            }
        }
        (Auth::ApiKey(key), "apikey") if token == key => Ok(()),
        (Auth::ApiKey(_), "apikey") => Err(Denied::WrongKey),
        (Auth::Basic { .. }, "apikey") => Err(Denied::WrongKey),
        (_, "basic") => {
            let decoded = base64_decode(token).and_then(|b| String::from_utf8(b).ok());
            let user = decoded.as_deref().and_then(|d| d.split_once(':')).map_or("", |(u, _)| u);
            Err(Denied::WrongUser { user: user.to_owned(), path: path.to_owned() })
        }
        _ => Err(Denied::Missing(path.to_owned())),
    }
}

/// Standard base64 (padding optional); `None` when it is not base64.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xFF).ok()?);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic() -> Auth {
        Auth::Basic { user: "elastic".into(), password: "s3cret".into() }
    }

    #[test]
    fn basic_credentials() {
        // base64("elastic:s3cret")
        let good = b"Basic ZWxhc3RpYzpzM2NyZXQ=";
        assert_eq!(check(Some(&basic()), Some(good), "/_bulk"), Ok(()));
        assert_eq!(
            check(Some(&basic()), Some(b"basic ZWxhc3RpYzpzM2NyZXQ"), "/"),
            Ok(()),
            "any case, no padding"
        );
        // base64("elastic:wrong")
        let e = check(Some(&basic()), Some(b"Basic ZWxhc3RpYzp3cm9uZw=="), "/_bulk").expect_err("wrong");
        assert_eq!(e.to_string(), "unable to authenticate user [elastic] for REST request [/_bulk]");
        let e = check(Some(&basic()), None, "/").expect_err("missing");
        assert_eq!(e.to_string(), "missing authentication credentials for REST request [/]");
        assert_eq!(check(None, None, "/"), Ok(()), "no auth configured");
    }

    #[test]
    fn api_keys() {
        let key = Auth::ApiKey("a2V5aWQ6a2V5".into());
        assert_eq!(check(Some(&key), Some(b"ApiKey a2V5aWQ6a2V5"), "/"), Ok(()));
        assert_eq!(check(Some(&key), Some(b"ApiKey other"), "/"), Err(Denied::WrongKey));
        assert!(matches!(
            check(Some(&key), Some(b"Basic ZWxhc3RpYzpzM2NyZXQ="), "/"),
            Err(Denied::WrongUser { .. })
        ));
    }

    #[test]
    fn secrets_are_not_shown() {
        let shown = format!("{:?} {:?}", basic(), Auth::ApiKey("k3y".into()));
        assert!(!shown.contains("s3cret") && !shown.contains("k3y"), "{shown}");
    }

    #[test]
    fn base64() {
        assert_eq!(base64_decode("aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(base64_decode("aGk"), Some(b"hi".to_vec()));
        assert_eq!(base64_decode("a*b"), None);
    }
}
