//! Configuration problems and the environment as the agents read it. The settings themselves
//! are declared in [`crate::settings`]; every bad one becomes a [`Problem`], reported together.

use std::fmt;

/// One bad setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The env variable or flag (`AGENT_WAIT_TIMEOUT`, `--timeout`).
    pub name: String,
    /// The value as given, or `None` when missing or secret.
    pub value: Option<String>,
    pub reason: String,
}

impl Problem {
    pub fn new(name: impl Into<String>, value: impl Into<String>, reason: impl Into<String>) -> Self {
        Problem { name: name.into(), value: Some(value.into()), reason: reason.into() }
    }

    /// A problem whose value must not be shown (missing, or a secret).
    pub fn without_value(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Problem { name: name.into(), value: None, reason: reason.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={:?}: {}", self.name, v, self.reason),
            None => write!(f, "{}: {}", self.name, self.reason),
        }
    }
}

/// Every problem found, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "{n} configuration problem{}", if n == 1 { "" } else { "s" })?;
        for p in &self.0 {
            write!(f, "; {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// How a setting's value may be shown in errors and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// As given.
    Plain,
    /// As a URL with its credentials, query values and fragment masked.
    Url,
    /// Never.
    Secret,
}

/// A setting's value with the name it came from, so errors name what the user wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The flag (`--timeout`) or the variable (`AGENT_WAIT_TIMEOUT`).
    pub name: String,
    pub value: String,
    pub show: Show,
}

impl Setting {
    pub fn problem(&self, reason: impl Into<String>) -> Problem {
        match self.show {
            Show::Plain => Problem::new(&self.name, &self.value, reason),
            Show::Url => Problem::new(&self.name, crate::redact::url(&self.value), reason),
            Show::Secret => Problem::without_value(&self.name, reason),
        }
    }
}

/// The process environment as UTF-8 pairs. Variables that are not UTF-8 are skipped: none of
/// ours can be, and the validation of each agent names what it is missing.
pub fn process_vars() -> Vec<(String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect()
}

/// An environment given by hand (tests, embedding), in the form the agents' config takes.
pub fn vars_from(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The names of the process's variables whose values are not UTF-8 (they are missing from
/// [`process_vars`]), so an agent can say so rather than call them unset.
pub fn non_utf8_var_names() -> Vec<String> {
    std::env::vars_os()
        .filter(|(_, v)| v.to_str().is_none())
        .filter_map(|(k, _)| k.into_string().ok())
        .collect()
}

/// Splits a list given as one string on commas and white space, dropping empty items.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(|c: char| c == ',' || c.is_whitespace()).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_display_lists_all() {
        let p = Problems(vec![Problem::new("A", "1", "bad"), Problem::without_value("B", "missing")]);
        assert_eq!(p.to_string(), "2 configuration problems; A=\"1\": bad; B: missing");
    }

    #[test]
    fn secret_settings_hide_their_value() {
        let s = Setting { name: "X_PASSWORD".into(), value: "hunter2".into(), show: Show::Secret };
        assert_eq!(s.problem("too short").to_string(), "X_PASSWORD: too short");
        let s = Setting { name: "X_URL".into(), value: "http://u:hunter2@h/".into(), show: Show::Url };
        assert_eq!(s.problem("bad").to_string(), "X_URL=\"http://u:***@h/\": bad");
    }

    #[test]
    fn lists() {
        assert_eq!(split_list(" a, b  c,,").collect::<Vec<_>>(), ["a", "b", "c"]);
    }
}
