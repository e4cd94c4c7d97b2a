//! The Calypso server simulator: a test double of one Calypso server's Health Check REST API,
//! following `docs/health-payloads.md` (canonical JSON shape, 200 for GREEN/AMBER, 503 for RED).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use calypso::{Component, State};
//! use calypso_testkit::{Mode, Sim, SimConfig};
//!
//! let sim = Sim::start(SimConfig::new(Component::DataServer)).await?;
//! let url = sim.health_url(); // http://127.0.0.1:PORT/health, GREEN
//! sim.control().set_sensor("Calypso/DatabaseConnection", State::Red, Some(0.0), Some("db down"));
//! sim.control().set_mode(Mode::Hang);
//! sim.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Lifecycle: [`Sim::start`] binds at once (so the port is known), listens only after
//! `listen_delay` (connections are refused until then), and reports RED "starting" until
//! `startup_delay` after the start, then the component's sensors.
//!
#![doc = include_str!("sensors.md")]
//!
#![doc = include_str!("control-api.md")]

mod api;
mod control;
mod sensors;
mod server;
mod upstream;

pub use control::{Control, Mode};
pub use sensors::{Connections, has_data_server_connection};
pub use server::GARBAGE as GARBAGE_BODY;

use crate::logwriter::{LogConfig, LogWriter};
use calypso::{Component, State};
use std::io::{Error, ErrorKind};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::net::TcpSocket;
use tokio::task::{JoinHandle, JoinSet};

/// How to run one simulated server.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub component: Component,
    /// The `server` field of the report (`engineserver-0`).
    pub server_name: String,
    /// Where to bind; port 0 picks a free one ([`SimHandle::addr`] tells which).
    pub listen: SocketAddr,
    /// The health path (`/health`).
    pub path: String,
    /// Bound but not listening (connections refused) for this long after the start.
    pub listen_delay: Duration,
    /// From the start until the server leaves RED "starting".
    pub startup_delay: Duration,
    /// A DataServer health URL (`http://`) to poll for `Calypso/DataServerConnection` (failover
    /// emulation); only for component types that have that sensor. Shown redacted.
    pub upstream: Option<String>,
    /// How often to poll the upstream.
    pub upstream_interval: Duration,
    /// Write a rotated log4j log while running.
    pub log: Option<LogConfig>,
    /// Where the server says it is connected (the details of its connection sensors).
    pub connections: Connections,
}

impl SimConfig {
    /// `127.0.0.1:0`, `/health`, no delays, no upstream (polled every 250 ms when set), no log,
    /// server name `<lowercased component>-0`, the example connection details.
    pub fn new(component: Component) -> SimConfig {
        SimConfig {
            component,
            server_name: format!("{}-0", component.name().to_lowercase()),
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            path: "/health".to_owned(),
            listen_delay: Duration::ZERO,
            startup_delay: Duration::ZERO,
            upstream: None,
            upstream_interval: Duration::from_millis(250),
            log: None,
            connections: Connections::default(),
        }
    }
}

/// Starts simulators.
#[derive(Debug)]
pub struct Sim;

impl Sim {
    /// Binds `cfg.listen` now and starts serving in the background: listening after the listen
    /// delay, polling the upstream and writing the log if configured. Fails when the address
    /// cannot be bound or the log file cannot be opened, and with [`ErrorKind::InvalidInput`]
    /// when an upstream is set that is not an `http://` URL or on a component type without a
    /// `Calypso/DataServerConnection` sensor (EventServer, AuthServer, DataServer).
    pub async fn start(cfg: SimConfig) -> std::io::Result<SimHandle> {
        if let Some(url) = &cfg.upstream {
            check_upstream(cfg.component, url)?;
        }
        let socket = if cfg.listen.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        // A restarted simulator on a fixed port must not wait for the old one's TIME_WAITs.
        socket.set_reuseaddr(true)?;
        socket.bind(cfg.listen)?;
        let addr = socket.local_addr()?;
        let listen = server::Listen::new(socket, cfg.listen_delay)?;
        let log = cfg.log.map(LogWriter::open).transpose()?;

        let control =
            Control::new(cfg.component, cfg.server_name.clone(), Instant::now() + cfg.startup_delay);
        for (path, details) in sensors::connection_details(cfg.component, &cfg.connections) {
            control.set_sensor_at(&path, State::Green, Some(1.0), Some(&details));
        }
        let path = if cfg.path.starts_with('/') { cfg.path } else { format!("/{}", cfg.path) };
        tracing::info!(component = %cfg.component, server = %cfg.server_name, %addr, "bound");

        let mut tasks = JoinSet::new();
        tasks.spawn(server::run(listen, control.clone(), path.clone()));
        if let Some(url) = cfg.upstream {
            // Not connected until the first poll says so, as a real server starts disconnected.
            control.set_sensor_at(
                &[sensors::CALYPSO, sensors::DATA_SERVER_CONNECTION],
                State::Red,
                Some(0.0),
                Some(&format!("connecting to DataServer at {}", agent_core::redact::url(&url))),
            );
            tasks.spawn(upstream::poll(control.clone(), url, cfg.upstream_interval));
        }
        if let Some(writer) = log {
            let stop = control.clone();
            tasks.spawn(async move {
                if let Err(error) = writer.run(async move { stop.stopped().await }).await {
                    tracing::error!(%error, "log writer failed");
                }
            });
        }
        let supervisor = tokio::spawn(async move { while tasks.join_next().await.is_some() {} });
        Ok(SimHandle { addr, path, control, supervisor: Some(supervisor) })
    }
}

/// An upstream is polled to drive `Calypso/DataServerConnection`: refused where there is no such
/// sensor (rather than creating one a real server of that type never has), and unless it is an
/// `http://` URL (the error does not repeat it: it may hold credentials).
fn check_upstream(component: Component, url: &str) -> std::io::Result<()> {
    if !sensors::has_data_server_connection(component) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!(
                "an upstream DataServer is only for component types that connect to it; \
the {component} has no Calypso/DataServerConnection sensor"
            ),
        ));
    }
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "http" && u.host().is_some() => Ok(()),
        _ => Err(Error::new(ErrorKind::InvalidInput, "the upstream must be an http:// URL with a host")),
    }
}

/// A running simulator. Dropping it stops it in the background; [`SimHandle::shutdown`] stops
/// it and waits until it has.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    path: String,
    control: Control,
    supervisor: Option<JoinHandle<()>>,
}

impl SimHandle {
    /// The bound address (the real port when bound to port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/health` (loopback when bound to an unspecified address).
    pub fn health_url(&self) -> String {
        self.url(&self.path)
    }

    /// `http://127.0.0.1:PORT<path>`, e.g. for `/sim/report`.
    pub fn url(&self, path: &str) -> String {
        let mut addr = self.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() { Ipv4Addr::LOCALHOST.into() } else { Ipv6Addr::LOCALHOST.into() });
        }
        format!("http://{addr}{path}")
    }

    /// Scripts this simulator.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// Resolves once the simulator was told to stop, by `POST /sim/exit` or by a shutdown.
    pub async fn exit_requested(&self) {
        self.control.stopped().await;
    }

    /// Stops serving (answers in flight are finished, hanging ones dropped), polling and
    /// logging, and waits until everything has stopped.
    pub async fn shutdown(mut self) {
        self.control.request_stop();
        if let Some(task) = self.supervisor.take() {
            let _ = task.await;
        }
        tracing::info!(addr = %self.addr, "stopped");
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.control.request_stop();
    }
}
