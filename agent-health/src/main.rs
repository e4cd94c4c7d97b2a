//! agent-health's edge: flags and environment in; a poller, a probe server and an exit code.

#![allow(clippy::print_stdout)] // `check` reports on stdout.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use agent_core::Exit;
use agent_core::dns::Dns;
use agent_core::http::HttpClient;
use agent_core::shutdown::Signals;
use agent_core::startup::Startup;
use agent_health::app::App;
use agent_health::config::{CheckArgs, Cli, Command, Config, SETTINGS};
use agent_health::poller;
use agent_health::probe_client::{self, CheckError};
use agent_health::server::{Limits, serve};
use tokio::net::TcpListener;

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
    let built = start.config(|cli, read| {
        let dns = Dns::from_vars(read.vars().iter().map(|(k, v)| (k.as_str(), v.as_str())));
        match (dns, Config::from_parts(cli, read)) {
            (Ok(dns), Ok(config)) => Ok((config, dns)),
            (dns, config) => Err(dns.err().into_iter().chain(config.err().into_iter().flatten()).collect()),
        }
    });
    let (config, dns) = match built {
        Ok(c) => c,
        Err(exit) => return exit,
    };
    match runtime.block_on(run(config, dns)) {
        Ok(()) => Exit::Ok.into(),
        Err(e) => start.fail(Exit::Software, &e),
    }
}

async fn run(config: Config, dns: Dns) -> Result<(), String> {
    let signals = Signals::install().map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let http = HttpClient::new(dns, USER_AGENT).map_err(|e| e.to_string())?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let app = Arc::new(App::new(config.policy.clone(), config.max_sensor_metrics));
    tracing::info!(
        listen = %listener.local_addr().map_err(|e| e.to_string())?,
        upstream = %agent_core::redact::url(config.upstream.as_str()),
        interval = %humantime::format_duration(config.policy.interval),
        "serving /livez /readyz /startupz /metrics /status"
    );
    let poller = tokio::spawn(poller::run(app.clone(), http, config.upstream.clone()));
    let ticker = tokio::spawn(poller::tick(app.clone()));

    // SIGTERM: not ready at once, so the endpoints drop this pod while Calypso drains; liveness
    // keeps answering; exit after the shutdown delay (a second signal exits at once).
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, app.clone(), Limits::default(), async {
        let _ = stop_rx.await;
    }));
    let signal = signals.first().await;
    app.tracker().shut_down(tokio::time::Instant::now(), SystemTime::now());
    tracing::info!(
        "{signal}: not ready from now on; exiting in {}",
        humantime::format_duration(config.shutdown_delay)
    );
    tokio::time::sleep(config.shutdown_delay).await;
    poller.abort();
    ticker.abort();
    let _ = stop_tx.send(());
    match server.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("the probe server failed: {e}")),
        Err(e) => Err(format!("the probe server stopped: {e}")),
    }
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
