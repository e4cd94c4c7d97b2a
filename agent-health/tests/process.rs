//! agent-health as a process against calypso-sim: the failover that must never restart a
//! server, a hung JVM, a Calypso container restarted beside the sidecar, bad payloads, draining
//! on SIGTERM, listening on IPv4 and IPv6, bad listen addresses, secrets kept out of everything
//! it says, and its metrics checked by promtool.
//!
//! Timings are short but not tight (a poll may take 400 ms, the liveness grace is 3 s), and
//! tests assert on what agent-health recorded — the transitions in `/status`, with its own
//! timestamps — with margins of seconds, never on sampling an endpoint over a wall-clock window:
//! a starved 2-core machine delays the answers, not the outcome. Every wait polls with a deadline.

use std::process::Stdio;
use std::time::{Duration, SystemTime};

use calypso::Component;
use calypso_testkit::client;
use calypso_testkit::process::{PATIENCE, Spawned};
use calypso_testkit::{Mode, Sim, SimConfig, SimHandle, eventually};
use nix::sys::signal::Signal;
use serde_json::Value;
use tokio::process::Command;

/// The liveness grace the agents under test get (`--liveness-grace`).
const GRACE: Duration = Duration::from_secs(3);

/// agent-health with only `env` in its environment, stdout discarded.
fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agent-health"));
    cmd.args(args).env_clear().envs(env.iter().copied()).stdout(Stdio::null());
    cmd
}

struct Agent {
    process: Spawned,
    base: String,
    /// The debug address's base URL, with `--debug-listen`.
    debug: Option<String>,
}

impl Agent {
    /// Starts agent-health on a free port with short durations, and waits until it serves.
    /// `extra` flags replace the defaults of the same name.
    async fn start(upstream: &str, extra: &[&str]) -> Agent {
        Agent::start_with(upstream, extra, &[]).await
    }

    /// [`Agent::start`] with variables in its environment (`AGENT_LOG=info` unless given).
    async fn start_with(upstream: &str, extra: &[&str], env: &[(&str, &str)]) -> Agent {
        let mut args = vec!["--upstream", upstream];
        for (flag, value) in [
            ("--listen", "127.0.0.1:0"),
            ("--interval", "500ms"),
            ("--attempt-timeout", "400ms"),
            ("--liveness-grace", "3s"),
            ("--shutdown-delay", "1s"),
        ] {
            if !extra.contains(&flag) {
                args.extend([flag, value]);
            }
        }
        args.extend(extra);
        let mut vars = vec![("AGENT_LOG", "info")];
        vars.retain(|(k, _)| !env.iter().any(|(e, _)| e == k));
        vars.extend(env);
        let process = Spawned::start(command(&args, &vars));
        let field = |line: &str, name: &str| -> Option<String> {
            let at = line.find(&format!(" {name}="))?;
            Some(line[at + name.len() + 2..].split_whitespace().next()?.to_string())
        };
        let addr =
            process.find_in_stderr("the listen address in the log", |line| field(line, "listen")).await;
        let debug = process.stderr().lines().find_map(|l| field(l, "debug_listen"));
        Agent { process, base: format!("http://{addr}"), debug: debug.map(|a| format!("http://{a}")) }
    }

    async fn get_from(base: &str, path: &str) -> (u16, String) {
        let r = client::get(&format!("{base}{path}"), Duration::from_secs(5)).await.expect("agent answers");
        (r.status, r.text())
    }

    async fn get(&self, path: &str) -> (u16, String) {
        Agent::get_from(&self.base, path).await
    }

    /// Waits until `path` answers `status`; returns the body.
    async fn until(&self, path: &str, status: u16) -> String {
        eventually(&format!("{path} to answer {status}"), PATIENCE, async || {
            let (s, body) = self.get(path).await;
            (s == status).then_some(body)
        })
        .await
    }

    /// `/status`, from the debug address if there is one.
    async fn status(&self) -> Value {
        let base = self.debug.as_deref().unwrap_or(&self.base);
        let (code, body) = Agent::get_from(base, "/status").await;
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).expect("status is JSON")
    }
}

/// The transitions of `probe` in a `/status` document: whether it passed from then on, when
/// (agent-health's clock) and why.
fn transitions(status: &Value, probe: &str) -> Vec<(bool, SystemTime, String)> {
    status["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .filter(|t| t["probe"] == probe)
        .map(|t| {
            let at = humantime::parse_rfc3339(t["at"].as_str().expect("at")).expect("an RFC 3339 time");
            (t["ok"].as_bool().expect("ok"), at, t["reason"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

/// When `probe` last turned to failing.
fn last_failed_at(status: &Value, probe: &str) -> SystemTime {
    transitions(status, probe)
        .iter()
        .rev()
        .find(|(ok, ..)| !ok)
        .map(|(_, at, _)| *at)
        .unwrap_or_else(|| panic!("no failing transition of {probe}: {status}"))
}

/// Waits until agent-health has completed polls with `outcome` for at least `span` after `since`
/// (by its own clock): "this lasted longer than the grace", without sampling anything.
async fn polled_for(agent: &Agent, outcome: &str, since: SystemTime, span: Duration) -> Value {
    eventually(&format!("{outcome} polls for {span:?}"), PATIENCE + span, async || {
        let status = agent.status().await;
        let last = &status["last_poll"];
        let at = humantime::parse_rfc3339(last["completed_at"].as_str()?).ok()?;
        (last["outcome"] == outcome && at.duration_since(since).is_ok_and(|d| d >= span)).then_some(status)
    })
    .await
}

async fn sim(component: Component, upstream: Option<String>) -> SimHandle {
    let mut cfg = SimConfig::new(component);
    cfg.upstream = upstream;
    cfg.upstream_interval = Duration::from_millis(50);
    Sim::start(cfg).await.expect("sim")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataserver_failover_makes_the_engine_not_ready_but_never_not_alive() {
    let ds = sim(Component::DataServer, None).await;
    let ds_addr = ds.addr();
    let engine = sim(Component::EngineServer, Some(ds.health_url())).await;
    let agent = Agent::start(&engine.health_url(), &[]).await;
    agent.until("/readyz", 200).await;
    assert_eq!(agent.get("/startupz").await.0, 200);

    ds.shutdown().await;
    let reason = agent.until("/readyz", 503).await;
    assert!(reason.contains("Calypso/DataServerConnection: RED"), "{reason}");
    // The outage lasts well beyond the liveness grace, by agent-health's own record; liveness
    // never failed in it.
    let unready = last_failed_at(&agent.status().await, "ready");
    let status = polled_for(&agent, "answer", unready, GRACE + Duration::from_secs(2)).await;
    assert_eq!(status["report"]["state"], "RED", "{status}");
    assert!(
        transitions(&status, "live").iter().all(|(ok, ..)| *ok),
        "liveness failed in a failover: {status}"
    );

    let mut cfg = SimConfig::new(Component::DataServer);
    cfg.listen = ds_addr;
    let _ds = Sim::start(cfg).await.expect("DataServer back on its address");
    agent.until("/readyz", 200).await;

    let status = agent.status().await;
    let ready: Vec<bool> = transitions(&status, "ready").iter().map(|(ok, ..)| *ok).collect();
    // Ready, not ready in the failover, ready again (a starved machine may add flips between).
    let first_fail = ready.iter().position(|ok| !ok).expect("a not-ready transition");
    assert!(ready[0] && ready[first_fail..].contains(&true) && ready.last() == Some(&true), "{status}");
    let metrics = agent.get("/metrics").await.1;
    let fails = metrics
        .lines()
        .find_map(|l| l.strip_prefix("agent_health_transitions_total{probe=\"ready\",to=\"fail\"} "))
        .and_then(|n| n.parse::<u64>().ok())
        .expect("the ready->fail counter");
    assert!(fails >= 1, "{metrics}");
    assert!(metrics.contains("agent_health_transitions_total{probe=\"live\",to=\"fail\"} 0"), "{metrics}");
    assert!(metrics.contains("agent_health_ready 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_server_fails_liveness_only_after_the_grace() {
    let ds = sim(Component::DataServer, None).await;
    let agent = Agent::start(&ds.health_url(), &[]).await;
    agent.until("/readyz", 200).await;
    ds.control().set_mode(Mode::Hang);
    let reason = agent.until("/readyz", 503).await;
    assert!(reason.contains("unreachable: no answer within 400ms"), "{reason}");
    let reason = agent.until("/livez", 503).await;
    assert!(reason.starts_with("no answer from Calypso for "), "{reason}");
    let took =
        reason.trim_start_matches("no answer from Calypso for ").split(" (").next().unwrap_or_default();
    let took = humantime::parse_duration(took).unwrap_or_else(|e| panic!("{reason}: {e}"));
    assert!(took >= GRACE, "{reason}");
    // Readiness went first (after two polls); liveness only after the grace, seconds later. (The
    // log of transitions is written at the next poll or tick after the verdict changed.)
    let status = eventually("liveness's transition in /status", PATIENCE, async || {
        let status = agent.status().await;
        transitions(&status, "live").iter().any(|(ok, ..)| !ok).then_some(status)
    })
    .await;
    let (unready, dead) = (last_failed_at(&status, "ready"), last_failed_at(&status, "live"));
    let gap = dead.duration_since(unready).unwrap_or_default();
    assert!(gap >= GRACE - Duration::from_secs(2), "liveness failed {gap:?} after readiness: {status}");
    ds.control().set_mode(Mode::Normal);
    agent.until("/livez", 200).await;
}

/// The kubelet restarted the Calypso container beside the sidecar (liveness, crash, OOM kill)
/// and the new JVM starts slowly: refused for longer than the liveness grace, then RED
/// "starting". agent-health treats it as a start: `/startupz` fails until the new server is past
/// RED (the kubelet gives it the startup budget again), and once it passes, liveness passes too,
/// the old JVM's silence not counted against the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_calypso_container_gets_the_startup_budget_again() {
    let first = sim(Component::EngineServer, None).await;
    let addr = first.addr();
    let agent = Agent::start(&first.health_url(), &[]).await;
    agent.until("/startupz", 200).await;
    first.shutdown().await;
    let reason = agent.until("/startupz", 503).await;
    assert!(reason.starts_with("starting: "), "{reason}");

    let mut cfg = SimConfig::new(Component::EngineServer);
    cfg.listen = addr;
    cfg.listen_delay = GRACE + Duration::from_secs(1);
    cfg.startup_delay = cfg.listen_delay + Duration::from_secs(2);
    let restarted_at = SystemTime::now();
    let startup_delay = cfg.startup_delay;
    let _second = Sim::start(cfg).await.expect("the new JVM on the same address");
    agent.until("/startupz", 200).await;
    assert_eq!(agent.get("/livez").await.0, 200, "liveness passes once startup does");
    // Startup passed again only when the new server left RED, by agent-health's own clock.
    let status = agent.status().await;
    let passed = transitions(&status, "startup").last().map(|(ok, at, _)| (*ok, *at));
    let (ok, at) = passed.unwrap_or_else(|| panic!("no startup transition: {status}"));
    assert!(ok, "{status}");
    let after = at.duration_since(restarted_at).unwrap_or_default();
    assert!(
        after >= startup_delay - Duration::from_millis(100),
        "startup passed {after:?} after the restart: {status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_payloads_are_answers_not_ready_but_alive() {
    let ds = sim(Component::DataServer, None).await;
    let agent = Agent::start(&ds.health_url(), &[]).await;
    agent.until("/readyz", 200).await;
    ds.control().set_mode(Mode::Garbage);
    let reason = agent.until("/readyz", 503).await;
    assert!(reason.contains("bad health payload"), "{reason}");
    // A bad payload is an answer: alive through bad answers for longer than the grace.
    let unready = last_failed_at(&agent.status().await, "ready");
    let status = polled_for(&agent, "bad_answer", unready, GRACE + Duration::from_secs(2)).await;
    assert!(transitions(&status, "live").iter().all(|(ok, ..)| *ok), "garbage is an answer: {status}");

    ds.control().set_mode(Mode::EmptyUnavailable);
    let reason = agent.until("/readyz?verbose", 503).await;
    assert!(reason.contains("readyz check failed"), "{reason}");
    ds.control().set_mode(Mode::Slow(Duration::from_millis(1500)));
    eventually("a slow answer to count as none", PATIENCE, async || {
        agent.get("/readyz").await.1.contains("no answer within 400ms").then_some(())
    })
    .await;
    ds.control().set_mode(Mode::Normal);
    agent.until("/readyz", 200).await;
    agent.until("/livez", 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_readiness_first_then_exits_0() {
    let ds = sim(Component::DataServer, None).await;
    let mut agent = Agent::start(&ds.health_url(), &["--shutdown-delay", "5s"]).await;
    agent.until("/readyz", 200).await;
    let signalled = tokio::time::Instant::now();
    agent.process.signal(Signal::SIGTERM);
    let reason = agent.until("/readyz", 503).await;
    assert_eq!(reason.trim(), "shutting down");
    assert_eq!(agent.get("/livez").await.0, 200, "liveness keeps answering while draining");
    assert_eq!(agent.process.exit_code().await, 0, "{}", agent.process.stderr());
    assert!(signalled.elapsed() >= Duration::from_secs(5), "exited before the shutdown delay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_143_at_once_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let term = dir.path().join("termination-log");
    let ds = sim(Component::DataServer, None).await;
    let mut agent = Agent::start_with(
        &ds.health_url(),
        &["--shutdown-delay", "60s"],
        &[("AGENT_TERMINATION_LOG", term.to_str().expect("utf-8"))],
    )
    .await;
    agent.until("/readyz", 200).await;
    agent.process.signal(Signal::SIGTERM);
    agent.until("/readyz", 503).await;
    agent.process.signal(Signal::SIGTERM);
    assert_eq!(agent.process.exit_code().await, 143, "{}", agent.process.stderr());
    let message = std::fs::read_to_string(&term).expect("a termination message");
    assert_eq!(message, "SIGTERM during the graceful stop after SIGTERM: stopped at once\n");
    assert!(agent.process.stderr().contains(message.trim_end()), "{}", agent.process.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amber_is_ready_unless_strict() {
    let ds = sim(Component::DataServer, None).await;
    ds.control().set_sensor("Calypso/DatabaseConnection", calypso::State::Amber, None, Some("slow"));
    let lenient = Agent::start(&ds.health_url(), &[]).await;
    let strict = Agent::start(&ds.health_url(), &["--amber", "not-ready"]).await;
    lenient.until("/readyz", 200).await;
    let reason = strict.until("/readyz", 503).await;
    assert!(reason.contains("state AMBER (Calypso/DatabaseConnection: AMBER)"), "{reason}");
    assert_eq!(strict.get("/startupz").await.0, 200, "AMBER is not RED: started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_subcommand_exit_codes() {
    let ds = sim(Component::DataServer, None).await;
    let agent = Agent::start(&ds.health_url(), &[]).await;
    agent.until("/readyz", 200).await;
    let run = |args: Vec<String>| {
        std::process::Command::new(env!("CARGO_BIN_EXE_agent-health")).args(args).output().expect("runs")
    };
    let out = run(vec!["check".into(), "--live".into(), agent.base.clone()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    ds.control().set_sensor("Calypso/DatabaseConnection", calypso::State::Red, None, Some("db down"));
    agent.until("/readyz", 503).await;
    let out = run(vec!["check".into(), agent.base.clone()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Calypso/DatabaseConnection"));
    let out = run(vec!["check".into(), "--startup".into(), agent.base.clone()]);
    assert_eq!(out.status.code(), Some(0));
    let out = run(vec!["check".into(), "http://127.0.0.1:1".into()]);
    assert_eq!(out.status.code(), Some(69));
    let out = run(vec!["check".into(), "https://127.0.0.1:1".into()]);
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn connection_sensors_as_liveness_sensors_are_refused() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_agent-health"))
        .args(["--upstream", "http://127.0.0.1:1/health", "--liveness-sensors", "Calypso/DatabaseConnection"])
        .env_clear()
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cascading-restart"));
}

/// The exposition format checked by Prometheus' own parser (`promtool check metrics`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool() {
    let Some(promtool) = calypso_testkit::require_tool("promtool") else { return };
    let ds = sim(Component::EngineServer, None).await;
    let agent = Agent::start(&ds.health_url(), &[]).await;
    agent.until("/readyz", 200).await;
    let metrics = agent.get("/metrics").await.1;
    assert!(
        metrics.contains(
            "calypso_health_state{subsystem=\"TransferEngine\",sensor=\"UnconsumedEvents\",state=\"GREEN\"} 1"
        ),
        "{metrics}"
    );
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), metrics.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The default listens on `[::]` dual-stack: kubelet probes the pod IP, IPv4 or IPv6.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listens_on_ipv4_and_ipv6_at_once() {
    let ds = sim(Component::DataServer, None).await;
    let agent = Agent::start(&ds.health_url(), &["--listen", "[::]:0"]).await;
    let have_ipv6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    if have_ipv6 {
        assert!(agent.base.starts_with("http://[::]:"), "{}", agent.base);
    }
    let port = agent.base.rsplit(':').next().expect("a port");
    for host in ["127.0.0.1", "[::1]"] {
        if host == "[::1]" && !have_ipv6 {
            eprintln!("SKIPPED the IPv6 half of listens_on_ipv4_and_ipv6_at_once: no IPv6 loopback here");
            continue;
        }
        let (status, body) = Agent::get_from(&format!("http://{host}:{port}"), "/livez").await;
        assert_eq!((status, body.as_str()), (200, "ok\n"), "{host}");
    }
}

/// Runs agent-health until it exits (it must, at once); returns its exit code, stderr and
/// termination message.
async fn failed_start(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let term = dir.path().join("termination-log");
    let mut env = env.to_vec();
    env.push(("AGENT_TERMINATION_LOG", term.to_str().expect("utf-8")));
    let mut agent = Spawned::start(command(args, &env));
    let code = agent.exit_code().await;
    (code, agent.stderr(), std::fs::read_to_string(&term).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_in_use_is_a_configuration_error_naming_the_setting() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let upstream = "http://127.0.0.1:1/health";
    let (code, stderr, message) = failed_start(&["--upstream", upstream, "--listen", &addr], &[]).await;
    assert_eq!(code, 64, "{stderr}");
    let expected = format!("--listen=\"{addr}\": {addr} is already in use");
    assert!(message.contains(&expected), "{message:?}");
    assert!(stderr.contains(&expected), "{stderr}");

    let (code, _, message) = failed_start(&["--upstream", upstream], &[("AGENT_HEALTH_LISTEN", &addr)]).await;
    assert_eq!(code, 64);
    assert!(
        message.contains(&format!("AGENT_HEALTH_LISTEN=\"{addr}\": {addr} is already in use")),
        "{message:?}"
    );

    let (code, _, message) = failed_start(
        &["--upstream", upstream, "--listen", "127.0.0.1:0"],
        &[("AGENT_HEALTH_DEBUG_LISTEN", &addr)],
    )
    .await;
    assert_eq!(code, 64);
    assert!(message.contains(&format!("AGENT_HEALTH_DEBUG_LISTEN=\"{addr}\"")), "{message:?}");
    drop(taken);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_not_on_this_host_is_a_configuration_error() {
    // TEST-NET-1 (RFC 5737) is never a local address; binding fails without sending anything.
    let (code, stderr, message) =
        failed_start(&["--upstream", "http://127.0.0.1:1/health", "--listen", "192.0.2.1:0"], &[]).await;
    assert_eq!(code, 64, "{stderr}");
    assert!(
        message.contains("--listen=\"192.0.2.1:0\": 192.0.2.1:0 is not an address of this host"),
        "{message:?}"
    );
}

/// Sensor details carry JDBC URLs and credentials: none of it leaves agent-health — not in
/// `/status`, `?verbose`, the one-line reasons, `/metrics`, the log or the termination message.
/// With `--debug-listen`, `/status` and `?verbose` are served on loopback only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_sensor_details_never_leave_and_details_stay_on_loopback() {
    const SECRET: &str = "hunter2";
    let dir = tempfile::tempdir().expect("tempdir");
    let term = dir.path().join("termination-log");
    let ds = sim(Component::DataServer, None).await;
    ds.control().set_sensor(
        "Calypso/Pool token=hunter2",
        calypso::State::Green,
        Some(3.0),
        Some("pool at postgresql://calypso:hunter2@db/cal"),
    );
    let mut agent = Agent::start_with(
        &ds.health_url(),
        &["--debug-listen", "127.0.0.1:0", "--shutdown-delay", "60s"],
        &[("AGENT_LOG", "debug"), ("AGENT_TERMINATION_LOG", term.to_str().expect("utf-8"))],
    )
    .await;
    let debug = agent.debug.clone().expect("the debug address in the log");
    agent.until("/readyz", 200).await;
    let details = "cannot connect to jdbc:oracle:thin:calypso/hunter2@db:1521/CAL; password=hunter2";
    ds.control().set_sensor("Calypso/DatabaseConnection", calypso::State::Red, None, Some(details));
    let reason = agent.until("/readyz", 503).await;
    assert!(reason.contains("Calypso/DatabaseConnection"), "{reason}");

    // The main address: probes and metrics, no details.
    let (code, body) = agent.get("/status").await;
    assert_eq!(code, 404, "{body}");
    let (code, plain) = agent.get("/readyz?verbose").await;
    assert_eq!(code, 503);
    assert_eq!(plain.lines().count(), 1, "?verbose is not served on the main address: {plain}");
    let metrics = agent.get("/metrics").await.1;
    assert!(metrics.contains("sensor=\"Pool token=***\""), "{metrics}");

    // The debug address: everything, redacted.
    let (code, verbose) = Agent::get_from(&debug, "/readyz?verbose").await;
    assert_eq!(code, 503);
    assert!(verbose.contains("jdbc:oracle:thin:calypso/***@db:1521/CAL; password=***"), "{verbose}");
    let status = Agent::get_from(&debug, "/status").await.1;
    assert!(status.contains("postgresql://calypso:***@db/cal"), "{status}");
    let (code, live) = Agent::get_from(&debug, "/livez?verbose").await;
    assert_eq!(code, 200, "{live}");

    agent.process.signal(Signal::SIGTERM);
    agent.until("/readyz", 503).await;
    agent.process.signal(Signal::SIGTERM);
    assert_eq!(agent.process.exit_code().await, 143);
    let message = std::fs::read_to_string(&term).expect("a termination message");
    let stderr = agent.process.stderr();
    assert!(stderr.contains("ready: state RED (Calypso/DatabaseConnection: RED)"), "{stderr}");
    for (what, text) in [
        ("/readyz", &reason),
        ("?verbose", &verbose),
        ("/status", &status),
        ("/metrics", &metrics),
        ("stderr", &stderr),
        ("the termination message", &message),
    ] {
        assert!(!text.contains(SECRET), "{what} shows the secret: {text}");
    }
}

/// A huge health report full of URLs (masking work that once grew with its square) never stalls
/// the probes: the kubelet gives `/livez` one second; each answer here comes within 100 ms while
/// the polls go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_report_full_of_urls_never_delays_a_probe() {
    let ds = sim(Component::DataServer, None).await;
    let agent = Agent::start(&ds.health_url(), &["--debug-listen", "127.0.0.1:0"]).await;
    agent.until("/readyz", 200).await;
    // 160 KB of `://` without a space, half a sensor's details each.
    let hostile = "http://a@b:c/".repeat(80 * 1024 / 13);
    ds.control().set_sensor("Calypso/Endpoints", calypso::State::Green, None, Some(&hostile));
    ds.control().set_sensor("Calypso/Routes", calypso::State::Green, None, Some(&hostile));
    let polls = async || {
        let metrics = agent.get("/metrics").await.1;
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("agent_health_poll_duration_seconds_count ")?.parse::<u64>().ok())
    };
    let first = polls().await.expect("polls counted");
    let mut slowest = Duration::ZERO;
    let mut probes = 0;
    while polls().await.expect("polls counted") < first + 4 {
        let started = std::time::Instant::now();
        let (code, body) = agent.get("/livez").await;
        slowest = slowest.max(started.elapsed());
        probes += 1;
        assert_eq!(code, 200, "{body}");
    }
    assert!(slowest < Duration::from_millis(100), "the slowest of {probes} /livez answers took {slowest:?}");
    // What is kept of each detail is bounded, and says so.
    let status = Agent::get_from(agent.debug.as_deref().expect("debug address"), "/status").await.1;
    assert!(status.contains("more bytes not kept]"), "{}", &status[..status.len().min(2000)]);
    assert!(status.len() < 40 * 1024, "/status holds {} bytes", status.len());
}

/// An upstream that sends its status and headers and then drops the connection mid-body has
/// answered: the JVM runs. Not ready, but alive for longer than the liveness grace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_cut_off_mid_body_is_not_ready_but_alive() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/health", upstream.local_addr().expect("addr"));
    let served = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = served.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = upstream.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let head = "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 4000\r\n\r\n";
            let _ = s.write_all(format!("{head}{{\"state\":\"RED\",\"subSystems\":[").as_bytes()).await;
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            // Dropped: the connection closes 3971 bytes short.
        }
    });
    let agent = Agent::start(&url, &["--debug-listen", "127.0.0.1:0"]).await;
    let reason = agent.until("/readyz", 503).await;
    assert!(reason.contains("HTTP 503, then the answer was cut off after 29 bytes of body"), "{reason}");
    let since = SystemTime::now();
    let status = polled_for(&agent, "bad_answer", since, GRACE + Duration::from_secs(1)).await;
    assert!(
        transitions(&status, "live").iter().all(|(ok, ..)| *ok),
        "a cut-off answer is an answer: {status}"
    );
    assert_eq!(agent.get("/livez").await.0, 200);
    assert!(served.load(std::sync::atomic::Ordering::SeqCst) >= 4, "the cut-off answers were sent");
}

/// The upstream is asked by name and the DNS server goes silent: readiness fails naming the DNS
/// server, not Calypso, and liveness holds for longer than the grace — a DNS outage must not get
/// every Calypso server restarted. When DNS answers again, the engine is ready again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_dns_server_is_not_ready_but_never_fails_liveness() {
    let dns = calypso_testkit::dns::DnsDouble::start().await.expect("dns double");
    dns.insert("calypso.test", std::net::Ipv4Addr::LOCALHOST);
    let ds = sim(Component::DataServer, None).await;
    let url = format!("http://calypso.test:{}/health", ds.addr().port());
    let servers = dns.addr().to_string();
    let agent =
        Agent::start_with(&url, &["--debug-listen", "127.0.0.1:0"], &[("AGENT_DNS_SERVERS", &servers)]).await;
    agent.until("/readyz", 200).await;
    dns.silence(true);
    let reason = agent.until("/readyz", 503).await;
    let want =
        format!("not asked: dns: no answer for \"calypso.test\" from the DNS server {servers} within 400ms");
    assert!(reason.contains(&want), "{reason}");
    let since = SystemTime::now();
    let status = polled_for(&agent, "not_asked", since, GRACE + Duration::from_secs(1)).await;
    assert!(transitions(&status, "live").iter().all(|(ok, ..)| *ok), "DNS is not Calypso: {status}");
    assert_eq!(agent.get("/livez").await.0, 200);
    dns.silence(false);
    agent.until("/readyz", 200).await;
}
