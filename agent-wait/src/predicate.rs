//! When an HTTP answer counts as ready: its status in the accepted ranges (`--status`), and
//! optionally a JSON value at a path (`--json-path`, `--json-value`). Pure.

use std::fmt;

use serde_json::Value;

/// Accepted status codes, e.g. `200-299,304`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRanges(Vec<(u16, u16)>);

impl Default for StatusRanges {
    fn default() -> Self {
        StatusRanges(vec![(200, 299)])
    }
}

impl StatusRanges {
    pub fn parse(text: &str) -> Result<Self, String> {
        let code = |s: &str| match s.trim().parse::<u16>() {
            Ok(c) if (100..=599).contains(&c) => Ok(c),
            _ => Err(format!("{s:?} is not an HTTP status code (100-599)")),
        };
        let ranges = agent_core::config::split_list(text)
            .map(|item| match item.split_once('-') {
                Some((lo, hi)) => {
                    let (lo, hi) = (code(lo)?, code(hi)?);
                    if lo > hi { Err(format!("range {item:?} is backwards")) } else { Ok((lo, hi)) }
                }
                None => code(item).map(|c| (c, c)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        if ranges.is_empty() {
            return Err("no status codes given".into());
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
    pub fn parse(path: &str, expected: Option<String>) -> Result<Self, String> {
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
                return Err(format!("empty step in JSON path {path:?}"));
            }
            if !key.is_empty() {
                steps.push(Step::Key(key.to_string()));
            }
            while !indexes.is_empty() {
                let close = indexes.find(']').ok_or_else(|| format!("unclosed [ in JSON path {path:?}"))?;
                let n = indexes[1..close].parse::<usize>().map_err(|_| {
                    format!("{:?} is not an array index in JSON path {path:?}", &indexes[1..close])
                })?;
                steps.push(Step::Index(n));
                indexes = &indexes[close + 1..];
                if !indexes.is_empty() && !indexes.starts_with('[') {
                    return Err(format!("unexpected {indexes:?} in JSON path {path:?}"));
                }
            }
        }
        Ok(JsonPredicate { path_text: path.trim().to_string(), path: steps, expected })
    }

    /// `Ok` when the body satisfies the predicate, else the reason it does not.
    pub fn check(&self, body: &[u8]) -> Result<(), String> {
        let doc: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
        let mut cur = &doc;
        for step in &self.path {
            let next = match step {
                Step::Key(k) => cur.get(k),
                Step::Index(i) => cur.get(*i),
            };
            cur = next.ok_or_else(|| format!("{} not found", self.path_text))?;
        }
        let actual = match cur {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match &self.expected {
            Some(want) if *want == actual => Ok(()),
            Some(want) => Err(format!("{} is {actual:?}, want {want:?}", self.path_text)),
            None if matches!(cur, Value::Null | Value::Bool(false)) => {
                Err(format!("{} is {actual}", self.path_text))
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
        assert!(StatusRanges::parse("299-200").unwrap_err().contains("backwards"));
        assert!(StatusRanges::parse("2xx").unwrap_err().contains("\"2xx\""));
        assert!(StatusRanges::parse("").is_err());
        assert!(StatusRanges::parse("99").is_err());
    }

    #[test]
    fn json_values() {
        let body = br#"{"status":"UP","components":{"db":{"ok":true,"n":3}},"items":[{"x":null}]}"#;
        let p = |path: &str, want: Option<&str>| {
            JsonPredicate::parse(path, want.map(String::from)).expect("valid")
        };
        assert_eq!(p("$.status", Some("UP")).check(body), Ok(()));
        assert_eq!(p("status", Some("DOWN")).check(body), Err("status is \"UP\", want \"DOWN\"".into()));
        assert_eq!(p("components.db.ok", Some("true")).check(body), Ok(()));
        assert_eq!(p("components.db.n", Some("3")).check(body), Ok(()));
        assert_eq!(p("components.db", None).check(body), Ok(()));
        assert_eq!(p("items[0].x", None).check(body), Err("items[0].x is null".into()));
        assert_eq!(p("items[1]", None).check(body), Err("items[1] not found".into()));
        assert!(p("status", None).check(b"<html>").unwrap_err().starts_with("body is not JSON"));
    }

    #[test]
    fn bad_paths() {
        assert!(JsonPredicate::parse("a..b", None).is_err());
        assert!(JsonPredicate::parse("a[x]", None).is_err());
        assert!(JsonPredicate::parse("a[0", None).is_err());
        assert!(JsonPredicate::parse("a[0]b", None).is_err());
    }
}
