//! What the poller writes and the HTTP server reads: the tracker with the last verdicts, and
//! the statistics. Probes never call upstream: they read this.

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::policy::{Policy, Tracker};
use crate::stats::Stats;

#[derive(Debug)]
pub struct App {
    tracker: Mutex<Tracker>,
    stats: Mutex<Stats>,
    /// Most sensors exported as metrics; the rest are counted as dropped.
    pub max_sensor_metrics: usize,
}

impl App {
    pub fn new(policy: Policy, max_sensor_metrics: usize) -> Self {
        App {
            tracker: Mutex::new(Tracker::new(policy)),
            stats: Mutex::new(Stats::default()),
            max_sensor_metrics,
        }
    }

    /// The tracker. Held only for in-memory work, never across an await.
    pub fn tracker(&self) -> MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
