//! agent-health's edge: flags and environment in; a poller, a probe server and an exit code.

#![allow(clippy::print_stdout)] // `check` reports on stdout.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use agent_core::Exit;
use agent_core::config::Problem;
use agent_core::dns::Dns;
use agent_core::http::HttpClient;
use agent_core::listen::BindError;
use agent_core::shutdown::Signals;
use agent_core::startup::Startup;
use agent_health::app::App;
use agent_health::config::{CheckArgs, Cli, Command, Config, ListenOn, SETTINGS};
use agent_health::poller;
use agent_health::probe_client::{self, CheckError};
use agent_health::server::{Limits, Scope, serve};
use tokio::net::TcpListener;
use tokio::sync::watch;

const USER_AGENT: &str = concat!("agent-health/", env!("CARGO_PKG_VERSION"));

fn main() -> ExitCode {
    let mut start = match Startup::<Cli>::begin(&SETTINGS) {
        Ok(s) => s,
        Err(exit) => return exit,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return start.fail(Exit::Software, &format!("cannot start the runtime: {e}")),
    };
    if let Some(Command::Check(args)) = start.cli.command.take() {
        return runtime.block_on(check(args));
    }
    let (config, dns) = match start.config_with_dns(Config::from_parts) {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    match runtime.block_on(run(config, dns, start.termination_path())) {
        Ok(()) => Exit::Ok.into(),
        // An address in use or not on this host: the setting is wrong, not the program.
        Err(Failure::Bind(on, e)) if e.is_configuration() => {
            start.bad_config(vec![Problem::new(&on.setting, on.at.to_string(), e.to_string())])
        }
        Err(Failure::Bind(on, e)) => start.fail(Exit::Software, &format!("{}: {e}", on.setting)),
        Err(Failure::Other(e)) => start.fail(Exit::Software, &e),
    }
}

/// Why agent-health stopped other than by a signal.
enum Failure {
    /// A listening address could not be had.
    Bind(ListenOn, BindError),
    Other(String),
}

impl From<String> for Failure {
    fn from(e: String) -> Self {
        Failure::Other(e)
    }
}

fn bind(on: &ListenOn) -> Result<TcpListener, Failure> {
    on.at.bind().map_err(|e| Failure::Bind(on.clone(), e))
}

async fn run(config: Config, dns: Dns, termination: Option<&Path>) -> Result<(), Failure> {
    let signals =
        Signals::install(termination).map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let http = HttpClient::new(dns, USER_AGENT, config.policy.attempt_timeout).map_err(|e| e.to_string())?;
    let listener = bind(&config.listen)?;
    let debug_listener = config.debug_listen.as_ref().map(bind).transpose()?;
    let app = Arc::new(App::new(config.policy.clone(), config.max_sensor_metrics));
    let local = |l: &TcpListener| l.local_addr().map(|a| a.to_string()).map_err(|e| e.to_string());
    let debug_addr = debug_listener.as_ref().map(local).transpose()?;
    tracing::info!(
        listen = %local(&listener)?,
        debug_listen = debug_addr.as_deref().map(tracing::field::display),
        upstream = %agent_core::redact::url(config.upstream.as_str()),
        interval = %humantime::format_duration(config.policy.interval),
        "serving /livez /readyz /startupz /metrics{}",
        if debug_addr.is_some() { "; /status and ?verbose on the debug address" } else { " /status" }
    );
    let poller = tokio::spawn(poller::run(app.clone(), http, config.upstream.clone()));
    let ticker = tokio::spawn(poller::tick(app.clone()));

    // SIGTERM: not ready at once, so the endpoints drop this pod while Calypso drains; liveness
    // keeps answering; exit after the shutdown delay (a second signal exits at once).
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = move || {
        let mut stop = stop_rx.clone();
        async move {
            let _ = stop.wait_for(|s| *s).await;
        }
    };
    let mut servers = tokio::task::JoinSet::new();
    let scope = if debug_listener.is_some() { Scope::Probes } else { Scope::All };
    servers.spawn(serve(listener, app.clone(), Limits::default(), scope, stopped()));
    if let Some(debug) = debug_listener {
        servers.spawn(serve(debug, app.clone(), Limits::default(), Scope::All, stopped()));
    }
    let signal = signals.first().await;
    app.tracker().shut_down(tokio::time::Instant::now(), SystemTime::now());
    tracing::info!(
        "{signal}: not ready from now on; exiting in {}",
        humantime::format_duration(config.shutdown_delay)
    );
    tokio::time::sleep(config.shutdown_delay).await;
    poller.abort();
    ticker.abort();
    let _ = stop_tx.send(true);
    while let Some(joined) = servers.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("the probe server failed: {e}").into()),
            Err(e) => return Err(format!("the probe server stopped: {e}").into()),
        }
    }
    Ok(())
}

/// `agent-health check`: 0 if the probe passes, 1 if it fails, 69 if the sidecar is unreachable.
async fn check(args: CheckArgs) -> ExitCode {
    let path = if args.live {
        "/livez"
    } else if args.startup {
        "/startupz"
    } else {
        "/readyz"
    };
    let url = match url::Url::parse(&args.url).and_then(|u| u.join(path)) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("agent-health check: bad URL {:?}: {e}", args.url);
            return Exit::Usage.into();
        }
    };
    match probe_client::check(&url, Duration::from_secs(2)).await {
        Ok((true, line)) => {
            println!("{line}");
            Exit::Ok.into()
        }
        Ok((false, line)) => {
            println!("{line}");
            ExitCode::from(1)
        }
        Err(CheckError::BadUrl(why)) => {
            eprintln!("agent-health check: {url}: {why}");
            Exit::Usage.into()
        }
        Err(CheckError::Unreachable(why)) => {
            eprintln!("agent-health check: {url}: {why}");
            Exit::Unavailable.into()
        }
    }
}
