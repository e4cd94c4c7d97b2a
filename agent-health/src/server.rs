//! The probe HTTP server: `/livez`, `/readyz`, `/startupz` (with `?verbose`), `/metrics` and
//! `/status`, all answered from the cached verdicts in [`App`] (never an upstream call).
//!
//! Slow or malicious clients cannot stall it: each connection is its own task, the request
//! head must arrive within [`Limits::header_read_timeout`] (which also bounds idle keep-alive
//! connections), a client that stops taking its answer is dropped after the same time, heads
//! over [`Limits::max_header_bytes`] get 431, and connections over
//! [`Limits::max_connections`] are closed at once without ever blocking the accept loop.
//!
//! One server per listening address: the main one serves everything, unless `/status` and
//! `?verbose` (sensor details, the topology) are served on a loopback address of their own
//! ([`Scope`]).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll as TaskPoll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Response, StatusCode, Uri};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};

use crate::app::App;
use crate::policy::{Check, Probe};
use crate::{metrics, status};

/// Bounds on what one client may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The whole request head must arrive within this; also the longest idle keep-alive and
    /// the longest a client may leave its answer untaken.
    pub header_read_timeout: Duration,
    /// Connections served at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Largest request head; larger ones get 431. At least 8192 (hyper's minimum).
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { header_read_timeout: Duration::from_secs(5), max_connections: 256, max_header_bytes: 8192 }
    }
}

/// What one listening address serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything: the probes with `?verbose`, `/metrics` and `/status`.
    All,
    /// The probes and `/metrics`: `/status` is 404 and `?verbose` is ignored, as they are
    /// served on the debug address.
    Probes,
}

/// How long connections in flight may take to finish once the server stops.
pub const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// hyper's smallest read buffer.
const MIN_BUF_SIZE: usize = 8192;

const TEXT: &str = "text/plain; charset=utf-8";
const METRICS: &str = "text/plain; version=0.0.4; charset=utf-8";
const JSON: &str = "application/json";

type Body = Full<Bytes>;

/// Serves until `stop` resolves, then stops accepting, gives the connections in flight
/// [`DRAIN_GRACE`] to finish (idle keep-alive ones close at once) and drops the rest.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    limits: Limits,
    scope: Scope,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.min(Semaphore::MAX_PERMITS)));
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut stop = pin!(stop);
    loop {
        tokio::select! {
            biased;
            () = &mut stop => break,
            // Reap finished connections so the set does not grow without bound.
            Some(joined) = connections.join_next(), if !connections.is_empty() => {
                if let Err(error) = joined {
                    tracing::warn!(%error, "connection task failed");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        connections.spawn(connection(stream, app.clone(), limits, scope, closing_rx.clone(), permit));
                    }
                    Err(_) => {
                        tracing::debug!(%peer, limit = limits.max_connections, "too many connections, closing");
                        drop(stream);
                    }
                },
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    drop(listener);
    let _ = closing_tx.send(true);
    let drained =
        tokio::time::timeout(DRAIN_GRACE, async { while connections.join_next().await.is_some() {} });
    if drained.await.is_err() {
        tracing::debug!(
            left = connections.len(),
            "connections still open after the grace period, dropping them"
        );
    }
    connections.shutdown().await;
    Ok(())
}

async fn connection(
    stream: TcpStream,
    app: Arc<App>,
    limits: Limits,
    scope: Scope,
    mut closing: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    // Answers are one write each; do not let Nagle hold them.
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(StallGuard::new(stream, limits.header_read_timeout));
    let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        // Answered at once, before any await: no lock is held across one.
        let answer = respond(&app, scope, req.method(), req.uri());
        async move { Ok::<_, Infallible>(answer) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(MIN_BUF_SIZE));
    let mut conn = pin!(builder.serve_connection(io, service));
    let result = tokio::select! {
        r = conn.as_mut() => r,
        () = async { let _ = closing.wait_for(|c| *c).await; } => {
            // Finish the answer in flight, close idle connections at once.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended");
    }
}

enum Route {
    Probe(Probe),
    Metrics,
    Status,
}

/// The answer to one request; request bodies are never read.
pub fn respond(app: &App, scope: Scope, method: &Method, uri: &Uri) -> Response<Body> {
    let route = match uri.path() {
        "/livez" => Route::Probe(Probe::Live),
        "/readyz" => Route::Probe(Probe::Ready),
        "/startupz" => Route::Probe(Probe::Startup),
        "/metrics" => Route::Metrics,
        "/status" if scope == Scope::All => Route::Status,
        "/status" => {
            let body = "not found: /status is served on the debug address only\n";
            return answer(StatusCode::NOT_FOUND, TEXT, body.into());
        }
        _ => return answer(StatusCode::NOT_FOUND, TEXT, "not found\n".into()),
    };
    if method != Method::GET && method != Method::HEAD {
        let mut a = answer(StatusCode::METHOD_NOT_ALLOWED, TEXT, "method not allowed\n".into());
        a.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return a;
    }
    // hyper sends no body for HEAD, keeping the content-length of the GET answer.
    let now = Instant::now();
    match route {
        Route::Probe(probe) => probe_answer(app, probe, scope == Scope::All && verbose(uri), now),
        Route::Metrics => answer(StatusCode::OK, METRICS, metrics::render(app, now)),
        Route::Status => {
            let mut body = status::render(app, now).to_string();
            body.push('\n');
            answer(StatusCode::OK, JSON, body)
        }
    }
}

/// Whether the query names `verbose`, with any value or none.
fn verbose(uri: &Uri) -> bool {
    uri.query().is_some_and(|q| q.split('&').any(|p| p.split('=').next() == Some("verbose")))
}

fn probe_answer(app: &App, probe: Probe, verbose: bool, now: Instant) -> Response<Body> {
    let (verdict, checks) = {
        let tracker = app.tracker();
        (tracker.verdict(probe, now), verbose.then(|| tracker.checks(probe, now)))
    };
    app.stats().record_probe(probe, verdict.ok);
    let reason = one_line(&verdict.reason);
    let body = match checks {
        None if verdict.ok => "ok\n".to_string(),
        None => format!("{reason}\n"),
        Some(checks) => {
            let mut body = String::new();
            for check in &checks {
                body.push_str(&check_line(check));
                body.push('\n');
            }
            let endpoint = endpoint(probe);
            if verdict.ok {
                let _ = writeln!(body, "{endpoint} check passed");
            } else {
                let _ = writeln!(body, "{endpoint} check failed: {reason}");
            }
            body
        }
    };
    let status = if verdict.ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    answer(status, TEXT, body)
}

fn endpoint(probe: Probe) -> &'static str {
    match probe {
        Probe::Live => "livez",
        Probe::Ready => "readyz",
        Probe::Startup => "startupz",
    }
}

/// `[+]upstream GREEN age=1.2s: state GREEN`, `[-]Calypso/DataServerConnection RED age=0.4s: lost`.
fn check_line(check: &Check) -> String {
    let mut line = format!("[{}]{}", if check.ok { '+' } else { '-' }, one_line(&check.name));
    if let Some(state) = check.state {
        let _ = write!(line, " {state}");
    }
    if let Some(age) = check.age {
        let _ = write!(line, " age={:.1}s", age.as_secs_f64());
    }
    let reason = one_line(&check.reason);
    if !reason.is_empty() {
        let _ = write!(line, ": {reason}");
    }
    line
}

/// At most this many characters of a reason on one line.
const MAX_REASON_CHARS: usize = 300;

/// A reason on one line, cut at [`MAX_REASON_CHARS`].
fn one_line(text: &str) -> String {
    calypso::health::one_line(text, MAX_REASON_CHARS)
}

fn answer(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A stream whose writes fail with `TimedOut` when the peer takes none of the answer for
/// `limit`: a client that never reads cannot hold a connection (and its permit) forever.
#[derive(Debug)]
struct StallGuard<T> {
    inner: T,
    limit: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> StallGuard<T> {
    fn new(inner: T, limit: Duration) -> Self {
        StallGuard { inner, limit, stalled: None }
    }

    /// Called when a write or flush is pending: starts the clock, or fails once it ran out.
    fn pending<R>(&mut self, cx: &mut Context<'_>) -> TaskPoll<io::Result<R>> {
        let limit = self.limit;
        let timer = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        ready!(timer.as_mut().poll(cx));
        TaskPoll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "client took none of the answer")))
    }

    fn progress<R>(
        &mut self,
        result: TaskPoll<io::Result<R>>,
        cx: &mut Context<'_>,
    ) -> TaskPoll<io::Result<R>> {
        match result {
            TaskPoll::Pending => self.pending(cx),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> TaskPoll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> TaskPoll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progress(result, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> TaskPoll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progress(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> TaskPoll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_flush(cx);
        this.progress(result, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> TaskPoll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.progress(result, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Poll;
    use crate::testing::{app_with, raw_exchange, report, request, start, start_serving};
    use calypso::State;
    use std::time::SystemTime;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn green() -> Poll {
        Poll::Answer(report(State::Green))
    }

    fn red() -> Poll {
        Poll::Answer(report(State::Red))
    }

    /// Reads until the server closes or fails the connection; panics after `within`.
    async fn closed_within(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                Err(_) => panic!("still open after {within:?}"),
                Ok(Ok(0) | Err(_)) => return seen,
                Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[tokio::test]
    async fn probes_answer_200_ok_or_503_with_the_reason() {
        let app = app_with([green(), red()]);
        let server = start(app, Limits::default()).await;

        let live = request(server.addr, "GET", "/livez").await;
        assert_eq!(live.status, 200);
        assert_eq!(live.body, "ok\n");
        assert_eq!(live.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(live.header("cache-control"), Some("no-store"));

        let ready = request(server.addr, "GET", "/readyz").await;
        assert_eq!(ready.status, 503);
        assert_eq!(ready.body, "state RED (Calypso/DataServerConnection: RED)\n");
        assert_eq!(ready.header("cache-control"), Some("no-store"));

        let startup = request(server.addr, "GET", "/startupz").await;
        assert_eq!((startup.status, startup.body.as_str()), (200, "ok\n"));
    }

    #[tokio::test]
    async fn before_any_poll_ready_and_startup_fail() {
        let server = start(app_with([]), Limits::default()).await;
        let ready = request(server.addr, "GET", "/readyz").await;
        assert_eq!((ready.status, ready.body.as_str()), (503, "no poll completed yet\n"));
        let startup = request(server.addr, "GET", "/startupz").await;
        assert_eq!((startup.status, startup.body.as_str()), (503, "starting: no poll completed yet\n"));
        assert_eq!(request(server.addr, "GET", "/livez").await.status, 200);
    }

    #[tokio::test]
    async fn stale_data_is_not_ready() {
        let app = app_with([]);
        let long_ago = Instant::now().checked_sub(Duration::from_secs(60)).unwrap();
        app.tracker().observe(green(), long_ago, SystemTime::now());
        let server = start(app, Limits::default()).await;
        let ready = request(server.addr, "GET", "/readyz").await;
        assert_eq!(ready.status, 503);
        assert!(ready.body.starts_with("stale: no completed poll for "), "{}", ready.body);
        assert!(!ready.body.trim_end().contains('\n'));
    }

    #[tokio::test]
    async fn head_has_the_status_and_headers_and_no_body() {
        let server = start(app_with([green(), red()]), Limits::default()).await;
        let raw =
            raw_exchange(server.addr, b"HEAD /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await;
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503"), "{head}");
        assert!(head.contains("content-type: text/plain; charset=utf-8"), "{head}");
        assert!(head.contains("cache-control: no-store"), "{head}");
        assert!(head.contains(&format!(
            "content-length: {}",
            "state RED (Calypso/DataServerConnection: RED)\n".len()
        )));
        assert_eq!(body, "");
        let raw =
            raw_exchange(server.addr, b"HEAD /livez HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await;
        assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
        assert!(raw.ends_with("\r\n\r\n"), "{raw}");
    }

    #[tokio::test]
    async fn verbose_lists_every_check_then_the_verdict() {
        let server = start(app_with([green(), red()]), Limits::default()).await;
        let ready = request(server.addr, "GET", "/readyz?verbose").await;
        assert_eq!(ready.status, 503);
        let lines: Vec<&str> = ready.body.lines().collect();
        assert!(lines[0].starts_with("[+]upstream RED age="), "{}", lines[0]);
        assert!(
            lines[0].ends_with(
                "s: state RED (Calypso/DataServerConnection: RED 'connection to DataServer lost')"
            )
        );
        assert!(lines[1].starts_with("[+]System/MemoryUsage GREEN age="), "{}", lines[1]);
        assert!(
            lines.iter().any(|l| l.starts_with("[-]Calypso/DataServerConnection RED age=")
                && l.ends_with(": connection to DataServer lost")),
            "{lines:?}"
        );
        assert_eq!(lines.last(), Some(&"readyz check failed: state RED (Calypso/DataServerConnection: RED)"));

        let live = request(server.addr, "GET", "/livez?foo=1&verbose=true").await;
        assert_eq!(live.status, 200);
        assert_eq!(live.body.lines().last(), Some("livez check passed"));
        assert!(live.body.lines().any(|l| l == "[+]live: ok"), "{}", live.body);
        // Not verbose: `verbosex`, or `verbose` as a value.
        assert_eq!(request(server.addr, "GET", "/livez?verbosex&a=verbose").await.body, "ok\n");
    }

    #[tokio::test]
    async fn other_methods_are_405_and_other_paths_404() {
        let server = start(app_with([green()]), Limits::default()).await;
        for path in ["/livez", "/readyz", "/startupz", "/metrics", "/status"] {
            let a = request(server.addr, "POST", path).await;
            assert_eq!(a.status, 405, "{path}");
            assert_eq!(a.header("allow"), Some("GET, HEAD"), "{path}");
        }
        let a = request(server.addr, "DELETE", "/readyz").await;
        assert_eq!(a.status, 405);
        for path in ["/", "/healthz", "/readyz/", "/livez/x", "/metricsz"] {
            assert_eq!(request(server.addr, "GET", path).await.status, 404, "{path}");
        }
        // A body on a POST is never read, the answer comes anyway.
        let raw = raw_exchange(
            server.addr,
            b"POST /readyz HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
        )
        .await;
        assert!(raw.starts_with("HTTP/1.1 405"), "{raw}");
    }

    #[tokio::test]
    async fn probe_answers_are_counted() {
        let app = app_with([green(), red()]);
        let server = start(app.clone(), Limits::default()).await;
        request(server.addr, "GET", "/livez").await;
        request(server.addr, "HEAD", "/livez").await;
        request(server.addr, "GET", "/readyz").await;
        request(server.addr, "GET", "/readyz?verbose").await;
        request(server.addr, "GET", "/metrics").await;
        request(server.addr, "POST", "/startupz").await;
        let stats = app.stats().clone();
        assert_eq!(stats.probe_requests.get(&Probe::Live), Some(&(2, 0)));
        assert_eq!(stats.probe_requests.get(&Probe::Ready), Some(&(0, 2)));
        assert_eq!(stats.probe_requests.get(&Probe::Startup), None);
    }

    #[tokio::test]
    async fn metrics_and_status_are_served() {
        let app = app_with([green()]);
        let server = start(app, Limits::default()).await;
        let m = request(server.addr, "GET", "/metrics").await;
        assert_eq!(m.status, 200);
        assert_eq!(m.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
        assert!(m.body.contains("# TYPE agent_health_ready gauge\nagent_health_ready 1\n"), "{}", m.body);
        let s = request(server.addr, "GET", "/status").await;
        assert_eq!(s.status, 200);
        assert_eq!(s.header("content-type"), Some("application/json"));
        let json: serde_json::Value = serde_json::from_str(&s.body).unwrap();
        assert_eq!(json["verdicts"]["ready"]["ok"], true);
        assert_eq!(json["report"]["state"], "GREEN");
    }

    #[tokio::test]
    async fn the_probes_scope_serves_no_status_and_no_verbose() {
        let server = start_serving(app_with([green(), red()]), Limits::default(), Scope::Probes).await;
        let s = request(server.addr, "GET", "/status").await;
        assert_eq!(s.status, 404);
        assert_eq!(s.body, "not found: /status is served on the debug address only\n");
        let ready = request(server.addr, "GET", "/readyz?verbose").await;
        assert_eq!(
            (ready.status, ready.body.as_str()),
            (503, "state RED (Calypso/DataServerConnection: RED)\n")
        );
        let live = request(server.addr, "GET", "/livez?verbose").await;
        assert_eq!((live.status, live.body.as_str()), (200, "ok\n"));
        assert_eq!(request(server.addr, "GET", "/metrics").await.status, 200);
    }

    #[tokio::test]
    async fn keep_alive_serves_several_requests() {
        let server = start(app_with([green()]), Limits::default()).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\nGET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let seen = String::from_utf8(closed_within(&mut stream, Duration::from_secs(5)).await).unwrap();
        assert_eq!(seen.matches("HTTP/1.1 200 OK").count(), 2, "{seen}");
    }

    #[tokio::test]
    async fn a_slowloris_client_stalls_nobody_and_is_dropped_after_the_header_timeout() {
        // Generous times: the other client must be answered well before the slow one is dropped,
        // even on a loaded machine.
        let limits = Limits { header_read_timeout: Duration::from_secs(2), ..Limits::default() };
        let server = start(app_with([green()]), limits).await;
        let mut slow = TcpStream::connect(server.addr).await.unwrap();
        let began = Instant::now();
        slow.write_all(b"GET /livez HTTP/1.1\r\nHost: t\r\nX-Slow: aaa").await.unwrap();

        // Another client is answered while the slow one hangs.
        let other = tokio::time::timeout(Duration::from_secs(1), request(server.addr, "GET", "/livez"))
            .await
            .expect("a probe is answered while a slow client hangs");
        assert_eq!(other.status, 200);

        let seen = closed_within(&mut slow, Duration::from_secs(10)).await;
        assert!(began.elapsed() >= Duration::from_millis(1990), "dropped too early: {:?}", began.elapsed());
        assert!(!String::from_utf8_lossy(&seen).contains("200 OK"));
    }

    #[tokio::test]
    async fn an_idle_connection_is_closed_after_the_header_timeout() {
        let limits = Limits { header_read_timeout: Duration::from_millis(200), ..Limits::default() };
        let server = start(app_with([green()]), limits).await;
        let mut idle = TcpStream::connect(server.addr).await.unwrap();
        closed_within(&mut idle, Duration::from_secs(3)).await;
    }

    #[tokio::test]
    async fn huge_headers_get_an_error_or_a_close() {
        let server = start(app_with([green()]), Limits::default()).await;
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        let mut raw = b"GET /livez HTTP/1.1\r\nHost: t\r\nX-Big: ".to_vec();
        raw.extend(std::iter::repeat_n(b'a', 64 * 1024));
        raw.extend_from_slice(b"\r\n\r\n");
        let (mut reader, mut writer) = stream.split();
        let write = async {
            // The server may close before taking it all.
            let _ = writer.write_all(&raw).await;
        };
        let read = async {
            let mut seen = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), reader.read_to_end(&mut seen))
                .await
                .expect("closed within 5s");
            seen
        };
        let ((), seen) = tokio::join!(write, read);
        let seen = String::from_utf8_lossy(&seen);
        assert!(seen.is_empty() || seen.starts_with("HTTP/1.1 431"), "{seen}");
        // Still serving.
        assert_eq!(request(server.addr, "GET", "/livez").await.status, 200);
    }

    #[tokio::test]
    async fn connections_over_the_limit_are_closed_at_once() {
        let limits =
            Limits { max_connections: 2, header_read_timeout: Duration::from_secs(30), ..Limits::default() };
        let server = start(app_with([green()]), limits).await;
        let mut idle1 = TcpStream::connect(server.addr).await.unwrap();
        let mut idle2 = TcpStream::connect(server.addr).await.unwrap();
        // Make sure both were accepted and hold their permits: one request each, kept alive.
        for idle in [&mut idle1, &mut idle2] {
            idle.write_all(b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
            let mut buf = [0u8; 1024];
            let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf)).await.unwrap().unwrap();
            assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        }

        let mut third = TcpStream::connect(server.addr).await.unwrap();
        let _ = third.write_all(b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n").await;
        let seen = closed_within(&mut third, Duration::from_secs(3)).await;
        assert!(seen.is_empty(), "{}", String::from_utf8_lossy(&seen));

        drop(idle1);
        drop(idle2);
        // The server notices the closes and frees the permits; poll until it has.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut s = TcpStream::connect(server.addr).await.unwrap();
            let _ = s.write_all(b"GET /livez HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").await;
            let seen = closed_within(&mut s, Duration::from_secs(3)).await;
            if seen.starts_with(b"HTTP/1.1 200") {
                break;
            }
            assert!(Instant::now() < deadline, "probes still refused after the idle clients left");
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn stop_ends_serving_and_closes_idle_connections() {
        let mut server = start(app_with([green()]), Limits::default()).await;
        let mut idle = TcpStream::connect(server.addr).await.unwrap();
        idle.write_all(b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 1024];
        let n = idle.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

        let began = Instant::now();
        server.stop();
        tokio::time::timeout(Duration::from_secs(3), &mut server.task).await.unwrap().unwrap().unwrap();
        assert!(began.elapsed() < DRAIN_GRACE, "idle keep-alive connections close at once");
        closed_within(&mut idle, Duration::from_secs(1)).await;
        assert!(TcpStream::connect(server.addr).await.is_err(), "no longer listening");
    }

    #[tokio::test]
    async fn stop_drops_a_hanging_client_after_the_grace() {
        let mut server = start(app_with([green()]), Limits::default()).await;
        let mut slow = TcpStream::connect(server.addr).await.unwrap();
        slow.write_all(b"GET /livez HTTP/1.1\r\nHost").await.unwrap();
        // The half head has reached the server once another request is answered after it.
        assert_eq!(request(server.addr, "GET", "/livez").await.status, 200);
        server.stop();
        tokio::time::timeout(DRAIN_GRACE + Duration::from_secs(2), &mut server.task)
            .await
            .expect("serve returns within the grace")
            .unwrap()
            .unwrap();
        closed_within(&mut slow, Duration::from_secs(1)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_takes_no_answer_is_cut_off() {
        let (near, mut far) = tokio::io::duplex(16);
        let mut guard = StallGuard::new(near, Duration::from_secs(5));
        let began = Instant::now();
        let err = guard.write_all(&[0u8; 64]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(began.elapsed(), Duration::from_secs(5));
        // What was taken before the stall arrived.
        let mut buf = [0u8; 64];
        assert_eq!(far.read(&mut buf).await.unwrap(), 16);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_but_steady_reader_is_not_cut_off() {
        let (near, mut far) = tokio::io::duplex(16);
        let mut guard = StallGuard::new(near, Duration::from_secs(5));
        let reader = tokio::spawn(async move {
            let mut seen = 0;
            let mut buf = [0u8; 8];
            loop {
                tokio::time::sleep(Duration::from_secs(3)).await;
                match far.read(&mut buf).await.unwrap() {
                    0 => return seen,
                    n => seen += n,
                }
            }
        });
        guard.write_all(&[1u8; 64]).await.unwrap();
        guard.shutdown().await.unwrap();
        drop(guard);
        assert_eq!(reader.await.unwrap(), 64);
    }

    #[test]
    fn reasons_stay_on_one_line() {
        assert_eq!(one_line("a\nb\r\n\tc  d"), "a b c d");
        let long = "x".repeat(1000);
        assert_eq!(one_line(&long).len(), MAX_REASON_CHARS + 3);
    }

    #[test]
    fn check_lines() {
        let c = Check {
            name: "Calypso/DataServerConnection".into(),
            ok: false,
            state: Some(State::Red),
            age: Some(Duration::from_millis(420)),
            reason: "connection to DataServer lost\n\tat x".into(),
        };
        assert_eq!(
            check_line(&c),
            "[-]Calypso/DataServerConnection RED age=0.4s: connection to DataServer lost at x"
        );
        let c = Check { name: "ready".into(), ok: true, state: None, age: None, reason: String::new() };
        assert_eq!(check_line(&c), "[+]ready");
    }
}
