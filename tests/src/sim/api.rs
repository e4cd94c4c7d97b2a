//! The HTTP control API under `/sim/` (documented in `control-api.md`): turning a request line
//! into a [`Command`]. Pure, so that every bad-request reason is unit-tested; `server.rs` carries
//! the commands out.

use super::control::Mode;
use calypso::State;
use std::collections::HashMap;

/// Every control path starts with this; the health path never does.
pub(crate) const PREFIX: &str = "/sim/";

/// A valid control request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Command {
    SetSensor { path: Vec<String>, state: State, value: Option<f64>, details: Option<String> },
    SetMode(Mode),
    Report,
    Exit,
}

/// Why a control request was refused; the message is the one-line body of the answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("no such control endpoint {0} (see calypso-sim --help)")]
    NotFound(String),
    #[error("method {method} not allowed on {path}, use {allowed}")]
    MethodNotAllowed { method: String, path: String, allowed: &'static str },
    #[error("{0}")]
    BadRequest(String),
}

impl ApiError {
    pub(crate) fn status(&self) -> u16 {
        match self {
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::BadRequest(_) => 400,
        }
    }
}

/// Parses a control request; `path` starts with [`PREFIX`], `query` is the raw query string.
pub(crate) fn parse(method: &str, path: &str, query: Option<&str>) -> Result<Command, ApiError> {
    let rest = path.strip_prefix(PREFIX).ok_or_else(|| ApiError::NotFound(path.to_owned()))?;
    let segments: Vec<&str> = rest.split('/').collect();
    let allow = |allowed: &'static [&str], shown: &'static str| {
        if allowed.contains(&method) {
            Ok(())
        } else {
            Err(ApiError::MethodNotAllowed {
                method: method.to_owned(),
                path: path.to_owned(),
                allowed: shown,
            })
        }
    };
    match segments.as_slice() {
        ["sensor", names @ ..] => {
            allow(&["PUT", "POST"], "PUT or POST")?;
            let path = names
                .iter()
                .filter(|n| !n.is_empty())
                .map(|n| {
                    percent_decode(n)
                        .ok_or_else(|| bad(format!("bad sensor name {n:?}: invalid URL encoding")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if path.len() < 2 {
                return Err(bad("bad sensor path: expected /sim/sensor/{SubSystem}/{Sensor}".into()));
            }
            let mut p = params(query, &["state", "value", "details"])?;
            let state = p
                .remove("state")
                .ok_or_else(|| bad("missing parameter state (GREEN, AMBER or RED)".into()))?;
            let state = State::parse(&state)
                .ok_or_else(|| bad(format!("bad parameter state: {state:?} is not GREEN, AMBER or RED")))?;
            let value = match p.remove("value") {
                None => None,
                Some(v) => Some(
                    v.parse::<f64>()
                        .ok()
                        .filter(|f| f.is_finite())
                        .ok_or_else(|| bad(format!("bad parameter value: {v:?} is not a finite number")))?,
                ),
            };
            Ok(Command::SetSensor { path, state, value, details: p.remove("details") })
        }
        ["mode", name] => {
            allow(&["POST", "PUT"], "POST")?;
            let mode = match *name {
                "slow" => {
                    let mut p = params(query, &["delay"])?;
                    let delay = p
                        .remove("delay")
                        .ok_or_else(|| bad("missing parameter delay (e.g. delay=2s)".into()))?;
                    let d = humantime::parse_duration(&delay)
                        .map_err(|e| bad(format!("bad parameter delay: {delay:?}: {e}")))?;
                    Mode::Slow(d)
                }
                other => {
                    let mode = match other {
                        "normal" => Mode::Normal,
                        "hang" => Mode::Hang,
                        "close" => Mode::Close,
                        "garbage" => Mode::Garbage,
                        "empty-503" => Mode::EmptyUnavailable,
                        _ => {
                            return Err(bad(format!(
                                "bad mode {other:?}: expected normal, hang, slow, garbage, empty-503 or close"
                            )));
                        }
                    };
                    params(query, &[])?;
                    mode
                }
            };
            Ok(Command::SetMode(mode))
        }
        ["report"] => {
            allow(&["GET", "HEAD"], "GET")?;
            params(query, &[])?;
            Ok(Command::Report)
        }
        ["exit"] => {
            allow(&["POST", "PUT"], "POST")?;
            params(query, &[])?;
            Ok(Command::Exit)
        }
        _ => Err(ApiError::NotFound(path.to_owned())),
    }
}

fn bad(reason: String) -> ApiError {
    ApiError::BadRequest(reason)
}

/// The URL-decoded query parameters, refusing unknown and repeated ones so that a typo is a 400
/// naming it rather than a silently ignored setting.
fn params(query: Option<&str>, allowed: &[&str]) -> Result<HashMap<String, String>, ApiError> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if !allowed.contains(&k.as_ref()) {
            let expected = if allowed.is_empty() { "none".to_owned() } else { allowed.join(", ") };
            return Err(bad(format!("unknown parameter {k:?} (expected: {expected})")));
        }
        if out.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(bad(format!("parameter {k} given twice")));
        }
    }
    Ok(out)
}

/// Decodes `%XX` escapes of a path segment (a `+` stays a `+` in paths). None when an escape is
/// malformed or the result is not UTF-8.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(method: &str, path: &str, query: &str) -> String {
        match parse(method, path, Some(query)) {
            Err(e) => e.to_string(),
            Ok(c) => panic!("{method} {path}?{query} parsed as {c:?}"),
        }
    }

    #[test]
    fn sensor_with_decoded_names_and_params() {
        let c = parse(
            "PUT",
            "/sim/sensor/Calypso/Database%20Connection",
            Some("state=red&value=0&details=db+down%21"),
        );
        assert_eq!(
            c,
            Ok(Command::SetSensor {
                path: vec!["Calypso".into(), "Database Connection".into()],
                state: State::Red,
                value: Some(0.0),
                details: Some("db down!".into()),
            })
        );
        let c = parse("POST", "/sim/sensor/System/MemoryUsage", Some("state=AMBER"));
        assert!(matches!(c, Ok(Command::SetSensor { value: None, details: None, .. })));
    }

    #[test]
    fn modes() {
        for (name, mode) in [
            ("normal", Mode::Normal),
            ("hang", Mode::Hang),
            ("close", Mode::Close),
            ("garbage", Mode::Garbage),
            ("empty-503", Mode::EmptyUnavailable),
        ] {
            assert_eq!(parse("POST", &format!("/sim/mode/{name}"), None), Ok(Command::SetMode(mode)));
            assert_eq!(mode.to_string(), name);
        }
        assert_eq!(
            parse("POST", "/sim/mode/slow", Some("delay=2s")),
            Ok(Command::SetMode(Mode::Slow(std::time::Duration::from_secs(2))))
        );
        assert_eq!(parse("GET", "/sim/report", None), Ok(Command::Report));
        assert_eq!(parse("POST", "/sim/exit", None), Ok(Command::Exit));
    }

    #[test]
    fn bad_requests_name_the_bad_parameter() {
        assert!(err("PUT", "/sim/sensor/Calypso/X", "").contains("missing parameter state"));
        assert!(err("PUT", "/sim/sensor/Calypso/X", "state=PURPLE").contains("bad parameter state"));
        assert!(err("PUT", "/sim/sensor/Calypso/X", "state=RED&value=abc").contains("bad parameter value"));
        assert!(err("PUT", "/sim/sensor/Calypso/X", "state=RED&value=NaN").contains("bad parameter value"));
        assert!(
            err("PUT", "/sim/sensor/Calypso/X", "state=RED&colour=1")
                .contains("unknown parameter \"colour\"")
        );
        assert!(err("PUT", "/sim/sensor/Calypso/X", "state=RED&state=RED").contains("state given twice"));
        assert!(err("PUT", "/sim/sensor/Calypso", "state=RED").contains("bad sensor path"));
        assert!(err("PUT", "/sim/sensor/Calypso/%zz", "state=RED").contains("bad sensor name"));
        assert!(err("POST", "/sim/mode/slow", "").contains("missing parameter delay"));
        assert!(err("POST", "/sim/mode/slow", "delay=soon").contains("bad parameter delay"));
        assert!(err("POST", "/sim/mode/fast", "").contains("bad mode \"fast\""));
        assert!(err("POST", "/sim/mode/hang", "delay=1s").contains("unknown parameter \"delay\""));
        assert_eq!(parse("POST", "/sim/mode/fast", None).map_err(|e| e.status()), Err(400));
    }

    #[test]
    fn unknown_paths_and_methods() {
        assert_eq!(parse("GET", "/sim/nothing", None).map_err(|e| e.status()), Err(404));
        assert_eq!(parse("GET", "/sim/exit", None).map_err(|e| e.status()), Err(405));
        assert_eq!(parse("DELETE", "/sim/sensor/A/B", None).map_err(|e| e.status()), Err(405));
        assert!(err("GET", "/sim/exit", "").contains("use POST"));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb+c").as_deref(), Some("a/b+c"));
        assert_eq!(percent_decode("%C3%A9").as_deref(), Some("é"));
        assert_eq!(percent_decode("%"), None);
        assert_eq!(percent_decode("%+1"), None);
        assert_eq!(percent_decode("%FF"), None);
    }
}
