//! agent-wait's settings: flags overlaid on `AGENT_WAIT_*` variables, validated at once into
//! strong types, every problem reported together.

use std::time::Duration;

use agent_core::config::Problem;
use agent_core::dns::Dns;
use agent_core::redact;
use agent_core::settings::{Meta, Reader, Settings, Spec, parse};
use calypso::Component;
use clap::Parser;

use crate::check::Rules;
use crate::predicate::{JsonPredicate, StatusRanges};
use crate::target::Target;

pub const TARGETS: Spec<String> = Spec::env_only(
    "AGENT_WAIT_TARGETS",
    "What to wait for, separated by spaces or commas (the TARGET arguments replace it)",
    parse::text,
)
.url();
pub const COMPONENT: Spec<Component> = Spec::new(
    "component",
    "AGENT_WAIT_COMPONENT",
    "Wait for this Calypso component's dependencies (e.g. engineserver, dataserver)",
    |s| s.parse::<Component>().map_err(|e| e.to_string()),
)
.short('c')
.value_name("NAME");
pub const TIMEOUT: Spec<Duration> =
    Spec::new("timeout", "AGENT_WAIT_TIMEOUT", "Overall deadline, e.g. 90s or 10m", parse::duration)
        .short('t')
        .value_name("DURATION")
        .default("10m");
pub const ATTEMPT_TIMEOUT: Spec<Duration> = Spec::new(
    "attempt-timeout",
    "AGENT_WAIT_ATTEMPT_TIMEOUT",
    "Deadline of one attempt (DNS, connect, request and answer)",
    parse::duration,
)
.value_name("DURATION")
.default("2s");
pub const MAX_INTERVAL: Spec<Duration> = Spec::new(
    "max-interval",
    "AGENT_WAIT_MAX_INTERVAL",
    "Cap of the pause between attempts (exponential with jitter from 50ms)",
    parse::duration,
)
.value_name("DURATION")
.default("1s");
pub const STATUS: Spec<StatusRanges> =
    Spec::new("status", "AGENT_WAIT_STATUS", "HTTP statuses that count as ready, e.g. 200-299,304", |s| {
        StatusRanges::parse(s).map_err(|e| e.to_string())
    })
    .value_name("RANGES")
    .default("200-299");
pub const JSON_PATH: Spec<String> = Spec::new(
    "json-path",
    "AGENT_WAIT_JSON_PATH",
    "For http targets: a JSON value that must be present, e.g. $.status, components.db.status or \
     items[0].ok; without --json-value it must not be null or false",
    parse::text,
)
.value_name("PATH");
pub const JSON_VALUE: Spec<String> = Spec::new(
    "json-value",
    "AGENT_WAIT_JSON_VALUE",
    "The value --json-path must have (strings compare as text, others as JSON: true, 3)",
    parse::text,
)
.value_name("VALUE");
pub const STRICT: Spec<bool> =
    Spec::switch("strict", "AGENT_WAIT_STRICT", "For calypso targets: AMBER is not ready either");

pub static SETTINGS: Settings = Settings {
    prefix: "AGENT_WAIT_",
    specs: &[
        &TARGETS.meta,
        &COMPONENT.meta,
        &TIMEOUT.meta,
        &ATTEMPT_TIMEOUT.meta,
        &MAX_INTERVAL.meta,
        &STATUS.meta,
        &JSON_PATH.meta,
        &JSON_VALUE.meta,
        &STRICT.meta,
    ],
};

/// The variables read in component mode, one per dependency (documented, not a setting).
pub const DEPENDENCY_URL: Meta = Meta::env(
    "CALYPSO_<COMPONENT>_HEALTH_URL",
    "component mode: the health URL of each dependency, e.g. `CALYPSO_DATASERVER_HEALTH_URL`",
    None,
);

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

ENVIRONMENT:
  Every flag above has a variable, named after it; flags win. AGENT_WAIT_TARGETS: targets,
  separated by spaces or commas (TARGET arguments replace it). In component mode the health URL of
  each dependency comes from CALYPSO_<COMPONENT>_HEALTH_URL, e.g. CALYPSO_DATASERVER_HEALTH_URL.
  AGENT_DNS_SERVERS, AGENT_LOG, AGENT_LOG_FORMAT, AGENT_TERMINATION_LOG: see docs/configuration.md

EXIT CODES:
  0 all targets ready (or COMMAND replaced agent-wait)   64 bad configuration or usage
  124 deadline passed (message lists each target not ready and why)   143 SIGTERM/SIGINT
  126 COMMAND could not be executed   127 COMMAND not found";

/// Blocks until every target is ready, then exits 0 or runs COMMAND in its place.
// The settings' flags are added from SETTINGS (agent_core::settings::parse_args).
#[derive(Debug, Parser, Default)]
#[command(name = "agent-wait", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// What to wait for (see TARGETS below); all are checked in parallel.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Run this after every target is ready, replacing agent-wait (exec).
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
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
    pub fn from_parts(cli: Cli, mut read: Reader) -> Result<Config, Vec<Problem>> {
        let timeout = read.get(&TIMEOUT);
        let attempt_timeout = read.get(&ATTEMPT_TIMEOUT);
        let max_interval = read.get(&MAX_INTERVAL);
        let status = read.get(&STATUS);
        let json_value = read.opt(&JSON_VALUE);
        let json = match read.opt(&JSON_PATH) {
            None => {
                if json_value.is_some() {
                    read.push(
                        read.problem(&JSON_VALUE, "needs a JSON path (--json-path or AGENT_WAIT_JSON_PATH)"),
                    );
                }
                None
            }
            Some(path) => JsonPredicate::parse(&path, json_value)
                .map_err(|why| read.push(read.problem(&JSON_PATH, why.to_string())))
                .ok(),
        };
        let strict = read.get(&STRICT);

        // Targets: the arguments replace the variable's list; component dependencies come first.
        let mut targets = Vec::new();
        let component = read.opt(&COMPONENT);
        if let Some(c) = component {
            let named_by = read.setting(&COMPONENT.meta).map(|s| s.name).unwrap_or_default();
            for dependency in dependency_targets(c, &named_by, read.vars()) {
                match dependency {
                    Ok(t) => targets.push(t),
                    Err(p) => read.push(p),
                }
            }
        }
        let listed: Vec<(String, String)> = if cli.targets.is_empty() {
            match read.setting(&TARGETS.meta) {
                Some(s) => Target::split_list(&s.value)
                    .into_iter()
                    .map(|t| (s.name.clone(), t.to_string()))
                    .collect(),
                None => Vec::new(),
            }
        } else {
            cli.targets.into_iter().map(|t| ("TARGET".to_string(), t)).collect()
        };
        for (name, text) in listed {
            match Target::parse(&text) {
                Ok(t) => targets.push(t),
                Err(e) => read.push(Problem::new(name, redact::url(&text), e.to_string())),
            }
        }
        if targets.is_empty() && component.is_none() && !read.has_problems() {
            read.push(Problem::without_value(
                "TARGET",
                "nothing to wait for: give targets, AGENT_WAIT_TARGETS or --component",
            ));
        }

        let var_pairs = read.vars().iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let dns = Dns::from_vars(var_pairs).unwrap_or_else(|p| {
            read.push(p);
            Dns::system()
        });
        read.finish(Config {
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
) -> Vec<Result<Target, Problem>> {
    let dependency = |dep: Component| {
        let var = format!("CALYPSO_{}_HEALTH_URL", dep.env_key());
        let label = dep.name().to_ascii_lowercase();
        match vars.iter().find(|(k, v)| *k == var && !v.trim().is_empty()) {
            None => Err(Problem::without_value(
                &var,
                format!(
                    "missing: {named_by}={component} waits for the {dep}, whose health URL this must give"
                ),
            )),
            Some((_, url)) => Target::calypso_health(&label, url)
                .map_err(|e| Problem::new(&var, redact::url(url), e.to_string())),
        }
    };
    component.dependencies().iter().copied().map(dependency).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::Kind;

    use agent_core::config::vars_from as vars;

    fn config(args: &[&str], vars: &[(String, String)]) -> Result<Config, Vec<Problem>> {
        let (cli, read) = Reader::from_args::<Cli>(&SETTINGS, args, vars).expect("flags parse");
        Config::from_parts(cli, read)
    }

    #[test]
    fn defaults() {
        let c = config(&["db:1521"], &[]).expect("valid");
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
        let c = config(&["--timeout", "30s", "c:3"], &v).expect("valid");
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!(c.targets.len(), 1, "flag targets replace env targets");
        assert!(c.rules.strict);
        let c = config(&[], &v).expect("valid");
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
        let problems = config(&[], &v).expect_err("invalid");
        let names: Vec<&str> = problems.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "AGENT_WAIT_TIMOUT",
                "AGENT_WAIT_*",
                "AGENT_WAIT_TIMEOUT",
                "AGENT_WAIT_STATUS",
                "CALYPSO_DATASERVER_HEALTH_URL",
                "AGENT_WAIT_TARGETS"
            ]
        );
        assert_eq!(problems[0].reason, "unknown variable; did you mean AGENT_WAIT_TIMEOUT?");
        assert!(problems[4].reason.contains("AGENT_WAIT_COMPONENT=EngineServer waits for the DataServer"));
    }

    #[test]
    fn component_mode_uses_dependency_urls() {
        let v = vars(&[("CALYPSO_DATASERVER_HEALTH_URL", "http://ds:8140/health")]);
        let c = config(&["--component", "Engine-Server"], &v).expect("valid");
        assert_eq!(c.component, Some(Component::EngineServer));
        assert_eq!(c.targets.len(), 1);
        assert_eq!(c.targets[0].label, "dataserver");
        assert!(
            matches!(&c.targets[0].kind, Kind::Calypso { url } if url.as_str() == "http://ds:8140/health")
        );
        let c = config(&["-c", "eventserver"], &[]).expect("no dependencies is fine");
        assert!(c.targets.is_empty());
    }

    #[test]
    fn secrets_in_bad_urls_are_not_repeated() {
        let v = vars(&[("CALYPSO_DATASERVER_HEALTH_URL", "tcp://admin:hunter2@ds:1")]);
        let problems = config(&["-c", "engineserver", "ftp://u:s3cret@x"], &v).expect_err("invalid");
        let text = agent_core::config::Problems(problems).to_string();
        assert!(!text.contains("hunter2") && !text.contains("s3cret"), "{text}");
        assert!(text.contains("tcp://admin:***@ds:1") && text.contains("ftp://u:***@x"), "{text}");
    }

    #[test]
    fn nothing_to_wait_for() {
        let problems = config(&[], &[]).expect_err("invalid");
        assert!(problems[0].reason.starts_with("nothing to wait for"));
    }

    #[test]
    fn json_value_needs_path() {
        let v = vars(&[("AGENT_WAIT_JSON_VALUE", "UP")]);
        let problems = config(&["http://a/"], &v).expect_err("invalid");
        assert_eq!(problems[0].name, "AGENT_WAIT_JSON_VALUE");
    }

    #[test]
    fn command_after_double_dash() {
        let c = config(&["a:1", "--", "java", "-jar", "x.jar"], &[]).expect("valid");
        assert_eq!(c.command, ["java", "-jar", "x.jar"]);
    }
}
