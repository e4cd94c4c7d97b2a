//! One pass — render from the configured directories, then write — and why it can fail.

use agent_core::Exit;

use crate::config::{Action, Config};
use crate::output::{Checkpoint, WriteError, write_all};
use crate::problem::InputProblem;
use crate::render::{Rendered, Values, built_in_requirements, render_all};
use crate::sources::read_templates;
use crate::stop::Signal;
use crate::template::merge;

/// Why a pass produced nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A template directory cannot be read: the configuration points at nothing usable.
    Directories(Vec<String>),
    /// Bad templates, missing values or secrets: every one of them.
    Input(Vec<InputProblem>),
    /// The output could not be written.
    Write(WriteError),
    /// A stop signal came before any file was changed.
    Stopped(Signal),
    /// Something that is no one's input: the file watcher, a task that died.
    Internal(String),
}

impl Failure {
    pub fn exit(&self) -> Exit {
        match self {
            Failure::Directories(_) => Exit::Usage,
            Failure::Input(_) => Exit::DataErr,
            Failure::Write(_) | Failure::Internal(_) => Exit::Software,
            Failure::Stopped(_) => Exit::Terminated,
        }
    }

    /// Every problem, one per item, for the log.
    pub fn items(&self) -> Vec<String> {
        match self {
            Failure::Directories(d) => d.clone(),
            Failure::Input(p) => p.iter().map(ToString::to_string).collect(),
            Failure::Write(w) => vec![w.to_string()],
            Failure::Stopped(_) | Failure::Internal(_) => Vec::new(),
        }
    }

    /// How many problems of what kind: `3 template problems; nothing written`.
    pub fn headline(&self) -> String {
        let n = self.items().len();
        let what = match (self, n) {
            (Failure::Directories(_), 1) => "unreadable template directory",
            (Failure::Directories(_), _) => "unreadable template directories",
            (Failure::Input(_), 1) => "template problem",
            (Failure::Input(_), _) => "template problems",
            (Failure::Write(WriteError::Stage { .. }), _) => return "writing failed".into(),
            (Failure::Write(_), _) => return "writing failed; files renamed before the failure stay".into(),
            (Failure::Stopped(signal), _) => return format!("stopped by {signal}; no file was changed"),
            (Failure::Internal(e), _) => return format!("internal error: {e}"),
        };
        format!("{n} {what}; nothing written")
    }

    /// One line for the termination message: the headline and every problem.
    pub fn summary(&self) -> String {
        let items = self.items();
        if items.is_empty() { self.headline() } else { format!("{}: {}", self.headline(), items.join("; ")) }
    }
}

impl From<WriteError> for Failure {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Stopped(signal) => Failure::Stopped(signal),
            other => Failure::Write(other),
        }
    }
}

/// Reads every template directory and renders every file, in memory.
pub fn render_from_dirs(config: &Config, values: &impl Values) -> Result<Vec<Rendered>, Failure> {
    let mut dirs = Vec::new();
    let mut unreadable = Vec::new();
    let mut problems = Vec::new();
    for dir in &config.templates {
        match read_templates(dir) {
            Err(e) => unreadable.push(format!("cannot read template directory {}: {e}", dir.display())),
            Ok(Err(mut p)) => problems.append(&mut p),
            Ok(Ok(sources)) => dirs.push(sources),
        }
    }
    if !unreadable.is_empty() {
        return Err(Failure::Directories(unreadable));
    }
    let (planned, mut merge_problems) = merge(dirs, &config.env);
    problems.append(&mut merge_problems);
    if planned.is_empty() && problems.is_empty() {
        let dirs: Vec<String> = config.templates.iter().map(|d| d.display().to_string()).collect();
        problems.push(InputProblem::general(format!("no *.tmpl templates in {}", dirs.join(", "))));
    }
    match render_all(&planned, values, &config.require, &config.secret_vars) {
        Ok(files) if problems.is_empty() => Ok(files),
        Ok(_) => Err(Failure::Input(problems)),
        Err(mut render_problems) => {
            problems.append(&mut render_problems);
            Err(Failure::Input(problems))
        }
    }
}

/// The first (or only) pass: render, and write unless `--check` or `--print`. Returns the
/// rendered files.
pub fn once(
    config: &Config,
    values: &impl Values,
    checkpoint: &impl Checkpoint,
) -> Result<Vec<Rendered>, Failure> {
    let rendered = render_from_dirs(config, values)?;
    // A user's required key for files that do not exist here is likely a typo in the prefix.
    // (The built-in requirements come first and apply only where their files exist.)
    for req in config.require.iter().skip(built_in_requirements().len()) {
        if let Some(prefix) = &req.file_prefix
            && !rendered.iter().any(|f| f.output.starts_with(prefix.as_str()))
        {
            tracing::warn!(prefix = %prefix, key = %req.key, "no rendered file starts with this required-key prefix");
        }
    }
    let output = match (config.action, &config.output) {
        (Action::Check | Action::Print, _) => return Ok(rendered),
        (Action::Write, Some(output)) => output,
        (Action::Write, None) => return Err(Failure::Internal("no output directory".into())),
    };
    let written = write_all(output, &rendered, config.owner, checkpoint)?;
    let names: Vec<&str> = rendered.iter().map(|f| f.output.as_str()).collect();
    tracing::info!(
        written = written.len(),
        unchanged = rendered.len() - written.len(),
        dir = %output.display(),
        "rendered {}",
        names.join(", ")
    );
    Ok(rendered)
}
