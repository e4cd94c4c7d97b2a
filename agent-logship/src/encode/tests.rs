use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::*;
use crate::record::{CriLine, PodRef, Stream};

fn ctx(format: Format) -> EncodeContext {
    EncodeContext {
        component: "DataServer".into(),
        environment: Some("uat".into()),
        namespace: Some("calypso-uat".into()),
        pod_name: Some("dataserver-0".into()),
        node_name: Some("node-1".into()),
        container_name: Some("dataserver".into()),
        host_name: Some("dataserver-0".into()),
        time_zone: TimeZone::UTC,
        target: Target::DataStream,
        format,
    }
}

fn file() -> FileMeta {
    FileMeta { path: "/var/log/calypso/ds.log".into(), fingerprint: 7, name: "ds.log".into(), pod: None }
}

fn record(text: &str) -> Record {
    Record {
        offset: 100,
        end: 100 + text.len() as u64 + 1,
        bytes: bytes::Bytes::copy_from_slice(text.as_bytes()),
        cut: false,
        cri: None,
        chain: 42,
        redacted: false,
    }
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_795_000_000_123)
}

/// A record encoded on its own (the pipeline encodes straight into a `_bulk` body).
struct Encoded {
    index: Arc<str>,
    id: String,
    source: Vec<u8>,
    time_unparsed: bool,
}

fn encode(e: &Encoder, r: &Record, f: &FileMeta) -> Encoded {
    let mut source = Vec::new();
    let time_unparsed = e.encode_into(r, f, &now, &mut source);
    Encoded { index: e.index().clone(), id: e.id(r, f).as_str().to_string(), source, time_unparsed }
}

fn doc(e: &Encoder, r: &Record, f: &FileMeta) -> (Value, Encoded) {
    let enc = encode(e, r, f);
    assert!(!enc.source.contains(&b'\n'), "one line");
    (serde_json::from_slice(&enc.source).expect("valid JSON"), enc)
}

#[test]
fn calypso_record_with_stack_trace() {
    let e = Encoder::new(ctx(Format::Log4j));
    let r = record(
        "2026-11-27 13:53:33,001 ERROR [RMI TCP Connection(2)-10.0.0.1] [com.calypso.DS] Connection lost\ncom.calypso.PersistenceException: could not read\n\tat com.calypso.A.b(A.java:1)\nCaused by: java.sql.SQLException: reset\n\t... 12 more",
    );
    let (d, enc) = doc(&e, &r, &file());
    assert_eq!(
        d,
        json!({
            "@timestamp": "2026-11-27T13:53:33.001Z",
            "message": "Connection lost",
            "log": {"level": "ERROR", "logger": "com.calypso.DS", "file": {"path": "/var/log/calypso/ds.log"}, "offset": 100, "flags": ["multiline"]},
            "process": {"thread": {"name": "RMI TCP Connection(2)-10.0.0.1"}},
            "error": {"type": "com.calypso.PersistenceException", "message": "could not read", "stack_trace": "com.calypso.PersistenceException: could not read\n\tat com.calypso.A.b(A.java:1)\nCaused by: java.sql.SQLException: reset\n\t... 12 more"},
            "kubernetes": {"namespace": "calypso-uat", "pod": {"name": "dataserver-0"}, "node": {"name": "node-1"}, "container": {"name": "dataserver"}},
            "service": {"name": "DataServer"},
            "calypso": {"environment": "uat"},
            "event": {"dataset": "calypso.dataserver"},
            "data_stream": {"type": "logs", "dataset": "calypso.dataserver", "namespace": "calypso_uat"},
            "host": {"name": "dataserver-0"}
        })
    );
    assert_eq!(&*enc.index, "logs-calypso.dataserver-calypso_uat");
    assert!(!enc.time_unparsed);
    assert_eq!(enc.id.len(), 32);
    assert!(enc.id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(
        enc.id,
        format!("{:032x}", document_id("calypso-uat", "dataserver-0", "dataserver", "ds.log", 100, 42))
    );
}

#[test]
fn unparsable_time_is_ingest_time_and_flagged() {
    let e = Encoder::new(ctx(Format::Log4j));
    let (d, enc) = doc(&e, &Record { cut: true, ..record("\tat orphan.Frame(X.java:1)") }, &file());
    assert!(enc.time_unparsed);
    assert_eq!(d["@timestamp"], "2026-11-18T11:06:40.123Z");
    assert_eq!(d["log"]["flags"], json!(["cut", "time_unparsed"]));
    assert_eq!(d["error"]["stack_trace"], "\tat orphan.Frame(X.java:1)");
    let (d, enc) = doc(&e, &record("2026-02-30 13:53:33,001 INFO [main] [X] no such day"), &file());
    assert!(enc.time_unparsed);
    assert_eq!(d["message"], "no such day");
}

#[test]
fn time_zone_applies() {
    let e = Encoder::new(EncodeContext {
        time_zone: parse::parse_time_zone("Europe/London").expect("tz"),
        ..ctx(Format::Log4j)
    });
    let (d, _) = doc(&e, &record("2026-07-01 12:00:00,000 INFO [main] [X] summer"), &file());
    assert_eq!(d["@timestamp"], "2026-07-01T11:00:00.000Z");
}

#[test]
fn cri_record_takes_the_pod_from_the_file() {
    let e = Encoder::new(ctx(Format::Cri));
    let pod = PodRef {
        namespace: "trading".into(),
        pod: "risk-0".into(),
        container: "risk".into(),
        container_id: Some("abc".into()),
    };
    let f = FileMeta { pod: Some(pod), ..file() };
    let r = Record {
        cri: Some(Box::new(CriLine {
            time: "2026-11-27T13:53:32.123456789+01:00".into(),
            stream: Stream::Stderr,
        })),
        ..record("plain text on stderr")
    };
    let (d, enc) = doc(&e, &r, &f);
    assert_eq!(d["@timestamp"], "2026-11-27T12:53:32.123Z", "the runtime's time when the line has none");
    assert_eq!(
        d["kubernetes"],
        json!({"namespace": "trading", "pod": {"name": "risk-0"}, "node": {"name": "node-1"}, "container": {"name": "risk"}})
    );
    assert_eq!(d["container"]["id"], "abc");
    assert_eq!(d["stream"], "stderr");
    assert!(!enc.time_unparsed);
    assert_ne!(enc.id, e.id(&r, &file()).as_str(), "the pod is part of the id");
}

#[test]
fn json_lines_keep_their_fields_but_not_ours() {
    let e = Encoder::new(ctx(Format::Json));
    let line = r#"{"@timestamp":"2026-11-27T13:53:32.123Z","log.level":"WARN","message":"m","process.thread.name":"main","log":{"logger":"L","offset":1,"file":{"path":"/fake"}},"host.name":"liar","kubernetes":{"pod":{"name":"x"}},"service.name":"Mine","error":{"type":"java.lang.X"},"agent_logship":{"id":"forged"},"agent_logship.id":"forged","event":{"id":"app-1"}}"#;
    let (d, enc) = doc(&e, &record(line), &file());
    assert!(!enc.time_unparsed);
    assert_eq!(d["@timestamp"], "2026-11-27T13:53:32.123Z");
    assert_eq!(d["log.level"], "WARN");
    assert_eq!(d["log"], json!({"logger": "L"}));
    assert_eq!(d["log.file.path"], "/var/log/calypso/ds.log");
    assert_eq!(d["log.offset"], 100);
    assert_eq!(d["host.name"], "dataserver-0");
    assert_eq!(d["kubernetes.pod.name"], "dataserver-0");
    assert!(d.get("kubernetes").is_none());
    assert_eq!(d["service.name"], "Mine", "the line's ECS field wins");
    assert_eq!(d["calypso.environment"], "uat");
    assert_eq!(d["error"]["type"], "java.lang.X");
    assert_eq!(d["data_stream.namespace"], "calypso_uat");
    // agent_logship.* is ours (with AGENT_LOGSHIP_ES_DOCUMENT_IDS=server, the record's id); the
    // line's own event.id stays its own.
    assert!(d.get("agent_logship").is_none() && d.get("agent_logship.id").is_none(), "{d}");
    assert_eq!(d["event"]["id"], "app-1");
    // Keys are unique (Elasticsearch rejects duplicates).
    let text = String::from_utf8(enc.source).expect("utf8");
    assert_eq!(text.matches("\"log.offset\"").count(), 1);
}

#[test]
fn json_without_time_or_not_an_object() {
    let e = Encoder::new(ctx(Format::Json));
    let (d, enc) = doc(&e, &record(r#"{"message":"no time"}"#), &file());
    assert!(enc.time_unparsed);
    assert_eq!(d["log.flags"], json!(["time_unparsed"]));
    let (d, enc) = doc(&e, &record("plain \u{1} text"), &file());
    assert!(enc.time_unparsed);
    assert_eq!(d["message"], "plain \u{1} text");
    assert_eq!(d["log"]["flags"], json!(["time_unparsed", "not_json"]));
    let (d, _) = doc(&e, &record("[1,2]"), &file());
    assert_eq!(d["message"], "[1,2]");
}

#[test]
fn masked_records_are_tagged_and_a_json_line_keeps_its_own_tags() {
    let masked = |text: &str| Record { redacted: true, ..record(text) };
    let e = Encoder::new(ctx(Format::Log4j));
    let (d, _) = doc(&e, &masked("2026-11-27 13:53:33,001 INFO [main] [X] password=<redacted>"), &file());
    assert_eq!(d["tags"], json!(["redacted"]));
    let (d, _) = doc(&e, &record("2026-11-27 13:53:33,001 INFO [main] [X] clean"), &file());
    assert!(d.get("tags").is_none());
    let e = Encoder::new(ctx(Format::Json));
    for (tags, want) in [
        ("", json!(["redacted"])),
        (r#","tags":null"#, json!(["redacted"])),
        (r#","tags":["a","b"]"#, json!(["a", "b", "redacted"])),
        (r#","tags":["redacted"]"#, json!(["redacted"])),
        (r#","tags":"audit""#, json!(["audit", "redacted"])),
        (r#","tags":{"k":1}"#, json!([r#"{"k":1}"#, "redacted"])),
    ] {
        let (d, _) = doc(&e, &masked(&format!(r#"{{"message":"m"{tags}}}"#)), &file());
        assert_eq!(d["tags"], want, "{tags}");
    }
    let (d, _) = doc(&e, &masked("not json password=<redacted>"), &file());
    assert_eq!(d["tags"], json!(["redacted"]));
}

#[test]
fn fixed_index_and_names() {
    let e = Encoder::new(EncodeContext {
        target: Target::Index("Calypso Logs/UAT".into()),
        namespace: None,
        ..ctx(Format::Log4j)
    });
    assert_eq!(&**e.index(), "calypso_logs_uat");
    let (d, _) = doc(&e, &record("2026-11-27 13:53:33,001 INFO [main] [X] a"), &file());
    assert!(d.get("data_stream").is_none());
    let e = Encoder::new(EncodeContext {
        namespace: None,
        component: "Risk-Server".into(),
        ..ctx(Format::Log4j)
    });
    assert_eq!(&**e.index(), "logs-calypso.risk_server-default");
    assert!(index_name(&"x".repeat(300)).len() <= 255);
    assert_eq!(index_name("-_+Ab"), "ab");
    assert_eq!(index_name("é".repeat(200).as_str()).len(), 254);
}

#[test]
fn ids_differ_by_every_ingredient() {
    let base = document_id("ns", "pod", "c", "f", 2, 3);
    assert_eq!(base, document_id("ns", "pod", "c", "f", 2, 3));
    let long = "p".repeat(600);
    let streaming = |pod: &str| {
        let mut h = xxhash_rust::xxh3::Xxh3Default::new();
        for s in ["ns", pod, "c", "f"] {
            h.update(&(s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        }
        h.update(&2u64.to_le_bytes());
        h.update(&3u128.to_le_bytes());
        h.digest128()
    };
    assert_eq!(base, streaming("pod"));
    assert_eq!(document_id("ns", &long, "c", "f", 2, 3), streaming(&long), "both paths hash the same bytes");
    for other in [
        document_id("ns2", "pod", "c", "f", 2, 3),
        document_id("ns", "pod2", "c", "f", 2, 3),
        document_id("ns", "pod", "c2", "f", 2, 3),
        document_id("nsp", "od", "c", "f", 2, 3),
        document_id("ns", "pod", "c", "g", 2, 3),
        document_id("ns", "pod", "c", "f", 9, 3),
        document_id("ns", "pod", "c", "f", 2, 9),
    ] {
        assert_ne!(base, other);
    }
}

/// Not a benchmark harness, a floor: `cargo test --release -p agent-logship encode_speed --
/// --ignored --nocapture` prints MB/s (see bench/README.md).
#[test]
#[ignore = "timing; run in release"]
fn encode_speed() {
    use crate::frame::Position;
    use crate::framing::{FramingOptions, make_frame};
    let mut log = Vec::new();
    let mut i = 0u64;
    while log.len() < 50 << 20 {
        log.extend_from_slice(format!("2026-11-27 13:53:{:02},{:03} INFO  [pool-1-thread-{}] [com.calypso.tk.Engine] processed trade {i} in 12 ms\n", i % 60, i % 1000, i % 8).as_bytes());
        if i.is_multiple_of(5) {
            log.extend_from_slice(b"com.calypso.tk.core.PersistenceException: could not save trade\n\tat com.calypso.tk.service.sql.TradeSQL.save(TradeSQL.java:311)\n\tat com.calypso.tk.service.RemoteTradeImpl.save(RemoteTradeImpl.java:88)\nCaused by: java.sql.SQLRecoverableException: IO Error\n\tat oracle.jdbc.driver.T4CConnection.logon(T4CConnection.java:489)\n\t... 12 more\n");
        }
        i += 1;
    }
    let e = Encoder::new(ctx(Format::Log4j));
    let t0 = std::time::Instant::now();
    let mut f = make_frame(Format::Log4j, FramingOptions::default())(Position::default());
    let mut recs = Vec::new();
    for c in log.chunks(64 << 10) {
        f.push(c, tokio::time::Instant::now(), &mut recs);
    }
    f.finish(&mut recs);
    let framed = t0.elapsed();
    let t1 = std::time::Instant::now();
    let mut out = Vec::with_capacity(1 << 20);
    let mut ids = 0u64;
    for r in &recs {
        out.clear();
        e.encode_into(r, &file(), &now, &mut out);
        ids ^= document_id("a", "b", "c", "d", r.offset, r.chain) as u64;
    }
    let encoded = t1.elapsed();
    let mb = log.len() as f64 / 1e6;
    eprintln!(
        "{mb:.0} MB, {} records: framing {:.0} MB/s, encoding+ids {:.0} MB/s, both {:.0} MB/s ({ids:x})",
        recs.len(),
        mb / framed.as_secs_f64(),
        mb / encoded.as_secs_f64(),
        mb / (framed + encoded).as_secs_f64()
    );
}

#[test]
fn each_document_has_its_own_files_path_when_files_alternate() {
    let e = Encoder::new(ctx(Format::Log4j));
    let plain = file();
    let odd = FileMeta { path: "/var/log/calypso/a \"quoted\"\\dir/ds.log".into(), ..file() };
    // The same path in another allocation (a file met again after a rescan) reads the same.
    let again = FileMeta { path: plain.path.to_string().into(), ..file() };
    let r = record("2026-11-27 13:53:33,001 INFO [main] [X] hello");
    for (f, want) in [
        (&plain, &*plain.path),
        (&odd, &*odd.path),
        (&odd, &*odd.path),
        (&again, &*plain.path),
        (&plain, &*plain.path),
    ] {
        assert_eq!(doc(&e, &r, f).0["log"]["file"]["path"], want);
    }
    let e = Encoder::new(ctx(Format::Json));
    let r = record(r#"{"message":"m"}"#);
    for (f, want) in [(&plain, &*plain.path), (&odd, &*odd.path)] {
        assert_eq!(doc(&e, &r, f).0["log.file.path"], want);
    }
}
