//! The wait itself: every target checked in parallel, each with its own backoff, until all are
//! ready, the deadline passes or a signal arrives.
//!
//! "All ready" means ready together: a target found ready early may have failed by the time the
//! last one is ready (a DataServer that went RED while the EventServer was still starting). So
//! when every target has been ready, the ones ready before the last are checked once more, all
//! at once; any that fails is waited for again, and the round repeats when it is ready.

use std::future::Future;
use std::time::Duration;

use agent_core::retry::backoff;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, sleep_until};

use crate::check::{Check, NotReady};
use crate::config::MIN_INTERVAL;
use crate::progress::{Note, Progress, secs};
use crate::target::{Kind, Target};

/// How the wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every target ready; the line says how long each took.
    Ready(String),
    /// The deadline passed; the message lists each target not ready and its last reason.
    DeadlinePassed(String),
    /// A signal arrived first; the message names it and what was still not ready.
    Terminated(String),
}

/// Waits for every target; `stop` resolves with a signal's name to end the wait early.
pub async fn wait_all(
    targets: &[Target],
    checker: &impl Check,
    timeout: Duration,
    max_interval: Duration,
    stop: impl Future<Output = &'static str>,
) -> Outcome {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut progress = Progress::new(targets.iter().map(|t| t.label.clone()), started);
    let (tx, mut rx) = mpsc::unbounded_channel();
    // Dropping the set (on any return) aborts the probes still running.
    let mut probes = JoinSet::new();
    let start_probe = |probes: &mut JoinSet<()>, i: usize| {
        let t: &Target = &targets[i];
        tracing::debug!(dependency = %t.label, "checking");
        probes.spawn(probe(i, t.kind.clone(), checker.clone(), max_interval, tx.clone()));
    };
    for i in 0..targets.len() {
        start_probe(&mut probes, i);
    }
    tokio::pin!(stop);
    // The target whose probe found it ready last, and whether the others were confirmed since.
    let mut last_ready = None;
    let mut confirmed = true;
    let mut confirming = 0usize;

    loop {
        if progress.all_ready() && confirming == 0 {
            if confirmed {
                break;
            }
            confirmed = true;
            for (i, t) in targets.iter().enumerate().filter(|(i, _)| Some(*i) != last_ready) {
                let (kind, checker, tx) = (t.kind.clone(), checker.clone(), tx.clone());
                progress.rechecking(i);
                probes.spawn(async move {
                    let result = checker.check(&kind).await;
                    let _ = tx.send((i, Attempt::Confirm(result)));
                });
                confirming += 1;
            }
            continue;
        }
        tokio::select! {
            _ = sleep_until(deadline) => {
                return Outcome::DeadlinePassed(format!(
                    "deadline {} passed; not ready: {}",
                    humantime::format_duration(timeout),
                    progress.pending()
                ));
            }
            signal = &mut stop => {
                return Outcome::Terminated(format!("{signal} while waiting; not ready: {}", progress.pending()));
            }
            Some((i, attempt)) = rx.recv() => {
                let now = Instant::now();
                let note = match attempt {
                    Attempt::Probe(Ok(())) => {
                        (last_ready, confirmed) = (Some(i), false);
                        Some(progress.ready(i, now))
                    }
                    Attempt::Probe(Err(why)) => progress.not_ready(i, why, now),
                    Attempt::Confirm(result) => {
                        confirming -= 1;
                        match result {
                            Ok(()) => {
                                progress.still_ready(i);
                                None
                            }
                            Err(why) => {
                                start_probe(&mut probes, i);
                                let again = |s: &str| format!("no longer ready: {s}");
                                let why = NotReady { reason: again(&why.reason), signature: again(&why.signature) };
                                progress.not_ready(i, why, now)
                            }
                        }
                    }
                };
                log(note);
            }
        }
    }
    let n = targets.len();
    let line = format!("{n} target{} ready in {}", if n == 1 { "" } else { "s" }, secs(started.elapsed()));
    Outcome::Ready(if n == 0 { line } else { format!("{line}: {}", progress.timings()) })
}

fn log(note: Option<Note>) {
    match note {
        Some(Note::Waiting { label, reason, attempts, elapsed }) => {
            tracing::info!(dependency = %label, attempts, elapsed = %secs(elapsed), "{label}: {reason}");
        }
        Some(Note::Ready { label, attempts, elapsed }) => {
            tracing::info!(dependency = %label, attempts, elapsed = %secs(elapsed), "{label}: ready after {}", secs(elapsed));
        }
        None => {}
    }
}

/// An attempt's result: from a target's probe, or from the check that confirms a target found
/// ready earlier is still ready.
enum Attempt {
    Probe(Result<(), NotReady>),
    Confirm(Result<(), NotReady>),
}

/// Checks one target until it is ready, pausing between attempts by the backoff.
async fn probe(
    i: usize,
    kind: Kind,
    checker: impl Check,
    max_interval: Duration,
    tx: mpsc::UnboundedSender<(usize, Attempt)>,
) {
    let mut delays = backoff(MIN_INTERVAL, max_interval);
    loop {
        let result = checker.check(&kind).await;
        let ready = result.is_ok();
        if tx.send((i, Attempt::Probe(result))).is_err() || ready {
            return;
        }
        sleep(delays.next().unwrap_or(max_interval)).await;
    }
}

#[cfg(test)]
mod tests {
    //! The loop on tokio's paused clock: time moves only when every task waits, so these run in
    //! microseconds and give the same answer on any machine.

    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    /// A target that turns ready at a given time after the start (never, if `None`), counting
    /// its attempts.
    #[derive(Clone)]
    struct Scripted {
        start: Instant,
        ready_at: Arc<Vec<Option<Duration>>>,
        attempts: Arc<Vec<AtomicU32>>,
    }

    impl Scripted {
        fn new(ready_at: Vec<Option<Duration>>) -> Self {
            let attempts = ready_at.iter().map(|_| AtomicU32::new(0)).collect();
            Scripted { start: Instant::now(), ready_at: Arc::new(ready_at), attempts: Arc::new(attempts) }
        }

        fn attempts(&self, i: usize) -> u32 {
            self.attempts[i].load(Ordering::SeqCst)
        }
    }

    impl Check for Scripted {
        async fn check(&self, kind: &Kind) -> Result<(), NotReady> {
            let Kind::Tcp { port, .. } = kind else { unreachable!("scripted targets are tcp") };
            let i = usize::from(*port);
            self.attempts[i].fetch_add(1, Ordering::SeqCst);
            match self.ready_at[i] {
                Some(at) if self.start.elapsed() >= at => Ok(()),
                _ => Err(NotReady::from(format!("not yet {i}"))),
            }
        }
    }

    fn targets(n: u16) -> Vec<Target> {
        (0..n)
            .map(|i| Target { label: format!("t{i}"), kind: Kind::Tcp { host: "h".into(), port: i } })
            .collect()
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test(start_paused = true)]
    async fn all_ready_reports_each_time_and_reacts_within_the_cap() {
        let fake = Scripted::new(vec![Some(Duration::ZERO), Some(Duration::from_millis(5_300))]);
        let started = Instant::now();
        let outcome = wait_all(&targets(2), &fake, 60 * SECOND, SECOND, std::future::pending()).await;
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(5_300) && took <= Duration::from_millis(6_300), "{took:?}");
        let Outcome::Ready(line) = outcome else { panic!("{outcome:?}") };
        assert!(line.starts_with("2 targets ready in ") && line.contains("t0 0.0s, t1 "), "{line}");
        assert_eq!(fake.attempts(0), 2, "a ready target is checked again only when the last is ready");
        // Backoff from 50 ms doubling to a 1 s cap over 5.3 s: more than 5, fewer than 20.
        assert!((6..20).contains(&fake.attempts(1)), "{}", fake.attempts(1));
    }

    /// t0 is ready at once, down from 2 s to 8 s (a DataServer failing over); t1 is ready from
    /// 5.3 s. Everything is ready together only from 8 s.
    #[derive(Clone)]
    struct Flapping(Instant);

    impl Check for Flapping {
        async fn check(&self, kind: &Kind) -> Result<(), NotReady> {
            let Kind::Tcp { port, .. } = kind else { unreachable!("scripted targets are tcp") };
            let t = self.0.elapsed();
            let ready = match port {
                0 => t < 2 * SECOND || t >= 8 * SECOND,
                _ => t >= Duration::from_millis(5_300),
            };
            if ready { Ok(()) } else { Err(NotReady::from(format!("down {port}"))) }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_target_that_failed_meanwhile_is_waited_for_again() {
        let started = Instant::now();
        let outcome =
            wait_all(&targets(2), &Flapping(started), 60 * SECOND, SECOND, std::future::pending()).await;
        let took = started.elapsed();
        assert!(took >= 8 * SECOND && took <= 9 * SECOND, "{took:?}");
        let Outcome::Ready(line) = outcome else { panic!("{outcome:?}") };
        assert!(line.contains("t0 8."), "t0's time is when it was ready again: {line}");
    }

    /// t0 is ready at once, then hangs; t1 is ready after 1 s.
    #[derive(Clone)]
    struct HangsLater(Instant, Arc<AtomicU32>);

    impl Check for HangsLater {
        async fn check(&self, kind: &Kind) -> Result<(), NotReady> {
            let Kind::Tcp { port, .. } = kind else { unreachable!("scripted targets are tcp") };
            if *port == 1 {
                return if self.0.elapsed() >= SECOND {
                    Ok(())
                } else {
                    Err(NotReady::from("later".to_string()))
                };
            }
            if self.1.fetch_add(1, Ordering::SeqCst) > 0 {
                std::future::pending::<()>().await;
            }
            Ok(())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_during_the_recheck_names_what_is_being_rechecked() {
        let fake = HangsLater(Instant::now(), Arc::default());
        let outcome = wait_all(&targets(2), &fake, 5 * SECOND, SECOND, std::future::pending()).await;
        assert_eq!(
            outcome,
            Outcome::DeadlinePassed(
                "deadline 5s passed; not ready: t0 (ready after 0.0s, being checked once more)".into()
            )
        );
    }

    #[tokio::test(start_paused = true)]
    async fn pauses_never_exceed_the_max_interval() {
        let fake = Scripted::new(vec![None]);
        let outcome = wait_all(&targets(1), &fake, 100 * SECOND, SECOND, std::future::pending()).await;
        assert!(matches!(outcome, Outcome::DeadlinePassed(_)));
        // At most 1 s apart (and at least 0.5 s once capped): 100 s give 100 to ~205 attempts.
        assert!((100..=205).contains(&fake.attempts(0)), "{}", fake.attempts(0));
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_lists_what_is_not_ready() {
        let fake = Scripted::new(vec![Some(Duration::ZERO), None, None]);
        let started = Instant::now();
        let outcome = wait_all(&targets(3), &fake, 90 * SECOND, SECOND, std::future::pending()).await;
        assert_eq!(started.elapsed(), 90 * SECOND);
        assert_eq!(
            outcome,
            Outcome::DeadlinePassed(
                "deadline 1m 30s passed; not ready: t1 (not yet 1); t2 (not yet 2)".into()
            )
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_signal_ends_the_wait() {
        let fake = Scripted::new(vec![None]);
        let stop = async {
            tokio::time::sleep(3 * SECOND).await;
            "SIGTERM"
        };
        let outcome = wait_all(&targets(1), &fake, 60 * SECOND, SECOND, stop).await;
        assert_eq!(outcome, Outcome::Terminated("SIGTERM while waiting; not ready: t0 (not yet 0)".into()));
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_to_wait_for_is_ready_at_once() {
        let fake = Scripted::new(vec![]);
        let outcome = wait_all(&[], &fake, SECOND, SECOND, std::future::pending()).await;
        assert_eq!(outcome, Outcome::Ready("0 targets ready in 0.0s".into()));
    }
}
