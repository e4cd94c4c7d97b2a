//! The HTTP client the agents share: reqwest on rustls (ring, no OpenSSL), names resolved by
//! [`Dns`] on every connection, no connection reuse (each check sees the server as a new
//! client would), no redirects followed, bodies read up to a limit, and errors reduced to the
//! short reasons operators read in logs ("connection refused", "dns: no such host ...").

use std::error::Error as _;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::dns::{Dns, DnsError};

/// What a GET answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// Why a GET got no (usable) answer. Display is the short reason for logs; no URL, so no
/// credentials in it.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FetchError {
    #[error(transparent)]
    Dns(#[from] DnsError),
    #[error("connection refused")]
    Refused,
    #[error("connection closed without an answer")]
    Closed,
    #[error("no answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("body larger than {0} bytes")]
    BodyTooLarge(usize),
    /// The status and headers came, then the body was cut off: the server answered (it is
    /// alive), but what it said cannot be read.
    #[error("HTTP {status}, then the answer was cut off after {received} bytes of body ({why})")]
    Truncated { status: u16, received: usize, why: String },
    #[error("{0}")]
    Other(String),
}

/// The HTTP client could not be built (the TLS configuration was refused).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct BuildError(String);

/// A client for health checks.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    dns: Dns,
    connect_timeout: Duration,
}

impl HttpClient {
    /// `connect_timeout` bounds connecting to all of a name's addresses together (the agents
    /// pass their attempt timeout): hyper-util gives each address of a family an equal share of
    /// it, one after the other, and starts on the other family 300 ms after the first (RFC 6555).
    /// Without it, an address that drops packets first in the list would hold every attempt for
    /// its whole timeout, however healthy the next address.
    pub fn new(dns: Dns, user_agent: &str, connect_timeout: Duration) -> Result<Self, BuildError> {
        // reqwest is built without a default crypto provider so that only ring is linked; a
        // second install (another client in the process) is refused harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config())
            .dns_resolver(Arc::new(dns.clone()))
            .user_agent(user_agent)
            .connect_timeout(connect_timeout)
            .pool_max_idle_per_host(0)
            // Health checks go straight to the target: an HTTP_PROXY meant for the pod's
            // outbound traffic would otherwise answer for it ("refused" by the proxy, names
            // resolved by the proxy, not re-resolved here).
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| BuildError(reason(&e)))?;
        Ok(HttpClient { client, dns, connect_timeout })
    }

    /// GETs `url`, the whole exchange (DNS, connect, TLS, headers, body) within `timeout`,
    /// reading at most `max_body` bytes of body.
    pub async fn get(
        &self,
        url: &url::Url,
        timeout: Duration,
        max_body: usize,
    ) -> Result<Fetched, FetchError> {
        match self.dns.within(timeout, self.get_inner(url, max_body)).await {
            Ok(r) => r,
            Err(Some(silent)) => Err(FetchError::Dns(silent)),
            Err(None) => Err(FetchError::Timeout(timeout)),
        }
    }

    async fn get_inner(&self, url: &url::Url, max_body: usize) -> Result<Fetched, FetchError> {
        let mut resp = self.client.get(url.clone()).send().await.map_err(|e| match e.is_timeout() {
            // The connect timeout (the attempt's) ran out, in the lookup or on the last address:
            // the attempt did.
            true => match self.dns.cut_short(self.connect_timeout) {
                Some(silent) => FetchError::Dns(silent),
                None => FetchError::Timeout(self.connect_timeout),
            },
            false => classify(e),
        })?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut body = Vec::new();
        let cut = |e: reqwest::Error, received: usize| FetchError::Truncated {
            status,
            received,
            why: match classify(e) {
                FetchError::Closed => "the connection closed".to_string(),
                other => other.to_string(),
            },
        };
        while let Some(chunk) = resp.chunk().await.map_err(|e| cut(e, body.len()))? {
            if body.len() + chunk.len() > max_body {
                return Err(FetchError::BodyTooLarge(max_body));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { status, content_type, body })
    }
}

/// TLS trusting the system's CA certificates (`/etc/ssl/certs`, or `SSL_CERT_FILE` /
/// `SSL_CERT_DIR`). A `FROM scratch` image has none: the client must still work for plain http
/// targets, and an https target then fails on its own with an "unknown issuer" reason, rather
/// than the whole agent refusing to start.
fn tls_config() -> rustls::ClientConfig {
    rustls::ClientConfig::builder().with_root_certificates(system_roots()).with_no_client_auth()
}

/// The system's CA certificates, as many as can be read (none in a `FROM scratch` image).
pub fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::debug!(error = %e, "system CA certificates not loaded");
    }
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    tracing::debug!(added, ignored, "system CA certificates");
    roots
}

/// Maps reqwest's layered error to the reason an operator needs.
fn classify(e: reqwest::Error) -> FetchError {
    let mut source = e.source();
    while let Some(s) = source {
        if let Some(dns) = s.downcast_ref::<DnsError>() {
            return FetchError::Dns(dns.clone());
        }
        if let Some(io) = s.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::ConnectionRefused => return FetchError::Refused,
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::UnexpectedEof => {
                    return FetchError::Closed;
                }
                _ => {}
            }
        }
        if let Some(tls) = tls_error(s) {
            return FetchError::Other(format!("TLS: {tls}"));
        }
        if let Some(h) = s.downcast_ref::<hyper::Error>()
            && h.is_incomplete_message()
        {
            return FetchError::Closed;
        }
        source = s.source();
    }
    FetchError::Other(reason(&e.without_url()))
}

/// The rustls error inside `e`, which comes wrapped in io::Errors (whose `source()` skips the
/// error they wrap, so the chain walk alone never reaches it).
fn tls_error<'a>(mut e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    loop {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        e = e.downcast_ref::<io::Error>()?.get_ref()?;
    }
}

/// The error chain on one line, each distinct message once.
pub fn reason(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let msg = err.to_string();
        if !parts.iter().any(|p| p.contains(&msg)) {
            parts.push(msg);
        }
        cur = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn client() -> HttpClient {
        HttpClient::new(Dns::system(), "test", Duration::from_secs(10)).expect("client")
    }

    /// Serves one canned HTTP answer per connection, `n` times.
    async fn serve(answer: &'static [u8], n: usize) -> url::Url {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            for _ in 0..n {
                let (mut s, _) = l.accept().await.expect("accept");
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(answer).await;
            }
        });
        format!("http://{addr}/health").parse().expect("url")
    }

    #[tokio::test]
    async fn a_silent_dns_server_is_named_not_the_target() {
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = silent.local_addr().expect("addr");
        let url = url::Url::parse("http://ds.test:1/health").expect("url");
        // The attempt's timeout runs out first, or the connect timeout (it covers the lookup).
        for (connect_timeout, within) in [(10_000, "300ms"), (200, "200ms")] {
            let connect_timeout = Duration::from_millis(connect_timeout);
            let client =
                HttpClient::new(Dns::with_servers(vec![addr]), "test", connect_timeout).expect("client");
            let got = client.get(&url, Duration::from_millis(300), 1000).await;
            let want = format!("from the DNS server {addr} within {within}");
            assert!(matches!(&got, Err(FetchError::Dns(e)) if e.to_string().contains(&want)), "{got:?}");
        }
    }

    #[tokio::test]
    async fn reads_status_type_and_body() {
        let url = serve(b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}", 1).await;
        let f = client().get(&url, Duration::from_secs(5), 100).await.expect("answer");
        assert_eq!(
            (f.status, f.content_type.as_deref(), &f.body[..]),
            (503, Some("application/json"), &b"{}"[..])
        );
    }

    #[tokio::test]
    async fn body_limit() {
        let url =
            serve(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\nconnection: close\r\n\r\n0123456789", 1).await;
        assert_eq!(client().get(&url, Duration::from_secs(5), 9).await, Err(FetchError::BodyTooLarge(9)));
    }

    #[tokio::test]
    async fn refused_and_closed() {
        // Bound but not listening: refused, and the port stays ours for the whole test.
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let url: url::Url = format!("http://{}/", socket.local_addr().expect("addr")).parse().expect("url");
        assert_eq!(client().get(&url, Duration::from_secs(5), 9).await, Err(FetchError::Refused));
        let url = serve(b"", 1).await;
        assert_eq!(client().get(&url, Duration::from_secs(5), 9).await, Err(FetchError::Closed));
    }

    #[tokio::test]
    async fn a_body_cut_off_is_an_answer_that_cannot_be_read() {
        let url = serve(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 100\r\n\r\n{\"sta", 1).await;
        assert_eq!(
            client().get(&url, Duration::from_secs(5), 1000).await,
            Err(FetchError::Truncated { status: 503, received: 5, why: "the connection closed".into() })
        );
    }

    #[tokio::test]
    async fn timeout_covers_a_hung_server() {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url: url::Url = format!("http://{}/", l.local_addr().expect("addr")).parse().expect("url");
        let e = client().get(&url, Duration::from_millis(200), 9).await.expect_err("hangs");
        assert_eq!(e.to_string(), "no answer within 200ms");
        drop(l);
    }
}
