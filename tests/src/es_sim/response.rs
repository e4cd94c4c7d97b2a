//! The JSON bodies of answers: the `_bulk` response (written directly, item by item, without a
//! `Value` tree), Elasticsearch's error envelope, cluster info.

use super::Flavour;
use super::store::{Item, Outcome, uuid_like};
use serde_json::{Value, json};

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
    use super::super::bulk::OpType;
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
