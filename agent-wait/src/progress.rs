//! What the operator is told while waiting: each target's last reason, logged when it changes
//! and at most every [`REPEAT_EVERY`] otherwise, how long each took, and what was still missing
//! when the deadline passed. Pure: time comes in as arguments.
//!
//! Every reason is redacted as it comes in ([`agent_core::redact::text`]): a Calypso report's
//! details may carry JDBC URLs and credentials, and the log lines and the termination message
//! are all made from what is kept here.

use std::time::Duration;

use tokio::time::Instant;

use crate::check::NotReady;

/// A reason that does not change is repeated this often, so a long wait still shows life.
pub const REPEAT_EVERY: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct Entry {
    label: String,
    attempts: u32,
    last_reason: Option<String>,
    last_signature: Option<String>,
    last_logged: Option<Instant>,
    ready_after: Option<Duration>,
    /// Ready before, being checked once more now that every target has been ready.
    rechecking: bool,
}

/// Something worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Not ready, with a new reason or a reminder of the old one.
    Waiting {
        label: String,
        reason: String,
        attempts: u32,
        elapsed: Duration,
    },
    Ready {
        label: String,
        attempts: u32,
        elapsed: Duration,
    },
}

#[derive(Debug)]
pub struct Progress {
    started: Instant,
    entries: Vec<Entry>,
}

impl Progress {
    pub fn new(labels: impl IntoIterator<Item = String>, started: Instant) -> Self {
        let entries = labels
            .into_iter()
            .map(|label| Entry {
                label,
                attempts: 0,
                last_reason: None,
                last_signature: None,
                last_logged: None,
                ready_after: None,
                rechecking: false,
            })
            .collect();
        Progress { started, entries }
    }

    /// Records a failed attempt of target `i` (pending again, if it was ready); a note when the
    /// reason is new (by its signature) or was last said [`REPEAT_EVERY`] ago.
    pub fn not_ready(&mut self, i: usize, why: NotReady, now: Instant) -> Option<Note> {
        let reason = agent_core::redact::text_cut(&why.reason);
        let signature = agent_core::redact::text_cut(&why.signature);
        let e = &mut self.entries[i];
        e.attempts += 1;
        e.ready_after = None;
        e.rechecking = false;
        let changed = e.last_signature.as_deref() != Some(signature.as_str());
        let due = e.last_logged.is_none_or(|t| now.duration_since(t) >= REPEAT_EVERY);
        e.last_reason = Some(reason.clone());
        e.last_signature = Some(signature);
        if !(changed || due) {
            return None;
        }
        e.last_logged = Some(now);
        let elapsed = now.duration_since(self.started);
        Some(Note::Waiting { label: e.label.clone(), reason, attempts: e.attempts, elapsed })
    }

    /// Records target `i` as ready.
    pub fn ready(&mut self, i: usize, now: Instant) -> Note {
        let elapsed = now.duration_since(self.started);
        let e = &mut self.entries[i];
        e.attempts += 1;
        e.ready_after = Some(elapsed);
        Note::Ready { label: e.label.clone(), attempts: e.attempts, elapsed }
    }

    /// Target `i`, ready before, is being checked once more.
    pub fn rechecking(&mut self, i: usize) {
        self.entries[i].rechecking = true;
    }

    /// Target `i` was still ready when checked once more.
    pub fn still_ready(&mut self, i: usize) {
        self.entries[i].rechecking = false;
    }

    pub fn all_ready(&self) -> bool {
        self.entries.iter().all(|e| e.ready_after.is_some())
    }

    /// `dataserver 3.2s, tcp://db:1521 0.1s`: how long each target took.
    pub fn timings(&self) -> String {
        let parts: Vec<String> = self
            .entries
            .iter()
            .filter_map(|e| e.ready_after.map(|d| format!("{} {}", e.label, secs(d))))
            .collect();
        parts.join(", ")
    }

    /// `dataserver (state RED (...)); tcp://db:1521 (connection refused)`: what is not ready
    /// and why, for the deadline and signal messages.
    pub fn pending(&self) -> String {
        let parts: Vec<String> = self
            .entries
            .iter()
            .filter(|e| e.ready_after.is_none() || e.rechecking)
            .map(|e| {
                let why = match e.ready_after {
                    Some(after) => format!("ready after {}, being checked once more", secs(after)),
                    None => e.last_reason.clone().unwrap_or_else(|| "no attempt finished".into()),
                };
                format!("{} ({why})", e.label)
            })
            .collect();
        parts.join("; ")
    }
}

/// Seconds with one decimal: `3.2s`.
pub fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_changes_and_reminders_only() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut p = Progress::new(["ds".to_string()], t0);
        let why = |s: &str| NotReady::from(s.to_string());
        assert!(p.not_ready(0, why("connection refused"), at(0)).is_some(), "first reason");
        assert!(p.not_ready(0, why("connection refused"), at(500)).is_none(), "same reason");
        assert!(p.not_ready(0, why("HTTP 503"), at(900)).is_some(), "changed");
        assert!(p.not_ready(0, why("HTTP 503"), at(10_800)).is_none(), "9.9s later");
        assert_eq!(
            p.not_ready(0, why("HTTP 503"), at(10_900)),
            Some(Note::Waiting {
                label: "ds".into(),
                reason: "HTTP 503".into(),
                attempts: 5,
                elapsed: Duration::from_millis(10_900)
            }),
            "reminder after 10s"
        );
    }

    #[test]
    fn same_signature_with_new_details_is_not_a_change_but_is_remembered() {
        let t0 = Instant::now();
        let mut p = Progress::new(["ds".to_string()], t0);
        let red =
            |n: u32| NotReady { reason: format!("state RED (attempt {n}/20)"), signature: "RED x".into() };
        assert!(p.not_ready(0, red(1), t0).is_some());
        assert!(p.not_ready(0, red(2), t0 + Duration::from_secs(1)).is_none());
        assert_eq!(p.pending(), "ds (state RED (attempt 2/20))", "the latest words are reported");
    }

    #[test]
    fn reasons_are_redacted_in_notes_and_pending() {
        let t0 = Instant::now();
        let mut p = Progress::new(["ds".to_string()], t0);
        let details = "state RED (Calypso/DatabaseConnection: RED 'jdbc:oracle:thin:calypso/hunter2@db:1521/CAL \
                       password=hunter2')";
        let note = p.not_ready(0, NotReady::from(details.to_string()), t0);
        let Some(Note::Waiting { reason, .. }) = note else { panic!("{note:?}") };
        assert_eq!(
            reason,
            "state RED (Calypso/DatabaseConnection: RED 'jdbc:oracle:thin:calypso/***@db:1521/CAL password=***')"
        );
        assert!(!p.pending().contains("hunter2"), "{}", p.pending());
    }

    #[test]
    fn timings_and_pending() {
        let t0 = Instant::now();
        let mut p = Progress::new(["a".to_string(), "b".to_string(), "c".to_string()], t0);
        p.not_ready(1, NotReady::from("connection refused".to_string()), t0);
        assert_eq!(
            p.ready(0, t0 + Duration::from_millis(3240)),
            Note::Ready { label: "a".into(), attempts: 1, elapsed: Duration::from_millis(3240) }
        );
        assert!(!p.all_ready());
        assert_eq!(p.timings(), "a 3.2s");
        assert_eq!(p.pending(), "b (connection refused); c (no attempt finished)");
        p.ready(1, t0);
        p.ready(2, t0);
        assert!(p.all_ready());
    }
}
