//! SIGTERM/SIGINT handling for agents running as PID 1: the first signal starts a graceful stop,
//! a second one aborts at once with exit 143.

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::Exit;

/// The signals an agent stops on.
pub struct Signals {
    term: Signal,
    int: Signal,
}

impl Signals {
    /// Installs the handlers. Must be called inside a tokio runtime, early: until then the
    /// default disposition (die) applies.
    pub fn install() -> std::io::Result<Self> {
        Ok(Signals { term: signal(SignalKind::terminate())?, int: signal(SignalKind::interrupt())? })
    }

    /// Waits for the first signal and returns its name. From then on a second signal exits
    /// the process immediately with 143.
    pub async fn first(mut self) -> &'static str {
        let name = tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        };
        tokio::spawn(async move {
            tokio::select! {
                _ = self.term.recv() => {},
                _ = self.int.recv() => {},
            }
            tracing::warn!("second signal: aborting");
            std::process::exit(Exit::Terminated.code().into());
        });
        name
    }
}
