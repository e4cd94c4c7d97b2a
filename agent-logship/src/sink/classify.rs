//! The pure judge of a `_bulk` answer: given its HTTP status, its body and how many documents
//! were sent, what happens to the request as a whole and to each document in it. No IO, no
//! time: unit-tested on recorded Elasticsearch 8 and OpenSearch 2 answers.

use serde::Deserialize;

/// What became of one document of an answered request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// 2xx: stored.
    Stored,
    /// 409 on `create` with our deterministic `_id`: it was stored before — delivered.
    Duplicate,
    /// 429 or 5xx for this item: send it (alone, not the whole batch) again after a backoff.
    Retry,
    /// Any other 4xx: will never succeed as it is; keep it in the dead-letter file.
    DeadLetter(Rejection),
}

/// Why Elasticsearch refused a document or a request, as it said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    /// The error's `type` (`mapper_parsing_exception`...), `unknown` when the answer had none.
    pub kind: String,
    pub reason: String,
}

/// What to do with the request as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Answered item by item, in request order.
    Items(Vec<Item>),
    /// Send the same request again after a backoff (429, 5xx, or an answer we cannot trust).
    RetryWhole(RetryReason),
    /// 413: the request was too large; send each half on its own.
    Split,
    /// A configuration problem, not the data's: keep the data and try the whole request again
    /// slowly (what was stored meanwhile is answered 409: delivered).
    Misconfigured(Misconfig),
    /// Another 4xx for the whole request: it will never succeed (our bug, or a proxy's refusal).
    Rejected(Rejection),
}

/// The configuration problems that make the data wait instead of going to the dead letters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Misconfig {
    /// 401/403 for the whole request: the credentials, or no privilege to send `_bulk` at all.
    /// The reason is the server's first line of explanation (Elasticsearch's `error.reason`,
    /// AWS's `message`), never more: AWS's signature-mismatch message goes on with the
    /// canonical request, which holds the session token.
    Credentials(Rejection),
    /// 404/405 for the whole request: the URL does not lead to `_bulk` (a wrong path prefix).
    NotBulk(u16),
    /// A document refused 401/403 (HTTP 200, `security_exception` per item): a privilege missing
    /// on its data stream (`create_doc`, `auto_configure`). Dead-lettering would drain the logs
    /// into a bounded file because of a role.
    Privilege(Rejection),
    /// A document refused because its index cannot take writes: `index_not_found_exception`
    /// (automatic creation turned off), `index_closed_exception`, or another 401/403 (a write
    /// block: `cluster_block_exception`).
    Index(Rejection),
    /// Another 4xx for the whole request whose body is no Elasticsearch/OpenSearch error (a
    /// proxy's page): nothing says the documents are at fault.
    NotElasticsearch(Rejection),
    /// A document refused for naming its own `_id`: an OpenSearch Serverless time-series or
    /// vector collection, which makes the ids itself (`AGENT_LOGSHIP_ES_DOCUMENT_IDS=server`).
    ServerIds(Rejection),
}

/// OpenSearch Serverless's reason for refusing a document with an `_id`.
const SERVER_IDS_ONLY: &str = "Document ID is not supported in create/index operation request";

/// Why a whole request is to be sent again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryReason {
    /// The server said so: 429, 408, 5xx.
    Status(u16),
    /// A 2xx whose body is not a `_bulk` answer (a proxy's page, a cut body).
    Unreadable,
    /// The answer lists a different number of items than we sent: never guess which is which.
    ItemCount { sent: usize, answered: usize },
}

impl std::fmt::Display for RetryReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RetryReason::Status(s) => write!(f, "HTTP {s}"),
            RetryReason::Unreadable => f.write_str("answer is not a _bulk response"),
            RetryReason::ItemCount { sent, answered } => {
                write!(f, "answer lists {answered} items for {sent} sent")
            }
        }
    }
}

/// Judges one `_bulk` answer.
pub fn classify(status: u16, body: &[u8], sent: usize) -> Verdict {
    match status {
        200..=299 => classify_items(body, sent),
        413 => Verdict::Split,
        401 | 403 => Verdict::Misconfigured(Misconfig::Credentials(refusal(status, body))),
        404 | 405 => Verdict::Misconfigured(Misconfig::NotBulk(status)),
        // 408: the server gave up waiting for our body; a transient like 429.
        408 | 429 | 500..=599 => Verdict::RetryWhole(RetryReason::Status(status)),
        400..=499 if is_error_answer(body) => Verdict::Rejected(whole_rejection(status, body)),
        400..=499 => Verdict::Misconfigured(Misconfig::NotElasticsearch(whole_rejection(status, body))),
        // 1xx/3xx (redirects are not followed): nothing was stored that we know of.
        _ => Verdict::RetryWhole(RetryReason::Status(status)),
    }
}

/// The answer's shape, only what we read. `items` entries are one-key objects
/// (`{"create": {...}}`), deserialized as an externally tagged enum without a map per item.
#[derive(Deserialize)]
struct Answer {
    items: Vec<Action>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Action {
    Create(Outcome),
    Index(Outcome),
    Update(Outcome),
    Delete(Outcome),
}

#[derive(Deserialize)]
struct Outcome {
    status: u16,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// The answer when nothing failed, read without looking into the items: only how many there
/// are. The common case, so it is read first, without building an item per document.
#[derive(Deserialize)]
struct Summary {
    #[serde(default)]
    errors: Option<bool>,
    items: Count,
}

/// The length of a JSON array, its elements skipped.
struct Count(usize);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Counter;
        impl<'de> serde::de::Visitor<'de> for Counter {
            type Value = Count;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Count, A::Error> {
                let mut n = 0;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    n += 1;
                }
                Ok(Count(n))
            }
        }
        d.deserialize_seq(Counter)
    }
}

fn classify_items(body: &[u8], sent: usize) -> Verdict {
    if all_created(body, sent) {
        return Verdict::Items(vec![Item::Stored; sent]);
    }
    // The server says nothing failed, in another layout: no need to look at each item.
    if let Ok(Summary { errors: Some(false), items: Count(n) }) = serde_json::from_slice::<Summary>(body)
        && n == sent
    {
        return Verdict::Items(vec![Item::Stored; sent]);
    }
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        return Verdict::RetryWhole(RetryReason::Unreadable);
    };
    if answer.items.len() != sent {
        return Verdict::RetryWhole(RetryReason::ItemCount { sent, answered: answer.items.len() });
    }
    let items: Vec<Item> = answer
        .items
        .into_iter()
        .map(|a| {
            let (Action::Create(o) | Action::Index(o) | Action::Update(o) | Action::Delete(o)) = a;
            item(o)
        })
        .collect();
    // A refusal that is the configuration's holds the whole request back.
    let misconfig = items.iter().find_map(|i| match i {
        Item::DeadLetter(r) if matches!(r.status, 401 | 403) && r.kind == "security_exception" => {
            Some(Misconfig::Privilege(r.clone()))
        }
        Item::DeadLetter(r) if r.status == 400 && r.reason == SERVER_IDS_ONLY => {
            Some(Misconfig::ServerIds(r.clone()))
        }
        Item::DeadLetter(r)
            if matches!(r.status, 401 | 403)
                || (r.status, r.kind.as_str()) == (404, "index_not_found_exception")
                || (r.status, r.kind.as_str()) == (400, "index_closed_exception") =>
        {
            Some(Misconfig::Index(r.clone()))
        }
        _ => None,
    });
    match misconfig {
        Some(m) => Verdict::Misconfigured(m),
        None => Verdict::Items(items),
    }
}

/// Whether a body is an Elasticsearch/OpenSearch error answer: `{"error": {"type": ..., ...}}`
/// (a proxy's JSON, `{"error": "Bad Request"}`, is not).
fn is_error_answer(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .is_ok_and(|v| v.get("error").and_then(|e| e.get("type")).is_some_and(serde_json::Value::is_string))
}

/// Whether `body` is, byte for byte, the answer Elasticsearch and OpenSearch give to our
/// filtered request when each of the `sent` documents was created: the common case, recognised
/// by comparison alone. Parsing it (52 KB of items for a batch of 2000) cost about 3 % of the
/// agent's CPU; any other answer, a space or a 200 more, is parsed.
fn all_created(body: &[u8], sent: usize) -> bool {
    const HEAD: &[u8] = br#"{"errors":false,"items":["#;
    const ITEM: &[u8] = br#"{"create":{"status":201}}"#;
    let Some(mut rest) = body.strip_prefix(HEAD) else { return false };
    for i in 0..sent {
        let item = if i == 0 { Some(rest) } else { rest.strip_prefix(b",") };
        match item.and_then(|r| r.strip_prefix(ITEM)) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest == b"]}"
}

fn item(o: Outcome) -> Item {
    match o.status {
        200..=299 => Item::Stored,
        409 => Item::Duplicate,
        408 | 429 | 500..=599 => Item::Retry,
        s => {
            let (kind, reason) = error_fields(o.error.as_ref());
            Item::DeadLetter(Rejection { status: s, kind, reason })
        }
    }
}

/// The `type` and `reason` of an `error` object; older servers sent a plain string.
fn error_fields(error: Option<&serde_json::Value>) -> (String, String) {
    match error {
        Some(serde_json::Value::Object(e)) => (
            e.get("type").and_then(|t| t.as_str()).unwrap_or("unknown").to_string(),
            e.get("reason").and_then(|t| t.as_str()).unwrap_or("").to_string(),
        ),
        Some(serde_json::Value::String(s)) => ("unknown".to_string(), s.clone()),
        _ => ("unknown".to_string(), String::new()),
    }
}

fn whole_rejection(status: u16, body: &[u8]) -> Rejection {
    let v: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let (kind, mut reason) = error_fields(v.as_ref().and_then(|v| v.get("error")));
    if v.is_none() {
        // Not Elasticsearch talking (a proxy's page): keep a short, printable head of it.
        reason = String::from_utf8_lossy(&body[..body.len().min(200)]).trim().to_string();
    }
    Rejection { status, kind, reason }
}

/// A refusal's first line of explanation: Elasticsearch's `error`, AWS's `message` (Amazon
/// OpenSearch Service) or `Message` (IAM denials), else the body's head. Never more than the
/// first line: AWS's signature-mismatch message goes on with the canonical request, which holds
/// the session token.
pub fn refusal(status: u16, body: &[u8]) -> Rejection {
    let v: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let aws = v.as_ref().and_then(|v| v.get("message").or_else(|| v.get("Message"))).and_then(|m| m.as_str());
    let (kind, reason) = match (v.as_ref().and_then(|v| v.get("error")), aws) {
        (Some(error), _) => error_fields(Some(error)),
        (None, Some(message)) => ("aws".to_string(), message.to_string()),
        (None, None) => ("unknown".to_string(), String::from_utf8_lossy(body).into_owned()),
    };
    let line = reason.trim().lines().next().unwrap_or("");
    let reason = match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    };
    Rejection { status, kind, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(name: &str) -> Vec<u8> {
        let path = format!("{}/testdata/bulk/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn all_created_fast_path() {
        assert_eq!(
            classify(200, &data("es8-all-created.json"), 2),
            Verdict::Items(vec![Item::Stored, Item::Stored])
        );
    }

    #[test]
    fn all_created_is_recognised_exactly_and_anything_else_is_parsed() {
        let answer = |items: &[&str]| format!(r#"{{"errors":false,"items":[{}]}}"#, items.join(","));
        let created = r#"{"create":{"status":201}}"#;
        assert!(all_created(answer(&[created; 3]).as_bytes(), 3));
        assert!(all_created(br#"{"errors":false,"items":[]}"#, 0));
        for (body, sent) in [
            (answer(&[created; 3]), 2),
            (answer(&[created; 3]), 4),
            (answer(&[created, r#"{"create":{"status":200}}"#]), 2),
            (answer(&[created, r#"{"create":{"status":409}}"#]), 2),
            (format!("{} ", answer(&[created])), 1),
            (answer(&[created]).replace("false", "true"), 1),
        ] {
            assert!(!all_created(body.as_bytes(), sent), "{body} for {sent}");
        }
        // What the comparison leaves to the parser is still judged right.
        let spaced =
            r#"{ "errors": false, "items": [ {"create": {"status": 201}}, {"create": {"status": 201}} ] }"#;
        assert_eq!(classify(200, spaced.as_bytes(), 2), Verdict::Items(vec![Item::Stored; 2]));
        assert_eq!(
            classify(200, answer(&[created; 3]).as_bytes(), 4),
            Verdict::RetryWhole(RetryReason::ItemCount { sent: 4, answered: 3 })
        );
    }

    #[test]
    fn filtered_answers() {
        // What `filter_path=errors,items.*.status,items.*.error` leaves.
        let ok = br#"{"errors":false,"items":[{"create":{"status":201}},{"create":{"status":201}}]}"#;
        assert_eq!(classify(200, ok, 2), Verdict::Items(vec![Item::Stored; 2]));
        assert_eq!(
            classify(200, ok, 3),
            Verdict::RetryWhole(RetryReason::ItemCount { sent: 3, answered: 2 }),
            "no success assumed for a document the answer does not list"
        );
        let mixed = br#"{"errors":true,"items":[{"create":{"status":201}},{"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"exists"}}},{"create":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"busy"}}}]}"#;
        assert_eq!(classify(200, mixed, 3), Verdict::Items(vec![Item::Stored, Item::Duplicate, Item::Retry]));
    }

    #[test]
    fn es8_mixed_items() {
        let Verdict::Items(items) = classify(200, &data("es8-mixed.json"), 6) else { panic!("items") };
        assert_eq!(items[0], Item::Stored);
        assert_eq!(items[1], Item::Duplicate);
        assert_eq!(items[2], Item::Retry);
        let Item::DeadLetter(r) = &items[3] else { panic!("dead letter: {:?}", items[3]) };
        assert_eq!((r.status, r.kind.as_str()), (400, "document_parsing_exception"));
        assert!(r.reason.starts_with("[1:15] failed to parse field [log.offset]"), "{}", r.reason);
        assert_eq!(items[4], Item::Retry);
        assert_eq!(items[5], Item::Stored);
    }

    #[test]
    fn opensearch2_mixed_items() {
        let Verdict::Items(items) = classify(200, &data("os2-mixed.json"), 5) else { panic!("items") };
        assert_eq!(items[0], Item::Stored);
        assert_eq!(items[1], Item::Duplicate);
        assert!(matches!(&items[2], Item::DeadLetter(r) if r.kind == "mapper_parsing_exception"));
        assert_eq!(items[3], Item::Retry);
        assert!(matches!(&items[4], Item::DeadLetter(r)
            if r.kind == "illegal_argument_exception" && r.reason.contains("op_type of create")));
    }

    #[test]
    fn item_count_mismatch_retries_whole() {
        assert_eq!(
            classify(200, &data("es8-mixed.json"), 7),
            Verdict::RetryWhole(RetryReason::ItemCount { sent: 7, answered: 6 })
        );
        // Even on the fast path.
        assert!(matches!(classify(200, &data("es8-all-created.json"), 3), Verdict::RetryWhole(_)));
    }

    #[test]
    fn unreadable_2xx_retries_whole() {
        assert_eq!(classify(200, b"<html>ok</html>", 1), Verdict::RetryWhole(RetryReason::Unreadable));
        assert_eq!(
            classify(200, b"{\"errors\":false,\"items\":[{\"create\":{\"status\":201}}", 1),
            Verdict::RetryWhole(RetryReason::Unreadable)
        );
    }

    #[test]
    fn a_collection_that_makes_its_own_ids_holds_the_documents_back() {
        // As OpenSearch Serverless answers a time-series collection's _bulk with our _ids.
        let refused = r#"{"create":{"status":400,"error":{"type":"illegal_argument_exception","reason":"Document ID is not supported in create/index operation request"}}}"#;
        let body = format!(r#"{{"errors":true,"items":[{refused},{refused}]}}"#);
        let Verdict::Misconfigured(Misconfig::ServerIds(r)) = classify(200, body.as_bytes(), 2) else {
            panic!("held back")
        };
        assert_eq!((r.status, r.kind.as_str()), (400, "illegal_argument_exception"));
        // Another illegal argument is the document's own fault.
        let other = br#"{"errors":true,"items":[{"create":{"status":400,"error":{"type":"illegal_argument_exception","reason":"mapper [x] cannot be changed"}}}]}"#;
        assert!(
            matches!(classify(200, other, 1), Verdict::Items(items) if matches!(items[0], Item::DeadLetter(_)))
        );
    }

    #[test]
    fn whole_request_statuses() {
        assert_eq!(classify(413, b"", 3), Verdict::Split);
        let refused = |status, body: &[u8]| match classify(status, body, 3) {
            Verdict::Misconfigured(Misconfig::Credentials(r)) => r,
            v => panic!("{status}: {v:?}"),
        };
        let es = refused(401, &data("es8-401.json"));
        assert_eq!((es.status, es.kind.as_str()), (401, "security_exception"));
        assert_eq!(es.reason, "unable to authenticate user [calypso] for REST request [/_bulk]");
        assert_eq!(refused(403, b"").reason, "");
        // Amazon OpenSearch Service: only the first line, for the rest is the canonical
        // request with the session token.
        let mismatch = br#"{"message":"The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\nThe Canonical String for this request should have been\n'POST\n/_bulk\n\nx-amz-security-token:FwoGZXIvYXdzEXAMPLE\n'"}"#;
        let aws = refused(403, mismatch);
        assert_eq!(aws.kind, "aws");
        assert!(aws.reason.starts_with("The request signature we calculated"), "{}", aws.reason);
        assert!(!aws.reason.contains("Canonical") && !aws.reason.contains("FwoG"), "{}", aws.reason);
        let denied = br#"{"Message":"User: arn:aws:sts::111122223333:assumed-role/calypso-logship/x is not authorized to perform: es:ESHttpPost with an explicit deny"}"#;
        assert!(refused(403, denied).reason.ends_with("es:ESHttpPost with an explicit deny"));
        let long = format!("<html>{}</html>", "x".repeat(500));
        assert_eq!(refused(403, long.as_bytes()).reason.chars().count(), 201);
        for s in [429, 500, 502, 503, 504, 507] {
            assert_eq!(
                classify(s, &data("es8-429-whole.json"), 3),
                Verdict::RetryWhole(RetryReason::Status(s))
            );
        }
        let Verdict::Rejected(r) = classify(400, &data("es8-400-whole.json"), 3) else { panic!("rejected") };
        assert_eq!((r.status, r.kind.as_str()), (400, "illegal_argument_exception"));
        assert!(r.reason.contains("terminated by a newline"));
        // A 4xx that is no Elasticsearch error (a proxy's page) says nothing about the documents.
        let Verdict::Misconfigured(Misconfig::NotElasticsearch(r)) =
            classify(422, b"<html>Unprocessable</html>", 3)
        else {
            panic!("waits")
        };
        assert_eq!((r.kind.as_str(), r.reason.as_str()), ("unknown", "<html>Unprocessable</html>"));
        for proxy in [&br#"{"message":"bad request"}"#[..], br#"{"status":400,"error":"Bad Request"}"#] {
            assert!(
                matches!(classify(400, proxy, 3), Verdict::Misconfigured(Misconfig::NotElasticsearch(_))),
                "{}",
                String::from_utf8_lossy(proxy)
            );
        }
        assert_eq!(
            classify(404, b"<html>Not Found</html>", 3),
            Verdict::Misconfigured(Misconfig::NotBulk(404)),
            "the data waits"
        );
    }

    /// A missing privilege, a missing or closed index: the configuration's problem, reported per
    /// item in a 200. The whole request waits (what was stored is answered 409 later), instead of
    /// its refused documents going to the dead letters.
    #[test]
    fn item_refusals_of_the_configuration_hold_the_request_back() {
        let Verdict::Misconfigured(Misconfig::Privilege(r)) = classify(200, &data("es8-item-403.json"), 2)
        else {
            panic!("waits")
        };
        assert_eq!((r.status, r.kind.as_str()), (403, "security_exception"));
        assert!(r.reason.contains("create_doc"), "{}", r.reason);
        let Verdict::Misconfigured(Misconfig::Index(r)) =
            classify(200, &data("es8-item-index-not-found.json"), 1)
        else {
            panic!("waits")
        };
        assert_eq!((r.status, r.kind.as_str()), (404, "index_not_found_exception"));
        let Verdict::Misconfigured(Misconfig::Index(r)) =
            classify(200, &data("es8-item-index-closed.json"), 1)
        else {
            panic!("waits")
        };
        assert_eq!((r.status, r.kind.as_str()), (400, "index_closed_exception"));
        // Another 403 (a write block) waits too, but is no privilege's.
        let blocked = br#"{"errors":true,"items":[{"create":{"status":403,"error":{"type":"cluster_block_exception","reason":"index [logs-x] blocked by: [FORBIDDEN/8/index write (api)];"}}}]}"#;
        assert!(matches!(classify(200, blocked, 1), Verdict::Misconfigured(Misconfig::Index(_))));
        // A 404 or 400 item of another kind is the document's: dead-lettered as before.
        let other = br#"{"errors":true,"items":[{"create":{"status":400,"error":{"type":"document_parsing_exception","reason":"x"}}}]}"#;
        assert!(
            matches!(classify(200, other, 1), Verdict::Items(ref i) if matches!(i[0], Item::DeadLetter(_)))
        );
    }

    #[test]
    fn string_errors_and_missing_errors_flag() {
        let body = br#"{"items":[{"index":{"status":400,"error":"MapperParsingException[failed]"}},{"index":{"status":201}}]}"#;
        assert_eq!(
            classify(200, body, 2),
            Verdict::Items(vec![
                Item::DeadLetter(Rejection {
                    status: 400,
                    kind: "unknown".into(),
                    reason: "MapperParsingException[failed]".into()
                }),
                Item::Stored
            ])
        );
    }
}
