//! An occurrence of a Kubernetes Event as an ECS document, its `_id` and its data stream.
//!
//! A repeated Event is one object whose `count` (or `series.count`) grows: each state of it that
//! we see is one occurrence, and one document. The `_id` is made of the Event's uid and that
//! count, so every reader of the same occurrence — a relist, a retried request, a restart, a
//! second replica of the shipper — names the same document, and Elasticsearch answers the
//! repeats 409 (`create`): two replicas need no leader election.

use std::time::{SystemTime, UNIX_EPOCH};

use super::model::Event;
use crate::encode::{REDACTED_TAGS, json, name_part};
use crate::parse::write_unix_ms;
use crate::redaction::Redactor;

/// `event.dataset` and the middle of the data stream name.
pub const DATASET: &str = "kubernetes.events";

/// Which occurrence of its Event this state is: `series.count` (events.k8s.io writers), else
/// `count` (legacy writers), at least 1 (a first occurrence may carry neither).
pub fn occurrence(e: &Event) -> u64 {
    let series = e.series.as_ref().and_then(|s| s.count);
    series.or(e.count).and_then(|n| u64::try_from(n).ok()).filter(|n| *n > 0).unwrap_or(1)
}

/// The Event's uid, which the API server gives every object and never reuses; `None` for an
/// Event without one (no stable `_id` can be made for it: it is counted and skipped).
pub fn uid(e: &Event) -> Option<&str> {
    e.metadata.uid.as_deref().filter(|u| !u.is_empty())
}

/// `_id`: `<uid>.<occurrence>` — readable in Kibana, and what makes every reader agree.
pub fn document_id(uid: &str, occurrence: u64) -> String {
    format!("{uid}.{occurrence}")
}

/// The Event's namespace (an Event lives in its involved object's namespace; cluster-scoped
/// objects' Events in `default`).
pub fn namespace(e: &Event) -> &str {
    e.metadata
        .namespace
        .as_deref()
        .or(e.involved_object.namespace.as_deref())
        .filter(|n| !n.is_empty())
        .unwrap_or("default")
}

/// `logs-kubernetes.events-<namespace>`.
pub fn data_stream(namespace: &str) -> String {
    format!("logs-{DATASET}-{}", name_part(namespace, 100))
}

/// The time of this occurrence: the series' last observation for a series (its `eventTime` is
/// the first one), else `eventTime`, `lastTimestamp`, `firstTimestamp`, `creationTimestamp` —
/// the first that is set. `None` if none is.
pub fn timestamp(e: &Event) -> Option<&str> {
    let series = e.series.as_ref().and_then(|s| s.last_observed_time.as_deref());
    [series, e.event_time.as_deref(), e.last_timestamp.as_deref(), e.first_timestamp.as_deref()]
        .into_iter()
        .chain([e.metadata.creation_timestamp.as_deref()])
        .flatten()
        .find(|t| !t.is_empty())
}

/// A time as Unix milliseconds (0 before 1970).
pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The workload an involved object belongs to, by the controllers' naming conventions: a
/// Deployment's pod is `<deployment>-<pod-template-hash>-<5 chars>` and its ReplicaSet
/// `<deployment>-<hash>`, a StatefulSet's pod `<statefulset>-<ordinal>`; a Deployment,
/// StatefulSet, DaemonSet or Service is its own name. Other kinds (Node, ...) belong to none.
pub fn workload<'a>(kind: &str, name: &'a str) -> Option<&'a str> {
    let name = match kind {
        "Pod" => {
            if let Some(deployment) = strip_suffix(name, 5, 5).and_then(strip_hash) {
                return Some(deployment);
            }
            match name.rsplit_once('-') {
                Some((set, ordinal)) if !set.is_empty() && ordinal.bytes().all(|b| b.is_ascii_digit()) => set,
                _ => name,
            }
        }
        "ReplicaSet" => strip_hash(name).unwrap_or(name),
        "Deployment" | "StatefulSet" | "DaemonSet" | "Service" | "Job" | "CronJob" => name,
        _ => return None,
    };
    Some(name).filter(|n| !n.is_empty())
}

/// The characters Kubernetes writes generated name parts with (`rand.SafeEncodeString`: no
/// vowels, no 0, 1, 3, so that generated parts never spell words).
fn generated(b: u8) -> bool {
    b"bcdfghjklmnpqrstvwxz2456789".contains(&b)
}

/// `name` without a `-<generated part>` of `min..=max` characters at its end.
fn strip_suffix(name: &str, min: usize, max: usize) -> Option<&str> {
    let (head, tail) = name.rsplit_once('-')?;
    (!head.is_empty() && (min..=max).contains(&tail.len()) && tail.bytes().all(generated)).then_some(head)
}

/// `name` without a pod-template-hash (a 32-bit hash in decimal, each digit encoded: 6 to 10
/// characters in practice).
fn strip_hash(name: &str) -> Option<&str> {
    strip_suffix(name, 6, 10)
}

/// Writes the document of occurrence `occurrence` of `e` (the `_source`). An Event without any
/// time gets `now`, and `kubernetes.event.time_missing: true` says so. The message is masked by
/// `redactor` (`tags: ["redacted"]` when it masked something): a controller's message may quote a
/// URL or a command line with its credentials.
pub fn write(
    e: &Event,
    occurrence: u64,
    now: &dyn Fn() -> SystemTime,
    redactor: Option<&Redactor>,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(b"{\"@timestamp\":");
    let missing = match timestamp(e) {
        Some(t) => {
            json::string(out, t.as_bytes());
            false
        }
        None => {
            out.push(b'"');
            write_unix_ms(unix_ms(now()), out);
            out.push(b'"');
            true
        }
    };
    out.extend_from_slice(b",\"message\":");
    let message = e.message.as_deref().unwrap_or_default();
    let masked = redactor.and_then(|r| r.text(message));
    json::string(out, masked.as_deref().unwrap_or(message).as_bytes());
    if masked.is_some() {
        out.extend_from_slice(REDACTED_TAGS);
    }
    out.extend_from_slice(b",\"event\":{\"kind\":\"event\",\"dataset\":\"");
    out.extend_from_slice(DATASET.as_bytes());
    out.extend_from_slice(b"\"},\"kubernetes\":{\"namespace\":");
    let ns = namespace(e);
    json::string(out, ns.as_bytes());
    out.extend_from_slice(b",\"event\":{");
    let controller =
        e.reporting_component.as_deref().or(e.source.as_ref().and_then(|s| s.component.as_deref()));
    let mut fields = Fields::new(out);
    fields.str("name", e.metadata.name.as_deref());
    fields.str("reason", e.reason.as_deref());
    fields.str("type", e.kind.as_deref());
    fields.u64("count", occurrence);
    fields.str("action", e.action.as_deref());
    fields.str("reporting_controller", controller);
    if missing {
        fields.raw("time_missing", b"true");
    }
    let o = &e.involved_object;
    fields.open("involved_object");
    fields.str("kind", o.kind.as_deref());
    fields.str("name", o.name.as_deref());
    fields.str("namespace", o.namespace.as_deref());
    fields.str("uid", o.uid.as_deref());
    fields.str("field_path", o.field_path.as_deref());
    fields.close();
    let out = fields.done();
    out.extend_from_slice(b"}}");
    if let Some(service) = o.kind.as_deref().zip(o.name.as_deref()).and_then(|(k, n)| workload(k, n)) {
        out.extend_from_slice(b",\"service\":{\"name\":");
        json::string(out, service.as_bytes());
        out.push(b'}');
    }
    out.extend_from_slice(b",\"data_stream\":{\"type\":\"logs\",\"dataset\":\"");
    out.extend_from_slice(DATASET.as_bytes());
    out.extend_from_slice(b"\",\"namespace\":");
    json::string(out, name_part(ns, 100).as_bytes());
    out.extend_from_slice(b"}}");
}

/// Writes the members of a JSON object, leaving out the absent ones (and the commas with them).
struct Fields<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Fields<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Fields { out, first: true }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        json::key(self.out, key);
    }

    fn str(&mut self, key: &str, value: Option<&str>) {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            self.key(key);
            json::string(self.out, v.as_bytes());
        }
    }

    fn u64(&mut self, key: &str, value: u64) {
        self.key(key);
        json::u64(self.out, value);
    }

    fn raw(&mut self, key: &str, value: &[u8]) {
        self.key(key);
        self.out.extend_from_slice(value);
    }

    fn open(&mut self, key: &str) {
        self.key(key);
        self.out.push(b'{');
        self.first = true;
    }

    fn close(&mut self) {
        self.out.push(b'}');
        self.first = false;
    }

    fn done(self) -> &'a mut Vec<u8> {
        self.out
    }
}

#[cfg(test)]
mod tests;
