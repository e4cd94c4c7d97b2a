//! The first steps of every agent's `main`, in the same order: read the environment, find the
//! termination-message path, parse the flags (a usage error is reported there too), start
//! logging. Bad logging settings do not stop the start: they are handed over to be reported
//! with the agent's own configuration problems, all at once.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::config::{Problem, Problems, process_vars};
use crate::logging::Logging;
use crate::settings::{Reader, Settings};
use crate::{Exit, termination};

pub struct Startup<C> {
    pub cli: C,
    /// The environment, UTF-8 variables only.
    pub vars: Vec<(String, String)>,
    /// Problems with the common settings, to report with the agent's own.
    pub problems: Vec<Problem>,
    settings: &'static Settings,
    matches: ArgMatches,
    termination: Option<PathBuf>,
}

impl<C: CommandFactory + FromArgMatches> Startup<C> {
    /// From the process's arguments and environment. `Err` is the exit code for `--help`,
    /// `--version` or a usage error (already printed and written as the termination message).
    pub fn begin(settings: &'static Settings) -> Result<Self, ExitCode> {
        Self::from(settings, std::env::args_os(), process_vars())
    }

    fn from(
        settings: &'static Settings,
        args: impl IntoIterator<Item = OsString>,
        vars: Vec<(String, String)>,
    ) -> Result<Self, ExitCode> {
        let pairs = || vars.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let termination = termination::path_from_env(pairs());
        let (cli, matches) = match crate::cli::parse_with(settings, args) {
            Ok(parsed) => parsed,
            Err(stop) => {
                if stop.exit != Exit::Ok {
                    termination::write(termination.as_deref(), &stop.message);
                }
                return Err(stop.exit.into());
            }
        };
        let mut problems = Vec::new();
        let logging = Logging::from_vars(pairs()).unwrap_or_else(|mut p| {
            problems.append(&mut p);
            Logging::default()
        });
        logging.init();
        Ok(Startup { cli, vars, problems, settings, matches, termination })
    }
}

impl<C: Default> Startup<C> {
    /// Builds the agent's configuration from the flags and the environment; `Err` is exit 64
    /// after every problem — the common settings' and the agent's own — was reported.
    pub fn config<T>(
        &mut self,
        build: impl FnOnce(C, Reader) -> Result<T, Vec<Problem>>,
    ) -> Result<T, ExitCode> {
        self.try_config(build).map_err(|problems| self.bad_config(problems))
    }

    /// [`Startup::config`] that hands every problem back instead of exiting: for an agent that
    /// must stay up on bad settings (a sidecar that exited would take its pod out of service).
    pub fn try_config<T>(
        &mut self,
        build: impl FnOnce(C, Reader) -> Result<T, Vec<Problem>>,
    ) -> Result<T, Vec<Problem>> {
        let mut problems = std::mem::take(&mut self.problems);
        let reader = Reader::new(self.settings, std::mem::take(&mut self.matches), &self.vars);
        match build(std::mem::take(&mut self.cli), reader) {
            Ok(config) if problems.is_empty() => Ok(config),
            Ok(_) => Err(problems),
            Err(mut own) => {
                problems.append(&mut own);
                Err(problems)
            }
        }
    }
}

impl<C: Default> Startup<C> {
    /// [`Startup::config`] for the agents that resolve names: the resolver is built from the
    /// `AGENT_DNS_*` settings too, its problems reported with all the others.
    pub fn config_with_dns<T>(
        &mut self,
        build: impl FnOnce(C, Reader) -> Result<T, Vec<Problem>>,
    ) -> Result<(T, crate::dns::Dns), ExitCode> {
        self.try_config_with_dns(build).map_err(|problems| self.bad_config(problems))
    }

    /// [`Startup::config_with_dns`] that hands every problem back (see [`Startup::try_config`]).
    pub fn try_config_with_dns<T>(
        &mut self,
        build: impl FnOnce(C, Reader) -> Result<T, Vec<Problem>>,
    ) -> Result<(T, crate::dns::Dns), Vec<Problem>> {
        self.try_config(|cli, read| {
            let dns = crate::dns::Dns::from_vars(read.vars().iter().map(|(k, v)| (k.as_str(), v.as_str())));
            match (dns, build(cli, read)) {
                (Ok(dns), Ok(config)) => Ok((config, dns)),
                (dns, config) => {
                    Err(dns.err().into_iter().chain(config.err().into_iter().flatten()).collect())
                }
            }
        })
    }
}

impl<C> Startup<C> {
    /// Where the termination message goes (for [`crate::shutdown::Signals::install`]).
    pub fn termination_path(&self) -> Option<&Path> {
        self.termination.as_deref()
    }

    /// Writes `message` as the termination message and gives `exit` as the exit code.
    pub fn terminate(&self, exit: Exit, message: &str) -> ExitCode {
        termination::write(self.termination.as_deref(), message);
        exit.into()
    }

    /// Logs `message` as an error, then [`Startup::terminate`]s.
    pub fn fail(&self, exit: Exit, message: &str) -> ExitCode {
        tracing::error!("{message}");
        self.terminate(exit, message)
    }

    /// Every configuration problem, as one message, exit 64.
    pub fn bad_config(&self, problems: Vec<Problem>) -> ExitCode {
        self.fail(Exit::Usage, &Problems(problems).to_string())
    }
}
