//! One attempt at one target: ready, or the reason it is not, in the words an operator needs
//! ("connection refused", "HTTP 503", "state RED (Calypso/DatabaseConnection: RED 'db down')").

use std::future::Future;
use std::time::Duration;

use agent_core::dns::Dns;
use agent_core::http::{FetchError, HttpClient};
use calypso::State;

use crate::predicate::{JsonPredicate, StatusRanges};
use crate::target::Kind;

/// Why a target is not ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady {
    /// What the operator reads.
    pub reason: String,
    /// What counts as "the same reason" when deciding to log again: the reason without its
    /// live numbers (a Calypso report's [`calypso::HealthReport::signature`]).
    pub signature: String,
}

impl From<String> for NotReady {
    fn from(reason: String) -> Self {
        NotReady { signature: reason.clone(), reason }
    }
}

/// One attempt at one target; implemented by [`Checker`], and by scripted fakes in tests of the
/// wait loop.
pub trait Check: Clone + Send + Sync + 'static {
    fn check(&self, kind: &Kind) -> impl Future<Output = Result<(), NotReady>> + Send;
}

/// How answers are judged, shared by every target.
#[derive(Debug, Clone)]
pub struct Rules {
    pub status: StatusRanges,
    pub json: Option<JsonPredicate>,
    /// AMBER is not ready either.
    pub strict: bool,
    pub attempt_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct Checker {
    dns: Dns,
    http: HttpClient,
    rules: Rules,
}

impl Checker {
    pub fn new(dns: Dns, http: HttpClient, rules: Rules) -> Self {
        Checker { dns, http, rules }
    }

    /// One attempt, bounded by the attempt timeout.
    async fn attempt(&self, kind: &Kind) -> Result<(), NotReady> {
        let timeout = self.rules.attempt_timeout;
        match kind {
            Kind::Tcp { host, port } => match self.dns.within(timeout, self.tcp(host, *port)).await {
                Ok(r) => r.map_err(NotReady::from),
                Err(Some(silent)) => Err(silent.to_string().into()),
                Err(None) => Err(FetchError::Timeout(timeout).to_string().into()),
            },
            Kind::Http { url } => {
                let got =
                    self.http.get(url, timeout, calypso::MAX_BODY_BYTES).await.map_err(|e| e.to_string())?;
                if !self.rules.status.contains(got.status) {
                    return Err(format!("HTTP {}, want {}", got.status, self.rules.status).into());
                }
                match &self.rules.json {
                    Some(p) => {
                        p.check(&got.body).map_err(|why| format!("HTTP {}, but {why}", got.status).into())
                    }
                    None => Ok(()),
                }
            }
            Kind::Calypso { url } => {
                let got = match self.http.get(url, timeout, calypso::MAX_BODY_BYTES).await {
                    Ok(got) => got,
                    Err(FetchError::BodyTooLarge(_)) => {
                        let why =
                            format!("bad health payload: body larger than {} bytes", calypso::MAX_BODY_BYTES);
                        return Err(why.into());
                    }
                    Err(e) => return Err(e.to_string().into()),
                };
                let mut report = calypso::parse_response(got.status, got.content_type.as_deref(), &got.body)
                    .map_err(|e| NotReady::from(format!("bad health payload (HTTP {}): {e}", got.status)))?;
                // Before the summary cuts the details short (and a secret in half).
                report.map_texts(agent_core::redact::text_cut);
                match report.state {
                    State::Green => Ok(()),
                    State::Amber if !self.rules.strict => Ok(()),
                    _ => Err(NotReady { reason: report.summary(), signature: report.signature() }),
                }
            }
            Kind::File { path } => match tokio::fs::metadata(path).await {
                Ok(m) if m.is_dir() => Err("is a directory, want a file".to_string().into()),
                Ok(m) if m.len() == 0 => Err("file is empty".to_string().into()),
                Ok(_) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err("no such file".to_string().into()),
                Err(e) => Err(e.to_string().into()),
            },
        }
    }
}

impl Check for Checker {
    fn check(&self, kind: &Kind) -> impl Future<Output = Result<(), NotReady>> + Send {
        self.attempt(kind)
    }
}

impl Checker {
    /// Ready when any of the host's addresses accepts a connection (raced, [`crate::connect`]);
    /// the last failure otherwise.
    async fn tcp(&self, host: &str, port: u16) -> Result<(), String> {
        let addrs = self.dns.lookup(host, port).await.map_err(|e| e.to_string())?;
        crate::connect::race(&addrs).await.map(drop)
    }
}
