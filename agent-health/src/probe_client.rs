//! `agent-health check`: asks a running sidecar, for Docker `HEALTHCHECK` and exec probes.

use std::time::Duration;

use agent_core::dns::Dns;
use agent_core::http::HttpClient;
use url::Url;

/// The most of an answer read: a probe's reason, or a verbose list of checks.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Why `check` could not ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckError {
    /// The URL is not one to ask a sidecar with (exit 64).
    BadUrl(String),
    /// No HTTP answer (exit 69).
    Unreachable(String),
}

/// GETs `url` within `timeout`: whether the status was 200, and the body's first line.
pub async fn check(url: &Url, timeout: Duration) -> Result<(bool, String), CheckError> {
    if url.scheme() != "http" || url.host_str().is_none() {
        return Err(CheckError::BadUrl(
            "only http://HOST:PORT (the sidecar is asked over the pod's network)".into(),
        ));
    }
    let client =
        HttpClient::new(Dns::system(), concat!("agent-health-check/", env!("CARGO_PKG_VERSION")), timeout)
            .map_err(|e| CheckError::Unreachable(e.to_string()))?;
    let got = client
        .get(url, timeout, MAX_ANSWER_BYTES)
        .await
        .map_err(|e| CheckError::Unreachable(e.to_string()))?;
    let body = String::from_utf8_lossy(&got.body);
    Ok((got.status == 200, body.lines().next().unwrap_or_default().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Poll;
    use crate::server::Limits;
    use crate::testing;
    use calypso::State;

    #[tokio::test]
    async fn asks_the_real_server() {
        let app = testing::app_with([Poll::Answer(testing::report(State::Green))]);
        let server = testing::start(app, Limits::default()).await;
        let addr = server.addr;
        let url = Url::parse(&format!("http://{addr}/livez")).expect("url");
        assert_eq!(check(&url, Duration::from_secs(5)).await, Ok((true, "ok".into())));
        let url = Url::parse(&format!("http://localhost:{}/startupz", addr.port())).expect("url");
        assert_eq!(check(&url, Duration::from_secs(5)).await.map(|(ok, _)| ok), Ok(true));
    }

    #[tokio::test]
    async fn bad_urls_and_refusals() {
        let https = Url::parse("https://127.0.0.1:1/readyz").expect("url");
        assert!(matches!(check(&https, Duration::from_secs(1)).await, Err(CheckError::BadUrl(_))));
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let url = Url::parse(&format!("http://{}/readyz", socket.local_addr().expect("addr"))).expect("url");
        assert_eq!(
            check(&url, Duration::from_secs(1)).await,
            Err(CheckError::Unreachable("connection refused".into()))
        );
    }
}
