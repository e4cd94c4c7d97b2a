//! Credentials never reach Elasticsearch, end to end: agent-logship as a process ships a log4j
//! file, a JSON file and Kubernetes Events (kube-sim) into es-sim, and refused documents into the
//! dead-letter data stream and the dead-letter file. Every form of credential the rules know is
//! in a log4j line, a stack-trace line, a JSON line, an Event message and a dead letter; the test
//! reads back every stored document and every byte on disk: no secret anywhere, every byte
//! around a secret as written, `tags: ["redacted"]` on exactly the documents that held one, and
//! the counts by rule on `/metrics`. Then: a log without credentials gives the same documents
//! with masking on and off; a restart with other rules stores no acknowledged record twice.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use calypso_testkit::es_sim::{EsOptions, EsSim};
use calypso_testkit::eventually;
use calypso_testkit::kube_sim::{KubeOptions, KubeSim, NewEvent};
use calypso_testkit::logwriter::{LogConfig, LogWriter};
use calypso_testkit::process::Spawned;
use nix::sys::signal::Signal;
use serde_json::Value;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_agent-logship");
const MASK: &str = "<redacted>";

/// Every secret below, exactly as the rules mask it (the JWT whole, the PEM body between its
/// marker lines).
const SECRETS: [&str; 12] = [
    "Sx-Oracle-1",
    "Sx-Param-2",
    "Sx-Odbc-3",
    "Sx-Url-4",
    "Sx-Colon-5",
    "Sx-Json-6",
    "Sx-Xml-7",
    "U3gtQmFzaWMtOA==",
    "Sx-Bearer-9",
    "Sx-ApiKey-10",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTeC1KV1QifQ.Sx-Jwt-11",
    "\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\nSxPemBody13\n",
];

/// Every single-line form in one text, each secret in its usual place.
fn forms() -> String {
    [
        "jdbc:oracle:thin:calypso/Sx-Oracle-1@db-host:1521/CALP",
        "jdbc:postgresql://db/calypso?user=calypso&password=Sx-Param-2",
        "Driver={Oracle};Uid=calypso;Pwd=Sx-Odbc-3;",
        "https://svc:Sx-Url-4@es.bank:9200/_bulk",
        "client_secret: Sx-Colon-5",
        r#"{"api_key":"Sx-Json-6"}"#,
        "<password>Sx-Xml-7</password>",
        "Authorization: Basic U3gtQmFzaWMtOA==",
        "Authorization: Bearer Sx-Bearer-9",
        "Authorization: ApiKey Sx-ApiKey-10",
        "session eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTeC1KV1QifQ.Sx-Jwt-11 end",
    ]
    .join(" ; ")
}

fn pem() -> String {
    format!("-----BEGIN RSA PRIVATE KEY-----{}-----END RSA PRIVATE KEY-----", SECRETS[11])
}

/// `text` as it must be stored: each secret replaced by the mask, nothing else.
fn masked(text: &str) -> String {
    SECRETS.iter().fold(text.to_owned(), |t, s| t.replace(s, MASK))
}

/// No secret in `text` (a stored document, a file on disk), not even its distinctive part.
fn assert_no_secret(what: &str, text: &str) {
    for s in SECRETS {
        let core = s.trim().lines().last().unwrap_or(s);
        assert!(!text.contains(core), "{what} holds {core:?}: {text}");
    }
}

fn agent(env: &[(&str, &str)]) -> Spawned {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("AGENT_LOG", "info")
        .env("AGENT_LOGSHIP_LISTEN", "127.0.0.1:0")
        .env("AGENT_LOGSHIP_BATCH_AGE", "100ms")
        .env("AGENT_LOGSHIP_FLUSH_TIMEOUT", "300ms")
        .env("AGENT_LOGSHIP_NAMESPACE", "calypso")
        .env("AGENT_LOGSHIP_POD_NAME", "dataserver-0")
        .env("AGENT_LOGSHIP_CONTAINER_NAME", "calypso")
        .envs(env.iter().copied())
        .stdout(Stdio::null());
    Spawned::start(cmd)
}

fn refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// A field by its dotted name, nested or flat.
fn field<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    doc.get(name).or_else(|| name.split('.').try_fold(doc, |v, part| v.get(part)))
}

fn text<'a>(doc: &'a Value, name: &str) -> &'a str {
    field(doc, name).and_then(Value::as_str).unwrap_or_else(|| panic!("no {name}: {doc}"))
}

fn tagged(doc: &Value) -> bool {
    field(doc, "tags").and_then(Value::as_array).is_some_and(|t| t.iter().any(|t| t == "redacted"))
}

async fn stop(mut agent: Spawned) {
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_reaches_elasticsearch_or_the_disk_and_every_other_byte_does() {
    let es = EsSim::start(EsOptions::default()).await.expect("es-sim");
    // A second Elasticsearch whose dead-letter data stream refuses everything: dead letters go
    // to the file in the data directory.
    let es_refusing = EsSim::start(EsOptions::default()).await.expect("es-sim");
    es_refusing
        .put_template(
            "refuse-dead-letters",
            serde_json::json!({
                "index_patterns": ["logs-agent_logship.dead_letter-*"],
                "data_stream": {},
                "priority": 500,
                "template": {"mappings": {"properties": {"event": {"properties": {"original": {"type": "long"}}}}}}
            }),
        )
        .expect("template");
    let kube = KubeSim::start(KubeOptions::default()).await.expect("kube-sim");
    let dir = tempfile::tempdir().expect("tempdir");
    for sub in ["log4j", "json", "data-log4j", "data-json", "data-refused"] {
        std::fs::create_dir(dir.path().join(sub)).expect("mkdir");
    }
    let forms = forms();

    // log4j: the forms in a line; in a stack trace's first line and a frame; a PEM key in a
    // record's continuation lines; a record without any.
    let log4j = format!(
        "2026-12-07 10:00:01,123 ERROR [main] [DataServer] cannot connect: {forms}\n\
         2026-12-07 10:00:02,000 ERROR [main] [DataServer] connection failed\n\
         java.sql.SQLException: {forms}\n\
         \tat oracle.jdbc.driver.T4CConnection.logon(T4CConnection.java:489) password=Sx-Param-2\n\
         2026-12-07 10:00:03,000 WARN  [main] [Keys] loaded\n{pem}\n\
         2026-12-07 10:00:04,000 INFO  [main] [Trade] trade T-4711 booked by user=ops at 10:00:04\n",
        pem = pem()
    );
    std::fs::write(dir.path().join("log4j/dataserver.log"), &log4j).expect("write");
    // JSON: the forms in the message and a secret field; a line refused by the mapping (its
    // `user` an object after a string), with the forms; a line without any.
    let forms_json = serde_json::to_string(&forms).expect("JSON string");
    let json = format!(
        "{{\"@timestamp\":\"2026-12-07T10:00:01.000Z\",\"message\":{forms_json},\"user\":\"alice\",\"db\":{{\"password\":\"Sx-Param-2\",\"pool\":4}},\"tags\":[\"audit\"]}}\n\
         {{\"@timestamp\":\"2026-12-07T10:00:02.000Z\",\"message\":{forms_json},\"user\":{{\"id\":7}}}}\n\
         {{\"@timestamp\":\"2026-12-07T10:00:03.000Z\",\"message\":\"trade T-4712 booked\",\"user\":\"bob\"}}\n"
    );
    std::fs::write(dir.path().join("json/app.json.log"), &json).expect("write");
    kube.create_event(NewEvent::about(
        "calypso",
        "Pod",
        "dataserver-0",
        "Failed",
        &format!("pull failed: {forms}"),
    ))
    .expect("event");

    let files_and_events = agent(&[
        ("AGENT_LOGSHIP_PATHS", &format!("{}/*.log", s(&dir.path().join("log4j")))),
        ("AGENT_LOGSHIP_DATA_DIR", s(&dir.path().join("data-log4j"))),
        ("AGENT_LOGSHIP_ES_URL", &es.url()),
        ("AGENT_LOGSHIP_COMPONENT", "dataserver"),
        ("AGENT_LOGSHIP_EVENTS", "true"),
        ("AGENT_LOGSHIP_EVENTS_NAMESPACE", "calypso"),
        ("AGENT_LOGSHIP_KUBE_URL", &kube.url()),
    ]);
    let json_glob = format!("{}/*.log", s(&dir.path().join("json")));
    let json_env = |data: &str, url: String| {
        vec![
            ("AGENT_LOGSHIP_PATHS".to_owned(), json_glob.clone()),
            ("AGENT_LOGSHIP_FORMAT".to_owned(), "json".to_owned()),
            ("AGENT_LOGSHIP_COMPONENT".to_owned(), "app".to_owned()),
            ("AGENT_LOGSHIP_DATA_DIR".to_owned(), s(&dir.path().join(data)).to_owned()),
            ("AGENT_LOGSHIP_ES_URL".to_owned(), url),
        ]
    };
    let json_agent = agent(&refs(&json_env("data-json", es.url())));
    let refusing_agent = agent(&refs(&json_env("data-refused", es_refusing.url())));

    let dead_stream = "logs-agent_logship.dead_letter-calypso";
    let dead_file = dir.path().join("data-refused/dead-letter.ndjson");
    eventually("every document stored or dead-lettered", Duration::from_secs(60), async || {
        let done = es.count_in("logs-calypso.dataserver-calypso") == 4
            && es.count_in("logs-kubernetes.events-calypso") == 1
            && es.count_in("logs-calypso.app-calypso") == 2
            && es.count_in(dead_stream) == 1
            && es_refusing.count_in("logs-calypso.app-calypso") == 2
            && std::fs::read_to_string(&dead_file).is_ok_and(|t| t.lines().count() == 1);
        done.then_some(())
    })
    .await;

    // The counts by rule, before the agents stop: one document each for the single-line forms
    // (the three log4j records, the Event), the PEM key once.
    let count = async |rule: &str| {
        files_and_events.metric(&format!("agent_logship_redacted_documents_total{{rule=\"{rule}\"}}")).await
    };
    assert_eq!(count("url_userinfo").await, Some(3.0), "{}", files_and_events.stderr());
    assert_eq!(count("oracle_credentials").await, Some(3.0));
    assert_eq!(count("json_web_token").await, Some(3.0));
    assert_eq!(count("xml_secret_element").await, Some(3.0));
    assert_eq!(count("pem_private_key").await, Some(1.0));
    stop(files_and_events).await;
    stop(json_agent).await;
    stop(refusing_agent).await;

    // Everything stored, in both Elasticsearches: no secret anywhere.
    let all: Vec<Value> = es.docs("*").into_iter().chain(es_refusing.docs("*")).collect();
    for doc in &all {
        assert_no_secret("a stored document", &doc.to_string());
    }
    // Every byte on disk the agents wrote: checkpoints, the Events spool, the dead-letter file.
    for data in ["data-log4j", "data-json", "data-refused"] {
        for entry in walk(&dir.path().join(data)) {
            let bytes = std::fs::read(&entry).expect("read");
            assert_no_secret(&entry.display().to_string(), &String::from_utf8_lossy(&bytes));
        }
    }

    // log4j: each record byte for byte, its secrets masked; tagged when it held one.
    let by_offset: BTreeMap<u64, Value> = es
        .docs("logs-calypso.dataserver-calypso")
        .into_iter()
        .map(|d| (field(&d, "log.offset").and_then(Value::as_u64).expect("offset"), d))
        .collect();
    let docs: Vec<&Value> = by_offset.values().collect();
    assert_eq!(text(docs[0], "message"), masked(&format!("cannot connect: {forms}")));
    assert_eq!(text(docs[1], "message"), "connection failed");
    assert_eq!(
        text(docs[1], "error.stack_trace"),
        masked(&format!(
            "java.sql.SQLException: {forms}\n\
             \tat oracle.jdbc.driver.T4CConnection.logon(T4CConnection.java:489) password=Sx-Param-2"
        ))
    );
    assert_eq!(text(docs[1], "error.message"), masked(&forms));
    assert_eq!(text(docs[2], "message"), masked(&format!("loaded\n{}", pem())));
    assert!(text(docs[2], "message").contains(&format!("-----BEGIN RSA PRIVATE KEY-----{MASK}-----END RSA")));
    assert_eq!(text(docs[3], "message"), "trade T-4711 booked by user=ops at 10:00:04");
    assert_eq!(docs.iter().map(|d| tagged(d)).collect::<Vec<_>>(), [true, true, true, false]);

    // The Event's message.
    let events = es.docs("logs-kubernetes.events-calypso");
    assert_eq!(text(&events[0], "message"), masked(&format!("pull failed: {forms}")));
    assert!(tagged(&events[0]));

    // JSON: the message and the secret field masked, the rest as written, the line's own tag kept.
    let mut json_docs = es.docs("logs-calypso.app-calypso");
    json_docs.sort_by_key(|d| text(d, "@timestamp").to_owned());
    let first = &json_docs[0];
    assert_eq!(text(first, "message"), masked(&forms));
    assert_eq!(field(first, "db.password"), Some(&Value::from(MASK)));
    assert_eq!(field(first, "db.pool"), Some(&Value::from(4)));
    assert_eq!(text(first, "user"), "alice");
    assert_eq!(field(first, "tags"), Some(&serde_json::json!(["audit", "redacted"])));
    assert_eq!(text(&json_docs[1], "message"), "trade T-4712 booked");
    assert!(!tagged(&json_docs[1]));

    // The dead letters: the original as sent, masked, in the data stream and in the file.
    let letter = &es.docs(dead_stream)[0];
    let original: Value = serde_json::from_str(text(letter, "event.original")).expect("the original");
    assert_eq!(text(&original, "message"), masked(&forms));
    assert!(tagged(&original));
    let line = std::fs::read_to_string(&dead_file).expect("the dead-letter file");
    let kept: Value = serde_json::from_str(line.trim()).expect("a dead letter");
    let original: Value =
        serde_json::from_str(kept["source"]["event"]["original"].as_str().expect("original")).expect("JSON");
    assert_eq!(text(&original, "message"), masked(&forms));
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

/// The NDJSON documents agent-logship writes on stdout (no Elasticsearch) for `dir/app.log` of
/// `records` records, all of them.
async fn documents_on_stdout(dir: &Path, run: &str, records: usize, extra: &[(&str, &str)]) -> String {
    let out = dir.join(format!("{run}.ndjson"));
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("AGENT_LOG", "info")
        .env("AGENT_LOGSHIP_LISTEN", "127.0.0.1:0")
        .env("AGENT_LOGSHIP_FLUSH_TIMEOUT", "300ms")
        .env("AGENT_LOGSHIP_PATHS", s(&dir.join("app.log")))
        .env("AGENT_LOGSHIP_DATA_DIR", s(&dir.join(run)))
        .envs(extra.iter().copied())
        .stdout(std::fs::File::create(&out).expect("stdout file"));
    let agent = Spawned::start(cmd);
    let lines = || std::fs::read_to_string(&out).map(|t| t.lines().count()).unwrap_or(0);
    eventually(&format!("{records} documents on stdout"), Duration::from_secs(60), async || {
        (lines() >= records).then_some(())
    })
    .await;
    stop(agent).await;
    std::fs::read_to_string(&out).expect("stdout")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_without_credentials_gives_the_same_documents_with_masking_on_and_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut writer = LogWriter::open(LogConfig::new(dir.path().join("app.log"))).expect("writer");
    writer.write_n(2000).expect("write");
    let on = documents_on_stdout(dir.path(), "on", 2000, &[]).await;
    let off = documents_on_stdout(dir.path(), "off", 2000, &[("AGENT_LOGSHIP_REDACT", "false")]).await;
    assert_eq!(on.lines().count(), 2000, "every record");
    assert!(!on.contains("redacted"), "nothing was masked");
    assert!(on == off, "the same documents, byte for byte");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_rules_after_a_restart_store_no_acknowledged_record_twice() {
    let es = EsSim::start(EsOptions::default()).await.expect("es-sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("app.log");
    let data = dir.path().join("data");
    let mut writer = LogWriter::open(LogConfig::new(&log)).expect("writer");
    let glob = format!("{}/*.log", s(dir.path()));
    let env = |extra: &[(&'static str, &'static str)]| -> Vec<(String, String)> {
        let mut env = vec![
            ("AGENT_LOGSHIP_PATHS".to_owned(), glob.clone()),
            ("AGENT_LOGSHIP_DATA_DIR".to_owned(), s(&data).to_owned()),
            ("AGENT_LOGSHIP_ES_URL".to_owned(), es.url()),
        ];
        env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        env
    };
    let run = async |writer: &mut LogWriter, extra: &[(&'static str, &'static str)], total: u64| {
        writer.write_n(100).expect("write");
        let a = agent(&refs(&env(extra)));
        eventually(&format!("{total} stored"), Duration::from_secs(60), async || {
            (es.count() >= total).then_some(())
        })
        .await;
        let stderr = a.stderr();
        stop(a).await;
        stderr
    };
    let first = run(&mut writer, &[], 100).await;
    assert!(!first.contains("masking of records changed"), "{first}");
    // As a checkpoint written before records were masked (an upgrade): no `masking`.
    let path = data.join("files-checkpoint.json");
    let mut checkpoint: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("checkpoint")).expect("JSON");
    assert!(checkpoint["masking"].is_string(), "the masking is kept: {checkpoint}");
    checkpoint.as_object_mut().expect("object").remove("masking");
    std::fs::write(&path, checkpoint.to_string()).expect("write");
    let upgraded = run(&mut writer, &[], 200).await;
    assert!(upgraded.contains("written before records were masked"), "{upgraded}");
    // A pattern added, then masking turned off.
    let patterns = run(&mut writer, &[("AGENT_LOGSHIP_REDACT_PATTERNS", r"seq=(\d+)")], 300).await;
    assert!(patterns.contains("masking of records changed"), "{patterns}");
    let off = run(&mut writer, &[("AGENT_LOGSHIP_REDACT", "false")], 400).await;
    assert!(off.contains("now=\"off\""), "{off}");
    // Every record once, by its identity: the writer's seq (masked by the pattern in the third
    // run's documents: those are told by their offsets).
    let mut seqs = BTreeSet::new();
    let mut offsets = BTreeSet::new();
    for doc in es.docs("*") {
        let offset = field(&doc, "log.offset").and_then(Value::as_u64).expect("offset");
        assert!(offsets.insert(offset), "the record at {offset} stored twice");
        if let Some(seq) =
            text(&doc, "message").rsplit_once("seq=").and_then(|(_, n)| n.trim().parse::<u64>().ok())
        {
            assert!(seqs.insert(seq), "seq {seq} stored twice");
        }
    }
    assert_eq!(offsets.len(), 400);
    assert_eq!(seqs.len(), 300, "the 100 records of the third run have their seq masked");
    assert_eq!(es.count(), 400);
}
