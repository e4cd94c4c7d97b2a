//! The checkpoint file in the data dir: per file identity, the committed position (offset and
//! hash chain) and what verifies it. Encoding and decoding are pure; [`load`] and [`save`] do the
//! IO (save: temp file, write, fsync, rename, fsync the directory — a crash leaves the old or the
//! new file, never a torn one).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::acks::Verify;
use crate::frame::Position;

/// The checkpoint file's name in the data dir.
pub const FILE_NAME: &str = "files-checkpoint.json";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot read the checkpoint {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write the checkpoint {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("the checkpoint {path} is not valid: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

/// One file identity's checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub fingerprint: u64,
    pub committed: Position,
    /// Bytes before `verify.at` hash to `verify.hash` in this file (absent when nothing is
    /// committed yet).
    pub verify: Option<Verify>,
    /// Offsets past `committed` where a record was ended by the clock (see `TrackState::cuts`).
    pub cuts: Vec<u64>,
    pub path: String,
    /// The name in the ids (see `FileMeta::name`); empty in checkpoints that predate it.
    pub name: String,
    pub dev: u64,
    pub ino: u64,
    /// When the file was last seen (a file is dropped from the checkpoint some time after).
    pub seen: SystemTime,
}

impl Entry {
    /// Whether a file with this fingerprint and size, whose window before `verify.at` hashes to
    /// `window` (computed by the caller from the candidate file), is this entry's file.
    pub fn matches(&self, fingerprint: u64, size: u64, window: impl FnOnce(u64) -> Option<u64>) -> bool {
        if self.fingerprint != fingerprint || size < self.committed.offset {
            return false;
        }
        match self.verify {
            None => true,
            Some(v) => v.at <= size && window(v.at) == Some(v.hash),
        }
    }
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The checkpoint as JSON (hashes as hex strings: JSON numbers lose precision past 2^53), with
/// the masking its chains were made with (see `FilesConfig::masking`; left out when empty).
pub fn encode(entries: &[Entry], masking: &str) -> Vec<u8> {
    let files: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "fingerprint": format!("{:016x}", e.fingerprint),
                "offset": e.committed.offset,
                "chain": format!("{:032x}", e.committed.chain),
                "verify_at": e.verify.map(|v| v.at),
                "verify_hash": e.verify.map(|v| format!("{:016x}", v.hash)),
                "cuts": e.cuts,
                "path": e.path,
                "name": e.name,
                "dev": e.dev,
                "ino": e.ino,
                "seen": secs(e.seen),
            })
        })
        .collect();
    let mut doc = json!({ "version": 1, "files": files });
    if !masking.is_empty() {
        doc["masking"] = Value::String(masking.to_owned());
    }
    let mut out = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    out.push(b'\n');
    out
}

/// A checkpoint as read: its entries, and the masking it was written with (`None` in checkpoints
/// written before records were masked).
pub type Loaded = (Vec<Entry>, Option<String>);

/// Parses a checkpoint; the error says what is wrong.
pub fn decode(bytes: &[u8]) -> Result<Loaded, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if v.get("version").and_then(Value::as_u64) != Some(1) {
        return Err("missing or unknown \"version\" (expected 1)".into());
    }
    let files = v.get("files").and_then(Value::as_array).ok_or("missing \"files\" array")?;
    let entries = files
        .iter()
        .enumerate()
        .map(|(i, f)| entry(f).map_err(|e| format!("files[{i}]: {e}")))
        .collect::<Result<_, _>>()?;
    Ok((entries, v.get("masking").and_then(Value::as_str).map(str::to_owned)))
}

fn entry(f: &Value) -> Result<Entry, String> {
    let hex64 = |k: &str| {
        f.get(k)
            .and_then(Value::as_str)
            .and_then(|s| u64::from_str_radix(s, 16).ok())
            .ok_or(format!("bad {k:?}"))
    };
    let num = |k: &str| f.get(k).and_then(Value::as_u64).ok_or(format!("bad {k:?}"));
    let chain = f
        .get("chain")
        .and_then(Value::as_str)
        .and_then(|s| u128::from_str_radix(s, 16).ok())
        .ok_or("bad \"chain\"")?;
    let verify = match f.get("verify_at").and_then(Value::as_u64) {
        Some(at) => Some(Verify { at, hash: hex64("verify_hash")? }),
        None => None,
    };
    // Absent in checkpoints written before cuts were kept: none.
    let cuts = match f.get("cuts") {
        None => Vec::new(),
        Some(v) => v
            .as_array()
            .and_then(|a| a.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>())
            .ok_or("bad \"cuts\"")?,
    };
    Ok(Entry {
        fingerprint: hex64("fingerprint")?,
        committed: Position { offset: num("offset")?, chain },
        verify,
        cuts,
        path: f.get("path").and_then(Value::as_str).unwrap_or_default().to_owned(),
        name: f.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
        dev: num("dev")?,
        ino: num("ino")?,
        seen: UNIX_EPOCH.checked_add(Duration::from_secs(num("seen")?)).ok_or("bad \"seen\"")?,
    })
}

/// Drops the entries not seen for `retention` (files gone for long).
pub fn prune(entries: &mut Vec<Entry>, now: SystemTime, retention: Duration) {
    entries.retain(|e| now.duration_since(e.seen).map(|age| age <= retention).unwrap_or(true));
}

/// Loads the checkpoint of `dir`; none yet is an empty one. A corrupt file is moved aside to
/// `<name>.corrupt` (so an operator can look at it) and reported as [`CheckpointError::Corrupt`]
/// — the caller warns and starts fresh.
pub fn load(dir: &Path) -> Result<Vec<Entry>, CheckpointError> {
    load_if_any(dir).map(|loaded| loaded.map(|(entries, _)| entries).unwrap_or_default())
}

/// The checkpoint of `dir`, or `None` when there is none at all: the agent's very first start
/// there (where `start_at=end` applies). A corrupt one is moved aside, as [`load`] says.
pub fn load_if_any(dir: &Path) -> Result<Option<Loaded>, CheckpointError> {
    let path = dir.join(FILE_NAME);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(CheckpointError::Read { path, source }),
    };
    decode(&bytes).map(Some).map_err(|reason| {
        let aside = dir.join(format!("{FILE_NAME}.corrupt"));
        let reason = match fs::rename(&path, &aside) {
            Ok(()) => format!("{reason} (moved aside to {})", aside.display()),
            Err(e) => format!("{reason} (could not move it aside: {e})"),
        };
        CheckpointError::Corrupt { path, reason }
    })
}

/// Writes the checkpoint of `dir` atomically and durably. One write at a time in the process:
/// the source of a pipeline being started again must not interleave its temp file with the
/// last write of the one it replaces.
pub fn save(dir: &Path, entries: &[Entry], masking: &str) -> Result<(), CheckpointError> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _writing = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let path = dir.join(FILE_NAME);
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let write = || -> io::Result<()> {
        fs::create_dir_all(dir)?;
        let mut f = OpenOptions::new().create(true).write(true).truncate(true).open(&tmp)?;
        f.write_all(&encode(entries, masking))?;
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        File::open(dir)?.sync_all()
    };
    write().map_err(|source| CheckpointError::Write { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Entry {
        Entry {
            fingerprint: u64::MAX - 3,
            committed: Position { offset: 1234, chain: u128::MAX - 5 },
            verify: Some(Verify { at: 1234, hash: 99 }),
            cuts: vec![1300, 1400],
            path: "/var/log/calypso/a.log".into(),
            name: "a.log".into(),
            dev: 2049,
            ino: 77,
            seen: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        }
    }

    #[test]
    fn round_trip() {
        let e = vec![sample(), Entry { verify: None, cuts: vec![], ..sample() }];
        assert_eq!(decode(&encode(&e, "m1")), Ok((e.clone(), Some("m1".into()))));
        assert_eq!(decode(&encode(&e, "")), Ok((e, None)));
        let before_cuts = br#"{"version":1,"files":[{"fingerprint":"01","offset":5,"chain":"02","path":"/l/a.log","dev":1,"ino":2,"seen":3}]}"#;
        assert_eq!(
            decode(before_cuts).map(|(e, masking)| (e[0].cuts.clone(), masking)),
            Ok((vec![], None)),
            "a checkpoint without cuts, written before masking"
        );
        let far = br#"{"version":1,"files":[{"fingerprint":"01","offset":5,"chain":"02","dev":1,"ino":2,"seen":18446744073709551615}]}"#;
        assert!(decode(far).is_err(), "a time past what the clock can hold is not valid");
        let bad_cuts = br#"{"version":1,"files":[{"fingerprint":"01","offset":5,"chain":"02","cuts":[-1],"dev":1,"ino":2,"seen":3}]}"#;
        assert!(decode(bad_cuts).is_err());
        assert!(decode(b"{").is_err());
        assert!(decode(br#"{"version":2,"files":[]}"#).is_err());
        assert!(decode(br#"{"version":1,"files":[{"fingerprint":"zz"}]}"#).is_err());
    }

    #[test]
    fn matching_needs_the_same_content() {
        let e = sample();
        assert!(e.matches(e.fingerprint, 1234, |at| (at == 1234).then_some(99)));
        assert!(!e.matches(e.fingerprint, 1233, |_| Some(99)), "shorter than the committed offset");
        assert!(!e.matches(e.fingerprint, 5000, |_| Some(98)), "other bytes before the offset");
        assert!(!e.matches(1, 5000, |_| Some(99)), "other first line");
    }

    #[test]
    fn prune_old() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_100_000);
        let mut e = vec![sample()];
        prune(&mut e, now, Duration::from_secs(200_000));
        assert_eq!(e.len(), 1);
        prune(&mut e, now, Duration::from_secs(50_000));
        assert!(e.is_empty());
    }

    #[test]
    fn corrupt_moved_aside_and_save_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(load(dir.path()).expect("none"), vec![]);
        save(dir.path(), &[sample()], "m1").expect("save");
        assert_eq!(load(dir.path()).expect("load"), vec![sample()]);
        fs::write(dir.path().join(FILE_NAME), b"garbage").expect("write");
        assert!(matches!(load(dir.path()), Err(CheckpointError::Corrupt { .. })));
        assert!(dir.path().join(format!("{FILE_NAME}.corrupt")).exists());
        assert_eq!(load(dir.path()).expect("fresh"), vec![]);
    }
}
