//! Stopping on SIGTERM or SIGINT without leaving anything half-done.
//!
//! agent-init usually runs as PID 1, where the kernel drops a signal whose disposition is the
//! default: without a handler, SIGTERM would be ignored and the kubelet would wait out the grace
//! period. So the handlers are installed first thing ([`install`]). What a stop request then
//! does depends on how far the pass (render and write) has got, which the [`Gate`] tracks:
//!
//! - still reading and rendering (nothing of ours on disk): stop at once ([`Verdict::Now`]);
//! - staging new files under temporary names: the pass stops itself before the next file,
//!   removes what it staged and no file has changed ([`Verdict::AtNextCheckpoint`]);
//! - renaming them into place (the commit): the renames are finished first
//!   ([`Verdict::AfterCommit`]). The batch is completed rather than cut short because a half-done
//!   batch is the one outcome that must not happen — it would mix files of two renderings — and
//!   finishing it takes a few renames and one directory fsync on a local volume.
//!
//! Unlike `agent_core::shutdown` (a graceful drain bounded by a grace period, then a second
//! signal aborts), a second signal here changes nothing: the longest wait is one file's write
//! and fsync, and aborting the renames half-way is exactly what must not happen.

use std::sync::{Arc, Mutex, PoisonError};

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::output::Checkpoint;

/// A stop signal, by name (`SIGTERM`).
pub type Signal = &'static str;

/// The stop signals as they arrive.
pub type Stops = mpsc::UnboundedReceiver<Signal>;

/// Installs the SIGTERM and SIGINT handlers and forwards each signal by name. Must be called in
/// a tokio runtime's context; signals that arrive before the runtime runs are kept.
pub fn install() -> std::io::Result<Stops> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                Some(()) = term.recv() => "SIGTERM",
                Some(()) = int.recv() => "SIGINT",
                else => return,
            };
            if tx.send(name).is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// The next stop signal; never resolves if no more can come.
pub async fn next(stops: &mut Stops) -> Signal {
    match stops.recv().await {
        Some(signal) => signal,
        None => std::future::pending().await,
    }
}

/// What a stop request means for the pass under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing has been written: stop now.
    Now,
    /// Files are being staged: the pass stops at its next checkpoint, having removed them.
    AtNextCheckpoint,
    /// The files are being (or have been) renamed into place: the pass finishes first.
    AfterCommit,
}

/// How a [`guarded`] pass ended.
#[derive(Debug)]
pub enum Guarded<T> {
    /// It ran to its end; `stop` is the signal that came meanwhile, if any (the pass may then
    /// have stopped itself at a checkpoint).
    Finished { result: T, stop: Option<Signal> },
    /// A signal came before it began writing: it is abandoned. Its thread ends with the process;
    /// the gate keeps it from starting to write meanwhile.
    Abandoned(Signal),
    /// The pass panicked.
    Died(String),
}

/// Runs a pass off the runtime's threads (it reads files, which may block: a FIFO, a hung
/// volume) while listening for stop signals, which it hands to the `gate`: see [`Verdict`].
/// Signals after the first are left for the caller.
pub async fn guarded<T: Send + 'static>(
    gate: &Arc<Gate>,
    stops: &mut Stops,
    pass: impl FnOnce(&Gate) -> T + Send + 'static,
) -> Guarded<T> {
    gate.begin();
    let task = {
        let gate = gate.clone();
        tokio::task::spawn_blocking(move || pass(&gate))
    };
    tokio::pin!(task);
    let mut stop = None;
    let joined = tokio::select! {
        joined = &mut task => joined,
        signal = next(stops) => {
            match gate.stop(signal) {
                Verdict::Now => return Guarded::Abandoned(signal),
                Verdict::AtNextCheckpoint => {
                    tracing::warn!("{signal}: removing the files staged so far, then stopping");
                }
                Verdict::AfterCommit => {
                    tracing::warn!("{signal}: the files are being renamed into place; finishing first");
                }
            }
            stop = Some(signal);
            task.await
        }
    };
    match joined {
        Ok(result) => Guarded::Finished { result, stop },
        Err(e) => Guarded::Died(e.to_string()),
    }
}

/// How far the pass has got, and whether a stop was requested. Shared by the pass (as its
/// [`Checkpoint`]) and the signal side; a stop request is final.
#[derive(Debug, Default)]
pub struct Gate {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    phase: Phase,
    stop: Option<Signal>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading inputs and rendering in memory; nothing of ours on disk.
    #[default]
    Reading,
    Staging,
    Committing,
    /// The renames are done; the pass is only reporting.
    Written,
}

impl Gate {
    /// Asks the pass to stop. From now on no pass starts writing.
    pub fn stop(&self, signal: Signal) -> Verdict {
        let mut state = self.lock();
        state.stop.get_or_insert(signal);
        match state.phase {
            Phase::Reading => Verdict::Now,
            Phase::Staging => Verdict::AtNextCheckpoint,
            Phase::Committing | Phase::Written => Verdict::AfterCommit,
        }
    }

    /// A new pass begins: nothing written yet.
    pub fn begin(&self) {
        self.lock().phase = Phase::Reading;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is two plain fields, consistent whatever a panicking holder did.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves on to `phase` unless a stop was asked for.
    fn enter(&self, phase: Phase) -> Result<(), Signal> {
        let mut state = self.lock();
        match state.stop {
            Some(signal) => Err(signal),
            None => {
                state.phase = phase;
                Ok(())
            }
        }
    }
}

impl Checkpoint for Gate {
    fn proceed(&self) -> Result<(), Signal> {
        self.enter(Phase::Staging)
    }

    fn commit(&self) -> Result<(), Signal> {
        self.enter(Phase::Committing)
    }

    fn done(&self) {
        let mut state = self.lock();
        state.phase = if state.phase == Phase::Committing { Phase::Written } else { Phase::Reading };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_follows_the_phase() {
        let gate = Gate::default();
        assert_eq!(gate.stop("SIGTERM"), Verdict::Now);
        assert_eq!(gate.proceed(), Err("SIGTERM"), "no writing starts after a stop");

        let gate = Gate::default();
        gate.proceed().expect("staging");
        assert_eq!(gate.stop("SIGINT"), Verdict::AtNextCheckpoint);
        assert_eq!(gate.stop("SIGTERM"), Verdict::AtNextCheckpoint);
        assert_eq!(gate.proceed(), Err("SIGINT"), "the first signal is the one reported");
        assert_eq!(gate.commit(), Err("SIGINT"));

        let gate = Gate::default();
        gate.proceed().expect("staging");
        gate.commit().expect("committing");
        assert_eq!(gate.stop("SIGTERM"), Verdict::AfterCommit);
        gate.done();
        assert_eq!(gate.stop("SIGTERM"), Verdict::AfterCommit, "written: the pass is finishing");
        gate.begin();
        assert_eq!(gate.proceed(), Err("SIGTERM"), "the next pass does not start");

        // A write that was abandoned or failed while staging changed nothing.
        let gate = Gate::default();
        gate.proceed().expect("staging");
        gate.done();
        assert_eq!(gate.stop("SIGTERM"), Verdict::Now);
    }

    /// A signal while the pass reads abandons it at once, without waiting for it.
    #[tokio::test]
    async fn guarded_abandons_a_pass_that_has_not_written() {
        let gate = Arc::new(Gate::default());
        let (stop, mut stops) = mpsc::unbounded_channel();
        let (reading_tx, reading) = tokio::sync::oneshot::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let pass = move |gate: &Gate| {
            let _ = reading_tx.send(());
            let _ = released.recv(); // a read that blocks (a FIFO, a hung volume)
            gate.proceed()
        };
        let run = guarded(&gate, &mut stops, pass);
        let signal = async {
            reading.await.expect("the pass runs");
            stop.send("SIGTERM").expect("send");
        };
        let (ended, ()) = tokio::join!(run, signal);
        assert!(matches!(ended, Guarded::Abandoned("SIGTERM")), "{ended:?}");
        assert_eq!(gate.proceed(), Err("SIGTERM"), "the abandoned pass cannot start writing");
        drop(release);
    }

    /// A signal while the pass stages lets it stop itself at its next checkpoint.
    #[tokio::test]
    async fn guarded_waits_for_a_pass_that_stages() {
        let gate = Arc::new(Gate::default());
        let (stop, mut stops) = mpsc::unbounded_channel();
        let (staging_tx, staging) = tokio::sync::oneshot::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let pass = move |gate: &Gate| {
            gate.proceed().expect("nothing stopped yet");
            let _ = staging_tx.send(());
            let _ = released.recv();
            gate.commit()
        };
        let run = guarded(&gate, &mut stops, pass);
        let signal = async {
            staging.await.expect("the pass stages");
            stop.send("SIGTERM").expect("send");
            // The pass goes on once the gate has the stop request; it must be waited for.
            while gate.lock().stop.is_none() {
                tokio::task::yield_now().await;
            }
            release.send(()).expect("release");
        };
        let (ended, ()) = tokio::join!(run, signal);
        match ended {
            Guarded::Finished { result, stop } => {
                assert_eq!(result, Err("SIGTERM"), "the pass stops at its commit checkpoint");
                assert_eq!(stop, Some("SIGTERM"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn passes_repeat_until_stopped() {
        let gate = Gate::default();
        for _ in 0..2 {
            gate.begin();
            gate.proceed().expect("staging");
            gate.commit().expect("committing");
            gate.done();
        }
        gate.begin();
        assert_eq!(gate.stop("SIGTERM"), Verdict::Now, "between passes nothing is being written");
    }
}
