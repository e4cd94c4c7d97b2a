use super::*;
use crate::events::model::{EventSource, ObjectMeta, ObjectReference, Series};
use std::time::Duration;

fn event() -> Event {
    Event {
        metadata: ObjectMeta {
            name: Some("dataserver-0.17f0a".into()),
            namespace: Some("calypso-uat".into()),
            uid: Some("6f1c9a".into()),
            resource_version: Some("4711".into()),
            creation_timestamp: Some("2026-11-27T10:00:00Z".into()),
        },
        involved_object: ObjectReference {
            kind: Some("Pod".into()),
            name: Some("dataserver-0".into()),
            namespace: Some("calypso-uat".into()),
            uid: Some("pod-uid".into()),
            field_path: Some("spec.containers{calypso}".into()),
        },
        reason: Some("Unhealthy".into()),
        message: Some("Readiness probe failed: HTTP probe failed with statuscode: 503".into()),
        kind: Some("Warning".into()),
        count: Some(5),
        first_timestamp: Some("2026-11-27T10:00:00Z".into()),
        last_timestamp: Some("2026-11-27T10:02:00Z".into()),
        source: Some(EventSource { component: Some("kubelet".into()), host: Some("node-1".into()) }),
        ..Event::default()
    }
}

fn document(e: &Event) -> serde_json::Value {
    document_by(e, Some(&Redactor::new(Vec::new())))
}

fn document_by(e: &Event, redactor: Option<&Redactor>) -> serde_json::Value {
    let mut out = Vec::new();
    let now = || UNIX_EPOCH + Duration::from_millis(1_795_000_000_123);
    write(e, occurrence(e), &now, redactor, &mut out);
    serde_json::from_slice(&out).expect("the document is JSON")
}

#[test]
fn a_message_with_credentials_is_masked_and_tagged() {
    let mut e = event();
    let message = "Error: failed to pull image \"reg.bank/calypso:17\": https://robot:Pull-T0ken@reg.bank/v2/ \
                   unauthorized; Authorization: Basic cm9ib3Q6cHc=";
    e.message = Some(message.into());
    let d = document(&e);
    assert_eq!(
        d["message"],
        "Error: failed to pull image \"reg.bank/calypso:17\": https://robot:<redacted>@reg.bank/v2/ \
         unauthorized; Authorization: Basic <redacted>"
    );
    assert_eq!(d["tags"], serde_json::json!(["redacted"]));
    // Off: as written, untagged.
    let raw = document_by(&e, None);
    assert_eq!(raw["message"], message);
    assert!(raw.get("tags").is_none());
    // Nothing to mask: untagged.
    assert!(document(&event()).get("tags").is_none());
}

#[test]
fn the_occurrence_is_the_series_count_else_the_count_else_one() {
    let mut e = event();
    assert_eq!(occurrence(&e), 5);
    e.series = Some(Series { count: Some(7), last_observed_time: None });
    assert_eq!(occurrence(&e), 7);
    e.series = None;
    for (count, want) in [(None, 1), (Some(0), 1), (Some(-3), 1), (Some(1), 1)] {
        e.count = count;
        assert_eq!(occurrence(&e), want, "{count:?}");
    }
}

#[test]
fn ids_name_the_event_and_its_occurrence() {
    assert_eq!(document_id("6f1c9a", 5), "6f1c9a.5");
    assert_ne!(document_id("6f1c9a", 5), document_id("6f1c9a", 4));
    let mut e = event();
    assert_eq!(uid(&e), Some("6f1c9a"));
    e.metadata.uid = Some(String::new());
    assert_eq!(uid(&e), None);
}

#[test]
fn data_streams_are_per_namespace_and_valid_names() {
    assert_eq!(data_stream("calypso"), "logs-kubernetes.events-calypso");
    // `-` separates type, dataset and namespace: a namespace's own dashes become `_`.
    assert_eq!(data_stream("calypso-uat"), "logs-kubernetes.events-calypso_uat");
    let mut e = event();
    assert_eq!(namespace(&e), "calypso-uat");
    e.metadata.namespace = None;
    assert_eq!(namespace(&e), "calypso-uat", "the involved object's");
    e.involved_object.namespace = None;
    assert_eq!(namespace(&e), "default");
}

#[test]
fn the_timestamp_is_the_occurrences_own() {
    let mut e = event();
    assert_eq!(timestamp(&e), Some("2026-11-27T10:02:00Z"), "legacy: lastTimestamp");
    e.event_time = Some("2026-11-27T09:59:59.000001Z".into());
    assert_eq!(timestamp(&e), Some("2026-11-27T09:59:59.000001Z"));
    e.series = Some(Series { count: Some(3), last_observed_time: Some("2026-11-27T10:05:00.5Z".into()) });
    assert_eq!(timestamp(&e), Some("2026-11-27T10:05:00.5Z"), "a series: its last observation");
    e.series = None;
    e.event_time = None;
    e.last_timestamp = None;
    assert_eq!(timestamp(&e), Some("2026-11-27T10:00:00Z"), "firstTimestamp");
    e.first_timestamp = Some(String::new());
    e.metadata.creation_timestamp = Some("2026-11-27T08:00:00Z".into());
    assert_eq!(timestamp(&e), Some("2026-11-27T08:00:00Z"), "empty ones are skipped");
    e.metadata.creation_timestamp = None;
    assert_eq!(timestamp(&e), None);
}

#[test]
fn workloads_follow_the_controllers_naming() {
    for (kind, name, want) in [
        ("Pod", "dataserver-7d9f8b6c5-x2x9k", Some("dataserver")),
        ("Pod", "risk-engine-5c4d8f9b7b-q8w2z", Some("risk-engine")),
        // A random suffix of digits only is still a Deployment's, not an ordinal.
        ("Pod", "engine-5c4d8f9b7b-24567", Some("engine")),
        ("Pod", "dataserver-0", Some("dataserver")),
        ("Pod", "calculation-server-12", Some("calculation-server")),
        ("Pod", "standalone", Some("standalone")),
        // Vowels never appear in generated parts: a plain name is kept whole.
        ("Pod", "event-server-audit", Some("event-server-audit")),
        ("ReplicaSet", "engineserver-7d9f8b6c5", Some("engineserver")),
        ("ReplicaSet", "engineserver", Some("engineserver")),
        ("StatefulSet", "dataserver", Some("dataserver")),
        ("Deployment", "scheduler", Some("scheduler")),
        ("Node", "node-1", None),
        ("Pod", "", None),
    ] {
        assert_eq!(workload(kind, name), want, "{kind} {name}");
    }
}

#[test]
fn the_document_has_the_ecs_fields_of_the_occurrence() {
    let d = document(&event());
    assert_eq!(d["@timestamp"], "2026-11-27T10:02:00Z");
    assert_eq!(d["message"], "Readiness probe failed: HTTP probe failed with statuscode: 503");
    assert_eq!(d["event"], serde_json::json!({"kind": "event", "dataset": "kubernetes.events"}));
    assert_eq!(d["kubernetes"]["namespace"], "calypso-uat");
    let ev = &d["kubernetes"]["event"];
    assert_eq!(ev["reason"], "Unhealthy");
    assert_eq!(ev["type"], "Warning");
    assert_eq!(ev["count"], 5);
    assert_eq!(ev["reporting_controller"], "kubelet", "legacy source.component");
    assert_eq!(ev["name"], "dataserver-0.17f0a");
    assert!(ev.get("action").is_none() && ev.get("time_missing").is_none());
    assert_eq!(
        ev["involved_object"],
        serde_json::json!({"kind": "Pod", "name": "dataserver-0", "namespace": "calypso-uat", "uid": "pod-uid", "field_path": "spec.containers{calypso}"})
    );
    assert_eq!(d["service"]["name"], "dataserver");
    assert_eq!(
        d["data_stream"],
        serde_json::json!({"type": "logs", "dataset": "kubernetes.events", "namespace": "calypso_uat"})
    );
}

#[test]
fn absent_fields_are_left_out_and_odd_text_is_escaped() {
    let e = Event {
        metadata: ObjectMeta { uid: Some("u".into()), ..ObjectMeta::default() },
        involved_object: ObjectReference {
            kind: Some("Node".into()),
            name: Some("n1".into()),
            ..ObjectReference::default()
        },
        message: Some("quote \" backslash \\ newline \n tab \t bell \u{7}".into()),
        reporting_component: Some("karpenter".into()),
        action: Some("Drain".into()),
        ..Event::default()
    };
    let d = document(&e);
    assert_eq!(d["message"], "quote \" backslash \\ newline \n tab \t bell \u{7}");
    assert_eq!(d["@timestamp"], "2026-11-18T11:06:40.123Z", "no time of its own: now");
    let ev = &d["kubernetes"]["event"];
    assert_eq!(ev["time_missing"], true);
    assert_eq!(ev["count"], 1);
    assert_eq!(ev["action"], "Drain");
    assert_eq!(ev["reporting_controller"], "karpenter");
    assert_eq!(ev["involved_object"], serde_json::json!({"kind": "Node", "name": "n1"}));
    assert!(d.get("service").is_none(), "a Node belongs to no workload");
    assert_eq!(d["kubernetes"]["namespace"], "default");
}
