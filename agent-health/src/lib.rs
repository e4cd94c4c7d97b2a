//! agent-health: a probe sidecar for a Calypso server. One poller reads the server's Health Check
//! API; kubelet probes are answered from the cached verdicts, so a probe never reaches the JVM,
//! and a DataServer failover makes servers not-ready without ever getting them restarted.

pub mod app;
pub mod config;
pub mod metrics;
pub mod pattern;
pub mod policy;
pub mod poller;
pub mod probe_client;
pub mod server;
pub mod stats;
pub mod status;
#[cfg(test)]
mod testing;
