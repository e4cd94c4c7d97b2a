//! The HTTP client that talks to Elasticsearch / OpenSearch, for the sender and for `setup`:
//! reqwest on rustls like agent-core's, but keeping connections alive (a shipper sends a request
//! a second to the same cluster), trusting an extra CA bundle, trying the configured URLs in
//! turn, and reading credentials from files at every request — mounted Secrets are symlinks that
//! Kubernetes swaps when the Secret changes, so nothing is cached. The TLS files (the CA file, a
//! client certificate and its key: [`super::tls`]) are followed the same way: read before each
//! request, and a change makes a new connection pool that uses them (a rotated CA or client
//! certificate needs no restart); a file that does not exist yet (a Secret mounted
//! `optional: true` and not created) holds the data back instead of stopping the agent, which as a
//! native sidecar would keep Calypso itself from starting, and one that turns unusable leaves the
//! last usable ones in use. Credentials never appear in errors, logs or metrics: headers are marked
//! sensitive and errors name files, not contents.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use agent_core::dns::Dns;
use agent_core::http::reason;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue};
use url::Url;

use super::aws_credentials;
use super::proxy::{ProxyAuth, ProxyFailure, ProxyOptions};
use super::sigv4::{CredentialSource, Credentials, SigV4Options};
use super::tls::{Material, TlsError, TlsFiles};

/// How to authenticate, each secret in a file of its own (a mounted Secret's key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Auth {
    #[default]
    None,
    /// HTTP basic: the user name and the password, each read from its file.
    Basic { username_file: PathBuf, password_file: PathBuf },
    /// `Authorization: ApiKey <key>`: the file holds the encoded key as Elasticsearch returns it
    /// (`encoded`), or `id:api_key`, which is encoded here.
    ApiKey { file: PathBuf },
}

/// Where and how to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// One or more base URLs (`https://es-0:9200`, or with a path prefix behind a proxy).
    pub urls: Vec<Url>,
    /// A PEM bundle of CA certificates trusted in addition to the system's, and a client
    /// certificate.
    pub tls: TlsFiles,
    /// The egress proxy, if Elasticsearch is reached through one.
    pub proxy: Option<ProxyOptions>,
    /// Signing every request with AWS SigV4 (Amazon OpenSearch Service).
    pub sigv4: Option<SigV4Options>,
    pub auth: Auth,
    /// The whole exchange (connect, send, answer) of one request.
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no Elasticsearch URL configured")]
    NoUrl,
    #[error("cannot use {0}")]
    Tls(TlsError),
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

/// Why a request got no answer. Display is a short reason for logs: no URL (it could carry
/// user info), no credential.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot read the credential file {path}: {reason}")]
    Credentials { path: PathBuf, reason: String },
    #[error("cannot get the AWS credentials of the pod's role: {reason}")]
    Role { reason: String },
    #[error("cannot use {0}; nothing is sent until it can be")]
    Tls(TlsError),
    #[error("{failure} (proxy {proxy}, for {url})")]
    Proxy { proxy: String, url: String, failure: ProxyFailure },
    #[error("cannot connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("no answer from {url} within {}", humantime::format_duration(*.timeout))]
    Timeout { url: String, timeout: Duration },
    #[error("request to {url} failed: {reason}")]
    Other { url: String, reason: String },
}

/// An answer: status, the headers `setup` needs, body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A request body and how it is encoded.
#[derive(Debug, Clone)]
pub struct Body {
    pub bytes: Bytes,
    pub content_type: &'static str,
    pub gzip: bool,
}

#[derive(Debug)]
pub struct EsClient {
    urls: Vec<Url>,
    current: AtomicUsize,
    auth: Auth,
    timeout: Duration,
    tls: TlsFiles,
    proxy: Option<ProxyOptions>,
    /// The proxy's credential files, when some URL goes through the proxy (files of an
    /// optional Secret are not waited for by URLs that go direct).
    proxy_auth: Option<ProxyAuth>,
    sigv4: Option<SigV4Options>,
    role: tokio::sync::Mutex<Role>,
    /// The cluster refused a request signed with the role's credentials: renew them first.
    role_refused: AtomicBool,
    dns: Dns,
    user_agent: String,
    trust: Mutex<Trust>,
}

/// The connection pool in use and what it was made from, and the last content refused (so that
/// it is reported once, not at every request).
#[derive(Debug, Default)]
struct Trust {
    current: Option<(Made, reqwest::Client)>,
    /// What was refused last, and why: not made again while the files hold it.
    refused: Option<(Made, TlsError)>,
    /// Why the files could not be read at the last request, once said.
    unreadable: Option<String>,
}

/// What a connection pool is made from, read from the files before each request: what the TLS
/// files held, and the proxy's credentials. Compared, never shown.
#[derive(Clone, Default, PartialEq, Eq)]
struct Made {
    tls: Material,
    proxy_auth: Option<(String, String)>,
}

impl std::fmt::Debug for Made {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Made")
            .field("tls", &self.tls)
            .field("proxy_auth", &self.proxy_auth.is_some())
            .finish()
    }
}

impl EsClient {
    /// A TLS file that is missing or holds nothing usable is refused here: a setting's mistake,
    /// said at once, for `setup` (a Job) and `--check`.
    pub fn new(opts: &ClientOptions, dns: Dns, user_agent: &str) -> Result<Self, ClientError> {
        Self::build(opts, dns, user_agent, false)
    }

    /// [`EsClient::new`] for a shipper, which must not stop on it (a native sidecar that exits
    /// keeps its Calypso pod from starting): a TLS file that cannot be read or holds nothing
    /// usable is said, and waited for like a missing one — the data waits until it is usable.
    pub fn patient(opts: &ClientOptions, dns: Dns, user_agent: &str) -> Result<Self, ClientError> {
        Self::build(opts, dns, user_agent, true)
    }

    fn build(opts: &ClientOptions, dns: Dns, user_agent: &str, patient: bool) -> Result<Self, ClientError> {
        if opts.urls.is_empty() {
            return Err(ClientError::NoUrl);
        }
        let client = EsClient {
            urls: opts.urls.clone(),
            current: AtomicUsize::new(0),
            auth: opts.auth.clone(),
            timeout: opts.timeout,
            tls: opts.tls.clone(),
            proxy: opts.proxy.clone(),
            proxy_auth: opts.proxy.as_ref().and_then(|proxy| {
                proxy.auth.clone().filter(|_| opts.urls.iter().any(|u| proxy.for_url(u).is_some()))
            }),
            sigv4: opts.sigv4.clone(),
            role: tokio::sync::Mutex::new(Role::default()),
            role_refused: AtomicBool::new(false),
            dns,
            user_agent: user_agent.to_string(),
            trust: Mutex::new(Trust::default()),
        };
        let mut refused = None;
        let first = match client.tls.read() {
            Ok(tls) => match client.pool(&Made { tls: tls.clone(), proxy_auth: None }) {
                // With credentials for the proxy, the pool is made at the first request, which
                // reads them: this one only tells that the TLS files are usable.
                Ok(pool) => client.proxy_auth.is_none().then_some((Made { tls, proxy_auth: None }, pool)),
                Err(ClientError::Tls(e)) if patient => {
                    tracing::warn!(error = %e, "{} is not usable: the data waits until it is", e.part);
                    refused = Some((Made { tls, proxy_auth: None }, e));
                    None
                }
                Err(e) => return Err(e),
            },
            Err(e) if e.missing && patient => {
                tracing::warn!(
                    error = %e,
                    "{} does not exist (yet): the data waits until it does (a Secret mounted optional and not created?)",
                    e.part
                );
                None
            }
            // Unreadable (permissions, a directory): a shipper waits as for a missing one.
            Err(e) if patient => {
                tracing::warn!(error = %e, "cannot read {}: the data waits until it can", e.part);
                None
            }
            Err(e) => return Err(ClientError::Tls(e)),
        };
        *client.trust.lock().unwrap_or_else(PoisonError::into_inner) =
            Trust { current: first, refused, unreadable: None };
        Ok(client)
    }

    /// The headers that sign a request to `url` with `body`, with the credentials as they are now.
    async fn sign(
        &self,
        pool: &reqwest::Client,
        sigv4: &SigV4Options,
        method: &str,
        url: &Url,
        body: Option<&Body>,
    ) -> Result<Vec<(String, HeaderValue)>, SendError> {
        let credentials = match fixed_credentials(&sigv4.credentials) {
            Some(fixed) => fixed?,
            None => self.role_credentials(pool, &sigv4.credentials).await?,
        };
        let bytes = body.map_or(&[][..], |b| &b.bytes[..]);
        let headers = sigv4
            .signing
            .headers(method, url, bytes, &credentials, std::time::SystemTime::now())
            .map_err(|reason| SendError::Other { url: redact(url), reason })?;
        headers
            .into_iter()
            .map(|(name, value)| {
                let mut value = HeaderValue::from_str(&value).map_err(|_| SendError::Other {
                    url: redact(url),
                    reason: "a signature header is not valid".into(),
                })?;
                value.set_sensitive(true);
                Ok((name, value))
            })
            .collect()
    }

    /// The pod's IAM role's credentials: the ones held while they are not due for renewal, else
    /// new ones from STS (through the same connections, the proxy included). When STS fails,
    /// the held ones are used until they expire.
    async fn role_credentials(
        &self,
        pool: &reqwest::Client,
        source: &CredentialSource,
    ) -> Result<Credentials, SendError> {
        let mut role = self.role.lock().await;
        let Role { held, failed_at } = &mut *role;
        let now = std::time::SystemTime::now();
        // Refused by the cluster (a revoked session): the held ones are worth nothing; new ones
        // are waited for as for the first.
        if self.role_refused.swap(false, Ordering::Relaxed) {
            *held = None;
        }
        if let Some((t, issued)) = held.as_ref()
            && !aws_credentials::renew_due(*issued, t.expires, now)
        {
            return Ok(t.credentials.clone());
        }
        // After a failed renewal, the held credentials are used straight away for a while
        // rather than every request waiting on STS again.
        if let (Some(at), Some((t, _))) = (*failed_at, held.as_ref())
            && at.elapsed() < ROLE_RETRY
            && t.expires > now
        {
            return Ok(t.credentials.clone());
        }
        // With good credentials in hand, a slow STS is not waited for long: the requests go on
        // with those meanwhile.
        let fetch = fetch_role_credentials(pool, source);
        let fetched = match held.as_ref().filter(|(t, _)| t.expires > now) {
            Some(_) => tokio::time::timeout(RENEW_WAIT, fetch).await.unwrap_or_else(|_| {
                Err(SendError::Role { reason: format!("no answer within {} s", RENEW_WAIT.as_secs()) })
            }),
            None => fetch.await,
        };
        let now = std::time::SystemTime::now();
        let fetched = fetched
            .and_then(|t| aws_credentials::usable(t, now).map_err(|reason| SendError::Role { reason }));
        *failed_at = fetched.is_err().then(std::time::Instant::now);
        match (fetched, held.as_ref()) {
            (Ok(t), _) => {
                tracing::info!("AWS credentials of the pod's role renewed");
                let credentials = t.credentials.clone();
                *held = Some((t, now));
                Ok(credentials)
            }
            (Err(e), Some((t, _))) if t.expires > now => {
                tracing::warn!(error = %e, "cannot renew the AWS credentials; the ones held are used until they expire");
                Ok(t.credentials.clone())
            }
            (Err(e), _) => Err(e),
        }
    }

    /// A connection pool made from `made`: its TLS, and the proxy with its credentials.
    fn pool(&self, made: &Made) -> Result<reqwest::Client, ClientError> {
        let tls = self.tls.config(&made.tls).map_err(ClientError::Tls)?;
        let mut builder = builder_with(tls, self.dns.clone(), &self.user_agent);
        if let Some(options) = &self.proxy {
            let options = options.clone();
            let mut proxy = reqwest::Proxy::custom(move |url| options.for_url(url).cloned());
            if let Some((user, password)) = &made.proxy_auth {
                proxy = proxy.basic_auth(user, password);
            }
            builder = builder.proxy(proxy);
        }
        builder
            // Keep-alive: one connection reused for every request to a node. Idle ones are
            // closed before a load balancer's usual idle cut (60 s) could catch one mid-send.
            .pool_max_idle_per_host(4)
            .pool_idle_timeout(Duration::from_secs(50))
            .tcp_keepalive(Duration::from_secs(30))
            .connect_timeout(self.timeout.min(Duration::from_secs(10)))
            .timeout(self.timeout)
            .build()
            .map_err(|e| ClientError::Build(reason(&e)))
    }

    /// What the files hold now: the TLS files' content and the proxy's credentials.
    fn read_made(&self) -> Result<Made, SendError> {
        let tls = self.tls.read().map_err(SendError::Tls)?;
        let proxy_auth = match &self.proxy_auth {
            Some(auth) => Some((read_secret(&auth.username_file)?, read_secret(&auth.password_file)?)),
            None => None,
        };
        Ok(Made { tls, proxy_auth })
    }

    /// The connection pool for the next request: the one in use while the files it was made from
    /// are unchanged (or unreadable for a moment: the kubelet swaps a Secret's files by a link),
    /// a new one when what they hold changed and is usable. Without usable files ever: an error,
    /// and the data waits.
    fn trusted(&self) -> Result<reqwest::Client, SendError> {
        let mut trust = self.trust.lock().unwrap_or_else(PoisonError::into_inner);
        let in_use = trust.current.as_ref().map(|(made, pool)| (made, pool.clone()));
        if !self.tls.any() && self.proxy_auth.is_none() {
            return in_use.map(|(_, pool)| pool).ok_or_else(|| SendError::Other {
                url: self.current_url(),
                reason: "no connection pool".into(),
            });
        }
        let made = match (self.read_made(), in_use) {
            (Ok(made), Some((current, pool))) if made == *current => {
                trust.unreadable = None;
                return Ok(pool);
            }
            (Ok(made), _) => made,
            // Unreadable for a moment (the kubelet swaps a Secret's files by a link), or for
            // good (a key gone from the Secret): the connections keep what they have, and the
            // operator is told once, as the pair will not be renewed.
            (Err(e), Some((_, pool))) => {
                let why = e.to_string();
                if trust.unreadable.as_ref() != Some(&why) {
                    tracing::warn!(error = %why, "cannot read the files the connections were made from; they keep using the last usable ones");
                    trust.unreadable = Some(why);
                }
                return Ok(pool);
            }
            (Err(e), None) => return Err(e),
        };
        trust.unreadable = None;
        // Refused already: not made again at every request while the files hold the same.
        if let Some((refused, e)) = &trust.refused
            && *refused == made
        {
            return match &trust.current {
                Some((_, pool)) => Ok(pool.clone()),
                None => Err(SendError::Tls(e.clone())),
            };
        }
        match self.pool(&made) {
            Ok(pool) => {
                let before = trust.current.as_ref().map(|(m, _)| m);
                for changed in made.tls.changes_from(before.map(|m| &m.tls)) {
                    tracing::info!("{changed} changed: new connections use it");
                }
                if before.is_some_and(|b| b.proxy_auth.is_some() && b.proxy_auth != made.proxy_auth) {
                    tracing::info!("the proxy's credentials changed: new connections use them");
                }
                trust.current = Some((made, pool.clone()));
                trust.refused = None;
                Ok(pool)
            }
            Err(ClientError::Tls(e)) => {
                let pool = trust.current.as_ref().map(|(_, pool)| pool.clone());
                if pool.is_some() {
                    tracing::warn!(error = %e, "{} changed and is not usable; connections keep using the last usable files", e.part);
                }
                trust.refused = Some((made, e.clone()));
                pool.ok_or(SendError::Tls(e))
            }
            Err(e) => Err(SendError::Other { url: self.current_url(), reason: e.to_string() }),
        }
    }

    /// Whether requests are signed with AWS SigV4 (their refusals are then AWS's to explain).
    pub fn signs_for_aws(&self) -> bool {
        self.sigv4.is_some()
    }

    /// The cluster refused a signed request (401/403): role credentials are dropped and asked
    /// for anew at the next request (the session may have been revoked), not when they are due.
    pub fn refused_credentials(&self) {
        self.role_refused.store(true, Ordering::Relaxed);
    }

    /// The URL requests go to now, for logs (user info and query removed).
    pub fn current_url(&self) -> String {
        redact(&self.urls[self.current.load(Ordering::Relaxed) % self.urls.len()])
    }

    /// Moves to the next URL (after a connection error or a whole-request retry).
    pub fn rotate(&self) {
        if self.urls.len() > 1 {
            self.current.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn url_count(&self) -> usize {
        self.urls.len()
    }

    /// Sends one request to the current URL; `path` is relative to the base URL (`_bulk`,
    /// `_index_template/x`, or empty for `GET /`). On a connection error moves to the next URL.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Body>,
    ) -> Result<Answer, SendError> {
        let pool = self.trusted()?;
        let base = &self.urls[self.current.load(Ordering::Relaxed) % self.urls.len()];
        let url = join(base, path);
        let shown = redact(base);
        let proxy = self.proxy.as_ref().and_then(|p| p.for_url(&url)).map(redact);
        // A forwarded `http://` request talks to the proxy; an `https://` one talks to
        // Elasticsearch through the tunnel, and what comes back through it is Elasticsearch's.
        let forwarded = proxy.is_some() && url.scheme() == "http";
        let signature = match &self.sigv4 {
            Some(sigv4) => Some(self.sign(&pool, sigv4, method.as_str(), &url, body).await?),
            None => None,
        };
        let mut req = pool.request(method, url);
        for (name, value) in signature.into_iter().flatten() {
            req = req.header(name, value);
        }
        req = match &self.auth {
            Auth::None => req,
            Auth::Basic { username_file, password_file } => {
                let user = read_secret(username_file)?;
                let pass = read_secret(password_file)?;
                // reqwest marks the header sensitive.
                req.basic_auth(user, Some(pass))
            }
            Auth::ApiKey { file } => {
                let key = read_secret(file)?;
                let encoded = if key.contains(':') { base64(key.as_bytes()) } else { key };
                let mut v = HeaderValue::from_str(&format!("ApiKey {encoded}")).map_err(|_| {
                    SendError::Credentials { path: file.clone(), reason: "not a valid header value".into() }
                })?;
                v.set_sensitive(true);
                req.header(reqwest::header::AUTHORIZATION, v)
            }
        };
        if let Some(b) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, b.content_type).body(b.bytes.clone());
            if b.gzip {
                req = req.header(reqwest::header::CONTENT_ENCODING, "gzip");
            }
        }
        // The status and headers, and the body (which may fail on its own: a proxy that
        // refuses a request may reset the connection before it has read what was sent).
        let result = async {
            let resp = req.send().await?;
            let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
            Ok::<_, reqwest::Error>((status, headers, resp.bytes().await))
        }
        .await;
        let proxy_failed = |failure| SendError::Proxy {
            proxy: proxy.clone().unwrap_or_default(),
            url: shown.clone(),
            failure,
        };
        let e = match result {
            // A forwarded request: the proxy's own refusals and error pages, where
            // Elasticsearch's answer should be. (It may be the next URL's turn: rotated.)
            Ok((status, headers, body)) if forwarded => {
                let ours = from_elasticsearch(&headers, body.as_deref().unwrap_or_default());
                match (ProxyFailure::of_answer(status, ours), body) {
                    (Some(failure), _) => {
                        self.rotate();
                        return Err(proxy_failed(failure));
                    }
                    (None, Ok(body)) => return Ok(Answer { status, headers, body }),
                    (None, Err(e)) => e,
                }
            }
            Ok((status, headers, Ok(body))) => return Ok(Answer { status, headers, body }),
            Ok((_, _, Err(e))) | Err(e) => e,
        };
        let (connect, timeout) = (e.is_connect(), e.is_timeout());
        let why = reason(&e.without_url());
        let err = match (ProxyFailure::of_error(&why), &proxy) {
            (Some(failure), _) => proxy_failed(failure),
            // A forwarded request connects to the proxy, not to Elasticsearch; a tunnel's own
            // failures are told by their text above, and what fails inside it (TLS with
            // Elasticsearch) is Elasticsearch's.
            (None, Some(_)) if connect && forwarded => proxy_failed(ProxyFailure::Unreachable),
            _ if timeout => SendError::Timeout { url: shown, timeout: self.timeout },
            _ if connect => SendError::Connect { url: shown, reason: why },
            _ => SendError::Other { url: shown, reason: why },
        };
        self.rotate();
        Err(err)
    }
}

/// How long the held credentials are used after a failed renewal before STS is asked again.
/// The pod's IAM role's credentials as held.
#[derive(Debug, Default)]
struct Role {
    /// The temporary credentials and when they were issued.
    held: Option<(aws_credentials::Temporary, std::time::SystemTime)>,
    /// When renewing them last failed.
    failed_at: Option<std::time::Instant>,
}

const ROLE_RETRY: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a renewal is waited for while the credentials held are still good.
const RENEW_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// New credentials of the pod's role: from STS for a web identity (IRSA), from the node's agent
/// for EKS Pod Identity. The token is read again at each exchange (the kubelet rotates it).
async fn fetch_role_credentials(
    pool: &reqwest::Client,
    source: &CredentialSource,
) -> Result<aws_credentials::Temporary, SendError> {
    let (token_file, what, variable) = match source {
        CredentialSource::WebIdentity { token_file, .. } => {
            (token_file, "STS", "AWS_WEB_IDENTITY_TOKEN_FILE")
        }
        CredentialSource::Container { token_file, .. } => {
            (token_file, "the EKS Pod Identity agent", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
        }
        _ => return Err(SendError::Other { url: String::new(), reason: "no role to ask for".into() }),
    };
    let failed = |reason: String| SendError::Role { reason };
    let token = read_aws(token_file).map_err(|e| failed(format!("the token file ({variable}): {e}")))?;
    let request = match source {
        CredentialSource::WebIdentity { role_arn, session_name, sts_url, .. } => pool
            .post(sts_url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(aws_credentials::sts_form(role_arn, session_name, &token)),
        CredentialSource::Container { uri, .. } => {
            let mut value =
                HeaderValue::from_str(&token).map_err(|_| failed("not a valid header value".into()))?;
            value.set_sensitive(true);
            pool.get(uri.clone()).header(reqwest::header::AUTHORIZATION, value)
        }
        _ => return Err(failed("no role to ask for".into())),
    };
    let answer = async {
        let mut response = request.send().await?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > aws_credentials::ANSWER_MAX {
                return Ok((status, None));
            }
            body.extend_from_slice(&chunk);
        }
        Ok::<_, reqwest::Error>((status, Some(body)))
    };
    let (status, body) = answer.await.map_err(|e| failed(format!("{what}: {}", reason(&e.without_url()))))?;
    let body = body.ok_or_else(|| failed(format!("{what}: the answer is larger than 64 KiB")))?;
    let text = String::from_utf8_lossy(&body);
    if !(200..300).contains(&status) {
        return Err(failed(format!(
            "{what} answered HTTP {status}{}",
            aws_credentials::refusal(&text, &token)
        )));
    }
    match source {
        CredentialSource::WebIdentity { .. } => aws_credentials::parse_sts_answer(&text),
        _ => aws_credentials::parse_container_answer(&text),
    }
    .map_err(|e| failed(format!("{what}: {e}")))
}

/// Whether an answer is Elasticsearch's (or OpenSearch's): its product header, or an error body
/// of theirs (`{"error": ...}`); a proxy's or load balancer's own page is neither.
fn from_elasticsearch(headers: &HeaderMap, body: &[u8]) -> bool {
    headers.contains_key("x-elastic-product")
        || serde_json::from_slice::<serde_json::Value>(body).is_ok_and(|v| v.get("error").is_some())
}

/// `base` + `path`, keeping a path prefix of the base (`https://proxy/es/` + `_bulk`).
/// `path` (`_bulk`, or `<index>/_bulk?filter_path=...`) under the base URL's own path.
fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let prefix = base.path().trim_end_matches('/');
    let (path, query) = path.split_once('?').map_or((path, None), |(p, q)| (p, Some(q)));
    url.set_path(&format!("{prefix}/{path}"));
    url.set_query(query);
    url
}

/// The URL without user info, query or fragment: safe for logs.
pub fn redact(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// A reqwest client on rustls (ring only) trusting the system roots and `ca_file`, resolving
/// through `dns`, with no proxy and no redirects: what both of our HTTP clients (Elasticsearch,
/// the Kubernetes API) start from.
pub(crate) fn builder(
    ca_file: Option<&Path>,
    dns: Dns,
    user_agent: &str,
) -> Result<reqwest::ClientBuilder, ClientError> {
    let files = TlsFiles { ca_file: ca_file.map(Path::to_path_buf), client_cert: None };
    let tls = files.read().and_then(|material| files.config(&material)).map_err(ClientError::Tls)?;
    Ok(builder_with(tls, dns, user_agent))
}

fn builder_with(tls: rustls::ClientConfig, dns: Dns, user_agent: &str) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .dns_resolver(Arc::new(dns))
        .user_agent(user_agent)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
}

/// A secret file's content without the trailing newline editors and `echo` add (a regular file
/// of at most [`agent_core::mounted::MAX_BYTES`], read without waiting on it).
pub(crate) fn read_secret(path: &Path) -> Result<String, SendError> {
    let failed = |reason: String| SendError::Credentials { path: path.to_path_buf(), reason };
    let bytes =
        agent_core::mounted::read(path, agent_core::mounted::MAX_BYTES).map_err(|e| failed(e.to_string()))?;
    let text = String::from_utf8(bytes).map_err(|_| failed("not UTF-8 text".into()))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

/// An AWS credential or token file: a secret file's text, trimmed.
fn read_aws(path: &Path) -> Result<String, SendError> {
    read_secret(path).map(|text| text.trim().to_string())
}

/// The credentials of the sources that need no request: the environment's, or the files' as
/// they are now (read before each request, so a rotated key needs no restart); `None` for a
/// role's.
fn fixed_credentials(source: &CredentialSource) -> Option<Result<Credentials, SendError>> {
    match source {
        CredentialSource::Environment(c) => Some(Ok(c.clone())),
        CredentialSource::Files { access_key_id, secret_access_key, session_token } => Some((|| {
            Ok(Credentials {
                access_key_id: read_aws(access_key_id)?,
                secret_access_key: read_aws(secret_access_key)?,
                session_token: session_token.as_deref().map(read_aws).transpose()?,
            })
        })()),
        CredentialSource::WebIdentity { .. } | CredentialSource::Container { .. } => None,
    }
}

/// Standard base64 with padding (for `id:api_key` API keys; a dependency for 15 lines is not
/// worth it).
fn base64(input: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_known_values() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(
            base64(b"VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw"),
            "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
        );
    }

    #[test]
    fn join_keeps_prefix_and_redact_hides_userinfo() {
        let u: Url = "https://user:secret@proxy:9200/es/?x=1".parse().expect("url");
        assert_eq!(join(&u, "_bulk").path(), "/es/_bulk");
        let u: Url = "http://es:9200".parse().expect("url");
        assert_eq!(join(&u, "_bulk").as_str(), "http://es:9200/_bulk");
        assert_eq!(join(&u, "").as_str(), "http://es:9200/");
        assert_eq!(
            join(&u, "logs-a/_bulk?filter_path=errors,items.*.status").as_str(),
            "http://es:9200/logs-a/_bulk?filter_path=errors,items.*.status"
        );
        let shown = redact(&"https://user:secret@proxy:9200/es/?x=1".parse().expect("url"));
        assert_eq!(shown, "https://proxy:9200/es/");
    }

    fn in_use(client: &EsClient) -> Option<Material> {
        client.trust.lock().expect("lock").current.as_ref().map(|(made, _)| made.tls.clone())
    }

    fn ca_only(ca: &Path) -> ClientOptions {
        ClientOptions {
            urls: vec!["https://localhost:9200".parse().expect("url")],
            tls: TlsFiles { ca_file: Some(ca.to_path_buf()), client_cert: None },
            proxy: None,
            sigv4: None,
            auth: Auth::None,
            timeout: Duration::from_secs(1),
        }
    }

    /// The CA file is followed: missing, then there, then replaced by something unusable (the
    /// pool in use stays), then by another CA (a new pool trusts it).
    #[test]
    fn the_ca_file_is_followed_and_a_bad_one_keeps_the_last_good_one() {
        let dir = tempfile::tempdir().expect("tmp");
        let ca = dir.path().join("ca.crt");
        let opts = ca_only(&ca);
        assert!(
            matches!(EsClient::new(&opts, Dns::system(), "t"), Err(ClientError::Tls(e)) if e.missing),
            "setup: 64"
        );
        let client = EsClient::patient(&opts, Dns::system(), "t").expect("a missing CA file is waited for");
        assert!(matches!(client.trusted(), Err(SendError::Tls(e)) if e.missing));
        let first = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert").cert.pem();
        std::fs::write(&ca, &first).expect("write");
        assert!(client.trusted().is_ok());
        let first = opts.tls.read().ok();
        assert_eq!(in_use(&client), first);
        std::fs::write(&ca, "garbage\n").expect("write");
        assert!(client.trusted().is_ok(), "the last good CA stays");
        assert_eq!(in_use(&client), first);
        std::fs::remove_file(&ca).expect("rm");
        assert!(client.trusted().is_ok(), "a moment without the file changes nothing");
        let second = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert").cert.pem();
        std::fs::write(&ca, &second).expect("write");
        assert!(client.trusted().is_ok());
        assert_eq!(in_use(&client), opts.tls.read().ok());
        assert_ne!(in_use(&client), first);
    }

    /// At the start, a CA file that is there but unusable is refused for `setup` (a Job) and
    /// waited for by a shipper, which then takes the first usable one.
    #[test]
    fn a_ca_file_there_but_unusable_at_the_start_is_refused_or_waited_for() {
        let dir = tempfile::tempdir().expect("tmp");
        let ca = dir.path().join("ca.crt");
        std::fs::write(&ca, "garbage\n").expect("write");
        let opts = ca_only(&ca);
        assert!(matches!(EsClient::new(&opts, Dns::system(), "t"), Err(ClientError::Tls(e)) if !e.missing));
        let client = EsClient::patient(&opts, Dns::system(), "t").expect("a shipper waits");
        assert!(matches!(client.trusted(), Err(SendError::Tls(_))), "the data waits");
        let good = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert").cert.pem();
        std::fs::write(&ca, &good).expect("write");
        assert!(client.trusted().is_ok());
        assert_eq!(in_use(&client), opts.tls.read().ok());
    }

    #[test]
    fn a_missing_ca_file_is_an_error_for_the_events_client() {
        let dir = tempfile::tempdir().expect("tmp");
        let missing = dir.path().join("missing.pem");
        assert!(matches!(builder(Some(&missing), Dns::system(), "t"), Err(ClientError::Tls(e)) if e.missing));
    }
}
