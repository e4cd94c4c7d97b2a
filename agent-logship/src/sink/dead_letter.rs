//! The dead-letter file: documents Elasticsearch refused for good (a 4xx other than 409) are
//! appended to `<data_dir>/dead-letter.ndjson`, one JSON line each with the refusal and the
//! document, and fsync'd before they are acknowledged — kept and reported, never dropped, never
//! retried forever.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::classify::Rejection;

/// The file's name in the data directory.
pub const FILE_NAME: &str = "dead-letter.ndjson";

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
    pub fn new(path: impl Into<PathBuf>) -> Self {
        DeadLetterFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line per document and syncs the file (and, when it was just created, its
    /// directory) to disk. Blocking IO, on tokio's blocking pool.
    pub async fn append(&self, docs: &[DeadDoc<'_>]) -> Result<(), DeadLetterError> {
        let mut lines = Vec::new();
        let now = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        for doc in docs {
            line(&mut lines, &now, doc);
        }
        let path = self.path.clone();
        let result = tokio::task::spawn_blocking(move || write_synced(&path, &lines)).await;
        let io = match result {
            Ok(r) => r,
            Err(join) => Err(std::io::Error::other(join.to_string())),
        };
        io.map_err(|source| DeadLetterError { path: self.path.clone(), source })
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
    f.write_all(lines)?;
    f.sync_data()?;
    if !existed && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_lines() {
        let dir = tempfile::tempdir().expect("tmp");
        let f = DeadLetterFile::new(dir.path().join(FILE_NAME));
        let r = Rejection { status: 400, kind: "mapper_parsing_exception".into(), reason: "bad".into() };
        let d1 = DeadDoc { index: "logs-a", id: "1", source: br#"{"m":1}"#, why: &r };
        let d2 = DeadDoc { index: "logs-a", id: "2", source: b"not json", why: &r };
        f.append(&[d1]).await.expect("append");
        f.append(&[d2]).await.expect("append");
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
    async fn unwritable_is_an_error() {
        let f = DeadLetterFile::new("/nonexistent-dir/dead-letter.ndjson");
        let r = Rejection { status: 400, kind: "x".into(), reason: "y".into() };
        let d = DeadDoc { index: "i", id: "1", source: b"{}", why: &r };
        assert!(f.append(&[d]).await.is_err());
    }
}
