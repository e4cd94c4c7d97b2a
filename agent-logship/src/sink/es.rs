//! The `_bulk` sender: delivers one batch until every document in it is stored, known to be
//! stored (409), or dead-lettered — and only then acknowledges them. Nothing is dropped:
//! whole-request failures (connection, 429, 5xx) are retried forever with capped exponential
//! backoff and jitter, moving to the next URL; 413 splits the batch in halves; 401/403 wait
//! slowly for the credentials to be fixed; per-item 429/5xx are sent again alone, before any new
//! document; other 4xx become dead letters (`dead_letter`), logged once per reason.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_core::dns::Dns;
use tokio::time::Instant;

use super::bulk::{Bodies, Bulk, BulkWriter, DocumentIds};
use super::classify::{Item, Misconfig, Rejection, Verdict, classify};
use super::client::{Auth, Body, ClientError, ClientOptions, EsClient, SendError};
use super::dead_letter::{self, DeadDoc, DeadLetterFile};
use super::request::{self, Gzip};
use super::tls::TlsFiles;
use crate::flow::{self, Ack};
use crate::metrics::Metrics;

/// Everything the Elasticsearch sink needs (the lead's settings feed it).
#[derive(Debug, Clone)]
pub struct EsOptions {
    /// Where and how to connect (one request's whole exchange: 30 s by default).
    pub client: ClientOptions,
    /// Compress request bodies (default on).
    pub gzip: bool,
    /// Who names the documents (default: we do, from the record).
    pub ids: DocumentIds,
    /// `<data_dir>/dead-letter.ndjson`.
    pub dead_letter_path: PathBuf,
    /// Largest the dead-letter file grows before it is rotated (default 16 MiB).
    pub dead_letter_max_bytes: u64,
    /// Requests in flight at once (default 1).
    pub max_in_flight: usize,
    pub retry: RetryTiming,
}

/// How long to wait before sending again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryTiming {
    /// First backoff delay (default 100 ms), doubling with jitter up to `max`.
    pub min: Duration,
    /// Backoff cap (default 30 s).
    pub max: Duration,
    /// While the server answers 401/403: try again this often (default 30 s).
    pub auth: Duration,
    /// Warnings about a lasting failure are repeated at most this often (default 60 s); in
    /// between they are logged at debug.
    pub warn_every: Duration,
}

impl Default for RetryTiming {
    fn default() -> Self {
        RetryTiming {
            min: Duration::from_millis(100),
            max: Duration::from_secs(30),
            auth: Duration::from_secs(30),
            warn_every: Duration::from_secs(60),
        }
    }
}

impl EsOptions {
    /// Defaults for everything but where to send and where the data directory is.
    pub fn new(urls: Vec<url::Url>, data_dir: &std::path::Path) -> Self {
        EsOptions {
            client: ClientOptions {
                urls,
                tls: TlsFiles::default(),
                proxy: None,
                sigv4: None,
                auth: Auth::None,
                timeout: Duration::from_secs(30),
            },
            gzip: true,
            ids: DocumentIds::Agent,
            dead_letter_path: data_dir.join(super::dead_letter::FILE_NAME),
            dead_letter_max_bytes: 16 << 20,
            max_in_flight: 1,
            retry: RetryTiming::default(),
        }
    }
}

/// The Elasticsearch / OpenSearch sink. Shared by the tasks delivering batches.
#[derive(Debug)]
pub struct EsSink {
    client: EsClient,
    gzip: Option<Gzip>,
    ids: DocumentIds,
    dead_letter: DeadLetterFile,
    metrics: Arc<Metrics>,
    retry: RetryTiming,
    /// (status, error type, kept in the file) already reported at warn: later ones go to debug.
    reported: Mutex<HashSet<(u16, String, bool)>>,
    /// When a lasting-failure warning was last logged.
    last_warning: Mutex<Option<Instant>>,
}

const NDJSON: &str = "application/x-ndjson";

impl EsSink {
    pub fn new(opts: &EsOptions, dns: Dns, metrics: Arc<Metrics>) -> Result<Self, ClientError> {
        let client =
            EsClient::patient(&opts.client, dns, concat!("agent-logship/", env!("CARGO_PKG_VERSION")))?;
        Ok(EsSink {
            client,
            gzip: opts.gzip.then(Gzip::default),
            ids: opts.ids,
            dead_letter: DeadLetterFile::new(&opts.dead_letter_path, opts.dead_letter_max_bytes),
            metrics,
            retry: opts.retry,
            reported: Mutex::new(HashSet::new()),
            last_warning: Mutex::new(None),
        })
    }

    /// Delivers a batch and acknowledges each document once it is stored, a duplicate or
    /// dead-lettered. Returns only then: it retries forever (cancel the future to give up; what
    /// was not acknowledged is then read again after a restart and absorbed by 409s).
    pub async fn deliver(&self, bulk: Bulk) {
        // Parts still to deliver: a 413 pushes the two halves of a part, item retries push the
        // retried documents. Last in, first out: a part is finished before the next is begun.
        let mut parts = vec![bulk];
        let mut backoff = self.backoff();
        while let Some(part) = parts.pop() {
            if part.is_empty() {
                continue;
            }
            if let Some(next) = self.deliver_request(part, &mut backoff).await {
                parts.extend(next);
            } else {
                // Progress without trouble: the next trouble starts from the short delay.
                backoff = self.backoff();
            }
        }
    }

    fn backoff(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        agent_core::retry::backoff(self.retry.min, self.retry.max)
    }

    /// Sends one request until it is answered item by item (or split, or rejected). Returns the
    /// parts still to deliver (retried items, or the two halves), `None` when all is done.
    async fn deliver_request(
        &self,
        bulk: Bulk,
        backoff: &mut (impl Iterator<Item = Duration> + Send),
    ) -> Option<Vec<Bulk>> {
        let (bytes, gzip) = request::body(&bulk, self.ids, self.gzip.as_ref());
        let body = Body { bytes, content_type: NDJSON, gzip };
        let path = request::path(&bulk);
        let sent = bulk.len();
        loop {
            Metrics::add(&self.metrics.requests, 1);
            let answer = self.client.send(reqwest::Method::POST, &path, Some(&body)).await;
            let verdict = match answer {
                Ok(a) => classify(a.status, &a.body, sent),
                Err(e) => {
                    Metrics::add(&self.metrics.requests_failed, 1);
                    match &e {
                        // The proxy's own failure, said as its own. With backoff even for its
                        // 407: the credential files are read at every request, and a proxy
                        // restarted without them comes back by itself.
                        SendError::Proxy { proxy, url, failure } => {
                            Metrics::add(&self.metrics.proxy_failures[failure.index()], 1);
                            if self.warning_due() {
                                tracing::warn!(%proxy, %url, documents = sent, "{failure}: the data waits, retried, nothing is dropped");
                            } else {
                                tracing::debug!(%proxy, %failure, "the proxy still fails");
                            }
                        }
                        e => self.warn_lasting(e, sent),
                    }
                    self.sleep(backoff).await;
                    continue;
                }
            };
            match verdict {
                Verdict::Items(items) => {
                    // The batch's body is reused once no request holds it (see `bulk::Bodies`).
                    drop(body);
                    return self.settle(bulk, items, backoff).await;
                }
                Verdict::RetryWhole(why) => {
                    Metrics::add(&self.metrics.requests_failed, 1);
                    self.warn_lasting(&format!("{} answered {why}", self.client.current_url()), sent);
                    self.client.rotate();
                    self.sleep(backoff).await;
                }
                Verdict::Misconfigured(problem) => {
                    Metrics::add(&self.metrics.requests_failed, 1);
                    if matches!(problem, Misconfig::Credentials(_)) {
                        self.client.refused_credentials();
                    }
                    if self.warning_due() {
                        self.warn_misconfigured(&problem, sent);
                    } else {
                        tracing::debug!(?problem, "still refused: a configuration problem");
                    }
                    tokio::time::sleep(self.retry.auth).await;
                }
                Verdict::Split => {
                    Metrics::add(&self.metrics.batches_split, 1);
                    if bulk.len() == 1 {
                        let why = Rejection {
                            status: 413,
                            kind: "request_too_large".into(),
                            reason: "the document alone is larger than the server accepts".into(),
                        };
                        return self.dead_letter_all(bulk, &why, backoff).await;
                    }
                    let (first, second) = bulk.halves();
                    tracing::debug!(first = first.len(), second = second.len(), "413: batch split");
                    // Popped last-in-first-out: the first half goes first.
                    return Some(vec![second, first]);
                }
                Verdict::Rejected(why) => {
                    // A whole request refused for good: our bug (malformed body) or a proxy's
                    // refusal. The documents are dead letters, not retried forever.
                    return self.dead_letter_all(bulk, &why, backoff).await;
                }
            }
        }
    }

    /// Acknowledges stored and duplicate items, and returns what to send next: the items to send
    /// again, and the refused ones as dead letters.
    async fn settle(
        &self,
        mut bulk: Bulk,
        items: Vec<Item>,
        backoff: &mut (impl Iterator<Item = Duration> + Send),
    ) -> Option<Vec<Bulk>> {
        let mut retry = Vec::new();
        let mut dead = Vec::new();
        let mut delivered = Vec::with_capacity(items.len());
        let (mut stored, mut duplicate) = (0u64, 0u64);
        for ((i, ack), item) in bulk.take_acks().into_iter().enumerate().zip(items) {
            match item {
                Item::Stored => {
                    stored += 1;
                    delivered.push(ack);
                }
                Item::Duplicate => {
                    duplicate += 1;
                    delivered.push(ack);
                }
                Item::Retry => retry.push((i, ack)),
                Item::DeadLetter(why) => dead.push((i, ack, why)),
            }
        }
        flow::done_all(delivered);
        // Dead letters were counted when they were refused.
        if !dead_letter::is_stream(bulk.index()) {
            Metrics::add(&self.metrics.docs_stored, stored);
            Metrics::add(&self.metrics.docs_duplicate, duplicate);
        }
        let mut next = Vec::new();
        if !retry.is_empty() {
            Metrics::add(&self.metrics.docs_retried, retry.len() as u64);
            tracing::debug!(documents = retry.len(), "items to retry (429/5xx)");
            self.sleep(backoff).await;
            next.push(bulk.pick(retry));
        }
        if !dead.is_empty() {
            next.extend(self.dead_letter(&bulk, dead, backoff).await);
        }
        (!next.is_empty()).then_some(next)
    }

    async fn dead_letter_all(
        &self,
        mut bulk: Bulk,
        why: &Rejection,
        backoff: &mut (impl Iterator<Item = Duration> + Send),
    ) -> Option<Vec<Bulk>> {
        let dead = bulk.take_acks().into_iter().enumerate().map(|(i, ack)| (i, ack, why.clone())).collect();
        self.dead_letter(&bulk, dead, backoff).await.map(|b| vec![b])
    }

    /// The documents `dead` of `bulk`, refused for good: as a batch for their dead-letter data
    /// stream (returned, to be delivered like any other; their acknowledgements go with them),
    /// or, when `bulk` was that stream's already, written to the dead-letter file.
    async fn dead_letter(
        &self,
        bulk: &Bulk,
        dead: Vec<(usize, Ack, Rejection)>,
        backoff: &mut (impl Iterator<Item = Duration> + Send),
    ) -> Option<Bulk> {
        let (refused, acks): (Vec<(usize, Rejection)>, Vec<Ack>) =
            dead.into_iter().map(|(i, ack, why)| ((i, why), ack)).unzip();
        let docs: Vec<DeadDoc<'_>> = refused
            .iter()
            .map(|(i, why)| DeadDoc { index: bulk.index(), id: bulk.id(*i), source: bulk.source(*i), why })
            .collect();
        let last_resort = dead_letter::is_stream(bulk.index());
        for doc in &docs {
            self.report(doc, last_resort);
        }
        if !last_resort {
            Metrics::add(&self.metrics.docs_dead_lettered, docs.len() as u64);
            let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
            let stream: Arc<str> = dead_letter::stream_for(bulk.index()).into();
            let mut letters = BulkWriter::new(stream, 0, &Bodies::default());
            for (doc, ack) in docs.iter().zip(acks) {
                letters.push(doc.id, ack, |out| dead_letter::document(out, &now, doc));
            }
            return Some(letters.finish());
        }
        loop {
            let (dropped, written) = self.dead_letter.append(&docs).await;
            if let Some(dropped) = dropped {
                Metrics::add(&self.metrics.dead_letters_dropped, dropped.documents);
                tracing::warn!(
                    documents = dropped.documents,
                    file = %dropped.path.display(),
                    max_bytes = self.dead_letter.max_bytes(),
                    "the dead-letter file is full: it was rotated, and the oldest dead letters were deleted with the previous rotated file"
                );
            }
            match written {
                Ok(()) => break,
                Err(e) => {
                    tracing::error!(error = %e, documents = docs.len(), "documents wait: they are acknowledged only once kept");
                    self.sleep(backoff).await;
                }
            }
        }
        Metrics::add(&self.metrics.dead_letters_in_file, docs.len() as u64);
        flow::done_all(acks);
        None
    }

    /// Says, once per reason and place, that documents were refused and where they are kept;
    /// each further one at debug.
    fn report(&self, doc: &DeadDoc<'_>, in_file: bool) {
        let why = doc.why;
        let first = self
            .reported
            .lock()
            .map(|mut r| r.insert((why.status, why.kind.clone(), in_file)))
            .unwrap_or(true);
        if !first {
            tracing::debug!(status = why.status, error.type = %why.kind, id = %doc.id, "document dead-lettered");
        } else if in_file {
            tracing::warn!(
                status = why.status,
                error.type = %why.kind,
                error.reason = %why.reason,
                index = %doc.index,
                file = %self.dead_letter.path().display(),
                "the dead-letter data stream refused a dead letter too: it is kept in the dead-letter file, lost with the pod (further ones for this reason are logged at debug)"
            );
        } else {
            tracing::warn!(
                status = why.status,
                error.type = %why.kind,
                error.reason = %why.reason,
                index = %doc.index,
                dead_letters = %dead_letter::stream_for(doc.index),
                "Elasticsearch refused a document for good; it is kept in the dead-letter data stream (further refusals for this reason are logged at debug)"
            );
        }
    }

    /// Logs a failure that makes the data wait: at warn at most every `warn_every`, else debug.
    fn warn_lasting(&self, e: &dyn std::fmt::Display, documents: usize) {
        if self.warning_due() {
            tracing::warn!(error = %e, documents, "cannot deliver to Elasticsearch; retrying with backoff, nothing is dropped");
        } else {
            tracing::debug!(error = %e, documents, "retrying");
        }
    }

    /// Says, at most once a minute, why the data waits: a configuration problem, not the data's.
    fn warn_misconfigured(&self, problem: &Misconfig, documents: usize) {
        let url = self.client.current_url();
        match problem {
            Misconfig::Credentials(r) if self.client.signs_for_aws() => tracing::warn!(
                status = r.status,
                url = %url,
                answer = %r.reason,
                documents,
                "AWS refused the signed request: check the role's IAM policy (es:ESHttpPost, or the \
                 collection's data access policy), the role's mapping in OpenSearch, the region and \
                 AGENT_LOGSHIP_AWS_SIGV4 (es or aoss); the data waits"
            ),
            Misconfig::Credentials(r) => tracing::warn!(
                status = r.status,
                url = %url,
                answer = %r.reason,
                documents,
                "Elasticsearch refused our credentials: check the configured user / API key and its \
                 privileges (create_doc on the data streams); the data waits"
            ),
            Misconfig::NotBulk(status) => tracing::warn!(
                status,
                url = %url,
                documents,
                "the URL does not lead to Elasticsearch's _bulk (a wrong path prefix or proxy?); the data waits"
            ),
            Misconfig::Privilege(r) => tracing::warn!(
                status = r.status,
                error.type = %r.kind,
                error.reason = %r.reason,
                documents,
                "Elasticsearch refused the documents for a missing privilege on their data stream \
                 (create_doc and auto_configure); the data waits"
            ),
            Misconfig::Index(r) => tracing::warn!(
                status = r.status,
                error.type = %r.kind,
                error.reason = %r.reason,
                documents,
                "Elasticsearch cannot write to the index (closed, blocked, or missing with automatic \
                 creation off); the data waits"
            ),
            Misconfig::ServerIds(r) => tracing::warn!(
                status = r.status,
                error.reason = %r.reason,
                documents,
                "the collection makes the document ids itself (an OpenSearch Serverless time-series or \
                 vector collection): set AGENT_LOGSHIP_ES_DOCUMENT_IDS=server; the data waits"
            ),
            Misconfig::NotElasticsearch(r) => tracing::warn!(
                status = r.status,
                url = %url,
                answer = %r.reason,
                documents,
                "a refusal that is not Elasticsearch's (a proxy between us?); the data waits"
            ),
        }
    }

    fn warning_due(&self) -> bool {
        let now = Instant::now();
        let Ok(mut last) = self.last_warning.lock() else { return true };
        match *last {
            Some(t) if now.duration_since(t) < self.retry.warn_every => false,
            _ => {
                *last = Some(now);
                true
            }
        }
    }

    async fn sleep(&self, backoff: &mut (impl Iterator<Item = Duration> + Send)) {
        tokio::time::sleep(backoff.next().unwrap_or(self.retry.max)).await;
    }

    /// The client, for `setup` to share.
    pub fn client(&self) -> &EsClient {
        &self.client
    }
}
