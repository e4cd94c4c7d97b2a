//! Records to ECS documents and their `_id`s. Pure and fast: the log4j path writes JSON
//! straight into a byte buffer from slices of the record (no `serde_json::Value`, no per-field
//! allocation); the fields that are the same for every record are rendered once, in
//! [`Encoder::new`]. JSON lines (EcsLayout) keep their object: its ECS fields win over what we
//! would derive, but the source fields (where the line came from) are ours.

pub(crate) mod json;

use std::cell::RefCell;
use std::sync::Arc;
use std::time::SystemTime;

use jiff::tz::TimeZone;
use serde_json::{Map, Value};

use crate::framing::Format;
use crate::parse;
use crate::record::{FileMeta, Record};

/// Where documents go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `logs-calypso.<component>-<namespace>` (the default).
    DataStream,
    /// A fixed index or alias (`AGENT_LOGSHIP_INDEX`).
    Index(String),
}

/// What is the same for every document of this agent (settings and the Downward API).
#[derive(Debug, Clone)]
pub struct EncodeContext {
    /// `AGENT_LOGSHIP_COMPONENT`: `service.name`, `event.dataset: calypso.<component>`.
    pub component: String,
    /// `calypso.environment`.
    pub environment: Option<String>,
    /// Downward API: `kubernetes.namespace` (also the data stream's namespace; `default` if
    /// unknown), `kubernetes.pod.name`, `kubernetes.node.name`, `kubernetes.container.name`.
    pub namespace: Option<String>,
    pub pod_name: Option<String>,
    pub node_name: Option<String>,
    pub container_name: Option<String>,
    /// `host.name`.
    pub host_name: Option<String>,
    /// `AGENT_LOGSHIP_TIMEZONE`: the zone log4j times are written in.
    pub time_zone: TimeZone,
    pub target: Target,
    /// The files' format (`json` documents keep the line's object).
    pub format: Format,
}

/// Where the ingest time comes from (`SystemTime::now` but in tests): read only for a record
/// without a readable time of its own — a clock read per record costs more than its parsing.
pub type Clock<'a> = &'a dyn Fn() -> SystemTime;

/// A document's `_id` as written: 32 lowercase hex digits (see [`document_id`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DocId([u8; 32]);

impl DocId {
    pub fn as_str(&self) -> &str {
        // Hex digits only.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::fmt::Debug for DocId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Encodes records of one agent into documents.
#[derive(Debug)]
pub struct Encoder {
    ctx: EncodeContext,
    index: Arc<str>,
    dataset: String,
    /// `data_stream.namespace` (when writing to a data stream).
    ds_namespace: String,
    line_time: parse::LineStamp,
    /// The last file's path as a JSON string (`log.file.path`): records come in runs of one
    /// file, and escaping its path again for each cost about 2 % of shipping them.
    path: RefCell<(Option<Arc<str>>, Vec<u8>)>,
    /// `,"kubernetes":{...}` from the context (empty if nothing is known).
    kubernetes: Vec<u8>,
    /// `,"service":...,"host":...` and the data stream fields.
    tail: Vec<u8>,
}

const MAX_INDEX_BYTES: usize = 255;

/// What a document whose credentials were masked says (`tags`, as ECS has it): an auditor finds
/// every such document with `tags:redacted`.
pub const REDACTED_TAGS: &[u8] = b",\"tags\":[\"redacted\"]";
const REDACTED: &str = "redacted";

impl Encoder {
    pub fn new(ctx: EncodeContext) -> Self {
        let component = name_part(&ctx.component, 100 - "calypso.".len());
        let dataset = format!("calypso.{component}");
        let ds_namespace = name_part(ctx.namespace.as_deref().unwrap_or("default"), 100);
        let index: Arc<str> = match &ctx.target {
            Target::DataStream => format!("logs-{dataset}-{ds_namespace}").into(),
            Target::Index(name) => index_name(name).into(),
        };
        let kubernetes = render_kubernetes(
            ctx.namespace.as_deref(),
            ctx.pod_name.as_deref(),
            ctx.node_name.as_deref(),
            ctx.container_name.as_deref(),
        );
        let mut tail = Vec::new();
        tail.extend_from_slice(b",\"service\":{\"name\":");
        json::string(&mut tail, ctx.component.as_bytes());
        tail.push(b'}');
        if let Some(env) = &ctx.environment {
            tail.extend_from_slice(b",\"calypso\":{\"environment\":");
            json::string(&mut tail, env.as_bytes());
            tail.push(b'}');
        }
        tail.extend_from_slice(b",\"event\":{\"dataset\":");
        json::string(&mut tail, dataset.as_bytes());
        tail.push(b'}');
        if ctx.target == Target::DataStream {
            tail.extend_from_slice(b",\"data_stream\":{\"type\":\"logs\",\"dataset\":");
            json::string(&mut tail, dataset.as_bytes());
            tail.extend_from_slice(b",\"namespace\":");
            json::string(&mut tail, ds_namespace.as_bytes());
            tail.push(b'}');
        }
        if let Some(host) = &ctx.host_name {
            tail.extend_from_slice(b",\"host\":{\"name\":");
            json::string(&mut tail, host.as_bytes());
            tail.push(b'}');
        }
        let line_time = parse::LineStamp::new(&ctx.time_zone);
        Encoder { ctx, index, dataset, ds_namespace, line_time, path: RefCell::default(), kubernetes, tail }
    }

    /// The data stream or index every document goes to.
    pub fn index(&self) -> &Arc<str> {
        &self.index
    }

    /// The record's `_id`: the pod and container it came from (the file's pod for CRI files),
    /// the file's name, the record's offset and chain. Not the file's fingerprint: it hashes the
    /// file's first line as written, before masking, and a secret's bytes must not reach an id.
    pub fn id(&self, record: &Record, file: &FileMeta) -> DocId {
        let (ns, pod, container) = match &file.pod {
            Some(p) => (p.namespace.as_str(), p.pod.as_str(), p.container.as_str()),
            None => (
                self.ctx.namespace.as_deref().unwrap_or(""),
                self.ctx.pod_name.as_deref().unwrap_or(""),
                self.ctx.container_name.as_deref().unwrap_or(""),
            ),
        };
        let id = document_id(ns, pod, container, &file.name, record.offset, record.chain);
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = [0u8; 32];
        for (pair, byte) in hex.chunks_exact_mut(2).zip(id.to_be_bytes()) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 15)];
        }
        DocId(hex)
    }

    /// Appends the document to `out` (a `_bulk` body, say); returns whether `@timestamp` is the
    /// ingest time.
    pub fn encode_into(&self, record: &Record, file: &FileMeta, now: Clock, out: &mut Vec<u8>) -> bool {
        match self.ctx.format {
            Format::Json => self.encode_json(record, file, now, out),
            Format::Log4j | Format::Cri => self.encode_log4j(record, file, now, out),
        }
    }

    fn encode_log4j(&self, record: &Record, file: &FileMeta, now: Clock, out: &mut Vec<u8>) -> bool {
        let r = parse::parse_record(&record.bytes);
        out.extend_from_slice(b"{\"@timestamp\":\"");
        let unparsed = match r.header {
            Some(h) if self.line_time.write(h.time, out) => false,
            _ => {
                let (ts, unparsed) = self.timestamp(record, now);
                parse::write_unix_ms(ts, out);
                unparsed
            }
        };
        out.extend_from_slice(b"\",\"message\":");
        json::string(out, r.message);
        if record.redacted {
            out.extend_from_slice(REDACTED_TAGS);
        }
        out.extend_from_slice(b",\"log\":{");
        if let Some(h) = &r.header {
            if let Some(level) = h.level {
                out.extend_from_slice(b"\"level\":");
                json::string(out, level);
                out.push(b',');
            }
            if let Some(logger) = h.logger {
                out.extend_from_slice(b"\"logger\":");
                json::string(out, logger);
                out.push(b',');
            }
        }
        self.write_log_source(record, file, out);
        write_flags(out, r.multiline, record.cut, unparsed, false);
        out.push(b'}');
        if let Some(thread) = r.header.and_then(|h| h.thread) {
            out.extend_from_slice(b",\"process\":{\"thread\":{\"name\":");
            json::string(out, thread);
            out.extend_from_slice(b"}}");
        }
        if let Some(t) = r.trace {
            out.extend_from_slice(b",\"error\":{");
            if let Some(ty) = t.error_type {
                out.extend_from_slice(b"\"type\":");
                json::string(out, ty);
                out.push(b',');
            }
            if let Some(msg) = t.error_message {
                out.extend_from_slice(b"\"message\":");
                json::string(out, msg);
                out.push(b',');
            }
            out.extend_from_slice(b"\"stack_trace\":");
            json::string(out, t.stack_trace);
            out.push(b'}');
        }
        self.write_origin(record, file, out, false);
        out.extend_from_slice(&self.tail);
        out.push(b'}');
        unparsed
    }

    /// `"file":{"path":...},"offset":N` inside `log`.
    fn write_log_source(&self, record: &Record, file: &FileMeta, out: &mut Vec<u8>) {
        out.extend_from_slice(b"\"file\":{\"path\":");
        self.write_path(file, out);
        out.extend_from_slice(b"},\"offset\":");
        json::u64(out, record.offset);
    }

    /// The file's path as a JSON string, escaped once per file (see `path`).
    fn write_path(&self, file: &FileMeta, out: &mut Vec<u8>) {
        let mut memo = self.path.borrow_mut();
        let (last, json) = &mut *memo;
        if !last.as_ref().is_some_and(|p| Arc::ptr_eq(p, &file.path)) {
            json.clear();
            json::string(json, file.path.as_bytes());
            *last = Some(file.path.clone());
        }
        out.extend_from_slice(json);
    }

    /// `kubernetes`, and for CRI records `container.id` and `stream`; dotted keys if `dotted`.
    fn write_origin(&self, record: &Record, file: &FileMeta, out: &mut Vec<u8>, dotted: bool) {
        match &file.pod {
            Some(p) => {
                let k = render_kubernetes(
                    Some(&p.namespace),
                    Some(&p.pod),
                    self.ctx.node_name.as_deref(),
                    Some(&p.container),
                );
                out.extend_from_slice(&k);
                if let Some(id) = &p.container_id {
                    out.extend_from_slice(if dotted {
                        b",\"container.id\":"
                    } else {
                        b",\"container\":{\"id\":"
                    });
                    json::string(out, id.as_bytes());
                    if !dotted {
                        out.push(b'}');
                    }
                }
            }
            None => out.extend_from_slice(&self.kubernetes),
        }
        if let Some(cri) = &record.cri {
            out.extend_from_slice(b",\"stream\":\"");
            out.extend_from_slice(cri.stream.as_str().as_bytes());
            out.push(b'"');
        }
    }

    /// For a record without a readable time of its own: the runtime's (CRI), else now (flagged).
    /// As Unix milliseconds.
    fn timestamp(&self, record: &Record, now: Clock) -> (i64, bool) {
        if let Some(ts) = record.cri.as_ref().and_then(|c| parse::parse_cri_time(&c.time)) {
            return (ts.as_millisecond(), false);
        }
        let ms = now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        (ms, true)
    }

    fn encode_json(&self, record: &Record, file: &FileMeta, now: Clock, out: &mut Vec<u8>) -> bool {
        let parsed = serde_json::from_slice::<Map<String, Value>>(&record.bytes).ok();
        let Some(mut obj) = parsed else {
            // Not a JSON object: kept as the message, flagged.
            let (ts, unparsed) = self.timestamp(record, now);
            out.extend_from_slice(b"{\"@timestamp\":\"");
            parse::write_unix_ms(ts, out);
            out.extend_from_slice(b"\",\"message\":");
            json::string(out, &record.bytes);
            if record.redacted {
                out.extend_from_slice(REDACTED_TAGS);
            }
            out.extend_from_slice(b",\"log\":{");
            self.write_log_source(record, file, out);
            write_flags(out, false, record.cut, unparsed, true);
            out.push(b'}');
            self.write_origin(record, file, out, false);
            out.extend_from_slice(&self.tail);
            out.push(b'}');
            return unparsed;
        };
        // Ours: where the line came from. Whatever the line says there is dropped.
        for path in OURS {
            remove_path(&mut obj, path);
        }
        obj.retain(|k, _| {
            ["kubernetes.", "data_stream.", "agent_logship."].iter().all(|p| !k.starts_with(p))
        });
        if record.redacted {
            add_redacted_tag(&mut obj);
        }
        out.push(b'{');
        let unparsed = if has_path(&obj, &["@timestamp"]) {
            false
        } else {
            let (ts, unparsed) = self.timestamp(record, now);
            out.extend_from_slice(b"\"@timestamp\":\"");
            parse::write_unix_ms(ts, out);
            out.extend_from_slice(b"\",");
            unparsed
        };
        out.extend_from_slice(b"\"log.file.path\":");
        self.write_path(file, out);
        out.extend_from_slice(b",\"log.offset\":");
        json::u64(out, record.offset);
        if record.cut || unparsed {
            out.extend_from_slice(b",\"log.flags\":");
            write_flag_list(out, false, record.cut, unparsed, false);
        }
        // Dotted, so they merge with the line's `kubernetes`-free objects without duplicate keys.
        let k = match &file.pod {
            Some(p) => [
                Some(p.namespace.as_str()),
                Some(p.pod.as_str()),
                self.ctx.node_name.as_deref(),
                Some(p.container.as_str()),
            ],
            None => [
                self.ctx.namespace.as_deref(),
                self.ctx.pod_name.as_deref(),
                self.ctx.node_name.as_deref(),
                self.ctx.container_name.as_deref(),
            ],
        };
        for (name, v) in [
            "kubernetes.namespace",
            "kubernetes.pod.name",
            "kubernetes.node.name",
            "kubernetes.container.name",
        ]
        .iter()
        .zip(k)
        {
            if let Some(v) = v {
                out.push(b',');
                json::key(out, name);
                json::string(out, v.as_bytes());
            }
        }
        if let Some(id) = file.pod.as_ref().and_then(|p| p.container_id.as_deref()) {
            out.extend_from_slice(b",\"container.id\":");
            json::string(out, id.as_bytes());
        }
        if let Some(cri) = &record.cri {
            out.extend_from_slice(b",\"stream\":\"");
            out.extend_from_slice(cri.stream.as_str().as_bytes());
            out.push(b'"');
        }
        out.extend_from_slice(b",\"event.dataset\":");
        json::string(out, self.dataset.as_bytes());
        if let Some(host) = &self.ctx.host_name {
            out.extend_from_slice(b",\"host.name\":");
            json::string(out, host.as_bytes());
        }
        if let Target::DataStream = self.ctx.target {
            out.extend_from_slice(b",\"data_stream.type\":\"logs\",\"data_stream.dataset\":");
            json::string(out, self.dataset.as_bytes());
            out.extend_from_slice(b",\"data_stream.namespace\":");
            json::string(out, self.ds_namespace.as_bytes());
        }
        // Derived, unless the line has them.
        if !has_path(&obj, &["service", "name"]) {
            out.extend_from_slice(b",\"service.name\":");
            json::string(out, self.ctx.component.as_bytes());
        }
        if let Some(env) = &self.ctx.environment
            && !has_path(&obj, &["calypso", "environment"])
        {
            out.extend_from_slice(b",\"calypso.environment\":");
            json::string(out, env.as_bytes());
        }
        for (k, v) in &obj {
            out.push(b',');
            json::key(out, k);
            // Writing a Value into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, v);
        }
        out.push(b'}');
        unparsed
    }
}

/// Source fields the JSON line cannot set (besides every `kubernetes.*`, `data_stream.*` and
/// `agent_logship.*`).
const OURS: &[&[&str]] = &[
    &["log", "file", "path"],
    &["log", "offset"],
    &["log", "flags"],
    &["host", "name"],
    &["event", "dataset"],
    &["container", "id"],
    &["stream"],
    &["kubernetes"],
    &["data_stream"],
    // Ours to write where the cluster makes the ids (`agent_logship.id`, `sink::bulk`).
    &["agent_logship"],
];

/// Adds `redacted` to the line's own `tags`: to its list, or after its single tag. A `tags` of
/// another kind (a number, an object) is kept as its JSON text in the list.
fn add_redacted_tag(obj: &mut Map<String, Value>) {
    let mut tags = match obj.remove("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(tags)) => tags,
        Some(Value::String(s)) => vec![Value::String(s)],
        Some(other) => vec![Value::String(other.to_string())],
    };
    let tag = Value::String(REDACTED.to_owned());
    if !tags.contains(&tag) {
        tags.push(tag);
    }
    obj.insert("tags".to_owned(), Value::Array(tags));
}

/// Whether `obj` has the field, dotted (`a.b`) or nested (`{"a":{"b":..}}`).
fn has_path(obj: &Map<String, Value>, path: &[&str]) -> bool {
    if obj.contains_key(&path.join(".")) {
        return true;
    }
    let mut cur = obj;
    for (i, p) in path.iter().enumerate() {
        match cur.get(*p) {
            Some(_) if i + 1 == path.len() => return true,
            Some(Value::Object(m)) => cur = m,
            _ => return false,
        }
    }
    false
}

/// Removes the field in both its dotted and nested forms (and a nested object left empty).
fn remove_path(obj: &mut Map<String, Value>, path: &[&str]) {
    obj.remove(&path.join("."));
    fn nested(m: &mut Map<String, Value>, path: &[&str]) {
        match path {
            [] => {}
            [last] => {
                m.remove(*last);
            }
            [first, rest @ ..] => {
                if let Some(Value::Object(inner)) = m.get_mut(*first) {
                    nested(inner, rest);
                    // Also `{"log":{"file.path":..}}`.
                    inner.remove(&rest.join("."));
                    if inner.is_empty() {
                        m.remove(*first);
                    }
                }
            }
        }
    }
    nested(obj, path);
}

fn write_flags(out: &mut Vec<u8>, multiline: bool, cut: bool, unparsed: bool, not_json: bool) {
    if multiline || cut || unparsed || not_json {
        out.extend_from_slice(b",\"flags\":");
        write_flag_list(out, multiline, cut, unparsed, not_json);
    }
}

fn write_flag_list(out: &mut Vec<u8>, multiline: bool, cut: bool, unparsed: bool, not_json: bool) {
    out.push(b'[');
    let mut first = true;
    for (on, name) in
        [(multiline, "multiline"), (cut, "cut"), (unparsed, "time_unparsed"), (not_json, "not_json")]
    {
        if on {
            if !first {
                out.push(b',');
            }
            first = false;
            json::string(out, name.as_bytes());
        }
    }
    out.push(b']');
}

/// `,"kubernetes":{...}` with what is known, or nothing.
fn render_kubernetes(
    namespace: Option<&str>,
    pod: Option<&str>,
    node: Option<&str>,
    container: Option<&str>,
) -> Vec<u8> {
    let mut v = Vec::new();
    let fields = [
        (namespace, "\"namespace\":", ""),
        (pod, "\"pod\":{\"name\":", "}"),
        (node, "\"node\":{\"name\":", "}"),
        (container, "\"container\":{\"name\":", "}"),
    ];
    for (value, open, close) in fields {
        if let Some(value) = value {
            v.extend_from_slice(if v.is_empty() { b",\"kubernetes\":{" } else { b"," });
            v.extend_from_slice(open.as_bytes());
            json::string(&mut v, value.as_bytes());
            v.extend_from_slice(close.as_bytes());
        }
    }
    if !v.is_empty() {
        v.push(b'}');
    }
    v
}

/// xxh3-128 over the length-prefixed namespace, pod, container and file name (as first seen,
/// rotation suffixes removed), the record's offset and its chain (which hashes the record's
/// masked bytes and every record before it, the file's first line included).
/// `docs/agent-logship-ids.md` says why each is there.
pub fn document_id(
    namespace: &str,
    pod: &str,
    container: &str,
    name: &str,
    offset: u64,
    chain: u128,
) -> u128 {
    // One-shot over a stack buffer (the streaming hasher costs more to set up than to run);
    // names longer than Kubernetes allows take the streaming path, same value.
    let mut buf = [0u8; 512];
    let len = 32 + namespace.len() + pod.len() + container.len() + name.len() + 8 + 16;
    if len <= buf.len() {
        let mut at = 0;
        let mut put = |b: &[u8]| {
            buf[at..at + b.len()].copy_from_slice(b);
            at += b.len();
        };
        for s in [namespace, pod, container, name] {
            put(&(s.len() as u64).to_le_bytes());
            put(s.as_bytes());
        }
        put(&offset.to_le_bytes());
        put(&chain.to_le_bytes());
        return xxhash_rust::xxh3::xxh3_128(&buf[..len]);
    }
    let mut h = xxhash_rust::xxh3::Xxh3Default::new();
    for s in [namespace, pod, container, name] {
        h.update(&(s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    }
    h.update(&offset.to_le_bytes());
    h.update(&chain.to_le_bytes());
    h.digest128()
}

/// Index names: lowercase; `\ / * ? " < > | , # :` and spaces replaced by `_`; no leading
/// `-`, `_`, `+`; not `.` or `..`; at most 255 bytes.
pub fn index_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| match c {
            '\\' | '/' | '*' | '?' | '"' | '<' | '>' | '|' | ',' | '#' | ':' | ' ' => '_',
            c if c.is_control() => '_',
            c => c.to_ascii_lowercase(),
        })
        .flat_map(char::to_lowercase)
        .collect();
    s = s.trim_start_matches(['-', '_', '+']).to_owned();
    if s.is_empty() || s == "." || s == ".." {
        s = "logs-calypso".to_owned();
    }
    truncate(&mut s, MAX_INDEX_BYTES);
    s
}

/// A data stream name part (dataset or namespace): an index name without `-` (the separator
/// of `type-dataset-namespace`), at most `max` bytes.
pub(crate) fn name_part(s: &str, max: usize) -> String {
    let mut p = index_name(s).replace('-', "_");
    truncate(&mut p, max);
    if p.is_empty() { "default".to_owned() } else { p }
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut n = max;
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        s.truncate(n);
    }
}

#[cfg(test)]
mod tests;
