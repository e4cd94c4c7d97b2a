//! The wait itself: every target checked in parallel, each with its own backoff, until all are
//! ready, the deadline passes or a signal arrives.

use std::future::Future;
use std::time::Duration;

use agent_core::retry::backoff;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, sleep_until};

use crate::check::Checker;
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
    checker: &Checker,
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
    for (i, t) in targets.iter().enumerate() {
        tracing::debug!(dependency = %t.label, "checking");
        probes.spawn(probe(i, t.kind.clone(), checker.clone(), max_interval, tx.clone()));
    }
    drop(tx);
    tokio::pin!(stop);

    while !progress.all_ready() {
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
            Some((i, result)) = rx.recv() => {
                let now = Instant::now();
                let note = match result {
                    Ok(()) => Some(progress.ready(i, now)),
                    Err(reason) => progress.not_ready(i, reason, now),
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

/// Checks one target until it is ready, pausing between attempts by the backoff.
async fn probe(
    i: usize,
    kind: Kind,
    checker: Checker,
    max_interval: Duration,
    tx: mpsc::UnboundedSender<(usize, Result<(), String>)>,
) {
    let mut delays = backoff(MIN_INTERVAL, max_interval);
    loop {
        let result = checker.check(&kind).await;
        let ready = result.is_ok();
        if tx.send((i, result)).is_err() || ready {
            return;
        }
        sleep(delays.next().unwrap_or(max_interval)).await;
    }
}
