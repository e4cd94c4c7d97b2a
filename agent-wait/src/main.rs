//! agent-wait's edge: flags and environment in, exit code (or exec) out.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use agent_core::Exit;
use agent_core::http::HttpClient;
use agent_core::shutdown::Signals;
use agent_core::startup::Startup;
use agent_wait::check::Checker;
use agent_wait::config::SETTINGS;
use agent_wait::{Cli, Config, Outcome, USER_AGENT, wait_all};

fn main() -> ExitCode {
    let mut start = match Startup::<Cli>::begin(&SETTINGS) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let config = match start.config(Config::from_parts) {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    let fail = |exit: Exit, message: &str| start.fail(exit, message);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(Exit::Software, &format!("cannot start the runtime: {e}")),
    };
    let outcome = runtime.block_on(async {
        let signals = Signals::install(start.termination_path())
            .map_err(|e| format!("cannot install signal handlers: {e}"))?;
        let http = HttpClient::new(config.dns.clone(), USER_AGENT, config.rules.attempt_timeout)
            .map_err(|e| e.to_string())?;
        let checker = Checker::new(config.dns.clone(), http, config.rules.clone());
        if let Some(c) = config.component {
            tracing::info!(component = %c, "waiting for the dependencies of the {c}");
        }
        Ok::<_, String>(
            wait_all(&config.targets, &checker, config.timeout, config.max_interval, signals.first()).await,
        )
    });
    // Probes still running (none after success) are dropped with the runtime, not awaited.
    runtime.shutdown_background();

    match outcome {
        Err(e) => fail(Exit::Software, &e),
        Ok(Outcome::DeadlinePassed(message)) => fail(Exit::Timeout, &message),
        Ok(Outcome::Terminated(message)) => fail(Exit::Terminated, &message),
        Ok(Outcome::Ready(line)) => {
            tracing::info!("{line}");
            match config.command.split_first() {
                None => Exit::Ok.into(),
                Some((program, args)) => {
                    tracing::info!(command = %program, "starting the command");
                    // exec only returns on failure; the error names the program, not its args
                    // (they may hold secrets).
                    let e = Command::new(program).args(args).exec();
                    let exit = if e.kind() == std::io::ErrorKind::NotFound {
                        Exit::CommandNotFound
                    } else {
                        Exit::CannotExecute
                    };
                    fail(exit, &format!("cannot run {program:?}: {e}"))
                }
            }
        }
    }
}
