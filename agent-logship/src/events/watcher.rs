//! The task that lists and watches Events and writes each new occurrence to the spool. The
//! [`Cursor`] decides what to ask next and how long to wait; this is its IO.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::time::Instant;

use super::api::{ApiError, KubeClient};
use super::cursor::{Cursor, Next, Outcome, Pacing, Request, Taken};
use super::document;
use super::metrics::EventMetrics;
use super::model::{Event, WatchLine};
use super::shared::Shared;
use super::spool::NewEntry;
use crate::redaction::Redactor;

/// How long a watch line waits for others to be written to the spool with it.
const GATHER: std::time::Duration = std::time::Duration::from_millis(20);
/// The most lines written at once.
const GATHER_LINES: usize = 1000;
/// A watch that ends sooner than this (and half its timeout) ended "at once".
const AT_ONCE: std::time::Duration = std::time::Duration::from_secs(2);

pub struct Watcher {
    client: KubeClient,
    cursor: Cursor,
    taken: Taken,
    shared: Arc<Shared>,
    /// Masks each Event's message before it is spooled.
    redactor: Option<Arc<Redactor>>,
}

impl Watcher {
    pub fn new(
        client: KubeClient,
        pacing: Pacing,
        shared: Arc<Shared>,
        redactor: Option<Arc<Redactor>>,
    ) -> Self {
        Watcher { client, cursor: Cursor::new(pacing), taken: Taken::default(), shared, redactor }
    }

    fn metrics(&self) -> &EventMetrics {
        &self.shared.metrics
    }

    /// Lists and watches until `stop` completes.
    pub async fn run(mut self, stop: impl Future<Output = ()>) {
        let mut stop = pin!(stop);
        loop {
            let request = self.cursor.request().clone();
            let outcome = tokio::select! {
                biased;
                () = &mut stop => return,
                outcome = self.serve(request) => outcome,
            };
            let next = self.cursor.on(outcome);
            self.report(&next);
            if !next.wait.is_zero() {
                tokio::select! {
                    biased;
                    () = &mut stop => return,
                    () = tokio::time::sleep(jitter(next.wait)) => {}
                }
            }
        }
    }

    fn report(&self, next: &Next) {
        if let Some(why) = next.relist {
            self.metrics().relist(why);
            tracing::info!(reason = why.as_str(), wait = ?next.wait, scope = %self.client.scope(), "listing the Events again");
        }
    }

    async fn serve(&mut self, request: Request) -> Outcome {
        match request {
            Request::List { next } => self.list(next).await,
            Request::Watch { from } => self.watch(from).await,
        }
    }

    async fn list(&mut self, next: Option<String>) -> Outcome {
        if next.is_none() {
            self.taken.list_started();
        }
        match self.client.list(next.as_deref()).await {
            Ok(page) => {
                EventMetrics::add(&self.metrics().listed, page.items.len() as u64);
                if !self.take(page.items.iter()) {
                    return Outcome::Failed;
                }
                let last = page.metadata.next.as_deref().is_none_or(str::is_empty);
                if last {
                    self.taken.list_done();
                }
                Outcome::Page { resource_version: page.metadata.resource_version, next: page.metadata.next }
            }
            Err(e) => self.failed(e),
        }
    }

    async fn watch(&mut self, from: String) -> Outcome {
        let started = Instant::now();
        let mut stream = match self.client.watch(&from).await {
            Ok(s) => s,
            Err(e) => return self.failed(e),
        };
        let (mut lines, mut last) = (0usize, None::<String>);
        let mut batch = Vec::new();
        loop {
            batch.clear();
            let mut read = stream.next_lines(&mut batch).await;
            // What else comes within a moment joins this write: one fsync for a burst (a
            // rollout's hundreds of Events), not one per Event. (`next_lines` only waits for
            // the next chunk, so giving up that wait loses nothing.)
            let until = Instant::now() + GATHER;
            while matches!(read, Ok(true)) && batch.len() < GATHER_LINES {
                match tokio::time::timeout_at(until, stream.next_lines(&mut batch)).await {
                    Ok(r) => read = r,
                    Err(_) => break,
                }
            }
            lines += batch.len();
            last = match self.apply(&mut batch, last) {
                Ok(last) => last,
                Err(outcome) => return outcome,
            };
            match read {
                Ok(true) => {}
                Ok(false) => {
                    EventMetrics::add(&self.metrics().watch_restarts, 1);
                    // Ended at once: the empty-200 trap looks like this. (A quiet watch a proxy
                    // closes after a minute is not "at once".)
                    let early = started.elapsed() < (self.client.watch_timeout() / 2).min(AT_ONCE);
                    return Outcome::WatchEnded { lines, last, early };
                }
                Err(e) => return self.cut(e, lines, last),
            }
        }
    }

    /// Applies a burst of watch lines: takes the new occurrences, forgets the deleted Events.
    /// Returns the last resourceVersion seen, or the outcome that ends the watch (a 410, an
    /// error, a spool that cannot take them).
    fn apply(
        &mut self,
        batch: &mut Vec<WatchLine>,
        mut last: Option<String>,
    ) -> Result<Option<String>, Outcome> {
        let mut changed = Vec::new();
        let mut error = None;
        for line in batch.drain(..) {
            let m = &self.shared.metrics;
            let (counter, rv) = match &line {
                WatchLine::Added(e) => (&m.added, e.metadata.resource_version.clone()),
                WatchLine::Modified(e) => (&m.modified, e.metadata.resource_version.clone()),
                WatchLine::Deleted(e) => (&m.deleted, e.metadata.resource_version.clone()),
                WatchLine::Bookmark { resource_version } => (&m.bookmarks, resource_version.clone()),
                WatchLine::Error(_) => (&m.errors, None),
            };
            EventMetrics::add(counter, 1);
            last = rv.filter(|v| !v.is_empty()).or(last);
            match line {
                WatchLine::Added(e) | WatchLine::Modified(e) => changed.push(e),
                // Not an occurrence: the API server let the Event go (its TTL).
                WatchLine::Deleted(e) => {
                    if let Some(uid) = document::uid(&e) {
                        self.taken.forget(uid);
                    }
                }
                WatchLine::Bookmark { .. } => {}
                WatchLine::Error(status) => error = Some(status),
            }
        }
        if !self.take(changed.iter()) {
            return Err(Outcome::Failed);
        }
        match error {
            None => Ok(last),
            Some(status) if status.code == Some(410) => {
                tracing::info!(
                    message = status.message.as_deref().unwrap_or(""),
                    "the watch's resourceVersion is gone (410)"
                );
                Err(Outcome::Gone)
            }
            Some(status) => {
                tracing::warn!(code = ?status.code, reason = ?status.reason, message = ?status.message, "the watch ended with an error");
                EventMetrics::add(&self.metrics().api_failures, 1);
                Err(Outcome::Failed)
            }
        }
    }

    /// A watch cut off by an error: after it delivered something, it resumes from the last
    /// resourceVersion it saw (not its first: that one may be compacted by now).
    fn cut(&self, e: ApiError, lines: usize, last: Option<String>) -> Outcome {
        if lines == 0 {
            return self.failed(e);
        }
        EventMetrics::add(&self.metrics().api_failures, 1);
        tracing::warn!(error = %e, "the watch was cut off; resuming from the last resourceVersion it delivered");
        Outcome::WatchEnded { lines, last, early: true }
    }

    fn failed(&self, e: ApiError) -> Outcome {
        match e {
            ApiError::Gone(message) => {
                tracing::info!(%message, "the resourceVersion or continue token is gone (410)");
                Outcome::Gone
            }
            e => {
                EventMetrics::add(&self.metrics().api_failures, 1);
                tracing::warn!(error = %e, scope = %self.client.scope(), "Kubernetes API request failed");
                Outcome::Failed
            }
        }
    }

    /// Writes the occurrences new to us to the spool, durably, then lets the shipper know.
    /// `false` when the spool could not take them: they are then not taken either, so that
    /// reading them again (the request is retried) takes them.
    fn take<'a>(&mut self, events: impl Iterator<Item = &'a Event>) -> bool {
        let now = SystemTime::now;
        let mut docs: Vec<(i64, String, String, Vec<u8>)> = Vec::new();
        let mut uids = Vec::new();
        for e in events {
            let Some(uid) = document::uid(e) else {
                tracing::warn!(name = ?e.metadata.name, "an Event without a uid cannot be given a stable id: skipped");
                continue;
            };
            let n = document::occurrence(e);
            if !self.taken.take(uid, n) {
                continue;
            }
            let mut source = Vec::with_capacity(512);
            document::write(e, n, &now, self.redactor.as_deref(), &mut source);
            let time_ms =
                document::timestamp(e).and_then(unix_ms).unwrap_or_else(|| document::unix_ms(now()));
            let index = document::data_stream(document::namespace(e));
            docs.push((time_ms, document::document_id(uid, n), index, source));
            uids.push(uid);
        }
        if docs.is_empty() {
            return true;
        }
        let new =
            docs.iter().map(|(time_ms, id, index, source)| NewEntry { time_ms: *time_ms, id, index, source });
        match self.shared.append(new) {
            Ok(()) => {
                EventMetrics::add(&self.shared.metrics.taken, docs.len() as u64);
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot write the Events spool: reading them again");
                for uid in uids {
                    self.taken.forget(uid);
                }
                false
            }
        }
    }
}

/// An RFC 3339 time (Time or MicroTime) as Unix milliseconds.
fn unix_ms(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>().ok().map(|t| t.as_millisecond())
}

/// `wait` give or take a quarter: replicas, and the shippers of many namespaces, that an API
/// server restart sent into the same waits must not come back in step.
fn jitter(wait: std::time::Duration) -> std::time::Duration {
    use std::hash::BuildHasher;
    let r = std::collections::hash_map::RandomState::new().hash_one(Instant::now());
    wait.mul_f64(0.75 + 0.5 * (r as f64 / u64::MAX as f64))
}
