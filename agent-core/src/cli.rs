//! Flag parsing with the project's exit codes: clap exits 2 on a usage error, we exit 64.

use std::ffi::OsString;

use crate::Exit;

/// Parses the flags. `--help`/`--version` print to stdout and give `Err(Exit::Ok)`; a usage
/// error prints clap's message (naming the bad flag) to stderr and gives `Err(Exit::Usage)`.
pub fn parse<C: clap::Parser>(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> Result<C, Exit> {
    C::try_parse_from(args).map_err(|e| {
        let _ = e.print();
        if e.use_stderr() { Exit::Usage } else { Exit::Ok }
    })
}
