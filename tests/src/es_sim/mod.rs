//! `es-sim`: a test double of Elasticsearch / OpenSearch for log shippers, following
//! Elasticsearch's documented `_bulk` protocol (docs/es-sim.md): `_bulk` with its NDJSON rules, `create`/`index` and `_id`
//! conflicts, data streams (template, create only, `@timestamp`), a minimal dynamic mapping whose
//! conflicts give 400s, gzip bodies, 413 over a size limit, basic/API-key auth, `GET /` per
//! flavour, index templates, ILM/ISM policies, read-back and counting, and fault injection
//! (per-item 429s, whole-request 503s, latency, down/up on the same port). What it does and
//! does not implement: `docs/es-sim.md`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use calypso_testkit::es_sim::{EsOptions, EsSim};
//!
//! let es = EsSim::start(EsOptions::default()).await?;
//! let url = es.url(); // http://127.0.0.1:PORT
//! es.set_item_429_every(10); // every 10th bulk item refused with 429
//! es.down().await; // connections refused ...
//! es.up()?; // ... until it listens again on the same port
//! assert_eq!(es.count(), 0);
//! # Ok(()) }
//! ```
//!
#![doc = include_str!("control-api.md")]

mod auth;
pub mod bulk;
mod control;
mod faults;
pub mod filter_path;
mod http;
pub mod mapping;
pub mod names;
mod response;
pub mod sigv4;
pub(crate) mod store;

pub use auth::Auth;
pub use faults::Faults;

use crate::double::listener::Listener;
use faults::FaultState;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use store::Store;

/// Which server to pretend to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavour {
    /// Elasticsearch 8.15: `X-Elastic-Product: Elasticsearch` on every answer, built-in
    /// `logs-*-*` data stream template, ILM, `document_parsing_exception`.
    #[default]
    Elasticsearch,
    /// OpenSearch 2.15: `version.distribution: "opensearch"`, no product header, no built-in
    /// templates, ISM, `mapper_parsing_exception`.
    OpenSearch,
}

impl std::str::FromStr for Flavour {
    type Err = String;
    fn from_str(s: &str) -> Result<Flavour, String> {
        match s.to_ascii_lowercase().as_str() {
            "elasticsearch" | "es" => Ok(Flavour::Elasticsearch),
            "opensearch" | "os" => Ok(Flavour::OpenSearch),
            _ => Err(format!("unknown flavour {s:?}: elasticsearch or opensearch")),
        }
    }
}

impl std::fmt::Display for Flavour {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Flavour::Elasticsearch => "elasticsearch",
            Flavour::OpenSearch => "opensearch",
        })
    }
}

/// Elasticsearch's default `http.max_content_length`.
pub const DEFAULT_MAX_CONTENT_LENGTH: u64 = 100 << 20;

/// How to run the double.
#[derive(Debug, Clone)]
pub struct EsOptions {
    /// Where to bind; port 0 picks a free one ([`EsSim::addr`] tells which).
    pub listen: SocketAddr,
    pub flavour: Flavour,
    /// Bodies over this many bytes (as received, and after gunzip) are answered 413.
    pub max_content_length: u64,
    /// Credentials every Elasticsearch API request must carry (the `/_sim/` API needs none).
    pub auth: Option<Auth>,
    pub faults: Faults,
    /// Elasticsearch's built-in `logs`/`metrics`/`synthetics` data stream templates (priority
    /// 100), on the Elasticsearch flavour only.
    pub builtin_templates: bool,
    /// Documents that name their own `_id` are refused (400 per item), as OpenSearch
    /// Serverless time-series and vector collections do; ids are generated.
    pub server_ids_only: bool,
}

impl Default for EsOptions {
    /// `127.0.0.1:0`, Elasticsearch, 100 MiB, no auth, no faults, built-in templates.
    fn default() -> EsOptions {
        EsOptions {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            flavour: Flavour::Elasticsearch,
            max_content_length: DEFAULT_MAX_CONTENT_LENGTH,
            auth: None,
            faults: Faults::default(),
            builtin_templates: true,
            server_ids_only: false,
        }
    }
}

impl EsOptions {
    /// The defaults with another flavour.
    pub fn flavour(flavour: Flavour) -> EsOptions {
        EsOptions { flavour, ..EsOptions::default() }
    }
}

/// What the double has seen since it started (or since [`EsSim::reset_stats`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Requests to the Elasticsearch API (not the control API).
    pub requests: u64,
    pub bulk_requests: u64,
    /// Bulk items answered, by status (201, 200, 409, 429, 400, ...).
    pub items_by_status: BTreeMap<u16, u64>,
    /// Items refused with 409 because the `_id` was already stored.
    pub duplicates: u64,
    /// Body bytes received, as sent (compressed when gzip).
    pub bytes_in: u64,
    pub gzip_requests: u64,
    /// Whole requests refused, by status (401, 413, 503, 400).
    pub refused_requests: BTreeMap<u16, u64>,
}

impl Stats {
    /// Bulk items answered, all statuses.
    pub fn items(&self) -> u64 {
        self.items_by_status.values().sum()
    }

    /// Items answered with this status.
    pub fn items_with(&self, status: u16) -> u64 {
        self.items_by_status.get(&status).copied().unwrap_or(0)
    }
}

/// Settings that can change while running.
#[derive(Debug)]
struct Settings {
    auth: Option<Auth>,
    max_content_length: u64,
}

/// The state the server tasks and the handle share.
#[derive(Debug)]
struct Shared {
    listener: Arc<Listener>,
    flavour: Flavour,
    store: Mutex<Store>,
    faults: Mutex<FaultState>,
    settings: Mutex<Settings>,
    stats: Mutex<Stats>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running double. Dropping it stops it. Its listener's controls (`down`, `up`, `down_for`,
/// `is_up`, `addr`, `url`, `exit_requested`) are its own, through `Deref`.
#[derive(Debug)]
pub struct EsSim {
    shared: Arc<Shared>,
}

impl std::ops::Deref for EsSim {
    type Target = Arc<Listener>;

    fn deref(&self) -> &Arc<Listener> {
        &self.shared.listener
    }
}

impl EsSim {
    /// Binds `opts.listen` and serves in the background (it accepts connections when this
    /// returns).
    pub async fn start(opts: EsOptions) -> std::io::Result<EsSim> {
        let listener = Listener::bind(opts.listen)?;
        let addr = listener.addr();
        let today = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let shared = Arc::new(Shared {
            listener,
            flavour: opts.flavour,
            store: Mutex::new({
                let mut store = Store::new(opts.flavour, opts.builtin_templates, store::date_of(today));
                store.server_ids_only = opts.server_ids_only;
                store
            }),
            faults: Mutex::new(FaultState::new(opts.faults)),
            settings: Mutex::new(Settings { auth: opts.auth, max_content_length: opts.max_content_length }),
            stats: Mutex::new(Stats::default()),
        });
        shared.listener.start(http::serve(&shared));
        tracing::info!(%addr, flavour = %opts.flavour, "es-sim listening");
        Ok(EsSim { shared })
    }

    pub fn flavour(&self) -> Flavour {
        self.shared.flavour
    }

    /// The stored sources of the indices / data streams an expression names (`logs-*`,
    /// `a,b`, a backing index), each with its `_id` added, in the order first stored.
    pub fn docs(&self, index_or_pattern: &str) -> Vec<serde_json::Value> {
        lock(&self.shared.store).docs(index_or_pattern)
    }

    /// Documents stored, in all indices.
    pub fn count(&self) -> u64 {
        lock(&self.shared.store).total()
    }

    /// Documents stored in the indices an expression names (0 when none).
    pub fn count_in(&self, index_or_pattern: &str) -> u64 {
        lock(&self.shared.store).count(index_or_pattern).unwrap_or(0)
    }

    /// Every stored `_id`, of all indices.
    pub fn ids(&self) -> Vec<String> {
        lock(&self.shared.store).ids()
    }

    pub fn stats(&self) -> Stats {
        lock(&self.shared.stats).clone()
    }

    pub fn reset_stats(&self) {
        *lock(&self.shared.stats) = Stats::default();
    }

    /// Installs an index template, as `PUT /_index_template/<name>` with `body` does.
    pub fn put_template(&self, name: &str, body: serde_json::Value) -> Result<(), String> {
        lock(&self.shared.store)
            .put_template(name, body)
            .map_err(|e| format!("{} {}: {}", e.status, e.kind, e.reason))
    }

    /// Forgets all documents, indices and data streams (templates and policies stay).
    pub fn clear_documents(&self) {
        lock(&self.shared.store).clear_documents();
    }

    /// The faults now set (`fail_next` counts down as requests fail).
    pub fn faults(&self) -> Faults {
        lock(&self.shared.faults).faults().clone()
    }

    /// Replaces all faults (and restarts their counters and generator).
    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.shared.faults) = FaultState::new(faults);
    }

    fn change_faults(&self, change: impl FnOnce(&mut Faults)) {
        let mut faults = self.faults();
        change(&mut faults);
        self.set_faults(faults);
    }

    pub fn clear_faults(&self) {
        self.set_faults(Faults::default());
    }

    /// Refuses every Nth bulk item with 429 (0: none).
    pub fn set_item_429_every(&self, n: u64) {
        self.change_faults(|f| f.item_429_every = n);
    }

    /// Refuses this share of bulk items with 429, drawn from a generator seeded with `seed`.
    pub fn set_item_429_share(&self, share: f64, seed: u64) {
        self.change_faults(|f| {
            f.item_429_share = share;
            f.seed = seed;
        });
    }

    /// Answers the next `n` bulk requests with a whole-request 503.
    pub fn fail_next_requests(&self, n: u64) {
        self.change_faults(|f| f.fail_next = n);
    }

    /// Answers this share of bulk requests with a whole-request 503 (seeded).
    pub fn set_request_503_share(&self, share: f64, seed: u64) {
        self.change_faults(|f| {
            f.fail_share = share;
            f.seed = seed;
        });
    }

    /// Adds this delay before every answer of the Elasticsearch API.
    pub fn set_latency(&self, latency: Duration) {
        self.change_faults(|f| f.latency = latency);
    }

    /// Bodies over this many bytes get 413 "Request size exceeded".
    /// Every request from now on is handled at once but answered `delay` later (see
    /// [`Faults::answer_delay`]).
    pub fn set_answer_delay(&self, delay: Duration) {
        self.change_faults(|f| f.answer_delay = delay);
    }

    pub fn set_max_content_length(&self, bytes: u64) {
        lock(&self.shared.settings).max_content_length = bytes;
    }

    /// Requires these credentials from now on (`None`: none).
    pub fn set_auth(&self, auth: Option<Auth>) {
        lock(&self.shared.settings).auth = auth;
    }
}

/// How the `es-sim` binary runs it ([`crate::double::serve`]).
impl crate::double::Served for EsSim {
    const NAME: &'static str = "es-sim";
    type Options = EsOptions;

    fn listen(opts: &EsOptions) -> SocketAddr {
        opts.listen
    }

    async fn start(opts: EsOptions) -> std::io::Result<EsSim> {
        EsSim::start(opts).await
    }

    fn log_stopped(&self) {
        let stats = self.stats();
        tracing::info!(documents = self.count(), requests = stats.requests, items = stats.items(), "stopped");
    }
}

impl Drop for EsSim {
    fn drop(&mut self) {
        self.shared.listener.stop();
    }
}
