//! agent-logship's edge: flags and environment in; a pipeline, a probe server and an exit code.

#![allow(clippy::print_stdout)] // `setup` reports on stdout; without a URL documents go there.

use std::process::ExitCode;

use agent_core::Exit;
use agent_core::shutdown::Signals;
use agent_core::startup::Startup;
use agent_core::supervise::{self, Role};
use agent_logship::config::{Cli, Command, Config, SETTINGS};
use agent_logship::run::{self, Check, Failure};

fn main() -> ExitCode {
    let mut start = match Startup::<Cli>::begin(&SETTINGS) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let command = start.cli.command.take();
    let check_only = start.cli.check;
    // The shipper, a native sidecar, must not end on a panic or an OOM kill either: it runs as a
    // supervised child. Before the runtime: the supervisor must be the only thread.
    if command.is_none()
        && !check_only
        && let Role::Exit(code) = supervise::start("agent-logship", start.termination_path())
    {
        return code;
    }
    // Two workers: reading and encoding on one, compressing and sending on the other.
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return start.fail(Exit::Software, &format!("cannot start the runtime: {e}")),
    };
    let mut listen = None;
    let built = start.try_config_with_dns(|cli, read| Config::build(cli, read, &mut listen));
    let termination = start.termination_path().map(std::path::Path::to_path_buf);
    // `setup` and `--check` exit 64 on bad settings (for CI and Jobs); the shipper itself, a
    // native sidecar, holds instead: an exit would take the Calypso pod out of its Service.
    let held = |problems| {
        runtime.block_on(async {
            match Signals::install(termination.as_deref()) {
                Ok(signals) => {
                    run::hold(problems, listen, signals, termination.as_deref()).await;
                    Exit::Ok.into()
                }
                Err(e) => start.fail(Exit::Software, &format!("cannot install signal handlers: {e}")),
            }
        })
    };
    let (config, dns) = match built {
        Ok(c) => c,
        Err(problems) if check_only || command.is_some() => return start.bad_config(problems),
        Err(problems) => return held(problems),
    };
    if let Some(Command::Setup(_)) = command {
        return match runtime.block_on(run::setup(&config, dns)) {
            Ok(report) => {
                print!("{report}");
                Exit::Ok.into()
            }
            Err(Failure::Config(problems)) => start.bad_config(problems),
            Err(e) => start.fail(Exit::Unavailable, &e.to_string()),
        };
    }
    if check_only {
        let problems = runtime.block_on(async { run::check(&config, &dns, Check::Only) });
        if !problems.is_empty() {
            return start.bad_config(problems);
        }
        println!("the settings are valid: shipping could start");
        return Exit::Ok.into();
    }
    let ran = runtime.block_on(async {
        let signals = Signals::install(termination.as_deref())
            .map_err(|e| Failure::Broken(format!("cannot install signal handlers: {e}")))?;
        run::run(config, dns, signals, termination.as_deref()).await
    });
    match ran {
        Ok(()) => Exit::Ok.into(),
        Err(Failure::Config(problems)) => held(problems),
        Err(e) => start.fail(Exit::Software, &e.to_string()),
    }
}
