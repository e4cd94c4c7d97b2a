//! SIGTERM/SIGINT handling for agents running as PID 1: the first signal starts a graceful stop,
//! a second one aborts at once with exit 143 — after writing the termination message, so that
//! `kubectl describe pod` says why the container stopped before its graceful stop ended.

use std::path::{Path, PathBuf};

use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::{Exit, termination};

/// The signals an agent stops on.
pub struct Signals {
    term: Signal,
    int: Signal,
    termination: Option<PathBuf>,
}

impl Signals {
    /// Installs the handlers; a second signal will write its message to `termination` (the
    /// agent's termination-message path, [`crate::startup::Startup::termination_path`]). Must
    /// be called inside a tokio runtime, early: until then the default disposition (die) applies.
    pub fn install(termination: Option<&Path>) -> std::io::Result<Self> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            termination: termination.map(Path::to_path_buf),
        })
    }

    /// Waits for the first signal and returns its name. From then on a second signal writes
    /// the termination message and exits the process immediately with 143.
    pub async fn first(mut self) -> &'static str {
        let first = tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        };
        tokio::spawn(async move {
            let second = tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = self.int.recv() => "SIGINT",
            };
            let message = aborted(first, second);
            tracing::warn!("{message}");
            termination::write(self.termination.as_deref(), &message);
            std::process::exit(Exit::Terminated.code().into());
        });
        first
    }
}

/// The termination message of a second signal.
fn aborted(first: &str, second: &str) -> String {
    format!("{second} during the graceful stop after {first}: stopped at once")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_message_names_both_signals() {
        assert_eq!(
            super::aborted("SIGTERM", "SIGINT"),
            "SIGINT during the graceful stop after SIGTERM: stopped at once"
        );
    }
}
