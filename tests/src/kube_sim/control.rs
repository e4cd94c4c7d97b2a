//! The control API under `/_sim/` (for process tests, the demo and the benchmark): what a
//! request asks for. Pure parsing; `http` carries it out. Documented in `control-api.md`.

use super::auth::Grant;
use super::event::{Event, EventUpdate, Key};
use super::faults::{Faults, Timing};
use std::time::Duration;

/// The prefix of the control API.
pub const PREFIX: &str = "/_sim/";

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    ListEvents,
    Create(Box<Event>),
    Update(Key, EventUpdate),
    Delete(Key),
    Compact,
    GetFaults,
    /// The faults and timing with the named parameters changed.
    SetFaults(Faults, Timing),
    ClearFaults,
    /// Replaces the valid tokens; the old ones keep working for `grace`.
    SetTokens {
        grants: Vec<Grant>,
        grace: Duration,
    },
    Stats,
    ResetStats,
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

fn duration(key: &str, value: &str) -> Result<Duration, BadRequest> {
    humantime::parse_duration(value).map_err(|e| bad(format!("{key}={value}: {e}")))
}

/// Parses `method path?query` with its body; `faults` and `timing` are what is now set.
pub fn parse(
    method: &str,
    path: &str,
    query: Option<&str>,
    body: &[u8],
    faults: &Faults,
    timing: &Timing,
) -> Result<Command, BadRequest> {
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned().collect();
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let name = path.strip_prefix(PREFIX).unwrap_or("").trim_end_matches('/');
    let segments: Vec<&str> = name.split('/').collect();
    let read = method == "GET" || method == "HEAD";
    let write = method == "POST" || method == "PUT";
    let command = match (segments.as_slice(), read, write, method) {
        (["events"], true, _, _) => Command::ListEvents,
        (["events"], _, true, _) => {
            let mut event: Event =
                serde_json::from_slice(body).map_err(|e| bad(format!("the body is not an Event: {e}")))?;
            if let Some(ns) = param("namespace") {
                ns.clone_into(&mut event.metadata.namespace);
            }
            if event.metadata.namespace.is_empty() {
                return Err(bad("an event needs metadata.namespace (or ?namespace=)"));
            }
            Command::Create(Box::new(event))
        }
        (["events", ns, name], _, _, "PUT" | "PATCH" | "POST") => {
            let update = if body.iter().all(u8::is_ascii_whitespace) {
                EventUpdate::default()
            } else {
                serde_json::from_slice(body).map_err(|e| {
                    bad(format!(
                        "the body is not an update (count, seriesCount, lastTimestamp, message): {e}"
                    ))
                })?
            };
            Command::Update(Key { namespace: (*ns).into(), name: (*name).into() }, update)
        }
        (["events", ns, name], _, _, "DELETE") => {
            Command::Delete(Key { namespace: (*ns).into(), name: (*name).into() })
        }
        (["compact"], _, true, _) => Command::Compact,
        (["faults"], true, _, _) => Command::GetFaults,
        (["faults"], _, true, _) => return set_faults(&params, faults, timing),
        (["faults"], _, _, "DELETE") => Command::ClearFaults,
        (["tokens"], _, true, _) => {
            let grants = params
                .iter()
                .filter(|(k, _)| k == "token")
                .map(|(_, v)| Grant::parse(v).map_err(|e| bad(format!("token: {e}"))))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some((k, _)) = params.iter().find(|(k, _)| k != "token" && k != "grace") {
                return Err(bad(format!("unknown parameter {k:?} (token=..., grace=...)")));
            }
            let grace = param("grace").map(|g| duration("grace", g)).transpose()?.unwrap_or_default();
            Command::SetTokens { grants, grace }
        }
        (["stats"], true, _, _) => Command::Stats,
        (["stats", "reset"], _, true, _) => Command::ResetStats,
        (["down"], _, true, _) => {
            let spec = param("for").ok_or_else(|| {
                bad("down needs for=DURATION (e.g. for=10s): while down, this API is unreachable too")
            })?;
            Command::DownFor(duration("for", spec)?)
        }
        (["exit"], _, true, _) => Command::Exit,
        (
            ["events"]
            | ["events", _, _]
            | ["compact"]
            | ["faults"]
            | ["tokens"]
            | ["stats"]
            | ["stats", "reset"]
            | ["down"]
            | ["exit"],
            _,
            _,
            _,
        ) => {
            return Err(BadRequest { status: 405, reason: format!("method {method} not allowed on {path}") });
        }
        _ => {
            return Err(BadRequest {
                status: 404,
                reason: format!("no control endpoint {path} (see docs/kube-sim.md)"),
            });
        }
    };
    Ok(command)
}

fn set_faults(params: &[(String, String)], faults: &Faults, timing: &Timing) -> Result<Command, BadRequest> {
    let (mut faults, mut timing) = (faults.clone(), timing.clone());
    for (key, value) in params {
        match key.as_str() {
            "empty_watches" => {
                faults.empty_watches =
                    value.parse().map_err(|_| bad(format!("{key}={value}: expected a whole number")))?;
            }
            "unavailable" => {
                faults.unavailable = match value.as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(bad(format!("{key}={value}: expected true or false"))),
                };
            }
            "bookmark_interval" => timing.bookmark_interval = duration(key, value)?,
            "watch_max" => timing.watch_max = duration(key, value)?,
            "ttl" => timing.ttl = if value == "off" { None } else { Some(duration(key, value)?) },
            _ => return Err(bad(format!("unknown fault {key:?}"))),
        }
    }
    if timing.bookmark_interval.is_zero()
        || timing.watch_max.is_zero()
        || timing.ttl.is_some_and(|t| t.is_zero())
    {
        return Err(bad("durations must be above zero (ttl=off turns the TTL off)"));
    }
    Ok(Command::SetFaults(faults, timing))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(method: &str, path: &str, query: &str, body: &str) -> Result<Command, BadRequest> {
        parse(method, path, Some(query), body.as_bytes(), &Faults::default(), &Timing::default())
    }

    #[test]
    fn commands() {
        assert_eq!(p("GET", "/_sim/events", "", ""), Ok(Command::ListEvents));
        let Ok(Command::Create(e)) = p(
            "POST",
            "/_sim/events",
            "namespace=calypso",
            r#"{"reason":"Unhealthy","involvedObject":{"kind":"Pod","name":"ds-0"}}"#,
        ) else {
            panic!("a create")
        };
        assert_eq!((e.metadata.namespace.as_str(), e.reason.as_str()), ("calypso", "Unhealthy"));
        assert_eq!(p("POST", "/_sim/events", "", "{}").map_err(|e| e.status), Err(400));
        let key = Key { namespace: "ns".into(), name: "e1".into() };
        assert_eq!(
            p("PUT", "/_sim/events/ns/e1", "", ""),
            Ok(Command::Update(key.clone(), EventUpdate::default()))
        );
        assert_eq!(
            p("PATCH", "/_sim/events/ns/e1", "", r#"{"count":5}"#),
            Ok(Command::Update(key.clone(), EventUpdate { count: Some(5), ..Default::default() }))
        );
        assert_eq!(p("DELETE", "/_sim/events/ns/e1", "", ""), Ok(Command::Delete(key)));
        assert_eq!(p("POST", "/_sim/compact", "", ""), Ok(Command::Compact));
        assert_eq!(
            p("POST", "/_sim/tokens", "token=new&token=ro%40calypso&grace=5s", ""),
            Ok(Command::SetTokens {
                grants: vec![
                    Grant::cluster("new"),
                    Grant { token: "ro".into(), namespaces: Some(vec!["calypso".into()]) }
                ],
                grace: Duration::from_secs(5)
            })
        );
        assert_eq!(p("DELETE", "/_sim/stats", "", "").map_err(|e| e.status), Err(405));
        assert_eq!(p("GET", "/_sim/nope", "", "").map_err(|e| e.status), Err(404));
        assert_eq!(p("POST", "/_sim/down", "", "").map_err(|e| e.status), Err(400));
    }

    #[test]
    fn faults_change_only_what_is_named() {
        let Ok(Command::SetFaults(f, t)) =
            p("POST", "/_sim/faults", "empty_watches=3&ttl=2s&watch_max=500ms", "")
        else {
            panic!("faults")
        };
        assert_eq!((f.empty_watches, f.unavailable), (3, false));
        assert_eq!(
            (t.ttl, t.watch_max, t.bookmark_interval),
            (Some(Duration::from_secs(2)), Duration::from_millis(500), Duration::from_secs(60))
        );
        assert!(p("POST", "/_sim/faults", "bogus=1", "").is_err_and(|e| e.reason.contains("bogus")));
        assert!(p("POST", "/_sim/faults", "ttl=0s", "").is_err());
    }
}
