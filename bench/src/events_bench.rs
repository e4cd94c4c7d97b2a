//! `events-bench`: agent-logship's Kubernetes Events source from kube-sim to es-sim (both in
//! this process; agent-logship, the static release build, in its own):
//!
//! - **sustained**: `--events` Events created as fast as kube-sim takes them, each shipped as it
//!   comes (watch -> spool -> `_bulk`); events per second from the first creation until es-sim
//!   holds the last, the agent's CPU-seconds and peak RSS;
//! - **catch-up**: es-sim down while `--events` more are created; once all are in the spool,
//!   es-sim comes back: the time until it holds them all, the CPU and the peak RSS of that.
//!
//! Numbers, not a test: nothing here fails on a slow machine.

// A benchmark reports on stdout.
#![allow(clippy::print_stdout)]

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use calypso_bench::{http, procfs};
use calypso_testkit::es_sim::{EsOptions, EsSim};
use calypso_testkit::kube_sim::{KubeOptions, KubeSim, NewEvent};
use clap::Parser;

const NS: &str = "calypso";
const STREAM: &str = "logs-kubernetes.events-calypso";

#[derive(Debug, Parser)]
#[command(name = "events-bench", about = "agent-logship's Events source: events/s, RSS, spool catch-up")]
struct Args {
    /// The agent-logship binary (the static release build).
    #[arg(long, default_value = "target/x86_64-unknown-linux-gnu/release/agent-logship")]
    agent_logship: PathBuf,
    /// Events per phase.
    #[arg(long, default_value_t = 50_000)]
    events: u64,
    /// Longest wait for a phase to finish.
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// The agent, killed when dropped.
struct Agent {
    child: Child,
    metrics: SocketAddr,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Agent {
    fn start(bin: &PathBuf, kube: &KubeSim, es: &EsSim, data: &std::path::Path) -> Result<Agent, String> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = Command::new(bin)
            .env_clear()
            .env("AGENT_LOG", "warn")
            .env("AGENT_LOGSHIP_EVENTS", "true")
            .env("AGENT_LOGSHIP_EVENTS_NAMESPACE", NS)
            .env("AGENT_LOGSHIP_KUBE_URL", kube.url())
            .env("AGENT_LOGSHIP_ES_URL", es.url())
            .env("AGENT_LOGSHIP_DATA_DIR", data)
            .env("AGENT_LOGSHIP_LISTEN", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        Ok(Agent { child, metrics: SocketAddr::from((Ipv4Addr::LOCALHOST, port)) })
    }

    fn metric(&self, name: &str) -> Option<f64> {
        let a = http::request(self.metrics, "GET", "/metrics", None).ok()?;
        a.body.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
    }

    fn cpu_s(&self) -> f64 {
        procfs::ticks(self.child.id()).unwrap_or(0) as f64 / procfs::clock_ticks_per_sec() as f64
    }

    fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        procfs::status_value(&status, "VmHWM").unwrap_or(0) as f64 / 1024.0
    }
}

/// Creates `n` Events about the pods of a few Calypso workloads.
fn create(kube: &KubeSim, n: u64, phase: &str) {
    const WORKLOADS: [&str; 4] = ["dataserver", "engineserver", "riskserver", "scheduler"];
    const REASONS: [&str; 4] = ["Unhealthy", "BackOff", "Pulled", "Started"];
    for i in 0..n {
        let w = WORKLOADS[(i % 4) as usize];
        let pod = format!("{w}-7d9f8b6c5-x{:04}", i % 1000);
        let reason = REASONS[(i / 4 % 4) as usize];
        let e = NewEvent::about(NS, "Pod", &pod, reason, &format!("{phase} {i}: {reason} on {pod}"));
        if let Err(e) = kube.create_event(e) {
            println!("kube-sim refused an Event: {e}");
        }
    }
}

fn wait(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() > deadline {
            return Err(format!("{what}: not within {}", humantime::format_duration(timeout)));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn run(args: &Args, rt: &tokio::runtime::Runtime) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let kube = rt.block_on(KubeSim::start(KubeOptions::default())).map_err(|e| format!("kube-sim: {e}"))?;
    let es = rt.block_on(EsSim::start(EsOptions::default())).map_err(|e| format!("es-sim: {e}"))?;
    let agent = Agent::start(&args.agent_logship, &kube, &es, dir.path())?;
    wait("agent-logship listening", Duration::from_secs(10), || {
        agent.metric("agent_logship_events_shipped_total").is_some()
    })?;
    let n = args.events;

    // Sustained: created as fast as kube-sim takes them, shipped as they come.
    let (cpu0, t0) = (agent.cpu_s(), Instant::now());
    create(&kube, n, "sustained");
    let created = t0.elapsed();
    wait("the sustained phase stored", args.timeout, || es.count_in(STREAM) >= n)?;
    let wall = t0.elapsed();
    let cpu = agent.cpu_s() - cpu0;
    println!(
        "sustained: {n} events created in {:.1}s, all stored after {:.1}s: {:.0} events/s; agent {:.2} CPU-s ({:.0} events per CPU-second), peak RSS {:.1} MiB",
        created.as_secs_f64(),
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        cpu,
        n as f64 / cpu.max(0.001),
        agent.peak_rss_mib()
    );

    // Catch-up: Elasticsearch away while n more gather in the spool.
    rt.block_on(es.down());
    create(&kube, n, "catch-up");
    wait("the catch-up phase spooled", args.timeout, || {
        agent.metric("agent_logship_events_taken_total").is_some_and(|t| t >= (2 * n) as f64)
    })?;
    let spool = agent.metric("agent_logship_events_spool_bytes").unwrap_or(0.0);
    let (cpu0, t0) = (agent.cpu_s(), Instant::now());
    rt.block_on(async { es.up() }).map_err(|e| format!("es-sim up: {e}"))?;
    wait("the spool shipped", args.timeout, || es.count_in(STREAM) >= 2 * n)?;
    let wall = t0.elapsed();
    let cpu = agent.cpu_s() - cpu0;
    println!(
        "catch-up: a spool of {n} events ({:.1} MiB) shipped in {:.1}s after Elasticsearch returned: {:.0} events/s; agent {:.2} CPU-s, peak RSS {:.1} MiB",
        spool / (1 << 20) as f64,
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        cpu,
        agent.peak_rss_mib()
    );
    let stored = es.count_in(STREAM);
    println!(
        "stored: {stored} documents for {} events ({})",
        2 * n,
        if stored == 2 * n { "each once" } else { "MISMATCH" }
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            println!("events-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(&args, &rt) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("events-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
