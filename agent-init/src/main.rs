//! agent-init's edge: flags and environment in, files (or a report) and an exit code out.

#![allow(clippy::print_stdout)] // --check and --print report on stdout.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;

use agent_core::Exit;
use agent_core::config::{Problem, non_utf8_var_names};
use agent_core::startup::Startup;
use agent_init::config::{Action, SETTINGS};
use agent_init::run::{Failure, once};
use agent_init::sources::EnvAndSecrets;
use agent_init::stop::{self, Gate, Guarded, Stops};
use agent_init::{Cli, Config, report, watch};

fn main() -> ExitCode {
    // The signal handlers come first: as PID 1, a SIGTERM that arrives before them is dropped
    // by the kernel. Their failure is reported once the termination-message path is known.
    let setup = tokio::runtime::Builder::new_current_thread().enable_all().build().and_then(|runtime| {
        let stops = {
            let _context = runtime.enter();
            stop::install()?
        };
        Ok((runtime, stops))
    });
    let mut start = match Startup::<Cli>::begin(&SETTINGS) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let (runtime, stops) = match setup {
        Ok(s) => s,
        Err(e) => return start.fail(Exit::Software, &format!("cannot install the signal handlers: {e}")),
    };
    let config = start.config(|cli, read| {
        let config = Config::from_parts(cli, read)?;
        // Only a write needs the directory; --check and --print may run anywhere.
        match &config.output {
            Some(dir) if config.action == Action::Write && !dir.is_dir() => {
                Err(vec![Problem::new("AGENT_INIT_OUTPUT", dir.display().to_string(), "no such directory")])
            }
            _ => Ok(config),
        }
    });
    let config = match config {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    let values = EnvAndSecrets {
        vars: start.vars.iter().cloned().collect::<HashMap<_, _>>(),
        not_utf8: non_utf8_var_names().into_iter().collect(),
        secrets_dir: config.secrets_dir.clone(),
    };
    let exit = runtime.block_on(run(&start, config, values, stops));
    // A pass abandoned on a signal may still be blocked reading (a FIFO, a hung volume): do
    // not wait for it.
    runtime.shutdown_background();
    exit
}

async fn run(start: &Startup<Cli>, config: Config, values: EnvAndSecrets, mut stops: Stops) -> ExitCode {
    let (config, values, gate) = (Arc::new(config), Arc::new(values), Arc::new(Gate::default()));
    if config.watch {
        return match watch::watch(config, values, gate, &mut stops).await {
            // A watcher told to stop has done its job.
            Ok(signal) => {
                tracing::info!("{signal}: stopped watching");
                Exit::Ok.into()
            }
            Err(failure) => report_failure(start, &failure),
        };
    }
    let pass = {
        let config = config.clone();
        move |gate: &Gate| once(&config, &*values, gate)
    };
    let rendered = match stop::guarded(&gate, &mut stops, pass).await {
        Guarded::Finished { result: Ok(rendered), stop } => {
            if let Some(signal) = stop {
                tracing::warn!("{signal} came while the files were renamed into place: they are all written");
            }
            rendered
        }
        Guarded::Finished { result: Err(failure), .. } => return report_failure(start, &failure),
        Guarded::Abandoned(signal) => return report_failure(start, &Failure::Stopped(signal)),
        Guarded::Died(e) => {
            return report_failure(start, &Failure::Internal(format!("the rendering task died: {e}")));
        }
    };
    match config.action {
        Action::Check => print!("{}", report::check(&rendered)),
        Action::Print => print!("{}", report::print(&rendered)),
        Action::Write => {}
    }
    Exit::Ok.into()
}

/// Every problem on stderr (one log line each), then the summary as the termination message.
fn report_failure(start: &Startup<Cli>, failure: &Failure) -> ExitCode {
    for item in failure.items() {
        tracing::error!("{item}");
    }
    match failure {
        Failure::Stopped(_) => tracing::warn!("{}", failure.headline()),
        _ => tracing::error!("{}", failure.headline()),
    }
    start.terminate(failure.exit(), &failure.summary())
}
