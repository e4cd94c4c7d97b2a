//! The JSON bodies of answers: the `_bulk` response (written directly, item by item, without a
//! `Value` tree, also when `filter_path` trims it), Elasticsearch's error envelope, cluster info.

use super::Flavour;
use super::bulk::OpType;
use super::filter_path::FilterPath;
use super::store::{Item, Outcome, uuid_like};
use serde_json::{Map, Value, json};
use std::io::Write as _;

/// `{"took":N,"errors":bool,"items":[...]}`, items in request order.
pub fn bulk(took_ms: u64, items: &[Item]) -> Vec<u8> {
    let errors = items.iter().any(|i| matches!(i.outcome, Outcome::Failed { .. }));
    let mut out = Vec::with_capacity(64 + items.len() * 160);
    out.extend_from_slice(format!("{{\"took\":{took_ms},\"errors\":{errors},\"items\":[").as_bytes());
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(item.op.name().as_bytes());
        out.extend_from_slice(b"\":{\"_index\":");
        string(&mut out, &item.index);
        out.extend_from_slice(b",\"_id\":");
        match &item.id {
            Some(id) => string(&mut out, id),
            None => out.extend_from_slice(b"null"),
        }
        match &item.outcome {
            Outcome::Done { result, version, seq_no } => out.extend_from_slice(
                format!(
                    ",\"_version\":{version},\"result\":\"{result}\",\"_shards\":{{\"total\":2,\"successful\":1,\"failed\":0}},\"_seq_no\":{seq_no},\"_primary_term\":1,\"status\":{}}}}}",
                    item.status
                )
                .as_bytes(),
            ),
            Outcome::Failed { kind, reason } => {
                out.extend_from_slice(format!(",\"status\":{},\"error\":{{\"type\":\"{kind}\",\"reason\":", item.status).as_bytes());
                string(&mut out, reason);
                out.extend_from_slice(b",\"index_uuid\":");
                string(&mut out, &uuid_like(&item.index));
                out.extend_from_slice(b",\"shard\":\"0\",\"index\":");
                string(&mut out, &item.index);
                out.extend_from_slice(b"}}}");
            }
        }
    }
    out.extend_from_slice(b"]}");
    out
}

/// The fields of a bulk item, in the order [`bulk`] writes them, and those of its one nested
/// object (`_shards` when done, `error` when failed).
const DONE_FIELDS: [&str; 8] =
    ["_index", "_id", "_version", "result", "_shards", "_seq_no", "_primary_term", "status"];
const SHARDS_FIELDS: [&str; 3] = ["total", "successful", "failed"];
/// What [`bulk`] writes in `_shards`.
const SHARDS_VALUES: [u64; 3] = [2, 1, 0];
const FAILED_FIELDS: [&str; 4] = ["_index", "_id", "status", "error"];
const ERROR_FIELDS: [&str; 5] = ["type", "reason", "index_uuid", "shard", "index"];

/// [`bulk`] as `filter_path` trims it, still written directly: the shipper sends
/// `filter_path=errors,items.*.status,items.*.error` with every request, so this is the hot path
/// then. What a filter keeps depends only on field names, and every item of one kind (op type,
/// done or failed) has the same fields; so the filter runs once per kind, on a sample item
/// ([`ItemPlan::of`]), and the items are then written with the fields it kept. The result is
/// what [`FilterPath::apply`] gives on [`bulk`]'s answer (a unit test holds them equal).
pub fn bulk_filtered(took_ms: u64, items: &[Item], filter: &FilterPath) -> Vec<u8> {
    let errors = items.iter().any(|i| matches!(i.outcome, Outcome::Failed { .. }));
    let top = filter.apply(json!({"took": 0, "errors": false}));
    let mut out = Vec::with_capacity(64 + items.len() * 32);
    out.push(b'{');
    let mut first = true;
    if top.get("took").is_some() {
        key(&mut out, &mut first, "took");
        number(&mut out, took_ms);
    }
    if top.get("errors").is_some() {
        key(&mut out, &mut first, "errors");
        out.extend_from_slice(if errors { b"true" } else { b"false" });
    }
    // One plan per op type, done and failed.
    let mut plans: [Option<ItemPlan>; 8] = [None; 8];
    let mut open = false;
    for item in items {
        let failed = matches!(item.outcome, Outcome::Failed { .. });
        // An exhaustive match, so that a new op type cannot index past the plans.
        let op = match item.op {
            OpType::Index => 0,
            OpType::Create => 1,
            OpType::Update => 2,
            OpType::Delete => 3,
        };
        let kind = op * 2 + usize::from(failed);
        let plan = *plans[kind].get_or_insert_with(|| ItemPlan::of(filter, item.op, failed));
        if plan.fields == 0 {
            // Nothing of it is kept: Elasticsearch drops the item from the array.
            continue;
        }
        if open {
            out.push(b',');
        } else {
            key(&mut out, &mut first, "items");
            out.push(b'[');
            open = true;
        }
        filtered_item(&mut out, item, plan);
    }
    if open {
        out.push(b']');
    }
    out.push(b'}');
    out
}

/// Which fields of one kind of item a filter keeps: bit `i` of `fields` for the item's field
/// `i`, of `nested` for the nested object's.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ItemPlan {
    fields: u8,
    nested: u8,
}

impl ItemPlan {
    fn of(filter: &FilterPath, op: OpType, failed: bool) -> ItemPlan {
        let (fields, nested_name, nested): (&[&str], &str, &[&str]) = if failed {
            (&FAILED_FIELDS, "error", &ERROR_FIELDS)
        } else {
            (&DONE_FIELDS, "_shards", &SHARDS_FIELDS)
        };
        // Scalars where the item has scalars (their values do not matter to the filter).
        let object = |names: &[&str]| -> Map<String, Value> {
            names.iter().map(|n| ((*n).to_owned(), Value::from(0))).collect()
        };
        let mut sample = object(fields);
        sample.insert(nested_name.to_owned(), Value::Object(object(nested)));
        let kept = filter.apply(json!({"items": [{op.name(): sample}]}));
        let item = kept.get("items").and_then(|i| i.get(0)).and_then(|i| i.get(op.name()));
        let bits = |object: Option<&Value>, names: &[&str]| {
            names
                .iter()
                .enumerate()
                .filter(|(_, n)| object.and_then(|o| o.get(**n)).is_some())
                .fold(0, |b, (i, _)| b | 1 << i)
        };
        ItemPlan { fields: bits(item, fields), nested: bits(item.and_then(|i| i.get(nested_name)), nested) }
    }
}

fn filtered_item(out: &mut Vec<u8>, item: &Item, plan: ItemPlan) {
    let kept = |bits: u8, names: &'static [&'static str]| {
        names.iter().enumerate().filter(move |(i, _)| bits & (1 << i) != 0).map(|(_, n)| *n)
    };
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(item.op.name().as_bytes());
    out.extend_from_slice(b"\":{");
    let mut first = true;
    match &item.outcome {
        Outcome::Done { result, version, seq_no } => {
            for name in kept(plan.fields, &DONE_FIELDS) {
                key(out, &mut first, name);
                match name {
                    "_index" => string(out, &item.index),
                    "_id" => id(out, item.id.as_deref()),
                    "result" => string(out, result),
                    "_shards" => {
                        out.push(b'{');
                        let mut first = true;
                        for (j, sub) in SHARDS_FIELDS.iter().enumerate() {
                            if plan.nested & (1 << j) != 0 {
                                key(out, &mut first, sub);
                                number(out, SHARDS_VALUES[j]);
                            }
                        }
                        out.push(b'}');
                    }
                    "_version" => number(out, *version),
                    "_seq_no" => number(out, *seq_no),
                    "_primary_term" => number(out, 1),
                    _ => number(out, u64::from(item.status)),
                }
            }
        }
        Outcome::Failed { kind, reason } => {
            for name in kept(plan.fields, &FAILED_FIELDS) {
                key(out, &mut first, name);
                match name {
                    "_index" => string(out, &item.index),
                    "_id" => id(out, item.id.as_deref()),
                    "status" => number(out, u64::from(item.status)),
                    _ => {
                        out.push(b'{');
                        let mut first = true;
                        for sub in kept(plan.nested, &ERROR_FIELDS) {
                            key(out, &mut first, sub);
                            match sub {
                                "type" => string(out, kind),
                                "reason" => string(out, reason),
                                "index_uuid" => string(out, &uuid_like(&item.index)),
                                "shard" => string(out, "0"),
                                _ => string(out, &item.index),
                            }
                        }
                        out.push(b'}');
                    }
                }
            }
        }
    }
    out.extend_from_slice(b"}}");
}

/// `"name":`, after a comma unless it is the object's first key (names need no escaping).
fn key(out: &mut Vec<u8>, first: &mut bool, name: &str) {
    if !std::mem::take(first) {
        out.push(b',');
    }
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
}

fn number(out: &mut Vec<u8>, n: u64) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{n}");
}

fn id(out: &mut Vec<u8>, id: Option<&str>) {
    match id {
        Some(id) => string(out, id),
        None => out.extend_from_slice(b"null"),
    }
}

fn string(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Elasticsearch's error envelope.
pub fn error(status: u16, kind: &str, reason: &str) -> Value {
    json!({
        "error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason},
        "status": status
    })
}

/// `GET /`.
pub fn cluster_info(flavour: Flavour) -> Value {
    match flavour {
        Flavour::Elasticsearch => json!({
            "name": "es-sim-0",
            "cluster_name": "es-sim",
            "cluster_uuid": "ZXMtc2ltLWNsdXN0ZXIt",
            "version": {
                "number": "8.15.0",
                "build_flavor": "default",
                "build_type": "docker",
                "build_hash": "1a77947f34deddb41af25e6f0ddb8e830159c179",
                "build_date": "2024-08-05T10:05:34.233336849Z",
                "build_snapshot": false,
                "lucene_version": "9.11.1",
                "minimum_wire_compatibility_version": "7.17.0",
                "minimum_index_compatibility_version": "7.0.0"
            },
            "tagline": "You Know, for Search"
        }),
        Flavour::OpenSearch => json!({
            "name": "es-sim-0",
            "cluster_name": "es-sim",
            "cluster_uuid": "ZXMtc2ltLWNsdXN0ZXIt",
            "version": {
                "distribution": "opensearch",
                "number": "2.15.0",
                "build_type": "tar",
                "build_hash": "61dbcd0795c9bfe9b81e5762175414bc38bbcadf",
                "build_date": "2024-06-20T03:26:49.193630411Z",
                "build_snapshot": false,
                "lucene_version": "9.10.0",
                "minimum_wire_compatibility_version": "7.10.0",
                "minimum_index_compatibility_version": "7.0.0"
            },
            "tagline": "The OpenSearch Project: https://opensearch.org/"
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_items_in_order_with_errors() {
        let items = vec![
            Item {
                op: OpType::Create,
                index: "i".into(),
                id: Some("a\"1".into()),
                status: 201,
                outcome: Outcome::Done { result: "created", version: 1, seq_no: 0 },
            },
            Item {
                op: OpType::Create,
                index: "i".into(),
                id: Some("b".into()),
                status: 409,
                outcome: Outcome::Failed {
                    kind: "version_conflict_engine_exception",
                    reason: "[b]: conflict".into(),
                },
            },
        ];
        let body: Value = serde_json::from_slice(&bulk(3, &items)).expect("valid JSON");
        assert_eq!(body["took"], 3);
        assert_eq!(body["errors"], true);
        let first = &body["items"][0]["create"];
        assert_eq!(
            (first["_id"].as_str(), first["status"].as_u64(), first["result"].as_str()),
            (Some("a\"1"), Some(201), Some("created"))
        );
        assert_eq!(first["_version"], 1);
        let second = &body["items"][1]["create"];
        assert_eq!(second["status"], 409);
        assert_eq!(second["error"]["type"], "version_conflict_engine_exception");
        assert_eq!(second["error"]["reason"], "[b]: conflict");
        let ok: Value = serde_json::from_slice(&bulk(0, &items[..1])).expect("valid JSON");
        assert_eq!(ok["errors"], false);
    }

    fn mixed_items() -> Vec<Item> {
        let done = |op, id: Option<&str>, status, result| Item {
            op,
            index: "logs".into(),
            id: id.map(str::to_owned),
            status,
            outcome: Outcome::Done { result, version: 3, seq_no: 7 },
        };
        let failed = |op, id: &str, status, kind: &'static str| Item {
            op,
            index: ".ds-logs-a-b-2024.05.01-000001".into(),
            id: Some(id.into()),
            status,
            outcome: Outcome::Failed { kind, reason: format!("[{id}]: \"why\"") },
        };
        vec![
            done(OpType::Create, Some("a"), 201, "created"),
            failed(OpType::Create, "b", 409, "version_conflict_engine_exception"),
            done(OpType::Index, None, 200, "updated"),
            failed(OpType::Create, "c", 400, "document_parsing_exception"),
            failed(OpType::Index, "d", 429, "es_rejected_execution_exception"),
            done(OpType::Delete, Some("e"), 200, "deleted"),
            failed(OpType::Update, "f", 400, "illegal_argument_exception"),
            done(OpType::Create, Some("g"), 201, "created"),
        ]
    }

    #[test]
    fn the_filtered_writer_writes_what_the_filter_keeps() {
        let items = mixed_items();
        let whole: Value = serde_json::from_slice(&bulk(12, &items)).expect("valid JSON");
        for filter in [
            "errors,items.*.status,items.*.error",
            "items.*.error",
            "items.*.error.type,items.*.error.reason",
            "took",
            "-took",
            "-items",
            "items",
            "*",
            "**",
            "-**.reason",
            "items.create._id,items.index.status",
            "items.*._shards.total,items.*._seq_no",
            "-items.*._shards.*",
            "items.*._shards,-items.*._shards.total",
            "items.*.st*,-items.delete",
            "errors,-errors",
            "nothing",
            "items.*.error,-items.*.error.*",
        ] {
            let f = FilterPath::parse(filter).expect("a filter");
            let direct: Value = serde_json::from_slice(&bulk_filtered(12, &items, &f))
                .unwrap_or_else(|e| panic!("{filter}: not JSON: {e}"));
            assert_eq!(direct, f.apply(whole.clone()), "filter_path={filter}");
        }
        // What the shipper asks for, byte for byte.
        let f = FilterPath::parse("errors,items.*.status,items.*.error").expect("a filter");
        let two = [items[0].clone(), items[1].clone()];
        let index = ".ds-logs-a-b-2024.05.01-000001";
        assert_eq!(
            String::from_utf8(bulk_filtered(1, &two, &f)).expect("UTF-8"),
            format!(
                r#"{{"errors":true,"items":[{{"create":{{"status":201}}}},{{"create":{{"status":409,"error":{{"type":"version_conflict_engine_exception","reason":"[b]: \"why\"","index_uuid":"{}","shard":"0","index":"{index}"}}}}}}]}}"#,
                uuid_like(index)
            )
        );
        let ok = [items[0].clone()];
        let f = FilterPath::parse("errors,items.*.error").expect("a filter");
        assert_eq!(bulk_filtered(1, &ok, &f), br#"{"errors":false}"#);
    }

    #[test]
    fn flavours() {
        assert_eq!(
            cluster_info(Flavour::Elasticsearch)["version"]["number"].as_str().map(|v| v.starts_with("8.")),
            Some(true)
        );
        assert_eq!(cluster_info(Flavour::OpenSearch)["version"]["distribution"], "opensearch");
        assert_eq!(error(404, "x", "y")["error"]["root_cause"][0]["type"], "x");
    }
}
