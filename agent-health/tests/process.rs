//! agent-health as a process against calypso-sim: the failover that must never restart a
//! server, a hung JVM, bad payloads, draining on SIGTERM, and its metrics checked by promtool.
//! Durations are configured short; every wait polls with a deadline.

use std::process::Stdio;
use std::time::Duration;

use calypso::Component;
use calypso_testkit::client;
use calypso_testkit::process::{PATIENCE, Spawned};
use calypso_testkit::{Mode, Sim, SimConfig, SimHandle, eventually};
use nix::sys::signal::Signal;
use tokio::process::Command;

struct Agent {
    process: Spawned,
    base: String,
}

impl Agent {
    /// Starts agent-health on a free port with short durations, and waits until it serves.
    /// `extra` flags replace the defaults of the same name.
    async fn start(upstream: &str, extra: &[&str]) -> Agent {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_agent-health"));
        cmd.args(["--upstream", upstream, "--listen", "127.0.0.1:0"]);
        for (flag, value) in [
            ("--interval", "200ms"),
            ("--attempt-timeout", "150ms"),
            ("--liveness-grace", "1s"),
            ("--shutdown-delay", "1s"),
        ] {
            if !extra.contains(&flag) {
                cmd.args([flag, value]);
            }
        }
        cmd.args(extra).env_clear().env("AGENT_LOG", "info").stdout(Stdio::null());
        let process = Spawned::start(cmd);
        let addr = process
            .find_in_stderr("the listen address in the log", |line| {
                let at = line.find("listen=")?;
                Some(line[at + 7..].split_whitespace().next()?.to_string())
            })
            .await;
        Agent { process, base: format!("http://{addr}") }
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = client::get(&format!("{}{path}", self.base), Duration::from_secs(2))
            .await
            .expect("agent answers");
        (r.status, r.text())
    }

    /// Waits until `path` answers `status`; returns the body.
    async fn until(&self, path: &str, status: u16) -> String {
        eventually(&format!("{path} to answer {status}"), PATIENCE, async || {
            let (s, body) = self.get(path).await;
            (s == status).then_some(body)
        })
        .await
    }
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
    // Longer than the liveness grace (1s): liveness holds the whole outage.
    let outage = tokio::time::Instant::now();
    while outage.elapsed() < Duration::from_millis(1500) {
        let (status, body) = agent.get("/livez").await;
        assert_eq!(status, 200, "liveness failed during a failover: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut cfg = SimConfig::new(Component::DataServer);
    cfg.listen = ds_addr;
    let _ds = Sim::start(cfg).await.expect("DataServer back on its address");
    agent.until("/readyz", 200).await;

    let status = agent.get("/status").await.1;
    let json: serde_json::Value = serde_json::from_str(&status).expect("status is JSON");
    let ready: Vec<bool> = json["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .filter(|t| t["probe"] == "ready")
        .map(|t| t["ok"].as_bool().expect("ok"))
        .collect();
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
    assert!(reason.contains("unreachable: no answer within 150ms"), "{reason}");
    assert_eq!(agent.get("/livez").await.0, 200, "not before the grace");
    let reason = agent.until("/livez", 503).await;
    assert!(reason.starts_with("no answer from Calypso for 1"), "{reason}");
    ds.control().set_mode(Mode::Normal);
    agent.until("/livez", 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_payloads_are_answers_not_ready_but_alive() {
    let ds = sim(Component::DataServer, None).await;
    let agent = Agent::start(&ds.health_url(), &[]).await;
    agent.until("/readyz", 200).await;
    ds.control().set_mode(Mode::Garbage);
    let reason = agent.until("/readyz", 503).await;
    assert!(reason.contains("bad health payload"), "{reason}");
    // A bad payload is an answer: alive for longer than the grace.
    let since = tokio::time::Instant::now();
    while since.elapsed() < Duration::from_millis(1500) {
        assert_eq!(agent.get("/livez").await.0, 200, "garbage is an answer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ds.control().set_mode(Mode::EmptyUnavailable);
    let reason = agent.until("/readyz?verbose", 503).await;
    assert!(reason.contains("readyz check failed"), "{reason}");
    ds.control().set_mode(Mode::Slow(Duration::from_millis(300)));
    eventually("a slow answer to count as none", PATIENCE, async || {
        agent.get("/readyz").await.1.contains("no answer within 150ms").then_some(())
    })
    .await;
    ds.control().set_mode(Mode::Normal);
    agent.until("/readyz", 200).await;
    assert_eq!(agent.get("/livez").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_readiness_first_then_exits_0() {
    let ds = sim(Component::DataServer, None).await;
    let mut agent = Agent::start(&ds.health_url(), &["--shutdown-delay", "3s"]).await;
    agent.until("/readyz", 200).await;
    let signalled = tokio::time::Instant::now();
    agent.process.signal(Signal::SIGTERM);
    let reason = agent.until("/readyz", 503).await;
    assert_eq!(reason.trim(), "shutting down");
    assert_eq!(agent.get("/livez").await.0, 200, "liveness keeps answering while draining");
    assert_eq!(agent.process.exit_code().await, 0, "{}", agent.process.stderr());
    assert!(signalled.elapsed() >= Duration::from_secs(3), "exited before the shutdown delay");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_143_at_once() {
    let ds = sim(Component::DataServer, None).await;
    let mut agent = Agent::start(&ds.health_url(), &["--shutdown-delay", "60s"]).await;
    agent.until("/readyz", 200).await;
    agent.process.signal(Signal::SIGTERM);
    agent.until("/readyz", 503).await;
    agent.process.signal(Signal::SIGTERM);
    assert_eq!(agent.process.exit_code().await, 143);
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
