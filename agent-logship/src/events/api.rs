//! The Kubernetes API as the Events source uses it: LIST a page of core/v1 Events, WATCH them
//! from a resourceVersion. Plain reqwest (rustls) and serde with only the fields we read: kube-rs
//! would bring far more than two GET requests need, and its watcher has exited on a 410 for
//! Events (kube-rs #1615), the very case this source exists to survive.
//!
//! In a pod: `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`, the service account's
//! CA and token. The token is a projected, rotated file: it is read again for every request, and
//! never appears in a log, an error or a metric.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agent_core::dns::Dns;
use agent_core::http::reason;
use bytes::{Buf, BytesMut};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use url::Url;

use super::model::{EventList, ListMeta, Status, WatchLine};
use crate::sink::client::{ClientError, builder, read_secret};

/// Where the service account's files are in every pod that mounts its token.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// Which Events: one namespace's, or all (`*`, which needs a ClusterRole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Namespace(String),
    All,
}

impl Scope {
    /// A namespace's scope; `*` is every namespace.
    pub fn of(namespace: &str) -> Scope {
        if namespace == "*" { Scope::All } else { Scope::Namespace(namespace.to_owned()) }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Namespace(ns) => f.write_str(ns),
            Scope::All => f.write_str("*"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct KubeOptions {
    pub url: Url,
    /// The bearer token's file (read at every request); none: no `Authorization` header.
    pub token_file: Option<PathBuf>,
    /// PEM CA bundle trusted for the API server (the service account's `ca.crt`).
    pub ca_file: Option<PathBuf>,
    pub scope: Scope,
    /// Events per LIST page.
    pub page: u32,
    /// How long one LIST request may take.
    pub timeout: Duration,
    /// `timeoutSeconds` asked of each watch: the server ends it then, and it is resumed.
    pub watch_timeout: Duration,
}

/// The in-cluster URL from the variables Kubernetes sets in every container.
pub fn in_cluster_url(host: &str, port: &str) -> Option<Url> {
    let host = host.trim();
    let port = port.trim();
    if host.is_empty() || port.parse::<u16>().is_err() {
        return None;
    }
    // An IPv6 service address needs its brackets in a URL.
    let host =
        if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_owned() };
    Url::parse(&format!("https://{host}:{port}")).ok()
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 410: the resourceVersion or the continue token is too old.
    #[error("410 Gone: {0}")]
    Gone(String),
    #[error("401 Unauthorized: the token was refused (token file {})", .0.as_ref().map_or("none".into(), |p| p.display().to_string()))]
    Unauthorized(Option<PathBuf>),
    #[error("403 Forbidden: {0} (the service account needs get, list and watch on events: deploy/rbac)")]
    Forbidden(String),
    #[error("{status}: {message}")]
    Status { status: u16, message: String },
    #[error("{0}")]
    Token(String),
    #[error("cannot reach the API server: {0}")]
    Connect(String),
    #[error("the API server's answer is not what the protocol says: {0}")]
    Decode(String),
}

#[derive(Debug, Clone)]
pub struct KubeClient {
    client: reqwest::Client,
    opts: Arc<KubeOptions>,
}

impl KubeClient {
    pub fn new(opts: KubeOptions, dns: Dns, user_agent: &str) -> Result<Self, ClientError> {
        let client = builder(opts.ca_file.as_deref(), dns, user_agent)?
            .connect_timeout(opts.timeout.min(Duration::from_secs(10)))
            .tcp_keepalive(Duration::from_secs(30))
            .build()
            .map_err(|e| ClientError::Build(reason(&e)))?;
        Ok(KubeClient { client, opts: Arc::new(opts) })
    }

    pub fn scope(&self) -> &Scope {
        &self.opts.scope
    }

    pub fn watch_timeout(&self) -> Duration {
        self.opts.watch_timeout
    }

    fn events_url(&self, query: &[(&str, &str)]) -> Url {
        let mut url = self.opts.url.clone();
        let path = match &self.opts.scope {
            Scope::Namespace(ns) => format!("api/v1/namespaces/{ns}/events"),
            Scope::All => "api/v1/events".to_owned(),
        };
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}/{path}"));
        url.query_pairs_mut().clear().extend_pairs(query);
        url
    }

    async fn get(&self, url: Url, timeout: Duration) -> Result<reqwest::Response, ApiError> {
        let mut req = self.client.get(url).timeout(timeout).header("Accept", "application/json");
        if let Some(path) = &self.opts.token_file {
            let token = read_secret(path).map_err(|e| ApiError::Token(e.to_string()))?;
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.trim())).map_err(|_| {
                ApiError::Token(format!("the token file {} holds characters a header cannot", path.display()))
            })?;
            value.set_sensitive(true);
            req = req.header(AUTHORIZATION, value);
        }
        let answer = req.send().await.map_err(|e| ApiError::Connect(reason(&e)))?;
        let status = answer.status().as_u16();
        if status == 200 {
            return Ok(answer);
        }
        let body = answer.bytes().await.unwrap_or_default();
        let message = serde_json::from_slice::<Status>(&body)
            .ok()
            .and_then(|s| s.message)
            .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
        Err(match status {
            410 => ApiError::Gone(message),
            401 => ApiError::Unauthorized(self.opts.token_file.clone()),
            403 => ApiError::Forbidden(message),
            _ => ApiError::Status { status, message },
        })
    }

    /// One LIST page: the first (`next` none) or the one after `next`'s.
    pub async fn list(&self, next: Option<&str>) -> Result<EventList, ApiError> {
        let limit = self.opts.page.max(1).to_string();
        let mut query = vec![("limit", limit.as_str())];
        if let Some(token) = next {
            query.push(("continue", token));
        }
        let answer = self.get(self.events_url(&query), self.opts.timeout).await?;
        let body = answer.bytes().await.map_err(|e| ApiError::Connect(reason(&e)))?;
        // Item by item: one Event we cannot read must not hide the others.
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            metadata: ListMeta,
            #[serde(default)]
            items: Vec<serde_json::Value>,
        }
        let page: Page = serde_json::from_slice(&body).map_err(|e| ApiError::Decode(e.to_string()))?;
        let items = page
            .items
            .into_iter()
            .filter_map(|item| {
                serde_json::from_value(item)
                    .map_err(|e| tracing::warn!(error = %e, "an Event in the list is not readable: skipped"))
                    .ok()
            })
            .collect();
        Ok(EventList { metadata: page.metadata, items })
    }

    /// Opens a WATCH from resourceVersion `from`, with bookmarks, for `watch_timeout`.
    pub async fn watch(&self, from: &str) -> Result<WatchStream, ApiError> {
        let secs = self.opts.watch_timeout.as_secs().max(1).to_string();
        let query = [
            ("watch", "1"),
            ("resourceVersion", from),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", &secs),
        ];
        // The server ends the stream after timeoutSeconds; a stream still open well after that
        // is a dead connection.
        let deadline = self.opts.watch_timeout + Duration::from_secs(30);
        let response = self.get(self.events_url(&query), deadline).await?;
        Ok(WatchStream { response, buf: BytesMut::new() })
    }
}

/// An open watch: lines as they come.
#[derive(Debug)]
pub struct WatchStream {
    response: reqwest::Response,
    buf: BytesMut,
}

impl WatchStream {
    /// Waits for the next chunk and appends its complete lines to `out`; `false` once the
    /// server has ended the stream (a cut-off last line is an error: it was not complete).
    pub async fn next_lines(&mut self, out: &mut Vec<WatchLine>) -> Result<bool, ApiError> {
        let chunk = self.response.chunk().await.map_err(|e| ApiError::Connect(reason(&e)))?;
        let Some(chunk) = chunk else {
            if self.buf.iter().any(|b| !b.is_ascii_whitespace()) {
                return Err(ApiError::Decode("the stream ended in the middle of a line".into()));
            }
            return Ok(false);
        };
        self.buf.extend_from_slice(&chunk);
        while let Some(end) = memchr::memchr(b'\n', &self.buf) {
            let line = self.buf.split_to(end + 1);
            let line = line.chunk();
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            // One line we cannot read must not stop the watch (and every relist after it).
            match WatchLine::parse(line) {
                Ok(l) => out.push(l),
                Err(e) => tracing::warn!(error = %e, "a watch line is not readable: skipped"),
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_in_cluster_url_comes_from_the_service_variables() {
        assert_eq!(
            in_cluster_url("10.96.0.1", "443").map(String::from).as_deref(),
            Some("https://10.96.0.1/")
        );
        assert_eq!(
            in_cluster_url("fd00::1", "6443").map(String::from).as_deref(),
            Some("https://[fd00::1]:6443/")
        );
        assert_eq!(in_cluster_url("", "443"), None);
        assert_eq!(in_cluster_url("10.96.0.1", "https"), None);
    }

    fn client(scope: Scope, url: &str) -> KubeClient {
        let opts = KubeOptions {
            url: Url::parse(url).expect("url"),
            token_file: None,
            ca_file: None,
            scope,
            page: 500,
            timeout: Duration::from_secs(10),
            watch_timeout: Duration::from_secs(300),
        };
        KubeClient::new(opts, Dns::system(), "test").expect("client")
    }

    #[tokio::test]
    async fn event_urls_for_one_namespace_and_for_all() {
        let c = client(Scope::Namespace("calypso-uat".into()), "https://10.96.0.1:443");
        assert_eq!(
            c.events_url(&[("limit", "500"), ("continue", "a b&c")]).as_str(),
            "https://10.96.0.1/api/v1/namespaces/calypso-uat/events?limit=500&continue=a+b%26c"
        );
        let c = client(Scope::All, "http://127.0.0.1:8001/proxy/");
        assert_eq!(
            c.events_url(&[("watch", "1")]).as_str(),
            "http://127.0.0.1:8001/proxy/api/v1/events?watch=1"
        );
    }
}
