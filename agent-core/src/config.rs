//! Configuration plumbing: every agent reads env variables with its own prefix (through `envy`),
//! overlays flags of the same meaning (flags win), then validates the lot in one pure step that
//! reports every bad setting at once, each naming the variable or flag, its value and why.

use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;

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

/// A setting's value with the name it came from, so errors name what the user wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub name: String,
    pub value: String,
}

impl Setting {
    /// The flag's value when given, else the env variable's; an empty env value counts as unset
    /// (Kubernetes manifests often template optional variables to "").
    pub fn pick(
        flag: Option<String>,
        flag_name: &str,
        env: Option<String>,
        env_name: &str,
    ) -> Option<Setting> {
        match (flag, env) {
            (Some(v), _) => Some(Setting { name: flag_name.to_string(), value: v }),
            (None, Some(v)) if !v.is_empty() => Some(Setting { name: env_name.to_string(), value: v }),
            _ => None,
        }
    }

    pub fn problem(&self, reason: impl Into<String>) -> Problem {
        Problem::new(&self.name, &self.value, reason)
    }

    /// A humantime duration (`90s`, `2m`, `500ms`), strictly positive.
    pub fn duration(&self) -> Result<Duration, Problem> {
        match humantime::parse_duration(self.value.trim()) {
            Ok(d) if d.is_zero() => Err(self.problem("must be more than zero")),
            Ok(d) => Ok(d),
            Err(e) => Err(self.problem(format!("not a duration like 90s, 2m or 500ms: {e}"))),
        }
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, any case).
    pub fn boolean(&self) -> Result<bool, Problem> {
        match self.value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" | "" => Ok(false),
            _ => Err(self.problem("must be true or false")),
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

/// Deserialises the variables that start with `prefix` into `T` (field `timeout` is
/// `<PREFIX>TIMEOUT`) and reports each prefixed variable that is not one of `known` as a likely
/// typo, so `AGENT_WAIT_TIMOUT=5m` is an error rather than silently ignored. Problems are
/// appended to `problems` and the known variables still read, so every problem shows at once.
pub fn from_env<T: DeserializeOwned + Default>(
    prefix: &str,
    known: &[&str],
    vars: &[(String, String)],
    problems: &mut Vec<Problem>,
) -> T {
    for (k, _) in vars {
        if k.strip_prefix(prefix).is_some_and(|rest| !known.contains(&rest)) {
            let names: Vec<String> = known.iter().map(|n| format!("{prefix}{n}")).collect();
            problems
                .push(Problem::without_value(k, format!("unknown variable; known: {}", names.join(", "))));
        }
    }
    let ours = vars.iter().filter(|(k, _)| k.strip_prefix(prefix).is_some_and(|rest| known.contains(&rest)));
    envy::prefixed(prefix).from_iter::<_, T>(ours.cloned()).unwrap_or_else(|e| {
        problems.push(Problem::without_value(format!("{prefix}*"), e.to_string()));
        T::default()
    })
}

/// Splits a list given as one string on commas and white space, dropping empty items.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(|c: char| c == ',' || c.is_whitespace()).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, Default)]
    struct Raw {
        timeout: Option<String>,
    }

    use super::vars_from as vars;

    #[test]
    fn flag_wins_and_empty_env_is_unset() {
        let s = Setting::pick(Some("5s".into()), "--timeout", Some("9s".into()), "X_TIMEOUT");
        assert_eq!(s.map(|s| s.name), Some("--timeout".into()));
        assert_eq!(Setting::pick(None, "--timeout", Some(String::new()), "X_TIMEOUT"), None);
    }

    #[test]
    fn durations() {
        let s = |v: &str| Setting { name: "X".into(), value: v.into() };
        assert_eq!(s("90s").duration(), Ok(Duration::from_secs(90)));
        assert_eq!(s("2m").duration(), Ok(Duration::from_secs(120)));
        assert!(s("0s").duration().unwrap_err().reason.contains("more than zero"));
        let e = s("soon").duration().unwrap_err();
        assert_eq!(e.name, "X");
        assert_eq!(e.value.as_deref(), Some("soon"));
    }

    #[test]
    fn unknown_prefixed_variables_are_typos() {
        let v = vars(&[("X_TIMOUT", "5m"), ("X_TIMEOUT", "1s"), ("OTHER", "y")]);
        let mut problems = Vec::new();
        let raw: Raw = from_env("X_", &["TIMEOUT"], &v, &mut problems);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].name, "X_TIMOUT");
        assert_eq!(raw.timeout.as_deref(), Some("1s"), "known variables still read");
    }

    #[test]
    fn problems_display_lists_all() {
        let p = Problems(vec![Problem::new("A", "1", "bad"), Problem::without_value("B", "missing")]);
        assert_eq!(p.to_string(), "2 configuration problems; A=\"1\": bad; B: missing");
    }

    #[test]
    fn lists() {
        assert_eq!(split_list(" a, b  c,,").collect::<Vec<_>>(), ["a", "b", "c"]);
    }
}
