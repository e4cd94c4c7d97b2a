//! agent-init's settings: flags overlaid on `AGENT_INIT_*` variables, validated at once.

use std::path::PathBuf;
use std::time::Duration;

use agent_core::config::{Problem, split_list};
use agent_core::settings::{Reader, Settings, Spec, parse};
use clap::Parser;

use crate::output::Owner;
use crate::render::{Requirement, built_in_requirements};
use crate::secret_vars::SecretVars;

pub const TEMPLATES: Spec<Vec<PathBuf>> = Spec::new(
    "templates",
    "AGENT_INIT_TEMPLATES",
    "Template directories, colon separated, base first then overlays",
    |s| {
        if s.split(':').any(str::is_empty) {
            return Err("an empty directory in the list (a stray or doubled colon?)".into());
        }
        Ok(s.split(':').map(PathBuf::from).collect())
    },
)
.value_name("DIRS");
pub const ENV: Spec<String> = Spec::new(
    "env",
    "AGENT_INIT_ENV",
    "Environment name, e.g. UAT1: NAME.properties.tmpl becomes NAME.properties.<ENV>",
    |s| {
        if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
            Ok(s.to_string())
        } else {
            Err("only letters, digits, '_', '-' and '.' (it becomes part of file names)".into())
        }
    },
)
.value_name("ENV");
pub const SECRETS_DIR: Spec<PathBuf> = Spec::new(
    "secrets-dir",
    "AGENT_INIT_SECRETS_DIR",
    "The mounted Secret's directory (one file per key) for ${secret:KEY}",
    |s| Ok(PathBuf::from(s)),
)
.value_name("DIR");
pub const OUTPUT: Spec<PathBuf> =
    Spec::new("output", "AGENT_INIT_OUTPUT", "Where to write the files, e.g. the emptyDir", |s| {
        Ok(PathBuf::from(s))
    })
    .value_name("DIR");
pub const REQUIRE: Spec<Vec<Requirement>> = Spec::new(
    "require",
    "AGENT_INIT_REQUIRE",
    "More required keys: [FILE_PREFIX:]KEY, comma separated (built in: \
     calypsosystem.properties:DRIVER,DBURL,DBUSER,DBPASSWORD)",
    requirements,
)
.value_name("KEYS");
pub const OWNER: Spec<Owner> =
    Spec::new("owner", "AGENT_INIT_OWNER", "uid:gid to give the written files", |s| {
        s.split_once(':')
            .and_then(|(u, g)| Some(Owner { uid: u.parse().ok()?, gid: g.parse().ok()? }))
            .ok_or_else(|| "must be numeric uid:gid, e.g. 1000:1000".to_string())
    })
    .value_name("UID:GID");
pub const WATCH: Spec<bool> =
    Spec::switch("watch", "AGENT_INIT_WATCH", "Keep running and re-render when a template or secret changes");
pub const DEBOUNCE: Spec<Duration> = Spec::new(
    "debounce",
    "AGENT_INIT_DEBOUNCE",
    "Quiet time after a change before re-rendering (watch mode)",
    parse::duration,
)
.value_name("DURATION")
.default("500ms");

pub const SECRET_VARS: Spec<SecretVars> = Spec::new(
    "secret-vars",
    "AGENT_INIT_SECRET_VARS",
    "Variables whose values are secret (redacted, files 0600), as from a Secret's secretKeyRef: name \
     patterns (* and ?), comma separated, case-insensitive; replaces the default list",
    |s| {
        SecretVars::new(split_list(s))
            .map_err(|bad| bad.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))
    },
)
.value_name("PATTERNS")
.default(crate::secret_vars::DEFAULT);

pub static SETTINGS: Settings = Settings {
    prefix: "AGENT_INIT_",
    specs: &[
        &TEMPLATES.meta,
        &ENV.meta,
        &SECRETS_DIR.meta,
        &OUTPUT.meta,
        &REQUIRE.meta,
        &OWNER.meta,
        &WATCH.meta,
        &DEBOUNCE.meta,
        &SECRET_VARS.meta,
    ],
};

/// The user's required keys (the built-in ones are added by [`Config::from_parts`]).
fn requirements(text: &str) -> Result<Vec<Requirement>, String> {
    split_list(text)
        .map(|item| {
            let (file_prefix, key) = match item.rsplit_once(':') {
                Some((f, k)) => (Some(f.to_string()), k),
                None => (None, item),
            };
            if key.is_empty() || file_prefix.as_deref() == Some("") {
                Err(format!("{item:?} is not [FILE_PREFIX:]KEY"))
            } else {
                Ok(Requirement { file_prefix, key: key.to_string() })
            }
        })
        .collect()
}

const AFTER_HELP: &str = "\
TEMPLATES:
  NAME.properties.tmpl -> NAME.properties.<ENV>  values escaped for java.util.Properties (ASCII only)
  NAME.xml.tmpl        -> NAME.xml               values XML-escaped
  NAME.tmpl            -> NAME                   values as they are
  Later directories are overlays: a .properties template of the same name overrides the base
  key by key (base order and comments kept, new keys appended); other files are replaced whole.
  Placeholders: ${NAME}  ${NAME:-default}  ${NAME:?message}  ${secret:KEY}  and $${ for a literal ${
  (in .properties templates: in values only; comment lines are copied as they are).

ENVIRONMENT:
  Every flag above but --check and --print has a variable, named after it; flags win.
  AGENT_LOG, AGENT_LOG_FORMAT, AGENT_TERMINATION_LOG: see docs/configuration.md

FILES:
  Written 0640, or 0600 when they hold a secret value; each through a temporary file in the
  output directory, fsynced and renamed; nothing is written unless every file renders.

EXIT CODES:
  0 rendered (or valid, with --check)   64 bad configuration   65 bad templates or values
  (every problem listed, file:line:column)   70 the files could not be written
  143 stopped by SIGTERM/SIGINT before any file was changed (once the files are being renamed
  into place, the renames finish and the exit is 0)";

/// Renders Calypso configuration files from templates, env values and mounted Secrets.
// The settings' flags are added from SETTINGS (agent_core::settings::parse_args).
#[derive(Debug, Parser, Default)]
#[command(name = "agent-init", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Validate and print what would be written and where each value comes from; write nothing.
    #[arg(long, conflicts_with_all = ["print", "watch"])]
    pub check: bool,
    /// Print the rendered files with secret values redacted; write nothing.
    #[arg(long, conflicts_with = "watch")]
    pub print: bool,
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
    pub fn from_parts(cli: Cli, mut read: Reader) -> Result<Config, Vec<Problem>> {
        let action = if cli.check {
            Action::Check
        } else if cli.print {
            Action::Print
        } else {
            Action::Write
        };
        let templates = read.required(&TEMPLATES).unwrap_or_default();
        let env = read.required(&ENV).unwrap_or_default();
        let secrets_dir = read.opt(&SECRETS_DIR);
        // Only a write needs the directory; --check and --print may run anywhere.
        let output = match action {
            Action::Write => read.required(&OUTPUT),
            Action::Check | Action::Print => read.opt(&OUTPUT),
        };
        let mut require = built_in_requirements();
        require.extend(read.get(&REQUIRE));
        let owner = read.opt(&OWNER);
        let watch = read.get(&WATCH);
        if watch && action != Action::Write {
            read.push(read.problem(&WATCH, "cannot be combined with --check or --print"));
        }
        let debounce = read.get(&DEBOUNCE);
        let secret_vars = read.get(&SECRET_VARS);
        read.finish(Config {
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

    fn config(args: &[&str], vars: &[(String, String)]) -> Result<Config, Vec<Problem>> {
        let (cli, read) = Reader::from_args::<Cli>(&SETTINGS, args, vars).expect("flags parse");
        Config::from_parts(cli, read)
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
        let c = config(&[], &v).expect("valid");
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
        assert_eq!((c.action, c.watch, c.debounce), (Action::Write, false, Duration::from_millis(500)));
        assert_eq!(c.secret_vars, SecretVars::default(), "the documented default is the built-in list");
    }

    #[test]
    fn secret_vars_replace_the_defaults() {
        let base = [("AGENT_INIT_TEMPLATES", "/t"), ("AGENT_INIT_ENV", "X"), ("AGENT_INIT_OUTPUT", "/o")];
        let v = vars(&[&base[..], &[("AGENT_INIT_SECRET_VARS", "*_PIN, otp")]].concat());
        let c = config(&[], &v).expect("valid");
        assert!(c.secret_vars.matches("CARD_PIN") && c.secret_vars.matches("OTP"));
        assert!(!c.secret_vars.matches("DB_PASSWORD"), "replaced, not extended");
        let v = vars(&[&base[..], &[("AGENT_INIT_SECRET_VARS", "DB-PASS,*KEY")]].concat());
        let problems = config(&[], &v).expect_err("invalid");
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
        let problems = config(&[], &v).expect_err("invalid");
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
        let problems =
            config(&["--env", "", "--templates", "a:", "--output", "/o"], &[]).expect_err("invalid");
        let names: Vec<&str> = problems.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["--templates", "--env"]);
        assert!(problems[0].reason.contains("empty directory"));
    }

    #[test]
    fn check_needs_no_output() {
        let c = config(&["--check", "--templates", "/t", "--env", "X"], &[]).expect("valid");
        assert_eq!((c.action, c.output), (Action::Check, None));
        assert!(Reader::from_args::<Cli>(&SETTINGS, &["--check", "--watch"], &[]).is_err());
    }
}
