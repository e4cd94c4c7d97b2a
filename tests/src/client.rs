//! A tiny plain-HTTP/1.1 client: one request per connection, one deadline for the whole
//! exchange, any method (GET, HEAD, and the PUT/POST of the simulator's control API), and errors
//! that tell "refused", "timed out" and "closed without an answer" apart, which is exactly what
//! tests of the simulator's failure modes need to see. The simulator's upstream poll uses it too.
//!
//! It is the test side's own client, on purpose independent of `agent_core::http::HttpClient`:
//! that client is code under test, and a double that checks it must not share its code (a bug
//! there would then hide itself on both sides).

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use std::time::Duration;
use tokio::net::TcpStream;
use url::{Host, Url};

pub use hyper::Method;

/// A complete answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
}

impl Response {
    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The answer as the `calypso` crate reads a health answer.
    pub fn health(&self) -> Result<calypso::HealthReport, calypso::ParseError> {
        calypso::parse_response(self.status, self.content_type.as_deref(), &self.body)
    }
}

/// Why no complete answer came.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("no answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("HTTP exchange failed: {0}")]
    Http(#[from] hyper::Error),
}

impl ClientError {
    /// The connection was refused (nothing listening).
    pub fn is_refused(&self) -> bool {
        matches!(self, ClientError::Connect { source, .. } if source.kind() == std::io::ErrorKind::ConnectionRefused)
    }

    /// The deadline passed before a complete answer.
    pub fn is_timeout(&self) -> bool {
        matches!(self, ClientError::Timeout(_))
    }

    /// The server accepted and then closed or reset the connection without a complete answer.
    pub fn is_closed(&self) -> bool {
        match self {
            ClientError::Http(e) => e.is_incomplete_message() || e.is_canceled() || e.is_closed(),
            _ => false,
        }
    }
}

/// `GET url`, all within `timeout`.
pub async fn get(url: &str, timeout: Duration) -> Result<Response, ClientError> {
    request(Method::GET, url, timeout).await
}

/// `method url` with an empty body, all (connect, send, read the whole body) within `timeout`.
pub async fn request(method: Method, url: &str, timeout: Duration) -> Result<Response, ClientError> {
    match tokio::time::timeout(timeout, exchange(method, url)).await {
        Ok(result) => result,
        Err(_) => Err(ClientError::Timeout(timeout)),
    }
}

async fn exchange(method: Method, url: &str) -> Result<Response, ClientError> {
    let bad = |reason: &str| ClientError::BadUrl { url: url.to_owned(), reason: reason.to_owned() };
    let parsed = Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if parsed.scheme() != "http" {
        return Err(bad("only http:// is supported"));
    }
    let port = parsed.port_or_known_default().unwrap_or(80);
    let host = match parsed.host() {
        Some(Host::Domain(d)) => d.to_owned(),
        Some(Host::Ipv4(ip)) => ip.to_string(),
        Some(Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(bad("no host")),
    };
    let authority = match parsed.host_str() {
        Some(h) => format!("{h}:{port}"),
        None => return Err(bad("no host")),
    };
    let stream = TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|source| ClientError::Connect { addr: authority.clone(), source })?;

    let target = &parsed[url::Position::BeforePath..url::Position::AfterQuery];
    let req = hyper::Request::builder()
        .method(method)
        .uri(target)
        .header(hyper::header::HOST, &authority)
        .body(Empty::<Bytes>::new())
        .map_err(|e| bad(&e.to_string()))?;

    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let answer = async {
        let resp = sender.send_request(req).await?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await?.to_bytes();
        let content_type =
            parts.headers.get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        Ok(Response { status: parts.status.as_u16(), content_type, body })
    };
    // The connection must be driven while the answer is awaited; driving both in this future
    // (rather than spawning the connection) means a timeout drops the socket with it.
    let mut answer = std::pin::pin!(answer);
    tokio::select! {
        r = &mut answer => r,
        // The connection ended first (closed by the server): the answer future now resolves
        // with hyper's precise reason, or with the answer if it was complete.
        _ = conn => answer.await,
    }
}
