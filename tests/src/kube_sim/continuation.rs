//! The `continue` token of a paginated LIST, as the API server makes it: base64url (no padding)
//! of `{"v":"meta.k8s.io/v1","rv":N,"start":"<key after the last item>"}`. The resourceVersion
//! in it pins the snapshot every page is cut from; once compacted away the token answers 410.

use super::event::Key;
use serde::{Deserialize, Serialize};

/// Where the next page starts, and in which snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Continue {
    pub rv: u64,
    /// The first key of the next page is the first key strictly after this one.
    pub after: Key,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("continue key is not valid: {0}")]
    Invalid(&'static str),
}

#[derive(Serialize, Deserialize)]
struct Wire {
    v: String,
    rv: u64,
    start: String,
}

const VERSION: &str = "meta.k8s.io/v1";

impl Continue {
    pub fn encode(&self) -> String {
        // The real server puts the key with "\u0000" appended (the next key after it); the NUL
        // keeps names that are prefixes of others apart here too.
        let wire = Wire {
            v: VERSION.into(),
            rv: self.rv,
            start: format!("{}/{}\u{0}", self.after.namespace, self.after.name),
        };
        base64url(serde_json::to_string(&wire).unwrap_or_default().as_bytes())
    }

    pub fn decode(token: &str) -> Result<Continue, TokenError> {
        let raw = unbase64url(token).ok_or(TokenError::Invalid("not base64url"))?;
        let wire: Wire =
            serde_json::from_slice(&raw).map_err(|_| TokenError::Invalid("not a continue token"))?;
        if wire.v != VERSION {
            return Err(TokenError::Invalid(
                "incorrect encoded start resourceVersion (version meta.k8s.io/v1 required)",
            ));
        }
        if wire.rv == 0 {
            return Err(TokenError::Invalid(
                "incorrect encoded start resourceVersion (must be greater than 0)",
            ));
        }
        let start = wire.start.strip_suffix('\u{0}').ok_or(TokenError::Invalid("malformed start key"))?;
        let (namespace, name) = start.split_once('/').ok_or(TokenError::Invalid("malformed start key"))?;
        Ok(Continue { rv: wire.rv, after: Key { namespace: namespace.into(), name: name.into() } })
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

fn unbase64url(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.trim_end_matches('=').bytes() {
        let v = ALPHABET.iter().position(|&a| a == c)?;
        acc = acc << 6 | u32::try_from(v).ok()?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from(acc >> bits & 0xff).ok()?);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips() {
        for s in ["", "f", "fo", "foo", "foob", "fooba", "foobar", "\u{0}\u{ff}?>"] {
            assert_eq!(unbase64url(&base64url(s.as_bytes())).as_deref(), Some(s.as_bytes()), "{s:?}");
        }
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(unbase64url("a+b"), None);
    }

    #[test]
    fn tokens_round_trip_and_look_like_the_real_ones() {
        let c = Continue { rv: 123, after: Key { namespace: "calypso".into(), name: "ds-0.17a".into() } };
        let token = c.encode();
        let raw = String::from_utf8(unbase64url(&token).unwrap()).unwrap();
        assert_eq!(raw, r#"{"v":"meta.k8s.io/v1","rv":123,"start":"calypso/ds-0.17a\u0000"}"#);
        assert_eq!(Continue::decode(&token), Ok(c));
        assert!(Continue::decode("!!").is_err());
        assert!(
            Continue::decode(&base64url(br#"{"v":"meta.k8s.io/v1","rv":0,"start":"a/b\u0000"}"#)).is_err()
        );
    }
}
