//! `kube-sim`: a test double of the Kubernetes API server for core/v1 Events, following
//! the Kubernetes API (docs/kube-sim.md): LIST with `limit`/`continue` pagination over the first page's
//! snapshot, WATCH streaming newline-delimited JSON (ADDED / MODIFIED / DELETED / BOOKMARK /
//! ERROR) from a resourceVersion, `timeoutSeconds` and a server maximum ending watches, Status
//! errors (401, 403, 404, 400, 410), and the traps an events shipper must survive: compaction
//! (410 for every older resourceVersion), the empty-200 watch, the event TTL (DELETED), bearer
//! token rotation with a grace period, down/up and 503s. What it does and does not implement:
//! `docs/kube-sim.md`.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use calypso_testkit::kube_sim::{KubeOptions, KubeSim, NewEvent};
//!
//! let kube = KubeSim::start(KubeOptions::default()).await?;
//! let url = kube.url(); // http://127.0.0.1:PORT
//! let e = kube.create_event(NewEvent::about("calypso", "Pod", "dataserver-0", "Unhealthy", "Readiness probe failed")).expect("created");
//! kube.update_event("calypso", &e.metadata.name, Default::default()).expect("count 2");
//! kube.compact(); // every older resourceVersion answers 410
//! kube.set_empty_watches(3); // the next 3 watches answer an empty 200
//! # Ok(()) }
//! ```
//!
#![doc = include_str!("control-api.md")]

pub mod auth;
pub mod continuation;
mod control;
pub mod event;
mod faults;
mod http;
pub mod query;
pub mod status;
pub mod store;
mod watch;

pub use auth::Grant;
pub use event::{Event, EventUpdate, NewEvent, ObjectReference};
pub use faults::{Faults, Timing};
pub use store::StoreError;

use crate::double::listener::Listener;
use auth::Tokens;
use event::Key;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use store::Store;
use tokio::task::JoinHandle;

/// How to run the double.
#[derive(Debug, Clone)]
pub struct KubeOptions {
    /// Where to bind; port 0 picks a free one ([`KubeSim::addr`] tells which).
    pub listen: SocketAddr,
    /// Valid bearer tokens; none: no authentication.
    pub tokens: Vec<Grant>,
    pub timing: Timing,
    pub faults: Faults,
}

impl Default for KubeOptions {
    /// `127.0.0.1:0`, no authentication, the API server's timing ([`Timing::default`]), no faults.
    fn default() -> KubeOptions {
        KubeOptions {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            tokens: Vec::new(),
            timing: Timing::default(),
            faults: Faults::default(),
        }
    }
}

/// What the double has served since it started (or since [`KubeSim::reset_stats`]). Outcomes:
/// `ok` (a LIST page answered; a WATCH streamed), `expired` (410: a LIST's continue token or
/// resourceVersion, a WATCH's ERROR), `empty` (a WATCH caught by the empty-200 trap),
/// `unauthorized`, `forbidden`, `bad_request`, `unavailable`, `too_large`, `not_found`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// LIST requests by outcome.
    pub lists: BTreeMap<&'static str, u64>,
    /// LIST requests without a continue token (first pages) that were answered.
    pub first_pages: u64,
    /// WATCH requests by outcome.
    pub watches: BTreeMap<&'static str, u64>,
    /// How streamed watches ended: `timeout` (timeoutSeconds or the server maximum), `client`
    /// (it went away), `down`, `lagged` (fell too far behind).
    pub watch_ends: BTreeMap<&'static str, u64>,
    /// Watches streaming now.
    pub active_watches: u64,
    /// Watch events sent (ADDED, MODIFIED, DELETED), and BOOKMARKs.
    pub watch_events: u64,
    pub bookmarks: u64,
    /// GETs of one event, by outcome.
    pub gets: BTreeMap<&'static str, u64>,
    /// Requests that were none of these (an unknown path, a bad parameter before the kind was
    /// known), by status.
    pub refused: BTreeMap<u16, u64>,
}

impl Stats {
    /// LIST requests with this outcome.
    pub fn lists_with(&self, outcome: &str) -> u64 {
        self.lists.get(outcome).copied().unwrap_or(0)
    }

    /// WATCH requests with this outcome.
    pub fn watches_with(&self, outcome: &str) -> u64 {
        self.watches.get(outcome).copied().unwrap_or(0)
    }

    /// Watches that ended this way.
    pub fn watch_ends_with(&self, how: &str) -> u64 {
        self.watch_ends.get(how).copied().unwrap_or(0)
    }
}

/// The state the server tasks and the handle share.
#[derive(Debug)]
struct Shared {
    listener: Arc<Listener>,
    store: Mutex<Store>,
    faults: Mutex<Faults>,
    timing: Mutex<Timing>,
    tokens: Mutex<Tokens>,
    stats: Mutex<Stats>,
    sweeper: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn stop(&self) {
        self.listener.stop();
        if let Some(task) = lock(&self.sweeper).take() {
            task.abort();
        }
    }

    fn count(&self, f: impl FnOnce(&mut Stats)) {
        f(&mut lock(&self.stats));
    }
}

/// Deletes the events the TTL expires, checking a tenth of the TTL apart (at least every
/// second, at most every 10 ms).
async fn sweep(shared: Arc<Shared>) {
    loop {
        let ttl = lock(&shared.timing).ttl;
        let every = ttl.map_or(Duration::from_millis(200), |t| {
            (t / 10).clamp(Duration::from_millis(10), Duration::from_secs(1))
        });
        tokio::time::sleep(every).await;
        if let Some(ttl) = ttl {
            let expired = lock(&shared.store).expire(Instant::now(), ttl);
            if expired > 0 {
                tracing::debug!(expired, "events expired");
            }
        }
    }
}

/// A running double. Dropping it stops it. Its listener's controls (`down`, `up`, `down_for`,
/// `is_up`, `addr`, `url`, `exit_requested`) are its own, through `Deref`; going down cuts the
/// watches (the stream breaks off without its last chunk, as when an API server dies).
#[derive(Debug)]
pub struct KubeSim {
    shared: Arc<Shared>,
}

impl std::ops::Deref for KubeSim {
    type Target = Arc<Listener>;

    fn deref(&self) -> &Arc<Listener> {
        &self.shared.listener
    }
}

impl KubeSim {
    /// Binds `opts.listen` and serves in the background (it accepts connections when this
    /// returns).
    pub async fn start(opts: KubeOptions) -> std::io::Result<KubeSim> {
        let listener = Listener::bind(opts.listen)?;
        let addr = listener.addr();
        let shared = Arc::new(Shared {
            listener,
            store: Mutex::new(Store::new()),
            faults: Mutex::new(opts.faults),
            timing: Mutex::new(opts.timing),
            tokens: Mutex::new(Tokens::new(opts.tokens)),
            stats: Mutex::new(Stats::default()),
            sweeper: Mutex::new(None),
        });
        shared.listener.start(http::serve(&shared));
        *lock(&shared.sweeper) = Some(tokio::spawn(sweep(shared.clone())));
        tracing::info!(%addr, "kube-sim listening");
        Ok(KubeSim { shared })
    }

    /// Creates an event (`metadata.namespace` set); the server fills `uid`, `resourceVersion`,
    /// `creationTimestamp`, and for a core/v1-style event (no `eventTime`) `count` 1 and the
    /// first/last timestamps (see [`event::fill_new`]).
    pub fn create_event(&self, event: NewEvent) -> Result<Event, StoreError> {
        lock(&self.shared.store).create(event, Instant::now()).map(|e| (*e).clone())
    }

    /// Updates an event: `EventUpdate::default()` is one more occurrence (count + 1, or
    /// series.count + 1, lastTimestamp now); otherwise the fields given are set.
    pub fn update_event(
        &self,
        namespace: &str,
        name: &str,
        update: EventUpdate,
    ) -> Result<Event, StoreError> {
        let key = Key { namespace: namespace.into(), name: name.into() };
        lock(&self.shared.store).update(&key, &update, Instant::now()).map(|e| (*e).clone())
    }

    /// Deletes an event (watches get a DELETED with the deletion's resourceVersion).
    pub fn delete_event(&self, namespace: &str, name: &str) -> Result<Event, StoreError> {
        let key = Key { namespace: namespace.into(), name: name.into() };
        lock(&self.shared.store).delete(&key).map(|e| (*e).clone())
    }

    /// The current events, ordered by namespace/name.
    pub fn events(&self) -> Vec<Event> {
        lock(&self.shared.store).all(None).into_iter().map(|e| (*e).clone()).collect()
    }

    /// The newest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        lock(&self.shared.store).resource_version()
    }

    /// Compacts at the current resourceVersion: every older one (a watch's, a continue
    /// token's) answers 410 from now on. Returns the compaction point.
    pub fn compact(&self) -> u64 {
        let at = lock(&self.shared.store).compact();
        tracing::info!(at, "compacted");
        at
    }

    pub fn faults(&self) -> Faults {
        lock(&self.shared.faults).clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        *lock(&self.shared.faults) = faults;
    }

    /// The next `n` watches answer 200 with an empty body at once.
    pub fn set_empty_watches(&self, n: u64) {
        lock(&self.shared.faults).empty_watches = n;
    }

    /// Every API request answers 503 while set.
    pub fn set_unavailable(&self, unavailable: bool) {
        lock(&self.shared.faults).unavailable = unavailable;
    }

    pub fn timing(&self) -> Timing {
        lock(&self.shared.timing).clone()
    }

    /// Applies to watches started from now on (the TTL at once).
    pub fn set_timing(&self, timing: Timing) {
        *lock(&self.shared.timing) = timing;
    }

    /// Events not written for `ttl` are deleted (`None`: never).
    pub fn set_ttl(&self, ttl: Option<Duration>) {
        lock(&self.shared.timing).ttl = ttl;
    }

    /// The server ends every watch after this long.
    pub fn set_watch_max(&self, max: Duration) {
        lock(&self.shared.timing).watch_max = max;
    }

    pub fn set_bookmark_interval(&self, every: Duration) {
        lock(&self.shared.timing).bookmark_interval = every;
    }

    /// Replaces the valid tokens; the ones dropped keep working for `grace`, then answer 401.
    /// No tokens: no authentication.
    pub fn set_tokens(&self, tokens: Vec<Grant>, grace: Duration) {
        lock(&self.shared.tokens).rotate(tokens, grace, Instant::now());
    }

    pub fn stats(&self) -> Stats {
        lock(&self.shared.stats).clone()
    }

    /// Zeroes the stats (but `active_watches`, which counts what runs).
    pub fn reset_stats(&self) {
        let mut stats = lock(&self.shared.stats);
        *stats = Stats { active_watches: stats.active_watches, ..Stats::default() };
    }
}

/// How the `kube-sim` binary runs it ([`crate::double::serve`]).
impl crate::double::Served for KubeSim {
    const NAME: &'static str = "kube-sim";
    type Options = KubeOptions;

    fn listen(opts: &KubeOptions) -> SocketAddr {
        opts.listen
    }

    async fn start(opts: KubeOptions) -> std::io::Result<KubeSim> {
        KubeSim::start(opts).await
    }

    fn log_stopped(&self) {
        let stats = self.stats();
        tracing::info!(
            events = self.events().len(),
            lists = stats.lists.values().sum::<u64>(),
            watches = stats.watches.values().sum::<u64>(),
            "stopped"
        );
    }
}

impl Drop for KubeSim {
    fn drop(&mut self) {
        self.shared.stop();
    }
}

impl NewEvent {
    /// A core/v1-style event about `kind`/`name` in `namespace`, reported by the kubelet of
    /// `node-1`: type `Warning` for the reasons the kubelet and scheduler report as warnings
    /// (Unhealthy, BackOff, Failed, FailedMount, FailedScheduling, Evicted, OOMKilling,
    /// ProbeWarning), else `Normal`.
    pub fn about(namespace: &str, kind: &str, name: &str, reason: &str, message: &str) -> NewEvent {
        let warning = matches!(
            reason,
            "Unhealthy"
                | "BackOff"
                | "Failed"
                | "FailedMount"
                | "FailedScheduling"
                | "Evicted"
                | "OOMKilling"
                | "ProbeWarning"
        );
        let mut e = Event {
            involved_object: ObjectReference {
                kind: kind.into(),
                name: name.into(),
                namespace: namespace.into(),
                uid: event::new_uid(),
                api_version: if matches!(kind, "Deployment" | "StatefulSet" | "ReplicaSet") {
                    "apps/v1"
                } else {
                    "v1"
                }
                .into(),
                ..ObjectReference::default()
            },
            reason: reason.into(),
            message: message.into(),
            type_: if warning { "Warning" } else { "Normal" }.into(),
            source: event::EventSource { component: "kubelet".into(), host: "node-1".into() },
            reporting_component: "kubelet".into(),
            reporting_instance: "node-1".into(),
            ..Event::default()
        };
        e.metadata.namespace = namespace.into();
        e
    }
}
