//! The health report model: a Calypso server is a tree of sub-systems, each a tree of sensors,
//! every node carrying a state. Also the canonical JSON shape (docs/health-payloads.md) that the
//! simulator serves, and the one-line summary the agents log.

use crate::state::State;
use serde_json::{Map, Value, json};

/// One node of the tree: a sub-system, a sensor, or a component of either (any depth).
#[derive(Debug, Clone, PartialEq)]
pub struct HealthNode {
    pub name: String,
    /// The node's own state, or the worst of its children when the payload gave none.
    pub state: State,
    pub value: Option<f64>,
    pub unit: Option<String>,
    pub amber_threshold: Option<f64>,
    pub red_threshold: Option<f64>,
    pub details: Option<String>,
    pub children: Vec<HealthNode>,
}

impl HealthNode {
    /// A node with a name and state and nothing else.
    pub fn new(name: impl Into<String>, state: State) -> Self {
        HealthNode {
            name: name.into(),
            state,
            value: None,
            unit: None,
            amber_threshold: None,
            red_threshold: None,
            details: None,
            children: Vec::new(),
        }
    }

    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    pub fn with_value(mut self, value: f64) -> Self {
        self.value = Some(value);
        self
    }

    pub fn with_children(mut self, children: Vec<HealthNode>) -> Self {
        self.children = children;
        self
    }
}

/// A whole server's health as read from its health API.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthReport {
    /// The server's name (`engineserver-0`), when the payload says.
    pub server: Option<String>,
    /// The server's type (`EngineServer`), when the payload says.
    pub server_type: Option<String>,
    pub timestamp: Option<String>,
    /// The overall state: the payload's, else the worst sub-system's.
    pub state: State,
    pub sub_systems: Vec<HealthNode>,
}

/// A node that is not GREEN, found by [`HealthReport::causes`].
#[derive(Debug, Clone, PartialEq)]
pub struct Cause<'a> {
    /// Names from the sub-system down, joined with `/`: `Calypso/DatabaseConnection`.
    pub path: String,
    pub node: &'a HealthNode,
}

impl HealthReport {
    /// Every node as `(path, node)`, depth first, parents before children.
    pub fn nodes(&self) -> Vec<(String, &HealthNode)> {
        fn walk<'a>(prefix: &str, nodes: &'a [HealthNode], out: &mut Vec<(String, &'a HealthNode)>) {
            for n in nodes {
                let path = if prefix.is_empty() { n.name.clone() } else { format!("{prefix}/{}", n.name) };
                out.push((path.clone(), n));
                walk(&path, &n.children, out);
            }
        }
        let mut out = Vec::new();
        walk("", &self.sub_systems, &mut out);
        out
    }

    /// The deepest nodes that explain a non-GREEN state: every non-GREEN node none of whose
    /// children is non-GREEN, worst first (stable within a state).
    pub fn causes(&self) -> Vec<Cause<'_>> {
        let mut causes: Vec<Cause<'_>> = self
            .nodes()
            .into_iter()
            .filter(|(_, n)| n.state != State::Green && n.children.iter().all(|c| c.state == State::Green))
            .map(|(path, node)| Cause { path, node })
            .collect();
        causes.sort_by_key(|c| std::cmp::Reverse(c.node.state));
        causes
    }

    /// One line for logs and termination messages:
    /// `state RED (Calypso/DatabaseConnection: RED 'db down'; ...)`, at most three causes.
    pub fn summary(&self) -> String {
        const MAX_CAUSES: usize = 3;
        let causes = self.causes();
        if causes.is_empty() {
            return format!("state {}", self.state);
        }
        let mut parts: Vec<String> = causes
            .iter()
            .take(MAX_CAUSES)
            .map(|c| match c.node.details.as_deref().map(|d| one_line(d, MAX_DETAILS_CHARS)) {
                Some(d) if !d.is_empty() => format!("{}: {} '{}'", c.path, c.node.state, d),
                _ => format!("{}: {}", c.path, c.node.state),
            })
            .collect();
        if causes.len() > MAX_CAUSES {
            parts.push(format!("{} more", causes.len() - MAX_CAUSES));
        }
        format!("state {} ({})", self.state, parts.join("; "))
    }

    /// The state and the paths and states of its causes, without details or values: it stays
    /// the same while the same sensors are bad, however their details tick ("reconnect attempt
    /// 3/20", "heap 1.6 GiB"), so callers can log a change of reason rather than every answer.
    pub fn signature(&self) -> String {
        let causes: Vec<String> =
            self.causes().iter().map(|c| format!("{}={}", c.path, c.node.state)).collect();
        format!("{} {}", self.state, causes.join(" "))
    }

    /// Replaces every text of the report that came from the server — its name, type and
    /// timestamp, each node's name, unit and details — by `f` of it. For redaction: details
    /// carry JDBC URLs and credentials, and must be cleaned before anything (a summary, which
    /// cuts them short) is made of them.
    pub fn map_texts(&mut self, f: impl Fn(&str) -> String) {
        fn walk(nodes: &mut [HealthNode], f: &dyn Fn(&str) -> String) {
            for n in nodes {
                n.name = f(&n.name);
                for text in [&mut n.unit, &mut n.details].into_iter().flatten() {
                    *text = f(text);
                }
                walk(&mut n.children, f);
            }
        }
        for text in [&mut self.server, &mut self.server_type, &mut self.timestamp].into_iter().flatten() {
            *text = f(text);
        }
        walk(&mut self.sub_systems, &f);
    }

    /// The canonical JSON shape of docs/health-payloads.md, as the simulator serves it.
    pub fn to_canonical_json(&self) -> Value {
        let mut root = Map::new();
        if let Some(s) = &self.server {
            root.insert("server".into(), json!(s));
        }
        if let Some(t) = &self.server_type {
            root.insert("type".into(), json!(t));
        }
        root.insert("state".into(), json!(self.state.as_str()));
        if let Some(t) = &self.timestamp {
            root.insert("timestamp".into(), json!(t));
        }
        let subs: Vec<Value> = self.sub_systems.iter().map(|n| node_json(n, "sensors")).collect();
        root.insert("subSystems".into(), Value::Array(subs));
        Value::Object(root)
    }
}

/// Text on one line, at most `max_chars` characters (then `...`): control characters (a stack
/// trace's newlines) become spaces and runs of white space one space, so sensor details never
/// turn a log line, a probe answer or a termination message into many.
pub fn one_line(text: &str, max_chars: usize) -> String {
    let flat: Vec<&str> =
        text.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()).collect();
    let flat = flat.join(" ");
    match flat.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}...", &flat[..cut]),
        None => flat,
    }
}

const MAX_DETAILS_CHARS: usize = 160;

fn node_json(n: &HealthNode, children_key: &str) -> Value {
    let mut o = Map::new();
    o.insert("name".into(), json!(n.name));
    o.insert("state".into(), json!(n.state.as_str()));
    if let Some(v) = n.value {
        o.insert("value".into(), json!(v));
    }
    if let Some(u) = &n.unit {
        o.insert("unit".into(), json!(u));
    }
    if let Some(v) = n.amber_threshold {
        o.insert("amberThreshold".into(), json!(v));
    }
    if let Some(v) = n.red_threshold {
        o.insert("redThreshold".into(), json!(v));
    }
    if let Some(d) = &n.details {
        o.insert("details".into(), json!(d));
    }
    if !n.children.is_empty() {
        // Below a sensor the reference names no key; `components` is accepted at any depth.
        let kids = n.children.iter().map(|c| node_json(c, "components")).collect();
        o.insert(children_key.into(), Value::Array(kids));
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> HealthReport {
        HealthReport {
            server: Some("engineserver-0".into()),
            server_type: Some("EngineServer".into()),
            timestamp: None,
            state: State::Red,
            sub_systems: vec![
                HealthNode::new("System", State::Green)
                    .with_children(vec![HealthNode::new("MemoryUsage", State::Green).with_value(41.5)]),
                HealthNode::new("Calypso", State::Red).with_children(vec![
                    HealthNode::new("DataServerConnection", State::Red).with_details("lost"),
                    HealthNode::new("DatabaseConnection", State::Amber),
                ]),
            ],
        }
    }

    #[test]
    fn summary_names_deepest_causes_worst_first() {
        assert_eq!(
            report().summary(),
            "state RED (Calypso/DataServerConnection: RED 'lost'; Calypso/DatabaseConnection: AMBER)"
        );
    }

    #[test]
    fn summary_is_one_line_and_bounded() {
        let mut r = report();
        r.sub_systems[1].children[0].details = Some(format!("lost\n\tat x.y(Z.java:1)\n{}", "a".repeat(500)));
        let s = r.summary();
        assert!(!s.contains('\n') && !s.contains('\t'), "{s}");
        assert!(s.contains("'lost at x.y(Z.java:1) aaa"), "{s}");
        assert!(s.len() < 300, "{}", s.len());
    }

    #[test]
    fn signature_ignores_details_and_values() {
        let a = report();
        let mut b = report();
        b.sub_systems[1].children[0].details = Some("reconnect attempt 4/20".into());
        b.sub_systems[1].children[0].value = Some(7.0);
        assert_eq!(a.signature(), b.signature());
        assert_eq!(a.signature(), "RED Calypso/DataServerConnection=RED Calypso/DatabaseConnection=AMBER");
        b.sub_systems[1].children[1].state = State::Green;
        assert_ne!(a.signature(), b.signature());
    }

    #[test]
    fn map_texts_reaches_every_text() {
        let mut r = report();
        r.sub_systems[0].children[0].unit = Some("%".into());
        r.map_texts(|t| t.to_uppercase());
        assert_eq!(r.server.as_deref(), Some("ENGINESERVER-0"));
        assert_eq!(r.server_type.as_deref(), Some("ENGINESERVER"));
        assert_eq!(r.sub_systems[0].children[0].name, "MEMORYUSAGE");
        assert_eq!(r.sub_systems[0].children[0].unit.as_deref(), Some("%"));
        assert_eq!(r.sub_systems[1].children[0].details.as_deref(), Some("LOST"));
        assert_eq!(r.sub_systems[1].name, "CALYPSO");
    }

    #[test]
    fn summary_of_green_report() {
        let r = HealthReport { state: State::Green, sub_systems: vec![], ..report() };
        assert_eq!(r.summary(), "state GREEN");
    }

    #[test]
    fn canonical_json_shape() {
        let v = report().to_canonical_json();
        assert_eq!(v["state"], "RED");
        assert_eq!(v["type"], "EngineServer");
        assert_eq!(v["subSystems"][1]["sensors"][0]["name"], "DataServerConnection");
        assert_eq!(v["subSystems"][0]["sensors"][0]["value"], 41.5);
    }
}
