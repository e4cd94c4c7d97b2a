//! agent-logship as a process against es-sim: every record exactly once through rotation (rename
//! and copytruncate, under a glob that matches the rotated names), per-item 429s, whole-request
//! 503s, an outage and two SIGKILLs; dead letters, bounded; a flat RSS through a long outage; the graceful
//! flush on SIGTERM; `setup` against both flavours; configuration errors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use calypso_testkit::es_sim::{EsOptions, EsSim, Flavour};
use calypso_testkit::eventually;
use calypso_testkit::logwriter::{LogConfig, LogWriter};
use calypso_testkit::process::{self, PATIENCE, Spawned};
use nix::sys::signal::Signal;
use serde_json::Value;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_agent-logship");

fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_clear().env("AGENT_LOG", "info").envs(env.iter().copied());
    cmd
}

fn start(args: &[&str], env: &[(&str, &str)]) -> Spawned {
    let mut cmd = command(args, env);
    cmd.stdout(Stdio::null());
    Spawned::start(cmd)
}

/// The environment of a sidecar shipping `glob` to `es` with quick batches.
fn sidecar_env<'a>(glob: &'a str, data: &'a str, es: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("AGENT_LOGSHIP_PATHS", glob),
        ("AGENT_LOGSHIP_DATA_DIR", data),
        ("AGENT_LOGSHIP_ES_URL", es),
        ("AGENT_LOGSHIP_LISTEN", "127.0.0.1:0"),
        ("AGENT_LOGSHIP_BATCH_AGE", "100ms"),
        ("AGENT_LOGSHIP_FLUSH_TIMEOUT", "300ms"),
        ("AGENT_LOGSHIP_RESCAN_INTERVAL", "500ms"),
        ("AGENT_LOGSHIP_COMPONENT", "engineserver"),
        ("AGENT_LOGSHIP_NAMESPACE", "calypso-uat"),
        ("AGENT_LOGSHIP_POD_NAME", "engineserver-0"),
        ("AGENT_LOGSHIP_CONTAINER_NAME", "calypso"),
    ]
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// `A.log` for `A.log`, `A.log.3`.
fn base_name(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name.find(".log") {
        Some(i) => name[..i + 4].to_string(),
        None => name.to_string(),
    }
}

/// The sequence number a logwriter record carries on its first line.
fn seq_of(message: &str) -> Option<u64> {
    message.lines().next()?.rsplit_once(" seq=").and_then(|(_, n)| n.trim().parse().ok())
}

/// Per base file name, the number of lines of each record (by seq) in the files written.
fn written_records(dir: &Path) -> BTreeMap<String, BTreeMap<u64, usize>> {
    let mut out: BTreeMap<String, BTreeMap<u64, usize>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("read log");
        let base = base_name(path_str(&path));
        let mut current: Option<u64> = None;
        for line in text.lines() {
            if let Some(seq) = seq_of(line) {
                current = Some(seq);
                out.entry(base.clone()).or_default().insert(seq, 1);
            } else if let Some(seq) = current {
                *out.entry(base.clone()).or_default().entry(seq).or_default() += 1;
            }
        }
    }
    out
}

/// Per base file name, the seqs stored (with repeats) and each stored record's line count.
fn stored_records(docs: &[Value]) -> BTreeMap<String, Vec<(u64, usize)>> {
    let mut out: BTreeMap<String, Vec<(u64, usize)>> = BTreeMap::new();
    for doc in docs {
        let path = field(doc, "log.file.path").unwrap_or_default();
        let message = field(doc, "message").unwrap_or_default();
        let trace = field(doc, "error.stack_trace").unwrap_or_default();
        let Some(seq) = seq_of(&message) else { panic!("a document without seq: {doc}") };
        let lines = message.lines().count() + trace.lines().count();
        out.entry(base_name(&path)).or_default().push((seq, lines));
    }
    out
}

/// A field by its dotted name, nested or flat.
fn field(doc: &Value, name: &str) -> Option<String> {
    if let Some(v) = doc.get(name) {
        return v.as_str().map(str::to_string).or_else(|| Some(v.to_string()));
    }
    let mut v = doc;
    for part in name.split('.') {
        v = v.get(part)?;
    }
    v.as_str().map(str::to_string).or_else(|| Some(v.to_string()))
}

/// Writes `n` records in small bursts so that the agent reads while rotations happen.
async fn write(writer: &mut LogWriter, n: u64) {
    for _ in 0..n / 25 {
        writer.write_n(25).expect("write");
        // Pacing the writer, not waiting for anything.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    writer.write_n(n % 25).expect("write");
}

async fn stored_at_least(es: &EsSim, n: u64) {
    eventually(&format!("{n} documents stored"), Duration::from_secs(120), async || {
        (es.count() >= n).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_exactly_once_through_rotation_faults_and_kills() {
    let es = EsSim::start(EsOptions::default()).await.expect("es-sim");
    es.set_item_429_every(13);
    es.set_request_503_share(0.1, 7);
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    let data = dir.path().join("data");
    let glob = format!("{}/*.log*", path_str(&logs));
    let url = es.url();
    let env = sidecar_env(&glob, path_str(&data), &url);
    let small = |name: &str, seed: u64, copy_truncate: bool| LogConfig {
        max_bytes: 32 * 1024,
        backups: 200,
        copy_truncate,
        seed,
        ..LogConfig::new(logs.join(name))
    };
    let mut renamed = LogWriter::open(small("A.log", 1, false)).expect("A.log");
    let mut copied = LogWriter::open(small("B.log", 2, true)).expect("B.log");
    let per_phase = 400;

    let mut agent = start(&[], &env);
    agent.said("shipping").await;
    write(&mut renamed, per_phase).await;
    write(&mut copied, per_phase).await;
    stored_at_least(&es, per_phase).await;
    agent.signal(Signal::SIGKILL);
    agent.exit().await;

    // Written while the agent is dead, then an outage while it runs.
    write(&mut renamed, per_phase).await;
    write(&mut copied, per_phase).await;
    let mut agent = start(&[], &env);
    agent.said("shipping").await;
    es.down().await;
    write(&mut renamed, per_phase).await;
    write(&mut copied, per_phase).await;
    // The outage lasts 10 s (the time is the point of the test, not a wait for something).
    tokio::time::sleep(Duration::from_secs(10)).await;
    es.up().expect("es-sim back on its port");
    stored_at_least(&es, 4 * per_phase).await;
    agent.signal(Signal::SIGKILL);
    agent.exit().await;

    let mut agent = start(&[], &env);
    write(&mut renamed, per_phase).await;
    write(&mut copied, per_phase).await;
    let total = 2 * 4 * per_phase;
    stored_at_least(&es, total).await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());

    let written = written_records(&logs);
    let stored = stored_records(&es.docs("*"));
    assert_eq!(stored.keys().collect::<Vec<_>>(), ["A.log", "B.log"], "{:?}", stored.keys());
    for (base, records) in &stored {
        let seqs: BTreeSet<u64> = records.iter().map(|(s, _)| *s).collect();
        assert_eq!(records.len(), seqs.len(), "{base}: a record stored twice");
        assert_eq!(seqs, (1..=4 * per_phase).collect::<BTreeSet<u64>>(), "{base}: records lost");
        for (seq, lines) in records {
            assert_eq!(Some(lines), written[base].get(seq), "{base} seq={seq}: not stored whole");
        }
    }
    let stats = es.stats();
    assert!(stats.items_with(429) > 0 && stats.duplicates > 0, "the faults happened: {stats:?}");
}

/// es-sim, a logs and a data directory, and a sidecar's environment for them.
struct Scene {
    es: EsSim,
    _dir: tempfile::TempDir,
    logs: PathBuf,
    data: PathBuf,
    glob: String,
    url: String,
}

impl Scene {
    async fn new() -> Scene {
        let es = EsSim::start(EsOptions::default()).await.expect("es-sim");
        let dir = tempfile::tempdir().expect("tempdir");
        let (logs, data) = (dir.path().join("logs"), dir.path().join("data"));
        std::fs::create_dir(&logs).expect("mkdir");
        let glob = format!("{}/*.log", path_str(&logs));
        let url = es.url();
        Scene { es, _dir: dir, logs, data, glob, url }
    }

    /// [`sidecar_env`] shipping `logs/*.log`.
    fn env(&self) -> Vec<(&str, &str)> {
        sidecar_env(&self.glob, path_str(&self.data), &self.url)
    }
}

/// One log4j record line carrying `seq`.
fn record_line(seq: u64) -> String {
    format!("2026-12-07 10:00:00,000 INFO  [main] [Engine] processed trade batch seq={seq}\n")
}

fn append_text(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).expect("open for append");
    f.write_all(text.as_bytes()).expect("append");
}

/// The committed offsets in the checkpoint of `data` (none while there is no checkpoint).
fn checkpointed_offsets(data: &Path) -> Vec<u64> {
    let Ok(bytes) = std::fs::read(data.join("files-checkpoint.json")) else { return Vec::new() };
    let v: Value = serde_json::from_slice(&bytes).expect("checkpoint is JSON");
    v["files"].as_array().expect("files").iter().filter_map(|f| f["offset"].as_u64()).collect()
}

/// How many stored documents contain `token`.
fn stored_with(docs: &[Value], token: &str) -> usize {
    docs.iter().filter(|d| d.to_string().contains(token)).count()
}

async fn stored_seq(es: &EsSim, seq: u64) {
    let token = format!("seq={seq}\"");
    eventually(&format!("seq={seq} stored"), Duration::from_secs(60), async || {
        es.docs("*")
            .iter()
            .any(|d| field(d, "message").is_some_and(|m| m.ends_with(&token[..token.len() - 1])))
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_rewritten_in_place_while_acks_are_slow_loses_nothing_after_a_kill() {
    let scene = Scene::new().await;
    let (es, logs, data) = (&scene.es, &scene.logs, &scene.data);
    let log = logs.join("EngineServer.log");
    let header = "# EngineServer log opened by log4j\n";
    let records = |seqs: std::ops::Range<u64>| seqs.map(record_line).collect::<String>();
    std::fs::write(&log, format!("{header}{}", records(1..21))).expect("write");
    let env = scene.env();

    let mut agent = start(&[], &env);
    stored_seq(es, 20).await;
    // The next records are stored, but their acknowledgements come 5 s later.
    es.set_answer_delay(Duration::from_secs(5));
    append_text(&log, &records(21..41));
    stored_seq(es, 40).await;
    // Nothing sent from now on reaches the store before the kill.
    es.set_answer_delay(Duration::ZERO);
    es.set_latency(Duration::from_secs(300));
    let old_end = std::fs::metadata(&log).expect("stat").len();
    // log4j `append=false` at a JVM restart: the same inode, the same first line, longer content.
    std::fs::write(&log, format!("{header}{}", records(101..301))).expect("rewrite in place");
    // The old content's late acknowledgements are checkpointed after the rewrite.
    eventually("the old content's end in the checkpoint", Duration::from_secs(30), async || {
        checkpointed_offsets(data).contains(&old_end).then_some(())
    })
    .await;
    agent.signal(Signal::SIGKILL);
    agent.exit().await;

    es.clear_faults();
    let mut agent = start(&[], &env);
    stored_seq(es, 300).await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());

    assert_stored_once_whole(&es.docs("*"), header, (1..41).chain(101..301));
}

/// Every stored document of `seqs` once, whole, and nothing else but `header` lines.
fn assert_stored_once_whole(docs: &[Value], header: &str, seqs: impl Iterator<Item = u64>) {
    let mut stored = BTreeMap::new();
    for doc in docs {
        let message = field(doc, "message").unwrap_or_default();
        if message == header.trim_end() {
            continue;
        }
        let seq = seq_of(&message).unwrap_or_else(|| panic!("a fragment stored: {doc}"));
        assert!(record_line(seq).ends_with(&format!("] {message}\n")), "stored whole: {message:?}");
        *stored.entry(seq).or_insert(0) += 1;
    }
    assert_eq!(stored, seqs.map(|s| (s, 1)).collect::<BTreeMap<u64, i32>>(), "each record exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_rewritten_in_place_while_down_is_read_from_its_start() {
    let scene = Scene::new().await;
    let (es, logs, data) = (&scene.es, &scene.logs, &scene.data);
    let log = logs.join("EngineServer.log");
    let header = "# EngineServer log opened by log4j\n";
    let records = |seqs: std::ops::Range<u64>| seqs.map(record_line).collect::<String>();
    std::fs::write(&log, format!("{header}{}", records(1..16))).expect("write");
    let mut env = scene.env();
    env.retain(|(k, _)| *k != "AGENT_LOGSHIP_FLUSH_TIMEOUT");
    // The last record waits for its next line: the committed position stops before it.
    let waiting = [("AGENT_LOGSHIP_FLUSH_TIMEOUT", "1h")];
    let mut agent = start(&[], &[&env[..], &waiting].concat());
    stored_seq(es, 14).await;
    let committed = (header.len() + records(1..15).len()) as u64;
    eventually("the checkpoint at the last record's start", Duration::from_secs(30), async || {
        checkpointed_offsets(data).contains(&committed).then_some(())
    })
    .await;
    agent.signal(Signal::SIGKILL);
    agent.exit().await;
    // Rewritten while the agent is away: the same inode, the same first line, longer content.
    std::fs::write(&log, format!("{header}{}", records(1000..1031))).expect("rewrite in place");
    let mut agent = start(&[], &env);
    stored_seq(es, 1030).await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    assert_stored_once_whole(&es.docs("*"), header, (1..15).chain(1000..1031));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_cut_by_the_flush_timeout_then_continued_is_stored_once_after_a_kill() {
    let scene = Scene::new().await;
    let (es, logs) = (&scene.es, &scene.logs);
    let log = logs.join("EngineServer.log");
    std::fs::write(&log, "").expect("create");
    let env = scene.env();

    let mut agent = start(&[], &env);
    agent.said("shipping").await;
    // Stored, acknowledged only after the kill: the checkpoint never passes it.
    es.set_answer_delay(Duration::from_secs(300));
    let line = "2026-12-07 10:00:00,000 ERROR [main] [Engine] pricing failed seq=1\n";
    append_text(&log, line);
    stored_seq(es, 1).await;
    // Its stack trace comes after the flush timeout shipped the line alone.
    let rest = format!(
        "java.lang.IllegalStateException: curve missing-7\n\tat com.calypso.Pricer.price(Pricer.java:77)\n{}",
        record_line(2)
    );
    append_text(&log, &rest);
    let size = std::fs::metadata(&log).expect("stat").len() as f64;
    eventually("the continuation read", Duration::from_secs(30), async || {
        (agent.metric("agent_logship_read_bytes_total").await == Some(size)).then_some(())
    })
    .await;
    agent.signal(Signal::SIGKILL);
    agent.exit().await;

    es.clear_faults();
    let mut agent = start(&[], &env);
    stored_seq(es, 2).await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());

    let docs = es.docs("*");
    for token in ["pricing failed seq=1", "curve missing-7", "Pricer.java:77", "seq=2"] {
        let messages: Vec<String> = docs
            .iter()
            .map(|d| format!("{:?} {:?}", field(d, "message"), field(d, "error.stack_trace")))
            .collect();
        assert_eq!(stored_with(&docs, token), 1, "{token}: in one document: {messages:#?}");
    }
}

/// Trace lines `lines` of file `f`, each naming itself (`F3.m17(`), ~100 bytes.
fn trace(f: usize, lines: std::ops::Range<usize>) -> String {
    lines.map(|j| format!("\tat com.calypso.pricing.F{f}.m{j}(F.java:{j}) {}\n", "-".repeat(50))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_records_past_the_budget_ship_early_and_a_re_read_stores_nothing_twice() {
    let scene = Scene::new().await;
    let (es, logs, data) = (&scene.es, &scene.logs, &scene.data);
    // Five records of ~60 KB waiting for their next line: 300 KB, over a 256 KiB budget.
    for f in 0..5 {
        let text =
            format!("2026-12-07 10:00:00,000 ERROR [main] [Pricer] failed seq={f}\n{}", trace(f, 0..600));
        std::fs::write(logs.join(format!("F{f}.log")), text).expect("write");
    }
    let mut env = scene.env();
    env.retain(|(k, _)| *k != "AGENT_LOGSHIP_FLUSH_TIMEOUT");
    let slow = [("AGENT_LOGSHIP_FLUSH_TIMEOUT", "1h"), ("AGENT_LOGSHIP_MAX_INFLIGHT_BYTES", "256KiB")];
    // What is shipped early is stored, but acknowledged only after the kill.
    es.set_answer_delay(Duration::from_secs(300));
    let mut agent = start(&[], &[&env[..], &slow].concat());
    eventually("a record shipped early and stored", Duration::from_secs(30), async || {
        let early = agent.metric("agent_logship_records_shipped_early_total").await;
        (early >= Some(1.0) && es.count() >= 1).then_some(())
    })
    .await;
    // The checkpoint has not passed the early record (its acknowledgement is held back), but
    // says where it was cut.
    assert!(checkpointed_offsets(data).contains(&0), "{:?}", checkpointed_offsets(data));
    agent.signal(Signal::SIGKILL);
    agent.exit().await;
    // The rest of each trace, then the next record: after the early record, a record of its own.
    for f in 0..5 {
        let more = format!("{}{}", trace(f, 600..650), record_line(100 + f as u64));
        append_text(&logs.join(format!("F{f}.log")), &more);
    }
    es.clear_faults();
    let mut agent = start(&[], &env);
    for f in 0..5 {
        stored_seq(es, 100 + f).await;
    }
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    let docs = es.docs("*");
    for f in 0..5 {
        for j in 0..650 {
            let token = format!("F{f}.m{j}(");
            assert_eq!(stored_with(&docs, &token), 1, "{token}: in one document");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ships_what_was_read_then_checkpoints() {
    let es = EsSim::start(EsOptions::default()).await.expect("es-sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let glob = format!("{}/*.log", path_str(dir.path()));
    let url = es.url();
    let mut env = sidecar_env(&glob, path_str(&data), &url);
    // Batches wait long: only the graceful stop sends the last one.
    env.push(("AGENT_LOGSHIP_BATCH_AGE", "1h"));
    env.push(("AGENT_LOGSHIP_FLUSH_TIMEOUT", "1h"));
    let mut writer = LogWriter::open(LogConfig::new(dir.path().join("S.log"))).expect("log");
    writer.write_n(300).expect("write");
    let mut agent = start(&[], &env);
    agent.said("shipping").await;
    eventually("all 300 records read", Duration::from_secs(20), async || {
        agent.metric("agent_logship_records_read_total").await.filter(|n| *n >= 299.0)
    })
    .await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    assert_eq!(es.count(), 300, "the pending record and the open batch were shipped");
    assert!(agent.stderr().contains("everything read was shipped"), "{}", agent.stderr());

    // The checkpoint covers them all: a restart sends nothing again.
    let before = es.stats().bulk_requests;
    let mut agent = start(&[], &env);
    agent.said("shipping").await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    assert_eq!(es.stats().bulk_requests, before, "nothing was re-sent");
}

/// A stop while Elasticsearch is away: what could not be shipped within the grace is said, in the
/// log and as the termination message (`kubectl describe pod`), never lost silently; the exit is
/// still 0, and the next start ships it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_with_elasticsearch_away_says_what_was_not_shipped() {
    let es = EsSim::start(EsOptions::default()).await.expect("es-sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let glob = format!("{}/*.log", path_str(dir.path()));
    let url = es.url();
    let termination = dir.path().join("termination-log");
    let mut env = sidecar_env(&glob, path_str(&data), &url);
    env.push(("AGENT_LOGSHIP_SHUTDOWN_GRACE", "1s"));
    env.push(("AGENT_TERMINATION_LOG", path_str(&termination)));
    let mut writer = LogWriter::open(LogConfig::new(dir.path().join("S.log"))).expect("log");
    writer.write_n(50).expect("write");
    es.down().await;
    let mut agent = start(&[], &env);
    agent.said("cannot deliver to Elasticsearch").await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    let said = "bytes of log in 1 file not yet in Elasticsearch";
    assert!(agent.stderr().contains(said), "{}", agent.stderr());
    let message = std::fs::read_to_string(&termination).expect("a termination message");
    assert!(message.starts_with("stopped with ") && message.contains(said), "{message}");
    assert!(!message.contains("Event"), "a file sidecar names no Events: {message}");
    assert_eq!(es.count(), 0, "Elasticsearch was away");
    // The next start, with Elasticsearch back, ships every record; a clean stop says nothing.
    es.up().expect("up");
    std::fs::remove_file(&termination).expect("rm");
    let mut agent = start(&[], &env);
    stored_at_least(&es, 50).await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    assert!(!termination.exists(), "nothing to say: {}", agent.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_documents_go_to_the_dead_letter_data_stream_once_each() {
    let shipping = JsonShipping::new().await;
    let es = &shipping.es;
    std::fs::write(shipping.log(), json_records(0..100, |i| i % 25 == 24)).expect("write");
    let mut agent = start(&[], &shipping.env(&[]));
    let stream = "logs-agent_logship.dead_letter-calypso_uat";
    eventually("96 stored and 4 dead letters", Duration::from_secs(30), async || {
        (es.count_in("logs-calypso.*") == 96 && es.count_in(stream) == 4).then_some(())
    })
    .await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    // Each refused record by its identity: the original's id and its text, exactly once.
    let refused: BTreeSet<String> =
        (0..100).filter(|i| i % 25 == 24).map(|i| format!("trade {i} booked")).collect();
    let mut found = BTreeSet::new();
    for letter in es.docs(stream) {
        assert_eq!(field(&letter, "error.type").as_deref(), Some("document_parsing_exception"), "{letter}");
        assert_eq!(field(&letter, "agent_logship.dead_letter.status").as_deref(), Some("400"));
        let original: Value =
            serde_json::from_str(&field(&letter, "event.original").expect("the original kept"))
                .expect("the original as it was sent");
        let message = field(&original, "message").expect("its message");
        assert_eq!(
            letter["_id"], letter["agent_logship"]["dead_letter"]["id"],
            "the original's id: {letter}"
        );
        assert!(found.insert(message.clone()), "{message} twice");
    }
    assert_eq!(found, refused);
    assert!(!shipping.data().join("dead-letter.ndjson").exists(), "nothing left in the pod");
    let warnings = agent.stderr().lines().filter(|l| l.contains("document_parsing_exception")).count();
    assert_eq!(warnings, 1, "logged once per reason:\n{}", agent.stderr());
}

/// The dead-letter file on a full volume: an append that fails half-way is cut back, so the
/// file never holds a torn line, and once there is room again every refused document is in it
/// exactly once. "Full" is the soft file-size limit (RLIMIT_FSIZE, set by util-linux's `prlimit`,
/// with SIGXFSZ ignored so that a write past it fails with EFBIG as on a full disk), raised later
/// through `prlimit --pid`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_append_on_a_full_volume_is_cut_back_and_written_once_later() {
    let (Some(sh), Some(prlimit)) =
        (calypso_testkit::require_tool("sh"), calypso_testkit::require_tool("prlimit"))
    else {
        return;
    };
    let shipping = JsonShipping::new().await;
    let es = &shipping.es;
    let refused = |i: usize| i % 10 == 9;
    std::fs::write(shipping.log(), json_records(0..40, refused)).expect("write");
    shipping.refuse_dead_letters();
    // Room for about one dead letter: the first append of the refused documents fails half-way.
    let script = format!("trap '' XFSZ; exec {} --fsize=700:unlimited -- \"$0\" \"$@\"", prlimit.display());
    let mut cmd = Command::new(&sh);
    cmd.arg("-c").arg(script).arg(BIN).env_clear().env("AGENT_LOG", "info").envs(shipping.env(&[]));
    cmd.stdout(Stdio::null());
    let mut agent = Spawned::start(cmd);
    agent.said("documents wait: they are acknowledged only once kept").await;
    let dead = shipping.data().join("dead-letter.ndjson");
    let text = std::fs::read_to_string(&dead).unwrap_or_default();
    assert!(text.is_empty() || text.ends_with('\n'), "cut back to whole lines: {text:?}");
    let pid = agent.worker(None).await.to_string();
    let raised = std::process::Command::new(&prlimit)
        .args(["--pid", &pid, "--fsize=unlimited:unlimited"])
        .status()
        .expect("prlimit runs");
    assert!(raised.success(), "prlimit --pid");
    eventually("36 stored and 4 dead-lettered", Duration::from_secs(30), async || {
        let lines = std::fs::read_to_string(&dead).map(|t| t.lines().count()).unwrap_or(0);
        (es.count() == 36 && lines >= 4).then_some(())
    })
    .await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    let text = std::fs::read_to_string(&dead).expect("dead letters");
    let mut kept: Vec<String> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("a torn line ({e}): {l:?}")))
        .map(|v| {
            let original = v["source"]["event"]["original"].as_str().expect("the dead letter's original");
            let original: Value = serde_json::from_str(original).expect("the original document");
            original["message"].as_str().expect("its message").to_owned()
        })
        .collect();
    kept.sort();
    let mut want: Vec<String> =
        (0..40).filter(|&i| refused(i)).map(|i| format!("trade {i} booked")).collect();
    want.sort();
    assert_eq!(kept, want, "every refused document once");
}

/// es-sim, and a scratch directory whose `app.json.log` (JSON lines) a sidecar ships into it.
struct JsonShipping {
    es: EsSim,
    dir: tempfile::TempDir,
    glob: String,
    data: String,
    url: String,
}

impl JsonShipping {
    async fn new() -> Self {
        let es = EsSim::start(EsOptions::default()).await.expect("es-sim");
        let dir = tempfile::tempdir().expect("tempdir");
        let glob = format!("{}/*.log", path_str(dir.path()));
        let data = format!("{}/data", path_str(dir.path()));
        let url = es.url();
        JsonShipping { es, dir, glob, data, url }
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("app.json.log")
    }

    fn data(&self) -> &Path {
        Path::new(&self.data)
    }

    /// The dead-letter data stream refuses every dead letter too (its original, a string, is
    /// mapped as a number): they go to the dead-letter file, the last resort.
    fn refuse_dead_letters(&self) {
        let template = serde_json::json!({
            "index_patterns": ["logs-agent_logship.dead_letter-*"],
            "data_stream": {},
            "priority": 500,
            "template": {"mappings": {"properties": {"event": {"properties": {"original": {"type": "long"}}}}}}
        });
        self.es.put_template("refuse-dead-letters", template).expect("template");
    }

    /// The sidecar's environment, and `extra`.
    fn env<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut env = sidecar_env(&self.glob, &self.data, &self.url);
        env.push(("AGENT_LOGSHIP_FORMAT", "json"));
        env.extend_from_slice(extra);
        env
    }
}

/// JSON log lines numbered `range`. `user` is a string in the first document es-sim sees; as an
/// object (`refused(i)`) it cannot be indexed after that (400).
fn json_records(range: std::ops::Range<usize>, refused: impl Fn(usize) -> bool) -> String {
    let mut lines = String::new();
    for i in range {
        let user = if refused(i) { r#"{"id":7}"# } else { r#""alice""# };
        lines.push_str(&format!(
            r#"{{"@timestamp":"2026-11-27T10:00:{:02}.000Z","log.level":"INFO","message":"trade {i} booked","user":{user}}}"#,
            i % 60
        ));
        lines.push('\n');
    }
    lines
}

/// Refusals that go on and on: past `AGENT_LOGSHIP_DEAD_LETTER_MAX_BYTES` the dead-letter file
/// is rotated and the previous rotated file's dead letters are deleted, counted and warned about.
/// Every refused document is kept or counted, and the two files hold the last two batches at most.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refusals_keeps_the_dead_letter_files_bounded() {
    let shipping = JsonShipping::new().await;
    let (es, log, data) = (&shipping.es, shipping.log(), shipping.data());
    std::fs::write(&log, json_records(0..1, |_| false)).expect("write");
    shipping.refuse_dead_letters();
    // Smaller than one batch of 20 dead letters: every batch finds the file full.
    let mut agent = start(&[], &shipping.env(&[("AGENT_LOGSHIP_DEAD_LETTER_MAX_BYTES", "1KiB")]));
    eventually("the first document stored", Duration::from_secs(30), async || {
        (es.count() == 1).then_some(())
    })
    .await;
    let lines = |name: &str| std::fs::read_to_string(data.join(name)).map_or(0, |t| t.lines().count());
    let dead_lettered = |agent: &Spawned| -> usize {
        agent.stderr().lines().filter(|l| l.contains("the dead-letter file is full")).map(documents).sum()
    };
    // Ten batches, one at a time: the next is written once the last is kept.
    for batch in 0..10 {
        let mut file = std::fs::OpenOptions::new().append(true).open(&log).expect("open");
        let first = 1 + batch * 20;
        std::io::Write::write_all(&mut file, json_records(first..first + 20, |_| true).as_bytes())
            .expect("append");
        let last = format!("trade {} booked", first + 19);
        eventually("the batch dead-lettered", Duration::from_secs(30), async || {
            let text = std::fs::read_to_string(data.join("dead-letter.ndjson")).unwrap_or_default();
            text.contains(&last).then_some(())
        })
        .await;
        // A file holds one append at most (a batch, or part of one if it was read in two).
        assert!(lines("dead-letter.ndjson") <= 20 && lines("dead-letter.ndjson.1") <= 20);
    }
    let (kept, dropped) = eventually("every refusal kept or reported", Duration::from_secs(10), async || {
        let (kept, dropped) =
            (lines("dead-letter.ndjson") + lines("dead-letter.ndjson.1"), dead_lettered(&agent));
        (kept + dropped == 200).then_some((kept, dropped))
    })
    .await;
    assert!(kept <= 40 && dropped >= 160, "kept {kept}, dropped {dropped}");
    assert!(
        agent.stderr().contains("the dead-letter data stream refused a dead letter too"),
        "the fault happened: {}",
        agent.stderr()
    );
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    assert_eq!(es.count(), 1);
}

/// The `documents=N` of a log line.
fn documents(line: &str) -> usize {
    line.split_whitespace()
        .find_map(|field| field.strip_prefix("documents="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no documents= in {line}"))
}

/// VmRSS of a process in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// The peak RSS of agent-logship reading `files` files, each holding a ~400 KB record that waits
/// for its next line (an hour's flush timeout), with a 1 MiB budget: once every file is read.
async fn peak_kib_with_files_mid_record(files: usize) -> u64 {
    let scene = Scene::new().await;
    let logs = &scene.logs;
    let mut total = 0;
    for f in 0..files {
        let text =
            format!("2026-12-07 10:00:00,000 ERROR [main] [Pricer] failed seq={f}\n{}", trace(f, 0..4000));
        total += text.len();
        std::fs::write(logs.join(format!("F{f}.log")), text).expect("write");
    }
    let mut env = scene.env();
    env.retain(|(k, _)| *k != "AGENT_LOGSHIP_FLUSH_TIMEOUT");
    env.extend([("AGENT_LOGSHIP_FLUSH_TIMEOUT", "1h"), ("AGENT_LOGSHIP_MAX_INFLIGHT_BYTES", "1MiB")]);
    let agent = start(&[], &env);
    eventually("every file read", Duration::from_secs(60), async || {
        (agent.metric("agent_logship_read_bytes_total").await == Some(total as f64)).then_some(())
    })
    .await;
    let early = agent.metric("agent_logship_records_shipped_early_total").await.expect("metric");
    assert!(early >= (files - 4) as f64, "records past the budget shipped early: {early}");
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", agent.worker(None).await)).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_does_not_grow_with_the_files_waiting_for_a_next_line() {
    let few = peak_kib_with_files_mid_record(5).await;
    let many = peak_kib_with_files_mid_record(40).await;
    // 35 more files of 400 KB each would be 14 MB more if each kept its record.
    assert!(many < few + 6 * 1024, "peak RSS {few} KiB with 5 files, {many} KiB with 40");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_through_a_long_outage() {
    let es = EsSim::start(EsOptions::default()).await.expect("es-sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let glob = format!("{}/*.log", path_str(dir.path()));
    let url = es.url();
    let mut env = sidecar_env(&glob, path_str(&data), &url);
    env.push(("AGENT_LOGSHIP_MAX_INFLIGHT_BYTES", "2MiB"));
    let mut writer =
        LogWriter::open(LogConfig { max_bytes: u64::MAX, ..LogConfig::new(dir.path().join("O.log")) })
            .expect("log");
    es.down().await;
    let agent = start(&[], &env);
    agent.said("shipping").await;
    let pid = agent.worker(None).await;
    writer.write_n(20_000).expect("write");
    // Reading pauses once the budget (or the queues between the stages) are full.
    let mut last = 0.0;
    eventually("reading paused", Duration::from_secs(30), async || {
        let read = agent.metric("agent_logship_records_read_total").await?;
        let paused = read > 0.0 && read == last;
        last = read;
        tokio::time::sleep(Duration::from_millis(300)).await;
        paused.then_some(())
    })
    .await;
    let in_flight = agent.metric("agent_logship_inflight_bytes").await.expect("metric");
    assert!(in_flight <= 2.0 * 1024.0 * 1024.0, "the budget holds: {in_flight}");
    let early = rss_kib(pid);
    // Another ~12 MB while Elasticsearch stays away: reading stays paused, memory flat.
    writer.write_n(50_000).expect("write");
    let mut peak = early;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(rss_kib(pid));
    }
    assert!(peak < early + 4096, "RSS grew from {early} KiB to {peak} KiB during the outage");
    es.up().expect("up");
    stored_at_least(&es, 70_000).await;
    assert_eq!(es.count(), 70_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_installs_the_template_once_on_both_flavours() {
    for flavour in [Flavour::Elasticsearch, Flavour::OpenSearch] {
        let es = EsSim::start(EsOptions::flavour(flavour)).await.expect("es-sim");
        let url = es.url();
        let env = [("AGENT_LOGSHIP_ES_URL", url.as_str())];
        let run = |env: &[(&str, &str)]| {
            let mut cmd = command(&["setup", "--retention-days", "30"], env);
            cmd.stdout(Stdio::piped());
            cmd
        };
        let first = run(&env).output().await.expect("setup runs");
        let out = String::from_utf8_lossy(&first.stdout);
        assert_eq!(
            first.status.code(),
            Some(0),
            "{flavour:?}: {out}{}",
            String::from_utf8_lossy(&first.stderr)
        );
        assert!(out.contains("created"), "{flavour:?}: {out}");
        for template in ["logs-calypso", "logs-kubernetes.events"] {
            assert!(out.contains(&format!("index template {template} (")), "{flavour:?}: {out}");
        }
        let again = run(&env).output().await.expect("setup runs");
        let out = String::from_utf8_lossy(&again.stdout);
        assert_eq!(again.status.code(), Some(0), "{flavour:?}: {out}");
        assert!(out.contains("unchanged") && !out.contains("created"), "{flavour:?}: idempotent: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_without_elasticsearch_exits_69_and_without_url_64() {
    let unreachable = [("AGENT_LOGSHIP_ES_URL", "http://127.0.0.1:1")];
    let out = command(&["setup"], &unreachable).output().await.expect("runs");
    assert_eq!(out.status.code(), Some(69), "{}", String::from_utf8_lossy(&out.stderr));
    let out = command(&["setup"], &[]).output().await.expect("runs");
    assert_eq!(out.status.code(), Some(64), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("AGENT_LOGSHIP_ES_URL"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_that_cannot_start_is_started_again_in_the_process_and_then_ships() {
    let scene = Scene::new().await;
    let (es, logs, data) = (&scene.es, &scene.logs, &scene.data);
    // The checkpoint cannot be read (a directory where the file should be): reading files
    // cannot start.
    std::fs::create_dir_all(data.join("files-checkpoint.json")).expect("block the checkpoint");
    std::fs::write(logs.join("EngineServer.log"), record_line(1)).expect("write");
    let env = scene.env();
    let mut agent = start(&[], &env);
    agent.said("the pipeline failed: starting it again").await;
    eventually("two restarts counted", Duration::from_secs(30), async || {
        (agent.metric("agent_logship_pipeline_restarts_total").await >= Some(2.0)).then_some(())
    })
    .await;
    assert_eq!(agent.metric("agent_logship_shipping").await, Some(0.0));
    assert!(agent.stderr().contains("cannot start reading files"), "{}", agent.stderr());
    // The fault goes away: the same process ships, nothing restarted it.
    std::fs::remove_dir(data.join("files-checkpoint.json")).expect("unblock");
    stored_seq(es, 1).await;
    assert_eq!(agent.metric("agent_logship_shipping").await, Some(1.0));
    assert!(agent.running());
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_fails_while_running_is_restarted_and_the_process_stays_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (logs, data) = (dir.path().join("logs"), dir.path().join("data"));
    std::fs::create_dir(&logs).expect("mkdir");
    let log = logs.join("EngineServer.log");
    std::fs::write(&log, "").expect("create");
    let glob = format!("{}/*.log", path_str(&logs));
    // Documents to stdout (no URL), and stdout's reader gone: every write fails (EPIPE).
    let mut cmd = command(&[], &sidecar_env(&glob, path_str(&data), "")[..]);
    cmd.env_remove("AGENT_LOGSHIP_ES_URL").stdout(Stdio::piped());
    let mut agent = Spawned::start(cmd);
    drop(agent.child.stdout.take());
    agent.said("shipping").await;
    append_text(&log, &record_line(1));
    agent.said("the sink failed").await;
    eventually("two restarts counted", Duration::from_secs(30), async || {
        append_text(&log, &record_line(2));
        (agent.metric("agent_logship_pipeline_restarts_total").await >= Some(2.0)).then_some(())
    })
    .await;
    assert!(agent.running(), "the process stays up: {}", agent.stderr());
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
}

/// The seqs of the stored documents, each as often as it was stored.
fn stored_seqs(es: &EsSim) -> Vec<u64> {
    let mut seqs: Vec<u64> = es
        .docs("*")
        .iter()
        .map(|d| seq_of(&field(d, "message").unwrap_or_default()).expect("a seq"))
        .collect();
    seqs.sort_unstable();
    seqs
}

/// A panic aborts (SIGABRT) and the OOM killer kills (SIGKILL) the worker process; the
/// supervisor, the container's first process, stays up and starts it again, so the container
/// is never restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_dies_is_started_again_and_every_record_is_stored_once() {
    let scene = Scene::new().await;
    let log = scene.logs.join("EngineServer.log");
    std::fs::write(&log, "").expect("create");
    let mut agent = start(&[], &scene.env());
    agent.said("shipping").await;
    let mut worker = agent.worker(None).await;
    let mut seq = 0;
    let mut write = |n: u64| {
        for _ in 0..n {
            seq += 1;
            append_text(&log, &record_line(seq));
        }
        seq
    };
    for (restarts, signal) in [(1.0, Signal::SIGABRT), (2.0, Signal::SIGKILL)] {
        stored_seq(&scene.es, write(50)).await;
        write(20);
        process::signal_pid(worker, signal);
        // Written while no worker runs.
        write(30);
        let next = agent.worker(Some(worker)).await;
        assert!(!process::alive(worker), "the {signal} worker {worker} ended");
        worker = next;
        eventually("the restart counted", PATIENCE, async || {
            (agent.metric("agent_logship_worker_restarts_total").await == Some(restarts)).then_some(())
        })
        .await;
        assert!(agent.running(), "the supervisor stays up: {}", agent.stderr());
    }
    let last = write(50);
    stored_seq(&scene.es, last).await;
    let said = agent.stderr();
    assert!(
        said.contains("ended: SIGABRT (a panic") && said.contains("ended: SIGKILL (the kernel's OOM"),
        "{said}"
    );
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    assert!(!process::alive(worker), "the worker ended with the supervisor");
    assert_eq!(stored_seqs(&scene.es), (1..=last).collect::<Vec<_>>(), "every record once");
}

/// Kubernetes ends a container with SIGKILL after the grace period: the worker goes with the
/// supervisor, never left behind shipping on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_supervisor_takes_its_worker_with_it() {
    let scene = Scene::new().await;
    let mut agent = start(&[], &scene.env());
    agent.said("shipping").await;
    let worker = agent.worker(None).await;
    agent.signal(Signal::SIGKILL);
    agent.exit().await;
    eventually("the worker gone", PATIENCE, async || (!process::alive(worker)).then_some(())).await;
}

/// The process group of a process, from `/proc/PID/stat` (the field after the parent's pid).
fn process_group(pid: u32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let after_name = &stat[stat.rfind(')').expect("a stat line") + 2..];
    after_name.split_whitespace().nth(2).and_then(|g| g.parse().ok()).expect("a process group")
}

/// A stop signal sent to the whole process group (a terminal's Ctrl-C, `kill -- -PGID`) reaches
/// the worker once, through the supervisor: one graceful stop and exit 0, not taken for a
/// second signal that stops at once (143).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_signal_to_the_whole_group_is_one_graceful_stop() {
    let scene = Scene::new().await;
    let mut cmd = command(&[], &scene.env());
    cmd.stdout(Stdio::null()).process_group(0);
    let mut agent = Spawned::start(cmd);
    agent.said("shipping").await;
    let worker = agent.worker(None).await;
    let supervisor = agent.child.id().expect("pid");
    assert_ne!(process_group(worker), process_group(supervisor), "a process group of its own");
    let group = nix::unistd::Pid::from_raw(process_group(supervisor));
    nix::sys::signal::killpg(group, Signal::SIGINT).expect("killpg");
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    assert!(!agent.stderr().contains("stopped at once"), "{}", agent.stderr());
}

/// SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 mean nothing to agent-logship: the supervisor ignores
/// them rather than handing them on to end the worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_signals_to_the_supervisor_leave_the_worker_alone() {
    let scene = Scene::new().await;
    let mut agent = start(&[], &scene.env());
    agent.said("shipping").await;
    let worker = agent.worker(None).await;
    for signal in [Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGUSR1, Signal::SIGUSR2] {
        agent.signal(signal);
        agent.said(&format!("{signal} ignored")).await;
    }
    assert!(process::alive(worker), "the same worker runs: {}", agent.stderr());
    assert_eq!(agent.metric("agent_logship_worker_restarts_total").await, Some(0.0));
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
}

/// An AGENT_SUPERVISED copied into the environment by hand does not make the agent take itself
/// for a worker (and stop, its "supervisor" being no such thing): it is ignored, said so, and the
/// agent supervises as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supervisor_marker_set_by_hand_is_ignored() {
    let scene = Scene::new().await;
    // This test process is the agent's parent: the pid matches, the binary does not.
    let forged = format!("{} 0", std::process::id());
    let mut env = scene.env();
    env.push(("AGENT_SUPERVISED", &forged));
    let mut agent = start(&[], &env);
    agent.said("AGENT_SUPERVISED is set, but not by a supervisor of this process: ignored").await;
    agent.said("shipping").await;
    agent.worker(None).await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
}

/// SIGTERM while the supervisor waits to start a dead worker again stops at once, exit 0, and
/// the termination message says what happened. Three quick deaths make the wait 4 s, so the
/// signal surely lands in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_a_worker_is_started_again_stops_at_once() {
    let scene = Scene::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let termination = dir.path().join("termination-log");
    let mut env = scene.env();
    env.push(("AGENT_TERMINATION_LOG", path_str(&termination)));
    let mut agent = start(&[], &env);
    agent.said("shipping").await;
    let mut worker = agent.worker(None).await;
    for wait in [1, 2] {
        process::signal_pid(worker, Signal::SIGABRT);
        agent.said(&format!("starting it again in {wait} s")).await;
        worker = agent.worker(Some(worker)).await;
    }
    process::signal_pid(worker, Signal::SIGABRT);
    agent.said("starting it again in 4 s").await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    let message = std::fs::read_to_string(&termination).expect("termination message");
    assert!(message.starts_with("SIGTERM while agent-logship was starting again"), "{message}");
    assert!(!agent.stderr().contains("starting it again in 8 s"), "no fourth start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_that_cannot_be_written_is_counted_and_shipping_goes_on() {
    let scene = Scene::new().await;
    let (es, logs, data) = (&scene.es, &scene.logs, &scene.data);
    let log = logs.join("EngineServer.log");
    std::fs::write(&log, record_line(1)).expect("write");
    let mut agent = start(&[], &scene.env());
    stored_seq(es, 1).await;
    // As on a full volume: the checkpoint's temp file cannot be written.
    std::fs::create_dir(data.join("files-checkpoint.json.tmp")).expect("block the checkpoint");
    append_text(&log, &record_line(2));
    stored_seq(es, 2).await;
    eventually("the failed writes counted", Duration::from_secs(30), async || {
        (agent.metric("agent_logship_checkpoint_write_failures_total").await >= Some(1.0)).then_some(())
    })
    .await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_address_in_use_does_not_stop_the_shipping_and_is_served_once_free() {
    let scene = Scene::new().await;
    let (es, logs) = (&scene.es, &scene.logs);
    std::fs::write(logs.join("EngineServer.log"), record_line(1)).expect("write");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let mut env = scene.env();
    env.retain(|(k, _)| *k != "AGENT_LOGSHIP_LISTEN");
    env.push(("AGENT_LOGSHIP_LISTEN", &addr));
    let mut agent = start(&[], &env);
    agent.said("cannot listen: shipping anyway").await;
    stored_seq(es, 1).await;
    drop(taken);
    agent.said("listening now").await;
    assert_eq!(agent.metric("agent_logship_shipping").await, Some(1.0), "served once the address is free");
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_settings_hold_the_shipper_up_shipping_nothing_and_check_exits_64() {
    let bad = [("AGENT_LOGSHIP_ES_URL", "ftp://u:hunter2@es"), ("AGENT_LOGSHIP_BATCH_DOCS", "0")];
    let out = command(&["--check", "--format", "xml"], &bad).output().await.expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    for needle in ["--format", "AGENT_LOGSHIP_ES_URL", "AGENT_LOGSHIP_BATCH_DOCS"] {
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    assert!(!stderr.contains("hunter2"), "{stderr}");

    // The sidecar itself stays up: the problems in its log, /readyz and /metrics; exit 0 at
    // SIGTERM, the termination message saying why nothing was shipped.
    let dir = tempfile::tempdir().expect("tempdir");
    let termination = dir.path().join("termination-log");
    let mut env = bad.to_vec();
    env.push(("AGENT_TERMINATION_LOG", path_str(&termination)));
    let held = start(&["--format", "xml", "--listen", "127.0.0.1:0"], &env);
    held.said("not shipping until the settings are fixed").await;
    let addr = held
        .find_in_stderr("the listen address", |l| {
            l.split_once("listen=").map(|(_, a)| a.trim().trim_matches('"').to_string())
        })
        .await;
    assert_eq!(held.metric("agent_logship_configuration_problems").await, Some(3.0));
    assert_eq!(held.metric("agent_logship_shipping").await, Some(0.0));
    let ready = calypso_testkit::client::get(&format!("http://{addr}/readyz"), Duration::from_secs(2))
        .await
        .expect("/readyz");
    assert_eq!(ready.status, 503);
    assert!(ready.text().contains("AGENT_LOGSHIP_BATCH_DOCS"), "{}", ready.text());
    let live = calypso_testkit::client::get(&format!("http://{addr}/livez"), Duration::from_secs(2))
        .await
        .expect("/livez");
    assert_eq!(live.status, 200, "never restarted by the kubelet for a setting");
    let mut held = held;
    assert!(held.running());
    held.signal(Signal::SIGTERM);
    assert_eq!(held.exit_code().await, 0, "{}", held.stderr());
    let message = std::fs::read_to_string(&termination).expect("termination message");
    assert!(
        message.contains("stopped without having shipped anything") && message.contains("--format"),
        "{message}"
    );
    assert!(!held.stderr().contains("hunter2") && !message.contains("hunter2"));

    // A data directory that is a file: the same.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "").expect("write");
    let env = [("AGENT_LOGSHIP_DATA_DIR", path_str(&file))];
    let out = command(&["--check"], &env).output().await.expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("AGENT_LOGSHIP_DATA_DIR"), "{stderr}");
    let mut held = start(&["--listen", "127.0.0.1:0"], &env);
    held.said("not shipping until the settings are fixed").await;
    assert_eq!(held.metric("agent_logship_configuration_problems").await, Some(1.0));
    held.signal(Signal::SIGTERM);
    assert_eq!(held.exit_code().await, 0, "{}", held.stderr());
}

/// An HTTPS front for es-sim (`es`, `host:port`) on `localhost`, with a certificate made for the
/// test: returns its port and the certificate (PEM) to trust.
async fn https_front(es: String) -> (u16, String) {
    let (acceptor, ca) = calypso_testkit::tls::localhost();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, es) = (acceptor.clone(), es.clone());
            tokio::spawn(async move {
                let (Ok(mut tls), Ok(mut plain)) =
                    (acceptor.accept(tcp).await, tokio::net::TcpStream::connect(&es).await)
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (port, ca)
}

/// A CA file that does not exist yet (a Secret mounted `optional: true`, created later) holds the
/// data back and is said so; the agent does not stop (as a native sidecar that would keep Calypso
/// from starting). Once the kubelet puts the file there (a link swapped in), everything ships.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_file_that_comes_later_holds_the_data_back_then_everything_ships() {
    let mut shipping = JsonShipping::new().await;
    let es_addr = shipping.url.trim_start_matches("http://").trim_end_matches('/').to_string();
    let (port, ca) = https_front(es_addr).await;
    shipping.url = format!("https://localhost:{port}");
    let (es, dir) = (&shipping.es, shipping.dir.path());
    let secret = dir.join("elasticsearch");
    std::fs::create_dir(&secret).expect("mkdir");
    let ca_file = secret.join("ca.crt");
    std::fs::write(shipping.log(), json_records(0..10, |_| false)).expect("write");
    let mut agent = start(&[], &shipping.env(&[("AGENT_LOGSHIP_CA_FILE", path_str(&ca_file))]));
    agent.said("the CA file does not exist (yet)").await;
    agent.said("cannot use the CA file").await;
    assert_eq!(es.count(), 0, "nothing goes out untrusted");
    // As the kubelet updates a Secret's volume: the keys in a new directory, `..data` swapped.
    let keys = secret.join("..2026_11_28_10_00_00.000000001");
    std::fs::create_dir(&keys).expect("mkdir");
    std::fs::write(keys.join("ca.crt"), &ca).expect("ca");
    std::os::unix::fs::symlink(keys.file_name().expect("name"), secret.join("..data")).expect("link");
    std::os::unix::fs::symlink("..data/ca.crt", &ca_file).expect("link");
    stored_at_least(es, 10).await;
    agent.said("the CA file changed").await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    assert_eq!(es.count(), 10);

    // A CA file that is there but holds no certificate: the shipper says so and waits (it must
    // not stop Calypso's pod); `setup`, a Job, exits 64 naming the setting.
    let not_a_ca = dir.join("not-a-ca.crt");
    std::fs::write(&not_a_ca, "not a certificate\n").expect("write");
    std::fs::write(shipping.log(), json_records(10..20, |_| false)).expect("write");
    let mut agent = start(&[], &shipping.env(&[("AGENT_LOGSHIP_CA_FILE", path_str(&not_a_ca))]));
    agent.said("the CA file is not usable: the data waits until it is").await;
    agent.said("cannot use the CA file").await;
    assert!(agent.running(), "still up: {}", agent.stderr());
    assert_eq!(es.count(), 10, "nothing more goes out untrusted");
    std::fs::write(&not_a_ca, &ca).expect("a usable CA now");
    stored_at_least(es, 20).await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    std::fs::write(&not_a_ca, "not a certificate\n").expect("write");
    let out = command(&["setup"], &shipping.env(&[("AGENT_LOGSHIP_CA_FILE", path_str(&not_a_ca))]))
        .output()
        .await
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("AGENT_LOGSHIP_CA_FILE"), "{stderr}");
}

/// Runs the agent without a URL on the files of `dir` (glob `pattern`) until `n` documents are
/// on its stdout, stops it with SIGTERM (exit 0) and returns them.
async fn stdout_docs(dir: &Path, pattern: &str, extra: &[(&str, &str)], n: usize) -> Vec<Value> {
    let glob = format!("{}/{pattern}", path_str(dir));
    let data = dir.join("data");
    let mut env = vec![("AGENT_LOGSHIP_PATHS", glob.as_str()), ("AGENT_LOGSHIP_DATA_DIR", path_str(&data))];
    env.extend_from_slice(extra);
    let mut cmd =
        command(&["--listen", "127.0.0.1:0", "--flush-timeout", "200ms", "--batch-age", "100ms"], &env);
    let out_path = dir.join("stdout.ndjson");
    cmd.stdout(std::fs::File::create(&out_path).expect("stdout file"));
    let mut agent = Spawned::start(cmd);
    let docs = eventually(&format!("{n} documents on stdout"), Duration::from_secs(20), async || {
        let text = std::fs::read_to_string(&out_path).ok()?;
        let docs: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        (docs.len() >= n).then_some(docs)
    })
    .await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    let text = std::fs::read_to_string(&out_path).expect("stdout");
    assert_eq!(text.lines().count(), n, "no more than {n} documents:\n{text}");
    docs
}

/// Paths that match nothing (a wrong glob, or Calypso has not written its log yet) are said once,
/// not shipped silently; a file that appears later is shipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_that_match_nothing_are_said_once_and_a_later_file_is_shipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let es = EsSim::start(EsOptions::default()).await.expect("es-sim");
    let glob = format!("{}/*.log", path_str(dir.path()));
    let agent = start(&[], &sidecar_env(&glob, path_str(data.path()), &es.url()));
    let said = "no file matches the paths (yet); watching for one";
    agent.find_in_stderr("the notice", |l| l.contains(said).then_some(())).await;
    assert!(agent.stderr().contains(&glob), "the notice names the paths: {}", agent.stderr());
    let mut writer = LogWriter::open(LogConfig::new(dir.path().join("EngineServer.log"))).expect("log");
    write(&mut writer, 5).await;
    stored_at_least(&es, 5).await;
    assert_eq!(agent.stderr().matches(said).count(), 1, "said once: {}", agent.stderr());
}

/// The Events shipper's settings in the settings every log sidecar reads (one shared ConfigMap):
/// a file shipper says so and ships, instead of exiting 64, which would keep Calypso from starting
/// in every pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_shipper_ignores_the_events_settings_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = tempfile::tempdir().expect("tempdir");
    let es = EsSim::start(EsOptions::default()).await.expect("es-sim");
    let glob = format!("{}/*.log", path_str(dir.path()));
    let url = es.url();
    let mut env = sidecar_env(&glob, path_str(data.path()), &url);
    env.extend([
        ("AGENT_LOGSHIP_EVENTS_NAMESPACE", "*"),
        ("AGENT_LOGSHIP_KUBE_URL", "https://kubernetes.default.svc"),
        ("AGENT_LOGSHIP_SPOOL_MAX_BYTES", "not a size"),
    ]);
    let mut agent = start(&[], &env);
    for setting in
        ["AGENT_LOGSHIP_EVENTS_NAMESPACE", "AGENT_LOGSHIP_KUBE_URL", "AGENT_LOGSHIP_SPOOL_MAX_BYTES"]
    {
        agent
            .find_in_stderr(setting, |l| {
                (l.contains(setting) && l.contains("AGENT_LOGSHIP_EVENTS is not true: ignored")).then_some(())
            })
            .await;
    }
    let mut writer = LogWriter::open(LogConfig::new(dir.path().join("EngineServer.log"))).expect("log");
    write(&mut writer, 5).await;
    stored_at_least(&es, 5).await;
    assert!(agent.running(), "still up: {}", agent.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_url_documents_go_to_stdout_stack_traces_whole() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("DataServer.log"),
        "2026-11-27 13:53:32,123 INFO  [main] [com.calypso.Server] started\n\
         2026-11-27 13:53:33,456 ERROR [RMI TCP Connection(2)-10.0.0.7] [com.calypso.engine.PositionEngine] cannot price trade 4711\n\
         java.lang.IllegalStateException: no quote for EUR/USD\n\
         \tat com.calypso.pricer.Quotes.get(Quotes.java:88)\n\
         Caused by: java.io.IOException: timeout\n\
         \t... 12 more\n",
    )
    .expect("write");
    let docs = stdout_docs(dir.path(), "*.log", &[], 2).await;
    let error = &docs[1]["_source"];
    assert_eq!(field(error, "error.type").as_deref(), Some("java.lang.IllegalStateException"), "{error}");
    assert_eq!(field(error, "log.level").as_deref(), Some("ERROR"));
    assert_eq!(field(error, "@timestamp").as_deref(), Some("2026-11-27T13:53:33.456Z"));
    let trace = field(error, "error.stack_trace").expect("a stack trace");
    assert!(
        trace.contains("Caused by: java.io.IOException: timeout") && trace.ends_with("... 12 more"),
        "{trace}"
    );
    assert_eq!(docs[0]["_id"].as_str().map(str::len), Some(32));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cri_files_join_partial_lines_and_name_the_pod() {
    let dir = tempfile::tempdir().expect("tempdir");
    let id = "0123456789abcdef".repeat(4);
    std::fs::write(
        dir.path().join(format!("engineserver-0_calypso-uat_calypso-{id}.log")),
        "2026-11-27T13:53:32.123456789Z stdout F 2026-11-27 13:53:32,123 INFO  [main] [com.calypso.Server] started\n\
         2026-11-27T13:53:33.000000001Z stderr P 2026-11-27 13:53:33,456 ERROR [main] [com.calypso.Engine] part one\n\
         2026-11-27T13:53:33.000000002Z stderr F , part two\n\
         2026-11-27T13:53:33.000000003Z stderr F java.lang.IllegalStateException: boom\n\
         2026-11-27T13:53:33.000000004Z stderr F \tat com.calypso.Engine.run(Engine.java:1)\n",
    )
    .expect("write");
    let docs = stdout_docs(dir.path(), "*.log", &[("AGENT_LOGSHIP_FORMAT", "cri")], 2).await;
    let error = &docs[1]["_source"];
    assert_eq!(field(error, "message").as_deref(), Some("part one, part two"), "{error}");
    assert_eq!(field(error, "error.type").as_deref(), Some("java.lang.IllegalStateException"), "{error}");
    assert_eq!(field(error, "kubernetes.pod.name").as_deref(), Some("engineserver-0"), "{error}");
    assert_eq!(field(error, "kubernetes.namespace").as_deref(), Some("calypso-uat"), "{error}");
    assert_eq!(field(error, "kubernetes.container.name").as_deref(), Some("calypso"), "{error}");
    assert_eq!(field(error, "stream").as_deref(), Some("stderr"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_keep_their_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("app.log"),
        r#"{"@timestamp":"2026-11-27T13:53:32.123Z","log.level":"WARN","message":"slow quote","process.thread.name":"main","log.logger":"com.calypso.Quotes","trade.id":4711}
{"@timestamp":"2026-11-27T13:53:33.000Z","log.level":"ERROR","message":"failed","error.type":"java.lang.IllegalStateException","error.stack_trace":"java.lang.IllegalStateException: boom\n\tat a.B.c(B.java:1)"}
"#,
    )
    .expect("write");
    let docs = stdout_docs(dir.path(), "*.log", &[("AGENT_LOGSHIP_FORMAT", "json")], 2).await;
    let first = &docs[0]["_source"];
    assert_eq!(field(first, "@timestamp").as_deref(), Some("2026-11-27T13:53:32.123Z"), "{first}");
    assert_eq!(field(first, "log.level").as_deref(), Some("WARN"), "{first}");
    assert_eq!(field(first, "trade.id").as_deref(), Some("4711"), "the line's own fields are kept: {first}");
    let second = &docs[1]["_source"];
    assert_eq!(field(second, "error.type").as_deref(), Some("java.lang.IllegalStateException"), "{second}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_first_lines_and_a_file_deleted_while_read_lose_nothing() {
    let es = EsSim::start(EsOptions::default()).await.expect("es-sim");
    es.set_latency(Duration::from_millis(50));
    let dir = tempfile::tempdir().expect("tempdir");
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).expect("mkdir");
    let banner = "2026-11-27 08:00:00,000 INFO  [main] [com.calypso.Boot] Calypso starting\n";
    for name in ["one.log", "two.log"] {
        let mut text = banner.to_string();
        for i in 1..=50 {
            text.push_str(&format!(
                "2026-11-27 08:00:01,000 INFO  [main] [com.calypso.{name}] record seq={i}\n"
            ));
        }
        std::fs::write(logs.join(name), text).expect("write");
    }
    let mut gone =
        LogWriter::open(LogConfig { max_bytes: u64::MAX, ..LogConfig::new(logs.join("gone.log")) })
            .expect("log");
    gone.write_n(3000).expect("write");
    let data = dir.path().join("data");
    let glob = format!("{}/*.log", path_str(&logs));
    let url = es.url();
    let mut env = sidecar_env(&glob, path_str(&data), &url);
    // A small budget and a slow Elasticsearch: gone.log is mid-read when it is deleted.
    env.push(("AGENT_LOGSHIP_MAX_INFLIGHT_BYTES", "32KiB"));
    env.push(("AGENT_LOGSHIP_BATCH_DOCS", "50"));
    let mut agent = start(&[], &env);
    eventually("gone.log being read", Duration::from_secs(20), async || (es.count() > 10).then_some(()))
        .await;
    std::fs::remove_file(logs.join("gone.log")).expect("delete");
    stored_at_least(&es, 3000 + 2 * 51).await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    let docs = es.docs("*");
    assert_eq!(docs.len(), 3000 + 2 * 51, "every record of the three files, once");
    for name in ["one.log", "two.log"] {
        let banners = docs
            .iter()
            .filter(|d| field(d, "log.file.path").is_some_and(|p| p.ends_with(name)))
            .filter(|d| field(d, "message").is_some_and(|m| m == "Calypso starting"))
            .count();
        assert_eq!(banners, 1, "{name}'s identical first line is its own record");
    }
}

/// A file it may not read is warned about once and shipped as soon as it may; the others flow.
/// As root (who reads everything), the agent runs as nobody (65534) through `setpriv`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_file_is_warned_about_and_shipped_once_readable() {
    use std::os::unix::fs::PermissionsExt;
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let root = status.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"));
    let setpriv = if root { calypso_testkit::tools::require_tool("setpriv") } else { None };
    if root && setpriv.is_none() {
        return;
    }
    let es = EsSim::start(EsOptions::default()).await.expect("es-sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let open = |p: &Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod")
    };
    open(dir.path(), 0o755);
    let logs = dir.path().join("logs");
    let data = dir.path().join("data");
    for d in [&logs, &data] {
        std::fs::create_dir(d).expect("mkdir");
        open(d, 0o777);
    }
    let line =
        |name: &str, i: u32| format!("2026-11-27 09:00:00,000 INFO  [main] [com.calypso.X] {name} seq={i}\n");
    let readable: String = (1..=5).map(|i| line("readable", i)).collect();
    let secret: String = (1..=7).map(|i| line("secret", i)).collect();
    std::fs::write(logs.join("readable.log"), readable).expect("write");
    let hidden = logs.join("secret.log");
    std::fs::write(&hidden, secret).expect("write");
    open(&hidden, 0o000);
    let glob = format!("{}/*.log", path_str(&logs));
    let url = es.url();
    let env = sidecar_env(&glob, path_str(&data), &url);
    let mut cmd = match &setpriv {
        Some(setpriv) => {
            let mut c = Command::new(setpriv);
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
            c
        }
        None => Command::new(BIN),
    };
    cmd.env_clear().env("AGENT_LOG", "info").envs(env.iter().copied()).stdout(Stdio::null());
    let mut agent = Spawned::start(cmd);
    agent.said("cannot open file").await;
    stored_at_least(&es, 5).await;
    open(&hidden, 0o644);
    stored_at_least(&es, 12).await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    assert_eq!(es.count(), 12);
    assert_eq!(agent.stderr().matches("cannot open file").count(), 1, "warned once:\n{}", agent.stderr());
}
