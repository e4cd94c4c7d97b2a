//! The tolerant health-payload parser: turns one HTTP answer of a Calypso server's health API
//! (status, content type, body) into a [`HealthReport`].
//!
//! The real field names of the Calypso health API are not public, so this accepts every shape
//! listed under "Accepted payloads" in docs/health-payloads.md (the canonical shape, Spring Boot
//! Actuator's `/actuator/health`, keys in any case, children as arrays or as objects keyed by
//! name, nesting to any depth). Whatever the input, it returns a report or a one-line error; it
//! never panics.
//!
//! Choices made where the contract is silent:
//! - keys also match with `_` and `-` ignored (`sub_systems`, `amber-threshold`), which costs
//!   nothing and covers snake-case JSON mappers;
//! - an empty (or whitespace-only) body is never JSON, whatever its content type says;
//! - a leading UTF-8 byte-order mark is skipped; error positions count from after it;
//! - the state keys are tried in priority order and the first one holding a state word wins, so
//!   `{"state":"RUNNING","status":"UP"}` is GREEN;
//! - children given as an object keyed by name come in `serde_json::Map` order, which is the
//!   body's order only when serde_json's `preserve_order` feature is on (else sorted by key);
//! - a JSON body that names no state and no children gets its state from the HTTP class like a
//!   non-JSON body, but its error says so ([`ParseError::NoState`]) rather than "not JSON".

use crate::health::{HealthNode, HealthReport};
use crate::state::State;
use serde_json::{Map, Value};

/// Bodies larger than this are refused: a health answer is a few KiB, and an agent must not
/// buffer whatever a broken server streams at it. Callers should stop reading at one byte more.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// How many levels of nodes below the server are read. serde_json already refuses JSON nested
/// deeper than 128 (about 63 node levels), so this only guards our own recursion against a
/// `Value` built some other way.
pub const MAX_DEPTH: usize = 64;

/// How long a node's path (`SubSystem/Sensor/...`, its names and the `/`s) may be. Real paths
/// are tens of bytes; the agents build every node's path to match and report sensors, and a
/// report of deep chains of long names (a megabyte can hold a chain 60 deep of 4 KiB names above
/// 10,000 leaves) would make that gigabytes.
pub const MAX_PATH_BYTES: usize = 1024;

/// Why a health answer could not be read. Each message is one line, for logs and termination
/// messages.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ParseError {
    #[error("body of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("invalid UTF-8 at byte {offset}")]
    InvalidUtf8 { offset: usize },
    /// `message` is serde_json's, without its position (which is in `line` and `column`).
    #[error("invalid JSON at line {line} column {column}: {message}")]
    InvalidJson { line: usize, column: usize, message: String },
    #[error("health tree nesting deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("a sensor's path (its names joined by /) longer than {limit} bytes")]
    PathTooLong { limit: usize },
    /// Neither 2xx (a plain liveness answer, GREEN) nor 5xx (RED): e.g. a 404 page.
    #[error("HTTP {status} with a body that is not JSON")]
    NotJson { status: u16 },
    /// JSON without a state or children, and a status that is neither 2xx nor 5xx: e.g. Spring
    /// Boot's `{"status":404,"error":"Not Found"}`.
    #[error("HTTP {status} with a JSON body that has no health state")]
    NoState { status: u16 },
}

// Key names, lower case without separators (see `key_is`), in priority order.
const STATE_KEYS: &[&str] = &["state", "status", "health"];
const CHILDREN_KEYS: &[&str] = &["subsystems", "components", "children", "sensors", "checks"];
const NAME_KEYS: &[&str] = &["name", "id"];
const VALUE_KEYS: &[&str] = &["value"];
const UNIT_KEYS: &[&str] = &["unit"];
const AMBER_KEYS: &[&str] = &["amberthreshold", "warnthreshold", "warningthreshold"];
const RED_KEYS: &[&str] = &["redthreshold", "criticalthreshold"];
const DETAILS_KEYS: &[&str] = &["details", "message", "reason", "description"];
const SERVER_KEYS: &[&str] = &["server", "name", "servername"];
const TYPE_KEYS: &[&str] = &["type", "servertype"];
const TIMESTAMP_KEYS: &[&str] = &["timestamp"];

/// Reads one answer of a health API. `status` is the HTTP status code, `content_type` the
/// `Content-Type` header if any. See the module documentation for the rules.
pub fn parse_response(
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<HealthReport, ParseError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ParseError::TooLarge { size: body.len(), limit: MAX_BODY_BYTES });
    }
    let text = std::str::from_utf8(body).map_err(|e| ParseError::InvalidUtf8 { offset: e.valid_up_to() })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !is_json(content_type, text) {
        return report_from_status(status).ok_or(ParseError::NotJson { status });
    }
    let value: Value = serde_json::from_str(text).map_err(invalid_json)?;
    report_from_value(status, &value)
}

/// Whether to read the body as JSON: it says so, or it looks so. Servers often send JSON as
/// `text/plain`, and a plain liveness endpoint may send `OK` as anything.
fn is_json(content_type: Option<&str>, text: &str) -> bool {
    let start = text.trim_start_matches([' ', '\t', '\n', '\r']);
    !start.is_empty() && (declares_json(content_type) || start.starts_with(['{', '[']))
}

/// `application/json`, `application/problem+json; charset=utf-8`, `TEXT/JSON`, ...
fn declares_json(content_type: Option<&str>) -> bool {
    let Some(essence) = content_type.and_then(|ct| ct.split(';').next()) else {
        return false;
    };
    // Compare bytes: slicing a str at len - 4 could split a character.
    let essence = essence.trim().as_bytes();
    essence.len() >= 4 && essence[essence.len() - 4..].eq_ignore_ascii_case(b"json")
}

fn invalid_json(e: serde_json::Error) -> ParseError {
    let (line, column) = (e.line(), e.column());
    let full = e.to_string();
    // serde_json appends " at line L column C"; we put the position first instead.
    let position = format!(" at line {line} column {column}");
    let message = full.strip_suffix(&position).unwrap_or(&full).to_owned();
    ParseError::InvalidJson { line, column, message }
}

/// The state an answer without a readable health payload implies: 2xx is a plain liveness
/// answer (GREEN), 5xx a failure (RED); anything else says nothing about health.
fn state_from_status(status: u16) -> Option<State> {
    match status {
        200..=299 => Some(State::Green),
        500..=599 => Some(State::Red),
        _ => None,
    }
}

fn report_from_status(status: u16) -> Option<HealthReport> {
    state_from_status(status).map(bare_report)
}

fn bare_report(state: State) -> HealthReport {
    HealthReport { server: None, server_type: None, timestamp: None, state, sub_systems: Vec::new() }
}

fn report_from_value(status: u16, value: &Value) -> Result<HealthReport, ParseError> {
    match value {
        Value::Object(root) => report_from_object(status, root),
        // A bare `"UP"`: some endpoints answer with nothing but the state word.
        Value::String(word) => match State::parse(word) {
            Some(state) => Ok(bare_report(state)),
            None => report_from_status(status).ok_or(ParseError::NoState { status }),
        },
        _ => report_from_status(status).ok_or(ParseError::NoState { status }),
    }
}

fn report_from_object(status: u16, root: &Map<String, Value>) -> Result<HealthReport, ParseError> {
    let sub_systems = children(root, 1, 0)?;
    let state = match own_state(root).or_else(|| worst_of(&sub_systems)) {
        Some(state) => state,
        // A state word we do not know (`STARTING`) is a state we cannot vouch for: AMBER, as
        // for any node, never GREEN because the status happened to be 200.
        None if has_state_word(root) => State::Amber,
        None => state_from_status(status).ok_or(ParseError::NoState { status })?,
    };
    Ok(HealthReport {
        server: first(root, SERVER_KEYS, text),
        server_type: first(root, TYPE_KEYS, text),
        timestamp: first(root, TIMESTAMP_KEYS, text),
        state,
        sub_systems,
    })
}

/// A sub-system, sensor or component `depth` levels below the server, its parent's path
/// `path_len` bytes long.
fn node(
    name: String,
    obj: &Map<String, Value>,
    depth: usize,
    path_len: usize,
) -> Result<HealthNode, ParseError> {
    if depth > MAX_DEPTH {
        return Err(ParseError::TooDeep { limit: MAX_DEPTH });
    }
    let path_len = if path_len == 0 { name.len() } else { path_len + 1 + name.len() };
    if path_len > MAX_PATH_BYTES {
        return Err(ParseError::PathTooLong { limit: MAX_PATH_BYTES });
    }
    let children = children(obj, depth + 1, path_len)?;
    // No state and no children: the server told us nothing about this node.
    let state = own_state(obj).or_else(|| worst_of(&children)).unwrap_or(State::Amber);
    Ok(HealthNode {
        name,
        state,
        value: first(obj, VALUE_KEYS, number),
        unit: first(obj, UNIT_KEYS, text),
        amber_threshold: first(obj, AMBER_KEYS, number),
        red_threshold: first(obj, RED_KEYS, number),
        details: first(obj, DETAILS_KEYS, details),
        children,
    })
}

/// The children under every children key of `obj`, concatenated in map order. Entries that are
/// not objects are skipped: they are no node we could name or judge.
fn children(obj: &Map<String, Value>, depth: usize, path_len: usize) -> Result<Vec<HealthNode>, ParseError> {
    let mut out = Vec::new();
    for (key, value) in obj {
        if !CHILDREN_KEYS.iter().any(|k| key_is(key, k)) {
            continue;
        }
        match value {
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    if let Value::Object(child) = item {
                        let name = first(child, NAME_KEYS, text).unwrap_or_else(|| format!("#{index}"));
                        out.push(node(name, child, depth, path_len)?);
                    }
                }
            }
            // Keyed by name: the key is the name, whatever the child says inside.
            Value::Object(map) => {
                for (name, item) in map {
                    if let Value::Object(child) = item {
                        out.push(node(name.clone(), child, depth, path_len)?);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

fn worst_of(nodes: &[HealthNode]) -> Option<State> {
    State::worst(nodes.iter().map(|n| n.state))
}

/// The node's own state: a state word under a state key, or under a state key of an object
/// there (`"health": {"status": "UP"}`, one level only).
fn own_state(obj: &Map<String, Value>) -> Option<State> {
    first(obj, STATE_KEYS, |v| match v {
        Value::String(word) => State::parse(word),
        Value::Object(inner) => first(inner, STATE_KEYS, |v| v.as_str().and_then(State::parse)),
        _ => None,
    })
}

/// Whether a state key holds a word at all (recognised or not), as opposed to being absent or
/// holding something else (Spring Boot's error body has a numeric `status`).
fn has_state_word(obj: &Map<String, Value>) -> bool {
    first(obj, STATE_KEYS, |v| v.as_str().map(|_| ())).is_some()
}

/// The first value under `names` (in that priority order, each in any spelling) that `read`
/// accepts.
fn first<T>(obj: &Map<String, Value>, names: &[&str], read: impl Fn(&Value) -> Option<T>) -> Option<T> {
    names.iter().flat_map(|name| obj.iter().filter(move |(k, _)| key_is(k, name))).find_map(|(_, v)| read(v))
}

/// Whether `key` spells `name` (lower case, no separators) in any letter case, ignoring `_`
/// and `-`: `subSystems`, `SUBSYSTEMS`, `sub_systems` are all `subsystems`.
fn key_is(key: &str, name: &str) -> bool {
    key.bytes().filter(|b| !matches!(b, b'_' | b'-')).map(|b| b.to_ascii_lowercase()).eq(name.bytes())
}

/// A string as is, a number in JSON notation (ids and epoch timestamps are often numbers).
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A number, or a string holding one (`"41.5"`). Non-finite values are refused: they cannot be
/// written back as JSON and compare unequal to themselves.
fn number(v: &Value) -> Option<f64> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    n.filter(|n| n.is_finite())
}

/// A string as is; anything else but null as compact JSON, so that Spring Boot's
/// `"details": {"database": "PostgreSQL"}` still reaches the logs.
fn details(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => serde_json::to_string(other).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const JSON: Option<&str> = Some("application/json");

    fn ok(status: u16, content_type: Option<&str>, body: &str) -> HealthReport {
        match parse_response(status, content_type, body.as_bytes()) {
            Ok(report) => report,
            Err(e) => panic!("expected a report for {body:?}, got: {e}"),
        }
    }

    fn err(status: u16, content_type: Option<&str>, body: &[u8]) -> ParseError {
        match parse_response(status, content_type, body) {
            Ok(report) => panic!("expected an error, got {report:?}"),
            Err(e) => e,
        }
    }

    fn states(nodes: &[HealthNode]) -> Vec<(&str, State)> {
        nodes.iter().map(|n| (n.name.as_str(), n.state)).collect()
    }

    const CANONICAL: &str = r#"{
      "server": "engineserver-0",
      "type": "EngineServer",
      "state": "RED",
      "timestamp": "2026-11-21T10:15:02.120Z",
      "subSystems": [
        {"name": "System", "state": "GREEN", "sensors": [
          {"name": "MemoryUsage", "state": "GREEN", "value": 41.5, "unit": "%",
           "amberThreshold": 80, "redThreshold": 95, "details": "heap 1.6 GiB of 4 GiB"}]},
        {"name": "Calypso", "state": "RED", "sensors": [
          {"name": "DataServerConnection", "state": "RED", "value": 0,
           "details": "connection to DataServer lost, reconnect attempt 3/20"}]},
        {"name": "TransferEngine", "state": "GREEN", "sensors": [
          {"name": "EngineRunning", "state": "GREEN", "value": 1},
          {"name": "UnconsumedEvents", "state": "GREEN", "value": 12,
           "amberThreshold": 1000, "redThreshold": 10000}]}
      ]
    }"#;

    #[test]
    fn unknown_root_state_word_is_amber_whatever_the_status() {
        assert_eq!(ok(200, JSON, r#"{"state":"STARTING"}"#).state, State::Amber);
        assert_eq!(ok(200, JSON, r#"{"status":"INITIALIZING","name":"x"}"#).state, State::Amber);
        // A numeric status is no state word: the HTTP class decides, or it is an error.
        assert_eq!(ok(500, JSON, r#"{"status":500,"error":"boom"}"#).state, State::Red);
    }

    #[test]
    fn canonical_example() {
        let r = ok(503, JSON, CANONICAL);
        assert_eq!(r.server.as_deref(), Some("engineserver-0"));
        assert_eq!(r.server_type.as_deref(), Some("EngineServer"));
        assert_eq!(r.timestamp.as_deref(), Some("2026-11-21T10:15:02.120Z"));
        assert_eq!(r.state, State::Red);
        assert_eq!(
            states(&r.sub_systems),
            [("System", State::Green), ("Calypso", State::Red), ("TransferEngine", State::Green)]
        );
        let memory = &r.sub_systems[0].children[0];
        assert_eq!(memory.name, "MemoryUsage");
        assert_eq!(memory.value, Some(41.5));
        assert_eq!(memory.unit.as_deref(), Some("%"));
        assert_eq!(memory.amber_threshold, Some(80.0));
        assert_eq!(memory.red_threshold, Some(95.0));
        assert_eq!(memory.details.as_deref(), Some("heap 1.6 GiB of 4 GiB"));
        assert_eq!(
            states(&r.sub_systems[2].children),
            [("EngineRunning", State::Green), ("UnconsumedEvents", State::Green)]
        );
        assert_eq!(
            r.summary(),
            "state RED (Calypso/DataServerConnection: RED 'connection to DataServer lost, reconnect attempt 3/20')"
        );
    }

    #[test]
    fn canonical_json_round_trips() {
        let r = ok(200, JSON, CANONICAL);
        let again = ok(200, JSON, &r.to_canonical_json().to_string());
        assert_eq!(again, r);
    }

    #[test]
    fn spring_boot_actuator_up() {
        let body = r#"{"status":"UP","components":{
            "db":{"status":"UP","details":{"database":"PostgreSQL","validationQuery":"isValid()"}},
            "diskSpace":{"status":"UP","details":{"total":1,"free":1}},
            "ping":{"status":"UP"}}}"#;
        let r = ok(200, Some("application/vnd.spring-boot.actuator.v3+json"), body);
        assert_eq!(r.state, State::Green);
        assert_eq!(r.server, None);
        assert_eq!(
            states(&r.sub_systems),
            [("db", State::Green), ("diskSpace", State::Green), ("ping", State::Green)]
        );
        assert_eq!(
            r.sub_systems[0].details.as_deref(),
            Some(r#"{"database":"PostgreSQL","validationQuery":"isValid()"}"#)
        );
        // Key order inside details follows serde_json's map; compare as JSON.
        let disk: Option<Value> =
            r.sub_systems[1].details.as_deref().and_then(|d| serde_json::from_str(d).ok());
        assert_eq!(disk, Some(json!({"total": 1, "free": 1})));
        assert_eq!(r.sub_systems[2].details, None);
    }

    #[test]
    fn spring_boot_actuator_down_with_nested_components() {
        let body = r#"{"status":"DOWN","components":{
            "db":{"status":"DOWN","components":{
                "primary":{"status":"UP","details":{"database":"PostgreSQL"}},
                "reporting":{"status":"DOWN","details":{"error":"java.net.ConnectException: refused"}}}},
            "ping":{"status":"UP"}}}"#;
        let r = ok(503, Some("application/json"), body);
        assert_eq!(r.state, State::Red);
        assert_eq!(states(&r.sub_systems), [("db", State::Red), ("ping", State::Green)]);
        assert_eq!(
            states(&r.sub_systems[0].children),
            [("primary", State::Green), ("reporting", State::Red)]
        );
        assert_eq!(
            r.summary(),
            r#"state RED (db/reporting: RED '{"error":"java.net.ConnectException: refused"}')"#
        );
    }

    #[test]
    fn map_keyed_children_take_the_key_as_name() {
        let body = r#"{"state":"AMBER","subSystems":{"Calypso":{"name":"ignored","state":"AMBER",
            "sensors":{"DatabaseConnection":{"state":"WARN","value":"250","unit":"ms"}}},
            "notANode":"GREEN","alsoNot":[1,2]}}"#;
        let r = ok(200, JSON, body);
        assert_eq!(states(&r.sub_systems), [("Calypso", State::Amber)]);
        let sensor = &r.sub_systems[0].children[0];
        assert_eq!((sensor.name.as_str(), sensor.state), ("DatabaseConnection", State::Amber));
        assert_eq!(sensor.value, Some(250.0));
        assert_eq!(sensor.unit.as_deref(), Some("ms"));
    }

    #[test]
    fn array_children_named_by_name_then_id_then_index() {
        let body =
            r#"{"checks":[{"name":"a","id":"x","state":"OK"},{"id":7,"state":"OK"},{"state":"OK"},"junk"]}"#;
        let r = ok(200, None, body);
        assert_eq!(states(&r.sub_systems), [("a", State::Green), ("7", State::Green), ("#2", State::Green)]);
    }

    #[test]
    fn every_children_key_is_read_and_concatenated() {
        let body = r#"{"children":[{"name":"c"}],"sensors":[{"name":"s","state":"RED"}],
            "checks":{"k":{"state":"GREEN"}},"components":[{"name":"m","state":"GREEN"}],
            "subSystems":[{"name":"x","state":"GREEN"}]}"#;
        let r = ok(200, JSON, body);
        let mut names: Vec<&str> = r.sub_systems.iter().map(|n| n.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["c", "k", "m", "s", "x"]);
        // "c" has neither a state nor children: unknown, which is AMBER; the root is the worst.
        assert_eq!(r.sub_systems.iter().find(|n| n.name == "c").map(|n| n.state), Some(State::Amber));
        assert_eq!(r.state, State::Red);
    }

    fn nested(levels: usize, leaf_state: &str) -> Value {
        let mut v = json!({"name": format!("n{levels}"), "state": leaf_state});
        for level in (1..levels).rev() {
            // Alternate array and map form, and leave the state out: the leaf's must bubble up.
            v = if level % 2 == 0 {
                json!({"name": format!("n{level}"), "components": [v]})
            } else {
                json!({"name": format!("n{level}"), "children": {format!("n{}", level + 1): v}})
            };
        }
        json!({"subSystems": [v]})
    }

    #[test]
    fn deep_nesting_bubbles_the_leaf_state_up() {
        let r = ok(200, JSON, &nested(40, "down").to_string());
        assert_eq!(r.state, State::Red);
        let mut node = &r.sub_systems[0];
        for level in 1..40 {
            assert_eq!((node.name.as_str(), node.state), (format!("n{level}").as_str(), State::Red));
            node = &node.children[0];
        }
        assert_eq!(node.name, "n40");
        assert!(node.children.is_empty());
        assert_eq!(r.causes().len(), 1);
    }

    #[test]
    fn nesting_beyond_serde_json_limit_is_invalid_json() {
        let e = err(200, JSON, nested(70, "UP").to_string().as_bytes());
        assert!(
            matches!(&e, ParseError::InvalidJson { message, .. } if message == "recursion limit exceeded"),
            "{e}"
        );
    }

    #[test]
    fn a_path_longer_than_the_limit_is_an_error() {
        // `A/B`: 1000 + 1 + 23 bytes is the limit exactly; one byte more is refused.
        let report = |leaf: &str| json!({"subSystems": [{"name": "a".repeat(1000), "sensors": [{"name": leaf, "state": "GREEN"}]}]});
        assert!(report_from_value(200, &report(&"b".repeat(23))).is_ok());
        let e = report_from_value(200, &report(&"b".repeat(24))).err();
        assert_eq!(e, Some(ParseError::PathTooLong { limit: MAX_PATH_BYTES }));
        assert_eq!(
            e.map(|e| e.to_string()).unwrap_or_default(),
            "a sensor's path (its names joined by /) longer than 1024 bytes"
        );
    }

    #[test]
    fn nesting_beyond_our_limit_is_an_error_not_a_stack_overflow() {
        // Built in memory, so serde_json's own limit does not apply.
        let deep = nested(MAX_DEPTH + 1, "UP");
        let e = report_from_value(200, &deep).err();
        assert_eq!(e, Some(ParseError::TooDeep { limit: 64 }));
        assert_eq!(e.map(|e| e.to_string()).as_deref(), Some("health tree nesting deeper than 64 levels"));
        assert!(report_from_value(200, &nested(MAX_DEPTH, "UP")).is_ok());
    }

    #[test]
    fn missing_state_is_the_worst_of_the_children() {
        let body = r#"{"subSystems":[
            {"name":"A","sensors":[{"name":"a1","state":"GREEN"},{"name":"a2","state":"AMBER"}]},
            {"name":"B","sensors":[{"name":"b1","state":"GREEN"}]},
            {"name":"C","state":"purple","sensors":[{"name":"c1","state":"RED"}]}]}"#;
        let r = ok(200, JSON, body);
        assert_eq!(states(&r.sub_systems), [("A", State::Amber), ("B", State::Green), ("C", State::Red)]);
        assert_eq!(r.state, State::Red);
    }

    #[test]
    fn mixed_case_keys_and_state_words() {
        let body = r#"{"SERVER":"ds","ServerType":"DataServer","STATUS":"Out_Of_Service",
            "SUBSYSTEMS":[{"NAME":"System","Sensors":[{"Name":"MemoryUsage","sTaTe":"yellow",
            "VALUE":90,"Unit":"%","WarnThreshold":80,"CRITICAL_THRESHOLD":95,"Message":"high"}]}]}"#;
        let r = ok(200, JSON, body);
        assert_eq!((r.server.as_deref(), r.server_type.as_deref()), (Some("ds"), Some("DataServer")));
        assert_eq!(r.state, State::Red);
        let sensor = &r.sub_systems[0].children[0];
        assert_eq!((sensor.name.as_str(), sensor.state), ("MemoryUsage", State::Amber));
        assert_eq!((sensor.amber_threshold, sensor.red_threshold), (Some(80.0), Some(95.0)));
        assert_eq!(sensor.details.as_deref(), Some("high"));
        assert_eq!(r.sub_systems[0].state, State::Amber);
    }

    #[test]
    fn state_key_priority_and_nested_state_object() {
        assert_eq!(ok(200, JSON, r#"{"health":"DOWN","status":"UP","state":"AMBER"}"#).state, State::Amber);
        assert_eq!(ok(200, JSON, r#"{"health":"DOWN","status":"UP"}"#).state, State::Green);
        // A state key without a state word does not hide the next one.
        assert_eq!(ok(200, JSON, r#"{"state":"RUNNING","status":"DOWN"}"#).state, State::Red);
        assert_eq!(ok(200, JSON, r#"{"health":{"status":"DOWN","since":"10:00"}}"#).state, State::Red);
        let r = ok(200, JSON, r#"{"checks":[{"name":"db","health":{"State":"critical"}}]}"#);
        assert_eq!(states(&r.sub_systems), [("db", State::Red)]);
    }

    #[test]
    fn details_of_any_json_type() {
        let body = r#"{"sensors":[{"name":"a","state":"OK","details":[1,"x"]},
            {"name":"b","state":"OK","details":null,"reason":"r"},
            {"name":"c","state":"OK","description":42}]}"#;
        let r = ok(200, JSON, body);
        let details: Vec<Option<&str>> = r.sub_systems.iter().map(|n| n.details.as_deref()).collect();
        assert_eq!(details, [Some(r#"[1,"x"]"#), Some("r"), Some("42")]);
    }

    #[test]
    fn bad_numbers_are_ignored() {
        let r =
            ok(200, JSON, r#"{"sensors":[{"name":"a","state":"OK","value":"NaN","redThreshold":"n/a"}]}"#);
        assert_eq!((r.sub_systems[0].value, r.sub_systems[0].red_threshold), (None, None));
    }

    #[test]
    fn bare_state_word() {
        let r = ok(200, JSON, r#""UP""#);
        assert_eq!((r.state, r.sub_systems.len()), (State::Green, 0));
        assert_eq!(ok(200, JSON, r#" "down" "#).state, State::Red);
    }

    #[test]
    fn other_json_values_go_by_status_class() {
        assert_eq!(ok(200, JSON, "true").state, State::Green);
        assert_eq!(ok(503, JSON, "[]").state, State::Red);
        assert_eq!(ok(200, JSON, "{}").state, State::Green);
        assert_eq!(ok(500, JSON, r#"{"status":500,"error":"Internal Server Error"}"#).state, State::Red);
        assert_eq!(err(404, JSON, b"null"), ParseError::NoState { status: 404 });
        let e = err(
            404,
            JSON,
            br#"{"timestamp":"2026-11-21","status":404,"error":"Not Found","path":"/health"}"#,
        );
        assert_eq!(e.to_string(), "HTTP 404 with a JSON body that has no health state");
    }

    #[test]
    fn plain_text_ok_is_green() {
        let r = ok(200, Some("text/plain; charset=utf-8"), "OK");
        assert_eq!(r, bare_report(State::Green));
    }

    #[test]
    fn html_503_is_red() {
        let r = ok(503, Some("text/html"), "<html><body>Service Unavailable</body></html>");
        assert_eq!(r, bare_report(State::Red));
    }

    #[test]
    fn html_404_is_an_error() {
        let e = err(404, Some("text/html"), b"<html>Not Found</html>");
        assert_eq!(e, ParseError::NotJson { status: 404 });
        assert_eq!(e.to_string(), "HTTP 404 with a body that is not JSON");
    }

    #[test]
    fn empty_bodies_go_by_status_class() {
        assert_eq!(ok(200, None, "").state, State::Green);
        assert_eq!(ok(204, JSON, " \r\n").state, State::Green);
        assert_eq!(ok(502, JSON, "").state, State::Red);
        assert_eq!(err(301, None, b""), ParseError::NotJson { status: 301 });
    }

    #[test]
    fn json_is_recognised_by_content_type_or_first_character() {
        // Declared JSON that is not: an error, not a silent GREEN.
        let e = err(200, Some("Application/JSON; charset=UTF-8"), b"OK");
        assert_eq!(e.to_string(), "invalid JSON at line 1 column 1: expected value");
        // Undeclared JSON, found by its first character.
        assert_eq!(ok(200, Some("text/plain"), "\n  {\"state\":\"RED\"}").state, State::Red);
        assert_eq!(ok(200, None, "[1]").state, State::Green);
        assert!(matches!(err(200, Some("text/html"), b"{oops"), ParseError::InvalidJson { .. }));
        // `json` in a parameter does not make it JSON.
        assert_eq!(ok(200, Some("text/plain; format=json"), "fine").state, State::Green);
        // A byte-order mark is skipped.
        assert_eq!(ok(200, None, "\u{feff}{\"state\":\"RED\"}").state, State::Red);
    }

    #[test]
    fn invalid_json_message_has_position_first() {
        let e = err(200, JSON, b"{\"state\": }");
        assert_eq!(e, ParseError::InvalidJson { line: 1, column: 11, message: "expected value".into() });
        assert_eq!(e.to_string(), "invalid JSON at line 1 column 11: expected value");
        let e = err(200, JSON, b"{\n\"state\": \"UP\"");
        assert_eq!(e.to_string(), "invalid JSON at line 2 column 13: EOF while parsing an object");
        let e = err(200, JSON, br#"{"state":"UP"} x"#);
        assert_eq!(e.to_string(), "invalid JSON at line 1 column 16: trailing characters");
    }

    #[test]
    fn invalid_utf8_names_the_offset() {
        let e = err(200, None, b"{\"state\":\"\xff\"}");
        assert_eq!(e, ParseError::InvalidUtf8 { offset: 10 });
        assert_eq!(e.to_string(), "invalid UTF-8 at byte 10");
        // Checked before the status: even a plain 200 must be text.
        assert_eq!(err(200, Some("text/plain"), b"O\xc3"), ParseError::InvalidUtf8 { offset: 1 });
    }

    #[test]
    fn body_over_one_mebibyte_is_refused() {
        let body = vec![b' '; MAX_BODY_BYTES + 1];
        let e = err(200, None, &body);
        assert_eq!(e, ParseError::TooLarge { size: 1_048_577, limit: 1_048_576 });
        assert_eq!(e.to_string(), "body of 1048577 bytes exceeds the limit of 1048576 bytes");
        // Exactly the limit is fine.
        assert_eq!(ok(200, None, &" ".repeat(MAX_BODY_BYTES)).state, State::Green);
    }

    #[test]
    fn keys_ignore_separators() {
        let body = r#"{"server_name":"x","sub_systems":[{"name":"a","state":"OK","amber-threshold":1}]}"#;
        let r = ok(200, JSON, body);
        assert_eq!(r.server.as_deref(), Some("x"));
        assert_eq!(r.sub_systems[0].amber_threshold, Some(1.0));
        assert!(key_is("SubSystems", "subsystems"));
        assert!(!key_is("subsystem", "subsystems"));
        assert!(!key_is("ſtate", "state"), "only ASCII folds");
    }

    #[test]
    fn numeric_root_fields_become_text() {
        let r = ok(200, JSON, r#"{"state":"OK","timestamp":1763720102120,"name":"ds-0"}"#);
        assert_eq!((r.timestamp.as_deref(), r.server.as_deref()), (Some("1763720102120"), Some("ds-0")));
    }
}
