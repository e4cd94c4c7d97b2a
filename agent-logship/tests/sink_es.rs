//! The `_bulk` sender against a small scriptable Elasticsearch stub (hyper on 127.0.0.1:0):
//! partial 429s resent alone, 409 delivered, 400 dead-lettered and logged once, whole 503
//! retried, 413 split, 401 until the credential file changes, connection refused then up —
//! every document acknowledged exactly once, only after it is stored, none lost. Refused
//! documents go to the dead-letter data stream; the dead-letter file is the last resort.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_core::dns::Dns;
use agent_logship::flow::{Ack, Acknowledge, Budget};
use agent_logship::metrics::Metrics;
use agent_logship::sink::client::Auth;
use agent_logship::sink::es::RetryTiming;
use agent_logship::sink::{self, BatchLimits, Batcher, Ended, EsOptions, EsSink, Sink};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use tokio::sync::mpsc;

// ---------------------------------------------------------------- the stub

/// The stub's one data stream, and the dead-letter stream of its namespace.
const STREAM: &str = "logs-calypso.test-default";
const DEAD_LETTERS: &str = "logs-agent_logship.dead_letter-default";

#[derive(Default)]
struct State {
    stored: HashMap<String, Vec<u8>>,
    /// What the dead-letter stream stored, by `_id`.
    dead_letters: HashMap<String, Vec<u8>>,
    /// The dead-letter stream refuses every document with 400.
    refuse_dead_letters: bool,
    dead_letter_requests: u32,
    /// Ids of each `_bulk` request, in arrival order.
    requests: Vec<Vec<String>>,
    /// Whole-request statuses to answer next, one per request.
    whole: VecDeque<u16>,
    /// Ids answered 429 (per item) while their count is > 0.
    item_429: HashMap<String, u32>,
    /// Ids always refused with 400.
    item_400: HashSet<String>,
    /// Ids refused 403 `security_exception` (a key without `create_doc` on the data stream, as
    /// Elasticsearch reports it: HTTP 200, per item) in the next `item_403_requests` requests.
    item_403: HashSet<String>,
    item_403_requests: u32,
    /// Bodies (uncompressed) larger than this get 413.
    max_body: Option<usize>,
    /// Required `Authorization` header value.
    auth: Option<String>,
    unauthorized: u32,
    gzip_bodies: u32,
}

impl State {
    /// The dead-letter stream: stores (or, `refuse_dead_letters`, refuses) each dead letter,
    /// 409 for one it has.
    fn dead_letter_items(&mut self, ids: &[String], lines: &[&[u8]]) -> (u16, String) {
        self.dead_letter_requests += 1;
        let mut items = Vec::new();
        for (id, pair) in ids.iter().zip(lines.chunks(2)) {
            let (status, error) = if self.refuse_dead_letters {
                (400, Some(("document_parsing_exception", "failed to parse field [event.original]")))
            } else if self.dead_letters.contains_key(id) {
                (409, Some(("version_conflict_engine_exception", "document already exists")))
            } else {
                self.dead_letters.insert(id.clone(), pair[1].to_vec());
                (201, None)
            };
            items.push(match error {
                Some((t, r)) => {
                    serde_json::json!({"create":{"_id":id,"status":status,"error":{"type":t,"reason":r}}})
                }
                None => serde_json::json!({"create":{"_id":id,"status":status}}),
            });
        }
        let errors = self.refuse_dead_letters;
        (200, serde_json::json!({"took":1,"errors":errors,"items":items}).to_string())
    }
}

#[derive(Clone, Default)]
struct Stub(Arc<Mutex<State>>);

impl Stub {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.0.lock().expect("stub lock"))
    }

    fn answer(&self, index: &str, auth: Option<String>, gzip: bool, body: &[u8]) -> (u16, String) {
        let mut st = self.0.lock().expect("stub lock");
        if let Some(want) = &st.auth
            && auth.as_deref() != Some(want)
        {
            st.unauthorized += 1;
            return (
                401,
                r#"{"error":{"type":"security_exception","reason":"unable to authenticate"},"status":401}"#
                    .into(),
            );
        }
        let body = if gzip {
            st.gzip_bodies += 1;
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body).read_to_end(&mut out).expect("gzip body");
            out
        } else {
            body.to_vec()
        };
        assert!(body.ends_with(b"\n"), "body ends with a newline");
        let lines: Vec<&[u8]> = body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len() % 2, 0, "action + source pairs");
        let ids: Vec<String> = lines
            .chunks(2)
            .map(|p| {
                let action: serde_json::Value = serde_json::from_slice(p[0]).expect("action JSON");
                action["create"]["_id"].as_str().expect("create with _id").to_string()
            })
            .collect();
        // The size limit is the server's, for every request.
        if st.max_body.is_some_and(|m| body.len() > m) {
            if index == STREAM {
                st.requests.push(ids);
            }
            return (413, String::new());
        }
        if index == DEAD_LETTERS {
            return st.dead_letter_items(&ids, &lines);
        }
        st.requests.push(ids.clone());
        if let Some(s) = st.whole.pop_front() {
            return (s, format!(r#"{{"error":{{"type":"x","reason":"injected"}},"status":{s}}}"#));
        }
        let mut items = Vec::new();
        let mut errors = false;
        let forbidding = st.item_403_requests > 0;
        st.item_403_requests = st.item_403_requests.saturating_sub(1);
        for (id, pair) in ids.iter().zip(lines.chunks(2)) {
            let (status, error) = if forbidding && st.item_403.contains(id) {
                (
                    403,
                    Some((
                        "security_exception",
                        "action [indices:data/write/bulk[s]] is unauthorized for user [calypso-writer] with \
                         effective roles [calypso-log-reader] on indices [logs-calypso.test-default], this action \
                         is granted by the index privileges [create_doc,create,index,write,all]",
                    )),
                )
            } else if st.item_400.contains(id) {
                (400, Some(("document_parsing_exception", "failed to parse field [log.offset]")))
            } else if let Some(n) = st.item_429.get_mut(id).filter(|n| **n > 0) {
                *n -= 1;
                (429, Some(("es_rejected_execution_exception", "rejected execution")))
            } else if st.stored.contains_key(id) {
                (409, Some(("version_conflict_engine_exception", "document already exists")))
            } else {
                st.stored.insert(id.clone(), pair[1].to_vec());
                (201, None)
            };
            let item = match error {
                Some((t, r)) => {
                    errors = true;
                    serde_json::json!({"create":{"_index":"logs-x","_id":id,"status":status,"error":{"type":t,"reason":r}}})
                }
                None => {
                    serde_json::json!({"create":{"_index":"logs-x","_id":id,"status":status,"result":"created"}})
                }
            };
            items.push(item);
        }
        (200, serde_json::json!({"took":1,"errors":errors,"items":items}).to_string())
    }

    async fn serve(self, listener: tokio::net::TcpListener) {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let stub = self.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let stub = stub.clone();
                    async move {
                        let auth = req
                            .headers()
                            .get("authorization")
                            .map(|v| v.to_str().expect("ascii").to_string());
                        let gzip = req.headers().get("content-encoding").is_some_and(|v| v == "gzip");
                        let index = match req.uri().path() {
                            "/logs-calypso.test-default/_bulk" => STREAM,
                            "/logs-agent_logship.dead_letter-default/_bulk" => DEAD_LETTERS,
                            other => panic!("a request to {other}"),
                        };
                        assert_eq!(
                            req.uri().query(),
                            Some("filter_path=errors,items.*.status,items.*.error")
                        );
                        assert_eq!(req.headers()["content-type"], "application/x-ndjson");
                        let body = req.into_body().collect().await.expect("body").to_bytes();
                        let (status, text) = stub.answer(index, auth, gzip, &body);
                        Ok::<_, std::convert::Infallible>(
                            Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(text)))
                                .expect("response"),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                    .await;
            });
        }
    }
}

async fn start(stub: &Stub) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr");
    tokio::spawn(stub.clone().serve(l));
    addr
}

// ---------------------------------------------------------------- the pipeline end

#[derive(Debug, Default)]
struct Acks(Mutex<Vec<u64>>);
impl Acknowledge for Acks {
    fn acknowledge(&self, seq: u64) {
        self.0.lock().expect("acks").push(seq);
    }
}
impl Acks {
    fn count(&self) -> usize {
        self.0.lock().expect("acks").len()
    }
}

/// Document `n` as the encoder would add it to a batch.
fn add(bulk: &mut sink::BulkWriter, (n, ack): (u64, Ack)) {
    bulk.push(&id(n), ack, |out| {
        out.extend_from_slice(
            format!(r#"{{"@timestamp":"2024-05-02T10:00:00Z","message":"record {n}"}}"#).as_bytes(),
        );
    });
}

fn id(n: u64) -> String {
    format!("{n:032x}")
}

fn options(urls: Vec<String>, dir: &std::path::Path) -> EsOptions {
    let mut o = EsOptions::new(urls.iter().map(|u| u.parse().expect("url")).collect(), dir);
    o.client.timeout = Duration::from_secs(10);
    o.retry = RetryTiming {
        min: Duration::from_millis(5),
        max: Duration::from_millis(40),
        auth: Duration::from_millis(20),
        warn_every: Duration::from_secs(60),
    };
    o
}

struct Run {
    acks: Arc<Acks>,
    metrics: Arc<Metrics>,
    handle: tokio::task::JoinHandle<Result<Ended, sink::SinkError>>,
    tx: Option<mpsc::Sender<Vec<(u64, Ack)>>>,
    budget: Budget,
}

const LIMITS: BatchLimits = BatchLimits { docs: 10, bytes: 1 << 20, age: Duration::from_millis(20) };

/// The stub started, a data directory, and options for it without gzip (bodies read as sent).
async fn plain(stub: &Stub) -> (tempfile::TempDir, EsOptions) {
    let addr = start(stub).await;
    let dir = tempfile::tempdir().expect("tmp");
    let opts = EsOptions { gzip: false, ..options(vec![format!("http://{addr}")], dir.path()) };
    (dir, opts)
}

fn launch(opts: &EsOptions) -> Run {
    launch_with(opts, LIMITS)
}

/// The sink fed as in the agent: items batched and encoded into bodies, then shipped.
fn launch_with(opts: &EsOptions, limits: BatchLimits) -> Run {
    let metrics = Arc::new(Metrics::default());
    let es = EsSink::new(opts, Dns::system(), metrics.clone()).expect("sink");
    let (tx, rx) = mpsc::channel(64);
    let (batches_tx, batches_rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let mut batcher = Batcher::new(rx, limits, "logs-calypso.test-default".into());
        while let Some(bulk) = batcher.next(add).await {
            batches_tx.send(bulk).await.expect("sink runs");
        }
    });
    let handle = tokio::spawn(sink::run(
        batches_rx,
        Sink::Es { sink: Arc::new(es), max_in_flight: opts.max_in_flight },
        metrics.clone(),
        std::future::pending(),
    ));
    Run { acks: Arc::new(Acks::default()), metrics, handle, tx: Some(tx), budget: Budget::new(1 << 20) }
}

impl Run {
    async fn send(&self, range: std::ops::Range<u64>) {
        let tx = self.tx.as_ref().expect("open");
        for n in range {
            let permit = self.budget.take(100).await;
            tx.send(vec![(n, Ack::new(self.acks.clone(), n, permit))]).await.expect("send");
        }
    }

    /// Closes the channel and waits for the sink to drain.
    async fn finish(mut self) -> (Arc<Acks>, Arc<Metrics>) {
        drop(self.tx.take());
        let ended = tokio::time::timeout(Duration::from_secs(20), self.handle).await.expect("drains in time");
        assert_eq!(ended.expect("join").expect("run"), Ended::Drained);
        assert_eq!(self.budget.in_flight(), 0, "every budget share given back");
        (self.acks, self.metrics)
    }
}

/// Waits up to 10 s for `cond`.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn exactly_once(acks: &Acks, n: u64) {
    let mut got = acks.0.lock().expect("acks").clone();
    got.sort_unstable();
    assert_eq!(got, (0..n).collect::<Vec<_>>(), "every document acknowledged exactly once");
}

fn get(c: &std::sync::atomic::AtomicU64) -> u64 {
    Metrics::get(c)
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn partial_429_resent_alone_409_delivered() {
    let stub = Stub::default();
    stub.with(|s| {
        s.item_429.insert(id(3), 2);
        s.item_429.insert(id(7), 1);
        s.stored.insert(id(5), b"{}".to_vec()); // already there: 409
    });
    let addr = start(&stub).await;
    let dir = tempfile::tempdir().expect("tmp");
    let run = launch(&options(vec![format!("http://{addr}")], dir.path()));
    run.send(0..10).await;
    let (acks, m) = run.finish().await;
    exactly_once(&acks, 10);
    let requests = stub.with(|s| s.requests.clone());
    assert_eq!(requests[0].len(), 10);
    assert_eq!(requests[1], vec![id(3), id(7)], "only the 429 items are sent again");
    assert_eq!(requests[2], vec![id(3)]);
    assert_eq!(requests.len(), 3);
    assert_eq!((get(&m.docs_stored), get(&m.docs_duplicate), get(&m.docs_retried)), (9, 1, 3));
    assert_eq!(stub.with(|s| s.gzip_bodies), 3, "gzip on by default");
}

#[tokio::test]
async fn item_400_dead_lettered_and_logged_once() {
    let stub = Stub::default();
    stub.with(|s| {
        for n in [1, 4, 12] {
            s.item_400.insert(id(n));
        }
    });
    let (dir, opts) = plain(&stub).await;
    let logs = capture_logs();
    let run = launch(&opts);
    run.send(0..20).await;
    let (acks, m) = run.finish().await;
    exactly_once(&acks, 20);
    assert_eq!(get(&m.docs_dead_lettered), 3);
    assert_eq!(get(&m.docs_stored), 17);
    assert_eq!(stub.with(|s| s.requests.len()), 2, "never retried");
    // In the dead-letter stream, each under the original's id, the original kept as text.
    let letters = stub.with(|s| s.dead_letters.clone());
    let mut ids: Vec<&String> = letters.keys().collect();
    ids.sort();
    assert_eq!(ids, [&id(1), &id(4), &id(12)]);
    let letter: serde_json::Value = serde_json::from_slice(&letters[&id(1)]).expect("json");
    assert_eq!(letter["agent_logship"]["dead_letter"]["status"], 400);
    assert_eq!(letter["agent_logship"]["dead_letter"]["index"], STREAM);
    assert_eq!(letter["error"]["type"], "document_parsing_exception");
    let original: serde_json::Value =
        serde_json::from_str(letter["event"]["original"].as_str().expect("text")).expect("the original");
    assert_eq!(original["message"], "record 1");
    assert!(!dir.path().join("dead-letter.ndjson").exists(), "nothing kept in the pod");
    assert_eq!(get(&m.dead_letters_in_file), 0);
    let warned = logs.lock().expect("logs").matches("refused a document for good").count();
    assert_eq!(warned, 1, "one warning per reason");
}

#[tokio::test]
async fn dead_letters_the_dead_letter_stream_refuses_are_kept_in_the_file() {
    let stub = Stub::default();
    stub.with(|s| {
        s.item_400.extend([id(2), id(3)]);
        s.refuse_dead_letters = true;
    });
    let addr = start(&stub).await;
    let dir = tempfile::tempdir().expect("tmp");
    let opts = options(vec![format!("http://{addr}")], dir.path());
    let logs = capture_logs();
    let run = launch(&opts);
    run.send(0..5).await;
    let (acks, m) = run.finish().await;
    exactly_once(&acks, 5);
    assert_eq!((get(&m.docs_dead_lettered), get(&m.dead_letters_in_file)), (2, 2));
    assert!(stub.with(|s| s.dead_letter_requests) >= 1, "the stream was tried first");
    let text = std::fs::read_to_string(dir.path().join("dead-letter.ndjson")).expect("dead letters");
    let mut originals: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json"))
        .map(|v| {
            assert_eq!(v["_index"], DEAD_LETTERS);
            let original = v["source"]["event"]["original"].as_str().expect("the original").to_owned();
            serde_json::from_str::<serde_json::Value>(&original).expect("json")["message"].to_string()
        })
        .collect();
    originals.sort();
    assert_eq!(originals, [r#""record 2""#, r#""record 3""#]);
    let logged = logs.lock().expect("logs").clone();
    assert!(logged.contains("the dead-letter data stream refused a dead letter too"), "{logged}");
}

/// A key without `create_doc` on a data stream: Elasticsearch answers 200 with those items 403.
/// That is the configuration's problem, not the documents': the request waits (warned about,
/// counted as failed) and is sent again until the role is fixed — never dead-lettered. What it
/// stored meanwhile is answered 409 then, and counted as duplicates.
#[tokio::test]
async fn item_403_makes_the_data_wait_not_dead_letters() {
    let stub = Stub::default();
    stub.with(|s| {
        s.item_403.extend([3, 7].map(id));
        s.item_403_requests = 3;
    });
    let (dir, opts) = plain(&stub).await;
    let logs = capture_logs();
    let run = launch(&opts);
    run.send(0..20).await;
    let (acks, m) = run.finish().await;
    exactly_once(&acks, 20);
    assert_eq!(stub.with(|s| s.item_403_requests), 0, "the refusals happened");
    assert_eq!(get(&m.docs_dead_lettered), 0);
    assert!(!dir.path().join("dead-letter.ndjson").exists(), "no dead letters");
    assert_eq!(get(&m.requests_failed), 3);
    // The request that held ids 3 and 7 was sent again whole: its other documents came back 409.
    assert!(get(&m.docs_duplicate) > 0, "the held request was sent again");
    let stored: HashSet<String> = stub.with(|s| s.stored.keys().cloned().collect());
    assert_eq!(stored, (0..20).map(id).collect::<HashSet<_>>(), "every document stored, each once");
    let text = logs.lock().expect("logs").clone();
    assert!(text.contains("missing privilege on their data stream"), "{text}");
    assert!(text.contains("security_exception"), "{text}");
}

#[tokio::test]
async fn whole_503_and_429_retried_acks_only_after_success() {
    let stub = Stub::default();
    stub.with(|s| s.whole.extend([503, 429, 502, 503]));
    let addr = start(&stub).await;
    let dir = tempfile::tempdir().expect("tmp");
    let run = launch(&options(vec![format!("http://{addr}")], dir.path()));
    run.send(0..5).await;
    eventually("four refused requests", || stub.with(|s| s.requests.len()) >= 4).await;
    // While the server refused, nothing was acknowledged (the 5th request may be answered now).
    if stub.with(|s| s.requests.len()) == 4 {
        assert_eq!(run.acks.count(), 0);
    }
    let (acks, m) = run.finish().await;
    exactly_once(&acks, 5);
    assert_eq!(stub.with(|s| s.requests.len()), 5);
    assert_eq!(get(&m.requests_failed), 4);
    assert_eq!(get(&m.docs_stored), 5);
}

/// A steady stream of refusals: the dead-letter file is rotated at its bound, the oldest dead
/// letters are deleted with the previous rotated file, counted and warned about; every refused
/// document is either kept or counted as dropped, and the directory stays bounded.
#[tokio::test]
async fn dead_letters_past_the_bound_rotate_and_the_oldest_are_counted_as_dropped() {
    let stub = Stub::default();
    stub.with(|s| {
        s.item_400.extend((0..200).map(id));
        s.refuse_dead_letters = true;
    });
    let addr = start(&stub).await;
    let dir = tempfile::tempdir().expect("tmp");
    let mut opts = options(vec![format!("http://{addr}")], dir.path());
    opts.dead_letter_max_bytes = 32 << 10;
    let logs = capture_logs();
    let run = launch(&opts);
    run.send(0..200).await;
    let (acks, m) = run.finish().await;
    exactly_once(&acks, 200);
    assert_eq!((get(&m.docs_dead_lettered), get(&m.dead_letters_in_file)), (200, 200));
    let lines = |name: &str| -> usize {
        let path = dir.path().join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(text.len() <= 32 << 10, "{name} is {} bytes", text.len());
        text.lines().count()
    };
    let kept = lines("dead-letter.ndjson") + lines("dead-letter.ndjson.1");
    let dropped = get(&m.dead_letters_dropped);
    assert!(dropped > 0, "some were dropped");
    assert_eq!(kept as u64 + dropped, 200, "kept {kept}, dropped {dropped}");
    let logged = logs.lock().expect("logs").clone();
    assert!(logged.contains("the dead-letter file is full"), "{logged}");
}

#[tokio::test]
async fn too_large_splits_down_to_one_then_dead_letters() {
    let stub = Stub::default();
    // One document's body is ~125 bytes: at most 3 fit.
    stub.with(|s| s.max_body = Some(400));
    let addr = start(&stub).await;
    let dir = tempfile::tempdir().expect("tmp");
    let opts = options(vec![format!("http://{addr}")], dir.path());
    let run = launch_with(&opts, BatchLimits { age: Duration::from_secs(5), ..LIMITS }); // one batch of 10
    run.send(0..10).await;
    let (acks, m) = run.finish().await;
    exactly_once(&acks, 10);
    assert_eq!(stub.with(|s| s.stored.len()), 10);
    assert!(get(&m.batches_split) >= 3, "10 -> 5+5 -> 2+3 ...");
    assert_eq!(get(&m.docs_dead_lettered), 0);

    // A single document larger than the limit: dead-lettered with the 413, not looping.
    stub.with(|s| s.max_body = Some(10));
    let run = launch(&opts);
    run.send(100..101).await;
    let (acks, m) = run.finish().await;
    assert_eq!(acks.count(), 1);
    assert_eq!(get(&m.docs_dead_lettered), 1);
    let text = std::fs::read_to_string(dir.path().join("dead-letter.ndjson")).expect("dead letters");
    assert!(text.contains("\"status\":413"), "{text}");
}

#[tokio::test]
async fn unauthorized_waits_for_the_credential_file_to_change() {
    let stub = Stub::default();
    stub.with(|s| s.auth = Some("ApiKey R09PRA==".into()));
    let addr = start(&stub).await;
    let dir = tempfile::tempdir().expect("tmp");
    // A mounted Secret: the key file is a symlink to a versioned file, swapped on update.
    let v1 = dir.path().join("..v1");
    std::fs::write(&v1, "QkFE\n").expect("write");
    let key = dir.path().join("api-key");
    std::os::unix::fs::symlink(&v1, &key).expect("symlink");
    let mut opts = options(vec![format!("http://{addr}")], dir.path());
    opts.client.auth = Auth::ApiKey { file: key.clone() };
    let logs = capture_logs();
    let run = launch(&opts);
    run.send(0..3).await;
    eventually("several 401s", || stub.with(|s| s.unauthorized) >= 3).await;
    assert_eq!(run.acks.count(), 0, "data waits");
    let v2 = dir.path().join("..v2");
    std::fs::write(&v2, "R09PRA==\n").expect("write");
    let tmp = dir.path().join("api-key.tmp");
    std::os::unix::fs::symlink(&v2, &tmp).expect("symlink");
    std::fs::rename(&tmp, &key).expect("swap");
    let (acks, m) = run.finish().await;
    exactly_once(&acks, 3);
    assert!(get(&m.requests_failed) >= 3);
    let text = logs.lock().expect("logs").clone();
    assert!(text.contains("refused our credentials"), "{text}");
    assert!(!text.contains("QkFE") && !text.contains("R09PRA"), "no key in logs: {text}");
}

#[tokio::test]
async fn refused_then_up_and_second_url() {
    // A socket bound but not listening: connections are refused until it listens.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let addr = socket.local_addr().expect("addr");
    let stub = Stub::default();
    let dir = tempfile::tempdir().expect("tmp");
    let run = launch(&options(vec![format!("http://{addr}")], dir.path()));
    run.send(0..4).await;
    eventually("connection attempts", || get(&run.metrics.requests_failed) >= 3).await;
    assert_eq!(run.acks.count(), 0);
    let listener = socket.listen(64).expect("listen");
    tokio::spawn(stub.clone().serve(listener));
    let (acks, _) = run.finish().await;
    exactly_once(&acks, 4);

    // Two URLs, the first refusing: the second takes the traffic.
    let dead = tokio::net::TcpSocket::new_v4().expect("socket");
    dead.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let stub2 = Stub::default();
    let up = start(&stub2).await;
    let run = launch(&options(
        vec![format!("http://{}", dead.local_addr().expect("addr")), format!("http://{up}")],
        dir.path(),
    ));
    run.send(0..4).await;
    let (acks, _) = run.finish().await;
    exactly_once(&acks, 4);
    assert_eq!(stub2.with(|s| s.stored.len()), 4);
}

#[tokio::test]
async fn everything_at_once_nothing_lost() {
    let stub = Stub::default();
    stub.with(|s| {
        s.whole.extend([503, 503]);
        for n in (0..300).step_by(7) {
            s.item_429.insert(id(n), 2);
        }
        for n in (0..300).step_by(50) {
            s.item_400.insert(id(n + 1));
        }
        for n in (0..300).step_by(11) {
            s.stored.insert(id(n), b"{}".to_vec());
        }
        s.max_body = Some(3000);
    });
    let addr = start(&stub).await;
    let dir = tempfile::tempdir().expect("tmp");
    let mut opts = options(vec![format!("http://{addr}")], dir.path());
    opts.max_in_flight = 2;
    let run = launch_with(&opts, BatchLimits { docs: 50, ..LIMITS });
    run.send(0..300).await;
    let (acks, m) = run.finish().await;
    exactly_once(&acks, 300);
    let dead = get(&m.docs_dead_lettered);
    assert_eq!(dead, 6);
    assert_eq!(get(&m.docs_stored) + get(&m.docs_duplicate) + dead, 300);
    assert_eq!(stub.with(|s| s.stored.len()) as u64, 300 - dead);
}

// ---------------------------------------------------------------- log capture

/// Captures this test's logs (a thread-local subscriber: tests run on their own threads and
/// `#[tokio::test]` uses a current-thread runtime).
fn capture_logs() -> Arc<Mutex<String>> {
    let buf = Arc::new(Mutex::new(String::new()));
    let w = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || LogWriter(w.clone()))
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    // Leaked on purpose: the guard must outlive the test body.
    std::mem::forget(tracing::subscriber::set_default(subscriber));
    buf
}

struct LogWriter(Arc<Mutex<String>>);
impl std::io::Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs").push_str(&String::from_utf8_lossy(b));
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
