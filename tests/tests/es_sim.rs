//! es-sim over HTTP, with a plain hyper client: the `_bulk` protocol, data streams, templates,
//! policies, read-back, auth, size limit, gzip, faults, down/up on the same port, the control
//! API, and the binary as a process.

use bytes::Bytes;
use calypso_testkit::es_sim::{Auth, EsOptions, EsSim, Flavour};
use calypso_testkit::eventually;
use calypso_testkit::process::{PATIENCE, Spawned};
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::io::Write;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

/// One request on a new connection; `Err` when the connection is refused.
async fn send(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> std::io::Result<Answer> {
    let addr = base.trim_start_matches("http://");
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    let mut req = hyper::Request::builder().method(method).uri(path).header("host", addr);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(body.into())).map_err(std::io::Error::other)?;
    let answer = tokio::time::timeout(PATIENCE, sender.send_request(req))
        .await
        .map_err(std::io::Error::other)?
        .map_err(std::io::Error::other)?;
    let (parts, body) = answer.into_parts();
    let body = body.collect().await.map_err(std::io::Error::other)?.to_bytes();
    Ok(Answer { status: parts.status.as_u16(), headers: parts.headers, body })
}

async fn call(es: &EsSim, method: &str, path: &str, body: impl Into<Bytes>) -> Answer {
    send(&es.url(), method, path, &[("content-type", "application/json")], body)
        .await
        .expect("es-sim answers")
}

async fn start(flavour: Flavour) -> EsSim {
    EsSim::start(EsOptions::flavour(flavour)).await.expect("es-sim starts")
}

fn statuses(bulk: &Value) -> Vec<u64> {
    bulk["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            i.as_object().and_then(|o| o.values().next()).and_then(|v| v["status"].as_u64()).expect("status")
        })
        .collect()
}

#[tokio::test]
async fn bulk_create_conflicts_and_reads_back() {
    let es = start(Flavour::Elasticsearch).await;
    let body = "{\"create\":{\"_index\":\"app\",\"_id\":\"1\"}}\n{\"message\":\"one\"}\n{\"create\":{\"_index\":\"app\",\"_id\":\"2\"}}\n{\"message\":\"two\"}\n";
    let first = call(&es, "POST", "/_bulk", body).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.headers.get("x-elastic-product").map(|v| v.as_bytes()), Some(&b"Elasticsearch"[..]));
    let first = first.json();
    assert_eq!((first["errors"].as_bool(), statuses(&first)), (Some(false), vec![201, 201]));
    assert_eq!(first["items"][0]["create"]["result"], "created");
    let again = call(&es, "POST", "/app/_bulk", body.replace("\"_index\":\"app\",", "")).await.json();
    assert_eq!((again["errors"].as_bool(), statuses(&again)), (Some(true), vec![409, 409]));
    assert_eq!(again["items"][1]["create"]["error"]["type"], "version_conflict_engine_exception");

    assert_eq!(es.count(), 2);
    assert_eq!(
        es.docs("app"),
        vec![json!({"message": "one", "_id": "1"}), json!({"message": "two", "_id": "2"})]
    );
    let stats = es.stats();
    assert_eq!((stats.bulk_requests, stats.items_with(201), stats.duplicates), (2, 2, 2));

    assert_eq!(call(&es, "GET", "/app/_count", "").await.json()["count"], 2);
    let hits = call(&es, "POST", "/app/_search", r#"{"query":{"match_all":{}},"size":1}"#).await.json();
    assert_eq!(hits["hits"]["total"]["value"], 2);
    assert_eq!(hits["hits"]["hits"].as_array().map(Vec::len), Some(1));
    assert_eq!(hits["hits"]["hits"][0]["_source"], json!({"message": "one"}));
    let doc = call(&es, "GET", "/app/_doc/2", "").await;
    assert_eq!((doc.status, doc.json()["_source"]["message"].as_str()), (200, Some("two")));
    assert_eq!(call(&es, "GET", "/app/_doc/3", "").await.status, 404);
    assert_eq!(
        call(&es, "GET", "/nope/_count", "").await.json()["error"]["type"],
        "index_not_found_exception"
    );
    assert_eq!(call(&es, "POST", "/_refresh", "").await.status, 200);
}

#[tokio::test]
async fn malformed_bodies_fail_the_whole_request() {
    let es = start(Flavour::Elasticsearch).await;
    let unterminated = call(&es, "POST", "/x/_bulk", "{\"index\":{}}\n{}").await;
    assert_eq!(unterminated.status, 400);
    let e = unterminated.json();
    assert_eq!(e["error"]["type"], "illegal_argument_exception");
    assert_eq!(e["error"]["reason"], "The bulk request must be terminated by a newline [\\n]");
    assert_eq!(
        call(&es, "POST", "/x/_bulk", "").await.json()["error"]["type"],
        "action_request_validation_exception"
    );
    let long = format!("{{\"create\":{{\"_id\":\"{}\"}}}}\n{{}}\n", "a".repeat(513));
    assert_eq!(
        call(&es, "POST", "/x/_bulk", long).await.status,
        400,
        "Elasticsearch validates ids for the whole request"
    );
    assert_eq!(es.count(), 0);
    assert_eq!(es.stats().refused_requests.get(&400), Some(&3));
}

#[tokio::test]
async fn data_streams_templates_and_mapping_conflicts() {
    let es = start(Flavour::Elasticsearch).await;
    let template = json!({"index_patterns": ["logs-calypso.*-*"], "priority": 200, "data_stream": {},
        "template": {"mappings": {"properties": {"error": {"properties": {"message": {"type": "text"}}}}}}});
    assert_eq!(
        call(&es, "PUT", "/_index_template/calypso", template.to_string()).await.json(),
        json!({"acknowledged": true})
    );
    assert_eq!(call(&es, "HEAD", "/_index_template/calypso", "").await.status, 200);
    assert_eq!(call(&es, "HEAD", "/_index_template/other", "").await.status, 404);
    let got = call(&es, "GET", "/_index_template/calypso", "").await.json();
    assert_eq!(got["index_templates"][0]["name"], "calypso");
    assert_eq!(got["index_templates"][0]["index_template"]["data_stream"], json!({}));

    let ts = "\"@timestamp\":\"2024-05-01T12:00:00.000Z\"";
    let body = format!(
        "{{\"create\":{{\"_id\":\"a\"}}}}\n{{{ts},\"message\":\"ok\"}}\n\
         {{\"index\":{{\"_id\":\"b\"}}}}\n{{{ts}}}\n\
         {{\"create\":{{\"_id\":\"c\"}}}}\n{{\"message\":\"no time\"}}\n\
         {{\"create\":{{\"_id\":\"d\"}}}}\n{{{ts},\"error\":\"flat\"}}\n\
         {{\"create\":{{\"_index\":\"Upper\",\"_id\":\"e\"}}}}\n{{}}\n"
    );
    let answer = call(&es, "POST", "/logs-calypso.engineserver-uat/_bulk", body).await.json();
    assert_eq!(statuses(&answer), [201, 400, 400, 400, 400]);
    let types: Vec<&str> = answer["items"].as_array().expect("items")[1..]
        .iter()
        .map(|i| {
            i.as_object()
                .and_then(|o| o.values().next())
                .and_then(|v| v["error"]["type"].as_str())
                .expect("type")
        })
        .collect();
    assert_eq!(
        types,
        [
            "illegal_argument_exception",
            "document_parsing_exception",
            "document_parsing_exception",
            "invalid_index_name_exception"
        ]
    );
    let backing = answer["items"][0]["create"]["_index"].as_str().expect("index");
    assert!(
        backing.starts_with(".ds-logs-calypso.engineserver-uat-") && backing.ends_with("-000001"),
        "{backing}"
    );
    let ds = call(&es, "GET", "/_data_stream/logs-calypso.engineserver-uat", "").await.json();
    assert_eq!(ds["data_streams"][0]["template"], "calypso");
    assert_eq!(es.count_in("logs-calypso.*"), 1);
    assert_eq!(call(&es, "GET", "/_data_stream/nope", "").await.status, 404);
}

/// What the shipper sends with every `_bulk`.
const SHIPPER_FILTER: &str = "errors,items.*.status,items.*.error";

/// The same bulk requests, in turn, to an es-sim answering them whole and to one answering them
/// with `filter_path=errors,items.*.status,items.*.error`: the filtered answer is the whole one
/// with only `errors`, and per item its `status` and, when it failed, its whole `error` — every
/// item kept, in order (Elasticsearch drops an item only when nothing of it matches).
#[tokio::test]
async fn filter_path_trims_bulk_answers_as_elasticsearch_does() {
    for flavour in [Flavour::Elasticsearch, Flavour::OpenSearch] {
        let (whole, trimmed) = (start(flavour).await, start(flavour).await);
        let ts = "\"@timestamp\":\"2024-05-01T12:00:00.000Z\"";
        let first = format!("{{\"create\":{{\"_id\":\"a\"}}}}\n{{{ts},\"log\":{{\"level\":\"INFO\"}}}}\n");
        let second = format!(
            "{{\"create\":{{\"_id\":\"a\"}}}}\n{{{ts},\"log\":{{\"level\":\"INFO\"}}}}\n\
             {{\"create\":{{\"_id\":\"b\"}}}}\n{{{ts}}}\n\
             {{\"create\":{{\"_id\":\"c\"}}}}\n{{{ts},\"log\":\"a string where an object is mapped\"}}\n\
             {{\"create\":{{\"_id\":\"d\"}}}}\n{{{ts}}}\n"
        );
        let path = "/logs-calypso.app-test/_bulk";
        let filtered = format!("{path}?filter_path={SHIPPER_FILTER}");
        for body in [&first, &second] {
            let full = call(&whole, "POST", path, body.clone()).await;
            let answer = call(&trimmed, "POST", &filtered, body.clone()).await;
            assert_eq!((full.status, answer.status), (200, 200));
            let full = full.json();
            let expected = json!({
                "errors": full["errors"],
                "items": full["items"].as_array().expect("items").iter().map(|item| {
                    let (op, body) = item.as_object().and_then(|o| o.iter().next()).expect("one op");
                    let mut kept = json!({"status": body["status"]});
                    if let Some(error) = body.get("error") {
                        kept["error"] = error.clone();
                    }
                    json!({op.as_str(): kept})
                }).collect::<Vec<_>>(),
            });
            assert_eq!(answer.json(), expected, "{flavour}");
        }
        let answer = call(&trimmed, "POST", &filtered, second.clone()).await;
        let text = String::from_utf8_lossy(&answer.body).into_owned();
        assert!(
            text.starts_with("{\"errors\":true,\"items\":[{\"create\":{\"status\":409,\"error\":{"),
            "{text}"
        );
        let answer = answer.json();
        assert_eq!(statuses(&answer), [409, 409, 400, 409], "{flavour}");
        assert_eq!(
            answer["items"][2]["create"]["error"]["type"].as_str().map(|t| t.ends_with("parsing_exception")),
            Some(true)
        );
        assert_eq!(
            answer["items"][0]["create"]["error"].as_object().map(|e| e.keys().cloned().collect::<Vec<_>>()),
            Some(vec!["index".into(), "index_uuid".into(), "reason".into(), "shard".into(), "type".into()])
        );

        // A bulk without failures: only `errors` is left of it with `items.*.error`.
        let ok = format!("{{\"create\":{{\"_id\":\"e\"}}}}\n{{{ts}}}\n");
        let answer = call(&trimmed, "POST", &format!("{path}?filter_path=errors,items.*.error"), ok).await;
        assert_eq!(answer.body, &b"{\"errors\":false}"[..]);
        assert_eq!(trimmed.count(), whole.count() + 1);
    }
}

/// Every answer but errors: `GET /`, `_count`, `_search`, templates, acknowledgements.
#[tokio::test]
async fn filter_path_applies_to_every_answer_but_errors() {
    let es = start(Flavour::Elasticsearch).await;
    assert_eq!(
        call(&es, "GET", "/?filter_path=version.number,tagline", "").await.json(),
        json!({"version": {"number": "8.15.0"}, "tagline": "You Know, for Search"})
    );
    let template = json!({"index_patterns": ["app-*"], "priority": 200, "template": {}});
    let put = call(&es, "PUT", "/_index_template/app?filter_path=nothing", template.to_string()).await;
    assert_eq!((put.status, put.json()), (200, json!({})), "no match at all: {{}}");
    assert_eq!(
        call(&es, "GET", "/_index_template/app?filter_path=index_templates.name", "").await.json(),
        json!({"index_templates": [{"name": "app"}]})
    );
    call(
        &es,
        "POST",
        "/app-1/_bulk",
        "{\"create\":{\"_id\":\"1\"}}\n{\"m\":1}\n{\"create\":{\"_id\":\"2\"}}\n{\"m\":2}\n",
    )
    .await;
    assert_eq!(call(&es, "GET", "/app-1/_count?filter_path=-_shards", "").await.json(), json!({"count": 2}));
    assert_eq!(
        call(&es, "POST", "/app-1/_search?filter_path=hits.hits._id,hits.hits._source.m", "{}").await.json(),
        json!({"hits": {"hits": [{"_id": "1", "_source": {"m": 1}}, {"_id": "2", "_source": {"m": 2}}]}})
    );
    // Percent-encoded, as clients send it.
    assert_eq!(
        call(&es, "GET", "/app-1/_doc/2?filter_path=found%2C_source.%2A", "").await.json(),
        json!({"found": true, "_source": {"m": 2}})
    );
    // Errors are never filtered (AbstractRestChannel.newErrorBuilder).
    let missing = call(&es, "GET", "/nope/_count?filter_path=count", "").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["type"], "index_not_found_exception");
    let refused = call(&es, "POST", "/app-1/_bulk?filter_path=errors", "{\"create\":{}}\n{}").await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["error"]["type"], "illegal_argument_exception");
    // The control API is es-sim's own: not filtered.
    assert_eq!(
        call(&es, "GET", "/_sim/count?index=app-1&filter_path=nothing", "").await.json(),
        json!({"count": 2})
    );
}

#[tokio::test]
async fn policies_per_flavour() {
    let es = start(Flavour::Elasticsearch).await;
    let policy = r#"{"policy":{"phases":{"delete":{"min_age":"7d","actions":{"delete":{}}}}}}"#;
    assert_eq!(call(&es, "PUT", "/_ilm/policy/calypso", policy).await.json(), json!({"acknowledged": true}));
    assert_eq!(call(&es, "GET", "/_ilm/policy/calypso", "").await.json()["calypso"]["version"], 1);
    let ism = call(&es, "PUT", "/_plugins/_ism/policies/calypso", policy).await;
    assert_eq!(ism.status, 400);
    assert_eq!(
        ism.json(),
        json!({"error": "no handler found for uri [/_plugins/_ism/policies/calypso] and method [PUT]"})
    );

    let os = start(Flavour::OpenSearch).await;
    let ilm = call(&os, "PUT", "/_ilm/policy/calypso", policy).await;
    assert_eq!(
        (ilm.status, ilm.json()["error"].as_str().is_some_and(|e| e.starts_with("no handler found"))),
        (400, true)
    );
    let ism_policy = r#"{"policy":{"description":"7 days","default_state":"hot","states":[]}}"#;
    let created = call(&os, "PUT", "/_plugins/_ism/policies/calypso", ism_policy).await;
    assert_eq!((created.status, created.json()["_id"].as_str()), (201, Some("calypso")));
    assert_eq!(call(&os, "PUT", "/_plugins/_ism/policies/calypso", ism_policy).await.status, 409);
    let updated =
        call(&os, "PUT", "/_plugins/_ism/policies/calypso?if_seq_no=0&if_primary_term=1", ism_policy).await;
    assert_eq!(updated.status, 200);
    assert_eq!(
        call(&os, "GET", "/_plugins/_ism/policies/calypso", "").await.json()["policy"]["policy_id"],
        "calypso"
    );
}

#[tokio::test]
async fn cluster_info_per_flavour() {
    let es = start(Flavour::Elasticsearch).await;
    let info = call(&es, "GET", "/", "").await;
    assert!(info.headers.contains_key("x-elastic-product"));
    assert!(info.json()["version"]["number"].as_str().is_some_and(|v| v.starts_with("8.")));
    let os = start(Flavour::OpenSearch).await;
    let info = call(&os, "GET", "/", "").await;
    assert!(!info.headers.contains_key("x-elastic-product"), "OpenSearch has no product header");
    assert_eq!(info.json()["version"]["distribution"], "opensearch");
    // No built-in logs-*-* template there: a plain index.
    let answer =
        call(&os, "POST", "/logs-a-b/_bulk", "{\"index\":{\"_id\":\"1\"}}\n{\"m\":1}\n").await.json();
    assert_eq!(answer["items"][0]["index"]["_index"], "logs-a-b");
}

#[tokio::test]
async fn auth_gzip_and_the_size_limit() {
    let opts = EsOptions {
        auth: Some(Auth::Basic { user: "elastic".into(), password: "s3cret".into() }),
        ..EsOptions::default()
    };
    let es = EsSim::start(opts).await.expect("starts");
    let anonymous = call(&es, "GET", "/", "").await;
    assert_eq!(anonymous.status, 401);
    let challenges: Vec<_> =
        anonymous.headers.get_all("www-authenticate").iter().filter_map(|v| v.to_str().ok()).collect();
    assert!(challenges.iter().any(|c| c.starts_with("Basic realm=")), "{challenges:?}");
    assert_eq!(anonymous.json()["error"]["type"], "security_exception");
    assert!(!String::from_utf8_lossy(&anonymous.body).contains("s3cret"));
    // base64("elastic:s3cret")
    let auth = ("authorization", "Basic ZWxhc3RpYzpzM2NyZXQ=");

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"{\"create\":{\"_id\":\"z\"}}\n{\"message\":\"zipped\"}\n").expect("gzip");
    let gz = gz.finish().expect("gzip");
    let headers = [auth, ("content-encoding", "gzip"), ("content-type", "application/x-ndjson")];
    let answer = send(&es.url(), "POST", "/zipped/_bulk", &headers, gz.clone()).await.expect("answer");
    assert_eq!(statuses(&answer.json()), [201]);
    assert_eq!(es.stats().gzip_requests, 1);
    assert_eq!(es.stats().bytes_in, gz.len() as u64, "bytes as sent");

    es.set_max_content_length(100);
    let big = format!("{{\"create\":{{}}}}\n{{\"message\":\"{}\"}}\n", "x".repeat(200));
    let answer = send(&es.url(), "POST", "/big/_bulk", &[auth], big).await.expect("answer");
    assert_eq!(answer.status, 413);
    assert!(String::from_utf8_lossy(&answer.body).contains("Request size exceeded"));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(format!("{{\"create\":{{}}}}\n{{\"message\":\"{}\"}}\n", "x".repeat(500)).as_bytes())
        .expect("gzip");
    let small_but_large = gz.finish().expect("gzip");
    assert!(small_but_large.len() < 100);
    let answer = send(&es.url(), "POST", "/big/_bulk", &headers, small_but_large).await.expect("answer");
    assert_eq!(answer.status, 413, "the limit applies to the decompressed body too");
    assert_eq!(es.stats().refused_requests.get(&413), Some(&2));
    assert_eq!(es.count(), 1);
}

#[tokio::test]
async fn injected_429s_and_503s() {
    let es = start(Flavour::Elasticsearch).await;
    es.set_item_429_every(2);
    let body: String =
        (0..4).map(|i| format!("{{\"create\":{{\"_id\":\"{i}\"}}}}\n{{\"n\":{i}}}\n")).collect();
    let answer = call(&es, "POST", "/i/_bulk", body.clone()).await.json();
    assert_eq!(statuses(&answer), [201, 429, 201, 429]);
    assert_eq!(answer["items"][1]["create"]["error"]["type"], "es_rejected_execution_exception");
    es.clear_faults();
    es.fail_next_requests(1);
    let refused = call(&es, "POST", "/i/_bulk", body.clone()).await;
    assert_eq!(refused.status, 503);
    let retried = call(&es, "POST", "/i/_bulk", body).await.json();
    assert_eq!(statuses(&retried), [409, 201, 409, 201], "only the refused items are new");
    assert_eq!(es.count(), 4);
    let stats = es.stats();
    assert_eq!((stats.items_with(429), stats.refused_requests.get(&503).copied()), (2, Some(1)));
}

#[tokio::test]
async fn down_refuses_connections_and_up_listens_on_the_same_port() {
    let es = start(Flavour::Elasticsearch).await;
    let url = es.url();
    assert_eq!(call(&es, "GET", "/", "").await.status, 200);
    es.down().await;
    assert!(!es.is_up());
    let refused = send(&url, "GET", "/", &[], "").await.err().map(|e| e.kind());
    assert_eq!(refused, Some(std::io::ErrorKind::ConnectionRefused));
    es.up().expect("rebinds");
    assert_eq!(es.url(), url);
    assert_eq!(call(&es, "GET", "/", "").await.status, 200);

    // Through the control API: answered, then down, then up by itself.
    let answer = call(&es, "POST", "/_sim/down?for=300ms", "").await;
    assert_eq!(answer.status, 200);
    assert!(send(&url, "GET", "/", &[], "").await.is_err(), "down right after the answer");
    eventually("es-sim up again", PATIENCE, async || send(&url, "GET", "/", &[], "").await.ok()).await;
}

#[tokio::test]
async fn control_api() {
    let es = start(Flavour::Elasticsearch).await;
    call(&es, "POST", "/logs-x/_bulk", "{\"index\":{\"_id\":\"1\"}}\n{\"m\":1}\n").await;
    assert_eq!(call(&es, "GET", "/_sim/docs?index=logs-*", "").await.json(), json!([{"m": 1, "_id": "1"}]));
    assert_eq!(call(&es, "GET", "/_sim/count", "").await.json(), json!({"count": 1}));
    assert_eq!(call(&es, "GET", "/_sim/ids", "").await.json(), json!(["1"]));
    assert_eq!(call(&es, "GET", "/_sim/stats", "").await.json()["items_by_status"], json!({"201": 1}));
    let faults = call(&es, "POST", "/_sim/faults?item_429_every=5&latency=1ms", "").await.json();
    assert_eq!((faults["item_429_every"].as_u64(), faults["latency_ms"].as_u64()), (Some(5), Some(1)));
    assert_eq!(es.faults().item_429_every, 5);
    assert_eq!(call(&es, "DELETE", "/_sim/faults", "").await.json()["item_429_every"], 0);
    assert_eq!(call(&es, "POST", "/_sim/faults?nope=1", "").await.status, 400);
    assert_eq!(call(&es, "DELETE", "/_sim/docs", "").await.status, 200);
    assert_eq!(es.count(), 0);
}

#[tokio::test]
async fn the_binary_announces_itself_and_exits_0_on_sigterm() {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_es-sim"));
    cmd.args(["--listen", "127.0.0.1:0", "--flavour", "opensearch", "--item-429-every", "2"])
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
        .strip_prefix("es-sim listening on ")
        .unwrap_or_else(|| panic!("the announce line: {line:?}"))
        .to_owned();
    let info = send(&url, "GET", "/", &[], "").await.expect("answers");
    assert_eq!(
        serde_json::from_slice::<Value>(&info.body).expect("json")["version"]["distribution"],
        "opensearch"
    );
    let body = "{\"index\":{\"_id\":\"1\"}}\n{}\n{\"index\":{\"_id\":\"2\"}}\n{}\n";
    let answer = send(&url, "POST", "/i/_bulk", &[], body).await.expect("answers");
    let answer: Value = serde_json::from_slice(&answer.body).expect("json");
    assert_eq!(statuses(&answer), [201, 429], "fault flags apply");
    sim.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(sim.exit_code().await, 0, "stderr:\n{}", sim.stderr());
}

#[tokio::test]
async fn ten_thousand_documents_in_one_request() {
    let es = start(Flavour::Elasticsearch).await;
    let mut body = String::new();
    for i in 0..10_000 {
        body.push_str(&format!("{{\"create\":{{\"_id\":\"doc-{i}\"}}}}\n{{\"@timestamp\":\"2024-05-01T00:00:00Z\",\"message\":\"m{i}\",\"log\":{{\"level\":\"INFO\"}}}}\n"));
    }
    let answer = call(&es, "POST", "/logs-bench-x/_bulk", body).await.json();
    assert_eq!(answer["errors"], false);
    assert_eq!(es.count_in("logs-bench-x"), 10_000);
    let _ = Duration::ZERO;
}
