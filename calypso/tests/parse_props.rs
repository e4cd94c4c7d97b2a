//! Property tests of the tolerant health-payload parser: it never panics, and every accepted
//! spelling of a health tree reads back as the same tree.

use calypso::{HealthNode, HealthReport, State, parse_response};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn config() -> ProptestConfig {
    ProptestConfig { cases: 256, ..ProptestConfig::default() }
}

// ---- (a) never panics -------------------------------------------------------------------------

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("application/json".to_owned())),
        Just(Some("text/plain; charset=utf-8".to_owned())),
        Just(Some("text/html".to_owned())),
        ".{0,20}".prop_map(Some),
    ]
}

/// Bytes of every sort, but biased towards what gets deep into the parser: JSON-ish text.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        Just("{"),
        Just("}"),
        Just("["),
        Just("]"),
        Just(","),
        Just(":"),
        Just("\"state\""),
        Just("\"Status\""),
        Just("\"health\""),
        Just("\"subSystems\""),
        Just("\"COMPONENTS\""),
        Just("\"sensors\""),
        Just("\"name\""),
        Just("\"value\""),
        Just("\"details\""),
        Just("\"UP\""),
        Just("\"red\""),
        Just("\"x\""),
        Just("1.5"),
        Just("null"),
        Just(" "),
    ];
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        ".{0,64}".prop_map(String::into_bytes),
        prop::collection::vec(token, 0..64).prop_map(|t| t.concat().into_bytes()),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn never_panics(status in 100u16..600, ct in content_type(), body in body()) {
        match parse_response(status, ct.as_deref(), &body) {
            Ok(report) => {
                // The state is always explained by the tree or by the payload; nothing to
                // check beyond not panicking, but summarising must not panic either.
                let _ = report.summary();
            }
            Err(e) => {
                let message = e.to_string();
                prop_assert!(!message.is_empty() && !message.contains('\n'), "{message:?}");
            }
        }
    }
}

// ---- (b) every spelling reads back as the same tree -------------------------------------------

/// A node as generated: `state: None` means the payload leaves the state out.
#[derive(Debug, Clone)]
struct Node {
    name: String,
    state: Option<State>,
    value: Option<i32>,
    details: Option<String>,
    children: Vec<Node>,
    /// Drives every spelling choice for this node (see `Speller`).
    style: u64,
}

#[derive(Debug, Clone)]
struct Tree {
    server: Option<String>,
    state: Option<State>,
    status: u16,
    sub_systems: Vec<Node>,
    style: u64,
}

fn state() -> impl Strategy<Value = Option<State>> {
    prop_oneof![3 => prop::sample::select(State::ALL.to_vec()).prop_map(Some), 1 => Just(None)]
}

fn node() -> impl Strategy<Value = Node> {
    // Names without '-' so that `unique` can make siblings distinct with an index prefix.
    let leaf = (
        "[^-]{0,6}",
        state(),
        prop::option::of(-5000i32..5000),
        prop::option::of("[ -~]{0,12}"),
        any::<u64>(),
    )
        .prop_map(|(name, state, value, details, style)| Node {
            name,
            state,
            value,
            details,
            children: vec![],
            style,
        });
    leaf.prop_recursive(4, 48, 4, |inner| {
        (inner.clone(), prop::collection::vec(inner, 0..4)).prop_map(|(mut node, children)| {
            node.children = unique(children);
            node
        })
    })
}

fn tree() -> impl Strategy<Value = Tree> {
    (
        prop::option::of("[a-z0-9-]{1,12}"),
        state(),
        prop::sample::select(vec![200u16, 503]),
        prop::collection::vec(node(), 0..5),
        any::<u64>(),
    )
        .prop_map(|(server, state, status, subs, style)| Tree {
            server,
            state,
            status,
            sub_systems: unique(subs),
            style,
        })
}

/// Sibling names must differ: in the keyed-by-name form they are the keys of one object.
fn unique(mut nodes: Vec<Node>) -> Vec<Node> {
    for (i, n) in nodes.iter_mut().enumerate() {
        n.name = format!("{i}-{}", n.name);
    }
    nodes
}

/// A tiny deterministic generator of spelling choices from a node's `style`.
struct Speller(u64);

impl Speller {
    fn next(&mut self) -> u64 {
        // xorshift64*; seeded non-zero.
        let mut x = self.0 | 1;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11
    }

    fn pick<'a>(&mut self, choices: &[&'a str]) -> &'a str {
        let i = (self.next() % choices.len() as u64) as usize;
        choices[i]
    }

    fn coin(&mut self) -> bool {
        self.next().is_multiple_of(2)
    }

    /// Every letter in a random case.
    fn case(&mut self, word: &str) -> String {
        word.chars()
            .map(|c| if self.coin() { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
            .collect()
    }

    fn state_word(&mut self, state: State) -> String {
        let synonyms: &[&str] = match state {
            State::Green => &["GREEN", "OK", "UP"],
            State::Amber => &["AMBER", "YELLOW", "WARN", "WARNING", "UNKNOWN"],
            State::Red => &["RED", "DOWN", "OUT_OF_SERVICE", "CRITICAL"],
        };
        let word = self.pick(synonyms);
        self.case(word)
    }

    /// The state in one of the accepted places: `state`/`status`/`health` holding the word, or
    /// `health` holding an object with the word under a state key.
    fn put_state(&mut self, obj: &mut Map<String, Value>, state: State) {
        let word = Value::String(self.state_word(state));
        if self.next().is_multiple_of(5) {
            let inner_key = self.pick(&["state", "status"]);
            let mut inner = Map::new();
            inner.insert(self.case(inner_key), word);
            obj.insert(self.case("health"), Value::Object(inner));
        } else {
            let key = self.pick(&["state", "status", "health"]);
            obj.insert(self.case(key), word);
        }
    }

    fn put_children(&mut self, obj: &mut Map<String, Value>, children: &[Node], keys: &[&str]) {
        if children.is_empty() && self.coin() {
            return;
        }
        let key = self.pick(keys);
        let key = self.case(key);
        let container = if self.coin() {
            Value::Array(children.iter().map(|c| spell_node(c, true)).collect())
        } else {
            Value::Object(children.iter().map(|c| (c.name.clone(), spell_node(c, false))).collect())
        };
        obj.insert(key, container);
    }
}

const SUB_SYSTEM_KEYS: &[&str] = &["subSystems", "subsystems", "components", "children", "sensors", "checks"];
const SENSOR_KEYS: &[&str] = &["sensors", "checks", "components", "children", "subSystems"];

/// A node as JSON; `named` when it sits in an array (so carries its name inside).
fn spell_node(node: &Node, named: bool) -> Value {
    let mut s = Speller(node.style);
    let mut obj = Map::new();
    if named {
        let key = s.pick(&["name", "id"]);
        obj.insert(s.case(key), Value::String(node.name.clone()));
    }
    if let Some(state) = node.state {
        s.put_state(&mut obj, state);
    }
    if let Some(v) = node.value {
        // A number, or a string holding one.
        let v = if s.coin() { Value::from(v) } else { Value::String(v.to_string()) };
        obj.insert(s.case("value"), v);
    }
    if let Some(d) = &node.details {
        let key = s.pick(&["details", "message", "reason", "description"]);
        obj.insert(s.case(key), Value::String(d.clone()));
    }
    // An unknown field, which must be ignored.
    obj.insert(s.case("extra"), Value::from(1));
    s.put_children(&mut obj, &node.children, SENSOR_KEYS);
    Value::Object(obj)
}

fn spell_tree(tree: &Tree) -> Value {
    let mut s = Speller(tree.style);
    let mut obj = Map::new();
    if let Some(server) = &tree.server {
        let key = s.pick(&["server", "name", "serverName"]);
        obj.insert(s.case(key), Value::String(server.clone()));
    }
    if let Some(state) = tree.state {
        s.put_state(&mut obj, state);
    }
    s.put_children(&mut obj, &tree.sub_systems, SUB_SYSTEM_KEYS);
    Value::Object(obj)
}

/// What the parser must find: the given state, else the worst child's, else AMBER (unknown).
#[derive(Debug, PartialEq)]
struct Expected {
    name: String,
    state: State,
    value: Option<f64>,
    details: Option<String>,
    children: Vec<Expected>,
}

fn expected_nodes(nodes: &[Node]) -> Vec<Expected> {
    let mut out: Vec<Expected> = nodes.iter().map(expected_node).collect();
    // Children keyed by name come back in serde_json's map order, which is sorted by key unless
    // its `preserve_order` feature is on; sort both sides so either order passes.
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn expected_node(node: &Node) -> Expected {
    let children = expected_nodes(&node.children);
    let state = node.state.or_else(|| State::worst(children.iter().map(|c| c.state))).unwrap_or(State::Amber);
    Expected {
        name: node.name.clone(),
        state,
        value: node.value.map(f64::from),
        details: node.details.clone(),
        children,
    }
}

fn actual_nodes(nodes: &[HealthNode]) -> Vec<Expected> {
    let mut out: Vec<Expected> = nodes
        .iter()
        .map(|n| Expected {
            name: n.name.clone(),
            state: n.state,
            value: n.value,
            details: n.details.clone(),
            children: actual_nodes(&n.children),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn expected_root_state(tree: &Tree, subs: &[Expected]) -> State {
    let by_status = if tree.status == 200 { State::Green } else { State::Red };
    tree.state.or_else(|| State::worst(subs.iter().map(|c| c.state))).unwrap_or(by_status)
}

fn parse_back(tree: &Tree, content_type: Option<&str>) -> Result<HealthReport, TestCaseError> {
    let body = spell_tree(tree).to_string();
    parse_response(tree.status, content_type, body.as_bytes())
        .map_err(|e| TestCaseError::fail(format!("{e} for {body}")))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_spelling_reads_back_as_the_same_tree(
        tree in tree(),
        content_type in prop::sample::select(vec![None, Some("application/json"), Some("text/plain")]),
    ) {
        let report = parse_back(&tree, content_type)?;
        let subs = expected_nodes(&tree.sub_systems);
        prop_assert_eq!(report.state, expected_root_state(&tree, &subs));
        prop_assert_eq!(report.server.as_deref(), tree.server.as_deref());
        prop_assert_eq!(actual_nodes(&report.sub_systems), subs);
    }

    #[test]
    fn array_form_keeps_sibling_order(tree in tree()) {
        // The canonical shape (arrays everywhere) must keep the order the server chose.
        let report = parse_back(&tree, Some("application/json"))?;
        let again = parse_response(tree.status, None, report.to_canonical_json().to_string().as_bytes());
        prop_assert_eq!(again.ok(), Some(report));
    }
}
