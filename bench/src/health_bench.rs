//! `health-bench`: what agent-health costs and how fast it answers. Starts an EngineServer
//! simulator and agent-health against it (default settings: a 2 s poll interval) on loopback,
//! then measures, in this order:
//!
//! 1. idle: CPU (utime + stime from `/proc/PID/stat`, and the nanosecond run time from
//!    `/proc/PID/task/*/schedstat`) over `--idle` (30 s) and `VmRSS` after it;
//! 2. throughput: `wrk -t2 -c64 -d10s --latency` against agent-health's `/readyz`, and the same
//!    against the simulator's `/health` (what each probe costs when it reaches the server);
//! 3. latency at a fixed rate: the open-loop generator (`probe-latency`) at 1000 requests/s for
//!    10 s against both;
//! 4. RSS after the load, and the binary's size.
//!
//! Numbers, not a test: it prints them next to the targets of issue 4 and fails only when
//! something cannot be measured.

// A benchmark reports on stdout.
#![allow(clippy::print_stdout)]

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use calypso_bench::open_loop::{self, Target, quantile};
use calypso_bench::procfs;
use calypso_bench::wrk::{self, WrkReport};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "health-bench", version)]
struct Cli {
    /// The agent-health binary to measure (use the static release build).
    #[arg(long)]
    agent_health: PathBuf,
    /// The calypso-sim binary (a release build).
    #[arg(long)]
    sim: PathBuf,
    /// The wrk binary.
    #[arg(long, default_value = "wrk")]
    wrk: PathBuf,
    /// How long to watch the idle sidecar.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    idle: Duration,
    /// How long each wrk and each fixed-rate run lasts.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// wrk's threads.
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// wrk's connections.
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// The fixed rate, requests/s.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// Keep-alive connections of the fixed-rate runs.
    #[arg(long, default_value_t = 4)]
    rate_connections: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("health-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: &Cli) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot create a scratch directory: {e}"))?;

    // The EngineServer simulator: a free port, told on stdout.
    let sim_out = dir.path().join("sim.out");
    let sim = Proc::spawn(
        Command::new(&cli.sim)
            .args(["--component", "EngineServer", "--listen", "127.0.0.1:0"])
            .env("AGENT_LOG", "warn")
            .stdout(file(&sim_out)?)
            .stderr(file(&dir.path().join("sim.log"))?),
        "calypso-sim",
    )?;
    let bound = wait_for("the simulator's bound line", Duration::from_secs(10), || {
        let out = std::fs::read_to_string(&sim_out).ok()?;
        let line = out.lines().find(|l| l.contains(" bound "))?;
        line.split_whitespace().last().map(str::to_string)
    })?;
    let health_url = bound;
    let health = Target::parse(&health_url)?;
    wait_for("the simulator to answer 200", Duration::from_secs(10), || {
        (open_loop::get_status(&health).ok() == Some(200)).then_some(())
    })?;

    // agent-health with its defaults (interval 2s), on a free port.
    let port = free_port()?;
    let sidecar_log = dir.path().join("agent-health.log");
    let sidecar = Proc::spawn(
        Command::new(&cli.agent_health)
            .args(["--upstream", &health_url, "--listen", &format!("127.0.0.1:{port}")])
            .env("AGENT_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file(&sidecar_log)?),
        "agent-health",
    )?;
    let readyz_url = format!("http://127.0.0.1:{port}/readyz");
    let readyz = Target::parse(&readyz_url)?;
    wait_for("agent-health's /readyz to answer 200", Duration::from_secs(20), || {
        (open_loop::get_status(&readyz).ok() == Some(200)).then_some(())
    })
    .map_err(|e| format!("{e}; its log:\n{}", std::fs::read_to_string(&sidecar_log).unwrap_or_default()))?;
    let pid = sidecar.pid();
    println!(
        "agent-health {} (pid {pid}) polling {health_url} every 2s (the default)",
        cli.agent_health.display()
    );

    // 1. Idle.
    println!("idle for {} ...", humantime::format_duration(cli.idle));
    let before = CpuTime::read(pid)?;
    let idle_start = Instant::now();
    std::thread::sleep(cli.idle);
    let after = CpuTime::read(pid)?;
    let wall = idle_start.elapsed();
    let idle_status = ProcStatus::read(pid)?;
    let cpu_ticks = after.ticks.saturating_sub(before.ticks);
    let cpu_ns = after.run_ns.saturating_sub(before.run_ns);
    let tick_ns = 1e9 / procfs::clock_ticks_per_sec() as f64;
    let pct = |ns: f64| ns / wall.as_nanos() as f64 * 100.0;

    // 2. Throughput, closed loop (wrk).
    let secs = humantime::format_duration(cli.duration);
    println!(
        "wrk -t{} -c{} -d{secs} --latency, /readyz then the sim's /health ...",
        cli.threads, cli.connections
    );
    let wrk_readyz = wrk::run(&cli.wrk, &readyz_url, cli.threads, cli.connections, cli.duration)?;
    let wrk_health = wrk::run(&cli.wrk, &health_url, cli.threads, cli.connections, cli.duration)?;

    // 3. Latency at a fixed rate, open loop.
    println!("{} requests/s for {secs} over {} connections, open loop ...", cli.rate, cli.rate_connections);
    let fixed = |target: &Target| {
        open_loop::run(&open_loop::Config {
            target: target.clone(),
            rate: cli.rate,
            duration: cli.duration,
            warmup: Duration::from_secs(1),
            connections: cli.rate_connections,
        })
    };
    let rate_readyz = fixed(&readyz)?;
    let rate_health = fixed(&health)?;

    // 4. After the load; the binary.
    let loaded_status = ProcStatus::read(pid)?;
    let size = std::fs::metadata(&cli.agent_health)
        .map_err(|e| format!("{}: {e}", cli.agent_health.display()))?
        .len();
    drop(sidecar);
    drop(sim);

    let mib = |kib: u64| kib as f64 / 1024.0;
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!();
    println!("agent-health, idle (2s interval, {} watched):", humantime::format_duration(cli.idle));
    println!(
        "  RSS {:.2} MiB (VmRSS {} kB), {} thread(s)",
        mib(idle_status.rss_kib),
        idle_status.rss_kib,
        idle_status.threads
    );
    println!(
        "  CPU {:.4} % of one core ({:.1} ms run time by schedstat); utime+stime {} ticks = {:.3} %",
        pct(cpu_ns as f64),
        cpu_ns as f64 / 1e6,
        cpu_ticks,
        pct(cpu_ticks as f64 * tick_ns)
    );
    println!("throughput, wrk -t{} -c{} -d{secs} --latency (closed loop):", cli.threads, cli.connections);
    for (name, r) in [("agent-health /readyz", &wrk_readyz), ("calypso-sim /health", &wrk_health)] {
        println!("  {name:<22} {}", wrk_line(r));
    }
    println!(
        "latency at {} requests/s, {} connections, from the scheduled send (open loop):",
        cli.rate, cli.rate_connections
    );
    for (name, r) in [("agent-health /readyz", &rate_readyz), ("calypso-sim /health", &rate_health)] {
        println!(
            "  {name:<22} p50 {:.0} us  p99 {:.0} us  p99.9 {:.0} us  max {:.0} us  ({} answers, {:.0}/s; not 200: {}; errors: {})",
            us(quantile(&r.latency, 0.5)),
            us(quantile(&r.latency, 0.99)),
            us(quantile(&r.latency, 0.999)),
            us(quantile(&r.latency, 1.0)),
            r.latency.len(),
            r.rate(),
            r.not_ok,
            r.errors,
        );
        println!(
            "  {:<22} from the actual send: p50 {:.0} us  p99 {:.0} us; the generator's send lag: p99 {:.0} us",
            "",
            us(quantile(&r.service, 0.5)),
            us(quantile(&r.service, 0.99)),
            us(quantile(&r.lag, 0.99)),
        );
    }
    println!(
        "agent-health after the load: RSS {:.2} MiB, peak {:.2} MiB",
        mib(loaded_status.rss_kib),
        mib(loaded_status.hwm_kib)
    );
    println!("agent-health binary: {size} bytes ({:.2} MiB)", size as f64 / 1048576.0);

    println!("\ntargets (issue 4):");
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let p99 = quantile(&rate_readyz.latency, 0.99);
    for (what, measured, ok) in [
        (
            "50k+ requests/s on /readyz",
            format!("{:.0}/s", wrk_readyz.requests_per_sec),
            wrk_readyz.requests_per_sec >= 50_000.0,
        ),
        ("p99 under 1 ms at 1k requests/s", format!("{:.0} us", us(p99)), p99 < Duration::from_millis(1)),
        (
            "idle RSS 8 MiB or less",
            format!("{:.2} MiB", mib(idle_status.rss_kib)),
            idle_status.rss_kib <= 8 * 1024,
        ),
        (
            "stripped static binary 5 MiB or less",
            format!("{:.2} MiB", size as f64 / 1048576.0),
            size <= 5 * 1048576,
        ),
    ] {
        println!("  {what:<38} {measured:>12}   {}", verdict(ok));
    }
    Ok(())
}

fn wrk_line(r: &WrkReport) -> String {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mut line = format!(
        "{:>9.0} requests/s   p50 {:.0} us  p90 {:.0} us  p99 {:.0} us  ({} requests; not 2xx/3xx: {})",
        r.requests_per_sec,
        us(r.p50),
        us(r.p90),
        us(r.p99),
        r.requests,
        r.not_ok
    );
    if let Some(e) = &r.socket_errors {
        line.push_str(&format!("; {e}"));
    }
    line
}

/// A child process, killed when dropped.
struct Proc(Child);

impl Proc {
    fn spawn(cmd: &mut Command, what: &str) -> Result<Proc, String> {
        cmd.stdin(Stdio::null()).spawn().map(Proc).map_err(|e| format!("cannot start {what}: {e}"))
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn file(path: &Path) -> Result<File, String> {
    File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))
}

/// A port free right now on loopback.
fn free_port() -> Result<u16, String> {
    TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// Polls `f` every 50 ms until it gives a value, for at most `limit`.
fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> Result<T, String> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            return Err(format!("no {what} within {}", humantime::format_duration(limit)));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A process's CPU time so far.
struct CpuTime {
    /// utime + stime, in clock ticks (`/proc/PID/stat`).
    ticks: u64,
    /// Time on a CPU, in nanoseconds, summed over its threads (`/proc/PID/task/*/schedstat`).
    run_ns: u64,
}

impl CpuTime {
    fn read(pid: u32) -> Result<CpuTime, String> {
        let stat = procfs::parse_stat(&read(&format!("/proc/{pid}/stat"))?).ok_or("bad /proc/PID/stat")?;
        let mut run_ns = 0;
        let tasks =
            std::fs::read_dir(format!("/proc/{pid}/task")).map_err(|e| format!("/proc/{pid}/task: {e}"))?;
        for task in tasks.flatten() {
            let schedstat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            run_ns += schedstat.split_whitespace().next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        }
        Ok(CpuTime { ticks: stat.ticks, run_ns })
    }
}

/// What `/proc/PID/status` says about memory and threads.
struct ProcStatus {
    rss_kib: u64,
    hwm_kib: u64,
    threads: u64,
}

impl ProcStatus {
    fn read(pid: u32) -> Result<ProcStatus, String> {
        let status = read(&format!("/proc/{pid}/status"))?;
        let get = |key: &str| {
            procfs::status_value(&status, key).ok_or_else(|| format!("no {key} in /proc/{pid}/status"))
        };
        Ok(ProcStatus { rss_kib: get("VmRSS")?, hwm_kib: get("VmHWM")?, threads: get("Threads")? })
    }
}

fn read(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}
