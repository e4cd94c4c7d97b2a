//! Counters every part of the pipeline bumps; rendered as Prometheus text by the server.
//! Plain atomics: the hot path pays one relaxed add per event.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::sink::proxy::ProxyFailure;

/// agent-logship's counters. Names follow `agent_logship_<what>_<unit>` when rendered.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Records framed from files.
    pub records_read: AtomicU64,
    /// Bytes read from files.
    pub bytes_read: AtomicU64,
    /// Records cut at the size limit (each piece counts).
    pub records_cut: AtomicU64,
    /// Records shipped before their next line came: the frames held more than they may.
    pub records_shipped_early: AtomicU64,
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
    /// Dead letters the dead-letter data stream refused too, kept in the dead-letter file.
    pub dead_letters_in_file: AtomicU64,
    /// Dead-lettered documents deleted with the oldest rotated dead-letter file.
    pub dead_letters_dropped: AtomicU64,
    /// `_bulk` requests sent, and those that failed as a whole (connection, 429, 5xx, 401/403).
    pub requests: AtomicU64,
    pub requests_failed: AtomicU64,
    /// Of those, the ones the egress proxy failed, by [`ProxyFailure::LABELS`].
    pub proxy_failures: [AtomicU64; ProxyFailure::LABELS.len()],
    /// Times the pipeline failed and was started again in the process.
    pub pipeline_restarts: AtomicU64,
    /// Checkpoint writes that failed (a full or read-only data volume).
    pub checkpoint_failures: AtomicU64,
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

/// One file's state for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLag {
    pub path: String,
    /// Bytes in the file past the committed checkpoint.
    pub lag_bytes: u64,
    /// Age of the file's oldest record read but not yet acknowledged.
    pub oldest_unacknowledged: Option<std::time::Duration>,
}

/// What the sources can tell about themselves.
pub trait SourceStatus: Send + Sync {
    /// Per file (one snapshot serves every series of a scrape).
    fn files(&self) -> Vec<FileLag>;
}

/// Files exported with a lag series at most; the rest are summed into `other`.
const MAX_FILE_SERIES: usize = 50;

/// Everything `/metrics`, `/livez` and `/readyz` read.
pub struct Observed {
    pub metrics: std::sync::Arc<Metrics>,
    pub budget: crate::flow::Budget,
    pub sources: Box<dyn SourceStatus>,
    /// The Events source's own metrics, when it runs.
    pub events: Option<std::sync::Arc<crate::events::metrics::EventMetrics>>,
    /// The redaction rules and their counts (`None`: redaction is off).
    pub redactor: Option<std::sync::Arc<crate::redaction::Redactor>>,
    /// Why nothing is shipped now (a setting holds the agent, or the pipeline is being
    /// restarted after a failure): not ready, with this reason.
    pub not_shipping: std::sync::Mutex<Option<String>>,
    /// Configuration problems that hold the agent (it ships nothing until they are fixed).
    pub problems: usize,
    /// Set at SIGTERM: not ready any more.
    pub stopping: std::sync::atomic::AtomicBool,
}

impl Observed {
    /// What a process that ships nothing shows: `problems` settings hold it, for `reason`.
    pub fn held(problems: usize, reason: String) -> Observed {
        Observed {
            metrics: Default::default(),
            budget: crate::flow::Budget::new(1),
            sources: Box::new(NoFiles),
            events: None,
            redactor: None,
            not_shipping: std::sync::Mutex::new(Some(reason)),
            problems,
            stopping: Default::default(),
        }
    }

    /// Live while the process answers: nothing the pipeline does fails liveness. A restart by
    /// the kubelet would do no better than the pipeline's own restarts, and a native sidecar's
    /// restart takes the whole Calypso pod out of its Service.
    pub fn live(&self) -> Result<(), String> {
        Ok(())
    }

    pub fn ready(&self) -> Result<(), String> {
        if let Some(reason) = self.not_shipping() {
            return Err(format!("not shipping: {reason}"));
        }
        if self.stopping.load(Ordering::Relaxed) { Err("shutting down".into()) } else { Ok(()) }
    }

    pub fn not_shipping(&self) -> Option<String> {
        self.not_shipping.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_not_shipping(&self, reason: Option<String>) {
        *self.not_shipping.lock().unwrap_or_else(|e| e.into_inner()) = reason;
    }

    /// Prometheus text exposition 0.0.4.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let m = &self.metrics;
        let mut out = String::with_capacity(4096);
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n");
        };
        counter(
            "agent_logship_records_read_total",
            "Records framed from log files.",
            Metrics::get(&m.records_read),
        );
        counter("agent_logship_read_bytes_total", "Bytes read from log files.", Metrics::get(&m.bytes_read));
        counter(
            "agent_logship_records_cut_total",
            "Record pieces cut at the size limit.",
            Metrics::get(&m.records_cut),
        );
        counter(
            "agent_logship_records_shipped_early_total",
            "Records shipped before their next line came, because the files' pending records held more than the in-flight budget.",
            Metrics::get(&m.records_shipped_early),
        );
        counter(
            "agent_logship_timestamps_unparsed_total",
            "Records shipped with the ingest time because their own could not be read.",
            Metrics::get(&m.timestamps_unparsed),
        );
        counter(
            "agent_logship_documents_stored_total",
            "Documents Elasticsearch stored.",
            Metrics::get(&m.docs_stored),
        );
        counter(
            "agent_logship_documents_duplicate_total",
            "Documents Elasticsearch already had (409 to create with our id): delivered.",
            Metrics::get(&m.docs_duplicate),
        );
        counter(
            "agent_logship_documents_retried_total",
            "Document sends retried (429 / 5xx items).",
            Metrics::get(&m.docs_retried),
        );
        counter(
            "agent_logship_documents_dead_lettered_total",
            "Documents Elasticsearch refused for good, sent to the dead-letter data stream.",
            Metrics::get(&m.docs_dead_lettered),
        );
        counter(
            "agent_logship_dead_letters_in_file_total",
            "Dead letters the dead-letter data stream refused too, kept in the dead-letter file in the pod (lost with it).",
            Metrics::get(&m.dead_letters_in_file),
        );
        counter(
            "agent_logship_dead_letters_dropped_total",
            "Dead-lettered documents deleted with the oldest rotated dead-letter file (the data directory stays bounded).",
            Metrics::get(&m.dead_letters_dropped),
        );
        counter("agent_logship_requests_total", "_bulk requests sent.", Metrics::get(&m.requests));
        counter(
            "agent_logship_checkpoint_write_failures_total",
            "Checkpoint writes that failed (a full or read-only data volume): a crash then re-reads more, and may store records ended by the clock twice.",
            Metrics::get(&m.checkpoint_failures),
        );
        counter(
            "agent_logship_pipeline_restarts_total",
            "Times the pipeline failed and was started again in the process (the reason is logged).",
            Metrics::get(&m.pipeline_restarts),
        );
        counter(
            "agent_logship_worker_restarts_total",
            "Times the shipping process ended (a panic, an OOM kill) and its supervisor started it again; the container stays up.",
            agent_core::supervise::restarts(),
        );
        counter(
            "agent_logship_requests_failed_total",
            "_bulk requests that failed as a whole (connection, 429, 5xx, 401/403) and were retried.",
            Metrics::get(&m.requests_failed),
        );
        counter(
            "agent_logship_batches_split_total",
            "Batches split after a 413.",
            Metrics::get(&m.batches_split),
        );
        let name = "agent_logship_proxy_failures_total";
        let _ = write!(
            out,
            "# HELP {name} _bulk requests the egress proxy failed (its own failure, not Elasticsearch's), by reason.\n\
             # TYPE {name} counter\n"
        );
        for (reason, n) in ProxyFailure::LABELS.iter().zip(&m.proxy_failures) {
            let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {}", Metrics::get(n));
        }
        let _ = write!(
            out,
            "# HELP agent_logship_shipping 1 while the pipeline runs; 0 while a setting holds the agent or the pipeline restarts.\n\
             # TYPE agent_logship_shipping gauge\nagent_logship_shipping {}\n\
             # HELP agent_logship_configuration_problems Settings that hold the agent: it ships nothing until they are fixed (the log repeats them every minute).\n\
             # TYPE agent_logship_configuration_problems gauge\nagent_logship_configuration_problems {}\n",
            u8::from(self.not_shipping().is_none()),
            self.problems
        );
        let _ = write!(
            out,
            "# HELP agent_logship_inflight_bytes Log bytes read but not yet acknowledged.\n\
             # TYPE agent_logship_inflight_bytes gauge\nagent_logship_inflight_bytes {}\n\
             # HELP agent_logship_inflight_max_bytes The in-flight budget; reading pauses at it.\n\
             # TYPE agent_logship_inflight_max_bytes gauge\nagent_logship_inflight_max_bytes {}\n",
            self.budget.in_flight(),
            self.budget.max()
        );
        let files = self.sources.files();
        let age = files.iter().filter_map(|f| f.oldest_unacknowledged).max().map_or(0.0, |d| d.as_secs_f64());
        let _ = write!(
            out,
            "# HELP agent_logship_oldest_unacknowledged_seconds Age of the oldest record read but not acknowledged (0: none).\n\
             # TYPE agent_logship_oldest_unacknowledged_seconds gauge\nagent_logship_oldest_unacknowledged_seconds {age}\n"
        );
        let _ = write!(
            out,
            "# HELP agent_logship_file_lag_bytes Bytes of a file past its checkpoint.\n# TYPE agent_logship_file_lag_bytes gauge\n"
        );
        for f in files.iter().take(MAX_FILE_SERIES) {
            let _ =
                writeln!(out, "agent_logship_file_lag_bytes{{path=\"{}\"}} {}", label(&f.path), f.lag_bytes);
        }
        if files.len() > MAX_FILE_SERIES {
            let rest: u64 = files[MAX_FILE_SERIES..].iter().map(|f| f.lag_bytes).sum();
            let _ = writeln!(out, "agent_logship_file_lag_bytes{{path=\"other\"}} {rest}");
        }
        if let Some(redactor) = &self.redactor {
            let name = "agent_logship_redacted_documents_total";
            let _ = write!(
                out,
                "# HELP {name} Documents (records and Events) in which a rule masked a credential, by rule\n\
                 # TYPE {name} counter\n"
            );
            for (rule, n) in redactor.counts() {
                let _ = writeln!(out, "{name}{{rule=\"{rule}\"}} {n}");
            }
        }
        if let Some(events) = &self.events {
            events.render(&mut out);
        }
        out
    }
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// No files are read (Events alone, or nothing runs).
pub struct NoFiles;

impl SourceStatus for NoFiles {
    fn files(&self) -> Vec<FileLag> {
        Vec::new()
    }
}
