//! kube-sim over HTTP, with a plain hyper client, as a list+watch client sees it: pagination over
//! a snapshot, continue tokens and their 410 after compaction, watches from a resourceVersion
//! (ADDED, MODIFIED, DELETED), synthetic ADDEDs, bookmarks, timeoutSeconds and the server maximum,
//! the 410 ERROR event, the empty-200 trap, TTL deletions, token rotation with grace, 403s, 404s,
//! 400s, 503s, down/up, the control API, and the binary as a process.

use bytes::Bytes;
use calypso_testkit::eventually;
use calypso_testkit::kube_sim::{EventUpdate, Grant, KubeOptions, KubeSim, NewEvent, Timing};
use calypso_testkit::process::{PATIENCE, Spawned};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;

const NS: &str = "calypso";

struct Answer {
    status: u16,
    content_type: String,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

/// Sends one request on a new connection and returns the response with its body unread.
async fn open(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> std::io::Result<hyper::Response<Incoming>> {
    let addr = base.trim_start_matches("http://");
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    let mut req = hyper::Request::builder().method(method).uri(path).header("host", addr);
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    let req = req.body(Full::new(Bytes::from(body.to_owned()))).map_err(std::io::Error::other)?;
    tokio::time::timeout(PATIENCE, sender.send_request(req))
        .await
        .map_err(std::io::Error::other)?
        .map_err(std::io::Error::other)
}

async fn send(
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> std::io::Result<Answer> {
    let answer = open(base, method, path, token, body).await?;
    let (parts, body) = answer.into_parts();
    let body = tokio::time::timeout(PATIENCE, body.collect())
        .await
        .map_err(std::io::Error::other)?
        .map_err(std::io::Error::other)?
        .to_bytes();
    let content_type =
        parts.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    Ok(Answer { status: parts.status.as_u16(), content_type, body })
}

async fn get(kube: &KubeSim, path: &str) -> Answer {
    send(&kube.url(), "GET", path, None, "").await.expect("kube-sim answers")
}

/// A watch being read line by line.
struct Watch {
    body: Incoming,
    buf: Vec<u8>,
}

/// How a watch stream ended.
#[derive(Debug, PartialEq)]
enum End {
    /// The last chunk came: the server ended it cleanly.
    Clean,
    /// It broke off.
    Cut,
}

impl Watch {
    async fn start(kube: &KubeSim, path: &str, token: Option<&str>) -> Watch {
        let answer = open(&kube.url(), "GET", path, token, "").await.expect("kube-sim answers");
        assert_eq!(answer.status(), 200, "{path}");
        assert_eq!(answer.headers()["content-type"], "application/json");
        Watch { body: answer.into_body(), buf: Vec::new() }
    }

    /// The next line, or how the stream ended.
    async fn next(&mut self) -> Result<Value, End> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                return Ok(serde_json::from_slice(&line).expect("each line is one JSON object"));
            }
            let frame =
                tokio::time::timeout(PATIENCE, self.body.frame()).await.expect("a line or the end in time");
            match frame {
                None => {
                    assert!(
                        self.buf.is_empty(),
                        "a partial line at the end: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    );
                    return Err(End::Clean);
                }
                Some(Err(_)) => return Err(End::Cut),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }

    /// The next line that is not a BOOKMARK.
    async fn next_change(&mut self) -> Value {
        loop {
            let line = self.next().await.expect("a line");
            if line["type"] != "BOOKMARK" {
                return line;
            }
        }
    }
}

fn summary(line: &Value) -> (String, String) {
    (
        line["type"].as_str().unwrap_or_default().to_owned(),
        line["object"]["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn start() -> KubeSim {
    KubeSim::start(KubeOptions::default()).await.expect("kube-sim starts")
}

fn event(ns: &str, name: &str) -> NewEvent {
    let mut e = NewEvent::about(
        ns,
        "Pod",
        "dataserver-0",
        "Unhealthy",
        "Readiness probe failed: HTTP probe failed with statuscode: 503",
    );
    e.metadata.name = name.into();
    e
}

fn create(kube: &KubeSim, ns: &str, name: &str) -> u64 {
    let e = kube.create_event(event(ns, name)).expect("created");
    e.metadata.resource_version.parse().expect("a number")
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn pages_are_cut_from_the_first_pages_snapshot() {
    let kube = start().await;
    for name in ["e", "a", "g", "c", "b", "f", "d"] {
        create(&kube, NS, name);
    }
    create(&kube, "other", "x");
    let first = get(&kube, &format!("/api/v1/namespaces/{NS}/events?limit=3")).await;
    assert_eq!((first.status, first.content_type.as_str()), (200, "application/json"));
    let first = first.json();
    assert_eq!((&first["kind"], &first["apiVersion"]), (&json!("EventList"), &json!("v1")));
    assert_eq!(names(&first), ["a", "b", "c"]);
    assert_eq!(first["metadata"]["remainingItemCount"], 4);
    let rv = first["metadata"]["resourceVersion"].as_str().expect("rv as a string").to_owned();
    assert_eq!(rv, kube.resource_version().to_string());
    let item = &first["items"][0];
    assert!(
        item.get("kind").is_none() && item.get("apiVersion").is_none(),
        "list items without kind: {item}"
    );
    assert_eq!(
        (item["count"].as_i64(), item["type"].as_str(), item["involvedObject"]["kind"].as_str()),
        (Some(1), Some("Warning"), Some("Pod"))
    );
    for field in ["uid", "resourceVersion", "creationTimestamp", "namespace"] {
        assert!(item["metadata"][field].is_string(), "metadata.{field}: {item}");
    }
    // Changes between pages do not show in the following ones.
    kube.delete_event(NS, "d").expect("deleted");
    kube.update_event(NS, "e", EventUpdate { count: Some(5), ..EventUpdate::default() }).expect("updated");
    create(&kube, NS, "cc");
    let token = first["metadata"]["continue"].as_str().expect("a continue token");
    let second = get(&kube, &format!("/api/v1/namespaces/{NS}/events?limit=3&continue={token}")).await.json();
    assert_eq!(names(&second), ["d", "e", "f"]);
    assert_eq!(second["items"][1]["count"], 1, "the snapshot's state");
    assert_eq!(
        (second["metadata"]["resourceVersion"].as_str(), second["metadata"]["remainingItemCount"].as_u64()),
        (Some(rv.as_str()), Some(1))
    );
    let token = second["metadata"]["continue"].as_str().expect("a continue token");
    let third = get(&kube, &format!("/api/v1/namespaces/{NS}/events?limit=3&continue={token}")).await.json();
    assert_eq!(names(&third), ["g"]);
    assert!(
        third["metadata"].get("continue").is_none() && third["metadata"].get("remainingItemCount").is_none(),
        "{third}"
    );
    // A new list sees the latest state; all namespaces too, ordered by namespace then name.
    assert_eq!(
        names(&get(&kube, &format!("/api/v1/namespaces/{NS}/events")).await.json()),
        ["a", "b", "c", "cc", "e", "f", "g"]
    );
    let all = get(&kube, "/api/v1/events").await.json();
    assert_eq!(names(&all), ["a", "b", "c", "cc", "e", "f", "g", "x"]);
    assert_eq!(all["items"][7]["metadata"]["namespace"], "other");
    let stats = kube.stats();
    assert_eq!((stats.lists_with("ok"), stats.first_pages), (5, 3));
}

#[tokio::test]
async fn a_continue_token_compacted_away_answers_410() {
    let kube = start().await;
    for i in 0..5 {
        create(&kube, NS, &format!("e{i}"));
    }
    let first = get(&kube, &format!("/api/v1/namespaces/{NS}/events?limit=2")).await.json();
    let token = first["metadata"]["continue"].as_str().expect("a token").to_owned();
    create(&kube, NS, "later");
    kube.compact();
    let expired = get(&kube, &format!("/api/v1/namespaces/{NS}/events?limit=2&continue={token}")).await;
    assert_eq!(expired.status, 410);
    let status = expired.json();
    assert_eq!(
        (&status["kind"], &status["status"], &status["reason"], &status["code"]),
        (&json!("Status"), &json!("Failure"), &json!("Expired"), &json!(410))
    );
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("The provided continue parameter is too old")),
        "{status}"
    );
    assert_eq!(kube.stats().lists_with("expired"), 1);
    // A new list works.
    assert_eq!(get(&kube, &format!("/api/v1/namespaces/{NS}/events")).await.status, 200);
}

#[tokio::test]
async fn a_watch_from_a_resource_version_gets_every_change_after_it() {
    let kube = start().await;
    create(&kube, NS, "before");
    let from = kube.resource_version();
    create(&kube, NS, "a");
    create(&kube, "other", "elsewhere");
    let mut watch =
        Watch::start(&kube, &format!("/api/v1/namespaces/{NS}/events?watch=1&resourceVersion={from}"), None)
            .await;
    let mut all =
        Watch::start(&kube, &format!("/api/v1/events?watch=true&resourceVersion={from}"), None).await;
    let added = watch.next().await.expect("ADDED");
    assert_eq!(summary(&added), ("ADDED".into(), "a".into()));
    let object = &added["object"];
    assert_eq!(
        (&object["kind"], &object["apiVersion"]),
        (&json!("Event"), &json!("v1")),
        "watch objects are whole"
    );
    // Live changes.
    kube.update_event(NS, "a", EventUpdate::default()).expect("count 2");
    kube.update_event(NS, "a", EventUpdate { series_count: Some(3), ..EventUpdate::default() })
        .expect("series");
    let deleted = kube.delete_event(NS, "a").expect("deleted");
    let modified = watch.next().await.expect("MODIFIED");
    assert_eq!(
        (summary(&modified), modified["object"]["count"].as_i64()),
        (("MODIFIED".into(), "a".into()), Some(2))
    );
    let series = watch.next().await.expect("MODIFIED");
    assert_eq!(series["object"]["series"]["count"], 3);
    assert!(
        series["object"]["series"]["lastObservedTime"]
            .as_str()
            .is_some_and(|t| t.len() == "2024-05-01T12:00:00.123456Z".len())
    );
    let gone = watch.next().await.expect("DELETED");
    assert_eq!(summary(&gone), ("DELETED".into(), "a".into()));
    assert_eq!(
        gone["object"]["metadata"]["resourceVersion"],
        json!(deleted.metadata.resource_version),
        "the deletion's resourceVersion"
    );
    // All namespaces: the other namespace's event too, in resourceVersion order.
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(summary(&all.next().await.expect("a change")));
    }
    let want: Vec<(String, String)> =
        [("ADDED", "a"), ("ADDED", "elsewhere"), ("MODIFIED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
            .iter()
            .map(|(t, n)| ((*t).into(), (*n).into()))
            .collect();
    assert_eq!(seen, want);
    assert_eq!(kube.stats().active_watches, 2);
}

#[tokio::test]
async fn a_watch_without_a_resource_version_starts_with_the_current_state() {
    let kube = start().await;
    create(&kube, NS, "b");
    create(&kube, NS, "a");
    for path in [
        format!("/api/v1/namespaces/{NS}/events?watch=1"),
        format!("/api/v1/namespaces/{NS}/events?watch=1&resourceVersion=0"),
    ] {
        let mut watch = Watch::start(&kube, &path, None).await;
        assert_eq!(summary(&watch.next().await.expect("ADDED")), ("ADDED".into(), "a".into()));
        assert_eq!(summary(&watch.next().await.expect("ADDED")), ("ADDED".into(), "b".into()));
        kube.update_event(NS, "b", EventUpdate::default()).expect("updated");
        assert_eq!(summary(&watch.next().await.expect("MODIFIED")), ("MODIFIED".into(), "b".into()));
    }
}

#[tokio::test]
async fn bookmarks_carry_the_resource_version_only() {
    let kube = start().await;
    kube.set_bookmark_interval(Duration::from_millis(50));
    let from = kube.resource_version();
    let mut plain = Watch::start(
        &kube,
        &format!("/api/v1/namespaces/{NS}/events?watch=1&resourceVersion={from}&timeoutSeconds=1"),
        None,
    )
    .await;
    let mut watch = Watch::start(
        &kube,
        &format!("/api/v1/namespaces/{NS}/events?watch=1&resourceVersion={from}&allowWatchBookmarks=true"),
        None,
    )
    .await;
    create(&kube, "other", "elsewhere");
    // The bookmark moves past the other namespace's change.
    let want = kube.resource_version().to_string();
    let bookmark = eventually("a bookmark at the newest resourceVersion", PATIENCE, async || {
        let line = watch.next().await.expect("a line");
        (line["object"]["metadata"]["resourceVersion"] == json!(want)).then_some(line)
    })
    .await;
    assert_eq!(bookmark["type"], "BOOKMARK");
    let object = &bookmark["object"];
    assert_eq!((&object["kind"], &object["apiVersion"]), (&json!("Event"), &json!("v1")));
    assert!(object["metadata"].get("name").is_none() && object["metadata"].get("uid").is_none(), "{object}");
    // Without allowWatchBookmarks: none, and the stream just ends at its timeout.
    assert_eq!(plain.next().await, Err(End::Clean));
    assert!(kube.stats().bookmarks >= 1);
}

#[tokio::test]
async fn timeout_seconds_and_the_server_maximum_end_watches_cleanly() {
    let kube = start().await;
    let started = std::time::Instant::now();
    let mut watch =
        Watch::start(&kube, &format!("/api/v1/namespaces/{NS}/events?watch=1&timeoutSeconds=1"), None).await;
    assert_eq!(watch.next().await, Err(End::Clean));
    assert!(started.elapsed() >= Duration::from_millis(900), "ended after {:?}", started.elapsed());
    kube.set_watch_max(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let mut watch =
        Watch::start(&kube, &format!("/api/v1/namespaces/{NS}/events?watch=1&timeoutSeconds=60"), None).await;
    assert_eq!(watch.next().await, Err(End::Clean));
    assert!(started.elapsed() < Duration::from_secs(30));
    let stats = kube.stats();
    eventually("both ends counted", PATIENCE, async || {
        (kube.stats().watch_ends_with("timeout") == 2).then_some(())
    })
    .await;
    assert_eq!(stats.watches_with("ok"), 2);
}

#[tokio::test]
async fn a_watch_from_a_compacted_resource_version_gets_one_410_error() {
    let kube = start().await;
    let old = create(&kube, NS, "a");
    create(&kube, NS, "b");
    let at = kube.compact();
    let mut watch =
        Watch::start(&kube, &format!("/api/v1/namespaces/{NS}/events?watch=1&resourceVersion={old}"), None)
            .await;
    let error = watch.next().await.expect("an ERROR");
    assert_eq!(
        error,
        json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": format!("too old resource version: {old} ({at})"), "reason": "Expired", "code": 410}})
    );
    assert_eq!(watch.next().await, Err(End::Clean), "then the stream ends");
    assert_eq!(kube.stats().watches_with("expired"), 1);
    // From the compaction point on, watching works.
    let mut watch =
        Watch::start(&kube, &format!("/api/v1/namespaces/{NS}/events?watch=1&resourceVersion={at}"), None)
            .await;
    create(&kube, NS, "c");
    assert_eq!(summary(&watch.next().await.expect("ADDED")), ("ADDED".into(), "c".into()));
}

#[tokio::test]
async fn the_empty_200_trap_answers_the_next_watches_with_nothing() {
    let kube = start().await;
    create(&kube, NS, "a");
    let rv = kube.resource_version();
    kube.set_empty_watches(2);
    let path = format!("/api/v1/namespaces/{NS}/events?watch=1&resourceVersion={rv}");
    for _ in 0..2 {
        let answer = get(&kube, &path).await;
        assert_eq!((answer.status, answer.body.len()), (200, 0));
    }
    let mut watch = Watch::start(&kube, &path, None).await;
    create(&kube, NS, "b");
    assert_eq!(summary(&watch.next().await.expect("ADDED")), ("ADDED".into(), "b".into()));
    let stats = kube.stats();
    assert_eq!((stats.watches_with("empty"), stats.watches_with("ok")), (2, 1));
}

#[tokio::test]
async fn the_ttl_deletes_events_not_written_for_that_long() {
    let kube = start().await;
    let from = kube.resource_version();
    let mut watch =
        Watch::start(&kube, &format!("/api/v1/events?watch=1&resourceVersion={from}"), None).await;
    create(&kube, NS, "short-lived");
    kube.set_ttl(Some(Duration::from_millis(300)));
    assert_eq!(summary(&watch.next_change().await), ("ADDED".into(), "short-lived".into()));
    assert_eq!(summary(&watch.next_change().await), ("DELETED".into(), "short-lived".into()));
    assert!(kube.events().is_empty());
    assert_eq!(get(&kube, &format!("/api/v1/namespaces/{NS}/events/short-lived")).await.status, 404);
}

#[tokio::test]
async fn rotated_tokens_work_for_their_grace_period_then_answer_401() {
    let opts = KubeOptions {
        tokens: vec![Grant::cluster("old"), Grant::parse("narrow@calypso").expect("grant")],
        ..KubeOptions::default()
    };
    let kube = KubeSim::start(opts).await.expect("starts");
    let url = kube.url();
    let list = format!("/api/v1/namespaces/{NS}/events");
    let status =
        async |path: &str, token: Option<&str>| send(&url, "GET", path, token, "").await.expect("answers");
    let anonymous = status(&list, None).await;
    assert_eq!((anonymous.status, anonymous.json()["reason"].as_str()), (401, Some("Unauthorized")));
    assert_eq!(status(&list, Some("wrong")).await.status, 401);
    assert_eq!(status(&list, Some("old")).await.status, 200);
    // A token for one namespace: 403 elsewhere and at the cluster scope, with RBAC's message.
    assert_eq!(status(&list, Some("narrow")).await.status, 200);
    let forbidden = status("/api/v1/namespaces/kube-system/events?watch=1", Some("narrow")).await;
    assert_eq!(forbidden.status, 403);
    assert!(forbidden.json()["message"].as_str().is_some_and(|m| {
        m.contains("cannot watch resource \"events\" in API group \"\" in the namespace \"kube-system\"")
    }));
    assert_eq!(status("/api/v1/events", Some("narrow")).await.status, 403);
    // Rotation: the old token keeps working for the grace period, then 401.
    kube.set_tokens(vec![Grant::cluster("new")], Duration::from_millis(300));
    assert_eq!(status(&list, Some("new")).await.status, 200);
    assert_eq!(status(&list, Some("old")).await.status, 200, "in its grace period");
    eventually("the old token to expire", PATIENCE, async || {
        (status(&list, Some("old")).await.status == 401).then_some(())
    })
    .await;
    assert_eq!(status(&list, Some("narrow")).await.status, 401, "dropped with the rotation");
    assert_eq!(status(&list, Some("new")).await.status, 200);
    assert!(kube.stats().lists_with("unauthorized") >= 3);
    // Over the control API: no token at all turns authentication off.
    let answer = send(&url, "POST", "/_sim/tokens?token=next&grace=0s", None, "").await.expect("answers");
    assert_eq!(answer.json()["tokens"], 1);
    assert_eq!(status(&list, Some("new")).await.status, 401);
    assert_eq!(status(&list, Some("next")).await.status, 200);
}

#[tokio::test]
async fn errors_are_status_objects_with_their_codes() {
    let kube = start().await;
    let unknown = get(&kube, "/api/v1/namespaces/calypso/pods").await;
    assert_eq!((unknown.status, unknown.body.as_ref()), (404, &b"404 page not found\n"[..]));
    let missing = get(&kube, "/api/v1/namespaces/calypso/events/nope").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["reason"], "NotFound");
    assert_eq!(missing.json()["message"], "events \"nope\" not found");
    for bad in [
        "limit=many",
        "continue=garbage",
        "watch=1&resourceVersion=abc",
        "watch=perhaps",
        "labelSelector=app%3Dx",
    ] {
        let answer = get(&kube, &format!("/api/v1/namespaces/calypso/events?{bad}")).await;
        assert_eq!((answer.status, answer.json()["reason"].as_str()), (400, Some("BadRequest")), "{bad}");
    }
    let future = kube.resource_version() + 100;
    assert_eq!(get(&kube, &format!("/api/v1/events?resourceVersion={future}")).await.status, 504);
    let post =
        send(&kube.url(), "POST", "/api/v1/namespaces/calypso/events", None, "{}").await.expect("answers");
    assert_eq!(post.status, 405);
    let e = kube.create_event(event(NS, "one")).expect("created");
    let one = get(&kube, &format!("/api/v1/namespaces/{NS}/events/one")).await.json();
    assert_eq!(
        (one["kind"].as_str(), one["metadata"]["uid"].as_str()),
        (Some("Event"), Some(e.metadata.uid.as_str()))
    );
}

#[tokio::test]
async fn unavailable_and_down_then_up_again() {
    let kube = start().await;
    kube.set_unavailable(true);
    let answer = get(&kube, "/api/v1/events").await;
    assert_eq!((answer.status, answer.json()["reason"].as_str()), (503, Some("ServiceUnavailable")));
    assert_eq!(kube.stats().lists_with("unavailable"), 1);
    kube.set_unavailable(false);
    let mut watch = Watch::start(&kube, "/api/v1/events?watch=1", None).await;
    kube.down().await;
    assert_eq!(watch.next().await, Err(End::Cut), "a watch breaks off when the server goes down");
    assert!(send(&kube.url(), "GET", "/api/v1/events", None, "").await.is_err(), "refused while down");
    kube.up().expect("listens again");
    assert_eq!(get(&kube, "/api/v1/events").await.status, 200);
    assert_eq!(kube.stats().watch_ends_with("down"), 1);
}

#[tokio::test]
async fn the_control_api() {
    let kube = start().await;
    let url = kube.url();
    let call = async |method: &str, path: &str, body: &str| {
        send(&url, method, path, None, body).await.expect("answers")
    };
    let created = call("POST", "/_sim/events", r#"{"metadata":{"namespace":"calypso"},"involvedObject":{"kind":"Pod","name":"riskserver-7d9f8b-x2x"},"reason":"BackOff","message":"Back-off restarting failed container","type":"Warning"}"#).await;
    assert_eq!(created.status, 201);
    let created = created.json();
    let name = created["metadata"]["name"].as_str().expect("a generated name").to_owned();
    assert!(name.starts_with("riskserver-7d9f8b-x2x."), "{name}");
    assert_eq!((created["count"].as_i64(), created["kind"].as_str()), (Some(1), Some("Event")));
    assert!(created["firstTimestamp"].is_string() && created["eventTime"].is_null());
    let bumped = call("PUT", &format!("/_sim/events/calypso/{name}"), "").await.json();
    assert_eq!(bumped["count"], 2);
    let set = call("PATCH", &format!("/_sim/events/calypso/{name}"), r#"{"count":5,"message":"again"}"#)
        .await
        .json();
    assert_eq!((set["count"].as_i64(), set["message"].as_str()), (Some(5), Some("again")));
    assert_eq!(call("GET", "/_sim/events", "").await.json().as_array().map(Vec::len), Some(1));
    assert_eq!(call("DELETE", &format!("/_sim/events/calypso/{name}"), "").await.status, 200);
    assert_eq!(call("DELETE", &format!("/_sim/events/calypso/{name}"), "").await.status, 404);
    let compacted = call("POST", "/_sim/compact", "").await.json();
    assert_eq!(compacted["compacted"].as_u64(), Some(kube.resource_version()));
    let faults = call("POST", "/_sim/faults?empty_watches=2&ttl=1h&watch_max=5s&bookmark_interval=1s", "")
        .await
        .json();
    assert_eq!(
        (faults["empty_watches"].as_u64(), faults["ttl_ms"].as_u64(), faults["watch_max_ms"].as_u64()),
        (Some(2), Some(3_600_000), Some(5000))
    );
    assert_eq!(
        kube.timing(),
        Timing {
            bookmark_interval: Duration::from_secs(1),
            watch_max: Duration::from_secs(5),
            ttl: Some(Duration::from_secs(3600))
        }
    );
    assert_eq!(call("DELETE", "/_sim/faults", "").await.json()["empty_watches"], 0);
    assert_eq!(call("POST", "/_sim/faults?nope=1", "").await.status, 400);
    get(&kube, "/api/v1/events").await;
    assert_eq!(call("GET", "/_sim/stats", "").await.json()["lists"], json!({"ok": 1}));
    call("POST", "/_sim/stats/reset", "").await;
    assert_eq!(call("GET", "/_sim/stats", "").await.json()["lists"], json!({}));
}

#[tokio::test]
async fn the_binary_announces_itself_and_exits_0_on_request() {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_kube-sim"));
    cmd.args(["--listen", "127.0.0.1:0", "--token", "t0", "--empty-watches", "1"])
        .stdout(std::process::Stdio::piped());
    let mut sim = Spawned::start(cmd);
    let stdout = sim.child.stdout.take().expect("stdout");
    let mut line = String::new();
    tokio::time::timeout(PATIENCE, BufReader::new(stdout).read_line(&mut line))
        .await
        .expect("a line in time")
        .expect("read");
    let url = line
        .trim()
        .strip_prefix("kube-sim listening on ")
        .unwrap_or_else(|| panic!("the announce line: {line:?}"))
        .to_owned();
    let body =
        r#"{"metadata":{"namespace":"calypso","name":"e1"},"involvedObject":{"kind":"Pod","name":"p"}}"#;
    assert_eq!(send(&url, "POST", "/_sim/events", None, body).await.expect("answers").status, 201);
    assert_eq!(send(&url, "GET", "/api/v1/events", None, "").await.expect("answers").status, 401);
    let list = send(&url, "GET", "/api/v1/events", Some("t0"), "").await.expect("answers").json();
    assert_eq!(names(&list), ["e1"]);
    let trapped = send(&url, "GET", "/api/v1/events?watch=1", Some("t0"), "").await.expect("answers");
    assert_eq!((trapped.status, trapped.body.len()), (200, 0), "--empty-watches applies");
    assert_eq!(send(&url, "POST", "/_sim/exit", None, "").await.expect("answers").status, 200);
    assert_eq!(sim.exit_code().await, 0, "stderr:\n{}", sim.stderr());
}

#[tokio::test]
async fn bad_flags_exit_64() {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_kube-sim"));
    cmd.args(["--ttl", "whenever"]);
    let mut sim = Spawned::start(cmd);
    assert_eq!(sim.exit_code().await, 64, "stderr:\n{}", sim.stderr());
}
