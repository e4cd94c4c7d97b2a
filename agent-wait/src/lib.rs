//! agent-wait: an init container (or entrypoint wrapper) that blocks until the dependencies of a
//! Calypso server are truly healthy — a DataServer whose health report is GREEN, not one whose
//! port is open — then exits 0 or execs the given command.

pub mod check;
pub mod config;
pub mod connect;
pub mod gate;
pub mod predicate;
pub mod progress;
pub mod target;
pub mod wait;

pub use config::{Cli, Config};
pub use wait::{Outcome, wait_all};

/// The User-Agent of every check, so Calypso's access logs show who is asking.
pub const USER_AGENT: &str = concat!("agent-wait/", env!("CARGO_PKG_VERSION"));
