//! A sidecar that must not end unless it is asked to. The release build aborts on a panic (a bug),
//! and at a container's memory limit the kernel's OOM killer ends its largest process; for a
//! native sidecar either would be a container restart, and a sidecar's restart takes the whole
//! pod out of its Service. So the agent runs as two processes: the one the kubelet started (PID 1
//! in the container) starts the same binary again as its child and does nothing else. It waits,
//! hands every signal on, and starts the child again, with a backoff, whenever it ends other than
//! after SIGTERM or SIGINT. Then it exits with the child's exit code.
//!
//! The child is a fresh `exec` of `/proc/self/exe` (the running file, even if the image's copy
//! were replaced), so it reads its settings, Secrets and checkpoints anew, exactly as after a
//! container restart, but without one. It asks the kernel to SIGKILL it when the supervisor dies
//! (`PR_SET_PDEATHSIG`): in a container a SIGKILL of PID 1 ends every process anyway, elsewhere
//! nothing else would stop an orphaned shipper.
//!
//! The supervisor is one thread that blocks the signals it cares about and takes them with
//! `sigwait`: no handlers, no runtime, no allocation worth the name while the child runs. It
//! hands on SIGTERM and SIGINT, the only ones the agent acts on; SIGHUP, SIGQUIT, SIGUSR1 and
//! SIGUSR2 it ignores (handed on, each would end the worker). The child has a process group of
//! its own, so a signal sent to the whole group (a terminal's Ctrl-C, `kill -- -PGID`) reaches
//! it once, through the supervisor, not twice — which it would take for a second, "stop at
//! once" signal.

use std::ffi::OsString;
use std::io::ErrorKind;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, alarm, getpid, getppid};

use crate::{Exit, termination};

/// Set in the child's environment: `<supervisor pid> <restarts so far>`. Outside every agent's
/// prefix, so no agent takes it for a mistyped setting.
pub const SUPERVISED: &str = "AGENT_SUPERVISED";

/// The longest pause before starting a child again. A liveness probe on the child's port fails
/// meanwhile; the deploy manifests allow three failed probes 20 s apart, so this stays well below.
const MAX_BACKOFF: Duration = Duration::from_secs(16);

/// A child that ran this long is taken as healthy: the next death starts from the shortest pause.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// Times this process's predecessors died and were started again, for `/metrics`.
static RESTARTS: AtomicU64 = AtomicU64::new(0);

/// What this process is to do after [`start`].
#[derive(Debug)]
pub enum Role {
    /// The work: this is the child (or, when no child can be started, the only process).
    Work,
    /// This was the supervisor and its child ended after a stop signal: exit with this.
    Exit(ExitCode),
}

/// Times a shipper before this one died and was started again (0 in the first).
pub fn restarts() -> u64 {
    RESTARTS.load(Ordering::Relaxed)
}

/// Becomes the supervisor (returning only when it is time to exit) or, in the child, arranges to
/// die with the supervisor and returns [`Role::Work`]. Must be called before any thread starts:
/// the blocked signal mask is the calling thread's, and threads inherit it.
pub fn start(name: &str, termination: Option<&Path>) -> Role {
    let marker = std::env::var(SUPERVISED).ok().as_deref().and_then(parse_marker);
    if let Some((supervisor, restarts)) = marker.filter(|(pid, _)| is_our_worker(*pid)) {
        RESTARTS.store(restarts, Ordering::Relaxed);
        // The supervisor's blocked signals are inherited (std's spawn does not reset the mask
        // on every path): the child must get them.
        if let Err(e) = forwarded().thread_unblock() {
            tracing::error!("cannot unblock signals ({e}): stopping");
            return Role::Exit(ExitCode::from(Exit::Software.code()));
        }
        // Asked before the check: if the supervisor died in between, the check sees it.
        if let Err(e) = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL) {
            tracing::warn!("cannot ask to end with the supervisor (prctl: {e}): an orphan would run on");
        }
        if getppid() != supervisor {
            let message = format!(
                "the supervisor (pid {supervisor} in {SUPERVISED}) that started this process is gone: stopping (if {SUPERVISED} was set by hand, remove it)"
            );
            tracing::error!("{message}");
            termination::write(termination, &message);
            return Role::Exit(ExitCode::from(128 + Signal::SIGKILL as u8));
        }
        return Role::Work;
    }
    if std::env::var_os(SUPERVISED).is_some() {
        tracing::warn!("{SUPERVISED} is set, but not by a supervisor of this process: ignored");
    }
    let blocked = forwarded();
    if let Err(e) = blocked.thread_block() {
        tracing::warn!("cannot block signals to supervise ({e}): {name} runs unsupervised, a panic ends it");
        return Role::Work;
    }
    Supervisor { name, termination, blocked, restarts: 0 }.run()
}

/// `<pid> <restarts>`, or `None` for anything else (a value someone set by hand is ignored).
fn parse_marker(value: &str) -> Option<(Pid, u64)> {
    let (pid, restarts) = value.split_once(' ')?;
    let pid: i32 = pid.parse().ok()?;
    (pid > 0).then_some(())?;
    Some((Pid::from_raw(pid), restarts.parse().ok()?))
}

/// Whether a marker naming `supervisor` can be this process's: a worker is never PID 1 (the
/// marker was copied into a container's environment by hand), and when its parent is the one
/// named, that parent runs this same binary. A parent that is not the one named is a
/// supervisor that died (the worker then stops), or a marker set by hand outside a container.
fn is_our_worker(supervisor: Pid) -> bool {
    if getpid() == Pid::from_raw(1) {
        return false;
    }
    if getppid() != supervisor {
        return true;
    }
    let file = |path: String| std::fs::metadata(path).map(|m| (m.dev(), m.ino())).ok();
    let ours = file("/proc/self/exe".into());
    ours.is_some() && ours == file(format!("/proc/{supervisor}/exe"))
}

/// The signals the supervisor takes: those it hands on, the child's end, and its own timer.
fn forwarded() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGCHLD,
        Signal::SIGALRM,
    ] {
        set.add(s);
    }
    set
}

/// The signals after which the child's end is the agent's end.
fn is_stop(signal: Signal) -> bool {
    matches!(signal, Signal::SIGTERM | Signal::SIGINT)
}

struct Supervisor<'a> {
    name: &'a str,
    termination: Option<&'a Path>,
    blocked: SigSet,
    restarts: u64,
}

impl Supervisor<'_> {
    fn run(mut self) -> Role {
        let mut backoff = Duration::from_secs(1);
        let mut first = true;
        loop {
            let started = Instant::now();
            let why = match self.spawn() {
                Ok(child) => {
                    let (status, stop) = self.watch(child);
                    if let Some(signal) = stop {
                        tracing::debug!(?signal, ?status, "the child ended after a stop signal");
                        return Role::Exit(exit_code(status));
                    }
                    if started.elapsed() >= HEALTHY_AFTER {
                        backoff = Duration::from_secs(1);
                    }
                    self.restarts += 1;
                    format!("its worker process ended: {}", death(status))
                }
                // No `/proc`, or no running the binary: this will not change.
                Err(e) if first && matches!(e.kind(), ErrorKind::NotFound | ErrorKind::PermissionDenied) => {
                    return self.work_here(&e);
                }
                // Out of processes or memory for a moment (EAGAIN, ENOMEM): try again.
                Err(e) => format!("its worker process could not be started ({e})"),
            };
            first = false;
            tracing::error!(
                restarts = self.restarts,
                "{}: {why}; starting it again in {} s",
                self.name,
                backoff.as_secs()
            );
            if let Some(signal) = self.pause(backoff) {
                let message = format!("{signal} while {} was starting again: {why}", self.name);
                tracing::info!("{message}: stopping");
                termination::write(self.termination, &message);
                return Role::Exit(ExitCode::SUCCESS);
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            // The worker that died may have written why; the next one starts with a clean slate,
            // so a clean end later is not reported with an old reason.
            termination::clear(self.termination);
        }
    }

    fn spawn(&self) -> std::io::Result<Pid> {
        let mut args = std::env::args_os();
        let arg0 = args.next().unwrap_or_else(|| OsString::from(self.name));
        let child = std::process::Command::new("/proc/self/exe")
            .arg0(arg0)
            .args(args)
            .env(SUPERVISED, format!("{} {}", getpid(), self.restarts))
            .process_group(0)
            .spawn()?;
        Ok(Pid::from_raw(i32::try_from(child.id()).map_err(std::io::Error::other)?))
    }

    /// No child can be started (no `/proc`, no process left): the agent works in this process.
    fn work_here(&self, e: &std::io::Error) -> Role {
        tracing::warn!(
            "cannot start {}'s worker process (/proc/self/exe: {e}): working in the supervisor itself, so a panic or an OOM kill now ends the container",
            self.name
        );
        RESTARTS.store(self.restarts, Ordering::Relaxed);
        if let Err(e) = self.blocked.thread_unblock() {
            tracing::warn!("cannot unblock signals ({e})");
        }
        Role::Work
    }

    /// Hands signals on until `child` ends; its status, and the stop signal that ended it if one did.
    fn watch(&self, child: Pid) -> (WaitStatus, Option<Signal>) {
        let mut stop = None;
        loop {
            match self.blocked.wait() {
                Ok(Signal::SIGCHLD) => {
                    if let Some(status) = reap(child) {
                        return (status, stop);
                    }
                }
                Ok(Signal::SIGALRM) => {}
                Ok(signal) if is_stop(signal) => {
                    stop = Some(signal);
                    // ESRCH: it is ending anyway; SIGCHLD follows.
                    let _ = kill(child, signal);
                }
                Ok(signal) => tracing::info!("{signal} ignored: {} stops on SIGTERM or SIGINT", self.name),
                Err(e) => tracing::debug!("sigwait: {e}"),
            }
        }
    }

    /// Waits `delay`; the stop signal that cut it short, if one did.
    fn pause(&self, delay: Duration) -> Option<Signal> {
        // The deadline before the alarm: an alarm that still comes early is set again for what
        // is left, never lost.
        let deadline = Instant::now() + delay;
        let arm = |left: Duration| {
            alarm::set(u32::try_from(left.as_secs_f64().ceil() as u64).unwrap_or(u32::MAX).max(1))
        };
        arm(delay);
        let stop = loop {
            match self.blocked.wait() {
                Ok(Signal::SIGALRM) => {
                    match deadline.checked_duration_since(Instant::now()).filter(|l| !l.is_zero()) {
                        None => break None,
                        Some(left) => {
                            arm(left);
                        }
                    }
                }
                Ok(signal) if is_stop(signal) => break Some(signal),
                Ok(Signal::SIGCHLD) => {
                    reap(Pid::from_raw(0));
                }
                Ok(_) => {}
                Err(e) => tracing::debug!("sigwait: {e}"),
            }
        };
        alarm::cancel();
        stop
    }
}

/// Reaps every ended process (PID 1 inherits orphans); `child`'s status if it was among them.
fn reap(child: Pid) -> Option<WaitStatus> {
    let mut found = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return found,
            Ok(status) if status.pid() == Some(child) && is_end(status) => found = Some(status),
            Ok(_) => {}
            Err(e) => {
                tracing::debug!("waitpid: {e}");
                return found;
            }
        }
    }
}

fn is_end(status: WaitStatus) -> bool {
    matches!(status, WaitStatus::Exited(..) | WaitStatus::Signaled(..))
}

/// The supervisor's exit code for the child's end: its code, or 128 + the signal, as a shell says.
fn exit_code(status: WaitStatus) -> ExitCode {
    match status {
        WaitStatus::Exited(_, code) => ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX)),
        WaitStatus::Signaled(_, signal, _) => ExitCode::from(128u8.saturating_add(signal as u8)),
        _ => ExitCode::FAILURE,
    }
}

/// How a child ended, said for an operator.
fn death(status: WaitStatus) -> String {
    match status {
        WaitStatus::Signaled(_, Signal::SIGABRT, _) => {
            "SIGABRT (a panic, its message is above, or an abort)".to_string()
        }
        WaitStatus::Signaled(_, Signal::SIGKILL, _) => {
            "SIGKILL (the kernel's OOM killer at the container's memory limit, or a kill -9)".to_string()
        }
        WaitStatus::Signaled(_, signal, _) => format!("{signal}"),
        WaitStatus::Exited(_, code) => format!("exit code {code} (its log says why)"),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_a_pid_and_a_count_or_nothing() {
        assert_eq!(parse_marker("42 3"), Some((Pid::from_raw(42), 3)));
        for bad in ["", "42", "x 3", "42 x", "42 3 4", "42  3", "0 0", "-1 3"] {
            assert_eq!(parse_marker(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_death_by_signal_exits_as_a_shell_says() {
        let pid = Pid::from_raw(7);
        assert_eq!(exit_code(WaitStatus::Signaled(pid, Signal::SIGTERM, false)), ExitCode::from(143));
        assert_eq!(exit_code(WaitStatus::Exited(pid, 0)), ExitCode::SUCCESS);
        assert_eq!(exit_code(WaitStatus::Exited(pid, 70)), ExitCode::from(70));
        assert!(death(WaitStatus::Signaled(pid, Signal::SIGABRT, true)).contains("panic"));
        assert!(death(WaitStatus::Signaled(pid, Signal::SIGKILL, false)).contains("OOM"));
    }
}
