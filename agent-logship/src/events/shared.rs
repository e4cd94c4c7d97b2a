//! The spool as the watcher (which appends to it) and the shipper (which reads it and records
//! the acknowledgements) share it: one lock around the on-disk [`Spool`], a wake-up for the
//! shipper, and the gauges. Both import it from here, and [`super::source`] starts them.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use super::metrics::EventMetrics;
use super::spool::{Entry, NewEntry, Spool, SpoolError};

/// The spool's directory inside the data dir.
pub const SPOOL_DIR: &str = "events-spool";

#[derive(Debug)]
pub struct Shared {
    spool: Mutex<Spool>,
    appended: Notify,
    pub metrics: Arc<EventMetrics>,
}

impl Shared {
    pub fn open(
        data_dir: &Path,
        max_bytes: u64,
        metrics: Arc<EventMetrics>,
    ) -> Result<Arc<Shared>, SpoolError> {
        let spool = Spool::open(&data_dir.join(SPOOL_DIR), max_bytes)?;
        let shared = Shared { spool: Mutex::new(spool), appended: Notify::new(), metrics };
        shared.gauges(&shared.lock());
        Ok(Arc::new(shared))
    }

    fn lock(&self) -> MutexGuard<'_, Spool> {
        self.spool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the spool, then updates the gauges. On the async worker itself: an append
    /// or an acknowledgement is one small write and one fsync (about a millisecond), batched per
    /// watch burst and per `_bulk` answer. `block_in_place` here was measured to double the peak
    /// RSS (each call hands the worker over to a new thread, with its own malloc arena).
    fn with_spool<T>(&self, f: impl FnOnce(&mut Spool) -> T) -> T {
        let mut spool = self.lock();
        let out = f(&mut spool);
        self.gauges(&spool);
        out
    }

    fn gauges(&self, spool: &Spool) {
        use std::sync::atomic::Ordering::Relaxed;
        self.metrics.spool_bytes.store(spool.bytes(), Relaxed);
        self.metrics.spool_pending.store(spool.pending(), Relaxed);
    }

    /// Appends occurrences durably and wakes the shipper. A full spool drops its oldest
    /// entries: counted, and logged.
    pub fn append<'a>(&self, new: impl IntoIterator<Item = NewEntry<'a>>) -> Result<(), SpoolError> {
        let dropped = self.with_spool(|spool| spool.append(new))?;
        if dropped.entries > 0 || dropped.held > 0 {
            EventMetrics::add(&self.metrics.spool_dropped, dropped.entries);
            tracing::warn!(
                dropped = dropped.entries,
                only_in_memory = dropped.held,
                bytes = dropped.bytes,
                "the Events spool is full (AGENT_LOGSHIP_SPOOL_MAX_BYTES): its oldest occurrences were dropped unshipped \
                 (and those on their way now have no copy on disk: a crash before they are shipped loses them)"
            );
        }
        self.appended.notify_one();
        Ok(())
    }

    /// Completes when something was appended since the last wake-up (a permit is kept when
    /// nobody waits, so no append is missed between a read and the wait).
    pub fn appended(&self) -> impl Future<Output = ()> + '_ {
        self.appended.notified()
    }

    pub fn read(&self, from: u64, max: usize) -> Result<Vec<Entry>, SpoolError> {
        self.with_spool(|spool| spool.read(from, max))
    }

    pub fn committed(&self) -> u64 {
        self.lock().committed()
    }

    pub fn acknowledge(&self, seqs: &[u64]) {
        if let Err(e) = self.with_spool(|spool| spool.acknowledge(seqs)) {
            // Shipped but not recorded: sent again after a restart, and answered 409.
            tracing::error!(error = %e, "cannot record shipped Events in the spool");
        }
    }
}
