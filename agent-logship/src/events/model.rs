//! What we read of the Kubernetes API's answers: core/v1 `Event`s, `EventList` pages, watch
//! stream lines and `Status` errors. Only the fields the documents and the protocol need; every
//! one optional, so an API server that leaves one out (or a newer one that adds others) never
//! stops the shipping of the rest.

use serde::Deserialize;

/// A core/v1 Event (`kubectl get events -o json` shows the same names).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Event {
    pub metadata: ObjectMeta,
    pub involved_object: ObjectReference,
    pub reason: Option<String>,
    pub message: Option<String>,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Occurrences so far (the legacy way; `series.count` in the newer one).
    pub count: Option<i64>,
    pub first_timestamp: Option<String>,
    pub last_timestamp: Option<String>,
    /// MicroTime of the first occurrence (events.k8s.io writers set it; legacy ones leave null).
    pub event_time: Option<String>,
    pub series: Option<Series>,
    pub action: Option<String>,
    pub reporting_component: Option<String>,
    pub source: Option<EventSource>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectMeta {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub creation_timestamp: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectReference {
    pub kind: Option<String>,
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub uid: Option<String>,
    pub field_path: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Series {
    pub count: Option<i64>,
    pub last_observed_time: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct EventSource {
    pub component: Option<String>,
    pub host: Option<String>,
}

/// One page of a LIST.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EventList {
    pub metadata: ListMeta,
    pub items: Vec<Event>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ListMeta {
    pub resource_version: Option<String>,
    /// The token for the next page; absent or empty on the last one.
    #[serde(rename = "continue")]
    pub next: Option<String>,
}

/// An API error (`kind: Status`), in an error answer's body or a watch `ERROR` line.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Status {
    pub code: Option<u16>,
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// One line of a watch stream, as the protocol defines it.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchLine {
    Added(Event),
    Modified(Event),
    Deleted(Event),
    /// A progress mark: everything up to this resourceVersion has been sent.
    Bookmark {
        resource_version: Option<String>,
    },
    Error(Status),
}

#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("not a watch event: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unknown watch event type {0:?}")]
    UnknownType(String),
}

impl WatchLine {
    /// Parses one line of a watch stream (`{"type":...,"object":{...}}`): its type first, then
    /// its object as that type says (typed both times: no JSON tree is built).
    pub fn parse(line: &[u8]) -> Result<WatchLine, LineError> {
        #[derive(Deserialize)]
        struct Kind {
            #[serde(rename = "type")]
            kind: String,
        }
        #[derive(Deserialize)]
        struct Object<T> {
            object: T,
        }
        #[derive(Deserialize)]
        struct Bookmark {
            #[serde(default)]
            metadata: ObjectMeta,
        }
        fn object<'a, T: Deserialize<'a>>(line: &'a [u8]) -> Result<T, LineError> {
            Ok(serde_json::from_slice::<Object<T>>(line)?.object)
        }
        let Kind { kind } = serde_json::from_slice(line)?;
        Ok(match kind.as_str() {
            "ADDED" => WatchLine::Added(object(line)?),
            "MODIFIED" => WatchLine::Modified(object(line)?),
            "DELETED" => WatchLine::Deleted(object(line)?),
            "BOOKMARK" => {
                WatchLine::Bookmark { resource_version: object::<Bookmark>(line)?.metadata.resource_version }
            }
            "ERROR" => WatchLine::Error(object(line)?),
            _ => return Err(LineError::UnknownType(kind)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_legacy_event_as_the_api_server_sends_it() {
        let line = br#"{"type":"MODIFIED","object":{"kind":"Event","apiVersion":"v1","metadata":{"name":"dataserver-0.17f0a","namespace":"calypso-uat","uid":"6f1c-uid","resourceVersion":"4711","creationTimestamp":"2026-11-27T10:00:00Z","managedFields":[]},"involvedObject":{"kind":"Pod","namespace":"calypso-uat","name":"dataserver-0","uid":"pod-uid","apiVersion":"v1","resourceVersion":"12","fieldPath":"spec.containers{calypso}"},"reason":"Unhealthy","message":"Readiness probe failed: HTTP probe failed with statuscode: 503","source":{"component":"kubelet","host":"node-1"},"firstTimestamp":"2026-11-27T10:00:00Z","lastTimestamp":"2026-11-27T10:02:00Z","count":5,"type":"Warning","eventTime":null,"reportingComponent":"kubelet","reportingInstance":"node-1"}}"#;
        let WatchLine::Modified(e) = WatchLine::parse(line).expect("parses") else { panic!("not MODIFIED") };
        assert_eq!(e.metadata.uid.as_deref(), Some("6f1c-uid"));
        assert_eq!(e.metadata.resource_version.as_deref(), Some("4711"));
        assert_eq!(e.involved_object.field_path.as_deref(), Some("spec.containers{calypso}"));
        assert_eq!(e.count, Some(5));
        assert_eq!(e.kind.as_deref(), Some("Warning"));
        assert_eq!(e.event_time, None);
        assert_eq!(e.source.and_then(|s| s.host).as_deref(), Some("node-1"));
    }

    #[test]
    fn reads_bookmarks_errors_and_refuses_what_is_not_a_watch_line() {
        let b = br#"{"type":"BOOKMARK","object":{"kind":"Event","apiVersion":"v1","metadata":{"resourceVersion":"99","annotations":{"k8s.io/initial-events-end":"true"}}}}"#;
        assert_eq!(
            WatchLine::parse(b).expect("bookmark"),
            WatchLine::Bookmark { resource_version: Some("99".into()) }
        );
        let e = br#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 5 (90)","reason":"Expired","code":410}}"#;
        let WatchLine::Error(s) = WatchLine::parse(e).expect("error") else { panic!("not ERROR") };
        assert_eq!((s.code, s.reason.as_deref()), (Some(410), Some("Expired")));
        assert!(
            matches!(WatchLine::parse(br#"{"type":"RESYNC","object":{}}"#), Err(LineError::UnknownType(t)) if t == "RESYNC")
        );
        assert!(matches!(WatchLine::parse(b"<html>"), Err(LineError::Json(_))));
        // A field of the wrong type is an error, not a silently empty event.
        assert!(WatchLine::parse(br#"{"type":"ADDED","object":{"count":"five"}}"#).is_err());
    }

    #[test]
    fn reads_a_list_page_with_its_continue_token() {
        let page = br#"{"kind":"EventList","apiVersion":"v1","metadata":{"resourceVersion":"120","continue":"eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTIwfQ","remainingItemCount":3},"items":[{"metadata":{"name":"a","uid":"u1"},"count":1},{"metadata":{"name":"b","uid":"u2"},"series":{"count":4,"lastObservedTime":"2026-11-27T10:05:00.123456Z"}}]}"#;
        let list: EventList = serde_json::from_slice(page).expect("parses");
        assert_eq!(list.metadata.resource_version.as_deref(), Some("120"));
        assert!(list.metadata.next.is_some());
        assert_eq!(list.items.len(), 2);
        assert_eq!(list.items[1].series.as_ref().and_then(|s| s.count), Some(4));
    }
}
