//! Runtime plumbing shared by the Calypso pod agents. Holds no Calypso knowledge (that lives in
//! the `calypso` crate): configuration from env and flags, logging, shutdown signals, the
//! supervisor that starts a sidecar again after a crash, exit codes, the Kubernetes termination message, DNS resolution, the HTTP client and retry policy.

pub mod cli;
pub mod config;
pub mod dns;
pub mod env_check;
pub mod exit;
pub mod glob;
pub mod http;
pub mod listen;
pub mod logging;
pub mod mounted;
pub mod redact;
pub mod retry;
pub mod settings;
pub mod shutdown;
pub mod startup;
pub mod supervise;
pub mod termination;

pub use exit::Exit;
