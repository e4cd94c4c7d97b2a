//! What the files source produces: a [`Record`] (one log event as found in a file, with where it
//! lies) and the [`FileMeta`] it came from.

use std::sync::Arc;

use bytes::Bytes;

/// One log event as found in its file: a log4j line with its stack trace, one JSON line, or the
/// joined pieces of a CRI line group. Records of one file tile it: each starts where the previous
/// ended, so the end of the last acknowledged record is a safe place to resume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Byte offset in the file where the record starts.
    pub offset: u64,
    /// Byte offset just past the record (its trailing newline included).
    pub end: u64,
    /// The record's text as written, credentials masked: lines joined by `\n`, no trailing newline. For CRI files,
    /// the payloads with the `<time> <stream> <P|F> ` prefixes removed and partial lines joined.
    /// Not necessarily UTF-8: the encoder replaces invalid sequences. A slice of a chunk shared
    /// with the records framed before and after it (one allocation per chunk, not per record).
    pub bytes: Bytes,
    /// The record was longer than the limit and cut; the rest follows as the next record (also
    /// flagged), so nothing is dropped.
    pub cut: bool,
    /// For CRI files: the runtime's timestamp (RFC 3339) and stream of the record's first line.
    /// Boxed: a record is moved half a dozen times between the file and the batch, and most
    /// have none; inline, it was a third of the record's size.
    pub cri: Option<Box<CriLine>>,
    /// Hash chain over the file's records so far, this one included: `h(previous chain, offset,
    /// bytes)`. Equal for the same record of the same content however the file was reached
    /// (renamed, copied, re-read after a crash), and it is the record's content hash in the id.
    pub chain: u128,
    /// Credentials were masked in `bytes` (the document is tagged `redacted`).
    pub redacted: bool,
}

/// What a CRI log line says besides its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriLine {
    /// `<time>` as written by the runtime (RFC 3339 with nanoseconds).
    pub time: String,
    pub stream: Stream,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// What a file source knows about the file a record came from, shared by all its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// The path the file had when it was read (`log.file.path`).
    pub path: Arc<str>,
    /// The file's identity: a hash of its first line (see `files::fingerprint`).
    pub fingerprint: u64,
    /// The file's name when first seen, rotation suffixes removed (`app.log` for `app.log.3`):
    /// kept with the file's checkpoint, so its copies and renamed selves keep it. Part of the
    /// ids, so that two files whose first records are identical (a banner line) stay distinct.
    pub name: Arc<str>,
    /// For CRI files under `/var/log/containers` or `/var/log/pods`: the pod the kubelet named
    /// the file after.
    pub pod: Option<PodRef>,
}

/// A container's coordinates as the kubelet writes them into CRI log file names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRef {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// The container id (from `/var/log/containers/<pod>_<ns>_<container>-<id>.log`), if named.
    pub container_id: Option<String>,
}
