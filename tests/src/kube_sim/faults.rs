//! What a test can switch while kube-sim runs: the faults (the empty-200 trap, 503s) and the
//! timing (bookmark interval, the server's maximum watch duration, the event TTL).

use std::time::Duration;

/// Faults to inject; the default injects none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// The next N watches answer 200 with an empty body at once (the Events trap: a stale
    /// resourceVersion may get this instead of a 410).
    pub empty_watches: u64,
    /// Every API request answers 503 ServiceUnavailable (the control API still works).
    pub unavailable: bool,
}

/// Timing of watches and of the TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// A BOOKMARK this often on watches that allow them (the API server: about a minute).
    pub bookmark_interval: Duration,
    /// The server ends every watch after this long, whatever `timeoutSeconds` asked for (the
    /// API server: `--min-request-timeout`, 30 minutes, randomised up to twice that).
    pub watch_max: Duration,
    /// Events not written for this long are deleted (`--event-ttl`, 1 hour); `None`: never.
    pub ttl: Option<Duration>,
}

impl Default for Timing {
    /// Bookmarks every 60 s, watches at most 30 min, no TTL.
    fn default() -> Timing {
        Timing { bookmark_interval: Duration::from_secs(60), watch_max: Duration::from_secs(1800), ttl: None }
    }
}

impl Timing {
    /// How long a watch asking for `timeout` runs.
    pub fn watch_duration(&self, timeout: Option<Duration>) -> Duration {
        timeout.map_or(self.watch_max, |t| t.min(self.watch_max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_maximum_caps_timeout_seconds() {
        let t = Timing { watch_max: Duration::from_secs(10), ..Timing::default() };
        assert_eq!(t.watch_duration(Some(Duration::from_secs(3))), Duration::from_secs(3));
        assert_eq!(t.watch_duration(Some(Duration::from_secs(30))), Duration::from_secs(10));
        assert_eq!(t.watch_duration(None), Duration::from_secs(10));
    }
}
