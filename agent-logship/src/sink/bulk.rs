//! Documents as the `_bulk` body they travel in: written once, by the encoder, straight into the
//! body — an action line `{"create":{"_id":..}}` and the source line for each — and never copied
//! per document again. All documents of a batch go to one data stream or index, named in the
//! request's path (`/<index>/_bulk`), so the action lines leave `_index` out: 45 bytes less per
//! document to write and to gzip.
//!
//! [`BulkWriter`] gathers; [`Bulk`] is a finished batch, read-only and cheap to send again. Where
//! the answer asks for a part of a batch again (retried items, the halves of a 413), the part is
//! copied into a new batch: rare, and only what is sent again. A finished batch gives its body
//! back to [`Bodies`] for the next one.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::flow::Ack;

/// Who names the documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DocumentIds {
    /// We do: each document's `_id` is made from its record, so a document sent twice is
    /// refused the second time (409): stored exactly once.
    #[default]
    Agent,
    /// The server does, for the clusters that refuse ours (OpenSearch Serverless time-series and
    /// vector collections). The record's id goes into `agent_logship.id` instead: a document
    /// sent again (after a lost answer, a restart before its checkpoint) is stored again, and the
    /// copies can be found by that field.
    Server,
}

impl DocumentIds {
    pub fn parse(text: &str) -> Result<DocumentIds, String> {
        match text {
            "agent" => Ok(DocumentIds::Agent),
            "server" => Ok(DocumentIds::Server),
            other => Err(format!(
                "{other:?}: agent (made from the record: exactly once) or server (made by the cluster)"
            )),
        }
    }
}

/// Where one document lies in a body.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Span {
    /// Its action line starts here (and its source line ends where the next document starts).
    start: usize,
    /// Its `_id`, inside the action line.
    id: Range<usize>,
    /// Its source line, without the newline.
    source: Range<usize>,
}

/// Bodies of finished batches, kept for the next ones. Measured: a megabyte-sized buffer
/// allocated per batch and freed on another thread fragments the allocator's arenas (peak RSS
/// 27 MiB instead of 16) or, allocated fresh from the kernel each time, costs a third more CPU in
/// page faults.
#[derive(Debug, Clone, Default)]
pub struct Bodies(Arc<Mutex<Vec<Vec<u8>>>>);

/// Bodies kept: one per batch being gathered, queued and in flight, and one spare.
const KEPT: usize = 4;

impl Bodies {
    /// An empty body with room for `bytes`.
    fn take(&self, bytes: usize) -> Vec<u8> {
        let mut body = self.0.lock().ok().and_then(|mut b| b.pop()).unwrap_or_default();
        body.clear();
        body.reserve(bytes);
        body
    }

    fn give(&self, body: Vec<u8>) {
        if let Ok(mut kept) = self.0.lock()
            && kept.len() < KEPT
        {
            kept.push(body);
        }
    }
}

/// Documents being gathered into a body.
#[derive(Debug)]
pub struct BulkWriter {
    index: Arc<str>,
    body: Vec<u8>,
    spans: Vec<Span>,
    acks: Vec<Ack>,
    bodies: Bodies,
}

/// A finished batch: the body, each document's place in it and its acknowledgement.
#[derive(Debug)]
pub struct Bulk {
    index: Arc<str>,
    body: Bytes,
    spans: Vec<Span>,
    acks: Vec<Ack>,
    bodies: Bodies,
}

impl BulkWriter {
    /// A batch for `index` (the target in the request's path), with room for `bytes` of body,
    /// taken from `bodies` (and given back there when done).
    pub fn new(index: Arc<str>, bytes: usize, bodies: &Bodies) -> Self {
        let body = bodies.take(bytes);
        BulkWriter { index, body, spans: Vec::new(), acks: Vec::new(), bodies: bodies.clone() }
    }

    /// Appends a document: its action line, then its source as `write_source` writes it (compact
    /// JSON, one line, no newline in it), then the newline. Returns what `write_source` returned.
    pub fn push<R>(&mut self, id: &str, ack: Ack, write_source: impl FnOnce(&mut Vec<u8>) -> R) -> R {
        let start = self.body.len();
        self.body.extend_from_slice(b"{\"create\":{\"_id\":\"");
        let id_start = self.body.len();
        crate::encode::json::escaped(&mut self.body, id.as_bytes());
        let id_end = self.body.len();
        self.body.extend_from_slice(b"\"}}\n");
        let source_start = self.body.len();
        let r = write_source(&mut self.body);
        let source_end = self.body.len();
        self.body.push(b'\n');
        self.spans.push(Span { start, id: id_start..id_end, source: source_start..source_end });
        self.acks.push(ack);
        r
    }

    /// Copies document `i` of `from` (action line and source as they are) into this batch.
    fn push_from(&mut self, from: &Bulk, i: usize, ack: Ack) {
        let (start, end) = (from.spans[i].start, from.end(i));
        let shift = |r: &Range<usize>| r.start - start + self.body.len()..r.end - start + self.body.len();
        let span = Span {
            start: self.body.len(),
            id: shift(&from.spans[i].id),
            source: shift(&from.spans[i].source),
        };
        self.body.extend_from_slice(&from.body[start..end]);
        self.spans.push(span);
        self.acks.push(ack);
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The target of the batch's request.
    pub fn index(&self) -> &str {
        &self.index
    }

    /// Bytes of body so far.
    pub fn body_len(&self) -> usize {
        self.body.len()
    }

    /// A new, empty batch for the same index, with room for `bytes`, its body from the same
    /// [`Bodies`].
    pub fn next(&self, bytes: usize) -> BulkWriter {
        BulkWriter::new(self.index.clone(), bytes, &self.bodies)
    }

    /// Moves the last document into a batch of its own with room for `bytes` (it made this one
    /// too large).
    pub fn split_last(&mut self, bytes: usize) -> Option<BulkWriter> {
        let span = self.spans.pop()?;
        let ack = self.acks.pop()?;
        let mut rest = self.next(bytes.max(self.body.len() - span.start));
        let shift = |r: &Range<usize>| r.start - span.start..r.end - span.start;
        rest.body.extend_from_slice(&self.body[span.start..]);
        rest.spans.push(Span { start: 0, id: shift(&span.id), source: shift(&span.source) });
        rest.acks.push(ack);
        self.body.truncate(span.start);
        Some(rest)
    }

    pub fn finish(self) -> Bulk {
        let BulkWriter { index, body, spans, acks, bodies } = self;
        Bulk { index, body: Bytes::from(body), spans, acks, bodies }
    }
}

impl Bulk {
    /// The target in the request's path: `/<index>/_bulk`.
    pub fn index(&self) -> &str {
        &self.index
    }

    /// The NDJSON body, ending with a newline as `_bulk` requires.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Document `i`'s `_id` as written (JSON-escaped; ours never need escaping).
    pub fn id(&self, i: usize) -> &str {
        std::str::from_utf8(self.id_bytes(i)).unwrap_or("")
    }

    /// [`Bulk::id`] without checking it is text (it is: written from a `&str`).
    pub fn id_bytes(&self, i: usize) -> &[u8] {
        &self.body[self.spans[i].id.clone()]
    }

    /// Document `i`'s source: compact JSON.
    pub fn source(&self, i: usize) -> &[u8] {
        &self.body[self.spans[i].source.clone()]
    }

    /// The body for a cluster that makes the ids ([`DocumentIds::Server`]): each action line
    /// without `_id`, each document's id in its `agent_logship.id` instead (a name no source
    /// holds: the encoder keeps `agent_logship.*` from JSON lines). A copy, made only in that mode.
    pub fn body_with_server_ids(&self) -> Vec<u8> {
        const ACTION: &[u8] = b"{\"create\":{}}\n";
        const FIELD: &[u8] = b"{\"agent_logship.id\":\"";
        let extra = ACTION.len() + FIELD.len() + 2;
        let mut out = Vec::with_capacity(self.body.len() + self.spans.len() * extra);
        for span in &self.spans {
            out.extend_from_slice(ACTION);
            let source = &self.body[span.source.clone()];
            match source.strip_prefix(b"{") {
                Some(rest) => {
                    out.extend_from_slice(FIELD);
                    // Already JSON-escaped where it was written.
                    out.extend_from_slice(&self.body[span.id.clone()]);
                    out.push(b'"');
                    if !rest.starts_with(b"}") {
                        out.push(b',');
                    }
                    out.extend_from_slice(rest);
                }
                None => out.extend_from_slice(source),
            }
            out.push(b'\n');
        }
        out
    }

    fn end(&self, i: usize) -> usize {
        self.spans.get(i + 1).map_or(self.body.len(), |s| s.start)
    }

    /// Takes the acknowledgements out (to settle the documents one by one); the documents stay
    /// readable.
    pub fn take_acks(&mut self) -> Vec<Ack> {
        std::mem::take(&mut self.acks)
    }

    /// The documents `picked` (index, acknowledgement) of this batch as a new batch.
    pub fn pick(&self, picked: impl IntoIterator<Item = (usize, Ack)>) -> Bulk {
        let mut w = BulkWriter::new(self.index.clone(), 0, &self.bodies);
        for (i, ack) in picked {
            w.push_from(self, i, ack);
        }
        w.finish()
    }

    /// The two halves, the first holding the earlier documents (a 413 splits a batch).
    pub fn halves(mut self) -> (Bulk, Bulk) {
        let acks = self.take_acks();
        let mid = acks.len() / 2;
        let mut first = Vec::with_capacity(mid);
        let mut second = Vec::with_capacity(acks.len() - mid);
        for (i, ack) in acks.into_iter().enumerate() {
            if i < mid { first.push((i, ack)) } else { second.push((i, ack)) }
        }
        (self.pick(first), self.pick(second))
    }
}

impl Drop for Bulk {
    fn drop(&mut self) {
        // Not shared any more (the request that carried it is done): the buffer is reused.
        let body = std::mem::take(&mut self.body);
        if body.is_unique() {
            self.bodies.give(Vec::from(body));
        }
    }
}

#[cfg(test)]
pub(crate) fn test_bulk(index: &str, docs: &[(&str, &str)]) -> Bulk {
    let mut w = BulkWriter::new(index.into(), 0, &Bodies::default());
    for (id, source) in docs {
        w.push(id, Ack::none(), |out| out.extend_from_slice(source.as_bytes()));
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(b: &Bulk) -> Vec<&str> {
        (0..b.len()).map(|i| b.id(i)).collect()
    }

    #[test]
    fn body_is_ndjson_with_action_lines_without_the_paths_index() {
        let mut w = BulkWriter::new("logs-calypso.engine-uat".into(), 0, &Bodies::default());
        w.push("a1", Ack::none(), |o| o.extend_from_slice(br#"{"message":"x"}"#));
        w.push("b\n2", Ack::none(), |o| o.extend_from_slice(b"{}"));
        let b = w.finish();
        let body = std::str::from_utf8(b.body()).expect("utf8");
        assert_eq!(
            body,
            "{\"create\":{\"_id\":\"a1\"}}\n{\"message\":\"x\"}\n\
             {\"create\":{\"_id\":\"b\\n2\"}}\n{}\n"
        );
        for line in body.lines() {
            serde_json::from_str::<serde_json::Value>(line).expect("each line is JSON");
        }
        assert_eq!(ids(&b), ["a1", "b\\n2"]);
        assert_eq!(b.source(0), br#"{"message":"x"}"#);
        assert_eq!(b.index(), "logs-calypso.engine-uat");
    }

    #[test]
    fn server_made_ids_leave_the_action_lines_bare_and_keep_ours_in_agent_logship_id() {
        let b = test_bulk(
            "logs-calypso.engine-uat",
            &[("a1", r#"{"message":"x","event":{"dataset":"calypso.engine"}}"#), ("b\n2", "{}")],
        );
        let body = b.body_with_server_ids();
        let body = std::str::from_utf8(&body).expect("utf8");
        assert_eq!(
            body,
            "{\"create\":{}}\n{\"agent_logship.id\":\"a1\",\"message\":\"x\",\"event\":{\"dataset\":\"calypso.engine\"}}\n\
             {\"create\":{}}\n{\"agent_logship.id\":\"b\\n2\"}\n"
        );
        for line in body.lines() {
            serde_json::from_str::<serde_json::Value>(line).expect("each line is JSON");
        }
        // The batch itself is unchanged: sent again, or dead-lettered, as it was written.
        assert_eq!(ids(&b), ["a1", "b\\n2"]);
        assert_eq!(b.source(1), b"{}");
    }

    #[test]
    fn picked_parts_and_halves_are_the_same_lines() {
        let docs: Vec<(String, String)> =
            (0..5).map(|i| (format!("id{i}"), format!(r#"{{"n":{i}}}"#))).collect();
        let refs: Vec<(&str, &str)> = docs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let mut b = test_bulk("i", &refs);
        let acks = b.take_acks();
        let picked = b.pick(acks.into_iter().enumerate().filter(|(i, _)| i % 2 == 1));
        assert_eq!(ids(&picked), ["id1", "id3"]);
        assert_eq!(
            &picked.body()[..],
            b"{\"create\":{\"_id\":\"id1\"}}\n{\"n\":1}\n{\"create\":{\"_id\":\"id3\"}}\n{\"n\":3}\n"
        );
        assert_eq!(picked.source(1), b"{\"n\":3}");

        let (first, second) = test_bulk("i", &refs).halves();
        assert_eq!(ids(&first), ["id0", "id1"]);
        assert_eq!(ids(&second), ["id2", "id3", "id4"]);
        assert_eq!(
            [first.body().as_ref(), second.body().as_ref()].concat(),
            test_bulk("i", &refs).body().as_ref()
        );
    }

    #[test]
    fn split_last_moves_one_document() {
        let mut w = BulkWriter::new("i".into(), 0, &Bodies::default());
        w.push("1", Ack::none(), |o| o.extend_from_slice(b"{}"));
        w.push("2", Ack::none(), |o| o.extend_from_slice(b"{\"big\":1}"));
        let rest = w.split_last(0).expect("one");
        assert_eq!((w.len(), rest.len()), (1, 1));
        let (a, b) = (w.finish(), rest.finish());
        assert_eq!(&a.body()[..], b"{\"create\":{\"_id\":\"1\"}}\n{}\n");
        assert_eq!(b.id(0), "2");
        assert_eq!(b.source(0), b"{\"big\":1}");
    }

    #[test]
    fn bodies_are_reused_once_unshared() {
        let bodies = Bodies::default();
        let finished = |room| {
            let mut w = BulkWriter::new("i".into(), room, &bodies);
            w.push("1", Ack::none(), |o| o.extend_from_slice(b"{}"));
            w.finish()
        };
        let b = finished(1000);
        let sent = b.body().clone();
        drop(b);
        assert!(bodies.0.lock().expect("lock").is_empty(), "still carried by a request: not reused");
        drop(sent);
        let b = finished(1000);
        let at = b.body().as_ptr();
        drop(b);
        let again = finished(10);
        assert_eq!(again.body().as_ptr(), at, "the same buffer again");
        assert_eq!(again.len(), 1);
        assert_eq!(&again.body()[..], b"{\"create\":{\"_id\":\"1\"}}\n{}\n", "emptied before reuse");
    }
}
