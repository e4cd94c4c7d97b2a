//! agent-health's settings: flags overlaid on `AGENT_HEALTH_*` variables, validated at once.

use std::time::Duration;

use agent_core::config::{Problem, split_list};
use agent_core::settings::{Reader, Settings, Spec, parse};
use clap::{Args, Parser, Subcommand};
use url::Url;

use crate::pattern::Pattern;
use crate::policy::{CONNECTION_SENSORS, Policy};
use agent_core::listen::Listen;

pub const UPSTREAM: Spec<Url> = Spec::new(
    "upstream",
    "AGENT_HEALTH_UPSTREAM",
    "The Calypso health URL (required), e.g. http://127.0.0.1:8140/health",
    upstream,
)
.value_name("URL")
.url();
pub const INTERVAL: Spec<Duration> =
    Spec::new("interval", "AGENT_HEALTH_INTERVAL", "Poll interval", bounded_duration)
        .value_name("DURATION")
        .default("2s");
pub const ATTEMPT_TIMEOUT: Spec<Duration> = Spec::new(
    "attempt-timeout",
    "AGENT_HEALTH_ATTEMPT_TIMEOUT",
    "One poll's deadline (below the interval)",
    bounded_duration,
)
.value_name("DURATION")
.default("1s");
pub const LISTEN: Spec<Listen> = Spec::new(
    "listen",
    "AGENT_HEALTH_LISTEN",
    "Address to serve the probes and /metrics on; the default takes IPv4 and IPv6 (kubelet probes \
     the pod IP, IPv6 on IPv6-only clusters), or IPv4 only where the kernel has no IPv6",
    |s| s.parse::<Listen>().map_err(|e| e.to_string()),
)
.value_name("ADDR")
.default("[::]:8081");
pub const DEBUG_LISTEN: Spec<Listen> = Spec::new(
    "debug-listen",
    "AGENT_HEALTH_DEBUG_LISTEN",
    "A loopback address that alone serves /status and ?verbose (sensor details, for kubectl exec \
     and port-forward only), e.g. 127.0.0.1:8083; unset: both on the main address",
    |s| match s.parse::<Listen>() {
        Ok(at) if at.is_loopback() => Ok(at),
        Ok(_) => Err("must be a loopback address, e.g. 127.0.0.1:8083 or [::1]:8083: /status and ?verbose \
                      show sensor details, for kubectl exec and port-forward only"
            .into()),
        Err(e) => Err(e.to_string()),
    },
)
.value_name("ADDR");
pub const AMBER: Spec<bool> =
    Spec::new("amber", "AGENT_HEALTH_AMBER", "Whether AMBER is ready or not-ready", |s| {
        match s.trim().to_ascii_lowercase().as_str() {
            "ready" => Ok(true),
            "not-ready" | "not_ready" | "notready" => Ok(false),
            _ => Err("must be ready or not-ready".into()),
        }
    })
    .value_name("ready|not-ready")
    .default("ready");
pub const READINESS_IGNORE: Spec<Vec<Pattern>> = Spec::new(
    "readiness-ignore",
    "AGENT_HEALTH_READINESS_IGNORE",
    "Sensor patterns (SubSystem/Sensor, * wildcard, comma separated) never alone to blame for not-ready",
    patterns,
)
.value_name("PATTERNS");
pub const READY_FAILURES: Spec<u32> = Spec::new(
    "ready-failures",
    "AGENT_HEALTH_READY_FAILURES",
    "Bad polls in a row before not ready",
    parse::count,
)
.value_name("N")
.default("2");
pub const READY_SUCCESSES: Spec<u32> = Spec::new(
    "ready-successes",
    "AGENT_HEALTH_READY_SUCCESSES",
    "Good polls in a row before ready again",
    parse::count,
)
.value_name("N")
.default("2");
pub const LIVENESS_GRACE: Spec<Duration> = Spec::new(
    "liveness-grace",
    "AGENT_HEALTH_LIVENESS_GRACE",
    "How long without any answer before liveness fails",
    bounded_duration,
)
.value_name("DURATION")
.default("60s");
pub const LIVENESS_SENSORS: Spec<Vec<Pattern>> = Spec::new(
    "liveness-sensors",
    "AGENT_HEALTH_LIVENESS_SENSORS",
    "Sensor patterns whose RED, for the grace, fails liveness (never connection sensors)",
    patterns,
)
.value_name("PATTERNS");
pub const SHUTDOWN_DELAY: Spec<Duration> = Spec::new(
    "shutdown-delay",
    "AGENT_HEALTH_SHUTDOWN_DELAY",
    "After SIGTERM: not ready at once, exit after this",
    bounded_duration,
)
.value_name("DURATION")
.default("5s");
pub const MAX_SENSOR_METRICS: Spec<u32> = Spec::new(
    "max-sensor-metrics",
    "AGENT_HEALTH_MAX_SENSOR_METRICS",
    "Most sensors exported as metrics",
    parse::count,
)
.value_name("N")
.default("200");

pub static SETTINGS: Settings = Settings {
    prefix: "AGENT_HEALTH_",
    specs: &[
        &UPSTREAM.meta,
        &INTERVAL.meta,
        &ATTEMPT_TIMEOUT.meta,
        &LISTEN.meta,
        &DEBUG_LISTEN.meta,
        &AMBER.meta,
        &READINESS_IGNORE.meta,
        &READY_FAILURES.meta,
        &READY_SUCCESSES.meta,
        &LIVENESS_GRACE.meta,
        &LIVENESS_SENSORS.meta,
        &SHUTDOWN_DELAY.meta,
        &MAX_SENSOR_METRICS.meta,
    ],
};

/// Bounded so that sums of durations cannot overflow, and no setting is absurd.
const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

fn bounded_duration(text: &str) -> Result<Duration, String> {
    match parse::duration(text)? {
        d if d > MAX_DURATION => Err("must be at most 24h".into()),
        d => Ok(d),
    }
}

fn upstream(text: &str) -> Result<Url, String> {
    match Url::parse(text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(u),
        _ => Err("must be an http:// or https:// URL with a host".into()),
    }
}

fn patterns(text: &str) -> Result<Vec<Pattern>, String> {
    Ok(split_list(text).map(Pattern::new).collect())
}

const AFTER_HELP: &str = "\
ENDPOINTS (answered from the last poll, never by calling Calypso):
  GET|HEAD /livez /readyz /startupz   200 ok, or 503 and a one-line reason; ?verbose lists checks
  GET /metrics                        Prometheus text format 0.0.4
  GET /status                         JSON: last report, verdicts, timings, transitions

POLICY:
  readiness  the last report GREEN (or AMBER unless AGENT_HEALTH_AMBER=not-ready), ignored sensors
             never the only cause; not ready after READY_FAILURES bad polls in a row, ready again
             after READY_SUCCESSES good ones; stale (no poll for 3 x interval + timeout): not ready
  liveness   fails only when Calypso gives no answer at all for LIVENESS_GRACE, or a sensor in
             LIVENESS_SENSORS stays RED that long. A RED answer is an answer: a DataServer
             failover never restarts the servers. Connection sensors cannot be liveness sensors.
  startup    passes at the first answer that is not RED, and stays passed until
             Calypso stops answering (a restarted Calypso container starts over)

ENVIRONMENT:
  Every flag above has a variable, named after it; flags win.
  AGENT_DNS_SERVERS, AGENT_LOG, AGENT_LOG_FORMAT, AGENT_TERMINATION_LOG: see docs/configuration.md

EXIT CODES:
  0 stopped by SIGTERM/SIGINT after the shutdown delay   64 bad configuration   70 cannot serve
  check: 0 the probe passes, 1 it fails, 69 the sidecar cannot be reached";

/// Serves kubelet probes for a Calypso server from its Health Check API.
// The settings' flags are added from SETTINGS (agent_core::settings::parse_args).
#[derive(Debug, Parser, Default)]
#[command(name = "agent-health", version, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask a running agent-health (exec probes, Docker HEALTHCHECK): exit 0 if the probe passes.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Ask /livez.
    #[arg(long, conflicts_with_all = ["ready", "startup"])]
    pub live: bool,
    /// Ask /readyz (the default).
    #[arg(long, conflicts_with = "startup")]
    pub ready: bool,
    /// Ask /startupz.
    #[arg(long)]
    pub startup: bool,
    /// The sidecar's address.
    #[arg(default_value = "http://127.0.0.1:8081")]
    pub url: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub upstream: Url,
    pub listen: ListenOn,
    /// Where `/status` and `?verbose` are served, if not on the main address.
    pub debug_listen: Option<ListenOn>,
    pub policy: Policy,
    pub shutdown_delay: Duration,
    pub max_sensor_metrics: usize,
}

impl Config {
    pub fn from_parts(_cli: Cli, mut read: Reader) -> Result<Config, Vec<Problem>> {
        let upstream = read.required(&UPSTREAM);
        let (interval, attempt_timeout) = (read.opt(&INTERVAL), read.opt(&ATTEMPT_TIMEOUT));
        if let (Some(interval), Some(timeout)) = (interval, attempt_timeout)
            && timeout >= interval
        {
            let reason = format!("must be below the interval ({})", humantime::format_duration(interval));
            read.push(read.problem(&ATTEMPT_TIMEOUT, reason));
        }
        let (interval, attempt_timeout) = (interval.unwrap_or_default(), attempt_timeout.unwrap_or_default());
        let listen = read.opt(&LISTEN).map(|at| ListenOn::new(&read, &LISTEN, at));
        let debug_listen = read.opt(&DEBUG_LISTEN).map(|at| ListenOn::new(&read, &DEBUG_LISTEN, at));
        let amber_ready = read.get(&AMBER);
        let readiness_ignore = read.get(&READINESS_IGNORE);
        let liveness_sensors = read.get(&LIVENESS_SENSORS);
        for p in &liveness_sensors {
            if let Some(conn) = CONNECTION_SENSORS.iter().find(|c| p.matches(c)) {
                read.push(read.problem(
                    &LIVENESS_SENSORS,
                    format!(
                        "{p} matches {conn}: a connection to another server goes RED in a failover that no \
                         restart fixes, and restarting every client makes it worse (the cascading-restart \
                         anti-pattern); use it for readiness only"
                    ),
                ));
            }
        }
        let ready_failures = read.get(&READY_FAILURES);
        let ready_successes = read.get(&READY_SUCCESSES);
        let liveness_grace = read.get(&LIVENESS_GRACE);
        let shutdown_delay = read.get(&SHUTDOWN_DELAY);
        let max_sensor_metrics = read.get(&MAX_SENSOR_METRICS) as usize;

        let (Some(upstream), Some(listen)) = (upstream, listen) else { return Err(read.into_problems()) };
        read.finish(Config {
            upstream,
            listen,
            debug_listen,
            policy: Policy {
                interval,
                attempt_timeout,
                amber_ready,
                readiness_ignore,
                ready_failures,
                ready_successes,
                liveness_grace,
                liveness_sensors,
            },
            shutdown_delay,
            max_sensor_metrics,
        })
    }
}

/// An address to listen on and the setting that gave it, for errors (`AGENT_HEALTH_LISTEN`,
/// `--listen`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenOn {
    pub at: Listen,
    pub setting: String,
}

impl ListenOn {
    fn new(read: &Reader, spec: &Spec<Listen>, at: Listen) -> Self {
        let setting = read.setting(&spec.meta).map_or_else(|| spec.meta.env.to_string(), |s| s.name);
        ListenOn { at, setting }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use agent_core::config::vars_from as vars;

    fn config(vars: &[(String, String)]) -> Result<Config, Vec<Problem>> {
        let (cli, read) = Reader::from_args::<Cli>(&SETTINGS, &[], vars).expect("flags parse");
        Config::from_parts(cli, read)
    }

    #[test]
    fn defaults() {
        let c = config(&vars(&[("AGENT_HEALTH_UPSTREAM", "http://127.0.0.1:8140/health")])).expect("valid");
        assert_eq!(c.listen, ListenOn { at: Listen::DualStack(8081), setting: "AGENT_HEALTH_LISTEN".into() });
        assert_eq!(c.debug_listen, None);
        assert_eq!(c.policy.interval, Duration::from_secs(2));
        assert_eq!(c.policy.attempt_timeout, Duration::from_secs(1));
        assert_eq!((c.policy.ready_failures, c.policy.ready_successes), (2, 2));
        assert_eq!(c.policy.liveness_grace, Duration::from_secs(60));
        assert!(c.policy.amber_ready && c.policy.liveness_sensors.is_empty());
        assert_eq!((c.shutdown_delay, c.max_sensor_metrics), (Duration::from_secs(5), 200));
    }

    #[test]
    fn every_problem_at_once() {
        let v = vars(&[
            ("AGENT_HEALTH_INTERVAL", "1s"),
            ("AGENT_HEALTH_ATTEMPT_TIMEOUT", "1s"),
            ("AGENT_HEALTH_AMBER", "maybe"),
            ("AGENT_HEALTH_READY_FAILURES", "0"),
            ("AGENT_HEALTH_LISTEN", "everywhere"),
        ]);
        let problems = config(&v).expect_err("invalid");
        let names: Vec<&str> = problems.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "AGENT_HEALTH_UPSTREAM",
                "AGENT_HEALTH_ATTEMPT_TIMEOUT",
                "AGENT_HEALTH_LISTEN",
                "AGENT_HEALTH_AMBER",
                "AGENT_HEALTH_READY_FAILURES"
            ]
        );
    }

    #[test]
    fn connection_sensors_are_refused_for_liveness() {
        let v = vars(&[
            ("AGENT_HEALTH_UPSTREAM", "http://x/"),
            ("AGENT_HEALTH_LIVENESS_SENSORS", "*/EngineRunning, Calypso/DataServerConnection"),
        ]);
        let problems = config(&v).expect_err("refused");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].reason.contains("the cascading-restart anti-pattern"), "{}", problems[0].reason);
        assert!(
            !problems[0].reason.contains('\\') && !problems[0].reason.contains("  "),
            "{}",
            problems[0].reason
        );
        let v = vars(&[("AGENT_HEALTH_UPSTREAM", "http://x/"), ("AGENT_HEALTH_LIVENESS_SENSORS", "*")]);
        assert!(config(&v).is_err(), "a wildcard that covers them too");
        let v = vars(&[
            ("AGENT_HEALTH_UPSTREAM", "http://x/"),
            ("AGENT_HEALTH_LIVENESS_SENSORS", "*/EngineRunning"),
        ]);
        assert!(config(&v).is_ok());
    }

    #[test]
    fn the_debug_address_must_be_loopback() {
        let with = |debug: &str| {
            config(&vars(&[("AGENT_HEALTH_UPSTREAM", "http://x/"), ("AGENT_HEALTH_DEBUG_LISTEN", debug)]))
        };
        let c = with("127.0.0.1:8082").expect("loopback");
        assert_eq!(c.debug_listen.map(|d| d.at.to_string()), Some("127.0.0.1:8082".into()));
        assert!(with("[::1]:0").is_ok());
        for bad in ["0.0.0.0:8082", "[::]:8082", "10.1.2.3:8082", "localhost:8082"] {
            let problems = with(bad).expect_err(bad);
            assert_eq!(problems[0].name, "AGENT_HEALTH_DEBUG_LISTEN", "{bad}");
        }
        let (cli, read) = Reader::from_args::<Cli>(
            &SETTINGS,
            &["--listen", "0.0.0.0:9"],
            &vars(&[("AGENT_HEALTH_UPSTREAM", "http://x/")]),
        )
        .expect("flags parse");
        assert_eq!(Config::from_parts(cli, read).expect("valid").listen.setting, "--listen");
    }

    #[test]
    fn absurd_durations_are_refused() {
        let v =
            vars(&[("AGENT_HEALTH_UPSTREAM", "http://x/"), ("AGENT_HEALTH_INTERVAL", "500000000000years")]);
        let problems = config(&v).expect_err("refused");
        assert_eq!(problems[0].name, "AGENT_HEALTH_INTERVAL");
    }

    #[test]
    fn upstream_secrets_are_not_repeated() {
        let v = vars(&[("AGENT_HEALTH_UPSTREAM", "ftp://u:s3cret@x/")]);
        let problems = config(&v).expect_err("invalid");
        assert!(!problems[0].to_string().contains("s3cret"));
    }
}
