//! The listener the HTTP doubles (es-sim, kube-sim) share: bound once, it can go down
//! (connections refused, open ones closed once their answer in flight is written) and come back
//! on the same address, now or after a while, and it carries the double's exit request
//! (`POST /_sim/exit`). Each double supplies what serves a connection, and hands its tests this
//! listener's controls (`down`, `up`, `down_for`, `is_up`, `url`, `exit_requested`) by `Deref`.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::HttpService;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Serves one accepted connection; the receiver changes when the listener goes down.
pub type Serve = Arc<dyn Fn(TcpStream, watch::Receiver<u64>) + Send + Sync>;

const BACKLOG: u32 = 1024;

#[derive(Default)]
struct Tasks {
    /// The accept loop while up.
    acceptor: Option<JoinHandle<()>>,
    /// The pending `up` of a timed down.
    timed_up: Option<JoinHandle<()>>,
}

pub struct Listener {
    addr: SocketAddr,
    /// Bumped by `down` and `stop`: the accept loop ends, connections and streams close.
    epoch: watch::Sender<u64>,
    /// Bound by `bind`, served from `start`.
    bound: Mutex<Option<TcpListener>>,
    serve: OnceLock<Serve>,
    tasks: Mutex<Tasks>,
    /// Set when an exit is asked for (the control API) and when stopped.
    exit: watch::Sender<bool>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").field("addr", &self.addr).finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Binds with `SO_REUSEADDR`, so that `up` gets the same port back despite TIME_WAITs.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

impl Listener {
    /// Binds `addr` (port 0: a free one); nothing is accepted before [`Listener::start`].
    pub fn bind(addr: SocketAddr) -> std::io::Result<Arc<Listener>> {
        let listener = bind(addr)?;
        Ok(Arc::new(Listener {
            addr: listener.local_addr()?,
            epoch: watch::Sender::new(0),
            bound: Mutex::new(Some(listener)),
            serve: OnceLock::new(),
            tasks: Mutex::default(),
            exit: watch::Sender::new(false),
        }))
    }

    /// Accepts from now on, each connection handed to `serve` (kept for every later `up`).
    pub fn start(&self, serve: Serve) {
        let serve = self.serve.get_or_init(|| serve).clone();
        if let Some(listener) = lock(&self.bound).take() {
            lock(&self.tasks).acceptor =
                Some(tokio::spawn(accept(listener, serve, self.epoch.clone(), self.subscribe())));
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (loopback when bound to an unspecified address), no trailing slash.
    pub fn url(&self) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() { Ipv4Addr::LOCALHOST.into() } else { Ipv6Addr::LOCALHOST.into() });
        }
        format!("http://{addr}")
    }

    /// Changes when the listener goes down: long answers (a watch) end then.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.epoch.subscribe()
    }

    pub fn is_up(&self) -> bool {
        lock(&self.tasks).acceptor.as_ref().is_some_and(|a| !a.is_finished())
    }

    /// Listens again on the same address (a no-op when listening).
    pub fn up(&self) -> std::io::Result<()> {
        let mut tasks = lock(&self.tasks);
        if tasks.acceptor.as_ref().is_some_and(|a| !a.is_finished()) {
            return Ok(());
        }
        let Some(serve) = self.serve.get().cloned() else { return Ok(()) };
        let listener = bind(self.addr)?;
        tasks.acceptor = Some(tokio::spawn(accept(listener, serve, self.epoch.clone(), self.subscribe())));
        Ok(())
    }

    /// Closes the listener (connections refused from when this returns) and every connection
    /// once its answer in flight is written.
    pub async fn down(&self) {
        self.epoch.send_modify(|e| *e += 1);
        let task = lock(&self.tasks).acceptor.take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Down now, up after `duration` in the background.
    pub async fn down_for(self: &Arc<Self>, duration: Duration) {
        self.down().await;
        let again = self.clone();
        let task = tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            if let Err(error) = again.up() {
                tracing::error!(%error, addr = %again.addr, "cannot listen again");
            }
        });
        if let Some(old) = lock(&self.tasks).timed_up.replace(task) {
            old.abort();
        }
        tracing::info!(for_ = ?duration, "down");
    }

    /// Asks the double's program to exit (`POST /_sim/exit`).
    pub fn request_exit(&self) {
        self.exit.send_replace(true);
    }

    /// Resolves once an exit was asked for, or the listener stopped.
    pub async fn exit_requested(&self) {
        let mut exit = self.exit.subscribe();
        let _ = exit.wait_for(|e| *e).await;
    }

    /// Down for good, at once.
    pub fn stop(&self) {
        self.exit.send_replace(true);
        self.epoch.send_modify(|e| *e += 1);
        let mut tasks = lock(&self.tasks);
        for task in [tasks.acceptor.take(), tasks.timed_up.take()].into_iter().flatten() {
            task.abort();
        }
    }
}

/// Accepts until the epoch changes (down or stop); the listener is dropped with this task.
/// `changed` is subscribed before the task is spawned: a `down` right after `up` must be seen
/// even if this task has not run yet.
async fn accept(
    listener: TcpListener,
    serve: Serve,
    epoch: watch::Sender<u64>,
    mut changed: watch::Receiver<u64>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => serve(stream, epoch.subscribe()),
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = changed.changed() => break,
        }
    }
}

/// Serves HTTP/1 on one connection with `service` until the client closes it, or the epoch
/// changes: then the answer in flight (e.g. to `/_sim/down`) is finished and the connection
/// closed.
pub async fn connection<S>(stream: TcpStream, service: S, mut epoch: watch::Receiver<u64>)
where
    S: HttpService<Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new());
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = epoch.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended");
    }
}
