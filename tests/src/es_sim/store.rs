//! What the double stores: indices and data streams with their documents (sources kept as the
//! bytes that came, ids in a hash map per index), index templates, and ILM/ISM policies; and the
//! bulk semantics on top of them (`create`/`index`/`delete`, data stream rules, name rules, the
//! mapping check, injected 429s). Pure: no IO, no clock but the date it is given.

use super::Flavour;
use super::bulk::{Op, OpType};
use super::faults::FaultState;
use super::mapping::{FieldType, Mapping, Rejection};
use super::names::{expression_match, invalid_index_name, is_pattern, wildcard_match};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The longest `_id`, in bytes.
pub const MAX_ID_BYTES: usize = 512;

/// A whole-request error: status, Elasticsearch type, reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{status} {kind}: {reason}")]
pub struct ApiError {
    pub status: u16,
    pub kind: &'static str,
    pub reason: String,
}

impl ApiError {
    pub fn new(status: u16, kind: &'static str, reason: impl Into<String>) -> ApiError {
        ApiError { status, kind, reason: reason.into() }
    }

    fn no_such_index(name: &str) -> ApiError {
        ApiError::new(404, "index_not_found_exception", format!("no such index [{name}]"))
    }
}

/// One stored document.
#[derive(Debug)]
struct Stored {
    id: Arc<str>,
    source: Bytes,
    version: u64,
    seq_no: u64,
}

/// An index, or a data stream with its one backing index.
#[derive(Debug)]
struct Target {
    /// `Some(backing index name)` for a data stream.
    backing: Option<String>,
    template: Option<String>,
    docs: Vec<Stored>,
    /// `_id` → position in `docs`.
    ids: HashMap<Arc<str>, usize>,
    mapping: Mapping,
    next_seq_no: u64,
}

impl Target {
    /// The index documents are stored in (the backing index for a data stream).
    fn index_name<'a>(&'a self, name: &'a str) -> &'a str {
        self.backing.as_deref().unwrap_or(name)
    }
}

/// The outcome of one bulk item.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub op: OpType,
    pub index: String,
    pub id: Option<String>,
    pub status: u16,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done { result: &'static str, version: u64, seq_no: u64 },
    Failed { kind: &'static str, reason: String },
}

/// An ISM policy with its document versioning.
#[derive(Debug, Clone)]
struct IsmPolicy {
    policy: Value,
    seq_no: u64,
    version: u64,
}

/// Everything stored.
#[derive(Debug)]
pub struct Store {
    flavour: Flavour,
    targets: BTreeMap<String, Target>,
    templates: BTreeMap<String, Value>,
    ilm: BTreeMap<String, (u64, Value)>,
    ism: BTreeMap<String, IsmPolicy>,
    ism_seq_no: u64,
    generated: u64,
    /// Documents naming their own `_id` are refused (OpenSearch Serverless time series).
    pub server_ids_only: bool,
    /// `yyyy.MM.dd` for backing index names.
    today: String,
}

impl Store {
    /// An empty store; Elasticsearch has its built-in `logs`/`metrics` data stream templates
    /// (`builtin_templates`), OpenSearch none.
    pub fn new(flavour: Flavour, builtin_templates: bool, today: String) -> Store {
        let mut templates = BTreeMap::new();
        if builtin_templates && flavour == Flavour::Elasticsearch {
            for (name, pattern) in
                [("logs", "logs-*-*"), ("metrics", "metrics-*-*"), ("synthetics", "synthetics-*-*")]
            {
                templates.insert(
                    name.to_owned(),
                    json!({
                        "index_patterns": [pattern],
                        "composed_of": [],
                        "priority": 100,
                        "version": 1,
                        "data_stream": {"hidden": false, "allow_custom_routing": false},
                        "template": {"mappings": {"properties": {
                            "@timestamp": {"type": "date"},
                            "message": {"type": "match_only_text"},
                            "data_stream": {"properties": {
                                "type": {"type": "constant_keyword"},
                                "dataset": {"type": "constant_keyword"},
                                "namespace": {"type": "constant_keyword"}
                            }}
                        }}},
                        "_meta": {"description": "built-in template (es-sim)", "managed": true}
                    }),
                );
            }
        }
        Store {
            flavour,
            targets: BTreeMap::new(),
            templates,
            ilm: BTreeMap::new(),
            ism: BTreeMap::new(),
            ism_seq_no: 0,
            generated: 0,
            server_ids_only: false,
            today,
        }
    }

    /// Forgets every document, index and data stream (templates and policies stay).
    pub fn clear_documents(&mut self) {
        self.targets.clear();
    }

    fn parse_error_kind(&self) -> &'static str {
        match self.flavour {
            Flavour::Elasticsearch => "document_parsing_exception",
            Flavour::OpenSearch => "mapper_parsing_exception",
        }
    }

    fn rejected_kind(&self) -> &'static str {
        match self.flavour {
            Flavour::Elasticsearch => "es_rejected_execution_exception",
            Flavour::OpenSearch => "rejected_execution_exception",
        }
    }

    /// Request-level validation, as `BulkRequest.validate()` does before anything is indexed:
    /// a missing index, and (Elasticsearch) an empty or too long `_id` fail the whole request.
    fn validate(&self, ops: &[Op], default_index: Option<&str>) -> Result<(), ApiError> {
        let mut problems = Vec::new();
        for op in ops {
            if op.index.is_none() && default_index.is_none() {
                problems.push("index is missing".to_owned());
            }
            match (&op.id, op.op) {
                (None, OpType::Update | OpType::Delete) => problems.push("id is missing".to_owned()),
                (Some(id), _) if self.flavour == Flavour::Elasticsearch && id.is_empty() => {
                    problems.push("if _id is specified it must not be empty".to_owned());
                }
                (Some(id), _) if self.flavour == Flavour::Elasticsearch && id.len() > MAX_ID_BYTES => {
                    problems.push(format!(
                        "id [{id}] is too long, must be no longer than {MAX_ID_BYTES} bytes but was: {}",
                        id.len()
                    ));
                }
                _ => {}
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        let listed: String = problems.iter().enumerate().map(|(i, p)| format!("{}: {p};", i + 1)).collect();
        Err(ApiError::new(400, "action_request_validation_exception", format!("Validation Failed: {listed}")))
    }

    /// Applies a bulk request's operations in order; one item per operation.
    pub fn bulk(
        &mut self,
        ops: Vec<Op>,
        default_index: Option<&str>,
        faults: &mut FaultState,
    ) -> Result<Vec<Item>, ApiError> {
        self.validate(&ops, default_index)?;
        let mut items = Vec::with_capacity(ops.len());
        for op in ops {
            let index = op.index.clone().or_else(|| default_index.map(str::to_owned)).unwrap_or_default();
            items.push(self.apply(op, index, faults));
        }
        Ok(items)
    }

    fn apply(&mut self, op: Op, index: String, faults: &mut FaultState) -> Item {
        let kind = op.op;
        let fail = |index: String, id: Option<String>, status: u16, k: &'static str, reason: String| Item {
            op: kind,
            index,
            id,
            status,
            outcome: Outcome::Failed { kind: k, reason },
        };
        if faults.reject_item() {
            let reason = format!(
                "rejected execution of coordinating operation [shard_detail=[{index}][0], shard_write_bytes={}] (injected by es-sim)",
                op.source.as_ref().map_or(0, Bytes::len)
            );
            return fail(index, op.id, 429, self.rejected_kind(), reason);
        }
        let creates = matches!(kind, OpType::Create | OpType::Index);
        if self.server_ids_only && creates && op.id.is_some() {
            // OpenSearch Serverless's own words for it.
            let reason = "Document ID is not supported in create/index operation request".to_owned();
            return fail(index, op.id, 400, "illegal_argument_exception", reason);
        }
        if !self.targets.contains_key(&index) {
            if !creates {
                let e = ApiError::no_such_index(&index);
                return fail(index, op.id, e.status, e.kind, e.reason);
            }
            if let Some(reason) = invalid_index_name(&index) {
                return fail(index, op.id, 400, "invalid_index_name_exception", reason);
            }
            self.create_target(&index);
        }
        let parse_kind = self.parse_error_kind();
        let flavour = self.flavour;
        let id = match op.id {
            Some(id) => id,
            None => self.generate_id(),
        };
        let Some(target) = self.targets.get_mut(&index) else {
            return fail(index, Some(id), 500, "exception", "es-sim lost the target".to_owned());
        };
        let shown_index = target.index_name(&index).to_owned();
        if target.backing.is_some() && kind != OpType::Create {
            let reason = "only write ops with an op_type of create are allowed in data streams".to_owned();
            return fail(shown_index, Some(id), 400, "illegal_argument_exception", reason);
        }
        if flavour == Flavour::OpenSearch && id.len() > MAX_ID_BYTES {
            let reason = format!(
                "id [{id}] is too long, must be no longer than {MAX_ID_BYTES} bytes but was: {}",
                id.len()
            );
            return fail(shown_index, Some(id), 400, "illegal_argument_exception", reason);
        }
        match kind {
            OpType::Update => {
                let reason = "es-sim does not implement the [update] action".to_owned();
                fail(shown_index, Some(id), 400, "illegal_argument_exception", reason)
            }
            OpType::Delete => {
                let (status, result, version) = target.delete(&id);
                Item {
                    op: kind,
                    index: shown_index,
                    id: Some(id),
                    status,
                    outcome: Outcome::Done { result, version, seq_no: 0 },
                }
            }
            OpType::Create | OpType::Index => {
                let source = op.source.unwrap_or_default();
                let checked = match target.mapping.check(&source, &id) {
                    Ok(c) => c,
                    Err(Rejection::Conflict(reason)) => {
                        return fail(shown_index, Some(id), 400, parse_kind, reason);
                    }
                    Err(other) => return fail(shown_index, Some(id), 400, parse_kind, other.to_string()),
                };
                if target.backing.is_some() && !checked.has_timestamp {
                    let reason = match flavour {
                        Flavour::Elasticsearch => {
                            "failed to parse: data stream timestamp field [@timestamp] is missing"
                        }
                        Flavour::OpenSearch => {
                            "documents must contain a single-valued timestamp field '@timestamp' of date type"
                        }
                    };
                    return fail(shown_index, Some(id), 400, parse_kind, reason.to_owned());
                }
                let id: Arc<str> = id.into();
                match (kind, target.ids.get(&id).copied()) {
                    (OpType::Create, Some(at)) => {
                        let version = target.docs.get(at).map_or(1, |d| d.version);
                        let reason = format!(
                            "[{id}]: version conflict, document already exists (current version [{version}])"
                        );
                        fail(
                            shown_index,
                            Some(id.to_string()),
                            409,
                            "version_conflict_engine_exception",
                            reason,
                        )
                    }
                    (_, existing) => {
                        target.mapping.apply(checked);
                        let seq_no = target.next_seq_no;
                        target.next_seq_no += 1;
                        let (status, result, version) = match existing.and_then(|at| target.docs.get_mut(at))
                        {
                            Some(doc) => {
                                doc.version += 1;
                                doc.source = source;
                                doc.seq_no = seq_no;
                                (200, "updated", doc.version)
                            }
                            None => {
                                target.ids.insert(id.clone(), target.docs.len());
                                target.docs.push(Stored { id: id.clone(), source, version: 1, seq_no });
                                (201, "created", 1)
                            }
                        };
                        Item {
                            op: kind,
                            index: shown_index,
                            id: Some(id.to_string()),
                            status,
                            outcome: Outcome::Done { result, version, seq_no },
                        }
                    }
                }
            }
        }
    }

    /// An id like Elasticsearch's: 20 URL-safe base64 characters, unique in this store.
    fn generate_id(&mut self) -> String {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        self.generated += 1;
        let mut n =
            u128::from(self.generated).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835) | (1 << 120);
        let mut id = String::with_capacity(20);
        for _ in 0..20 {
            id.push(char::from(ALPHABET[usize::try_from(n & 63).unwrap_or(0)]));
            n >>= 6;
        }
        id
    }

    /// The template that applies to a new target: the matching one of highest priority.
    fn template_for(&self, name: &str) -> Option<(&String, &Value)> {
        self.templates
            .iter()
            .filter(|(_, t)| patterns(t).iter().any(|p| wildcard_match(p, name)))
            .max_by_key(|(_, t)| t.get("priority").and_then(Value::as_i64).unwrap_or(0))
    }

    /// Auto-creates an index or, where a template with `data_stream` says so, a data stream.
    fn create_target(&mut self, name: &str) {
        let template = self.template_for(name);
        let mappings = template.and_then(|(_, t)| t.pointer("/template/mappings"));
        let mut mapping = Mapping::from_mappings(mappings);
        let data_stream = template.is_some_and(|(_, t)| t.get("data_stream").is_some_and(Value::is_object));
        let backing = data_stream.then(|| {
            if mapping.get("@timestamp").is_none() {
                mapping.set("@timestamp", FieldType::Date);
            }
            format!(".ds-{name}-{}-000001", self.today)
        });
        let target = Target {
            backing,
            template: template.map(|(n, _)| n.clone()),
            docs: Vec::new(),
            ids: HashMap::new(),
            mapping,
            next_seq_no: 0,
        };
        self.targets.insert(name.to_owned(), target);
    }

    /// Targets an expression names (their names or backing index names match); 404 when a
    /// plain name matches nothing.
    fn resolve(&self, expression: &str) -> Result<Vec<(&String, &Target)>, ApiError> {
        let found: Vec<_> = self
            .targets
            .iter()
            .filter(|(name, t)| {
                expression_match(expression, name)
                    || t.backing.as_deref().is_some_and(|b| expression_match(expression, b))
            })
            .collect();
        if found.is_empty() && !is_pattern(expression) {
            return Err(ApiError::no_such_index(expression));
        }
        Ok(found)
    }

    /// The stored sources of the targets an expression names, each with its `_id`, in the
    /// order they were first stored (an empty list when nothing matches).
    pub fn docs(&self, expression: &str) -> Vec<Value> {
        let Ok(targets) = self.resolve(expression) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (_, target) in targets {
            for doc in &target.docs {
                let mut source =
                    serde_json::from_slice::<Map<String, Value>>(&doc.source).unwrap_or_default();
                source.insert("_id".to_owned(), Value::String(doc.id.to_string()));
                out.push(Value::Object(source));
            }
        }
        out
    }

    /// Every stored `_id` (of all targets).
    pub fn ids(&self) -> Vec<String> {
        self.targets.values().flat_map(|t| t.docs.iter().map(|d| d.id.to_string())).collect()
    }

    /// The number of documents an expression names.
    pub fn count(&self, expression: &str) -> Result<u64, ApiError> {
        Ok(self.resolve(expression)?.iter().map(|(_, t)| t.docs.len() as u64).sum())
    }

    /// `_search` with `match_all`: total and the hits `from..from+size` as JSON.
    pub fn search(&self, expression: &str, from: usize, size: usize) -> Result<Value, ApiError> {
        let targets = self.resolve(expression)?;
        let total: usize = targets.iter().map(|(_, t)| t.docs.len()).sum();
        let hits: Vec<Value> = targets
            .iter()
            .flat_map(|(name, t)| t.docs.iter().map(move |d| (t.index_name(name), d)))
            .skip(from)
            .take(size)
            .map(|(index, d)| {
                json!({"_index": index, "_id": &*d.id, "_score": 1.0, "_source": source_value(&d.source)})
            })
            .collect();
        Ok(json!({
            "took": 1, "timed_out": false,
            "_shards": {"total": targets.len(), "successful": targets.len(), "skipped": 0, "failed": 0},
            "hits": {"total": {"value": total, "relation": "eq"}, "max_score": if total > 0 { Some(1.0) } else { None }, "hits": hits}
        }))
    }

    /// `GET /{index}/_doc/{id}`: `(found, body)`.
    pub fn get_doc(&self, index: &str, id: &str) -> Result<(bool, Value), ApiError> {
        let (name, target) = self
            .targets
            .iter()
            .find(|(name, t)| *name == index || t.backing.as_deref() == Some(index))
            .ok_or_else(|| ApiError::no_such_index(index))?;
        let shown = target.index_name(name);
        Ok(match target.ids.get(id).and_then(|&at| target.docs.get(at)) {
            Some(d) => (
                true,
                json!({"_index": shown, "_id": id, "_version": d.version, "_seq_no": d.seq_no, "_primary_term": 1,
                       "found": true, "_source": source_value(&d.source)}),
            ),
            None => (false, json!({"_index": shown, "_id": id, "found": false})),
        })
    }

    /// `GET /_data_stream/{expression}`.
    pub fn data_streams(&self, expression: &str) -> Result<Value, ApiError> {
        let streams: Vec<Value> = self
            .targets
            .iter()
            .filter(|(name, t)| t.backing.is_some() && expression_match(expression, name))
            .map(|(name, t)| {
                json!({
                    "name": name,
                    "timestamp_field": {"name": "@timestamp"},
                    "indices": [{"index_name": t.backing, "index_uuid": uuid_like(name)}],
                    "generation": 1,
                    "status": "GREEN",
                    "template": t.template,
                    "hidden": false,
                    "system": false,
                })
            })
            .collect();
        if streams.is_empty() && !is_pattern(expression) {
            return Err(ApiError::no_such_index(expression));
        }
        Ok(json!({"data_streams": streams}))
    }

    /// `PUT /_index_template/{name}`: validates and stores (replacing a template of that name).
    pub fn put_template(&mut self, name: &str, mut body: Value) -> Result<(), ApiError> {
        let Some(object) = body.as_object_mut() else {
            return Err(ApiError::new(400, "parsing_exception", "the index template must be a JSON object"));
        };
        let normalized = match object.get("index_patterns") {
            Some(Value::String(p)) => vec![Value::String(p.clone())],
            Some(Value::Array(ps)) if !ps.is_empty() && ps.iter().all(Value::is_string) => ps.clone(),
            _ => {
                return Err(ApiError::new(
                    400,
                    "action_request_validation_exception",
                    "Validation Failed: 1: index patterns are missing;",
                ));
            }
        };
        object.insert("index_patterns".to_owned(), Value::Array(normalized));
        if object.get("data_stream").is_some_and(|d| !d.is_object()) {
            return Err(ApiError::new(400, "x_content_parse_exception", "[data_stream] must be an object"));
        }
        let priority = object.get("priority").and_then(Value::as_i64).unwrap_or(0);
        let mine = patterns(&body);
        for (other, template) in &self.templates {
            let same_priority = template.get("priority").and_then(Value::as_i64).unwrap_or(0) == priority;
            let theirs = patterns(template);
            let overlap =
                mine.iter().any(|a| theirs.iter().any(|b| wildcard_match(a, b) || wildcard_match(b, a)));
            if other != name && same_priority && overlap {
                return Err(ApiError::new(
                    400,
                    "illegal_argument_exception",
                    format!(
                        "index template [{name}] has index patterns {mine:?} matching patterns from existing templates [{other}] \
with patterns ({other} => {theirs:?}) that have the same priority [{priority}], multiple index templates may not match during index creation, \
please use a different priority"
                    ),
                ));
            }
        }
        self.templates.insert(name.to_owned(), body);
        Ok(())
    }

    /// `GET /_index_template/{expression}` (all when `None`).
    pub fn get_templates(&self, expression: Option<&str>) -> Result<Value, ApiError> {
        let found: Vec<Value> = self
            .templates
            .iter()
            .filter(|(name, _)| expression.is_none_or(|e| expression_match(e, name)))
            .map(|(name, t)| json!({"name": name, "index_template": t}))
            .collect();
        match expression {
            Some(e) if found.is_empty() && !is_pattern(e) => Err(ApiError::new(
                404,
                "resource_not_found_exception",
                format!("index template matching [{e}] not found"),
            )),
            _ => Ok(json!({"index_templates": found})),
        }
    }

    /// `DELETE /_index_template/{name}`.
    pub fn delete_template(&mut self, name: &str) -> Result<(), ApiError> {
        self.templates.remove(name).map(|_| ()).ok_or_else(|| {
            ApiError::new(404, "index_template_missing_exception", format!("index_template [{name}] missing"))
        })
    }

    /// `PUT /_ilm/policy/{name}` (Elasticsearch).
    pub fn put_ilm(&mut self, name: &str, body: &Value) -> Result<(), ApiError> {
        let Some(policy) = body.get("policy").filter(|p| p.is_object()) else {
            return Err(ApiError::new(
                400,
                "x_content_parse_exception",
                "[put_lifecycle_request] required field [policy] is missing",
            ));
        };
        let version = self.ilm.get(name).map_or(1, |(v, _)| v + 1);
        self.ilm.insert(name.to_owned(), (version, policy.clone()));
        Ok(())
    }

    /// `GET /_ilm/policy[/{name}]`.
    pub fn get_ilm(&self, name: Option<&str>) -> Result<Value, ApiError> {
        let mut out = Map::new();
        for (n, (version, policy)) in &self.ilm {
            if name.is_none_or(|e| expression_match(e, n)) {
                out.insert(
                    n.clone(),
                    json!({"version": version, "modified_date": "2024-01-01T00:00:00.000Z", "policy": policy,
                           "in_use_by": {"indices": [], "data_streams": [], "composable_templates": []}}),
                );
            }
        }
        match name {
            Some(n) if out.is_empty() && !is_pattern(n) => Err(ApiError::new(
                404,
                "resource_not_found_exception",
                format!("Lifecycle policy not found: {n}"),
            )),
            _ => Ok(Value::Object(out)),
        }
    }

    /// `PUT /_plugins/_ism/policies/{name}[?if_seq_no=&if_primary_term=]` (OpenSearch): creates
    /// (201); an existing policy is replaced only with the matching `if_seq_no` and
    /// `if_primary_term` (200), otherwise 409, as OpenSearch does.
    pub fn put_ism(
        &mut self,
        name: &str,
        body: &Value,
        if_seq_no: Option<u64>,
        if_primary_term: Option<u64>,
    ) -> Result<(u16, Value), ApiError> {
        let Some(policy) = body.get("policy").filter(|p| p.is_object()) else {
            return Err(ApiError::new(400, "illegal_argument_exception", "Required [policy] is missing"));
        };
        let mut policy = policy.clone();
        if let Some(p) = policy.as_object_mut() {
            p.insert("policy_id".to_owned(), Value::String(name.to_owned()));
        }
        let (status, version) = match (self.ism.get(name), if_seq_no, if_primary_term) {
            (None, _, _) => (201, 1),
            (Some(existing), Some(seq), Some(1)) if seq == existing.seq_no => (200, existing.version + 1),
            (Some(existing), Some(seq), Some(term)) => {
                return Err(ApiError::new(
                    409,
                    "version_conflict_engine_exception",
                    format!(
                        "[{name}]: version conflict, required seqNo [{seq}], primary term [{term}]. current document has seqNo [{}] and primary term [1]",
                        existing.seq_no
                    ),
                ));
            }
            (Some(existing), _, _) => {
                return Err(ApiError::new(
                    409,
                    "version_conflict_engine_exception",
                    format!(
                        "[{name}]: version conflict, document already exists (current version [{}])",
                        existing.version
                    ),
                ));
            }
        };
        let seq_no = self.ism_seq_no;
        self.ism_seq_no += 1;
        self.ism.insert(name.to_owned(), IsmPolicy { policy: policy.clone(), seq_no, version });
        Ok((
            status,
            json!({"_id": name, "_version": version, "_primary_term": 1, "_seq_no": seq_no, "policy": {"policy": policy}}),
        ))
    }

    /// `GET /_plugins/_ism/policies/{name}`.
    pub fn get_ism(&self, name: &str) -> Result<Value, ApiError> {
        let p =
            self.ism.get(name).ok_or_else(|| ApiError::new(404, "status_exception", "Policy not found"))?;
        Ok(
            json!({"_id": name, "_version": p.version, "_seq_no": p.seq_no, "_primary_term": 1, "policy": p.policy}),
        )
    }

    /// Document count of all targets.
    pub fn total(&self) -> u64 {
        self.targets.values().map(|t| t.docs.len() as u64).sum()
    }
}

impl Target {
    fn delete(&mut self, id: &str) -> (u16, &'static str, u64) {
        let Some(at) = self.ids.remove(id) else {
            return (404, "not_found", 1);
        };
        let removed = self.docs.swap_remove(at);
        if let Some(moved) = self.docs.get(at) {
            self.ids.insert(moved.id.clone(), at);
        }
        (200, "deleted", removed.version + 1)
    }
}

fn patterns(template: &Value) -> Vec<String> {
    template
        .get("index_patterns")
        .and_then(Value::as_array)
        .map(|ps| ps.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

fn source_value(source: &[u8]) -> Value {
    serde_json::from_slice(source).unwrap_or(Value::Null)
}

/// A stable, uuid-looking string for a name.
pub fn uuid_like(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}{:06x}", name.len())
}

/// `yyyy.MM.dd` of a Unix time (UTC), for backing index names.
pub fn date_of(unix_secs: u64) -> String {
    let (y, m, d) = civil_from_days(i64::try_from(unix_secs / 86_400).unwrap_or(0));
    format!("{y:04}.{m:02}.{d:02}")
}

/// The (year, month, day) of a count of days since 1970-01-01: Howard Hinnant's algorithm.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::super::bulk;
    use super::super::faults::Faults;
    use super::*;

    fn store(flavour: Flavour) -> Store {
        Store::new(flavour, true, "2024.05.01".into())
    }

    fn run(store: &mut Store, body: &str, default: Option<&str>) -> Result<Vec<Item>, ApiError> {
        let ops = bulk::parse(&Bytes::copy_from_slice(body.as_bytes())).expect("valid bulk body");
        store.bulk(ops, default, &mut FaultState::default())
    }

    fn statuses(items: &[Item]) -> Vec<u16> {
        items.iter().map(|i| i.status).collect()
    }

    fn failure(item: &Item) -> (&'static str, &str) {
        match &item.outcome {
            Outcome::Failed { kind, reason } => (kind, reason),
            Outcome::Done { .. } => panic!("expected a failure: {item:?}"),
        }
    }

    #[test]
    fn create_conflicts_index_replaces() {
        let mut s = store(Flavour::Elasticsearch);
        let body = "{\"create\":{\"_id\":\"a\"}}\n{\"m\":1}\n{\"create\":{\"_id\":\"a\"}}\n{\"m\":2}\n\
                    {\"index\":{\"_id\":\"a\"}}\n{\"m\":3}\n{\"index\":{}}\n{\"m\":4}\n";
        let items = run(&mut s, body, Some("app")).expect("ok");
        assert_eq!(statuses(&items), [201, 409, 200, 201]);
        assert_eq!(
            failure(&items[1]),
            (
                "version_conflict_engine_exception",
                "[a]: version conflict, document already exists (current version [1])"
            )
        );
        assert!(matches!(items[2].outcome, Outcome::Done { result: "updated", version: 2, .. }));
        let generated = items[3].id.clone().expect("generated id");
        assert_eq!(generated.len(), 20);
        let docs = s.docs("app");
        assert_eq!(docs, vec![json!({"m": 3, "_id": "a"}), json!({"m": 4, "_id": generated})]);
        assert_eq!(s.count("app"), Ok(2));
        assert_eq!(s.count("nope"), Err(ApiError::no_such_index("nope")));
        assert_eq!(s.count("nope-*"), Ok(0));
    }

    #[test]
    fn data_streams_need_create_and_a_timestamp() {
        let mut s = store(Flavour::Elasticsearch);
        let body = "{\"create\":{\"_id\":\"1\"}}\n{\"@timestamp\":\"2024-05-01T00:00:00Z\",\"message\":\"x\"}\n\
                    {\"index\":{\"_id\":\"2\"}}\n{\"@timestamp\":\"2024-05-01T00:00:00Z\"}\n\
                    {\"create\":{\"_id\":\"3\"}}\n{\"message\":\"no time\"}\n";
        let items = run(&mut s, body, Some("logs-calypso.engineserver-uat")).expect("ok");
        assert_eq!(statuses(&items), [201, 400, 400]);
        assert_eq!(
            items[0].index, ".ds-logs-calypso.engineserver-uat-2024.05.01-000001",
            "the backing index"
        );
        assert_eq!(failure(&items[1]).0, "illegal_argument_exception");
        assert_eq!(
            failure(&items[2]),
            (
                "document_parsing_exception",
                "failed to parse: data stream timestamp field [@timestamp] is missing"
            )
        );
        let ds = s.data_streams("logs-*").expect("found");
        assert_eq!(ds["data_streams"][0]["name"], "logs-calypso.engineserver-uat");
        assert_eq!(ds["data_streams"][0]["template"], "logs");
        assert_eq!(s.docs(".ds-logs-*").len(), 1, "read by backing index too");
    }

    #[test]
    fn opensearch_has_no_builtin_data_streams_and_other_error_names() {
        let mut s = store(Flavour::OpenSearch);
        let items = run(&mut s, "{\"index\":{\"_id\":\"1\"}}\n{\"m\":1}\n", Some("logs-a-b")).expect("ok");
        assert_eq!(statuses(&items), [201], "a plain index without a template");
        s.put_template("t", json!({"index_patterns": ["ds-*"], "data_stream": {}})).expect("put");
        let items = run(&mut s, "{\"create\":{}}\n{\"m\":1}\n", Some("ds-x")).expect("ok");
        assert_eq!(failure(&items[0]).0, "mapper_parsing_exception");
        let long = "x".repeat(513);
        let items = run(&mut s, &format!("{{\"index\":{{\"_id\":\"{long}\"}}}}\n{{}}\n"), Some("a"))
            .expect("per item");
        assert_eq!((items[0].status, failure(&items[0]).0), (400, "illegal_argument_exception"));
    }

    #[test]
    fn elasticsearch_validates_ids_for_the_whole_request() {
        let mut s = store(Flavour::Elasticsearch);
        let long = "x".repeat(513);
        let e = run(
            &mut s,
            &format!("{{\"index\":{{\"_id\":\"{long}\"}}}}\n{{}}\n{{\"index\":{{}}}}\n{{}}\n"),
            Some("a"),
        )
        .expect_err("whole request");
        assert_eq!((e.status, e.kind), (400, "action_request_validation_exception"));
        assert!(
            e.reason.starts_with("Validation Failed: 1: id [xxx") && e.reason.ends_with("but was: 513;"),
            "{}",
            e.reason
        );
        let e = run(&mut s, "{\"index\":{}}\n{}\n", None).expect_err("no index");
        assert_eq!(e.reason, "Validation Failed: 1: index is missing;");
        assert_eq!(s.total(), 0, "nothing indexed");
    }

    #[test]
    fn names_and_mapping_conflicts_fail_per_item() {
        let mut s = store(Flavour::Elasticsearch);
        let body = "{\"index\":{\"_index\":\"Bad\"}}\n{}\n{\"index\":{\"_index\":\"good\",\"_id\":\"1\"}}\n{\"error\":\"x\"}\n\
                    {\"index\":{\"_index\":\"good\",\"_id\":\"2\"}}\n{\"error\":{\"type\":\"x\"}}\n{\"index\":{\"_index\":\"good\",\"_id\":\"3\"}}\nnot json\n";
        let items = run(&mut s, body, None).expect("ok");
        assert_eq!(statuses(&items), [400, 201, 400, 400]);
        assert_eq!(failure(&items[0]).0, "invalid_index_name_exception");
        assert_eq!(failure(&items[2]).0, "document_parsing_exception");
        assert!(failure(&items[3]).1.starts_with("failed to parse: "));
        assert_eq!(s.count("good"), Ok(1));
    }

    #[test]
    fn injected_429s_hit_items_in_order() {
        let mut s = store(Flavour::Elasticsearch);
        let ops = bulk::parse(&Bytes::from_static(
            b"{\"create\":{\"_id\":\"1\"}}\n{}\n{\"create\":{\"_id\":\"2\"}}\n{}\n",
        ))
        .expect("valid");
        let mut faults = FaultState::new(Faults { item_429_every: 2, ..Faults::default() });
        let items = s.bulk(ops, Some("i"), &mut faults).expect("ok");
        assert_eq!(statuses(&items), [201, 429]);
        assert_eq!(failure(&items[1]).0, "es_rejected_execution_exception");
        assert_eq!(s.ids(), ["1"]);
    }

    #[test]
    fn delete_and_get() {
        let mut s = store(Flavour::Elasticsearch);
        run(
            &mut s,
            "{\"index\":{\"_id\":\"a\"}}\n{\"v\":1}\n{\"index\":{\"_id\":\"b\"}}\n{\"v\":2}\n",
            Some("i"),
        )
        .expect("ok");
        let items = run(&mut s, "{\"delete\":{\"_id\":\"a\"}}\n{\"delete\":{\"_id\":\"zz\"}}\n", Some("i"))
            .expect("ok");
        assert_eq!(statuses(&items), [200, 404]);
        assert_eq!(s.get_doc("i", "b").expect("index").1["_source"], json!({"v": 2}));
        assert!(!s.get_doc("i", "a").expect("index").0);
        assert_eq!(s.search("i", 0, 10).expect("search")["hits"]["total"]["value"], 1);
    }

    #[test]
    fn templates() {
        let mut s = store(Flavour::Elasticsearch);
        let e = s
            .put_template(
                "mine",
                json!({"index_patterns": ["logs-calypso.*-*"], "priority": 100, "data_stream": {}}),
            )
            .expect_err("same priority as the built-in logs template");
        assert!(e.reason.contains("same priority [100]"), "{}", e.reason);
        s.put_template("mine", json!({"index_patterns": "logs-calypso.*-*", "priority": 200, "data_stream": {},
            "template": {"mappings": {"properties": {"log": {"properties": {"level": {"type": "keyword"}}}}}}})).expect("put");
        let got = s.get_templates(Some("mine")).expect("get");
        assert_eq!(
            got["index_templates"][0]["index_template"]["index_patterns"],
            json!(["logs-calypso.*-*"])
        );
        assert_eq!(s.get_templates(Some("none")).expect_err("404").status, 404);
        let items = run(
            &mut s,
            "{\"create\":{}}\n{\"@timestamp\":\"2024-05-01\",\"log\":\"flat\"}\n",
            Some("logs-calypso.x-uat"),
        )
        .expect("ok");
        assert_eq!(statuses(&items), [400], "the template's mapping applies");
        assert_eq!(s.data_streams("logs-calypso.x-uat").expect("ds")["data_streams"][0]["template"], "mine");
    }

    #[test]
    fn ism_versions() {
        let mut s = store(Flavour::OpenSearch);
        let p = json!({"policy": {"description": "d", "states": []}});
        assert_eq!(s.put_ism("p", &p, None, None).expect("created").0, 201);
        assert_eq!(s.put_ism("p", &p, None, None).expect_err("exists").status, 409);
        assert_eq!(s.put_ism("p", &p, Some(0), Some(1)).expect("updated").0, 200);
        assert_eq!(s.get_ism("p").expect("get")["_version"], 2);
        assert_eq!(s.get_ism("q").expect_err("missing").status, 404);
    }

    #[test]
    fn dates() {
        assert_eq!(date_of(0), "1970.01.01");
        assert_eq!(date_of(1_714_564_800), "2024.05.01");
        assert_eq!(date_of(951_782_400), "2000.02.29");
    }
}
