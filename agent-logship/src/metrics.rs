//! Counters every part of the pipeline bumps; rendered as Prometheus text by the server.
//! Plain atomics: the hot path pays one relaxed add per event.

use std::sync::atomic::{AtomicU64, Ordering};

/// agent-logship's counters. Names follow `agent_logship_<what>_<unit>` when rendered.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Records framed from files.
    pub records_read: AtomicU64,
    /// Bytes read from files.
    pub bytes_read: AtomicU64,
    /// Records cut at the size limit (each piece counts).
    pub records_cut: AtomicU64,
    /// Records whose time could not be read (ingest time used, flagged).
    pub timestamps_unparsed: AtomicU64,
    /// Documents Elasticsearch stored (2xx).
    pub docs_stored: AtomicU64,
    /// Documents it already had (409 on create with our id): delivered.
    pub docs_duplicate: AtomicU64,
    /// Item-level retries (429 / 5xx items sent again).
    pub docs_retried: AtomicU64,
    /// Documents written to the dead-letter file (4xx other than 409).
    pub docs_dead_lettered: AtomicU64,
    /// `_bulk` requests sent, and those that failed as a whole (connection, 429, 5xx, 401/403).
    pub requests: AtomicU64,
    pub requests_failed: AtomicU64,
    /// Batches split because the server answered 413.
    pub batches_split: AtomicU64,
}

impl Metrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
