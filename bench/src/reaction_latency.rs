//! Reaction latency of agent-wait: the time from a DataServer simulator turning GREEN to
//! agent-wait (default settings) exiting 0, over N runs. The GREEN flip comes at a random moment
//! 1-3 s into the wait, when the backoff has reached its cap, so the number is what a pod sees:
//! how long an engine stays gated after its DataServer is really up.
//!
//! Optionally the same for a shell baseline (`--baseline 'until curl -sf URL; do sleep 1; done'`
//! style, as wait-for-it and most hand-written init scripts loop).

// A benchmark reports on stdout.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use calypso::{Component, State};
use calypso_testkit::{Sim, SimConfig, eventually};
use clap::Parser;
use rand::Rng;
use tokio::process::Command;

#[derive(Debug, Parser)]
#[command(name = "reaction-latency", version)]
struct Cli {
    /// The agent-wait binary to measure (use the static release build).
    #[arg(long)]
    agent_wait: PathBuf,
    /// Runs per subject.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Also measure a shell loop: `until curl -sf URL >/dev/null; do sleep 1; done`.
    #[arg(long)]
    baseline: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut subjects = vec![Subject::AgentWait(cli.agent_wait.clone())];
    if cli.baseline {
        subjects.push(Subject::ShellLoop);
    }
    println!("reaction latency: DataServer sim turns GREEN -> waiter exits, {} runs each", cli.runs);
    for subject in &subjects {
        let name = subject.name();
        let mut samples = Vec::with_capacity(cli.runs);
        for _ in 0..cli.runs {
            match run_once(subject).await {
                Ok(d) => samples.push(d),
                Err(e) => {
                    eprintln!("reaction-latency: {name}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        samples.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        println!(
            "  {name:<26} median {:>6.0} ms   p90 {:>6.0} ms   min {:>6.0} ms   max {:>6.0} ms",
            ms(pick(0.5)),
            ms(pick(0.9)),
            ms(samples[0]),
            ms(samples[samples.len() - 1])
        );
    }
    ExitCode::SUCCESS
}

/// What waits for the DataServer.
enum Subject {
    /// agent-wait with its default settings.
    AgentWait(PathBuf),
    /// The loop most init scripts use.
    ShellLoop,
}

impl Subject {
    fn name(&self) -> &'static str {
        match self {
            Subject::AgentWait(_) => "agent-wait (defaults)",
            Subject::ShellLoop => "sh loop, curl + sleep 1",
        }
    }

    fn command(&self, health_url: &str) -> Command {
        match self {
            Subject::AgentWait(path) => {
                let mut c = Command::new(path);
                c.arg(health_url.replacen("http://", "calypso://", 1));
                c
            }
            Subject::ShellLoop => {
                let mut c = Command::new("sh");
                c.args(["-c", &format!("until curl -sf {health_url} >/dev/null; do sleep 1; done")]);
                c
            }
        }
    }
}

async fn run_once(subject: &Subject) -> Result<Duration, String> {
    let sim = Sim::start(SimConfig::new(Component::DataServer)).await.map_err(|e| format!("sim: {e}"))?;
    let control = sim.control();
    control.set_sensor("Calypso/DatabaseConnection", State::Red, Some(0.0), Some("db down"));
    let mut child = subject
        .command(&sim.health_url())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the waiter: {e}"))?;
    eventually("the first check", Duration::from_secs(10), async || (control.received() > 0).then_some(()))
        .await;
    let phase = Duration::from_millis(rand::rng().random_range(1000..3000));
    tokio::time::sleep(phase).await;
    control.set_sensor("Calypso/DatabaseConnection", State::Green, Some(1.0), None);
    let green = Instant::now();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .map_err(|_| "the waiter did not exit within 30s".to_string())?
        .map_err(|e| e.to_string())?;
    let latency = green.elapsed();
    sim.shutdown().await;
    if !status.success() {
        return Err(format!("the waiter exited with {status}"));
    }
    Ok(latency)
}
