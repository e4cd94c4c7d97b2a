//! agent-health's settings: flags overlaid on `AGENT_HEALTH_*` variables, validated at once.

use std::time::Duration;

use agent_core::config::{Problem, Setting, from_env, split_list};
use clap::{Args, Parser, Subcommand};
use serde::Deserialize;
use url::Url;

use crate::listen::Listen;
use crate::pattern::Pattern;
use crate::policy::{CONNECTION_SENSORS, Policy};

pub const PREFIX: &str = "AGENT_HEALTH_";
const KNOWN: &[&str] = &[
    "UPSTREAM",
    "INTERVAL",
    "ATTEMPT_TIMEOUT",
    "LISTEN",
    "DEBUG_LISTEN",
    "AMBER",
    "READINESS_IGNORE",
    "READY_FAILURES",
    "READY_SUCCESSES",
    "LIVENESS_GRACE",
    "LIVENESS_SENSORS",
    "SHUTDOWN_DELAY",
    "MAX_SENSOR_METRICS",
];

const AFTER_HELP: &str = "\
ENDPOINTS (answered from the last poll, never by calling Calypso):
  GET|HEAD /livez /readyz /startupz   200 ok, or 503 and a one-line reason; ?verbose lists checks
  GET /metrics                        Prometheus text format 0.0.4
  GET /status                         JSON: last report, verdicts, timings, transitions
  (with AGENT_HEALTH_DEBUG_LISTEN: /status and ?verbose only there, on loopback)

POLICY:
  readiness  the last report GREEN (or AMBER unless AGENT_HEALTH_AMBER=not-ready), ignored sensors
             never the only cause; not ready after READY_FAILURES bad polls in a row, ready again
             after READY_SUCCESSES good ones; stale (no poll for 3 x interval + timeout): not ready
  liveness   fails only when Calypso gives no answer at all for LIVENESS_GRACE, or a sensor in
             LIVENESS_SENSORS stays RED that long. A RED answer is an answer: a DataServer
             failover never restarts the servers. Connection sensors cannot be liveness sensors.
  startup    passes at the first answer that is not RED, and stays passed

ENVIRONMENT (flags win):
  AGENT_HEALTH_UPSTREAM            the Calypso health URL (required), e.g. http://127.0.0.1:8140/health
  AGENT_HEALTH_INTERVAL            poll interval (default 2s)
  AGENT_HEALTH_ATTEMPT_TIMEOUT     one poll's deadline, below the interval (default 1s)
  AGENT_HEALTH_LISTEN              address to serve on (default [::]:8081: IPv4 and IPv6, as kubelet
                                   probes the pod IP; 0.0.0.0:8081 where the kernel has no IPv6)
  AGENT_HEALTH_DEBUG_LISTEN        loopback address for /status and ?verbose (default: none, both on
                                   the main address); e.g. 127.0.0.1:8082
  AGENT_HEALTH_AMBER               ready | not-ready (default ready)
  AGENT_HEALTH_READINESS_IGNORE    sensor patterns (SubSystem/Sensor, * wildcard), comma separated
  AGENT_HEALTH_READY_FAILURES      bad polls in a row before not ready (default 2)
  AGENT_HEALTH_READY_SUCCESSES     good polls in a row before ready again (default 2)
  AGENT_HEALTH_LIVENESS_GRACE      how long without an answer before liveness fails (default 60s)
  AGENT_HEALTH_LIVENESS_SENSORS    sensor patterns whose RED (for the grace) fails liveness (default none)
  AGENT_HEALTH_SHUTDOWN_DELAY      after SIGTERM: not ready at once, exit after this (default 5s)
  AGENT_HEALTH_MAX_SENSOR_METRICS  sensors exported as metrics at most (default 200)
  AGENT_DNS_SERVERS, AGENT_LOG, AGENT_LOG_FORMAT, AGENT_TERMINATION_LOG: see docs/configuration.md

EXIT CODES:
  0 stopped by SIGTERM/SIGINT after the shutdown delay   64 bad configuration (also: a listen address
  in use or not on this host)   70 cannot serve   143 a second signal during the shutdown delay
  check: 0 the probe passes, 1 it fails, 69 the sidecar cannot be reached";

/// Serves kubelet probes for a Calypso server from its Health Check API.
#[derive(Debug, Parser, Default)]
#[command(name = "agent-health", version, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The Calypso health URL.
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// Poll interval.
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,
    /// One poll's deadline (below the interval).
    #[arg(long, value_name = "DURATION")]
    pub attempt_timeout: Option<String>,
    /// Address to serve the probes on.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Loopback address that alone serves /status and ?verbose.
    #[arg(long, value_name = "ADDR")]
    pub debug_listen: Option<String>,
    /// Whether AMBER is ready or not-ready.
    #[arg(long, value_name = "ready|not-ready")]
    pub amber: Option<String>,
    /// Sensor patterns never alone to blame for not-ready.
    #[arg(long, value_name = "PATTERNS")]
    pub readiness_ignore: Option<String>,
    /// Bad polls in a row before not ready.
    #[arg(long, value_name = "N")]
    pub ready_failures: Option<String>,
    /// Good polls in a row before ready again.
    #[arg(long, value_name = "N")]
    pub ready_successes: Option<String>,
    /// How long without any answer before liveness fails.
    #[arg(long, value_name = "DURATION")]
    pub liveness_grace: Option<String>,
    /// Sensor patterns whose RED, for the grace, fails liveness.
    #[arg(long, value_name = "PATTERNS")]
    pub liveness_sensors: Option<String>,
    /// After SIGTERM: not ready at once, exit after this.
    #[arg(long, value_name = "DURATION")]
    pub shutdown_delay: Option<String>,
    /// Most sensors exported as metrics.
    #[arg(long, value_name = "N")]
    pub max_sensor_metrics: Option<String>,
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

#[derive(Debug, Default, Deserialize)]
struct Raw {
    upstream: Option<String>,
    interval: Option<String>,
    attempt_timeout: Option<String>,
    listen: Option<String>,
    debug_listen: Option<String>,
    amber: Option<String>,
    readiness_ignore: Option<String>,
    ready_failures: Option<String>,
    ready_successes: Option<String>,
    liveness_grace: Option<String>,
    liveness_sensors: Option<String>,
    shutdown_delay: Option<String>,
    max_sensor_metrics: Option<String>,
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
    pub fn from_parts(cli: Cli, vars: &[(String, String)]) -> Result<Config, Vec<Problem>> {
        let mut problems = Vec::new();
        let raw: Raw = from_env(PREFIX, KNOWN, vars, &mut problems);
        let pick = |flag: Option<String>, flag_name: &str, env: Option<String>, key: &str| {
            Setting::pick(flag, flag_name, env, &format!("{PREFIX}{key}"))
        };
        // Bounded so that sums of them cannot overflow, and no setting is absurd.
        const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);
        let duration = |s: Option<Setting>, default: Duration, problems: &mut Vec<Problem>| match s {
            None => (default, None),
            Some(s) => match s.duration() {
                Ok(d) if d > MAX_DURATION => {
                    problems.push(s.problem("must be at most 24h"));
                    (default, None)
                }
                Ok(d) => (d, Some(s)),
                Err(p) => {
                    problems.push(p);
                    (default, None)
                }
            },
        };
        let count = |s: Option<Setting>, default: u32, problems: &mut Vec<Problem>| match s {
            None => default,
            Some(s) => match s.value.trim().parse::<u32>() {
                Ok(n) if n > 0 => n,
                _ => {
                    problems.push(s.problem("must be a whole number of at least 1"));
                    default
                }
            },
        };

        let upstream = match pick(cli.upstream, "--upstream", raw.upstream, "UPSTREAM") {
            None => {
                problems.push(Problem::without_value(
                    "AGENT_HEALTH_UPSTREAM",
                    "missing: the Calypso health URL, e.g. http://127.0.0.1:8140/health",
                ));
                None
            }
            Some(s) => match Url::parse(&s.value) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Some(u),
                _ => {
                    let shown = agent_core::redact::url(&s.value);
                    problems.push(Problem::new(
                        &s.name,
                        shown,
                        "must be an http:// or https:// URL with a host",
                    ));
                    None
                }
            },
        };
        let (interval, _) = duration(
            pick(cli.interval, "--interval", raw.interval, "INTERVAL"),
            Duration::from_secs(2),
            &mut problems,
        );
        let (attempt_timeout, timeout_setting) = duration(
            pick(cli.attempt_timeout, "--attempt-timeout", raw.attempt_timeout, "ATTEMPT_TIMEOUT"),
            Duration::from_secs(1),
            &mut problems,
        );
        if attempt_timeout >= interval {
            let reason = format!("must be below the interval ({})", humantime::format_duration(interval));
            problems.push(match timeout_setting {
                Some(s) => s.problem(reason),
                None => {
                    Problem::without_value("AGENT_HEALTH_ATTEMPT_TIMEOUT", format!("the default 1s {reason}"))
                }
            });
        }
        let listen = match pick(cli.listen, "--listen", raw.listen, "LISTEN") {
            None => ListenOn { at: Listen::DEFAULT, setting: format!("{PREFIX}LISTEN") },
            Some(s) => match s.value.parse() {
                Ok(at) => ListenOn { at, setting: s.name },
                Err(e) => {
                    problems.push(s.problem(e.to_string()));
                    ListenOn { at: Listen::DEFAULT, setting: s.name }
                }
            },
        };
        let debug_listen = match pick(cli.debug_listen, "--debug-listen", raw.debug_listen, "DEBUG_LISTEN") {
            None => None,
            Some(s) => match s.value.parse::<Listen>() {
                Ok(at) if at.is_loopback() => Some(ListenOn { at, setting: s.name }),
                Ok(_) => {
                    problems.push(s.problem(
                        "must be a loopback address, e.g. 127.0.0.1:8082 or [::1]:8082: /status and \
                         ?verbose show sensor details, for kubectl exec and port-forward only",
                    ));
                    None
                }
                Err(e) => {
                    problems.push(s.problem(e.to_string()));
                    None
                }
            },
        };
        let amber_ready = match pick(cli.amber, "--amber", raw.amber, "AMBER") {
            None => true,
            Some(s) => match s.value.trim().to_ascii_lowercase().as_str() {
                "ready" => true,
                "not-ready" | "not_ready" | "notready" => false,
                _ => {
                    problems.push(s.problem("must be ready or not-ready"));
                    true
                }
            },
        };
        let patterns = |s: Option<Setting>| -> Vec<Pattern> {
            s.map(|s| split_list(&s.value).map(Pattern::new).collect()).unwrap_or_default()
        };
        let readiness_ignore = patterns(pick(
            cli.readiness_ignore,
            "--readiness-ignore",
            raw.readiness_ignore,
            "READINESS_IGNORE",
        ));
        let liveness_setting =
            pick(cli.liveness_sensors, "--liveness-sensors", raw.liveness_sensors, "LIVENESS_SENSORS");
        let liveness_sensors = patterns(liveness_setting.clone());
        if let Some(s) = &liveness_setting {
            for p in &liveness_sensors {
                if let Some(conn) = CONNECTION_SENSORS.iter().find(|c| p.matches(c)) {
                    problems.push(s.problem(format!(
                        "{p} matches {conn}: a connection to another server goes RED in a failover that no \
                         restart fixes, and restarting every client makes it worse (the cascading-restart \
                         anti-pattern); use it for readiness only"
                    )));
                }
            }
        }
        let ready_failures = count(
            pick(cli.ready_failures, "--ready-failures", raw.ready_failures, "READY_FAILURES"),
            2,
            &mut problems,
        );
        let ready_successes = count(
            pick(cli.ready_successes, "--ready-successes", raw.ready_successes, "READY_SUCCESSES"),
            2,
            &mut problems,
        );
        let (liveness_grace, _) = duration(
            pick(cli.liveness_grace, "--liveness-grace", raw.liveness_grace, "LIVENESS_GRACE"),
            Duration::from_secs(60),
            &mut problems,
        );
        let (shutdown_delay, _) = duration(
            pick(cli.shutdown_delay, "--shutdown-delay", raw.shutdown_delay, "SHUTDOWN_DELAY"),
            Duration::from_secs(5),
            &mut problems,
        );
        let max_sensor_metrics = count(
            pick(
                cli.max_sensor_metrics,
                "--max-sensor-metrics",
                raw.max_sensor_metrics,
                "MAX_SENSOR_METRICS",
            ),
            200,
            &mut problems,
        ) as usize;

        match upstream {
            Some(upstream) if problems.is_empty() => Ok(Config {
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
            }),
            _ => Err(problems),
        }
    }
}

/// An address to listen on and the setting that gave it, for errors (`AGENT_HEALTH_LISTEN`,
/// `--listen`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenOn {
    pub at: Listen,
    pub setting: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    use agent_core::config::vars_from as vars;

    #[test]
    fn defaults() {
        let c = Config::from_parts(
            Cli::default(),
            &vars(&[("AGENT_HEALTH_UPSTREAM", "http://127.0.0.1:8140/health")]),
        )
        .expect("valid");
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
        let problems = Config::from_parts(Cli::default(), &v).expect_err("invalid");
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
        let problems = Config::from_parts(Cli::default(), &v).expect_err("refused");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].reason.contains("the cascading-restart anti-pattern"), "{}", problems[0].reason);
        assert!(
            !problems[0].reason.contains('\\') && !problems[0].reason.contains("  "),
            "{}",
            problems[0].reason
        );
        let v = vars(&[("AGENT_HEALTH_UPSTREAM", "http://x/"), ("AGENT_HEALTH_LIVENESS_SENSORS", "*")]);
        assert!(Config::from_parts(Cli::default(), &v).is_err(), "a wildcard that covers them too");
        let v = vars(&[
            ("AGENT_HEALTH_UPSTREAM", "http://x/"),
            ("AGENT_HEALTH_LIVENESS_SENSORS", "*/EngineRunning"),
        ]);
        assert!(Config::from_parts(Cli::default(), &v).is_ok());
    }

    #[test]
    fn the_debug_address_must_be_loopback() {
        let with = |debug: &str| {
            let v = vars(&[("AGENT_HEALTH_UPSTREAM", "http://x/"), ("AGENT_HEALTH_DEBUG_LISTEN", debug)]);
            Config::from_parts(Cli::default(), &v)
        };
        let c = with("127.0.0.1:8082").expect("loopback");
        assert_eq!(c.debug_listen.map(|d| d.at.to_string()), Some("127.0.0.1:8082".into()));
        assert!(with("[::1]:0").is_ok());
        for bad in ["0.0.0.0:8082", "[::]:8082", "10.1.2.3:8082", "localhost:8082"] {
            let problems = with(bad).expect_err(bad);
            assert_eq!(problems[0].name, "AGENT_HEALTH_DEBUG_LISTEN", "{bad}");
        }
        let cli = Cli { listen: Some("0.0.0.0:9".into()), ..Cli::default() };
        let c = Config::from_parts(cli, &vars(&[("AGENT_HEALTH_UPSTREAM", "http://x/")])).expect("valid");
        assert_eq!(c.listen.setting, "--listen");
    }

    #[test]
    fn absurd_durations_are_refused() {
        let v =
            vars(&[("AGENT_HEALTH_UPSTREAM", "http://x/"), ("AGENT_HEALTH_INTERVAL", "500000000000years")]);
        let problems = Config::from_parts(Cli::default(), &v).expect_err("refused");
        assert_eq!(problems[0].name, "AGENT_HEALTH_INTERVAL");
    }

    #[test]
    fn upstream_secrets_are_not_repeated() {
        let v = vars(&[("AGENT_HEALTH_UPSTREAM", "ftp://u:s3cret@x/")]);
        let problems = Config::from_parts(Cli::default(), &v).expect_err("invalid");
        assert!(!problems[0].to_string().contains("s3cret"));
    }
}
