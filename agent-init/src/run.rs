//! One rendering pass from the configured directories, and why it can fail.

use agent_core::Exit;

use crate::config::Config;
use crate::problem::InputProblem;
use crate::render::{Rendered, Values, render_all};
use crate::sources::read_templates;
use crate::template::merge;

/// Why a pass produced nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A template directory cannot be read: the configuration points at nothing usable.
    Directories(Vec<String>),
    /// Bad templates, missing values or secrets: every one of them.
    Input(Vec<InputProblem>),
    /// The output could not be written.
    Write(String),
}

impl Failure {
    pub fn exit(&self) -> Exit {
        match self {
            Failure::Directories(_) => Exit::Usage,
            Failure::Input(_) => Exit::DataErr,
            Failure::Write(_) => Exit::Software,
        }
    }

    /// Every problem, one per item, for the log.
    pub fn items(&self) -> Vec<String> {
        match self {
            Failure::Directories(d) => d.clone(),
            Failure::Input(p) => p.iter().map(ToString::to_string).collect(),
            Failure::Write(w) => vec![w.clone()],
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
            (Failure::Write(_), _) => return "writing failed; files written before the failure stay".into(),
        };
        format!("{n} {what}; nothing written")
    }

    /// One line for the termination message: the headline and every problem.
    pub fn summary(&self) -> String {
        format!("{}: {}", self.headline(), self.items().join("; "))
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
    match render_all(&planned, values, &config.require) {
        Ok(files) if problems.is_empty() => Ok(files),
        Ok(_) => Err(Failure::Input(problems)),
        Err(mut render_problems) => {
            problems.append(&mut render_problems);
            Err(Failure::Input(problems))
        }
    }
}
