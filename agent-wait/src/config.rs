//! agent-wait's settings: flags overlaid on `AGENT_WAIT_*` variables, validated at once into
//! strong types, every problem reported together.

use std::time::Duration;

use agent_core::config::{Problem, Setting, from_env};
use agent_core::dns::Dns;
use agent_core::redact;
use calypso::Component;
use clap::Parser;
use serde::Deserialize;

use crate::check::Rules;
use crate::predicate::{JsonPredicate, StatusRanges};
use crate::target::Target;

pub const PREFIX: &str = "AGENT_WAIT_";
const KNOWN: &[&str] = &[
    "TARGETS",
    "COMPONENT",
    "TIMEOUT",
    "ATTEMPT_TIMEOUT",
    "MAX_INTERVAL",
    "STATUS",
    "JSON_PATH",
    "JSON_VALUE",
    "STRICT",
];

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
pub const DEFAULT_MAX_INTERVAL: Duration = Duration::from_secs(1);
/// The first retry comes after 50-100 ms; later ones double up to the max interval.
pub const MIN_INTERVAL: Duration = Duration::from_millis(50);

const AFTER_HELP: &str = "\
TARGETS:
  tcp://HOST:PORT, HOST:PORT   ready when a TCP connection succeeds
  http://..., https://...      ready when the status is in --status (and --json-path holds)
  calypso://HOST:PORT[/PATH]   ready when the Calypso health report is GREEN, or AMBER unless
  calypso+https://...          --strict (path defaults to /health)
  file:///PATH                 ready when the file exists and is not empty
  Names are resolved again on every attempt, so Services that do not exist yet are fine.

COMPONENT MODE:
  --component engineserver waits for the component's direct dependencies in the Calypso startup
  order (EventServer -> AuthServer -> DataServer -> everything else; PresentationServer after
  CalculationServer), each at CALYPSO_<COMPONENT>_HEALTH_URL, e.g. CALYPSO_DATASERVER_HEALTH_URL.

ENVIRONMENT (flags win):
  AGENT_WAIT_TARGETS           targets, separated by spaces or commas
  AGENT_WAIT_COMPONENT         as --component
  AGENT_WAIT_TIMEOUT           as --timeout (default 10m)
  AGENT_WAIT_ATTEMPT_TIMEOUT   as --attempt-timeout (default 2s)
  AGENT_WAIT_MAX_INTERVAL      as --max-interval (default 1s)
  AGENT_WAIT_STATUS            as --status (default 200-299)
  AGENT_WAIT_JSON_PATH         as --json-path
  AGENT_WAIT_JSON_VALUE        as --json-value
  AGENT_WAIT_STRICT            as --strict (true/false)
  CALYPSO_<COMPONENT>_HEALTH_URL  health URL of each dependency in component mode
  AGENT_DNS_SERVERS            name servers (ip[:port], comma separated) instead of resolv.conf
  AGENT_LOG                    log filter (default info); AGENT_LOG_FORMAT text|json
  AGENT_TERMINATION_LOG        termination message path (default /dev/termination-log if present)

EXIT CODES:
  0 all targets ready (or COMMAND replaced agent-wait)   64 bad configuration or usage
  124 deadline passed (message lists each target not ready and why)   143 SIGTERM/SIGINT
  126 COMMAND could not be executed   127 COMMAND not found";

/// Blocks until every target is ready, then exits 0 or runs COMMAND in its place.
#[derive(Debug, Parser, Default)]
#[command(name = "agent-wait", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// What to wait for (see TARGETS below); all are checked in parallel.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Wait for this Calypso component's dependencies (e.g. engineserver, dataserver).
    #[arg(short, long, value_name = "NAME")]
    pub component: Option<String>,
    /// Overall deadline, e.g. 90s or 10m.
    #[arg(short, long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Deadline of one attempt (DNS, connect, request and answer).
    #[arg(long, value_name = "DURATION")]
    pub attempt_timeout: Option<String>,
    /// Cap of the pause between attempts (exponential with jitter from 50ms).
    #[arg(long, value_name = "DURATION")]
    pub max_interval: Option<String>,
    /// HTTP statuses that count as ready, e.g. 200-299,304.
    #[arg(long, value_name = "RANGES")]
    pub status: Option<String>,
    /// For http targets: a JSON value that must be present, e.g. $.status or components.db.status.
    #[arg(long, value_name = "PATH")]
    pub json_path: Option<String>,
    /// The value --json-path must have (strings compare as text, others as JSON: true, 3).
    #[arg(long, value_name = "VALUE")]
    pub json_value: Option<String>,
    /// For calypso targets: AMBER is not ready either.
    #[arg(long)]
    pub strict: bool,
    /// Run this after every target is ready, replacing agent-wait (exec).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// The `AGENT_WAIT_*` variables, as given.
#[derive(Debug, Default, Deserialize)]
struct Raw {
    targets: Option<String>,
    component: Option<String>,
    timeout: Option<String>,
    attempt_timeout: Option<String>,
    max_interval: Option<String>,
    status: Option<String>,
    json_path: Option<String>,
    json_value: Option<String>,
    strict: Option<String>,
}

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub targets: Vec<Target>,
    pub component: Option<Component>,
    pub timeout: Duration,
    pub max_interval: Duration,
    pub rules: Rules,
    pub command: Vec<String>,
    pub dns: Dns,
}

impl Config {
    /// Validates flags and variables together; `Err` holds every problem found.
    pub fn from_parts(cli: Cli, vars: &[(String, String)]) -> Result<Config, Vec<Problem>> {
        let mut problems = Vec::new();
        let raw: Raw = from_env(PREFIX, KNOWN, vars, &mut problems);
        let env_name = |n: &str| format!("{PREFIX}{n}");
        let pick = |flag: Option<String>, flag_name: &str, env: Option<String>, env_key: &str| {
            Setting::pick(flag, flag_name, env, &env_name(env_key))
        };
        let mut duration = |s: Option<Setting>, default: Duration| match s.map(|s| s.duration()) {
            None => default,
            Some(Ok(d)) => d,
            Some(Err(p)) => {
                problems.push(p);
                default
            }
        };
        let timeout = duration(pick(cli.timeout, "--timeout", raw.timeout, "TIMEOUT"), DEFAULT_TIMEOUT);
        let attempt_timeout = duration(
            pick(cli.attempt_timeout, "--attempt-timeout", raw.attempt_timeout, "ATTEMPT_TIMEOUT"),
            DEFAULT_ATTEMPT_TIMEOUT,
        );
        let max_interval = duration(
            pick(cli.max_interval, "--max-interval", raw.max_interval, "MAX_INTERVAL"),
            DEFAULT_MAX_INTERVAL,
        );

        let status = match pick(cli.status, "--status", raw.status, "STATUS") {
            None => StatusRanges::default(),
            Some(s) => StatusRanges::parse(&s.value).unwrap_or_else(|why| {
                problems.push(s.problem(why));
                StatusRanges::default()
            }),
        };
        let json_value = pick(cli.json_value, "--json-value", raw.json_value, "JSON_VALUE");
        let json = match pick(cli.json_path, "--json-path", raw.json_path, "JSON_PATH") {
            None => {
                if let Some(v) = &json_value {
                    problems.push(v.problem("needs a JSON path (--json-path or AGENT_WAIT_JSON_PATH)"));
                }
                None
            }
            Some(p) => JsonPredicate::parse(&p.value, json_value.map(|v| v.value))
                .map_err(|why| problems.push(p.problem(why)))
                .ok(),
        };
        let strict = cli.strict
            || pick(None, "--strict", raw.strict, "STRICT")
                .map(|s| s.boolean().map_err(|p| problems.push(p)).unwrap_or(false))
                .unwrap_or(false);

        // Targets: the flags' list replaces the variable's; component dependencies come first.
        let mut targets = Vec::new();
        let component = match pick(cli.component, "--component", raw.component, "COMPONENT") {
            None => None,
            Some(s) => match s.value.parse::<Component>() {
                Ok(c) => {
                    targets.extend(dependency_targets(c, &s.name, vars, &mut problems));
                    Some(c)
                }
                Err(e) => {
                    problems.push(s.problem(e.to_string()));
                    None
                }
            },
        };
        let listed = if cli.targets.is_empty() {
            raw.targets
                .map(|t| {
                    Target::split_list(&t)
                        .into_iter()
                        .map(|item| (env_name("TARGETS"), item.to_string()))
                        .collect()
                })
                .unwrap_or_default()
        } else {
            cli.targets.into_iter().map(|t| ("TARGET".to_string(), t)).collect::<Vec<_>>()
        };
        for (name, text) in listed {
            match Target::parse(&text) {
                Ok(t) => targets.push(t),
                Err(e) => problems.push(Problem::new(name, redact::url(&text), e.to_string())),
            }
        }
        if targets.is_empty() && component.is_none() && problems.is_empty() {
            problems.push(Problem::without_value(
                "TARGET",
                "nothing to wait for: give targets, AGENT_WAIT_TARGETS or --component",
            ));
        }

        let var_pairs = vars.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let dns = Dns::from_vars(var_pairs).unwrap_or_else(|p| {
            problems.push(p);
            Dns::system()
        });

        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Config {
            targets,
            component,
            timeout,
            max_interval,
            rules: Rules { status, json, strict, attempt_timeout },
            command: cli.command,
            dns,
        })
    }
}

/// The health checks of a component's direct dependencies, each at
/// `CALYPSO_<DEP>_HEALTH_URL`; a missing or bad URL is a problem naming the variable.
fn dependency_targets(
    component: Component,
    named_by: &str,
    vars: &[(String, String)],
    problems: &mut Vec<Problem>,
) -> Vec<Target> {
    let mut targets = Vec::new();
    for dep in component.dependencies() {
        let var = format!("CALYPSO_{}_HEALTH_URL", dep.env_key());
        let label = dep.name().to_ascii_lowercase();
        match vars.iter().find(|(k, v)| *k == var && !v.trim().is_empty()) {
            None => problems.push(Problem::without_value(
                &var,
                format!(
                    "missing: {named_by}={component} waits for the {dep}, whose health URL this must give"
                ),
            )),
            Some((_, url)) => match Target::calypso_health(&label, url) {
                Ok(t) => targets.push(t),
                Err(e) => problems.push(Problem::new(&var, redact::url(url), e.to_string())),
            },
        }
    }
    targets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Kind;

    use agent_core::config::vars_from as vars;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("agent-wait").chain(args.iter().copied())).expect("flags parse")
    }

    #[test]
    fn defaults() {
        let c = Config::from_parts(cli(&["db:1521"]), &[]).expect("valid");
        assert_eq!(c.timeout, Duration::from_secs(600));
        assert_eq!(c.rules.attempt_timeout, Duration::from_secs(2));
        assert_eq!(c.max_interval, Duration::from_secs(1));
        assert_eq!(c.rules.status, StatusRanges::default());
        assert!(!c.rules.strict && c.command.is_empty());
    }

    #[test]
    fn flags_win_over_env() {
        let v = vars(&[
            ("AGENT_WAIT_TIMEOUT", "5m"),
            ("AGENT_WAIT_TARGETS", "a:1, b:2"),
            ("AGENT_WAIT_STRICT", "true"),
        ]);
        let c = Config::from_parts(cli(&["--timeout", "30s", "c:3"]), &v).expect("valid");
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!(c.targets.len(), 1, "flag targets replace env targets");
        assert!(c.rules.strict);
        let c = Config::from_parts(Cli::default(), &v).expect("valid");
        assert_eq!(c.timeout, Duration::from_secs(300));
        assert_eq!(c.targets.iter().map(|t| t.label.as_str()).collect::<Vec<_>>(), ["a:1", "b:2"]);
    }

    #[test]
    fn every_problem_at_once() {
        let v = vars(&[
            ("AGENT_WAIT_TIMEOUT", "soon"),
            ("AGENT_WAIT_STATUS", "2xx"),
            ("AGENT_WAIT_TARGETS", "ftp://x"),
            ("AGENT_WAIT_COMPONENT", "engineserver"),
            ("AGENT_WAIT_TIMOUT", "1s"),
        ]);
        let problems = Config::from_parts(Cli::default(), &v).expect_err("invalid");
        let names: Vec<&str> = problems.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "AGENT_WAIT_TIMOUT",
                "AGENT_WAIT_TIMEOUT",
                "AGENT_WAIT_STATUS",
                "CALYPSO_DATASERVER_HEALTH_URL",
                "AGENT_WAIT_TARGETS"
            ]
        );
        assert!(problems[3].reason.contains("AGENT_WAIT_COMPONENT=EngineServer waits for the DataServer"));
    }

    #[test]
    fn component_mode_uses_dependency_urls() {
        let v = vars(&[("CALYPSO_DATASERVER_HEALTH_URL", "http://ds:8140/health")]);
        let c = Config::from_parts(cli(&["--component", "Engine-Server"]), &v).expect("valid");
        assert_eq!(c.component, Some(Component::EngineServer));
        assert_eq!(c.targets.len(), 1);
        assert_eq!(c.targets[0].label, "dataserver");
        assert!(
            matches!(&c.targets[0].kind, Kind::Calypso { url } if url.as_str() == "http://ds:8140/health")
        );
        let c = Config::from_parts(cli(&["-c", "eventserver"]), &[]).expect("no dependencies is fine");
        assert!(c.targets.is_empty());
    }

    #[test]
    fn secrets_in_bad_urls_are_not_repeated() {
        let v = vars(&[("CALYPSO_DATASERVER_HEALTH_URL", "tcp://admin:hunter2@ds:1")]);
        let problems =
            Config::from_parts(cli(&["-c", "engineserver", "ftp://u:s3cret@x"]), &v).expect_err("invalid");
        let text = agent_core::config::Problems(problems).to_string();
        assert!(!text.contains("hunter2") && !text.contains("s3cret"), "{text}");
        assert!(text.contains("tcp://admin:***@ds:1") && text.contains("ftp://u:***@x"), "{text}");
    }

    #[test]
    fn nothing_to_wait_for() {
        let problems = Config::from_parts(Cli::default(), &[]).expect_err("invalid");
        assert!(problems[0].reason.starts_with("nothing to wait for"));
    }

    #[test]
    fn json_value_needs_path() {
        let v = vars(&[("AGENT_WAIT_JSON_VALUE", "UP")]);
        let problems = Config::from_parts(cli(&["http://a/"]), &v).expect_err("invalid");
        assert_eq!(problems[0].name, "AGENT_WAIT_JSON_VALUE");
    }

    #[test]
    fn command_after_double_dash() {
        let c = Config::from_parts(cli(&["a:1", "--", "java", "-jar", "x.jar"]), &[]).expect("valid");
        assert_eq!(c.command, ["java", "-jar", "x.jar"]);
    }
}
