//! The `_bulk` body: NDJSON action lines, each `index`/`create`/`update` followed by its source
//! line, as Elasticsearch's `BulkRequestParser` reads them. Pure: bytes in, operations out. The
//! sources are zero-copy slices of the body (kept as they came, never parsed here).

use bytes::Bytes;
use serde_json::Value;

/// A bulk action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpType {
    Index,
    Create,
    Update,
    Delete,
}

impl OpType {
    /// The name in the action line and in the response item.
    pub fn name(self) -> &'static str {
        match self {
            OpType::Index => "index",
            OpType::Create => "create",
            OpType::Update => "update",
            OpType::Delete => "delete",
        }
    }

    fn parse(name: &str) -> Option<OpType> {
        Some(match name {
            "index" => OpType::Index,
            "create" => OpType::Create,
            "update" => OpType::Update,
            "delete" => OpType::Delete,
            _ => return None,
        })
    }

    fn has_source(self) -> bool {
        self != OpType::Delete
    }
}

/// One operation of a bulk request.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    pub op: OpType,
    /// `_index` from the action line (else the `/{target}/_bulk` default applies).
    pub index: Option<String>,
    /// `_id` from the action line; a number is taken as its text, as Elasticsearch does.
    pub id: Option<String>,
    /// The source line (absent for `delete`).
    pub source: Option<Bytes>,
}

/// Why the whole request is refused (400).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BulkError {
    #[error("The bulk request must be terminated by a newline [\\n]")]
    NotTerminated,
    #[error("Validation Failed: 1: no requests added;")]
    Empty,
    #[error("Malformed action/metadata line [{line}], {reason}")]
    Malformed { line: usize, reason: String },
    #[error("Action/metadata line [{line}] contains an unknown parameter [{param}]")]
    UnknownParameter { line: usize, param: String },
}

impl BulkError {
    /// The Elasticsearch error type.
    pub fn kind(&self) -> &'static str {
        match self {
            BulkError::Empty => "action_request_validation_exception",
            _ => "illegal_argument_exception",
        }
    }
}

/// Action-line parameters Elasticsearch 8 knows (others are refused, as it does).
const KNOWN_PARAMS: &[&str] = &[
    "_index",
    "_id",
    "routing",
    "pipeline",
    "require_alias",
    "require_data_stream",
    "version",
    "version_type",
    "if_seq_no",
    "if_primary_term",
    "retry_on_conflict",
    "dynamic_templates",
    "list_executed_pipelines",
    "_source",
];

/// Parses a whole `_bulk` body. Empty action lines are skipped, as Elasticsearch does.
pub fn parse(body: &Bytes) -> Result<Vec<Op>, BulkError> {
    if body.is_empty() {
        return Err(BulkError::Empty);
    }
    if body.last() != Some(&b'\n') {
        return Err(BulkError::NotTerminated);
    }
    let mut ops = Vec::new();
    let mut from = 0;
    let mut line = 0;
    while from < body.len() {
        let end = next_newline(body, from);
        line += 1;
        let action = trim(&body[from..end]);
        from = end + 1;
        if action.is_empty() {
            continue;
        }
        let (op, index, id) = parse_action(action, line)?;
        let source = if op.has_source() {
            if from >= body.len() {
                return Err(BulkError::Malformed {
                    line,
                    reason: format!("expected a source line after the [{}] action", op.name()),
                });
            }
            let end = next_newline(body, from);
            line += 1;
            let mut slice = body.slice(from..end);
            if slice.last() == Some(&b'\r') {
                slice.truncate(slice.len() - 1);
            }
            from = end + 1;
            Some(slice)
        } else {
            None
        };
        ops.push(Op { op, index, id, source });
    }
    if ops.is_empty() {
        return Err(BulkError::Empty);
    }
    Ok(ops)
}

fn next_newline(body: &[u8], from: usize) -> usize {
    body[from..].iter().position(|&b| b == b'\n').map_or(body.len(), |i| from + i)
}

fn trim(line: &[u8]) -> &[u8] {
    line.trim_ascii()
}

type Action = (OpType, Option<String>, Option<String>);

fn parse_action(line_bytes: &[u8], line: usize) -> Result<Action, BulkError> {
    let malformed = |reason: String| BulkError::Malformed { line, reason };
    let value: Value = serde_json::from_slice(line_bytes)
        .map_err(|e| malformed(format!("expected a JSON object but it does not parse: {e}")))?;
    let Value::Object(action) = value else {
        return Err(malformed(format!("expected START_OBJECT but found [{}]", token(&value))));
    };
    let mut entries = action.into_iter();
    let Some((name, meta)) = entries.next() else {
        return Err(malformed("expected FIELD_NAME but found [END_OBJECT]".to_owned()));
    };
    if entries.next().is_some() {
        return Err(malformed("expected END_OBJECT after the action's parameters".to_owned()));
    }
    let op = OpType::parse(&name).ok_or_else(|| {
        malformed(format!("expected field [create], [delete], [index] or [update] but found [{name}]"))
    })?;
    let Value::Object(meta) = meta else {
        return Err(malformed(format!("expected START_OBJECT but found [{}]", token(&meta))));
    };
    let mut index = None;
    let mut id = None;
    for (key, value) in meta {
        if !KNOWN_PARAMS.contains(&key.as_str()) {
            return Err(BulkError::UnknownParameter { line, param: key });
        }
        let text = match value {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            Value::Null => None,
            other if key == "_index" || key == "_id" => {
                return Err(malformed(format!(
                    "expected a string for [{key}] but found [{}]",
                    token(&other)
                )));
            }
            _ => None,
        };
        match key.as_str() {
            "_index" => index = text,
            "_id" => id = text,
            _ => {}
        }
    }
    Ok((op, index, id))
}

/// The Jackson token name Elasticsearch reports for an unexpected value.
fn token(value: &Value) -> &'static str {
    match value {
        Value::Null => "VALUE_NULL",
        Value::Bool(true) => "VALUE_TRUE",
        Value::Bool(false) => "VALUE_FALSE",
        Value::Number(_) => "VALUE_NUMBER",
        Value::String(_) => "VALUE_STRING",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Vec<Op>, BulkError> {
        parse(&Bytes::copy_from_slice(s.as_bytes()))
    }

    #[test]
    fn actions_and_sources_in_order() {
        let ops = parse_str(
            "{\"create\":{\"_index\":\"logs-a-b\",\"_id\":\"1\"}}\n{\"m\":1}\n\
             {\"index\":{\"_id\":7}}\n{\"m\":2}\r\n{\"delete\":{\"_index\":\"x\",\"_id\":\"3\"}}\n\n",
        )
        .expect("valid");
        assert_eq!(ops.len(), 3);
        assert_eq!(ops[0].op, OpType::Create);
        assert_eq!(ops[0].index.as_deref(), Some("logs-a-b"));
        assert_eq!(ops[0].source.as_deref(), Some(&b"{\"m\":1}"[..]));
        assert_eq!(
            (ops[1].op, ops[1].index.as_deref(), ops[1].id.as_deref()),
            (OpType::Index, None, Some("7"))
        );
        assert_eq!(
            ops[1].source.as_deref(),
            Some(&b"{\"m\":2}"[..]),
            "a CR before the LF is not the source's"
        );
        assert_eq!((ops[2].op, ops[2].source.as_ref()), (OpType::Delete, None));
    }

    #[test]
    fn the_body_must_end_with_a_newline() {
        let e = parse_str("{\"index\":{}}\n{}").expect_err("unterminated");
        assert_eq!(e, BulkError::NotTerminated);
        assert_eq!(e.to_string(), "The bulk request must be terminated by a newline [\\n]");
        assert_eq!(e.kind(), "illegal_argument_exception");
    }

    #[test]
    fn empty_bodies_add_no_requests() {
        assert_eq!(parse_str(""), Err(BulkError::Empty));
        assert_eq!(parse_str("\n\n"), Err(BulkError::Empty));
        assert_eq!(BulkError::Empty.kind(), "action_request_validation_exception");
    }

    #[test]
    fn malformed_action_lines_name_the_line() {
        let e = parse_str("{\"index\":{}}\n{}\n{\"upsert\":{}}\n{}\n").expect_err("unknown action");
        assert_eq!(
            e.to_string(),
            "Malformed action/metadata line [3], expected field [create], [delete], [index] or [update] but found [upsert]"
        );
        let e = parse_str("\"index\"\n{}\n").expect_err("not an object");
        assert!(e.to_string().contains("line [1], expected START_OBJECT but found [VALUE_STRING]"), "{e}");
        let e = parse_str("{\"index\":{\"_type\":\"doc\"}}\n{}\n").expect_err("ES 8 has no _type");
        assert_eq!(e, BulkError::UnknownParameter { line: 1, param: "_type".into() });
        let e = parse_str("{\"index\":{}}\n").expect_err("no source line");
        assert!(matches!(e, BulkError::Malformed { line: 1, .. }), "{e:?}");
    }
}
