//! agent-wait's edge: flags and environment in, exit code (or exec) out.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use agent_core::config::{Problems, process_vars};
use agent_core::http::HttpClient;
use agent_core::logging::Logging;
use agent_core::shutdown::Signals;
use agent_core::{Exit, termination};
use agent_wait::check::Checker;
use agent_wait::{Cli, Config, Outcome, USER_AGENT, wait_all};

fn main() -> ExitCode {
    let vars = process_vars();
    let pairs = || vars.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let term_log = termination::path_from_env(pairs());
    let cli: Cli = match agent_core::cli::parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(stop) => {
            if stop.exit != Exit::Ok {
                termination::write(term_log.as_deref(), &stop.message);
            }
            return stop.exit.into();
        }
    };
    let fail = |exit: Exit, message: &str| {
        tracing::error!("{message}");
        termination::write(term_log.as_deref(), message);
        exit.into()
    };

    let mut problems = Vec::new();
    let logging = Logging::from_vars(pairs()).unwrap_or_else(|mut p| {
        problems.append(&mut p);
        Logging::default()
    });
    logging.init();
    let config = Config::from_parts(cli, &vars).map_err(|mut p| problems.append(&mut p)).ok();
    let config = match config {
        Some(c) if problems.is_empty() => c,
        _ => return fail(Exit::Usage, &Problems(problems).to_string()),
    };

    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(Exit::Software, &format!("cannot start the runtime: {e}")),
    };
    let outcome = runtime.block_on(async {
        let signals = Signals::install().map_err(|e| format!("cannot install signal handlers: {e}"))?;
        let http = HttpClient::new(config.dns.clone(), USER_AGENT)?;
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
