//! `agent-logship setup`: prepares the cluster for our data streams, like `filebeat setup`.
//! Detects the flavour (`GET /`: Elasticsearch says so in `X-Elastic-Product`, OpenSearch in
//! `version.distribution`), then installs — idempotently — the index templates `logs-calypso` for
//! `logs-calypso.*-*` (the log files) and `logs-kubernetes.events` for `logs-kubernetes.events-*`
//! (the Events), with `data_stream: {}` and ECS mappings for the fields the encoders write, and,
//! when asked, a retention policy for both (ILM on Elasticsearch, ISM on OpenSearch). OpenSearch
//! has no built-in `logs-*-*` template: without these, data streams do not exist there.
//!
//! Idempotence: each object we install carries a hash of its own content (`_meta.hash`, or in an
//! ISM policy's description, which has no `_meta`); an existing object with the same hash is left
//! alone ("unchanged"), another one is replaced ("updated").

use std::fmt;

use reqwest::Method;
use serde_json::{Value, json};

use crate::sink::client::{Answer, Body, EsClient, SendError};

/// The log files' template's and the policies' name.
pub const NAME: &str = "logs-calypso";
/// The data streams the template covers (`logs-calypso.<component>-<namespace>`).
pub const PATTERN: &str = "logs-calypso.*-*";
/// The Events' template (`logs-kubernetes.events-<namespace>`).
pub const EVENTS_NAME: &str = "logs-kubernetes.events";
pub const EVENTS_PATTERN: &str = "logs-kubernetes.events-*";
/// The dead letters' template (`logs-agent_logship.dead_letter-<namespace>`).
pub const DEAD_LETTER_NAME: &str = "logs-agent_logship.dead_letter";
pub const DEAD_LETTER_PATTERN: &str = "logs-agent_logship.dead_letter-*";
/// Above Elasticsearch's built-in `logs` template (100) so ours wins for our data streams.
pub const PRIORITY: u32 = 200;

/// What `setup` is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetupOptions {
    /// Delete documents after this many days (ILM / ISM policy); `None`: no policy installed.
    pub retention_days: Option<u32>,
    /// An OpenSearch Serverless collection: OpenSearch without `GET /` (the flavour is known)
    /// and without ISM (the configuration refuses a retention).
    pub serverless: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flavour {
    Elasticsearch { version: String },
    OpenSearch { version: String },
}

impl fmt::Display for Flavour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Flavour::Elasticsearch { version } => write!(f, "Elasticsearch {version}"),
            Flavour::OpenSearch { version } => write!(f, "OpenSearch {version}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Unchanged,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Unchanged => "unchanged",
        })
    }
}

/// What `setup` did, for the binary to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub flavour: Flavour,
    /// (object, what happened), e.g. ("index template logs-calypso", Created).
    pub objects: Vec<(String, Change)>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "cluster: {}", self.flavour)?;
        for (what, change) in &self.objects {
            writeln!(f, "{what}: {change}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Send(#[from] SendError),
    #[error("{what}: HTTP {status}: {reason}")]
    Status { what: String, status: u16, reason: String },
    #[error("{what}: the answer is not what Elasticsearch/OpenSearch sends")]
    Unreadable { what: String },
    #[error(
        "the cluster is neither Elasticsearch nor OpenSearch (no X-Elastic-Product header, no version.distribution)"
    )]
    UnknownFlavour,
}

impl SetupError {
    /// Whether the cluster could not be reached (exit 69) rather than refused (exit 65/64).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, SetupError::Send(_))
            || matches!(self, SetupError::Status { status, .. } if *status == 429 || *status >= 500)
    }
}

/// Runs `setup` against the cluster.
pub async fn setup(client: &EsClient, opts: &SetupOptions) -> Result<Report, SetupError> {
    let flavour = if opts.serverless {
        Flavour::OpenSearch { version: "Serverless".into() }
    } else {
        let root = call(client, Method::GET, "", None).await?;
        if root.status != 200 {
            return Err(status_error("GET /", &root));
        }
        let product = root.headers.get("x-elastic-product").and_then(|v| v.to_str().ok());
        let info: Value = serde_json::from_slice(&root.body)
            .map_err(|_| SetupError::Unreadable { what: "GET /".into() })?;
        flavour(product, &info)?
    };
    let mut objects = Vec::new();
    let es = matches!(flavour, Flavour::Elasticsearch { .. });
    if let Some(days) = opts.retention_days {
        let change = if es {
            put_if_changed(client, &format!("_ilm/policy/{NAME}"), ilm_policy(days), Existing::Ilm).await?
        } else {
            put_if_changed(client, &format!("_plugins/_ism/policies/{NAME}"), ism_policy(days), Existing::Ism)
                .await?
        };
        let kind = if es { "ILM policy" } else { "ISM policy" };
        objects.push((format!("{kind} {NAME} (delete after {days} days)"), change));
    }
    let with_ilm = es && opts.retention_days.is_some();
    for (name, pattern, template) in [
        (NAME, PATTERN, index_template(&flavour, with_ilm)),
        (EVENTS_NAME, EVENTS_PATTERN, events_template(&flavour, with_ilm)),
        (DEAD_LETTER_NAME, DEAD_LETTER_PATTERN, dead_letter_template(&flavour, with_ilm)),
    ] {
        let change =
            put_if_changed(client, &format!("_index_template/{name}"), template, Existing::Template).await?;
        objects.push((format!("index template {name} ({pattern}, priority {PRIORITY})"), change));
    }
    Ok(Report { flavour, objects })
}

/// Tells Elasticsearch from OpenSearch by what `GET /` answered.
pub fn flavour(product_header: Option<&str>, info: &Value) -> Result<Flavour, SetupError> {
    let version = info["version"]["number"].as_str().unwrap_or("unknown").to_string();
    if info["version"]["distribution"].as_str() == Some("opensearch") {
        return Ok(Flavour::OpenSearch { version });
    }
    if product_header == Some("Elasticsearch") {
        return Ok(Flavour::Elasticsearch { version });
    }
    // Elasticsearch before 7.14 sent no header; its tagline says who it is.
    if info["tagline"].as_str() == Some("You Know, for Search") && info["version"]["number"].is_string() {
        return Ok(Flavour::Elasticsearch { version });
    }
    Err(SetupError::UnknownFlavour)
}

fn keyword() -> Value {
    json!({"type": "keyword", "ignore_above": 1024})
}

/// match_only_text (ES 7.14+) indexes no positions/frequencies: half the size for log
/// messages, phrase queries still work. OpenSearch has no such type.
fn message_type(es: bool) -> Value {
    if es { json!({"type": "match_only_text"}) } else { json!({"type": "text"}) }
}

/// Whether fields a template does not name are mapped as they come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dynamic {
    On,
    /// Kept in `_source`, never mapped: no value can be refused for its type.
    Off,
}

/// A data stream template for `pattern` with `properties` (strings under `kubernetes.*` are
/// keywords), the retention policy attached when asked, and the hash of its content in `_meta`.
fn template(pattern: &str, properties: Value, with_ilm: bool, dynamic: Dynamic) -> Value {
    let mut settings = json!({});
    if with_ilm {
        settings["index.lifecycle.name"] = json!(NAME);
    }
    let mut mappings = json!({
        "dynamic_templates": [
            {"kubernetes_keywords": {"path_match": "kubernetes.*", "match_mapping_type": "string", "mapping": keyword()}}
        ],
        "properties": properties
    });
    if dynamic == Dynamic::Off {
        mappings["dynamic"] = json!(false);
    }
    let body = json!({
        "index_patterns": [pattern],
        "data_stream": {},
        "priority": PRIORITY,
        "template": {"settings": settings, "mappings": mappings}
    });
    with_meta(body)
}

/// The log files' index template.
pub fn index_template(flavour: &Flavour, with_ilm: bool) -> Value {
    let es = matches!(flavour, Flavour::Elasticsearch { .. });
    let kw = keyword;
    // wildcard (ES 7.9+) finds substrings of long stack traces; OpenSearch 2.15+ has it too,
    // but older ones do not: text works everywhere.
    let stack = if es { json!({"type": "wildcard"}) } else { json!({"type": "text"}) };
    let properties = json!({
            "@timestamp": {"type": "date"},
            "message": message_type(es),
            "log": {"properties": {
                "level": kw(),
                "logger": kw(),
                "offset": {"type": "long"},
                "flags": kw(),
                "file": {"properties": {"path": kw()}}
            }},
            "process": {"properties": {"thread": {"properties": {"name": kw()}}}},
            "service": {"properties": {"name": kw()}},
            "event": {"properties": {"dataset": kw()}},
            // Only with AGENT_LOGSHIP_ES_DOCUMENT_IDS=server: the record's id, to find copies.
            "agent_logship": {"properties": {"id": kw()}},
            "host": {"properties": {"name": kw()}},
            "kubernetes": {"properties": {
                "namespace": kw(),
                "pod": {"properties": {"name": kw()}},
                "node": {"properties": {"name": kw()}},
                "container": {"properties": {"name": kw()}}
            }},
            "error": {"properties": {
                "type": kw(),
                "message": {"type": "text"},
                "stack_trace": stack
            }},
            "calypso": {"properties": {"environment": kw()}},
            // `redacted` on documents whose credentials were masked: an auditor's filter.
            "tags": kw()
    });
    template(PATTERN, properties, with_ilm, Dynamic::On)
}

/// The Events' index template (the fields of `events::document`).
pub fn events_template(flavour: &Flavour, with_ilm: bool) -> Value {
    let es = matches!(flavour, Flavour::Elasticsearch { .. });
    let kw = keyword;
    let properties = json!({
        "@timestamp": {"type": "date"},
        "message": message_type(es),
        "tags": kw(),
        "event": {"properties": {"kind": kw(), "dataset": kw()}},
        "agent_logship": {"properties": {"id": kw()}},
        "service": {"properties": {"name": kw()}},
        "kubernetes": {"properties": {
            "namespace": kw(),
            "event": {"properties": {
                "name": kw(),
                "reason": kw(),
                "type": kw(),
                "count": {"type": "long"},
                "action": kw(),
                "reporting_controller": kw(),
                "time_missing": {"type": "boolean"},
                "involved_object": {"properties": {
                    "kind": kw(), "name": kw(), "namespace": kw(), "uid": kw(), "field_path": kw()
                }}
            }}
        }}
    });
    template(EVENTS_PATTERN, properties, with_ilm, Dynamic::On)
}

/// The dead letters' index template: `dynamic: false`, so that no field of a dead letter can be
/// refused (an unmapped one is kept in `_source`, not indexed), and the original document as a
/// keyword that is neither indexed nor in doc values: any length, any content, kept as text.
pub fn dead_letter_template(flavour: &Flavour, with_ilm: bool) -> Value {
    let es = matches!(flavour, Flavour::Elasticsearch { .. });
    let kw = keyword;
    let properties = json!({
        "@timestamp": {"type": "date"},
        "message": message_type(es),
        "error": {"properties": {"type": kw(), "message": {"type": "text"}}},
        "event": {"properties": {
            "original": {"type": "keyword", "index": false, "doc_values": false},
            "dataset": kw()
        }},
        "agent_logship": {"properties": {
            "dead_letter": {"properties": {"index": kw(), "id": kw(), "status": {"type": "long"}}},
            // Only with AGENT_LOGSHIP_ES_DOCUMENT_IDS=server, as in the other templates.
            "id": kw()
        }},
        "data_stream": {"properties": {"type": kw(), "dataset": kw(), "namespace": kw()}}
    });
    template(DEAD_LETTER_PATTERN, properties, with_ilm, Dynamic::Off)
}

/// ILM: roll over at 50gb per primary shard or 30 days, delete `days` after rollover.
pub fn ilm_policy(days: u32) -> Value {
    let policy = json!({
        "phases": {
            "hot": {"actions": {"rollover": {"max_primary_shard_size": "50gb", "max_age": "30d"}}},
            "delete": {"min_age": format!("{days}d"), "actions": {"delete": {}}}
        }
    });
    json!({"policy": with_meta(policy)})
}

/// ISM: the same on OpenSearch, attached to new backing indices by `ism_template`.
pub fn ism_policy(days: u32) -> Value {
    let policy = json!({
        "default_state": "hot",
        "states": [
            {"name": "hot",
             "actions": [{"rollover": {"min_primary_shard_size": "50gb", "min_index_age": "30d"}}],
             "transitions": [{"state_name": "delete", "conditions": {"min_index_age": format!("{days}d")}}]},
            {"name": "delete", "actions": [{"delete": {}}], "transitions": []}
        ],
        // Backing indices of data streams are `.ds-<stream>-<generation>`.
        "ism_template": [{
            "index_patterns": [
                PATTERN, format!(".ds-{PATTERN}"),
                EVENTS_PATTERN, format!(".ds-{EVENTS_PATTERN}"),
                DEAD_LETTER_PATTERN, format!(".ds-{DEAD_LETTER_PATTERN}")
            ],
            "priority": PRIORITY
        }]
    });
    let h = hash(&policy);
    let mut policy = policy;
    policy["description"] = json!(format!(
        "agent-logship retention for {PATTERN}, {EVENTS_PATTERN} and {DEAD_LETTER_PATTERN} (hash {h})"
    ));
    json!({"policy": policy})
}

/// Adds `_meta: {managed_by, hash}` to an object; the hash covers everything else.
fn with_meta(mut v: Value) -> Value {
    let h = hash(&v);
    v["_meta"] = json!({"managed_by": "agent-logship", "hash": h});
    v
}

/// A stable hash of a JSON value (serde_json's maps are sorted: the same content, the same text).
fn hash(v: &Value) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(v.to_string().as_bytes()))
}

/// Where an existing object keeps our hash, and what an update needs.
#[derive(Debug, Clone, Copy)]
enum Existing {
    Template,
    Ilm,
    Ism,
}

/// What we know of an object already in the cluster.
#[derive(Debug, PartialEq, Eq)]
struct Found {
    hash: Option<String>,
    /// ISM updates need the document's sequence number and primary term.
    ism_version: Option<(u64, u64)>,
}

fn found(kind: Existing, v: &Value) -> Found {
    let s = |v: &Value| v.as_str().map(str::to_string);
    match kind {
        Existing::Template => {
            Found { hash: s(&v["index_templates"][0]["index_template"]["_meta"]["hash"]), ism_version: None }
        }
        Existing::Ilm => Found { hash: s(&v[NAME]["policy"]["_meta"]["hash"]), ism_version: None },
        Existing::Ism => Found {
            hash: v["policy"]["description"]
                .as_str()
                .and_then(|d| d.rsplit_once("(hash "))
                .map(|(_, h)| h.trim_end_matches(')').to_string()),
            ism_version: v["_seq_no"].as_u64().zip(v["_primary_term"].as_u64()),
        },
    }
}

fn desired_hash(kind: Existing, desired: &Value) -> Option<String> {
    found(
        kind,
        &match kind {
            Existing::Template => json!({"index_templates": [{"index_template": desired}]}),
            Existing::Ilm => json!({ NAME: desired }),
            Existing::Ism => desired.clone(),
        },
    )
    .hash
}

async fn put_if_changed(
    client: &EsClient,
    path: &str,
    desired: Value,
    kind: Existing,
) -> Result<Change, SetupError> {
    let got = call(client, Method::GET, path, None).await?;
    let existing = match got.status {
        404 => None,
        200 => {
            let v: Value = serde_json::from_slice(&got.body)
                .map_err(|_| SetupError::Unreadable { what: format!("GET {path}") })?;
            Some(found(kind, &v))
        }
        _ => return Err(status_error(&format!("GET {path}"), &got)),
    };
    if let Some(f) = &existing
        && f.hash.is_some()
        && f.hash == desired_hash(kind, &desired)
    {
        return Ok(Change::Unchanged);
    }
    let put_path = match existing.as_ref().and_then(|f| f.ism_version) {
        Some((seq, term)) => format!("{path}?if_seq_no={seq}&if_primary_term={term}"),
        None => path.to_string(),
    };
    let body = Body { bytes: desired.to_string().into(), content_type: "application/json", gzip: false };
    let put = call(client, Method::PUT, &put_path, Some(&body)).await?;
    if !(200..300).contains(&put.status) {
        return Err(status_error(&format!("PUT {path}"), &put));
    }
    Ok(if existing.is_some() { Change::Updated } else { Change::Created })
}

/// One request, trying each configured URL once while they cannot be reached.
async fn call(
    client: &EsClient,
    method: Method,
    path: &str,
    body: Option<&Body>,
) -> Result<Answer, SetupError> {
    let mut last = None;
    for _ in 0..client.url_count() {
        match client.send(method.clone(), path, body).await {
            Ok(a) => return Ok(a),
            // `send` moved to the next URL already.
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => SetupError::Send(e),
        None => SetupError::Unreadable { what: path.to_string() },
    })
}

fn status_error(what: &str, a: &Answer) -> SetupError {
    let reason = crate::sink::classify::refusal(a.status, &a.body).reason;
    SetupError::Status { what: what.to_string(), status: a.status, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavours() {
        let es = json!({"name":"es-0","cluster_name":"c","version":{"number":"8.13.4","build_flavor":"default"},"tagline":"You Know, for Search"});
        assert_eq!(
            flavour(Some("Elasticsearch"), &es).expect("es"),
            Flavour::Elasticsearch { version: "8.13.4".into() }
        );
        assert_eq!(flavour(None, &es).expect("old es"), Flavour::Elasticsearch { version: "8.13.4".into() });
        let os = json!({"name":"os-0","version":{"distribution":"opensearch","number":"2.13.0"},"tagline":"The OpenSearch Project: https://opensearch.org/"});
        assert_eq!(flavour(None, &os).expect("os"), Flavour::OpenSearch { version: "2.13.0".into() });
        assert!(matches!(flavour(None, &json!({"hello":"world"})), Err(SetupError::UnknownFlavour)));
    }

    #[test]
    fn template_per_flavour() {
        let es = index_template(&Flavour::Elasticsearch { version: "8".into() }, true);
        assert_eq!(es["index_patterns"][0], PATTERN);
        assert_eq!(es["data_stream"], json!({}));
        assert_eq!(es["priority"], 200);
        assert_eq!(es["template"]["settings"]["index.lifecycle.name"], NAME);
        let p = &es["template"]["mappings"]["properties"];
        assert_eq!(p["message"]["type"], "match_only_text");
        assert_eq!(p["error"]["properties"]["stack_trace"]["type"], "wildcard");
        assert_eq!(p["log"]["properties"]["offset"]["type"], "long");
        assert_eq!(p["kubernetes"]["properties"]["pod"]["properties"]["name"]["type"], "keyword");
        assert_eq!(p["tags"]["type"], "keyword", "tags: [redacted] is an auditor's filter");
        let os = index_template(&Flavour::OpenSearch { version: "2".into() }, false);
        let p = &os["template"]["mappings"]["properties"];
        assert_eq!(p["message"]["type"], "text");
        assert!(os["template"]["settings"].get("index.lifecycle.name").is_none());
        assert_ne!(es["_meta"]["hash"], os["_meta"]["hash"]);
    }

    #[test]
    fn the_events_template_maps_what_the_events_documents_hold() {
        let es = events_template(&Flavour::Elasticsearch { version: "8".into() }, true);
        assert_eq!(es["index_patterns"], json!([EVENTS_PATTERN]));
        assert_eq!((&es["data_stream"], &es["priority"]), (&json!({}), &json!(200)));
        assert_eq!(es["template"]["settings"]["index.lifecycle.name"], NAME, "the same retention");
        let ev = &es["template"]["mappings"]["properties"]["kubernetes"]["properties"]["event"]["properties"];
        assert_eq!(ev["count"]["type"], "long");
        assert_eq!(ev["reason"]["type"], "keyword");
        assert_eq!(ev["involved_object"]["properties"]["uid"]["type"], "keyword");
        assert_eq!(ev["time_missing"]["type"], "boolean");
        // Every field the encoder writes has a mapping here.
        let mut doc = Vec::new();
        let e: crate::events::model::Event = serde_json::from_str(
            r#"{"metadata":{"name":"n","namespace":"ns","uid":"u"},"involvedObject":{"kind":"Pod","name":"engine-0","namespace":"ns","uid":"p","fieldPath":"spec"},"reason":"R","message":"m password=x","type":"Normal","count":2,"action":"A","reportingComponent":"kubelet"}"#,
        )
        .expect("event");
        // A message with a credential: its document is tagged too.
        let redactor = crate::redaction::Redactor::new(Vec::new());
        crate::events::document::write(&e, 2, &std::time::SystemTime::now, Some(&redactor), &mut doc);
        let doc: Value = serde_json::from_slice(&doc).expect("json");
        // (data_stream.* as in the log files' template: the stream's own.)
        for path in leaves(&doc, String::new()).iter().filter(|p| !p.starts_with("data_stream.")) {
            let mut at = &es["template"]["mappings"];
            for part in path.split('.') {
                at = &at["properties"][part];
            }
            assert!(at["type"].is_string(), "{path} has no mapping");
        }
        let ism = ism_policy(7);
        assert!(ism["policy"]["ism_template"][0]["index_patterns"].to_string().contains(EVENTS_PATTERN));
    }

    /// The dotted paths of a JSON object's leaves.
    fn leaves(v: &Value, prefix: String) -> Vec<String> {
        match v.as_object() {
            Some(map) => map
                .iter()
                .flat_map(|(k, v)| {
                    leaves(v, if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") })
                })
                .collect(),
            None => vec![prefix],
        }
    }

    #[test]
    fn hashes_are_stable_and_found_back() {
        let a = index_template(&Flavour::OpenSearch { version: "2".into() }, false);
        let b = index_template(&Flavour::OpenSearch { version: "2.1".into() }, false);
        assert_eq!(a, b, "the version does not enter the template");
        // As the cluster returns them.
        let stored = json!({"index_templates": [{"name": NAME, "index_template": a.clone()}]});
        assert_eq!(found(Existing::Template, &stored).hash, desired_hash(Existing::Template, &a));
        let ilm = ilm_policy(30);
        let stored = json!({ NAME: {"version": 1, "modified_date": "x", "policy": ilm["policy"].clone()} });
        assert_eq!(found(Existing::Ilm, &stored).hash, desired_hash(Existing::Ilm, &ilm));
        assert_ne!(desired_hash(Existing::Ilm, &ilm), desired_hash(Existing::Ilm, &ilm_policy(31)));
        let ism = ism_policy(30);
        let mut stored = json!({"_id": NAME, "_version": 1, "_seq_no": 7, "_primary_term": 1, "policy": ism["policy"].clone()});
        stored["policy"]["policy_id"] = json!(NAME);
        let f = found(Existing::Ism, &stored);
        assert_eq!(f.hash, desired_hash(Existing::Ism, &ism));
        assert_eq!(f.ism_version, Some((7, 1)));
        assert_eq!(ilm["policy"]["phases"]["delete"]["min_age"], "30d");
        assert_eq!(ism["policy"]["states"][0]["transitions"][0]["conditions"]["min_index_age"], "30d");
    }
}
