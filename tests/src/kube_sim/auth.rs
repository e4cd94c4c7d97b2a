//! Bearer tokens: which are valid, which namespaces each may read, and rotation — a token
//! replaced by a new set keeps working for a grace period (as a projected service-account token
//! stays valid a while after the kubelet writes the next one), then answers 401.

use std::time::{Duration, Instant};

/// The user every token authenticates as (it appears in 403 messages).
pub const USER: &str = "system:serviceaccount:calypso:agent-logship";

/// A valid token and what it may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub token: String,
    /// The namespaces it may list and watch events in; `None`: every namespace and the cluster
    /// scope (a ClusterRole).
    pub namespaces: Option<Vec<String>>,
}

impl Grant {
    /// A token that may read everything.
    pub fn cluster(token: impl Into<String>) -> Grant {
        Grant { token: token.into(), namespaces: None }
    }

    /// Parses `TOKEN` or `TOKEN@ns1,ns2` (the flag's and the control API's form).
    pub fn parse(s: &str) -> Result<Grant, AuthError> {
        let (token, namespaces) = match s.split_once('@') {
            Some((t, list)) => (
                t,
                Some(list.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect()),
            ),
            None => (s, None),
        };
        if token.is_empty() || token.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(AuthError::BadToken);
        }
        Ok(Grant { token: token.to_owned(), namespaces })
    }

    fn allows(&self, namespace: Option<&str>) -> bool {
        match (&self.namespaces, namespace) {
            (None, _) => true,
            (Some(list), Some(ns)) => list.iter().any(|n| n == ns),
            (Some(_), None) => false,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("a token must be printable ASCII without spaces (TOKEN or TOKEN@ns1,ns2)")]
    BadToken,
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// 401: no token, an unknown one, or one past its grace period.
    Unauthenticated,
    /// 403: the token may not read this namespace (or the cluster scope).
    Forbidden,
}

/// The tokens now valid, and the retired ones still in their grace period.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    current: Vec<Grant>,
    retiring: Vec<(Grant, Instant)>,
}

impl Tokens {
    /// No tokens: no authentication (every request is served).
    pub fn new(grants: Vec<Grant>) -> Tokens {
        Tokens { current: grants, retiring: Vec::new() }
    }

    pub fn required(&self) -> bool {
        !self.current.is_empty() || !self.retiring.is_empty()
    }

    /// Replaces the valid tokens at `now`; the ones dropped keep working until `now + grace`.
    pub fn rotate(&mut self, grants: Vec<Grant>, grace: Duration, now: Instant) {
        self.retiring.retain(|(_, until)| *until > now);
        for old in self.current.drain(..) {
            if !grants.iter().any(|g| g.token == old.token) {
                self.retiring.push((old, now + grace));
            }
        }
        self.current = grants;
    }

    /// Who the `Authorization` header's value is: the grant of a valid token.
    pub fn authenticate(&self, authorization: Option<&[u8]>, now: Instant) -> Result<Option<&Grant>, Denied> {
        if !self.required() {
            return Ok(None);
        }
        let token = authorization
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(Denied::Unauthenticated)?;
        self.current
            .iter()
            .find(|g| g.token == token)
            .or_else(|| {
                self.retiring.iter().find(|(g, until)| g.token == token && *until > now).map(|(g, _)| g)
            })
            .map(Some)
            .ok_or(Denied::Unauthenticated)
    }

    /// Checks the `Authorization` header's value for a read of `namespace` (`None`: all).
    pub fn check(
        &self,
        authorization: Option<&[u8]>,
        namespace: Option<&str>,
        now: Instant,
    ) -> Result<(), Denied> {
        match self.authenticate(authorization, now)? {
            Some(grant) if !grant.allows(namespace) => Err(Denied::Forbidden),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_old_token_for_its_grace_period() {
        let t0 = Instant::now();
        let mut tokens = Tokens::new(vec![Grant::cluster("old")]);
        let bearer = |t: &str| format!("Bearer {t}");
        assert_eq!(tokens.check(Some(bearer("old").as_bytes()), Some("ns"), t0), Ok(()));
        assert_eq!(tokens.check(None, Some("ns"), t0), Err(Denied::Unauthenticated));
        assert_eq!(tokens.check(Some(b"Basic eDp5"), Some("ns"), t0), Err(Denied::Unauthenticated));
        tokens.rotate(vec![Grant::cluster("new")], Duration::from_secs(10), t0);
        assert_eq!(tokens.check(Some(bearer("new").as_bytes()), None, t0), Ok(()));
        assert_eq!(tokens.check(Some(bearer("old").as_bytes()), None, t0 + Duration::from_secs(9)), Ok(()));
        assert_eq!(
            tokens.check(Some(bearer("old").as_bytes()), None, t0 + Duration::from_secs(10)),
            Err(Denied::Unauthenticated)
        );
        assert!(Tokens::default().check(None, None, t0).is_ok(), "no tokens: no authentication");
    }

    #[test]
    fn namespaces_a_token_may_read() {
        let g = Grant::parse("abc@calypso, other").unwrap();
        assert_eq!(g.namespaces.as_deref(), Some(&["calypso".to_owned(), "other".to_owned()][..]));
        let tokens = Tokens::new(vec![g]);
        let now = Instant::now();
        assert_eq!(tokens.check(Some(b"Bearer abc"), Some("calypso"), now), Ok(()));
        assert_eq!(tokens.check(Some(b"Bearer abc"), Some("kube-system"), now), Err(Denied::Forbidden));
        assert_eq!(tokens.check(Some(b"Bearer abc"), None, now), Err(Denied::Forbidden));
        assert_eq!(Grant::parse("a b"), Err(AuthError::BadToken));
        assert_eq!(Grant::parse("@ns"), Err(AuthError::BadToken));
    }
}
