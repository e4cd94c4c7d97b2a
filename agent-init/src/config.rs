//! agent-init's settings: flags overlaid on `AGENT_INIT_*` variables, validated at once.

use std::path::PathBuf;
use std::time::Duration;

use agent_core::config::{Problem, Setting, from_env, split_list};
use clap::Parser;
use serde::Deserialize;

use crate::output::Owner;
use crate::render::{Requirement, built_in_requirements};
use crate::secret_vars::SecretVars;

pub const PREFIX: &str = "AGENT_INIT_";
const KNOWN: &[&str] =
    &["TEMPLATES", "ENV", "SECRETS_DIR", "OUTPUT", "REQUIRE", "OWNER", "WATCH", "DEBOUNCE", "SECRET_VARS"];
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(500);

const AFTER_HELP: &str = "\
TEMPLATES:
  NAME.properties.tmpl -> NAME.properties.<ENV>  values escaped for java.util.Properties (ASCII only)
  NAME.xml.tmpl        -> NAME.xml               values XML-escaped
  NAME.tmpl            -> NAME                   values as they are
  Later directories are overlays: a .properties template of the same name overrides the base
  key by key (base order and comments kept, new keys appended); other files are replaced whole.
  Placeholders: ${NAME}  ${NAME:-default}  ${NAME:?message}  ${secret:KEY}  and $${ for a literal ${
  (in .properties templates: in values only; comment lines are copied as they are).

ENVIRONMENT (flags win):
  AGENT_INIT_TEMPLATES    template directories, colon separated, base first (as --templates)
  AGENT_INIT_ENV          environment name, e.g. UAT1 (as --env)
  AGENT_INIT_SECRETS_DIR  the mounted Secret: one file per key (as --secrets-dir)
  AGENT_INIT_OUTPUT       output directory, e.g. the emptyDir (as --output)
  AGENT_INIT_REQUIRE      more required keys: [FILE_PREFIX:]KEY, comma/space separated; built in:
                          calypsosystem.properties:DRIVER,DBURL,DBUSER,DBPASSWORD
  AGENT_INIT_OWNER        uid:gid to give the files (as --owner)
  AGENT_INIT_WATCH        true: keep running and re-render on changes (as --watch)
  AGENT_INIT_DEBOUNCE     quiet time before a re-render in watch mode (default 500ms)
  AGENT_INIT_SECRET_VARS  variables whose values are secret: name patterns, comma separated,
                          case-insensitive (as --secret-vars); replaces the default list
                          *PASSWORD*,*PASSWD*,*SECRET*,*TOKEN*,*PASSPHRASE*,*CREDENTIAL*,*_KEY
  AGENT_LOG, AGENT_LOG_FORMAT, AGENT_TERMINATION_LOG   see docs/configuration.md

FILES:
  Written 0640, or 0600 when they hold a secret value (${secret:KEY}, or a variable named like
  a secret); each through a temporary file in the
  output directory, fsynced and renamed; nothing is written unless every file renders.

EXIT CODES:
  0 rendered (or valid, with --check)   64 bad configuration   65 bad templates or values
  (every problem listed, file:line:column)   70 the files could not be written
  143 stopped by SIGTERM/SIGINT before any file was changed (once the files are being renamed
  into place, the renames finish and the exit is 0)";

/// Renders Calypso configuration files from templates, env values and mounted Secrets.
#[derive(Debug, Parser, Default)]
#[command(name = "agent-init", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Template directories, colon separated, base first then overlays.
    #[arg(long, value_name = "DIRS")]
    pub templates: Option<String>,
    /// Environment name: NAME.properties.tmpl becomes NAME.properties.<ENV>.
    #[arg(long, value_name = "ENV")]
    pub env: Option<String>,
    /// The mounted Secret's directory (one file per key) for ${secret:KEY}.
    #[arg(long, value_name = "DIR")]
    pub secrets_dir: Option<String>,
    /// Where to write the files.
    #[arg(long, value_name = "DIR")]
    pub output: Option<String>,
    /// More required keys: [FILE_PREFIX:]KEY, comma separated.
    #[arg(long, value_name = "KEYS")]
    pub require: Option<String>,
    /// uid:gid to give the written files.
    #[arg(long, value_name = "UID:GID")]
    pub owner: Option<String>,
    /// Validate and print what would be written and where each value comes from; write nothing.
    #[arg(long, conflicts_with_all = ["print", "watch"])]
    pub check: bool,
    /// Print the rendered files with secret values redacted; write nothing.
    #[arg(long, conflicts_with = "watch")]
    pub print: bool,
    /// Keep running and re-render when a template or secret changes.
    #[arg(long)]
    pub watch: bool,
    /// Quiet time after a change before re-rendering (watch mode).
    #[arg(long, value_name = "DURATION")]
    pub debounce: Option<String>,
    /// Variables whose values are secret (redacted, files 0600): name patterns such as
    /// *PASSWORD*, comma separated, case-insensitive; replaces the default list.
    #[arg(long, value_name = "PATTERNS")]
    pub secret_vars: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Raw {
    templates: Option<String>,
    env: Option<String>,
    secrets_dir: Option<String>,
    output: Option<String>,
    require: Option<String>,
    owner: Option<String>,
    watch: Option<String>,
    debounce: Option<String>,
    secret_vars: Option<String>,
}

/// What to do with the rendered files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Write,
    Check,
    Print,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub templates: Vec<PathBuf>,
    pub env: String,
    pub secrets_dir: Option<PathBuf>,
    /// `None` only for `--check` and `--print`.
    pub output: Option<PathBuf>,
    pub require: Vec<Requirement>,
    pub owner: Option<Owner>,
    pub action: Action,
    pub watch: bool,
    pub debounce: Duration,
    pub secret_vars: SecretVars,
}

impl Config {
    pub fn from_parts(cli: Cli, vars: &[(String, String)]) -> Result<Config, Vec<Problem>> {
        let mut problems = Vec::new();
        let raw: Raw = from_env(PREFIX, KNOWN, vars, &mut problems);
        let pick = |flag: Option<String>, flag_name: &str, env: Option<String>, key: &str| {
            Setting::pick(flag, flag_name, env, &format!("{PREFIX}{key}"))
        };
        let action = if cli.check {
            Action::Check
        } else if cli.print {
            Action::Print
        } else {
            Action::Write
        };

        let templates = match pick(cli.templates, "--templates", raw.templates, "TEMPLATES") {
            None => {
                problems.push(Problem::without_value(
                    "AGENT_INIT_TEMPLATES",
                    "missing: the template directories",
                ));
                Vec::new()
            }
            Some(s) if s.value.split(':').any(str::is_empty) => {
                problems.push(s.problem("an empty directory in the list (a stray or doubled colon?)"));
                Vec::new()
            }
            Some(s) => s.value.split(':').map(PathBuf::from).collect(),
        };
        let env = match pick(cli.env, "--env", raw.env, "ENV") {
            None => {
                problems.push(Problem::without_value(
                    "AGENT_INIT_ENV",
                    "missing: the environment name, e.g. UAT1",
                ));
                String::new()
            }
            Some(s)
                if !s.value.is_empty()
                    && s.value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) =>
            {
                s.value
            }
            Some(s) => {
                problems.push(
                    s.problem("only letters, digits, '_', '-' and '.' (it becomes part of file names)"),
                );
                String::new()
            }
        };
        let secrets_dir =
            pick(cli.secrets_dir, "--secrets-dir", raw.secrets_dir, "SECRETS_DIR").map(|s| s.value.into());
        let output = match pick(cli.output, "--output", raw.output, "OUTPUT") {
            Some(s) => Some(PathBuf::from(s.value)),
            None if action == Action::Write => {
                problems
                    .push(Problem::without_value("AGENT_INIT_OUTPUT", "missing: the directory to write to"));
                None
            }
            None => None,
        };
        let mut require = built_in_requirements();
        if let Some(s) = pick(cli.require, "--require", raw.require, "REQUIRE") {
            for item in split_list(&s.value) {
                let (file_prefix, key) = match item.rsplit_once(':') {
                    Some((f, k)) => (Some(f.to_string()), k),
                    None => (None, item),
                };
                if key.is_empty() || file_prefix.as_deref() == Some("") {
                    problems.push(s.problem(format!("{item:?} is not [FILE_PREFIX:]KEY")));
                } else {
                    require.push(Requirement { file_prefix, key: key.to_string() });
                }
            }
        }
        let owner = pick(cli.owner, "--owner", raw.owner, "OWNER").and_then(|s| {
            let parsed = s
                .value
                .split_once(':')
                .and_then(|(u, g)| Some(Owner { uid: u.parse().ok()?, gid: g.parse().ok()? }));
            parsed.or_else(|| {
                problems.push(s.problem("must be numeric uid:gid, e.g. 1000:1000"));
                None
            })
        });
        let watch = cli.watch
            || pick(None, "--watch", raw.watch, "WATCH")
                .map(|s| s.boolean().map_err(|p| problems.push(p)).unwrap_or(false))
                .unwrap_or(false);
        if watch && action != Action::Write {
            problems.push(Problem::without_value("--watch", "cannot be combined with --check or --print"));
        }
        let debounce = match pick(cli.debounce, "--debounce", raw.debounce, "DEBOUNCE").map(|s| s.duration())
        {
            None => DEFAULT_DEBOUNCE,
            Some(Ok(d)) => d,
            Some(Err(p)) => {
                problems.push(p);
                DEFAULT_DEBOUNCE
            }
        };
        let secret_vars = match pick(cli.secret_vars, "--secret-vars", raw.secret_vars, "SECRET_VARS") {
            None => SecretVars::default(),
            Some(s) => SecretVars::new(split_list(&s.value)).unwrap_or_else(|bad| {
                problems.extend(bad.iter().map(|b| s.problem(b.to_string())));
                SecretVars::default()
            }),
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        Ok(Config {
            templates,
            env,
            secrets_dir,
            output,
            require,
            owner,
            action,
            watch,
            debounce,
            secret_vars,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use agent_core::config::vars_from as vars;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("agent-init").chain(args.iter().copied())).expect("flags parse")
    }

    #[test]
    fn from_env_with_defaults() {
        let v = vars(&[
            ("AGENT_INIT_TEMPLATES", "/t/base:/t/uat"),
            ("AGENT_INIT_ENV", "UAT1"),
            ("AGENT_INIT_OUTPUT", "/out"),
            ("AGENT_INIT_REQUIRE", "calypsouser.properties:CLIENTUSER, LOG_LEVEL"),
            ("AGENT_INIT_OWNER", "1000:2000"),
        ]);
        let c = Config::from_parts(Cli::default(), &v).expect("valid");
        assert_eq!(c.templates, [PathBuf::from("/t/base"), PathBuf::from("/t/uat")]);
        assert_eq!(c.env, "UAT1");
        assert_eq!(c.output, Some(PathBuf::from("/out")));
        assert_eq!(c.owner, Some(Owner { uid: 1000, gid: 2000 }));
        assert_eq!(c.require.len(), 6);
        assert_eq!(
            c.require[4],
            Requirement { file_prefix: Some("calypsouser.properties".into()), key: "CLIENTUSER".into() }
        );
        assert_eq!(c.require[5], Requirement { file_prefix: None, key: "LOG_LEVEL".into() });
        assert_eq!((c.action, c.watch, c.debounce), (Action::Write, false, DEFAULT_DEBOUNCE));
        assert_eq!(c.secret_vars, SecretVars::default());
    }

    #[test]
    fn secret_vars_replace_the_defaults() {
        let base = [("AGENT_INIT_TEMPLATES", "/t"), ("AGENT_INIT_ENV", "X"), ("AGENT_INIT_OUTPUT", "/o")];
        let v = vars(&[&base[..], &[("AGENT_INIT_SECRET_VARS", "*_PIN, otp")]].concat());
        let c = Config::from_parts(Cli::default(), &v).expect("valid");
        assert!(c.secret_vars.matches("CARD_PIN") && c.secret_vars.matches("OTP"));
        assert!(!c.secret_vars.matches("DB_PASSWORD"), "replaced, not extended");
        let v = vars(&[&base[..], &[("AGENT_INIT_SECRET_VARS", "DB-PASS,*KEY")]].concat());
        let problems = Config::from_parts(Cli::default(), &v).expect_err("invalid");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].name, "AGENT_INIT_SECRET_VARS");
        assert!(problems[0].reason.contains("\"DB-PASS\" is not a pattern"), "{}", problems[0]);
    }

    #[test]
    fn every_problem_at_once() {
        let v = vars(&[
            ("AGENT_INIT_ENV", "UAT 1"),
            ("AGENT_INIT_OWNER", "calypso"),
            ("AGENT_INIT_DEBOUNCE", "soon"),
        ]);
        let problems = Config::from_parts(Cli::default(), &v).expect_err("invalid");
        let names: Vec<&str> = problems.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "AGENT_INIT_TEMPLATES",
                "AGENT_INIT_ENV",
                "AGENT_INIT_OUTPUT",
                "AGENT_INIT_OWNER",
                "AGENT_INIT_DEBOUNCE"
            ]
        );
    }

    #[test]
    fn empty_names_are_refused() {
        let problems = Config::from_parts(cli(&["--env", "", "--templates", "a:", "--output", "/o"]), &[])
            .expect_err("invalid");
        let names: Vec<&str> = problems.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["--templates", "--env"]);
        assert!(problems[0].reason.contains("empty directory"));
    }

    #[test]
    fn check_needs_no_output() {
        let c = Config::from_parts(cli(&["--check", "--templates", "/t", "--env", "X"]), &[]).expect("valid");
        assert_eq!((c.action, c.output), (Action::Check, None));
        assert!(Cli::try_parse_from(["agent-init", "--check", "--watch"]).is_err());
    }
}
