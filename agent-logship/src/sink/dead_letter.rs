//! Dead letters: documents Elasticsearch refused for good (a 4xx other than 409). They are sent
//! to a data stream of their own, `logs-agent_logship.dead_letter-<namespace>`, as documents its
//! mapping cannot refuse: the original kept as unindexed text (`event.original`) with the reason
//! and the record's identity. A pod's emptyDir goes with the pod; Elasticsearch keeps them.
//!
//! Only what that stream refuses too is kept in the last resort, the dead-letter file: appended
//! to `<data_dir>/dead-letter.ndjson`, one JSON line each with the refusal and the document, and
//! fsync'd before they are acknowledged — kept and reported, never retried forever.
//!
//! The file is bounded: when the next lines would take it past its largest size it becomes
//! `dead-letter.ndjson.1`, replacing the previous one, whose documents are counted and reported
//! as dropped. The data directory is an emptyDir with a size limit, and a pod over it is evicted
//! — Calypso with it — so a steady stream of refusals must not grow the file without end.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::classify::Rejection;

/// The file's name in the data directory.
pub const FILE_NAME: &str = "dead-letter.ndjson";

/// The dead-letter data streams' dataset: `logs-agent_logship.dead_letter-<namespace>`.
pub const DATASET: &str = "agent_logship.dead_letter";

/// Where the dead letters of documents bound for `index` go: the dead-letter data stream of its
/// namespace for a data stream (`logs-<dataset>-<namespace>`), `<index>-dead-letter` for an
/// index of its own.
pub fn stream_for(index: &str) -> String {
    match data_stream_namespace(index) {
        Some(namespace) => format!("logs-{DATASET}-{namespace}"),
        None => format!("{index}-dead-letter"),
    }
}

/// Whether documents bound for `index` are dead letters already (their refusal goes to the file).
pub fn is_stream(index: &str) -> bool {
    let in_stream = index.strip_prefix("logs-").and_then(|i| i.strip_prefix(DATASET));
    in_stream.is_some_and(|rest| rest.starts_with('-')) || index.ends_with("-dead-letter")
}

/// The namespace of a `logs-<dataset>-<namespace>` data stream name.
fn data_stream_namespace(index: &str) -> Option<&str> {
    let (dataset, namespace) = index.strip_prefix("logs-")?.rsplit_once('-')?;
    (!dataset.is_empty() && !namespace.is_empty()).then_some(namespace)
}

/// The dead-letter document of `doc`, refused at `now`: compact JSON, one line. Its fields are
/// the ones the dead-letter template maps (`agent-logship setup`), none of which a value of ours
/// can conflict with: the original only as text that is not indexed.
pub fn document(out: &mut Vec<u8>, now: &str, doc: &DeadDoc<'_>) {
    let why = doc.why;
    let mut v = serde_json::json!({
        "@timestamp": now,
        "message": format!("refused by Elasticsearch: {} {}: {}", why.status, why.kind, why.reason),
        "error": {"type": why.kind, "message": why.reason},
        "event": {"original": String::from_utf8_lossy(doc.source), "dataset": DATASET},
        "agent_logship": {"dead_letter": {"index": doc.index, "id": doc.id, "status": why.status}},
    });
    if let Some(namespace) = data_stream_namespace(doc.index) {
        v["data_stream"] = serde_json::json!({"type": "logs", "dataset": DATASET, "namespace": namespace});
    }
    // Writing a Value to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &v);
}

/// A refused document: where it was going, its id and source, and why it was refused.
#[derive(Debug, Clone, Copy)]
pub struct DeadDoc<'a> {
    pub index: &'a str,
    pub id: &'a str,
    pub source: &'a [u8],
    pub why: &'a Rejection,
}

#[derive(Debug, Clone)]
pub struct DeadLetterFile {
    path: PathBuf,
    max_bytes: u64,
    /// The `_id`s in the file and its rotated predecessor, read from them at the first append: a
    /// dead letter sent again after a crash (its acknowledgement never reached the checkpoint)
    /// is not written twice.
    kept: std::sync::Arc<std::sync::Mutex<Option<HashSet<String>>>>,
}

/// Dead letters deleted to keep the directory bounded: the rotated file they were in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    pub path: PathBuf,
    pub documents: u64,
}

/// The dead-letter file could not be written: the documents stay unacknowledged and the writing
/// is tried again.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the dead-letter file {path}: {source}")]
pub struct DeadLetterError {
    path: PathBuf,
    source: std::io::Error,
}

impl DeadLetterFile {
    pub fn new(path: impl Into<PathBuf>, max_bytes: u64) -> Self {
        DeadLetterFile { path: path.into(), max_bytes, kept: Default::default() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Where the file goes when it is full.
    fn rotated(&self) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(".1");
        PathBuf::from(name)
    }

    /// Appends one line per document and syncs the file (and, when it was just created, its
    /// directory) to disk, after rotating the file if these lines would take it past its largest
    /// size. Returns the dead letters that rotation deleted (whether or not the append then
    /// succeeded: they are gone either way). Blocking IO, on tokio's blocking pool.
    pub async fn append(&self, docs: &[DeadDoc<'_>]) -> (Option<Dropped>, Result<(), DeadLetterError>) {
        let now = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let letters: Vec<(String, Vec<u8>)> = docs
            .iter()
            .map(|doc| {
                let mut l = Vec::new();
                line(&mut l, &now, doc);
                (doc.id.to_owned(), l)
            })
            .collect();
        let rotated = self.rotated();
        let (path, to, max_bytes, kept) =
            (self.path.clone(), rotated.clone(), self.max_bytes, self.kept.clone());
        let result = tokio::task::spawn_blocking(move || {
            let mut kept = kept.lock().unwrap_or_else(|e| e.into_inner());
            let ids = match kept.as_mut() {
                Some(ids) => ids,
                None => kept.insert(ids_in(&[&path, &to])),
            };
            let new: Vec<(String, Vec<u8>)> =
                letters.into_iter().filter(|(id, _)| !ids.contains(id)).collect();
            let lines: Vec<u8> = new.iter().flat_map(|(_, l)| l.iter().copied()).collect();
            let dropped = match rotate_if_full(&path, &to, max_bytes, lines.len() as u64) {
                Ok(d) => d,
                Err(e) => return (None, Err(e)),
            };
            if dropped.is_some() {
                // The deleted file's ids go with it.
                *ids = ids_in(&[&to]);
            }
            let written = if lines.is_empty() { Ok(()) } else { write_synced(&path, &lines) };
            if written.is_ok() {
                ids.extend(new.into_iter().map(|(id, _)| id));
            }
            (dropped, written)
        })
        .await;
        let (dropped, io) = match result {
            Ok(r) => r,
            Err(join) => (None, Err(std::io::Error::other(join.to_string()))),
        };
        let dropped = dropped.filter(|&n| n > 0).map(|documents| Dropped { path: rotated, documents });
        (dropped, io.map_err(|source| DeadLetterError { path: self.path.clone(), source }))
    }
}

/// Renames `path` to `rotated` (replacing it) when `incoming` more bytes would take it past
/// `max_bytes`; a file holding nothing yet takes whatever comes, however large. Returns how many
/// documents the replaced file held, if it rotated.
fn rotate_if_full(
    path: &Path,
    rotated: &Path,
    max_bytes: u64,
    incoming: u64,
) -> std::io::Result<Option<u64>> {
    let size = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if size == 0 || size.saturating_add(incoming) <= max_bytes {
        return Ok(None);
    }
    let dropped = match std::fs::File::open(rotated) {
        Ok(f) => count_lines(f)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e),
    };
    // Made durable with the new file: its creation syncs the directory.
    std::fs::rename(path, rotated)?;
    Ok(Some(dropped))
}

/// The `_id`s of the dead letters in `files` (unreadable lines and missing files have none).
fn ids_in(files: &[&Path]) -> HashSet<String> {
    use std::io::BufRead;
    let mut ids = HashSet::new();
    for path in files {
        let Ok(f) = std::fs::File::open(path) else { continue };
        for line in std::io::BufReader::new(f).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                && let Some(id) = v["_id"].as_str()
            {
                ids.insert(id.to_owned());
            }
        }
    }
    ids
}

/// Lines in a file, read through a small buffer (the file may be as large as the bound; the
/// agent's memory should not be).
fn count_lines(mut f: std::fs::File) -> std::io::Result<u64> {
    let mut buf = [0u8; 16 * 1024];
    let mut lines = 0;
    loop {
        match f.read(&mut buf)? {
            0 => return Ok(lines),
            n => lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64,
        }
    }
}

fn line(out: &mut Vec<u8>, now: &str, doc: &DeadDoc<'_>) {
    // The source is embedded as JSON when it is JSON (it normally is); a document refused for
    // not being JSON is kept as a string so the line stays valid.
    let source = match serde_json::from_slice::<serde_json::Value>(doc.source) {
        Ok(v) => v,
        Err(_) => serde_json::Value::String(String::from_utf8_lossy(doc.source).into_owned()),
    };
    let why = doc.why;
    let v = serde_json::json!({
        "@timestamp": now,
        "_index": doc.index,
        "_id": doc.id,
        "status": why.status,
        "error": { "type": why.kind, "reason": why.reason },
        "source": source,
    });
    // Writing a Value to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, &v);
    out.push(b'\n');
}

fn write_synced(path: &Path, lines: &[u8]) -> std::io::Result<()> {
    let existed = path.exists();
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    let before = f.metadata()?.len();
    if let Err(e) = f.write_all(lines).and_then(|()| f.sync_data()) {
        // Half written (a full volume): cut back to whole lines, so that the file stays
        // readable and the documents, appended again once there is room, are in it once.
        let _ = f.set_len(before);
        return Err(e);
    }
    if !existed && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letters_go_to_the_stream_of_their_namespace() {
        assert_eq!(
            stream_for("logs-calypso.engineserver-calypso_uat"),
            "logs-agent_logship.dead_letter-calypso_uat"
        );
        assert_eq!(
            stream_for("logs-kubernetes.events-calypso_prod"),
            "logs-agent_logship.dead_letter-calypso_prod"
        );
        assert_eq!(stream_for("calypso-logs"), "calypso-logs-dead-letter", "an index of its own");
        for original in ["logs-calypso.engineserver-calypso_uat", "calypso-logs"] {
            assert!(!is_stream(original));
            assert!(
                is_stream(&stream_for(original)),
                "{original}: its dead letters' refusals go to the file"
            );
        }
    }

    #[test]
    fn a_dead_letter_keeps_the_original_as_text_with_the_reason_and_identity() {
        let r = Rejection {
            status: 400,
            kind: "document_parsing_exception".into(),
            reason: "failed to parse [user]".into(),
        };
        let source = br#"{"message":"trade 7 \"booked\"","user":{"id":7}}"#;
        let d = DeadDoc { index: "logs-calypso.engineserver-calypso_uat", id: "abc", source, why: &r };
        let mut out = Vec::new();
        document(&mut out, "2026-12-07T10:00:00.000Z", &d);
        assert!(!out.contains(&b'\n'), "one line");
        let v: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
        assert_eq!(
            v["event"]["original"].as_str().map(str::as_bytes),
            Some(&source[..]),
            "the original, byte for byte"
        );
        assert_eq!(
            v["agent_logship"]["dead_letter"],
            serde_json::json!({"index": d.index, "id": "abc", "status": 400})
        );
        assert_eq!(v["error"]["type"], "document_parsing_exception");
        assert_eq!(v["data_stream"]["namespace"], "calypso_uat");
        assert_eq!(v["@timestamp"], "2026-12-07T10:00:00.000Z");
        let plain = DeadDoc { index: "calypso-logs", ..d };
        let mut out = Vec::new();
        document(&mut out, "2026-12-07T10:00:00.000Z", &plain);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
        assert!(v.get("data_stream").is_none(), "not a data stream: {v}");
    }

    #[tokio::test]
    async fn appends_lines() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = DeadLetterFile::new(dir.path().join(FILE_NAME), 1 << 20);
        let r = Rejection { status: 400, kind: "mapper_parsing_exception".into(), reason: "bad".into() };
        let d1 = DeadDoc { index: "logs-a", id: "1", source: br#"{"m":1}"#, why: &r };
        let d2 = DeadDoc { index: "logs-a", id: "2", source: b"not json", why: &r };
        assert_eq!(f.append(&[d1]).await.0, None);
        f.append(&[d2]).await.1.expect("append");
        let text = std::fs::read_to_string(f.path()).expect("read");
        let lines: Vec<serde_json::Value> =
            text.lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["_id"], "1");
        assert_eq!(lines[0]["_index"], "logs-a");
        assert_eq!(lines[0]["status"], 400);
        assert_eq!(lines[0]["error"]["type"], "mapper_parsing_exception");
        assert_eq!(lines[0]["source"]["m"], 1);
        assert_eq!(lines[1]["source"], "not json");
    }

    #[tokio::test]
    async fn a_dead_letter_sent_again_is_written_once_even_after_a_restart() {
        let dir = tempfile::tempdir().expect("tmp");
        let r = Rejection { status: 400, kind: "x".into(), reason: "y".into() };
        let d = |id| DeadDoc { index: "logs-a", id, source: br#"{"m":1}"#, why: &r };
        let f = DeadLetterFile::new(dir.path().join(FILE_NAME), 1 << 20);
        f.append(&[d("1"), d("2")]).await.1.expect("append");
        f.append(&[d("2"), d("3")]).await.1.expect("append");
        // A new process: what the file holds is read back.
        let f = DeadLetterFile::new(dir.path().join(FILE_NAME), 1 << 20);
        f.append(&[d("1"), d("3"), d("4")]).await.1.expect("append");
        let text = std::fs::read_to_string(f.path()).expect("read");
        let ids: Vec<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).expect("json")["_id"]
                    .as_str()
                    .expect("id")
                    .to_owned()
            })
            .collect();
        assert_eq!(ids, ["1", "2", "3", "4"]);
    }

    #[tokio::test]
    async fn unwritable_is_an_error() {
        let f = DeadLetterFile::new("/nonexistent-dir/dead-letter.ndjson", 1 << 20);
        let r = Rejection { status: 400, kind: "x".into(), reason: "y".into() };
        let d = DeadDoc { index: "i", id: "1", source: b"{}", why: &r };
        let (dropped, written) = f.append(&[d]).await;
        assert_eq!(dropped, None);
        let e = written.expect_err("no such directory");
        assert!(e.to_string().contains("/nonexistent-dir/dead-letter.ndjson"), "{e}");
    }

    /// The file and its one rotated predecessor stay within about twice the bound, whatever
    /// comes; each rotation that deletes dead letters says how many, and every document is in
    /// exactly one of the two files or among those reported dropped.
    #[tokio::test]
    async fn a_full_file_rotates_and_the_oldest_dead_letters_are_counted_as_dropped() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = DeadLetterFile::new(dir.path().join(FILE_NAME), 4096);
        let r = Rejection { status: 400, kind: "document_parsing_exception".into(), reason: "bad".into() };
        let source = format!(r#"{{"message":"{}"}}"#, "x".repeat(300));
        let (mut dropped, mut rotations_dropping) = (0, 0);
        for id in 0..100 {
            let id = id.to_string();
            let d = DeadDoc { index: "logs-a", id: &id, source: source.as_bytes(), why: &r };
            let (gone, written) = f.append(&[d]).await;
            written.expect("append");
            if let Some(gone) = gone {
                assert_eq!(gone.path, dir.path().join("dead-letter.ndjson.1"));
                dropped += gone.documents;
                rotations_dropping += 1;
            }
            let size = |name: &str| std::fs::metadata(dir.path().join(name)).map_or(0, |m| m.len());
            assert!(size(FILE_NAME) <= 4096 && size("dead-letter.ndjson.1") <= 4096);
        }
        let ids = |name: &str| -> Vec<u64> {
            let text = std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
            text.lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json line"))
                .map(|v| v["_id"].as_str().and_then(|i| i.parse().ok()).expect("id"))
                .collect()
        };
        let (older, newer) = (ids("dead-letter.ndjson.1"), ids(FILE_NAME));
        assert!(rotations_dropping > 5, "{rotations_dropping}");
        // The newest documents, in order, none twice, none missing: the dropped ones are the oldest.
        let kept: Vec<u64> = older.iter().chain(&newer).copied().collect();
        assert_eq!(kept, (dropped..100).collect::<Vec<u64>>());
    }

    #[tokio::test]
    async fn one_batch_larger_than_the_bound_is_written_whole() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = DeadLetterFile::new(dir.path().join(FILE_NAME), 100);
        let r = Rejection { status: 400, kind: "x".into(), reason: "y".into() };
        let ids: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        let docs: Vec<DeadDoc<'_>> =
            ids.iter().map(|id| DeadDoc { index: "i", id, source: b"{}", why: &r }).collect();
        let (dropped, written) = f.append(&docs).await;
        written.expect("append");
        assert_eq!(dropped, None);
        let text = std::fs::read_to_string(f.path()).expect("read");
        assert_eq!(text.lines().count(), 10);
        // The next batch finds it full: the first moves aside whole, nothing is dropped yet.
        let one = |id| DeadDoc { index: "i", id, source: b"{}", why: &r };
        let (dropped, written) = f.append(&[one("a")]).await;
        written.expect("append");
        assert_eq!(dropped, None);
        assert_eq!(std::fs::read_to_string(dir.path().join("dead-letter.ndjson.1")).expect("rotated"), text);
        // And the one after that deletes those ten, and says so.
        let (dropped, written) = f.append(&[one("b")]).await;
        written.expect("append");
        assert_eq!(dropped.map(|d| d.documents), Some(10));
    }
}
