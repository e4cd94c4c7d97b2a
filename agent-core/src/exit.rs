//! The exit codes every agent uses (DESIGN.md). Documented in docs/exit-codes.md; keep in sync.

/// Why an agent stopped, as its process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done, everything as asked.
    Ok,
    /// 64 (EX_USAGE): bad configuration or usage: unknown flag, bad env value, missing setting.
    Usage,
    /// 65 (EX_DATAERR): bad input data: a template, a health payload.
    DataErr,
    /// 69 (EX_UNAVAILABLE): a dependency was unavailable.
    Unavailable,
    /// 70 (EX_SOFTWARE): an internal error (a bug, or the OS refusing something basic).
    Software,
    /// 124: the deadline passed, as `timeout(1)`, wait4x and wait-for-it report it.
    Timeout,
    /// 126: the command to run after waiting exists but could not be executed (as a shell).
    CannotExecute,
    /// 127: the command to run after waiting was not found (as a shell).
    CommandNotFound,
    /// 143 (128 + SIGTERM): terminated by a signal before finishing.
    Terminated,
}

impl Exit {
    /// Every exit code, for the check that docs/exit-codes.md lists them all.
    pub const ALL: [Exit; 9] = [
        Exit::Ok,
        Exit::Usage,
        Exit::DataErr,
        Exit::Unavailable,
        Exit::Software,
        Exit::Timeout,
        Exit::CannotExecute,
        Exit::CommandNotFound,
        Exit::Terminated,
    ];

    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Usage => 64,
            Exit::DataErr => 65,
            Exit::Unavailable => 69,
            Exit::Software => 70,
            Exit::Timeout => 124,
            Exit::CannotExecute => 126,
            Exit::CommandNotFound => 127,
            Exit::Terminated => 143,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

#[cfg(test)]
mod tests {
    use super::Exit;

    #[test]
    fn docs_list_every_code() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/exit-codes.md");
        let doc = std::fs::read_to_string(path).expect("docs/exit-codes.md");
        for e in Exit::ALL {
            assert!(
                doc.contains(&format!("\n| {} | ", e.code())),
                "{e:?} ({}) missing from {path}",
                e.code()
            );
        }
    }
}
