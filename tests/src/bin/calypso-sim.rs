//! `calypso-sim`: one simulated Calypso server as a process, for the demo, manual testing and
//! tests written in other languages. Thin: parse the flags, start [`Sim`], print the bound
//! address, wait for `/sim/exit` or a signal.

use agent_core::Exit;
use agent_core::shutdown::Signals;
use calypso::Component;
use calypso::properties::{Document, PropertiesError};
use calypso_testkit::logwriter::LogConfig;
use calypso_testkit::sim::{Connections, has_data_server_connection};
use calypso_testkit::{Sim, SimConfig};
use clap::Parser;
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "calypso-sim",
    version,
    about = "Simulates one Calypso server's Health Check REST API (a test double for the pod agents).",
    long_about = "Simulates one Calypso server's Health Check REST API: a test double following \
docs/health-payloads.md. GET/HEAD on the health path answer the canonical JSON shape (server, type, \
state, timestamp, subSystems[].sensors[]) with 200 for GREEN and AMBER and 503 for RED; other \
paths answer 404. The sensors depend on the component type (table below) and can be changed, and \
the server made to misbehave, through the HTTP control API under /sim/.\n\n\
Output: one line on stdout as soon as the address is bound (before listening), \
`calypso-sim: <Component> <name> bound http://ADDR/PATH`; state changes (starting, listening, \
startup complete, upstream lost/back, mode changes) are logged to stderr, filtered by AGENT_LOG \
(default info), as JSON with AGENT_LOG_FORMAT=json. The upstream URL is shown with its \
credentials and query values replaced by ***.\n\n\
Exit status: 0 after POST /sim/exit or the first SIGTERM or SIGINT (a second signal during the \
stop exits 143); 64 on bad flags, a bad AGENT_LOG or AGENT_LOG_FORMAT, --upstream on a \
component without a Calypso/DataServerConnection sensor (EventServer, AuthServer, DataServer), or \
a --config file that cannot be read or parsed (the message names the file, and line:column for \
a parse error); 70 when the address cannot be bound or the log file cannot be opened.",
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

    /// DataServer health URL to poll; Calypso/DataServerConnection follows it (failover). Only
    /// for components that have that sensor (not EventServer, AuthServer, DataServer).
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

    /// A Calypso .properties file to take the server's settings from, e.g. the
    /// calypsosystem.properties.<ENV> agent-init rendered: DATA_SERVER_NAME (the DataServer's
    /// server name, unless --name), DBURL and DBUSER (the DataServer's Calypso/DatabaseConnection
    /// details: connected to <DBURL> as <DBUSER>), EVENTSERVERHOST and EVENTSERVERPORT (the
    /// Calypso/EventServerConnection details). Read as java.util.Properties does (the last of
    /// duplicate keys wins); empty values and every other key, DBPASSWORD among them, are
    /// ignored.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl Cli {
    /// The simulator's configuration; the error is a usage error, in one line naming the flag.
    fn into_config(self) -> Result<SimConfig, String> {
        if self.upstream.is_some() && !has_data_server_connection(self.component) {
            return Err(format!(
                "--upstream is only for components that connect to the DataServer: the {} has no \
Calypso/DataServerConnection sensor to drive",
                self.component
            ));
        }
        let mut cfg = SimConfig::new(self.component);
        if let Some(path) = &self.config {
            let settings = read_config(path)?;
            let get = |key: &str| settings.get(key).filter(|v| !v.is_empty()).cloned();
            let mut used = Vec::new();
            if self.component == Component::DataServer
                && self.name.is_none()
                && let Some(name) = get("DATA_SERVER_NAME")
            {
                cfg.server_name = name;
                used.push("DATA_SERVER_NAME");
            }
            cfg.connections = Connections {
                db_url: get("DBURL"),
                db_user: get("DBUSER"),
                event_server_host: get("EVENTSERVERHOST"),
                event_server_port: get("EVENTSERVERPORT"),
            };
            let applies = |key: &str| match key {
                "DBURL" | "DBUSER" => self.component == Component::DataServer,
                _ => self.component != Component::EventServer,
            };
            used.extend(
                ["DBURL", "DBUSER", "EVENTSERVERHOST", "EVENTSERVERPORT"]
                    .into_iter()
                    .filter(|k| applies(k) && get(k).is_some()),
            );
            // Key names only: the file holds passwords.
            tracing::info!(
                file = %path.display(),
                keys = settings.len(),
                used = if used.is_empty() { "none".to_owned() } else { used.join(", ") },
                "read the configuration"
            );
        }
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
            copy_truncate: false,
            seed: self.seed,
            ..LogConfig::new(path)
        });
        Ok(cfg)
    }
}

/// The keys and values of a Java .properties file, read as `java.util.Properties.load` would:
/// UTF-8 text like `load(Reader)`, else ISO-8859-1 like `load(InputStream)`; the last of
/// duplicate keys wins. The error, a usage error, names the file (and the position of a
/// malformed escape) but never a value.
fn read_config(path: &Path) -> Result<HashMap<String, String>, String> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("--config: {shown}: cannot read it: {e}"))?;
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => e.into_bytes().iter().map(|&b| char::from(b)).collect(),
    };
    let pairs = Document::parse(&text).and_then(|d| d.pairs()).map_err(|e| {
        let (line, column, what) = match e {
            PropertiesError::MalformedUnicode { line, column } => (line, column, "malformed \\uXXXX escape"),
            PropertiesError::LoneSurrogate { line, column } => {
                (line, column, "\\uXXXX escape is an unpaired UTF-16 surrogate")
            }
        };
        format!("--config: {shown}:{line}:{column}: {what}")
    })?;
    Ok(pairs.into_iter().collect())
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
    let cli: Cli = match calypso_testkit::double::begin() {
        Ok(cli) => cli,
        Err(exit) => return exit,
    };
    let cfg = match cli.into_config() {
        Ok(cfg) => cfg,
        Err(message) => {
            // As clap reports the other usage errors: on stderr, whatever the log filter.
            eprintln!("error: {message}");
            return Exit::Usage.into();
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return Exit::Software.into();
        }
    };
    runtime.block_on(run(cfg)).into()
}

async fn run(cfg: SimConfig) -> Exit {
    let signals = match Signals::install(None) {
        Ok(signals) => signals,
        Err(error) => {
            tracing::error!(%error, "cannot install the signal handlers");
            return Exit::Software;
        }
    };
    let (component, name, listen) = (cfg.component, cfg.server_name.clone(), cfg.listen);
    let sim = match Sim::start(cfg).await {
        Ok(sim) => sim,
        Err(error) => {
            tracing::error!(%error, %listen, "cannot start the simulator");
            return Exit::Software;
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
        signal = signals.first() => tracing::info!(signal, "stopping"),
    }
    sim.shutdown().await;
    // The first signal asks for a graceful stop, which this was: a success, as documented.
    Exit::Ok
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
        let cfg = cli.into_config().expect("valid config");
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
        let cfg = cli.into_config().expect("valid config");
        assert_eq!(cfg.listen_delay, Duration::ZERO);
        assert_eq!(cfg.server_name, "es-1");
        let log = cfg.log.expect("log config");
        assert_eq!((log.max_bytes, log.backups, log.rate_per_sec, log.seed), (65536, 3, 100.0, 9));
    }

    #[test]
    fn upstream_only_where_the_sensor_it_drives_exists() {
        let cli = |component| {
            Cli::try_parse_from([
                "calypso-sim",
                "--component",
                component,
                "--upstream",
                "http://u:p@ds:8141/health",
            ])
            .expect("valid flags")
        };
        let refused = cli("AuthServer").into_config().expect_err("AuthServer has no such sensor");
        assert!(refused.contains("--upstream") && refused.contains("AuthServer"), "{refused}");
        let cfg = cli("Scheduler").into_config().expect("Scheduler connects to the DataServer");
        assert_eq!(cfg.upstream.as_deref(), Some("http://u:p@ds:8141/health"));
    }

    #[test]
    fn config_file_sets_name_and_connection_details_never_the_password() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("calypsosystem.properties.UAT1");
        std::fs::write(
            &file,
            "# rendered\nDBURL=jdbc\\:oracle\\:thin\\:@db.uat\\:1521\\:OLD\nDBURL=jdbc\\:oracle\\:thin\\:@db.uat\\:1521\\:UAT1\n\
DBUSER=calypso_uat1\nDBPASSWORD=p@ss\\=w\\:rd\nDATA_SERVER_NAME=ds-uat1\nEVENTSERVERHOST=es.uat\nEVENTSERVERPORT=\n",
        )
        .expect("write");
        let config = |args: &[&str]| {
            let base = ["calypso-sim", "--config", file.to_str().expect("utf-8")];
            Cli::try_parse_from(base.iter().chain(args))
                .expect("valid flags")
                .into_config()
                .expect("valid config")
        };
        let cfg = config(&["--component", "DataServer"]);
        assert_eq!(cfg.server_name, "ds-uat1");
        assert_eq!(
            cfg.connections,
            Connections {
                db_url: Some("jdbc:oracle:thin:@db.uat:1521:UAT1".into()),
                db_user: Some("calypso_uat1".into()),
                event_server_host: Some("es.uat".into()),
                event_server_port: None,
            },
            "the last duplicate wins, empty values are absent"
        );
        assert!(!format!("{cfg:?}").contains("p@ss"), "no password anywhere in the config");
        assert_eq!(
            config(&["--component", "DataServer", "--name", "ds-9"]).server_name,
            "ds-9",
            "--name wins"
        );
        assert_eq!(
            config(&["--component", "EngineServer"]).server_name,
            "engineserver-0",
            "a DataServer's name"
        );
    }

    #[test]
    fn a_bad_config_file_is_a_usage_error_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.properties");
        let bad = dir.path().join("bad.properties");
        std::fs::write(&bad, "DBUSER=calypso\nDBURL=jdbc\\u00zz\n").expect("write");
        let error = |file: &Path| {
            Cli::try_parse_from([
                "calypso-sim",
                "--component",
                "DataServer",
                "--config",
                file.to_str().expect("utf-8"),
            ])
            .expect("valid flags")
            .into_config()
            .expect_err("bad file")
        };
        let e = error(&missing);
        assert!(e.starts_with(&format!("--config: {}: cannot read it: ", missing.display())), "{e}");
        assert_eq!(error(&bad), format!("--config: {}:2:11: malformed \\uXXXX escape", bad.display()));
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
