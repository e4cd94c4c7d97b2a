//! Counters and the poll-duration histogram behind `/metrics` (the verdicts and the sensor
//! tree come from the tracker). Label sets are bounded by construction.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::policy::Probe;

/// Upper bounds of the poll-duration histogram, in seconds.
pub const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// Why a poll failed, as a bounded metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PollError {
    Refused,
    Timeout,
    Closed,
    Dns,
    BadPayload,
    Other,
}

impl PollError {
    /// Every label, each exported (0 until it happens).
    pub const ALL: [PollError; 6] = [
        PollError::Refused,
        PollError::Timeout,
        PollError::Closed,
        PollError::Dns,
        PollError::BadPayload,
        PollError::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            PollError::Refused => "refused",
            PollError::Timeout => "timeout",
            PollError::Closed => "closed",
            PollError::Dns => "dns",
            PollError::BadPayload => "bad_payload",
            PollError::Other => "other",
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Cumulative counts per bucket of [`BUCKETS`], then +Inf.
    pub poll_buckets: [u64; BUCKETS.len() + 1],
    pub poll_sum_seconds: f64,
    pub poll_count: u64,
    pub poll_errors: BTreeMap<PollError, u64>,
    /// Per probe: (passed, failed) answers served.
    pub probe_requests: BTreeMap<Probe, (u64, u64)>,
}

impl Stats {
    pub fn record_poll(&mut self, took: Duration, error: Option<PollError>) {
        let secs = took.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                self.poll_buckets[i] += 1;
            }
        }
        self.poll_buckets[BUCKETS.len()] += 1;
        self.poll_sum_seconds += secs;
        self.poll_count += 1;
        if let Some(e) = error {
            *self.poll_errors.entry(e).or_insert(0) += 1;
        }
    }

    pub fn record_probe(&mut self, probe: Probe, ok: bool) {
        let entry = self.probe_requests.entry(probe).or_insert((0, 0));
        if ok {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let mut s = Stats::default();
        s.record_poll(Duration::from_millis(3), None);
        s.record_poll(Duration::from_millis(300), Some(PollError::Timeout));
        s.record_poll(Duration::from_secs(9), Some(PollError::Timeout));
        assert_eq!(s.poll_buckets[0], 1, "<= 5ms");
        assert_eq!(s.poll_buckets[6], 2, "<= 0.5s");
        assert_eq!(s.poll_buckets[BUCKETS.len()], 3, "+Inf");
        assert_eq!(s.poll_count, 3);
        assert_eq!(s.poll_errors[&PollError::Timeout], 2);
    }
}
