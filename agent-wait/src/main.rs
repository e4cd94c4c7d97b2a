//! agent-wait's edge: flags and environment in, exit code (or exec) out.

use std::process::{Command, ExitCode};

use agent_core::Exit;
use agent_core::http::HttpClient;
use agent_core::startup::Startup;
use agent_wait::check::Checker;
use agent_wait::config::SETTINGS;
use agent_wait::gate::{Gate, NotExecuted};
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
    // Before the runtime: every thread it starts inherits the blocked signals.
    let gate = match Gate::install() {
        Ok(g) => g,
        Err(e) => return fail(Exit::Software, &format!("cannot set up signal handling: {e}")),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(Exit::Software, &format!("cannot start the runtime: {e}")),
    };
    let outcome = runtime.block_on(async {
        let http = HttpClient::new(config.dns.clone(), USER_AGENT, config.rules.attempt_timeout)
            .map_err(|e| e.to_string())?;
        let checker = Checker::new(config.dns.clone(), http, config.rules.clone());
        if let Some(c) = config.component {
            tracing::info!(component = %c, "waiting for the dependencies of the {c}");
        }
        Ok::<_, String>(
            wait_all(&config.targets, &checker, config.timeout, config.max_interval, gate.first()).await,
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
                    let mut command = Command::new(program);
                    command.args(args);
                    // Returns only when the command did not start; the error names the program,
                    // not its args (they may hold secrets).
                    match gate.exec(command) {
                        NotExecuted::Stopped(signal) => fail(
                            Exit::Terminated,
                            &format!("{signal} after every target was ready, before {program:?} started"),
                        ),
                        NotExecuted::Failed(e) => {
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
    }
}
