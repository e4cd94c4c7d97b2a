//! Fault injection: which bulk items are refused with 429, which bulk requests with 503, and
//! how slow answers are. Deterministic: "every Nth" counts, and shares are drawn from a
//! generator seeded by the settings, so a test sees the same faults on every run.

use std::time::Duration;

/// The faults to inject; the default injects none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// Refuse every Nth bulk item (counted over all items since the faults were set) with 429
    /// `es_rejected_execution_exception`; 0 = never.
    pub item_429_every: u64,
    /// Refuse this share (0..=1) of bulk items with 429, drawn from a generator seeded with
    /// `seed`.
    pub item_429_share: f64,
    /// Answer the next N bulk requests with a whole-request 503.
    pub fail_next: u64,
    /// Answer this share (0..=1) of bulk requests with a whole-request 503 (seeded).
    pub fail_share: f64,
    /// Added before answering every request of the Elasticsearch API.
    pub latency: Duration,
    /// Added after handling every request of the Elasticsearch API, before its answer goes out:
    /// what a bulk request stored is stored, but the client learns it late (a slow network back,
    /// a coordinating node under load). Each request keeps the delay set when it arrived.
    pub answer_delay: Duration,
    /// Seeds the shares.
    pub seed: u64,
}

impl Faults {
    /// Whether any fault is set.
    pub fn any(&self) -> bool {
        *self != Faults::default()
    }
}

/// The faults with their counters and generator.
#[derive(Debug, Default)]
pub(crate) struct FaultState {
    faults: Faults,
    items: u64,
    rng: SplitMix,
}

impl FaultState {
    pub(crate) fn new(faults: Faults) -> FaultState {
        let rng = SplitMix(faults.seed);
        FaultState { faults, items: 0, rng }
    }

    pub(crate) fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Whether the next bulk item is refused with 429.
    pub(crate) fn reject_item(&mut self) -> bool {
        self.items += 1;
        let every = self.faults.item_429_every;
        let nth = every > 0 && self.items.is_multiple_of(every);
        let drawn = self.faults.item_429_share > 0.0 && self.rng.chance(self.faults.item_429_share);
        nth || drawn
    }

    /// Whether the next bulk request is answered 503.
    pub(crate) fn fail_request(&mut self) -> bool {
        if self.faults.fail_next > 0 {
            self.faults.fail_next -= 1;
            return true;
        }
        self.faults.fail_share > 0.0 && self.rng.chance(self.faults.fail_share)
    }

    pub(crate) fn latency(&self) -> Duration {
        self.faults.latency
    }

    pub(crate) fn answer_delay(&self) -> Duration {
        self.faults.answer_delay
    }
}

/// SplitMix64: tiny, seedable, and the same on every platform and version.
#[derive(Debug, Default)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `share`.
    fn chance(&mut self, share: f64) -> bool {
        // 53 random bits as a fraction in [0, 1).
        #[allow(clippy::cast_precision_loss)]
        let x = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        x < share
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nth_item() {
        let mut f = FaultState::new(Faults { item_429_every: 3, ..Faults::default() });
        let rejected: Vec<bool> = (0..7).map(|_| f.reject_item()).collect();
        assert_eq!(rejected, [false, false, true, false, false, true, false]);
    }

    #[test]
    fn shares_are_seeded() {
        let draw = |seed| {
            let mut f = FaultState::new(Faults { item_429_share: 0.25, seed, ..Faults::default() });
            (0..1000).map(|_| f.reject_item()).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7), "same seed, same faults");
        assert_ne!(draw(7), draw(8));
        let n = draw(7).iter().filter(|r| **r).count();
        assert!((180..320).contains(&n), "about a quarter: {n}");
    }

    #[test]
    fn the_next_requests_then_a_share() {
        let mut f = FaultState::new(Faults { fail_next: 2, ..Faults::default() });
        assert_eq!((f.fail_request(), f.fail_request(), f.fail_request()), (true, true, false));
        let mut f = FaultState::new(Faults { fail_share: 1.0, ..Faults::default() });
        assert!(f.fail_request() && f.fail_request());
        assert!(!FaultState::default().reject_item());
    }
}
