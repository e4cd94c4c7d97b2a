//! `/livez`, `/readyz` and `/metrics`. Readiness says only that the pipeline runs: an
//! Elasticsearch outage must never take the Calypso pod out of its Service (a native sidecar's
//! readiness counts for the pod's), so the outage shows in the metrics (lag, retries), not here.
//! Liveness fails only when a pipeline task has died — a restart would fix that, not an outage.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::metrics::Observed;

/// Connections served at once; more are closed at accept (a probe or a scrape needs one).
const MAX_CONNECTIONS: usize = 64;
/// A client must send its request head within this.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

type Body = Full<Bytes>;

/// Serves until `stop` completes.
pub async fn serve(
    listener: TcpListener,
    observed: Arc<Observed>,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    let mut stop = pin!(stop);
    loop {
        tokio::select! {
            biased;
            () = &mut stop => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if let Ok(permit) = permits.clone().try_acquire_owned() {
                        connections.spawn(connection(stream, observed.clone(), permit));
                    }
                }
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
    connections.shutdown().await;
    Ok(())
}

async fn connection(stream: tokio::net::TcpStream, observed: Arc<Observed>, _permit: OwnedSemaphorePermit) {
    let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let answer = respond(&observed, req.method(), req.uri().path());
        async move { Ok::<_, Infallible>(answer) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT);
    if let Err(error) = builder.serve_connection(TokioIo::new(stream), service).await {
        tracing::debug!(%error, "connection ended");
    }
}

/// The answer to one request; request bodies are never read.
pub fn respond(observed: &Observed, method: &Method, path: &str) -> Response<Body> {
    if !matches!(path, "/livez" | "/readyz" | "/metrics") {
        return answer(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "not found\n".into());
    }
    if method != Method::GET && method != Method::HEAD {
        let mut a = answer(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "method not allowed\n".into(),
        );
        a.headers_mut().insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return a;
    }
    let verdict = match path {
        "/livez" => observed.live(),
        "/readyz" => observed.ready(),
        _ => return answer(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", observed.render()),
    };
    match verdict {
        Ok(()) => answer(StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into()),
        Err(reason) => {
            answer(StatusCode::SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", format!("{reason}\n"))
        }
    }
}

fn answer(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
