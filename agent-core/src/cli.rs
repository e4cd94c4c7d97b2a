//! Flag parsing with the project's exit codes: clap exits 2 on a usage error, we exit 64.

use std::ffi::OsString;

use crate::Exit;

/// Why parsing stopped: `--help`/`--version` (printed to stdout, `Exit::Ok`), or a usage error
/// (clap's message, naming the bad flag, printed to stderr; `Exit::Usage`).
#[derive(Debug)]
pub struct Stop {
    pub exit: Exit,
    /// The first line of clap's message, for the termination message.
    pub message: String,
}

pub fn parse<C: clap::Parser>(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> Result<C, Stop> {
    C::try_parse_from(args).map_err(|e| {
        let _ = e.print();
        let message = e.render().to_string().lines().next().unwrap_or_default().to_string();
        Stop { exit: if e.use_stderr() { Exit::Usage } else { Exit::Ok }, message }
    })
}
