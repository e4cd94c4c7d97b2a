//! The control API under `/_sim/` (for process tests and the demo): what a request asks for.
//! Pure parsing; `http` carries it out. Documented in `control-api.md`.

use super::faults::Faults;
use std::time::Duration;

/// The prefix of the control API.
pub const PREFIX: &str = "/_sim/";

/// A control request.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Stats,
    ResetStats,
    Docs {
        index: String,
    },
    Count {
        index: String,
    },
    Ids,
    ClearDocs,
    GetFaults,
    /// Changes the faults named in the query, keeps the others; `max_content_length` too.
    SetFaults {
        faults: Faults,
        max_content_length: Option<u64>,
    },
    ClearFaults,
    DownFor(Duration),
    Exit,
}

/// Why a control request is refused: status and a one-line reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason}")]
pub struct BadRequest {
    pub status: u16,
    pub reason: String,
}

fn bad(reason: impl Into<String>) -> BadRequest {
    BadRequest { status: 400, reason: reason.into() }
}

/// Parses `method path?query`; `current` are the faults now set (`SetFaults` changes only the
/// named ones).
pub fn parse(method: &str, path: &str, query: Option<&str>, current: &Faults) -> Result<Command, BadRequest> {
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned().collect();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let index = || param("index").unwrap_or("*").to_owned();
    let name = path.strip_prefix(PREFIX).unwrap_or("").trim_end_matches('/');
    let read = method == "GET" || method == "HEAD";
    let write = method == "POST" || method == "PUT";
    let command = match (name, read, write, method) {
        ("stats", true, _, _) => Command::Stats,
        ("stats/reset", _, true, _) => Command::ResetStats,
        ("docs", true, _, _) => Command::Docs { index: index() },
        ("docs", _, _, "DELETE") => Command::ClearDocs,
        ("count", true, _, _) => Command::Count { index: index() },
        ("ids", true, _, _) => Command::Ids,
        ("faults", true, _, _) => Command::GetFaults,
        ("faults", _, true, _) => return set_faults(&params, current),
        ("faults", _, _, "DELETE") => Command::ClearFaults,
        ("down", _, true, _) => {
            let spec = param("for").ok_or_else(|| {
                bad("down needs for=DURATION (e.g. for=10s): while down, this API is unreachable too")
            })?;
            Command::DownFor(humantime::parse_duration(spec).map_err(|e| bad(format!("for={spec}: {e}")))?)
        }
        ("exit", _, true, _) => Command::Exit,
        ("stats" | "stats/reset" | "docs" | "count" | "ids" | "faults" | "down" | "exit", _, _, _) => {
            return Err(BadRequest { status: 405, reason: format!("method {method} not allowed on {path}") });
        }
        _ => {
            return Err(BadRequest {
                status: 404,
                reason: format!("no control endpoint {path} (see docs/es-sim.md)"),
            });
        }
    };
    Ok(command)
}

fn set_faults(params: &[(String, String)], current: &Faults) -> Result<Command, BadRequest> {
    let mut faults = current.clone();
    let mut max_content_length = None;
    for (key, value) in params {
        let count =
            || value.parse::<u64>().map_err(|_| bad(format!("{key}={value}: expected a whole number")));
        let share = || match value.parse::<f64>() {
            Ok(s) if (0.0..=1.0).contains(&s) => Ok(s),
            _ => Err(bad(format!("{key}={value}: expected a share between 0 and 1"))),
        };
        match key.as_str() {
            "item_429_every" => faults.item_429_every = count()?,
            "item_429_share" => faults.item_429_share = share()?,
            "fail_next" => faults.fail_next = count()?,
            "fail_share" => faults.fail_share = share()?,
            "seed" => faults.seed = count()?,
            "latency" | "answer_delay" => {
                let d = humantime::parse_duration(value).map_err(|e| bad(format!("{key}={value}: {e}")))?;
                if key == "latency" {
                    faults.latency = d;
                } else {
                    faults.answer_delay = d;
                }
            }
            "max_content_length" => max_content_length = Some(count()?),
            _ => return Err(bad(format!("unknown fault {key:?}"))),
        }
    }
    Ok(Command::SetFaults { faults, max_content_length })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        let none = Faults::default();
        assert_eq!(parse("GET", "/_sim/stats", None, &none), Ok(Command::Stats));
        assert_eq!(
            parse("GET", "/_sim/docs", Some("index=logs-%2A"), &none),
            Ok(Command::Docs { index: "logs-*".into() })
        );
        assert_eq!(parse("GET", "/_sim/count", None, &none), Ok(Command::Count { index: "*".into() }));
        assert_eq!(parse("DELETE", "/_sim/docs", None, &none), Ok(Command::ClearDocs));
        assert_eq!(
            parse("POST", "/_sim/down", Some("for=1500ms"), &none),
            Ok(Command::DownFor(Duration::from_millis(1500)))
        );
        assert!(parse("POST", "/_sim/down", None, &none).is_err_and(|e| e.status == 400));
        assert_eq!(parse("DELETE", "/_sim/stats", None, &none).map_err(|e| e.status), Err(405));
        assert_eq!(parse("GET", "/_sim/nope", None, &none).map_err(|e| e.status), Err(404));
    }

    #[test]
    fn faults_change_only_what_is_named() {
        let current = Faults { fail_next: 3, ..Faults::default() };
        let c = parse(
            "POST",
            "/_sim/faults",
            Some("item_429_every=10&latency=50ms&answer_delay=2s&max_content_length=1000"),
            &current,
        );
        let want = Faults {
            fail_next: 3,
            item_429_every: 10,
            latency: Duration::from_millis(50),
            answer_delay: Duration::from_secs(2),
            ..Faults::default()
        };
        assert_eq!(c, Ok(Command::SetFaults { faults: want, max_content_length: Some(1000) }));
        assert!(parse("POST", "/_sim/faults", Some("item_429_share=2"), &current).is_err());
        assert!(
            parse("POST", "/_sim/faults", Some("bogus=1"), &current)
                .is_err_and(|e| e.reason.contains("bogus"))
        );
    }
}
