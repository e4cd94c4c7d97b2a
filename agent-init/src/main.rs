//! agent-init's edge: flags and environment in, files (or a report) and an exit code out.

#![allow(clippy::print_stdout)] // --check and --print report on stdout.

use std::collections::HashMap;
use std::process::ExitCode;

use agent_core::Exit;
use agent_core::config::{Problem, non_utf8_var_names};
use agent_core::shutdown::Signals;
use agent_core::startup::Startup;
use agent_init::config::Action;
use agent_init::output::write_all;
use agent_init::render::built_in_requirements;
use agent_init::run::{Failure, render_from_dirs};
use agent_init::sources::EnvAndSecrets;
use agent_init::{Cli, Config, report, watch};

fn main() -> ExitCode {
    let mut start = match Startup::<Cli>::begin() {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let config = start.config(|cli, vars| {
        let config = Config::from_parts(cli, vars)?;
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
    let fail = |exit: Exit, message: &str| start.terminate(exit, message);
    let values = EnvAndSecrets {
        vars: start.vars.iter().cloned().collect::<HashMap<_, _>>(),
        not_utf8: non_utf8_var_names().into_iter().collect(),
        secrets_dir: config.secrets_dir.clone(),
    };

    let rendered = match render_from_dirs(&config, &values) {
        Ok(r) => r,
        Err(failure) => return report_failure(&failure, &fail),
    };
    // A user's required key for files that do not exist here is likely a typo in the prefix.
    // (The built-in requirements come first and apply only where their files exist.)
    for req in config.require.iter().skip(built_in_requirements().len()) {
        if let Some(prefix) = &req.file_prefix
            && !rendered.iter().any(|f| f.output.starts_with(prefix.as_str()))
        {
            tracing::warn!(prefix = %prefix, key = %req.key, "no rendered file starts with this required-key prefix");
        }
    }
    let output = match (config.action, &config.output) {
        (Action::Check, _) => {
            print!("{}", report::check(&rendered));
            return Exit::Ok.into();
        }
        (Action::Print, _) => {
            print!("{}", report::print(&rendered));
            return Exit::Ok.into();
        }
        (Action::Write, Some(output)) => output.clone(),
        (Action::Write, None) => return fail(Exit::Software, "no output directory"),
    };
    match write_all(&output, &rendered, config.owner) {
        Ok(written) => {
            let names: Vec<&str> = rendered.iter().map(|f| f.output.as_str()).collect();
            tracing::info!(
                written = written.len(),
                unchanged = rendered.len() - written.len(),
                dir = %output.display(),
                "rendered {}",
                names.join(", ")
            );
        }
        Err(e) => return report_failure(&Failure::Write(e), &fail),
    }
    if !config.watch {
        return Exit::Ok.into();
    }

    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(Exit::Software, &format!("cannot start the runtime: {e}")),
    };
    let result = runtime.block_on(async {
        let signals = Signals::install(start.termination_path())
            .map_err(|e| format!("cannot install signal handlers: {e}"))?;
        watch::watch(&config, &output, &values, rendered, signals.first()).await
    });
    match result {
        // A watcher told to stop has done its job.
        Ok(signal) => {
            tracing::info!("{signal}: stopped watching");
            Exit::Ok.into()
        }
        Err(e) => {
            tracing::error!("{e}");
            fail(Exit::Software, &e)
        }
    }
}

fn report_failure(failure: &Failure, fail: &dyn Fn(Exit, &str) -> ExitCode) -> ExitCode {
    for item in failure.items() {
        tracing::error!("{item}");
    }
    tracing::error!("{}", failure.headline());
    fail(failure.exit(), &failure.summary())
}
