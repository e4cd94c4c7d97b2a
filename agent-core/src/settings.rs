//! Settings declared once. Each agent lists its settings as [`Spec`]s — flag, env variable,
//! default, parser, help, secret or not — and everything else derives from that list: the clap
//! flags and their `--help` lines, the env reader with its typo check, and the documentation
//! table that a test keeps equal to `docs/configuration.md`.
//!
//! Reading is two-phase as DESIGN.md asks: raw text (flag, else env variable, else the default),
//! then the spec's pure parser; every bad value becomes a [`Problem`] naming where it came from,
//! and all of them are reported together.

use std::ffi::OsString;
use std::fmt::Write as _;

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, CommandFactory, FromArgMatches};

use crate::config::{Problem, Setting, Show};
use crate::env_check;

/// A parser from the setting's text to its value; the error is the reason shown to the user.
pub type Parse<T> = fn(&str) -> Result<T, String>;

/// What a setting is, without its value type: enough for flags, the typo check and the docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// The env variable, e.g. `AGENT_WAIT_TIMEOUT`.
    pub env: &'static str,
    /// The long flag without dashes (`timeout`), or `None` for an env-only setting.
    pub flag: Option<&'static str>,
    pub short: Option<char>,
    /// `None` for a switch: a flag without a value (`--strict`), `true`/`false` as a variable.
    pub value_name: Option<&'static str>,
    /// The default as text, parsed like a given value (so a test can check that it parses).
    pub default: Option<&'static str>,
    pub help: &'static str,
    /// How its value may be shown in errors and logs.
    pub show: Show,
}

impl Meta {
    /// An env-only setting parsed by its own module (the common settings below).
    pub const fn env(env: &'static str, help: &'static str, default: Option<&'static str>) -> Self {
        Meta { env, flag: None, short: None, value_name: Some("VALUE"), default, help, show: Show::Plain }
    }

    /// The name a user would write on the command line, or the variable for env-only settings.
    fn flag_name(&self) -> String {
        match self.flag {
            Some(f) => format!("--{f}"),
            None => self.env.to_string(),
        }
    }
}

/// One setting with its parser.
#[derive(Debug)]
pub struct Spec<T> {
    pub meta: Meta,
    pub parse: Parse<T>,
}

impl<T> Spec<T> {
    /// A setting with flag `--flag` and variable `env`, taking a value.
    pub const fn new(flag: &'static str, env: &'static str, help: &'static str, parse: Parse<T>) -> Self {
        Spec {
            meta: Meta {
                env,
                flag: Some(flag),
                short: None,
                value_name: Some("VALUE"),
                default: None,
                help,
                show: Show::Plain,
            },
            parse,
        }
    }

    /// A setting read only from its variable (no flag).
    pub const fn env_only(env: &'static str, help: &'static str, parse: Parse<T>) -> Self {
        let mut spec = Spec::new("", env, help, parse);
        spec.meta.flag = None;
        spec
    }

    pub const fn value_name(mut self, name: &'static str) -> Self {
        self.meta.value_name = Some(name);
        self
    }

    pub const fn default(mut self, default: &'static str) -> Self {
        self.meta.default = Some(default);
        self
    }

    pub const fn short(mut self, c: char) -> Self {
        self.meta.short = Some(c);
        self
    }

    /// Its value is never shown.
    pub const fn secret(mut self) -> Self {
        self.meta.show = Show::Secret;
        self
    }

    /// Its value is a URL that may carry credentials: shown with them masked.
    pub const fn url(mut self) -> Self {
        self.meta.show = Show::Url;
        self
    }
}

impl Spec<bool> {
    /// A switch: `--flag` sets it; the variable takes `true`/`false`.
    pub const fn switch(flag: &'static str, env: &'static str, help: &'static str) -> Self {
        let mut spec = Spec::new(flag, env, help, parse::boolean);
        spec.meta.value_name = None;
        spec.meta.default = Some("false");
        spec
    }
}

/// An agent's settings: its env prefix and every setting it reads.
#[derive(Debug)]
pub struct Settings {
    pub prefix: &'static str,
    pub specs: &'static [&'static Meta],
}

impl Settings {
    /// The clap flags of the settings that have one. The env variable and the default are in
    /// the help text only: clap must not read the environment itself (we read it, from the
    /// pairs given, to report every problem at once).
    pub fn args(&self) -> impl Iterator<Item = Arg> + '_ {
        self.specs.iter().filter_map(|m| {
            let flag = m.flag?;
            let mut help = format!("{} [env: {}]", m.help, m.env);
            if let (Some(d), Some(_)) = (m.default, m.value_name) {
                let _ = write!(help, " [default: {d}]");
            }
            // Global: a subcommand (`agent-logship setup --es-url ...`) takes them too.
            let mut arg = Arg::new(flag).long(flag).help(help).global(true);
            if let Some(c) = m.short {
                arg = arg.short(c);
            }
            Some(match m.value_name {
                Some(v) => arg.value_name(v).action(ArgAction::Set),
                None => arg.action(ArgAction::SetTrue),
            })
        })
    }

    /// The Markdown table of these settings, as `docs/configuration.md` shows it.
    pub fn markdown(&self) -> String {
        let mut out = String::from("| variable | flag | default | meaning |\n|---|---|---|---|\n");
        for m in self.specs {
            let flag = match (m.flag, m.short, m.value_name) {
                (None, ..) => String::new(),
                (Some(f), s, v) => {
                    let short = s.map(|c| format!("`-{c}`, ")).unwrap_or_default();
                    let value = v.map(|v| format!(" {v}")).unwrap_or_default();
                    format!("{short}`--{f}{value}`")
                }
            };
            let default = m.default.map(|d| format!("`{d}`")).unwrap_or_default();
            let secret = if m.show == Show::Secret { " (secret: never shown)" } else { "" };
            let _ = writeln!(out, "| `{}` | {flag} | {default} | {}{secret} |", m.env, m.help);
        }
        out
    }

    fn declares(&self, meta: &Meta) -> bool {
        self.specs.iter().any(|m| m.env == meta.env)
    }
}

/// The settings every agent reads, from the environment only; parsed by their own modules.
pub static COMMON: Settings = Settings {
    prefix: "AGENT_",
    specs: &[
        &Meta::env(
            crate::logging::LOG_ENV,
            "log filter: a level, or `target=level` pairs (`debug`, `warn,agent_wait=debug`)",
            Some("info"),
        ),
        &Meta::env(
            crate::logging::FORMAT_ENV,
            "`text`, or `json`: one ECS-friendly object a line (`@timestamp`, `log.level`, \
             `log.logger`, `message`, then the event's fields)",
            Some("text"),
        ),
        &Meta::env(
            crate::termination::ENV,
            "where the one-line failure reason goes (`terminationMessagePath`; at most 4096 bytes); \
             default `/dev/termination-log` when it exists",
            None,
        ),
        &Meta::env(
            crate::dns::SERVERS_ENV,
            "name servers to use instead of `/etc/resolv.conf`, `ip[:port]` separated by commas or spaces",
            None,
        ),
    ],
};

/// Parses the command line of an agent: its clap-derived part `C` (positional arguments,
/// subcommands, mode flags) plus the flags of its settings. The error is clap's.
pub fn parse_args<C: CommandFactory + FromArgMatches>(
    settings: &'static Settings,
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> Result<(C, ArgMatches), clap::Error> {
    let mut command = C::command().args(settings.args());
    let matches = command.try_get_matches_from_mut(args)?;
    let cli = C::from_arg_matches(&matches).map_err(|e| e.format(&mut command))?;
    Ok((cli, matches))
}

/// Reads an agent's settings from its flags and variables, collecting every problem.
#[derive(Debug)]
pub struct Reader {
    settings: &'static Settings,
    matches: ArgMatches,
    vars: Vec<(String, String)>,
    problems: Vec<Problem>,
}

impl Reader {
    /// Starts reading; the variables with the agent's prefix that it does not know are reported
    /// at once as likely typos (Kubernetes' service-link variables excepted).
    pub fn new(settings: &'static Settings, matches: ArgMatches, vars: &[(String, String)]) -> Self {
        let known: Vec<&str> = settings.specs.iter().map(|m| m.env).collect();
        let problems = env_check::unknown(settings.prefix, &known, vars);
        Reader { settings, matches, vars: vars.to_vec(), problems }
    }

    /// For tests: parse `args` (without the program name) and read `vars`.
    pub fn from_args<C: CommandFactory + FromArgMatches>(
        settings: &'static Settings,
        args: &[&str],
        vars: &[(String, String)],
    ) -> Result<(C, Reader), clap::Error> {
        let (cli, matches) = parse_args::<C>(settings, std::iter::once("agent").chain(args.iter().copied()))?;
        Ok((cli, Reader::new(settings, matches, vars)))
    }

    /// The text given for a setting and where: the flag when given, else the variable when set
    /// and non-empty (Kubernetes manifests often template optional variables to "").
    pub fn setting(&self, meta: &Meta) -> Option<Setting> {
        debug_assert!(self.settings.declares(meta), "{} is read but not declared", meta.env);
        let from_flag = meta.flag.and_then(|f| match meta.value_name {
            Some(_) => self.matches.get_one::<String>(f).cloned(),
            None => (self.matches.value_source(f) == Some(ValueSource::CommandLine)).then(|| "true".into()),
        });
        let (name, value) = match from_flag {
            Some(v) => (meta.flag_name(), v),
            None => {
                let (k, v) = self.vars.iter().find(|(k, v)| k == meta.env && !v.is_empty())?;
                (k.clone(), v.clone())
            }
        };
        Some(Setting { name, value, show: meta.show })
    }

    /// The value given, parsed; else the default, parsed; `None` when neither, or when the value
    /// is bad (then a problem names it).
    pub fn opt<T>(&mut self, spec: &Spec<T>) -> Option<T> {
        match self.setting(&spec.meta) {
            Some(s) => (spec.parse)(&s.value).map_err(|why| self.problems.push(s.problem(why))).ok(),
            None => {
                let default = spec.meta.default?;
                (spec.parse)(default)
                    .map_err(|why| {
                        self.problems.push(Problem::new(
                            spec.meta.env,
                            default,
                            format!("bad default: {why}"),
                        ))
                    })
                    .ok()
            }
        }
    }

    /// [`Reader::opt`] for a setting with a default. A bad value gives `T::default()`, which is
    /// never used: the problem makes the whole configuration fail.
    pub fn get<T: Default>(&mut self, spec: &Spec<T>) -> T {
        self.opt(spec).unwrap_or_default()
    }

    /// [`Reader::opt`] for a setting that must be given: missing is a problem.
    pub fn required<T>(&mut self, spec: &Spec<T>) -> Option<T> {
        if self.setting(&spec.meta).is_none() && spec.meta.default.is_none() {
            let m = &spec.meta;
            self.problems.push(Problem::without_value(m.env, format!("missing: {}", m.help)));
            return None;
        }
        self.opt(spec)
    }

    /// A problem with a setting's value as the user gave it (or its default).
    pub fn problem<T>(&self, spec: &Spec<T>, reason: impl Into<String>) -> Problem {
        match self.setting(&spec.meta) {
            Some(s) => s.problem(reason),
            None => {
                let default = spec.meta.default.map(|d| format!("the default {d} ")).unwrap_or_default();
                Problem::without_value(spec.meta.env, format!("{default}{}", reason.into()))
            }
        }
    }

    /// The environment, for settings an agent reads by pattern (e.g. one per dependency).
    pub fn vars(&self) -> &[(String, String)] {
        &self.vars
    }

    /// Adds a problem found by the agent's own cross-checks.
    pub fn push(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    /// Whether a problem was found so far.
    pub fn has_problems(&self) -> bool {
        !self.problems.is_empty()
    }

    /// The configuration, or every problem found.
    pub fn finish<T>(self, config: T) -> Result<T, Vec<Problem>> {
        if self.problems.is_empty() { Ok(config) } else { Err(self.problems) }
    }

    /// Every problem found (for a configuration that could not be built at all).
    pub fn into_problems(self) -> Vec<Problem> {
        self.problems
    }
}

/// The parsers settings share.
pub mod parse {
    use std::time::Duration;

    /// A humantime duration (`90s`, `2m`, `500ms`), strictly positive.
    pub fn duration(text: &str) -> Result<Duration, String> {
        match humantime::parse_duration(text.trim()) {
            Ok(d) if d.is_zero() => Err("must be more than zero".into()),
            Ok(d) => Ok(d),
            Err(e) => Err(format!("not a duration like 90s, 2m or 500ms: {e}")),
        }
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`, any case).
    pub fn boolean(text: &str) -> Result<bool, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" | "" => Ok(false),
            _ => Err("must be true or false".into()),
        }
    }

    /// A whole number of at least 1.
    pub fn count(text: &str) -> Result<u32, String> {
        match text.trim().parse::<u32>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err("must be a whole number of at least 1".into()),
        }
    }

    /// Any text, as given.
    pub fn text(text: &str) -> Result<String, String> {
        Ok(text.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::vars_from as vars;

    const TIMEOUT: Spec<Duration> = Spec::new("timeout", "X_TIMEOUT", "Overall deadline.", parse::duration)
        .value_name("DURATION")
        .default("10m")
        .short('t');
    const STRICT: Spec<bool> = Spec::switch("strict", "X_STRICT", "AMBER is not ready either.");
    const PASSWORD: Spec<String> = Spec::new("password", "X_PASSWORD", "The password.", parse::text).secret();
    const NAME: Spec<String> = Spec::env_only("X_NAME", "The name.", parse::text);
    static SETTINGS: Settings =
        Settings { prefix: "X_", specs: &[&TIMEOUT.meta, &STRICT.meta, &PASSWORD.meta, &NAME.meta] };

    #[derive(clap::Parser, Debug)]
    struct Cli {
        targets: Vec<String>,
    }

    fn read(args: &[&str], pairs: &[(&str, &str)]) -> (Cli, Reader) {
        Reader::from_args::<Cli>(&SETTINGS, args, &vars(pairs)).expect("parses")
    }

    #[test]
    fn flag_wins_env_next_default_last() {
        let (_, mut r) = read(&["--timeout", "5s"], &[("X_TIMEOUT", "9s")]);
        assert_eq!(r.get(&TIMEOUT), Duration::from_secs(5));
        let (_, mut r) = read(&[], &[("X_TIMEOUT", "9s")]);
        assert_eq!(r.get(&TIMEOUT), Duration::from_secs(9));
        let (_, mut r) = read(&["a"], &[("X_TIMEOUT", "")]);
        assert_eq!(r.get(&TIMEOUT), Duration::from_secs(600), "empty is unset");
        let (_, mut r) = read(&["-t", "1s"], &[]);
        assert_eq!(r.get(&TIMEOUT), Duration::from_secs(1));
        assert!(r.finish(()).is_ok());
    }

    #[test]
    fn switches() {
        let (_, mut r) = read(&["--strict"], &[("X_STRICT", "false")]);
        assert!(r.get(&STRICT));
        let (_, mut r) = read(&[], &[("X_STRICT", "yes")]);
        assert!(r.get(&STRICT));
        let (_, mut r) = read(&[], &[]);
        assert!(!r.get(&STRICT));
        let (_, mut r) = read(&[], &[("X_STRICT", "maybe")]);
        r.get(&STRICT);
        let problems = r.finish(()).expect_err("bad");
        assert_eq!(problems[0].to_string(), "X_STRICT=\"maybe\": must be true or false");
    }

    #[test]
    fn problems_name_the_source_and_hide_secrets() {
        let (_, mut r) = read(&["--timeout", "soon"], &[("X_PASSWORD", "hunter2")]);
        r.get(&TIMEOUT);
        let p = r.problem(&PASSWORD, "too short");
        assert_eq!(p.to_string(), "X_PASSWORD: too short");
        r.push(p);
        assert_eq!(r.required(&NAME), None);
        let text = crate::config::Problems(r.finish(()).expect_err("bad")).to_string();
        assert!(text.contains("--timeout=\"soon\": not a duration"), "{text}");
        assert!(text.contains("X_NAME: missing: The name."), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn typos_are_reported_at_start() {
        let (_, r) = read(&[], &[("X_TIMOUT", "5m"), ("X_SERVICE_HOST", "10.0.0.1")]);
        let problems = r.into_problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].reason.contains("did you mean X_TIMEOUT?"), "{:?}", problems[0]);
    }

    #[test]
    fn help_and_docs_derive_from_the_specs() {
        let help = Cli::command().args(SETTINGS.args()).render_long_help().to_string();
        assert!(help.contains("-t, --timeout <DURATION>"), "{help}");
        assert!(help.contains("Overall deadline. [env: X_TIMEOUT] [default: 10m]"), "{help}");
        assert!(!help.contains("X_NAME"), "env-only settings have no flag");
        let md = SETTINGS.markdown();
        assert!(
            md.contains("| `X_TIMEOUT` | `-t`, `--timeout DURATION` | `10m` | Overall deadline. |"),
            "{md}"
        );
        assert!(md.contains("| `X_STRICT` | `--strict` | `false` |"), "{md}");
        assert!(md.contains("| `X_NAME` |  |  | The name. |"), "{md}");
    }

    #[test]
    fn every_default_parses() {
        let (_, mut r) = read(&[], &[]);
        r.get(&TIMEOUT);
        r.get(&STRICT);
        assert!(r.finish(()).is_ok());
    }
}
