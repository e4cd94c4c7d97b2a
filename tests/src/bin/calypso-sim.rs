//! `calypso-sim`: one simulated Calypso server as a process, for the demo, manual testing and
//! tests written in other languages. Thin: parse the flags, start [`Sim`], print the bound
//! address, wait for `/sim/exit` or a signal.

use calypso::Component;
use calypso_testkit::logwriter::LogConfig;
use calypso_testkit::{Sim, SimConfig};
use clap::Parser;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Usage errors (as the agents' documented exit code 64).
const EXIT_USAGE: u8 = 64;
/// The address cannot be bound, the log file cannot be opened, no runtime.
const EXIT_OS: u8 = 70;

#[derive(Debug, Parser)]
#[command(
    name = "calypso-sim",
    version,
    about = "Simulates one Calypso server's Health Check REST API (a test double for the pod agents).",
    long_about = "Simulates one Calypso server's Health Check REST API: a test double following \
reference/calypso.md. GET/HEAD on the health path answer the canonical JSON shape (server, type, \
state, timestamp, subSystems[].sensors[]) with 200 for GREEN and AMBER and 503 for RED; other \
paths answer 404. The sensors depend on the component type (table below) and can be changed, and \
the server made to misbehave, through the HTTP control API under /sim/.\n\n\
Output: one line on stdout as soon as the address is bound (before listening), \
`calypso-sim: <Component> <name> bound http://ADDR/PATH`; state changes (starting, listening, \
startup complete, upstream lost/back, mode changes) are logged to stderr, filtered by AGENT_LOG \
(default info).\n\n\
Exit status: 0 after POST /sim/exit, SIGTERM or SIGINT; 64 on bad flags; 70 when the address \
cannot be bound or the log file cannot be opened.",
    after_long_help = concat!(
        include_str!("../sim/sensors.md"),
        "\n",
        include_str!("../sim/control-api.md"),
        "\nExample:\n  calypso-sim --component DataServer --listen 127.0.0.1:8141 --startup-delay 5s &\n  \
calypso-sim --component EngineServer --upstream http://127.0.0.1:8141/health\n  \
curl -X PUT \\\n    'http://127.0.0.1:8141/sim/sensor/Calypso/DatabaseConnection?state=RED&details=db%20down'\n"
    )
)]
struct Cli {
    /// Component type to simulate: EventServer, AuthServer, DataServer, EngineServer, RiskServer,
    /// CalculationServer, MarketDataServer, Scheduler, Dispatcher, QuoteServer,
    /// PresentationServer (any case, `-` and `_` ignored).
    #[arg(long, value_parser = parse_component)]
    component: Component,

    /// Server name in the report [default: the component in lower case and -0, e.g. dataserver-0].
    #[arg(long)]
    name: Option<String>,

    /// Address to bind; port 0 picks a free port (the bound line tells which).
    #[arg(long, default_value = "127.0.0.1:8140")]
    listen: SocketAddr,

    /// Health path.
    #[arg(long, default_value = "/health")]
    path: String,

    /// Bound but not listening (connections refused) for this long [default: half of
    /// --startup-delay].
    #[arg(long, value_parser = humantime::parse_duration)]
    listen_delay: Option<Duration>,

    /// Time from start until the server leaves RED "starting" (humantime: 3s, 1m).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    startup_delay: Duration,

    /// DataServer health URL to poll; Calypso/DataServerConnection follows it (failover).
    #[arg(long, value_parser = parse_http_url)]
    upstream: Option<String>,

    /// How often to poll --upstream.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "250ms")]
    upstream_interval: Duration,

    /// Write a rotated log4j-style log to this file (X.log, X.log.1, ...).
    #[arg(long)]
    log_file: Option<PathBuf>,

    /// Log records per second.
    #[arg(long, default_value_t = 10.0, value_parser = parse_rate)]
    log_rate: f64,

    /// Rotate the log at this size: bytes, or with a K, M or G suffix (1024-based).
    #[arg(long, value_parser = parse_size, default_value = "10M")]
    log_max_size: u64,

    /// Rotated log files to keep.
    #[arg(long, default_value_t = 5)]
    log_backups: u32,

    /// Seed for the log content.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

impl Cli {
    fn into_config(self) -> SimConfig {
        let mut cfg = SimConfig::new(self.component);
        if let Some(name) = self.name {
            cfg.server_name = name;
        }
        cfg.listen = self.listen;
        cfg.path = self.path;
        cfg.startup_delay = self.startup_delay;
        // A real JVM opens its port some time into its startup; half way is a plausible default.
        cfg.listen_delay = self.listen_delay.unwrap_or(self.startup_delay / 2);
        cfg.upstream = self.upstream;
        cfg.upstream_interval = self.upstream_interval;
        cfg.log = self.log_file.map(|path| LogConfig {
            rate_per_sec: self.log_rate,
            max_bytes: self.log_max_size,
            backups: self.log_backups,
            seed: self.seed,
            ..LogConfig::new(path)
        });
        cfg
    }
}

fn parse_component(s: &str) -> Result<Component, String> {
    s.parse::<Component>().map_err(|e| e.to_string())
}

fn parse_http_url(s: &str) -> Result<String, String> {
    let url = url::Url::parse(s).map_err(|e| format!("not a URL: {e}"))?;
    if url.scheme() != "http" {
        return Err(format!("scheme {} not supported, use http://", url.scheme()));
    }
    Ok(s.to_owned())
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 0.0 => Ok(r),
        _ => Err("expected a number of records per second, 0 or more".to_owned()),
    }
}

/// `1048576`, `512K`, `10M`, `1G` (also `10MB`, `10MiB`, any case), 1024-based like log4j's
/// `MaxFileSize`.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, suffix) = t.split_at(digits);
    let number: u64 = number.parse().map_err(|_| format!("{s:?} is not a size (e.g. 1048576, 512K, 10M)"))?;
    let shift = match suffix.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return Err(format!("{s:?}: unknown size suffix {suffix:?}, use K, M or G")),
    };
    let size = number.checked_mul(1 << shift).ok_or_else(|| format!("{s:?} is too large"))?;
    if size == 0 {
        return Err("the size must be more than 0".to_owned());
    }
    Ok(size)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(EXIT_USAGE) } else { ExitCode::SUCCESS };
        }
    };
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return ExitCode::from(EXIT_OS);
        }
    };
    runtime.block_on(run(cli.into_config()))
}

async fn run(cfg: SimConfig) -> ExitCode {
    let (component, name, listen) = (cfg.component, cfg.server_name.clone(), cfg.listen);
    let sim = match Sim::start(cfg).await {
        Ok(sim) => sim,
        Err(error) => {
            tracing::error!(%error, %listen, "cannot start the simulator");
            return ExitCode::from(EXIT_OS);
        }
    };
    // The one stdout line: tests and scripts read the port from it when binding port 0.
    let mut out = std::io::stdout().lock();
    if writeln!(out, "calypso-sim: {component} {name} bound {}", sim.health_url())
        .and_then(|()| out.flush())
        .is_err()
    {
        tracing::warn!("cannot write the bound line to stdout");
    }
    drop(out);

    tokio::select! {
        _ = sim.exit_requested() => {}
        signal = terminated() => tracing::info!(signal, "stopping"),
    }
    sim.shutdown().await;
    ExitCode::SUCCESS
}

/// Resolves on SIGTERM or SIGINT, naming it. If a handler cannot be installed the process still
/// dies by the default action, so waiting forever on that one is right.
async fn terminated() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let wait = |kind: SignalKind| async move {
        match signal(kind) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = wait(SignalKind::terminate()) => "SIGTERM",
        _ = wait(SignalKind::interrupt()) => "SIGINT",
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AGENT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1048576"), Ok(1_048_576));
        assert_eq!(parse_size("512K"), Ok(512 * 1024));
        assert_eq!(parse_size("10m"), Ok(10 << 20));
        assert_eq!(parse_size("10MB"), Ok(10 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("10X").is_err_and(|e| e.contains("suffix")));
        assert!(parse_size("M").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("99999999999999999G").is_err_and(|e| e.contains("too large")));
    }

    #[test]
    fn listen_delay_defaults_to_half_the_startup_delay() {
        let cli = Cli::try_parse_from(["calypso-sim", "--component", "data-server", "--startup-delay", "3s"])
            .expect("valid flags");
        let cfg = cli.into_config();
        assert_eq!(cfg.listen_delay, Duration::from_millis(1500));
        assert_eq!(cfg.component, Component::DataServer);
        assert_eq!(cfg.server_name, "dataserver-0");
        assert!(cfg.log.is_none());
    }

    #[test]
    fn log_flags_make_a_log_config() {
        let cli = Cli::try_parse_from([
            "calypso-sim",
            "--component",
            "EngineServer",
            "--name",
            "es-1",
            "--listen-delay",
            "0s",
            "--startup-delay",
            "4s",
            "--log-file",
            "/tmp/E.log",
            "--log-max-size",
            "64K",
            "--log-backups",
            "3",
            "--log-rate",
            "100",
            "--seed",
            "9",
        ])
        .expect("valid flags");
        let cfg = cli.into_config();
        assert_eq!(cfg.listen_delay, Duration::ZERO);
        assert_eq!(cfg.server_name, "es-1");
        let log = cfg.log.expect("log config");
        assert_eq!((log.max_bytes, log.backups, log.rate_per_sec, log.seed), (65536, 3, 100.0, 9));
    }

    #[test]
    fn bad_flags_are_refused() {
        for args in [
            &["calypso-sim"][..],
            &["calypso-sim", "--component", "TradeServer"],
            &["calypso-sim", "--component", "DataServer", "--startup-delay", "soon"],
            &["calypso-sim", "--component", "DataServer", "--upstream", "https://x/health"],
            &["calypso-sim", "--component", "DataServer", "--log-rate", "-1"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
    }
}
