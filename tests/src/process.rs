//! A binary under test as a process: started with its stderr collected line by line, so a test
//! can wait for what it says and read all of it after it exits.

use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::eventually;

/// How long a test waits for a process to say or do something.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A running process (killed when dropped) with its stderr collected.
pub struct Spawned {
    pub child: Child,
    name: String,
    stderr: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

impl Spawned {
    /// Starts `cmd` with stdin closed and stderr piped (stdout as the command set it).
    ///
    /// # Panics
    ///
    /// When it cannot be started: the test has failed.
    pub fn start(mut cmd: Command) -> Spawned {
        let name =
            cmd.as_std().get_program().to_string_lossy().rsplit('/').next().unwrap_or_default().to_string();
        cmd.stdin(Stdio::null()).stderr(Stdio::piped()).kill_on_drop(true);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{name} does not start: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let reader = child.stderr.take().map(|pipe| {
            let sink = stderr.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(pipe).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut s = sink.lock().unwrap_or_else(PoisonError::into_inner);
                    s.push_str(&line);
                    s.push('\n');
                }
            })
        });
        Spawned { child, name, stderr, reader }
    }

    /// Everything it said on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Waits until stderr contains `needle`.
    pub async fn said(&self, needle: &str) {
        eventually(&format!("{} to say {needle:?}", self.name), PATIENCE, async || {
            self.stderr().contains(needle).then_some(())
        })
        .await;
    }

    /// Waits until stderr has a line that `find` picks something from.
    pub async fn find_in_stderr<T>(&self, what: &str, find: impl Fn(&str) -> Option<T>) -> T {
        eventually(what, PATIENCE, async || self.stderr().lines().find_map(&find)).await
    }

    /// Waits for the exit, then for the last lines of stderr.
    pub async fn exit(&mut self) -> ExitStatus {
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit; stderr:\n{}", self.name, self.stderr()))
            .unwrap_or_else(|e| panic!("cannot wait for {}: {e}", self.name));
        // The pipe closes with the process: let the reader take the last lines.
        if let Some(reader) = self.reader.take() {
            let _ = tokio::time::timeout(PATIENCE, reader).await;
        }
        status
    }

    /// The exit code (a death by signal fails the test).
    pub async fn exit_code(&mut self) -> i32 {
        let status = self.exit().await;
        status.code().unwrap_or_else(|| panic!("{} was killed by a signal: {status:?}", self.name))
    }

    /// A Prometheus metric's value (the first sample whose series starts with `name`) from
    /// the `/metrics` of a process that logged `listen=ADDR` (the latest); `None` before it said where, or
    /// when the series is not there.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        // The last address said: a worker started again on port 0 listens elsewhere.
        let addr = self.stderr().lines().rev().find_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("listen="))
                .map(|a| a.trim_matches('"').to_string())
        })?;
        let body =
            crate::client::get(&format!("http://{addr}/metrics"), Duration::from_secs(2)).await.ok()?.text();
        body.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().is_ok_and(|s| s.is_none())
    }

    /// The pid of the worker process a supervising agent runs (its one child), once there is
    /// one other than `not` (a worker just killed, whose successor is awaited).
    pub async fn worker(&self, not: Option<u32>) -> u32 {
        let pid = self.child.id().expect("a running process has a pid");
        eventually(&format!("a worker process of {}", self.name), PATIENCE, async || {
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
            let worker = children.split_whitespace().next()?.parse().ok()?;
            // Forked but not yet exec'd, it would still be the supervisor's image: its
            // environment gets the supervisor's mark at the exec.
            let environ = std::fs::read(format!("/proc/{worker}/environ")).ok()?;
            let marked = environ
                .split(|b| *b == 0)
                .any(|v| v.starts_with(agent_core::supervise::SUPERVISED.as_bytes()));
            (Some(worker) != not && marked).then_some(worker)
        })
        .await
    }

    /// Sends a signal.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = self.child.id().expect("a running process has a pid");
        signal_pid(pid, signal);
    }
}

/// Whether `pid` runs (exists and is not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
}

/// Sends `signal` to `pid`.
pub fn signal_pid(pid: impl TryInto<i32>, signal: nix::sys::signal::Signal) {
    let pid = pid.try_into().unwrap_or_else(|_| panic!("a pid"));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).expect("kill");
}
