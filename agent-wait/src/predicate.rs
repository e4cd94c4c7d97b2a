//! When an HTTP answer counts as ready: its status in the accepted ranges (`--status`), and
//! optionally a JSON value at a path (`--json-path`, `--json-value`). Pure.

use std::fmt;

use serde_json::Value;

/// Why a `--status` or `--json-path` setting is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadPredicate {
    #[error("{0:?} is not an HTTP status code (100-599)")]
    StatusCode(String),
    #[error("range {0:?} is backwards")]
    Backwards(String),
    #[error("no status codes given")]
    NoStatus,
    #[error("{what} in JSON path {path:?}")]
    Path { path: String, what: String },
}

/// Why an answer's JSON body does not satisfy the predicate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsatisfied {
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{path} is {actual:?}, want {want:?}")]
    Differs { path: String, actual: String, want: String },
    #[error("{path} is {actual}")]
    Falsy { path: String, actual: String },
}

/// Accepted status codes, e.g. `200-299,304`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRanges(Vec<(u16, u16)>);

impl Default for StatusRanges {
    fn default() -> Self {
        StatusRanges(vec![(200, 299)])
    }
}

impl StatusRanges {
    pub fn parse(text: &str) -> Result<Self, BadPredicate> {
        let code = |s: &str| match s.trim().parse::<u16>() {
            Ok(c) if (100..=599).contains(&c) => Ok(c),
            _ => Err(BadPredicate::StatusCode(s.to_string())),
        };
        let ranges = agent_core::config::split_list(text)
            .map(|item| match item.split_once('-') {
                Some((lo, hi)) => {
                    let (lo, hi) = (code(lo)?, code(hi)?);
                    if lo > hi { Err(BadPredicate::Backwards(item.to_string())) } else { Ok((lo, hi)) }
                }
                None => code(item).map(|c| (c, c)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if ranges.is_empty() {
            return Err(BadPredicate::NoStatus);
        }
        Ok(StatusRanges(ranges))
    }

    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
    }
}

impl fmt::Display for StatusRanges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(lo, hi)| if lo == hi { lo.to_string() } else { format!("{lo}-{hi}") })
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// A value that must be found in a JSON body: `$.status`, `components.db.status`, `items[0].ok`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPredicate {
    path_text: String,
    path: Vec<Step>,
    /// The wanted value; strings compare as text, anything else as its JSON text (`true`, `3`).
    /// Without it the value must exist and be neither `null` nor `false`.
    expected: Option<String>,
}

impl JsonPredicate {
    pub fn parse(path: &str, expected: Option<String>) -> Result<Self, BadPredicate> {
        let bad = |what: String| BadPredicate::Path { path: path.to_string(), what };
        let body = path.trim();
        let body = body.strip_prefix('$').unwrap_or(body);
        let body = body.strip_prefix('.').unwrap_or(body);
        let mut steps = Vec::new();
        for part in body.split('.') {
            let (key, mut indexes) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if key.is_empty() && indexes.is_empty() {
                return Err(bad("empty step".into()));
            }
            if !key.is_empty() {
                steps.push(Step::Key(key.to_string()));
            }
            while !indexes.is_empty() {
                let close = indexes.find(']').ok_or_else(|| bad("unclosed [".into()))?;
                let n = indexes[1..close]
                    .parse::<usize>()
                    .map_err(|_| bad(format!("{:?} is not an array index", &indexes[1..close])))?;
                steps.push(Step::Index(n));
                indexes = &indexes[close + 1..];
                if !indexes.is_empty() && !indexes.starts_with('[') {
                    return Err(bad(format!("unexpected {indexes:?}")));
                }
            }
        }
        Ok(JsonPredicate { path_text: path.trim().to_string(), path: steps, expected })
    }

    /// `Ok` when the body satisfies the predicate, else the reason it does not.
    pub fn check(&self, body: &[u8]) -> Result<(), Unsatisfied> {
        let doc: Value = serde_json::from_slice(body).map_err(|e| Unsatisfied::NotJson(e.to_string()))?;
        let mut cur = &doc;
        for step in &self.path {
            let next = match step {
                Step::Key(k) => cur.get(k),
                Step::Index(i) => cur.get(*i),
            };
            cur = next.ok_or_else(|| Unsatisfied::NotFound(self.path_text.clone()))?;
        }
        let actual = match cur {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match &self.expected {
            Some(want) if *want == actual => Ok(()),
            Some(want) => {
                Err(Unsatisfied::Differs { path: self.path_text.clone(), actual, want: want.clone() })
            }
            None if matches!(cur, Value::Null | Value::Bool(false)) => {
                Err(Unsatisfied::Falsy { path: self.path_text.clone(), actual })
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_ranges() {
        let r = StatusRanges::parse("200-299, 304").expect("valid");
        assert!(r.contains(200) && r.contains(299) && r.contains(304));
        assert!(!r.contains(300) && !r.contains(503));
        assert_eq!(r.to_string(), "200-299,304");
        assert!(StatusRanges::parse("299-200").unwrap_err().to_string().contains("backwards"));
        assert!(StatusRanges::parse("2xx").unwrap_err().to_string().contains("\"2xx\""));
        assert!(StatusRanges::parse("").is_err());
        assert!(StatusRanges::parse("99").is_err());
    }

    #[test]
    fn json_values() {
        let body = br#"{"status":"UP","components":{"db":{"ok":true,"n":3}},"items":[{"x":null}]}"#;
        let p = |path: &str, want: Option<&str>| {
            let p = JsonPredicate::parse(path, want.map(String::from)).expect("valid");
            move |body: &[u8]| p.check(body).map_err(|e| e.to_string())
        };
        assert_eq!(p("$.status", Some("UP"))(body), Ok(()));
        assert_eq!(p("status", Some("DOWN"))(body), Err("status is \"UP\", want \"DOWN\"".into()));
        assert_eq!(p("components.db.ok", Some("true"))(body), Ok(()));
        assert_eq!(p("components.db.n", Some("3"))(body), Ok(()));
        assert_eq!(p("components.db", None)(body), Ok(()));
        assert_eq!(p("items[0].x", None)(body), Err("items[0].x is null".into()));
        assert_eq!(p("items[1]", None)(body), Err("items[1] not found".into()));
        assert!(p("status", None)(b"<html>").unwrap_err().starts_with("body is not JSON"));
    }

    #[test]
    fn bad_paths() {
        assert!(JsonPredicate::parse("a..b", None).is_err());
        assert!(JsonPredicate::parse("a[x]", None).is_err());
        assert!(JsonPredicate::parse("a[0", None).is_err());
        assert!(JsonPredicate::parse("a[0]b", None).is_err());
    }
}
