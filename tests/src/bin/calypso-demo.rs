//! `calypso-demo`: the agents working together against simulated Calypso servers, as real
//! processes on this machine — no cluster, no container engine. Each server's "pod" is
//! `agent-wait --component X -- calypso-sim --component X ...`: agent-wait holds the server back
//! until its dependencies are healthy, then execs it, exactly as an init container gate would.
//! The demo prints one timeline of what every process says and of each server's health as seen
//! from outside, then a DataServer failover, then a summary of who waited for what.
//!
//! Run it with `./demo` (which builds the binaries first).

// This binary's output is its stdout timeline.
#![allow(clippy::print_stdout)]

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use calypso::{Component, State};
use calypso_testkit::client::{self, Method};
use clap::Parser;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Runs Event, Auth, Data and Engine server simulators, each gated by agent-wait in component
/// mode, and prints a timeline of who waited for what; then fails the DataServer over.
#[derive(Debug, Parser)]
#[command(name = "calypso-demo", version)]
struct Cli {
    /// Directory holding the agent-wait and calypso-sim binaries [default: this binary's].
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// How long the DataServer takes to start (RED "starting" until then).
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    dataserver_startup: Duration,
    /// Skip the DataServer failover at the end.
    #[arg(long)]
    no_failover: bool,
}

/// The servers of the demo, in the order they are started (all at once; the gates order them).
const SERVERS: [(Component, &str); 4] = [
    (Component::EventServer, "1s"),
    (Component::AuthServer, "1s"),
    (Component::DataServer, ""), // from --dataserver-startup
    (Component::EngineServer, "1s"),
];

const PATIENCE: Duration = Duration::from_secs(60);

struct Line {
    who: String,
    text: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("calypso-demo: {e}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    let bin_dir = match cli.bin_dir {
        Some(d) => d,
        None => std::env::current_exe()
            .map_err(|e| format!("cannot find this binary: {e}"))?
            .parent()
            .map(Path::to_path_buf)
            .ok_or("this binary has no directory")?,
    };
    let agent_wait = bin_dir.join("agent-wait");
    let sim = bin_dir.join("calypso-sim");
    for b in [&agent_wait, &sim] {
        if !b.exists() {
            return Err(format!(
                "{} is missing: build it first (cargo build --release -p agent-wait -p calypso-testkit)",
                b.display()
            ));
        }
    }

    let ports = free_ports(SERVERS.len())?;
    let url = |i: usize| format!("http://127.0.0.1:{}/health", ports[i]);
    let start = Instant::now();
    let (tx, mut rx) = mpsc::unbounded_channel::<Line>();

    println!("calypso-demo: 4 Calypso servers, each gated by agent-wait in component mode; all start now.");
    println!("  startup order enforced: EventServer -> AuthServer -> DataServer -> EngineServer\n");
    let mut children = Vec::new();
    for (i, (component, startup)) in SERVERS.iter().enumerate() {
        let startup = if startup.is_empty() {
            humantime::format_duration(cli.dataserver_startup).to_string()
        } else {
            startup.to_string()
        };
        let name = component.name().to_ascii_lowercase();
        let mut cmd = Command::new(&agent_wait);
        cmd.args(["--component", component.name(), "--"])
            .arg(&sim)
            .args(["--component", component.name(), "--listen", &format!("127.0.0.1:{}", ports[i])])
            .args(["--startup-delay", &startup]);
        if *component == Component::EngineServer {
            cmd.args(["--upstream", &url(2), "--upstream-interval", "200ms"]);
        }
        for (j, (dep, _)) in SERVERS.iter().enumerate() {
            cmd.env(format!("CALYPSO_{}_HEALTH_URL", dep.env_key()), url(j));
        }
        cmd.env("AGENT_LOG", "info");
        children.push(spawn(cmd, &name, &tx)?);
    }
    let (watch_tx, mut watch_rx) = mpsc::unbounded_channel::<(usize, String)>();
    for i in 0..SERVERS.len() {
        tokio::spawn(watch(i, url(i), watch_tx.clone()));
    }

    // Print everything until the EngineServer is GREEN, remembering when each server was.
    let mut green_at: [Option<Duration>; 4] = [None; 4];
    let mut failover = if cli.no_failover { Phase::Done } else { Phase::Pending };
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        tokio::select! {
            Some(line) = rx.recv() => print(start, &line.who, &line.text),
            Some((i, state)) = watch_rx.recv() => {
                let who = format!("{} health", SERVERS[i].0.name().to_ascii_lowercase());
                print(start, &who, &state);
                let green = state.starts_with("GREEN");
                if green && green_at[i].is_none() {
                    green_at[i] = Some(start.elapsed());
                }
                match (&failover, i, green) {
                    (Phase::Pending, 3, true) => {
                        failover = Phase::DataServerDown;
                        say(start, "failover: the DataServer loses its database");
                        control(&ports[2], "state=RED&value=0&details=database%20failover%20in%20progress").await?;
                    }
                    (Phase::DataServerDown, 3, false) => {
                        failover = Phase::Recovering;
                        say(start, "failover: the engine is disconnected but alive (not restarted); the database returns in 2s");
                        let port = ports[2];
                        tokio::spawn(async move {
                            // Pacing for the reader, not a wait for anything.
                            tokio::time::sleep(Duration::from_secs(2)).await;
                            if let Err(e) = control(&port, "state=GREEN&value=1").await {
                                eprintln!("calypso-demo: cannot end the failover: {e}");
                            }
                        });
                    }
                    (Phase::Recovering, 3, true) => failover = Phase::Done,
                    _ => {}
                }
                if failover == Phase::Done && green_at[3].is_some() && green {
                    break;
                }
            }
            _ = tokio::time::sleep_until(deadline) => return Err(format!("not done within {PATIENCE:?}")),
        }
    }

    println!("\nsummary (seconds after start, when each server first answered GREEN):");
    for (i, (component, _)) in SERVERS.iter().enumerate() {
        let waited: Vec<&str> = component.dependencies().iter().map(|d| d.name()).collect();
        let waited = if waited.is_empty() { "nothing".to_string() } else { waited.join(", ") };
        let at = green_at[i].map_or("never".to_string(), |d| format!("{:.1}s", d.as_secs_f64()));
        println!("  {:<13} GREEN at {at:>6}   waited for {waited}", component.name());
    }
    for child in &mut children {
        stop(child).await;
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Pending,
    DataServerDown,
    Recovering,
    Done,
}

fn say(start: Instant, text: &str) {
    print(start, "demo", &format!(">>> {text}"));
}

fn print(start: Instant, who: &str, text: &str) {
    println!("[{:>5.1}s] {who:<20} | {text}", start.elapsed().as_secs_f64());
}

/// Sets the DataServer's database sensor through the simulator's control API.
async fn control(port: &u16, query: &str) -> Result<(), String> {
    let url = format!("http://127.0.0.1:{port}/sim/sensor/Calypso/DatabaseConnection?{query}");
    let resp = client::request(Method::PUT, &url, Duration::from_secs(2)).await.map_err(|e| e.to_string())?;
    if resp.status == 200 {
        Ok(())
    } else {
        Err(format!("control API answered {}: {}", resp.status, resp.text()))
    }
}

/// Polls one server's health every 100 ms and reports each change of what it answers.
async fn watch(i: usize, url: String, tx: mpsc::UnboundedSender<(usize, String)>) {
    let mut last = String::new();
    loop {
        let now = match client::get(&url, Duration::from_millis(500)).await {
            Err(e) if e.is_refused() => "not listening".to_string(),
            Err(e) => format!("unreachable: {e}"),
            Ok(resp) => match resp.health() {
                Ok(r) if r.state == State::Green => "GREEN".to_string(),
                Ok(r) => r.summary().trim_start_matches("state ").to_string(),
                Err(e) => format!("bad answer: {e}"),
            },
        };
        if now != last {
            if tx.send((i, now.clone())).is_err() {
                return;
            }
            last = now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn spawn(mut cmd: Command, who: &str, tx: &mpsc::UnboundedSender<Line>) -> Result<Child, String> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| format!("cannot start {who}: {e}"))?;
    if let Some(out) = child.stdout.take() {
        tokio::spawn(forward(out, format!("{who} pod"), tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(forward(err, format!("{who} pod"), tx.clone()));
    }
    Ok(child)
}

/// Forwards a child's lines, without the log timestamp (the timeline has its own clock).
async fn forward(pipe: impl AsyncRead + Unpin, who: String, tx: mpsc::UnboundedSender<Line>) {
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let text = match line.split_once(' ') {
            Some((first, rest)) if first.ends_with('Z') && first.contains('T') => {
                rest.trim_start().to_string()
            }
            _ => line,
        };
        if tx.send(Line { who: who.clone(), text }).is_err() {
            return;
        }
    }
}

async fn stop(child: &mut Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
}

/// Ports free right now on loopback (held together so they differ, then released).
fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot find free ports: {e}"))?;
    listeners.iter().map(|l| l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())).collect()
}
