//! The retry policy: exponential backoff with jitter, capped, from `backon` (the maintained
//! successor of `backoff`, as kube-rs chose).

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// Delays that start near `min` and double up to `max`. backon's jitter adds up to 100% of the
/// base delay, so the base is capped at half of `max`: every delay lies in `[base, 2*base)` and
/// never exceeds `max`, while many clients retrying together still spread out.
pub fn backoff(min: Duration, max: Duration) -> impl Iterator<Item = Duration> + Send {
    let half = max / 2;
    ExponentialBuilder::default()
        .with_min_delay(min.min(half))
        .with_max_delay(half)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_stays_under_the_cap() {
        let delays: Vec<Duration> =
            backoff(Duration::from_millis(50), Duration::from_secs(1)).take(50).collect();
        assert_eq!(delays.len(), 50, "never runs out");
        assert!(delays[0] >= Duration::from_millis(50) && delays[0] < Duration::from_millis(100));
        assert!(delays.iter().all(|d| *d <= Duration::from_secs(1)));
        assert!(delays[10..].iter().all(|d| *d >= Duration::from_millis(500)), "reaches the cap");
    }

    #[test]
    fn tiny_cap_still_bounded() {
        let max = Duration::from_millis(20);
        assert!(backoff(Duration::from_millis(50), max).take(5).all(|d| d <= max));
    }
}
