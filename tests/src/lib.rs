//! Test doubles for the Calypso pod agents.
//!
//! The centre piece is [`Sim`], a **test double** of a Calypso server's Health Check REST API
//! that follows `docs/health-payloads.md`: it serves the **canonical shape** (`server`, `type`,
//! `state`, `timestamp`, `subSystems[].sensors[]`) on `GET /health`, answering **200 for GREEN
//! and AMBER and 503 for RED**, with the sensors a real server of the simulated component type
//! has. It is scriptable from Rust through [`Control`] and from anything else through its HTTP
//! control API under `/sim/`, can misbehave on purpose ([`Mode`]: hang, slow, garbage, empty 503,
//! close), emulates slow startup and DataServer failover, and can write realistic rotated log4j
//! logs ([`logwriter`]). Every agent test, the demo and the benchmarks run against it; the
//! `calypso-sim` binary wraps it for use as a process.
//!
//! The real Calypso URL, field names and status codes are not public (see the reference); this
//! double fixes one plausible choice, and the agents' parsers accept it among others.

pub mod black_hole;
pub mod client;
pub mod dns;
pub mod docs;
pub mod double;
pub mod es_sim;
pub mod jvm;
pub mod kube_env;
pub mod kube_sim;
pub mod logwriter;
pub mod podman;
pub mod process;
pub mod proxy;
pub mod sim;
pub mod sts_sim;
pub mod tls;
pub mod tools;

pub use sim::{Control, Mode, Sim, SimConfig, SimHandle};
pub use tools::require_tool;

use std::time::{Duration, Instant};

/// Calls `probe` every 20 ms until it returns `Some`, and returns that; panics naming `what` if
/// `timeout` passes first. For tests, which must wait for an outcome rather than sleep a fixed
/// time: `eventually("GREEN", secs(5), async || ...).await`.
///
/// # Panics
///
/// When the deadline passes: the test has failed.
pub async fn eventually<T>(what: &str, timeout: Duration, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    const EVERY: Duration = Duration::from_millis(20);
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(EVERY).await;
    }
}
