//! The signals of a wait that may end in an exec.
//!
//! With ordinary handlers, a SIGTERM that arrives after the last target is ready and before the
//! exec is caught and then forgotten: the handler ran, the exec replaced it, and the command
//! starts as if nothing had been asked — the kubelet then waits out the whole grace period for
//! a container that never heard of it. So SIGTERM and SIGINT are blocked in every thread (from
//! [`Gate::install`], before any other thread exists: threads inherit the mask) and taken by one
//! thread with `sigwait`. That thread is also the one that execs: a stop signal taken before the
//! exec request stops agent-wait (exit 143). Just before `execve` the thread unblocks them (the
//! command inherits the exec'ing thread's mask, and must hear the kubelet); with no handler
//! installed, one arriving in that last moment ends agent-wait as the signal's default action —
//! except as PID 1, where the kernel drops a signal that has no handler, as it would for the
//! command a microsecond later, before it has installed its own.
//!
//! The exec request is a SIGURG sent to this process: it numbers above SIGTERM and SIGINT, and
//! Linux hands pending signals over lowest number first, so a stop signal already pending is
//! always seen before the request. SIGURG is ignored by default, so one from outside changes
//! nothing: without a request it is dropped.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::mpsc;

use nix::sys::signal::{SigSet, Signal, kill};
use nix::unistd::getpid;
use tokio::sync::watch;

const STOP: [Signal; 2] = [Signal::SIGTERM, Signal::SIGINT];
const EXEC_REQUEST: Signal = Signal::SIGURG;

/// How an exec that returned ended.
#[derive(Debug)]
pub enum NotExecuted {
    /// A stop signal arrived before the exec; its name.
    Stopped(&'static str),
    /// `execve` failed.
    Failed(io::Error),
}

/// The signal thread's handles.
pub struct Gate {
    stopped: watch::Receiver<Option<&'static str>>,
    requests: mpsc::Sender<Command>,
    outcomes: mpsc::Receiver<NotExecuted>,
}

impl Gate {
    /// Blocks the stop signals and the exec request in this thread and starts the thread that
    /// takes them. Call it before any other thread is started.
    pub fn install() -> io::Result<Gate> {
        let mut set = SigSet::empty();
        for s in STOP.into_iter().chain([EXEC_REQUEST]) {
            set.add(s);
        }
        set.thread_block().map_err(io::Error::from)?;
        let (stop_tx, stopped) = watch::channel(None);
        let (requests, request_rx) = mpsc::channel::<Command>();
        let (outcome_tx, outcomes) = mpsc::channel();
        std::thread::Builder::new().name("signals".into()).spawn(move || {
            let mut first = None;
            loop {
                let Ok(signal) = set.wait() else { continue };
                if signal != EXEC_REQUEST {
                    first = first.or(Some(signal.as_str()));
                    let _ = stop_tx.send(first);
                    continue;
                }
                let Ok(mut command) = request_rx.try_recv() else { continue };
                // A stop signal taken before the request wins.
                let outcome = match first {
                    Some(name) => NotExecuted::Stopped(name),
                    None => {
                        let _ = set.thread_unblock();
                        let failed = command.exec();
                        // Blocked again: a stop signal now must not cut off the message saying
                        // why the command did not start.
                        let _ = set.thread_block();
                        NotExecuted::Failed(failed)
                    }
                };
                let _ = outcome_tx.send(outcome);
            }
        })?;
        Ok(Gate { stopped, requests, outcomes })
    }

    /// Resolves with the name of the first SIGTERM or SIGINT.
    pub async fn first(&self) -> &'static str {
        let mut stopped = self.stopped.clone();
        if let Ok(name) = stopped.wait_for(Option::is_some).await
            && let Some(name) = *name
        {
            return name;
        }
        // The signal thread never ends; were it gone, no signal could be taken.
        std::future::pending().await
    }

    /// Replaces this process with `command`, unless a stop signal came first. Returns only when
    /// it did not.
    pub fn exec(self, command: Command) -> NotExecuted {
        let gone = || NotExecuted::Failed(io::Error::other("the signal thread is gone"));
        if self.requests.send(command).is_err() {
            return gone();
        }
        if let Err(e) = kill(getpid(), EXEC_REQUEST) {
            return NotExecuted::Failed(e.into());
        }
        self.outcomes.recv().unwrap_or_else(|_| gone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_numbers_above_the_stop_signals() {
        // Linux hands pending signals over lowest number first: a pending stop signal is seen
        // before the exec request.
        assert!(STOP.iter().all(|s| (*s as i32) < EXEC_REQUEST as i32));
    }
}
