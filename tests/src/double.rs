//! What the test doubles share: the start of their binaries (calypso-sim, es-sim, kube-sim) —
//! flags parsed as the agents parse theirs, logging from `AGENT_LOG` / `AGENT_LOG_FORMAT` — and
//! the HTTP doubles' [`listener`] that goes down and comes back.

pub mod listener;

use std::process::ExitCode;

use agent_core::Exit;
use agent_core::config::{Problems, process_vars};
use agent_core::logging::Logging;

/// Parses the command line into `C` and starts logging; `Err` is the exit code for `--help`,
/// `--version` or a usage error (already reported).
pub fn begin<C: clap::Parser>() -> Result<C, ExitCode> {
    let cli: C = agent_core::cli::parse(std::env::args_os()).map_err(|stop| ExitCode::from(stop.exit))?;
    let vars = process_vars();
    match Logging::from_vars(vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        Ok(logging) => logging.init(),
        Err(problems) => {
            Logging::default().init();
            tracing::error!("{}", Problems(problems));
            return Err(Exit::Usage.into());
        }
    }
    Ok(cli)
}
