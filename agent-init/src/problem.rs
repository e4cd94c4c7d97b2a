//! A problem with the input (templates, values, secrets), located in a file when it can be.
//! Never carries a value: values may be secret.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputProblem {
    /// `path`, `path:line:column`, or nothing for problems of no one file.
    pub at: Option<(PathBuf, Option<(usize, usize)>)>,
    pub reason: String,
}

impl InputProblem {
    pub fn at(path: &Path, line: usize, column: usize, reason: impl Into<String>) -> Self {
        InputProblem { at: Some((path.to_path_buf(), Some((line, column)))), reason: reason.into() }
    }

    pub fn in_file(path: &Path, reason: impl Into<String>) -> Self {
        InputProblem { at: Some((path.to_path_buf(), None)), reason: reason.into() }
    }

    pub fn general(reason: impl Into<String>) -> Self {
        InputProblem { at: None, reason: reason.into() }
    }
}

impl fmt::Display for InputProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some((path, Some((line, column)))) => {
                write!(f, "{}:{line}:{column}: {}", path.display(), self.reason)
            }
            Some((path, None)) => write!(f, "{}: {}", path.display(), self.reason),
            None => f.write_str(&self.reason),
        }
    }
}
