//! Flag parsing with the project's exit codes: clap exits 2 on a usage error, we exit 64.

use std::ffi::OsString;

use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::Exit;
use crate::settings::{Settings, parse_args};

/// Why parsing stopped: `--help`/`--version` (printed to stdout, `Exit::Ok`), or a usage error
/// (clap's message, naming the bad flag, printed to stderr; `Exit::Usage`).
#[derive(Debug)]
pub struct Stop {
    pub exit: Exit,
    /// The first line of clap's message, for the termination message.
    pub message: String,
}

/// Parses a command line that has no declared settings (the simulator's).
pub fn parse<C: clap::Parser>(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> Result<C, Stop> {
    C::try_parse_from(args).map_err(stop)
}

/// Parses an agent's command line: its own arguments and the flags of its settings.
pub fn parse_with<C: CommandFactory + FromArgMatches>(
    settings: &'static Settings,
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> Result<(C, ArgMatches), Stop> {
    parse_args(settings, args).map_err(stop)
}

fn stop(e: clap::Error) -> Stop {
    let _ = e.print();
    let message = e.render().to_string().lines().next().unwrap_or_default().to_string();
    Stop { exit: if e.use_stderr() { Exit::Usage } else { Exit::Ok }, message }
}
