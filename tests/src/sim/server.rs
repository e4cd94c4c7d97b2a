//! The HTTP side: listening once the listen delay has passed, one task per connection, routing
//! between the health path (whose answer depends on the [`Mode`]) and the control API.

use super::api::{self, Command};
use super::control::{Control, Mode};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinSet;

/// The body [`Mode::Garbage`] serves: it looks like the start of a health document, and is not
/// one, so a parser has to fail cleanly on it.
pub const GARBAGE: &str = "{\"state\": GRE";

/// How long in-flight answers may take to finish once the simulator stops. Hanging and slow
/// health answers do not count: they give up on the stop signal at once.
const STOP_GRACE: Duration = Duration::from_secs(2);

type Body = Full<Bytes>;

/// A health request the mode says not to answer: returning it from the service makes hyper
/// close the connection without writing anything.
#[derive(Debug, thiserror::Error)]
#[error("closed without answering, on purpose")]
struct Unanswered;

struct Router {
    control: Control,
    health_path: String,
}

/// The listen backlog: generous, so that load tests see refusals only when the sim means them.
const BACKLOG: u32 = 1024;

/// A bound socket, listening now or after a delay.
pub(crate) enum Listen {
    Now(TcpListener),
    Later(TcpSocket, Duration),
}

impl Listen {
    /// Listens at once when there is no delay, so that a simulator without one accepts
    /// connections as soon as [`super::Sim::start`] returns.
    pub(crate) fn new(socket: TcpSocket, delay: Duration) -> std::io::Result<Listen> {
        if delay.is_zero() {
            socket.listen(BACKLOG).map(Listen::Now)
        } else {
            Ok(Listen::Later(socket, delay))
        }
    }
}

/// Serves until the simulator is told to stop; before a delayed listen, connections are refused.
pub(crate) async fn run(listen: Listen, control: Control, health_path: String) {
    let listener = match listen {
        Listen::Now(listener) => listener,
        Listen::Later(socket, delay) => {
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = control.stopped() => return,
            }
            match socket.listen(BACKLOG) {
                Ok(l) => l,
                Err(error) => {
                    tracing::error!(%error, "cannot listen");
                    control.request_stop();
                    return;
                }
            }
        }
    };
    tracing::info!(path = %health_path, health = %control.report().summary(), "listening");
    let router = Arc::new(Router { control: control.clone(), health_path });
    let mut connections = JoinSet::new();
    let mut starting = control.starting();
    let startup_end = tokio::time::Instant::from_std(control.startup_end());
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(startup_end), if starting => {
                starting = false;
                tracing::info!(health = %control.report().summary(), "startup complete");
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(connection(stream, router.clone()));
                }
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Reap finished connections so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = control.stopped() => break,
        }
    }
    drop(listener);
    let drained =
        tokio::time::timeout(STOP_GRACE, async { while connections.join_next().await.is_some() {} });
    if drained.await.is_err() {
        tracing::warn!(
            left = connections.len(),
            "connections still open after the grace period, dropping them"
        );
    }
}

async fn connection(stream: TcpStream, router: Arc<Router>) {
    let control = router.control.clone();
    let service = hyper::service::service_fn(move |req| {
        let router = router.clone();
        async move { router.handle(req).await }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new());
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = control.stopped() => {
            // Finish the answer in flight (e.g. to /sim/exit), then close.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended");
    }
}

impl Router {
    async fn handle(&self, req: Request<Incoming>) -> Result<Response<Body>, Unanswered> {
        let path = req.uri().path();
        if path == self.health_path {
            self.control.count_request();
            let answer = self.health(req.method()).await?;
            self.control.count_answer();
            Ok(answer)
        } else if path.starts_with(api::PREFIX) {
            Ok(self.control_api(req.method(), path, req.uri().query()))
        } else {
            Ok(text(StatusCode::NOT_FOUND, format!("not found: {path} (health is at {})", self.health_path)))
        }
    }

    async fn health(&self, method: &Method) -> Result<Response<Body>, Unanswered> {
        if method != Method::GET && method != Method::HEAD {
            return Ok(text(StatusCode::METHOD_NOT_ALLOWED, format!("method {method} not allowed, use GET")));
        }
        match self.control.mode() {
            Mode::Normal => Ok(self.report()),
            Mode::Slow(delay) => {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => Ok(self.report()),
                    _ = self.control.stopped() => Err(Unanswered),
                }
            }
            Mode::Hang => {
                self.control.stopped().await;
                Err(Unanswered)
            }
            Mode::Close => Err(Unanswered),
            Mode::Garbage => Ok(json(StatusCode::OK, GARBAGE.into())),
            Mode::EmptyUnavailable => Ok(response(StatusCode::SERVICE_UNAVAILABLE, None, Bytes::new())),
        }
    }

    /// The current report, 200 for GREEN/AMBER and 503 for RED.
    fn report(&self) -> Response<Body> {
        let report = self.control.report();
        let status = match report.state {
            calypso::State::Red => StatusCode::SERVICE_UNAVAILABLE,
            calypso::State::Green | calypso::State::Amber => StatusCode::OK,
        };
        json(status, report.to_canonical_json().to_string().into())
    }

    fn control_api(&self, method: &Method, path: &str, query: Option<&str>) -> Response<Body> {
        let command = match api::parse(method.as_str(), path, query) {
            Ok(c) => c,
            Err(e) => {
                let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
                return text(status, e.to_string());
            }
        };
        match command {
            Command::SetSensor { path, state, value, details } => {
                let path: Vec<&str> = path.iter().map(String::as_str).collect();
                self.control.set_sensor_at(&path, state, value, details.as_deref());
                tracing::info!(sensor = %path.join("/"), %state, "sensor set");
                json(StatusCode::OK, self.control.report().to_canonical_json().to_string().into())
            }
            Command::SetMode(mode) => {
                self.control.set_mode(mode);
                text(StatusCode::OK, format!("mode {mode}"))
            }
            // Whatever the mode: this is how a test sees what the health path would say.
            Command::Report => {
                json(StatusCode::OK, self.control.report().to_canonical_json().to_string().into())
            }
            Command::Exit => {
                tracing::info!("exit requested");
                self.control.request_stop();
                text(StatusCode::OK, "exiting".into())
            }
        }
    }
}

fn json(status: StatusCode, body: Bytes) -> Response<Body> {
    response(status, Some("application/json"), body)
}

/// A one-line text answer.
fn text(status: StatusCode, mut line: String) -> Response<Body> {
    line.push('\n');
    response(status, Some("text/plain; charset=utf-8"), line.into())
}

fn response(status: StatusCode, content_type: Option<&'static str>, body: Bytes) -> Response<Body> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    if let Some(ct) = content_type {
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    r
}
