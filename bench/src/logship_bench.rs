//! `logship-bench`: what it costs to ship a Calypso log into Elasticsearch, for agent-logship and
//! for the peers a user would otherwise run (rsyslog's `imfile` + `omelasticsearch`, syslog-ng's
//! `file()` + `http()`). Each runner ships the same pre-written file (`calypso_log`: at least
//! 200 MiB, one record in five an ERROR with a 6-line stack trace, `seq=N` on every record) into
//! a fresh es-sim, and is measured from its spawn until es-sim holds its last document:
//!
//! - wall time, and the shipper's CPU (user + sys of its process tree, `/proc/PID/stat`) and
//!   peak RSS (the sum of `VmHWM` over its tree, sampled every 100 ms), at the last new document;
//! - records per CPU-second, MiB per CPU-second, wall MiB/s;
//! - the document count against the records written: a shipper that loses records, splits a
//!   stack trace into several documents or glues records together shows it there.
//!
//! The measurement ends when the count has not moved for `--settle` after reaching the record
//! count (so extra documents from split traces are still counted), or for `--stall` below it
//! (records lost), or when the shipper exits. rsyslog and syslog-ng cannot be installed together
//! (Debian's packages conflict), so `bench/run` swaps them between runs of this program; each run
//! appends one JSON line per runner to `--results`, and `report` prints the table and the
//! targets of issue 8 from all of them. Numbers, not a test: nothing here fails on a slow
//! machine; it fails only when something cannot be measured at all.

// A benchmark reports on stdout.
#![allow(clippy::print_stdout)]

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use calypso_bench::calypso_log::{self, LogFacts, LogSpec};
use calypso_bench::http;
use calypso_bench::logship_report::{self, RunResult};
use calypso_bench::procfs;
use clap::{Parser, Subcommand, ValueEnum};

/// The plain index the peers write to (`index` ops, ids chosen by the server).
const PEER_INDEX: &str = "calypso-bench";
/// What agent-logship writes to by default: `logs-calypso.<component>-<namespace>` data streams.
const AGENT_TEMPLATE: &str =
    r#"{"index_patterns":["logs-calypso.*-*"],"data_stream":{},"priority":200,"template":{"settings":{}}}"#;

#[derive(Debug, Parser)]
#[command(name = "logship-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Write the log file (or find it already written) and print its path and facts.
    Generate(FileArgs),
    /// Run shippers against fresh es-sims; append one JSON line per runner to --results.
    Run(RunArgs),
    /// Print the table and the targets from a results file.
    Report {
        #[arg(long)]
        results: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct FileArgs {
    /// Where the log file is kept between runs (it is reused when its size and seed match).
    #[arg(long, default_value = "target/logship-bench")]
    work_dir: PathBuf,
    /// The file's size, MiB (records are written until it has at least this much).
    #[arg(long, default_value_t = 200)]
    size_mib: u64,
    /// Seeds the content.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    file: FileArgs,
    /// The es-sim binary (a release build).
    #[arg(long)]
    es_sim: PathBuf,
    /// The agent-logship binary (the static release build); its runners are skipped, with a
    /// note, while it does not exist.
    #[arg(long, default_value = "target/x86_64-unknown-linux-gnu/release/agent-logship")]
    agent_logship: PathBuf,
    /// Append each runner's result here (one JSON line).
    #[arg(long)]
    results: Option<PathBuf>,
    /// How long the count must stay still, once it reached the record count, to be final.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    settle: Duration,
    /// How long the count may stay still below the record count before the run is given up.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    stall: Duration,
    /// Longest run of one runner.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Keep each runner's scratch directory (configs, logs) and print where it is.
    #[arg(long)]
    keep: bool,
    /// The runners, in this order.
    #[arg(required = true, value_enum)]
    runners: Vec<Runner>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Runner {
    /// agent-logship, default settings (gzip on), into es-sim.
    AgentLogship,
    /// agent-logship with AGENT_LOGSHIP_GZIP=false, into es-sim.
    AgentLogshipNogzip,
    /// agent-logship without an ES URL: NDJSON on stdout, read and discarded.
    AgentLogshipDevnull,
    /// agent-logship, default settings but AGENT_LOGSHIP_REDACT=false, into es-sim.
    AgentLogshipNoredact,
    /// agent-logship to stdout as agent-logship-devnull, with AGENT_LOGSHIP_REDACT=false.
    AgentLogshipDevnullNoredact,
    /// rsyslogd: imfile (startmsg.regex) + omelasticsearch (bulkmode).
    Rsyslog,
    /// syslog-ng: file() (multi-line regexp prefix) + http() batching to _bulk.
    SyslogNg,
}

impl Runner {
    fn name(self) -> &'static str {
        match self {
            Runner::AgentLogship => "agent-logship",
            Runner::AgentLogshipNogzip => "agent-logship-nogzip",
            Runner::AgentLogshipDevnull => "agent-logship-devnull",
            Runner::AgentLogshipNoredact => "agent-logship-noredact",
            Runner::AgentLogshipDevnullNoredact => "agent-logship-devnull-noredact",
            Runner::Rsyslog => "rsyslog",
            Runner::SyslogNg => "syslog-ng",
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Cmd::Generate(args) => generate(&args).map(|(path, facts)| {
            println!(
                "{} ({} bytes, {} records, {} with a stack trace, {} with a credential)",
                path.display(),
                facts.bytes,
                facts.records,
                facts.traces,
                facts.credentials
            );
        }),
        Cmd::Run(args) => run(&args),
        Cmd::Report { results } => report(&results),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("logship-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn generate(args: &FileArgs) -> Result<(PathBuf, LogFacts), String> {
    let spec = LogSpec { min_bytes: args.size_mib * 1024 * 1024, seed: args.seed };
    let started = Instant::now();
    let out = calypso_log::ensure(&args.work_dir, spec)
        .map_err(|e| format!("cannot write the log file in {}: {e}", args.work_dir.display()))?;
    if started.elapsed() > Duration::from_secs(1) {
        println!("wrote {} in {:.1}s", out.0.display(), started.elapsed().as_secs_f64());
    }
    Ok(out)
}

fn report(results: &Path) -> Result<(), String> {
    let text = fs::read_to_string(results).map_err(|e| format!("{}: {e}", results.display()))?;
    let rows: Vec<RunResult> = text.lines().filter_map(RunResult::from_json).collect();
    println!("\n{}", logship_report::table(&rows));
    println!("{}", logship_report::targets(&rows));
    println!("{}", logship_report::redaction_cost(&rows));
    Ok(())
}

fn run(args: &RunArgs) -> Result<(), String> {
    let (log, facts) = generate(&args.file)?;
    let log = fs::canonicalize(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    println!(
        "log file {} ({:.1} MiB, {} records, {} with a 6-line stack trace, {} with a credential)",
        log.display(),
        facts.bytes as f64 / 1048576.0,
        facts.records,
        facts.traces,
        facts.credentials
    );
    // Read once, untimed, so that the first runner does not pay for bringing the file into the
    // page cache (measured: its file-reading thread took 2.4x the CPU of the runs after it).
    fs::File::open(&log)
        .and_then(|mut f| std::io::copy(&mut f, &mut std::io::sink()))
        .map_err(|e| format!("{}: {e}", log.display()))?;
    for &runner in &args.runners {
        let result = match run_one(args, runner, &log, &facts) {
            Ok(r) => r,
            Err(Skip(why)) => {
                println!("{}: skipped: {why}", runner.name());
                RunResult::skipped(runner.name(), why)
            }
        };
        println!("{}", result.to_json());
        if let Some(path) = &args.results {
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            writeln!(f, "{}", result.to_json()).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// Why a runner did not run (reported as a skipped row, not a failure of the whole benchmark).
struct Skip(String);

impl From<String> for Skip {
    fn from(s: String) -> Skip {
        Skip(s)
    }
}

impl From<&str> for Skip {
    fn from(s: &str) -> Skip {
        Skip(s.to_string())
    }
}

fn run_one(args: &RunArgs, runner: Runner, log: &Path, facts: &LogFacts) -> Result<RunResult, Skip> {
    let scratch = tempfile::Builder::new()
        .prefix(&format!("logship-bench-{}-", runner.name()))
        .tempdir()
        .map_err(|e| format!("cannot create a scratch directory: {e}"))?;
    let dir = scratch.path().to_path_buf();
    println!("\n{}: scratch {}", runner.name(), dir.display());
    let outcome = run_in(args, runner, log, facts, &dir);
    if args.keep {
        let kept = scratch.keep();
        println!("{}: kept {}", runner.name(), kept.display());
    }
    outcome
}

fn run_in(
    args: &RunArgs,
    runner: Runner,
    log: &Path,
    facts: &LogFacts,
    dir: &Path,
) -> Result<RunResult, Skip> {
    let agent = || -> Result<PathBuf, Skip> {
        if args.agent_logship.is_file() {
            // Absolute: the shippers run in their scratch directory.
            fs::canonicalize(&args.agent_logship)
                .map_err(|e| Skip(format!("{}: {e}", args.agent_logship.display())))
        } else {
            Err(Skip(format!(
                "{} does not exist (bench/run builds it: `bench/run logship`)",
                args.agent_logship.display()
            )))
        }
    };
    // Checked before es-sim starts, so a missing shipper costs nothing.
    let (program, version) = match runner {
        Runner::AgentLogship
        | Runner::AgentLogshipNogzip
        | Runner::AgentLogshipDevnull
        | Runner::AgentLogshipNoredact
        | Runner::AgentLogshipDevnullNoredact => {
            let bin = agent()?;
            let version = version_line(&bin, "--version");
            (bin, version)
        }
        Runner::Rsyslog => {
            let bin = which("rsyslogd").ok_or_else(|| Skip("rsyslogd is not installed".into()))?;
            (bin.clone(), version_line(&bin, "-v"))
        }
        Runner::SyslogNg => {
            let bin = which("syslog-ng").ok_or_else(|| Skip("syslog-ng is not installed".into()))?;
            (bin.clone(), version_line(&bin, "--version"))
        }
    };
    println!("{}: {version}", runner.name());

    if matches!(runner, Runner::AgentLogshipDevnull | Runner::AgentLogshipDevnullNoredact) {
        let mut cmd = Command::new(&program);
        agent_env(&mut cmd, log, dir, None);
        if runner == Runner::AgentLogshipDevnullNoredact {
            cmd.env("AGENT_LOGSHIP_REDACT", "false");
        }
        let lines = Arc::new(AtomicU64::new(0));
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(file(&dir.join("agent.log"))?)
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        let started = Instant::now();
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let counter = Arc::clone(&lines);
        // Counts newlines and throws the bytes away: the shipper's /dev/null with a meter.
        std::thread::spawn(move || {
            let mut stdout = stdout;
            let mut buf = vec![0u8; 1 << 16];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let newlines = buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
                counter.fetch_add(newlines, Ordering::Relaxed);
            }
        });
        let peer = Peer(child);
        let m = measure(args, &peer, started, facts.records, None, || Some(lines.load(Ordering::Relaxed)));
        drop(peer);
        return Ok(result(runner, version, "stdout (NDJSON), read and discarded".into(), facts, &m));
    }

    let es = EsSim::start(&args.es_sim, dir)?;
    let (sink, mut cmd) = match runner {
        // The stdout runners returned above.
        Runner::AgentLogship
        | Runner::AgentLogshipNogzip
        | Runner::AgentLogshipDevnull
        | Runner::AgentLogshipNoredact
        | Runner::AgentLogshipDevnullNoredact => {
            let a = http::request(es.addr, "PUT", "/_index_template/logs-calypso", Some(AGENT_TEMPLATE))?;
            if a.status != 200 {
                return Err(Skip(format!(
                    "es-sim refused the data stream template: {} {}",
                    a.status, a.body
                )));
            }
            let mut cmd = Command::new(&program);
            agent_env(&mut cmd, log, dir, Some(&es.url));
            if runner == Runner::AgentLogshipNogzip {
                cmd.env("AGENT_LOGSHIP_GZIP", "false");
            }
            if runner == Runner::AgentLogshipNoredact {
                cmd.env("AGENT_LOGSHIP_REDACT", "false");
            }
            let gzip = if runner == Runner::AgentLogshipNogzip { "no gzip" } else { "gzip" };
            let redact = if runner == Runner::AgentLogshipNoredact { ", masking off" } else { "" };
            (format!("es-sim, data stream logs-calypso.*, create with _id, {gzip}{redact}"), cmd)
        }
        Runner::Rsyslog => {
            let conf = dir.join("rsyslog.conf");
            let work = dir.join("rsyslog-work");
            fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
            write(&conf, &rsyslog_conf(log, &work, es.addr))?;
            let mut cmd = Command::new(&program);
            cmd.arg("-n").arg("-f").arg(&conf).arg("-i").arg(dir.join("rsyslogd.pid"));
            (format!("es-sim, index {PEER_INDEX}, index op"), cmd)
        }
        Runner::SyslogNg => {
            let conf = dir.join("syslog-ng.conf");
            write(&conf, &syslog_ng_conf(log, es.addr))?;
            let mut cmd = Command::new(&program);
            cmd.arg("-F")
                .arg("-f")
                .arg(&conf)
                .arg(format!("--persist-file={}", dir.join("syslog-ng.persist").display()))
                .arg(format!("--pidfile={}", dir.join("syslog-ng.pid").display()))
                .arg(format!("--control={}", dir.join("syslog-ng.ctl").display()));
            (format!("es-sim, index {PEER_INDEX}, index op"), cmd)
        }
    };
    let log_name = format!("{}.log", runner.name());
    let peer = Peer(
        cmd.current_dir(dir)
            .stdin(Stdio::null())
            .stdout(file(&dir.join(&log_name))?)
            .stderr(file(&dir.join(format!("{}.err", runner.name())))?)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?,
    );
    let started = Instant::now();
    let m = measure(args, &peer, started, facts.records, Some(es.pid()), || es.count().ok());
    drop(peer);
    if m.stored != facts.records {
        for name in [log_name, format!("{}.err", runner.name())] {
            let text = fs::read_to_string(dir.join(&name)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            if !tail.is_empty() {
                println!("{}: the last lines of {name}:", runner.name());
                tail.iter().rev().for_each(|l| println!("  {l}"));
            }
        }
    }
    Ok(result(runner, version, sink, facts, &m))
}

fn result(runner: Runner, version: String, sink: String, facts: &LogFacts, m: &Measured) -> RunResult {
    let r = RunResult {
        runner: runner.name().to_string(),
        version,
        sink,
        records: facts.records,
        bytes: facts.bytes,
        stored: m.stored,
        wall_s: m.wall.as_secs_f64(),
        cpu_s: m.cpu_s,
        framing_cpu_s: m.framing_cpu_s,
        peak_rss_kib: m.peak_kib,
        sink_cpu_s: m.sink_cpu_s,
        end: m.end.to_string(),
        skipped: None,
    };
    println!(
        "{}: {} of {} records stored ({}) in {:.1}s, {:.2} CPU-s, peak RSS {:.1} MiB; ended: {}",
        r.runner,
        r.stored,
        r.records,
        r.count_verdict(),
        r.wall_s,
        r.cpu_s,
        r.peak_rss_mib(),
        r.end
    );
    r
}

/// agent-logship's environment: defaults, except what the benchmark must say (the file, from
/// its beginning, a scratch data directory, and a free loopback port for the probe server
/// instead of the default `[::]:8082`, which another process on the machine may hold).
fn agent_env(cmd: &mut Command, log: &Path, dir: &Path, es_url: Option<&str>) {
    let data = dir.join("agent-data");
    let _ = fs::create_dir_all(&data);
    let port =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()).map_or(0, |a| a.port());
    cmd.env("AGENT_LOGSHIP_PATHS", log)
        .env("AGENT_LOGSHIP_START_AT", "beginning")
        .env("AGENT_LOGSHIP_DATA_DIR", &data)
        .env("AGENT_LOGSHIP_LISTEN", format!("127.0.0.1:{port}"))
        .env("AGENT_LOG", "info");
    if let Some(url) = es_url {
        cmd.env("AGENT_LOGSHIP_ES_URL", url);
    }
}

/// What a run measured, at the last new document.
struct Measured {
    wall: Duration,
    cpu_s: f64,
    framing_cpu_s: f64,
    peak_kib: u64,
    stored: u64,
    sink_cpu_s: f64,
    end: &'static str,
}

/// Samples the shipper's tree and the count every 100 ms until the count is final (see the
/// module's documentation); CPU and wall time are taken at the last change of the count, so the
/// idle wait that proves it final is not charged to the shipper.
fn measure(
    args: &RunArgs,
    peer: &Peer,
    started: Instant,
    expected: u64,
    sink_pid: Option<u32>,
    mut count: impl FnMut() -> Option<u64>,
) -> Measured {
    let hz = procfs::clock_ticks_per_sec() as f64;
    let sink_ticks = || sink_pid.and_then(procfs::ticks).unwrap_or(0);
    let sink_start = sink_ticks();
    let mut last = Measured {
        wall: Duration::ZERO,
        cpu_s: 0.0,
        framing_cpu_s: 0.0,
        peak_kib: 0,
        stored: 0,
        sink_cpu_s: 0.0,
        end: "",
    };
    let mut last_change = Instant::now();
    let mut last_report = Instant::now();
    let pid = peer.pid();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let sample = procfs::sample_tree(pid);
        let exited = peer.exited();
        if let Some(s) = sample {
            last.peak_kib = last.peak_kib.max(s.hwm_kib);
        }
        let now = Instant::now();
        if let Some(n) = count()
            && n != last.stored
        {
            last.stored = n;
            last.wall = now - started;
            if let Some(s) = sample {
                last.cpu_s = s.ticks as f64 / hz;
            }
            last.framing_cpu_s = procfs::thread_ticks(pid, "logship-files") as f64 / hz;
            last.sink_cpu_s = sink_ticks().saturating_sub(sink_start) as f64 / hz;
            last_change = now;
        }
        if now - last_report >= Duration::from_secs(10) {
            println!(
                "  {:>5.0}s: {} of {expected} documents, CPU {:.1}s, peak RSS {:.1} MiB",
                (now - started).as_secs_f64(),
                last.stored,
                sample.map_or(last.cpu_s, |s| s.ticks as f64 / hz),
                last.peak_kib as f64 / 1024.0
            );
            last_report = now;
        }
        let still = now - last_change;
        let end = if last.stored >= expected && still >= args.settle {
            Some("complete")
        } else if still >= args.stall {
            Some("stalled")
        } else if exited && still >= args.settle {
            Some("exited")
        } else if now - started >= args.timeout {
            Some("timeout")
        } else {
            None
        };
        if let Some(end) = end {
            last.end = end;
            return last;
        }
    }
}

/// A shipper process: stopped with SIGTERM (then SIGKILL) when dropped.
struct Peer(Child);

impl Peer {
    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Whether it has exited. The zombie stays readable in /proc until it is reaped, so the
    /// last samples still see its CPU.
    fn exited(&self) -> bool {
        fs::read_to_string(format!("/proc/{}/stat", self.pid()))
            .ok()
            .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.trim_start().starts_with('Z')))
            .unwrap_or(true)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.0.id()) {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh es-sim on a free loopback port, Elasticsearch flavour.
struct EsSim {
    child: Child,
    addr: SocketAddr,
    url: String,
}

impl EsSim {
    fn start(bin: &Path, dir: &Path) -> Result<EsSim, String> {
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0", "--flavour", "elasticsearch"])
            .env("AGENT_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(file(&dir.join("es-sim.log"))?)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the announcement, then keeps draining stdout so es-sim never blocks on it.
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent && let Some(url) = line.strip_prefix("es-sim listening on ") {
                    let _ = tx.send(url.trim().to_string());
                    sent = true;
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{} did not say where it listens within 10s", bin.display()));
            }
        };
        let addr = url
            .strip_prefix("http://")
            .and_then(|a| a.trim_end_matches('/').parse().ok())
            .ok_or_else(|| format!("es-sim announced {url}, not http://ADDR"))?;
        Ok(EsSim { child, addr, url })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Documents stored, over all indices and data streams.
    fn count(&self) -> Result<u64, String> {
        let a = http::request(self.addr, "GET", "/_count", None)?;
        let v: serde_json::Value =
            serde_json::from_str(&a.body).map_err(|e| format!("_count: {e}: {}", a.body))?;
        v.get("count").and_then(serde_json::Value::as_u64).ok_or_else(|| format!("_count: {}", a.body))
    }
}

impl Drop for EsSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// rsyslog as a user would set it up for this file: `imfile` with a multi-line `startmsg.regex`
/// on the timestamp (the lines of a stack trace join their record; `readTimeout` flushes the
/// last one), newlines kept (`escapeLF="off"`: JSON-escaped by the template's `format="json"`;
/// `option.json` leaves them raw and `option.jsonf` adds an empty line after each document),
/// and `omelasticsearch` in bulk mode with the
/// batch bounds agent-logship uses by default (2000 records, 5 MiB). The document is
/// `@timestamp` (the time rsyslog read the line: it parses no log4j fields), `host` and
/// `message`. Retries forever on errors, as a shipper that must not lose data would.
fn rsyslog_conf(log: &Path, work: &Path, es: SocketAddr) -> String {
    format!(
        r#"global(workDirectory="{work}" maxMessageSize="64k")
main_queue(queue.type="FixedArray" queue.size="100000" queue.dequeueBatchSize="2000")
module(load="imfile")
module(load="omelasticsearch")
input(type="imfile" file="{log}" tag="calypso" startmsg.regex="^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}} [0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}},[0-9]{{3}} " readTimeout="1" escapeLF="off" freshStartTail="off")
template(name="calypso" type="list") {{
  constant(value="{{\"@timestamp\":\"")
  property(name="timereported" dateFormat="rfc3339")
  constant(value="\",\"host\":\"")
  property(name="hostname" format="json")
  constant(value="\",\"message\":\"")
  property(name="msg" format="json")
  constant(value="\"}}")
}}
action(type="omelasticsearch" server="{host}" serverport="{port}" searchIndex="{PEER_INDEX}" template="calypso"
       bulkmode="on" maxbytes="5m" esVersion.major="8" errorFile="{work}/es-errors.json"
       action.resumeRetryCount="-1")
"#,
        work = work.display(),
        log = log.display(),
        host = es.ip(),
        port = es.port(),
    )
}

/// syslog-ng as a user would set it up: `file()` with `multi-line-mode(regexp)` and the
/// timestamp as `multi-line-prefix`, no syslog parsing (`flags(no-parse)`), flow control so a
/// slow destination pauses the reader instead of dropping, and `http()` posting NDJSON to
/// `_bulk` in batches of 2000 records / 5 MiB / 1 s (agent-logship's defaults), each record an
/// `index` action and a document with `@timestamp` (the time syslog-ng received it) and
/// `message`, the body ending in a newline as `_bulk` requires.
fn syslog_ng_conf(log: &Path, es: SocketAddr) -> String {
    format!(
        r#"@version: 3.38
options {{ stats-freq(0); chain-hostnames(no); use-dns(no); dns-cache(no); }};
source s_calypso {{
  file("{log}"
       follow-freq(1)
       flags(no-parse)
       multi-line-mode(regexp)
       multi-line-prefix("^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}} [0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}},[0-9]{{3}} ")
       multi-line-timeout(2)
       log-msg-size(65536)
       log-iw-size(10000)
       log-fetch-limit(1000));
}};
destination d_es {{
  http(url("http://{es}/_bulk")
       method("POST")
       headers("Content-Type: application/x-ndjson")
       batch-lines(2000)
       batch-bytes(5242880)
       batch-timeout(1000)
       workers(1)
       body("{{\"index\":{{\"_index\":\"{PEER_INDEX}\"}}}}\n$(format-json --scope none @timestamp=${{ISODATE}} message=${{MESSAGE}})")
       delimiter("\n")
       body-suffix("\n"));
}};
log {{ source(s_calypso); destination(d_es); flags(flow-control); }};
"#,
        log = log.display(),
    )
}

fn version_line(bin: &Path, flag: &str) -> String {
    Command::new(bin)
        .arg(flag)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        // rsyslogd -v: "rsyslogd  8.2302.0 (aka 2023.02) compiled with:".
        .and_then(|s| {
            s.lines().next().map(|l| {
                l.trim_end_matches("compiled with:").split_whitespace().collect::<Vec<_>>().join(" ")
            })
        })
        .unwrap_or_else(|| format!("{} (version unknown)", bin.display()))
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d: PathBuf| d.join(name))
        .find(|p| p.is_file())
}

fn file(path: &Path) -> Result<File, String> {
    File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
