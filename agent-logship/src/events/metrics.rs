//! The Events source's counters and gauges, rendered after the files' on `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::SystemTime;

use super::cursor::Relist;

#[derive(Debug, Default)]
pub struct EventMetrics {
    pub added: AtomicU64,
    pub modified: AtomicU64,
    pub deleted: AtomicU64,
    pub bookmarks: AtomicU64,
    pub errors: AtomicU64,
    /// Events read from LIST pages.
    pub listed: AtomicU64,
    /// Occurrences taken into the spool (new ones only).
    pub taken: AtomicU64,
    /// Occurrences Elasticsearch has (stored or already there).
    pub shipped: AtomicU64,
    pub relists_gone: AtomicU64,
    pub relists_empty: AtomicU64,
    /// Watches resumed after the server ended them.
    pub watch_restarts: AtomicU64,
    /// Requests to the API server that failed (connection, 401, 403, 5xx...).
    pub api_failures: AtomicU64,
    pub spool_bytes: AtomicU64,
    pub spool_pending: AtomicU64,
    pub spool_dropped: AtomicU64,
    /// The newest shipped occurrence's own time (Unix ms; 0: none yet).
    pub newest_shipped_ms: AtomicI64,
}

impl EventMetrics {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn relist(&self, why: Relist) {
        let counter = match why {
            Relist::Gone => &self.relists_gone,
            Relist::EmptyWatches => &self.relists_empty,
        };
        Self::add(counter, 1);
    }

    pub fn shipped(&self, n: u64, newest_ms: i64) {
        Self::add(&self.shipped, n);
        self.newest_shipped_ms.fetch_max(newest_ms, Ordering::Relaxed);
    }

    /// Prometheus text for these metrics.
    pub fn render(&self, out: &mut String) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = write!(
            out,
            "# HELP agent_logship_events_received_total Watch stream lines received from the API server, by type.\n\
             # TYPE agent_logship_events_received_total counter\n"
        );
        for (kind, c) in [
            ("ADDED", &self.added),
            ("MODIFIED", &self.modified),
            ("DELETED", &self.deleted),
            ("BOOKMARK", &self.bookmarks),
            ("ERROR", &self.errors),
        ] {
            let _ = writeln!(out, "agent_logship_events_received_total{{type=\"{kind}\"}} {}", get(c));
        }
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n");
        };
        counter("agent_logship_events_listed_total", "Events read from LIST pages.", get(&self.listed));
        counter(
            "agent_logship_events_taken_total",
            "Event occurrences new to this shipper, written to the spool.",
            get(&self.taken),
        );
        counter(
            "agent_logship_events_shipped_total",
            "Event occurrences Elasticsearch has (stored, or already there).",
            get(&self.shipped),
        );
        counter(
            "agent_logship_events_watch_restarts_total",
            "Watches resumed after the API server ended them.",
            get(&self.watch_restarts),
        );
        counter(
            "agent_logship_events_api_failures_total",
            "Requests to the API server that failed (then retried after a wait).",
            get(&self.api_failures),
        );
        counter(
            "agent_logship_events_spool_dropped_total",
            "Event occurrences dropped unshipped because the spool was full.",
            get(&self.spool_dropped),
        );
        let _ = write!(
            out,
            "# HELP agent_logship_events_relists_total Relists of the Events, by reason.\n\
             # TYPE agent_logship_events_relists_total counter\n\
             agent_logship_events_relists_total{{reason=\"{}\"}} {}\n\
             agent_logship_events_relists_total{{reason=\"{}\"}} {}\n",
            Relist::Gone.as_str(),
            get(&self.relists_gone),
            Relist::EmptyWatches.as_str(),
            get(&self.relists_empty),
        );
        let _ = write!(
            out,
            "# HELP agent_logship_events_spool_bytes Bytes of the Events spool on disk.\n\
             # TYPE agent_logship_events_spool_bytes gauge\nagent_logship_events_spool_bytes {}\n\
             # HELP agent_logship_events_spool_pending Event occurrences in the spool not yet in Elasticsearch.\n\
             # TYPE agent_logship_events_spool_pending gauge\nagent_logship_events_spool_pending {}\n",
            get(&self.spool_bytes),
            get(&self.spool_pending),
        );
        let newest = self.newest_shipped_ms.load(Ordering::Relaxed);
        let now = super::document::unix_ms(SystemTime::now());
        let age = if newest > 0 { (now - newest).max(0) as f64 / 1000.0 } else { 0.0 };
        let _ = write!(
            out,
            "# HELP agent_logship_events_newest_shipped_age_seconds Age of the newest Event occurrence shipped (0: none yet).\n\
             # TYPE agent_logship_events_newest_shipped_age_seconds gauge\nagent_logship_events_newest_shipped_age_seconds {age}\n"
        );
    }
}
