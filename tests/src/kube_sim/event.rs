//! The core/v1 `Event` as the API server encodes it: Go's field order and its rules for what is
//! omitted when empty (`omitempty` strings and counts) and what is written as `null` (a zero
//! `Time`, `MicroTime`), so the JSON a client reads is the JSON a real server sends.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `metav1.Time`: RFC 3339 in whole seconds (`2024-05-01T12:00:00Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Time(pub SystemTime);

/// `metav1.MicroTime`: RFC 3339 with six fractional digits (`2024-05-01T12:00:00.123456Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MicroTime(pub SystemTime);

impl Time {
    /// Now, truncated to the second as the API server stores it.
    pub fn now() -> Time {
        Time(truncate(SystemTime::now(), Duration::from_secs(1)))
    }
}

impl MicroTime {
    pub fn now() -> MicroTime {
        MicroTime(truncate(SystemTime::now(), Duration::from_micros(1)))
    }
}

fn truncate(t: SystemTime, unit: Duration) -> SystemTime {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let units = since.as_nanos() / unit.as_nanos();
    UNIX_EPOCH + Duration::from_nanos(u64::try_from(units * unit.as_nanos()).unwrap_or(u64::MAX))
}

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_seconds(self.0))
    }
}

impl Serialize for MicroTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_rfc3339_micros(self.0))
    }
}

fn parse_time<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_rfc3339_weak(s.trim_end_matches('Z'))
        .map_err(|e| serde::de::Error::custom(format!("{s:?} is not an RFC 3339 time: {e}")))
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Time, D::Error> {
        parse_time(d).map(|t| Time(truncate(t, Duration::from_secs(1))))
    }
}

impl<'de> Deserialize<'de> for MicroTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MicroTime, D::Error> {
        parse_time(d).map(|t| MicroTime(truncate(t, Duration::from_micros(1))))
    }
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// `metav1.ObjectMeta`, the part an Event uses. `creationTimestamp` is always written (`null`
/// when unset, as in a bookmark).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    #[serde(default)]
    pub creation_timestamp: Option<Time>,
}

/// `corev1.ObjectReference`: every field `omitempty`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReference {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field_path: String,
}

/// `corev1.EventSource`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSource {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub component: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
}

/// `corev1.EventSeries`: a repeated event of the new events API, counted here instead of in
/// `count`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSeries {
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: i32,
    pub last_observed_time: MicroTime,
}

/// A core/v1 Event, fields in Go's order. Serialized alone it is a list item (the API server
/// leaves `kind` and `apiVersion` out of list items); [`Typed`] adds them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub involved_object: ObjectReference,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default)]
    pub source: EventSource,
    #[serde(default)]
    pub first_timestamp: Option<Time>,
    #[serde(default)]
    pub last_timestamp: Option<Time>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: i32,
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub type_: String,
    #[serde(default)]
    pub event_time: Option<MicroTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<EventSeries>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub action: String,
    #[serde(default)]
    pub reporting_component: String,
    #[serde(default)]
    pub reporting_instance: String,
}

/// An object with its `kind` and `apiVersion`, as in a watch event or a single GET.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Typed<'a> {
    pub kind: &'static str,
    pub api_version: &'static str,
    #[serde(flatten)]
    pub event: &'a Event,
}

impl Event {
    pub fn typed(&self) -> Typed<'_> {
        Typed { kind: "Event", api_version: "v1", event: self }
    }

    /// What the API server sends as a bookmark's object: an otherwise empty Event carrying only
    /// `metadata.resourceVersion`, encoded as Go encodes the zero values around it.
    pub fn bookmark(resource_version: u64) -> Event {
        Event {
            metadata: ObjectMeta { resource_version: resource_version.to_string(), ..ObjectMeta::default() },
            ..Event::default()
        }
    }

    /// `namespace/name`.
    pub fn key(&self) -> Key {
        Key { namespace: self.metadata.namespace.clone(), name: self.metadata.name.clone() }
    }
}

/// Where an object lives; ordered as etcd orders the keys (by namespace, then name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// An Event as a test creates it. The server fills what the API server fills: `uid`,
/// `resourceVersion`, `creationTimestamp`, and — for an event without `eventTime` (the core/v1
/// recorder's kind) — `count` 1 and `firstTimestamp`/`lastTimestamp` now when not given. The
/// name defaults to `<involvedObject.name>.<16 hex digits>`, as the recorder names them.
pub type NewEvent = Event;

/// What an update changes; every field `None` means "one more occurrence": `count` + 1 (or
/// `series.count` + 1 for an event with a series) and `lastTimestamp` now.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventUpdate {
    pub count: Option<i32>,
    /// Sets `series.count` (creating the series, observed now, when there is none).
    pub series_count: Option<i32>,
    pub last_timestamp: Option<Time>,
    pub message: Option<String>,
}

impl EventUpdate {
    fn is_bump(&self) -> bool {
        *self == EventUpdate::default()
    }

    /// Applies the update to `event` (resourceVersion aside).
    pub fn apply(&self, event: &mut Event) {
        if self.is_bump() {
            match &mut event.series {
                Some(series) => {
                    series.count += 1;
                    series.last_observed_time = MicroTime::now();
                }
                None => event.count += 1,
            }
            if event.event_time.is_none() || event.last_timestamp.is_some() {
                event.last_timestamp = Some(Time::now());
            }
            return;
        }
        if let Some(count) = self.count {
            event.count = count;
        }
        if let Some(count) = self.series_count {
            match &mut event.series {
                Some(series) => {
                    series.count = count;
                    series.last_observed_time = MicroTime::now();
                }
                None => event.series = Some(EventSeries { count, last_observed_time: MicroTime::now() }),
            }
        }
        if let Some(t) = self.last_timestamp {
            event.last_timestamp = Some(t);
        }
        if let Some(message) = &self.message {
            event.message.clone_from(message);
        }
    }
}

/// A random UUID (version 4), as the API server gives every object.
pub fn new_uid() -> String {
    let b: [u8; 16] = rand::random();
    let hex = |r: std::ops::Range<usize>| b[r].iter().map(|x| format!("{x:02x}")).collect::<String>();
    // Version 4, variant 10xx.
    let version = format!("4{}", &hex(6..8)[1..]);
    let variant = format!("{:x}{}", 8 | (b[8] >> 4 & 0x3), &hex(8..10)[1..]);
    format!("{}-{}-{version}-{variant}-{}", hex(0..4), hex(4..6), hex(10..16))
}

/// The recorder's name for an event about `object`: `<object>.<16 hex digits>`.
pub fn new_name(object: &str) -> String {
    let n: u64 = rand::random();
    let object = if object.is_empty() { "event" } else { object };
    format!("{object}.{n:016x}")
}

/// Fills in what the API server fills in on create (resourceVersion aside).
pub fn fill_new(mut event: Event, namespace: Option<&str>) -> Event {
    if let Some(ns) = namespace {
        event.metadata.namespace = ns.to_owned();
    }
    if event.metadata.name.is_empty() {
        event.metadata.name = new_name(&event.involved_object.name);
    }
    event.metadata.uid = new_uid();
    event.metadata.creation_timestamp = Some(Time::now());
    if event.involved_object.namespace.is_empty() && event.involved_object.kind != "Node" {
        event.involved_object.namespace.clone_from(&event.metadata.namespace);
    }
    if event.event_time.is_none() {
        if event.count == 0 {
            event.count = 1;
        }
        let now = Time::now();
        event.first_timestamp.get_or_insert(now);
        event.last_timestamp.get_or_insert(now);
    }
    if event.type_.is_empty() {
        "Normal".clone_into(&mut event.type_);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_as_go_writes_them() {
        let t = UNIX_EPOCH + Duration::from_micros(1_714_564_800_123_456);
        assert_eq!(
            serde_json::to_value(Time(truncate(t, Duration::from_secs(1)))).unwrap(),
            "2024-05-01T12:00:00Z"
        );
        assert_eq!(serde_json::to_value(MicroTime(t)).unwrap(), "2024-05-01T12:00:00.123456Z");
        let back: MicroTime = serde_json::from_value(json!("2024-05-01T12:00:00.123456Z")).unwrap();
        assert_eq!(back, MicroTime(t));
        assert!(serde_json::from_value::<Time>(json!("yesterday")).is_err());
    }

    #[test]
    fn a_bookmark_is_an_empty_event_as_go_encodes_it() {
        let v = serde_json::to_value(Event::bookmark(42).typed()).unwrap();
        assert_eq!(
            v,
            json!({"kind": "Event", "apiVersion": "v1",
                   "metadata": {"resourceVersion": "42", "creationTimestamp": null},
                   "involvedObject": {}, "source": {}, "firstTimestamp": null, "lastTimestamp": null,
                   "eventTime": null, "reportingComponent": "", "reportingInstance": ""})
        );
    }

    #[test]
    fn a_new_event_is_filled_like_the_recorder_and_server_fill_it() {
        let e = fill_new(
            Event {
                involved_object: ObjectReference {
                    kind: "Pod".into(),
                    name: "dataserver-0".into(),
                    ..Default::default()
                },
                reason: "Unhealthy".into(),
                ..Default::default()
            },
            Some("calypso"),
        );
        assert!(
            e.metadata.name.starts_with("dataserver-0.")
                && e.metadata.name.len() == "dataserver-0.".len() + 16
        );
        assert_eq!(
            (e.count, e.type_.as_str(), e.involved_object.namespace.as_str()),
            (1, "Normal", "calypso")
        );
        assert!(e.first_timestamp.is_some() && e.first_timestamp == e.last_timestamp);
        let uid = &e.metadata.uid;
        assert_eq!((uid.len(), &uid[14..15]), (36, "4"), "{uid}");
        assert!("89ab".contains(&uid[19..20]), "{uid}");
        let v = serde_json::to_value(&e).unwrap();
        assert!(v.get("kind").is_none() && v["eventTime"].is_null() && v.get("series").is_none());
    }

    #[test]
    fn updates_bump_or_set() {
        let mut e = fill_new(Event::default(), Some("ns"));
        EventUpdate::default().apply(&mut e);
        assert_eq!(e.count, 2);
        EventUpdate { count: Some(5), message: Some("again".into()), ..Default::default() }.apply(&mut e);
        assert_eq!((e.count, e.message.as_str()), (5, "again"));
        EventUpdate { series_count: Some(2), ..Default::default() }.apply(&mut e);
        assert_eq!(e.series.as_ref().map(|s| s.count), Some(2));
        EventUpdate::default().apply(&mut e);
        assert_eq!((e.count, e.series.as_ref().map(|s| s.count)), (5, Some(3)));
        assert!(serde_json::from_value::<EventUpdate>(json!({"bogus": 1})).is_err());
    }
}
