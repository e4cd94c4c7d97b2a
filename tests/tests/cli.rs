//! `calypso-sim` as a process: the bound line, serving, the exit paths and codes, `--help`.

use calypso::State;
use calypso_testkit::client::{self, Method};
use calypso_testkit::eventually;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

const WAIT: Duration = Duration::from_secs(10);
const SIM: &str = env!("CARGO_BIN_EXE_calypso-sim");

fn sim(args: &[&str]) -> Command {
    let mut cmd = Command::new(SIM);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    cmd
}

/// Starts the binary on a free port; returns it, its health URL (from the bound line), and the
/// rest of its stdout.
async fn spawn(args: &[&str]) -> (Child, String, BufReader<ChildStdout>) {
    let mut child = sim(&[&["--listen", "127.0.0.1:0"], args].concat()).spawn().expect("spawn calypso-sim");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    tokio::time::timeout(WAIT, out.read_line(&mut line)).await.expect("bound line in time").expect("read");
    let url = line
        .trim_end()
        .rsplit_once(" bound ")
        .map(|(_, url)| url.to_owned())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (child, url, out)
}

/// The first answer: the bound line comes before the simulator listens, so connections may be
/// refused for a moment.
async fn first_answer(url: &str) -> client::Response {
    eventually("the simulator to listen", WAIT, async || client::get(url, WAIT).await.ok()).await
}

async fn exit_code(child: &mut Child) -> Option<i32> {
    tokio::time::timeout(WAIT, child.wait()).await.expect("exits in time").expect("wait").code()
}

#[tokio::test]
async fn prints_the_bound_line_serves_and_exits_0_on_sim_exit() {
    let (mut child, url, mut out) = spawn(&["--component", "engine-server", "--name", "es-7"]).await;
    let re = "http://127.0.0.1:";
    assert!(url.starts_with(re) && url.ends_with("/health"), "{url}");

    let r = first_answer(&url).await;
    assert_eq!(r.status, 200);
    let report = r.health().expect("parses");
    assert_eq!(
        (report.server.as_deref(), report.server_type.as_deref()),
        (Some("es-7"), Some("EngineServer"))
    );

    let exit_url = url.replace("/health", "/sim/exit");
    let r = client::request(Method::POST, &exit_url, WAIT).await.expect("exit answer");
    assert_eq!(r.status, 200);
    assert_eq!(exit_code(&mut child).await, Some(0));

    let mut rest = String::new();
    out.read_to_string(&mut rest).await.expect("stdout");
    assert_eq!(rest, "", "exactly one line on stdout");
    let mut err = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut err).await.expect("stderr");
    assert!(err.contains("exit requested"), "{err}");
}

#[tokio::test]
async fn the_bound_line_names_component_and_server() {
    let mut child = sim(&["--listen", "127.0.0.1:0", "--component", "DataServer"]).spawn().expect("spawn");
    let mut line = String::new();
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    tokio::time::timeout(WAIT, out.read_line(&mut line)).await.expect("in time").expect("read");
    assert!(line.starts_with("calypso-sim: DataServer dataserver-0 bound http://127.0.0.1:"), "{line:?}");
}

#[tokio::test]
async fn sigterm_and_sigint_exit_0() {
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let (mut child, url, _out) = spawn(&["--component", "DataServer"]).await;
        first_answer(&url).await;
        let pid = Pid::from_raw(child.id().and_then(|id| i32::try_from(id).ok()).expect("pid"));
        kill(pid, signal).expect("signal");
        assert_eq!(exit_code(&mut child).await, Some(0), "{signal}");
    }
}

#[tokio::test]
async fn startup_delay_flags_refuse_then_start_red_then_green() {
    // Each phase lasts seconds, so that even a loaded machine cannot poll past one: refused
    // from the bound line to 3 s after the start, 503 "starting" from 3 s to 8 s, then 200.
    let (mut child, url, _out) =
        spawn(&["--component", "AuthServer", "--listen-delay", "3s", "--startup-delay", "8s"]).await;
    // The bound line is printed as soon as the address is bound, before listening.
    let err = client::get(&url, WAIT).await.expect_err("bound but not listening yet");
    assert!(err.is_refused(), "{err}");

    let starting = first_answer(&url).await;
    assert_eq!(starting.status, 503, "{}", starting.text());
    let report = starting.health().expect("parses");
    assert_eq!(report.state, State::Red);
    assert!(report.summary().contains("Calypso/Startup: RED 'starting'"), "{}", report.summary());

    let started = eventually("GREEN", 2 * WAIT, async || {
        client::get(&url, WAIT).await.ok().filter(|r| r.status != 503)
    })
    .await;
    assert_eq!(started.status, 200, "{}", started.text());
    assert_eq!(started.health().expect("parses").state, State::Green);
    let _ = child.start_kill();
}

#[tokio::test]
async fn upstream_on_a_component_without_the_data_server_connection_exits_64() {
    for component in ["EventServer", "AuthServer", "DataServer"] {
        let out = sim(&["--component", component, "--upstream", "http://127.0.0.1:1/health"])
            .output()
            .await
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{component}: {err}");
        assert!(err.contains("--upstream") && err.contains(component), "{err}");
        assert!(out.stdout.is_empty(), "nothing bound");
    }
}

#[tokio::test]
async fn logs_as_json_with_agent_log_format_and_refuses_a_bad_one() {
    let mut cmd = sim(&["--listen", "127.0.0.1:0", "--component", "DataServer"]);
    let mut child = cmd.env("AGENT_LOG_FORMAT", "json").env("AGENT_LOG", "info").spawn().expect("spawn");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    tokio::time::timeout(WAIT, out.read_line(&mut line)).await.expect("bound line in time").expect("read");
    let (_, url) = line.trim_end().rsplit_once(" bound ").expect("bound line");
    client::request(Method::POST, &url.replace("/health", "/sim/exit"), WAIT).await.expect("exit");
    assert_eq!(exit_code(&mut child).await, Some(0));
    let mut err = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut err).await.expect("stderr");
    assert!(err.contains("exit requested"), "{err}");
    for line in err.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(record["@timestamp"].is_string() && record["message"].is_string(), "{line}");
    }

    let out = sim(&["--component", "DataServer"]).env("AGENT_LOG_FORMAT", "xml").output().await.expect("run");
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("AGENT_LOG_FORMAT"));
    assert!(out.stdout.is_empty());
}

#[tokio::test]
async fn writes_the_log_with_the_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("EngineServer.log");
    let log_arg = log.to_str().expect("utf-8 path");
    let (mut child, url, _out) = spawn(&[
        "--component",
        "EngineServer",
        "--log-file",
        log_arg,
        "--log-rate",
        "1000",
        "--log-max-size",
        "4K",
        "--log-backups",
        "2",
        "--seed",
        "3",
    ])
    .await;
    eventually("two backups", WAIT, async || {
        std::path::Path::new(&format!("{log_arg}.2")).exists().then_some(())
    })
    .await;
    assert!(std::fs::metadata(&log).is_ok_and(|m| m.len() <= 4096));
    client::request(Method::POST, &url.replace("/health", "/sim/exit"), WAIT).await.expect("exit");
    assert_eq!(exit_code(&mut child).await, Some(0));
    assert!(!std::path::Path::new(&format!("{log_arg}.3")).exists());
}

#[tokio::test]
async fn help_documents_sensors_and_control_api() {
    let out = sim(&["--help"]).output().await.expect("run --help");
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--component",
        "--listen-delay",
        "--startup-delay",
        "--upstream",
        "--log-max-size",
        "--seed",
        "--config",
        "DATA_SERVER_NAME",
        "System/MemoryUsage",
        "Calypso/DataServerConnection",
        "UnconsumedEvents",
        "Calypso/Startup",
        "/sim/sensor/{SubSystem}/{Sensor}",
        "/sim/mode/slow?delay=2s",
        "/sim/report",
        "/sim/exit",
        "200 for GREEN",
        "503 for RED",
        "AGENT_LOG",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}");
    }
}

#[tokio::test]
async fn bad_flags_exit_64_naming_the_flag() {
    let out = sim(&["--component", "TradeServer"]).output().await.expect("run");
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--component") && err.contains("TradeServer"), "{err}");

    let out = sim(&["--component", "DataServer", "--log-max-size", "10X"]).output().await.expect("run");
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--log-max-size"));
}

#[tokio::test]
async fn an_address_in_use_exits_70() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let out = sim(&["--component", "DataServer", "--listen", &addr]).output().await.expect("run");
    assert_eq!(out.status.code(), Some(70), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot start the simulator"));
}

#[tokio::test]
async fn config_file_names_the_dataserver_and_its_connections_never_the_password() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("calypsosystem.properties.UAT1");
    // As agent-init writes it: `:` `=` `#` `\` escaped.
    std::fs::write(
        &file,
        "# rendered by agent-init\nDRIVER=oracle.jdbc.OracleDriver\n\
DBURL=jdbc\\:oracle\\:thin\\:@db.uat\\:1521\\:UAT1\nDBUSER=calypso_uat1\n\
DBPASSWORD=p@ss\\=w\\:rd\\#1\\\\\nDATA_SERVER_NAME=ds-uat1\nEVENTSERVERHOST=es.uat\nEVENTSERVERPORT=61617\n",
    )
    .expect("write");
    let (mut child, url, _out) =
        spawn(&["--component", "DataServer", "--config", file.to_str().expect("utf-8")]).await;
    let report = first_answer(&url).await.health().expect("parses");
    assert_eq!(report.server.as_deref(), Some("ds-uat1"));
    let details =
        |path: &str| report.nodes().into_iter().find(|(p, _)| p == path).and_then(|(_, n)| n.details.clone());
    assert_eq!(
        details("Calypso/DatabaseConnection").as_deref(),
        Some("connected to jdbc:oracle:thin:@db.uat:1521:UAT1 as calypso_uat1")
    );
    assert_eq!(
        details("Calypso/EventServerConnection").as_deref(),
        Some("connected to EventServer tcp://es.uat:61617")
    );
    let body = client::get(&url.replace("/health", "/sim/report"), WAIT).await.expect("report").text();
    assert!(!body.contains("p@ss") && !body.contains("rd#1"), "{body}");

    client::request(Method::POST, &url.replace("/health", "/sim/exit"), WAIT).await.expect("exit");
    assert_eq!(exit_code(&mut child).await, Some(0));
    let mut err = String::new();
    child.stderr.take().expect("stderr").read_to_string(&mut err).await.expect("stderr");
    let read = err.lines().find(|l| l.contains("read the configuration")).unwrap_or_else(|| panic!("{err}"));
    assert!(read.contains("keys=7") && read.contains("calypsosystem.properties.UAT1"), "{read}");
    assert!(read.contains("DATA_SERVER_NAME, DBURL, DBUSER, EVENTSERVERHOST, EVENTSERVERPORT"), "{read}");
    assert!(!err.contains("p@ss") && !err.contains("rd#1"), "{err}");
}

#[tokio::test]
async fn a_missing_or_unparsable_config_file_exits_64_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nowhere.properties");
    let bad = dir.path().join("bad.properties");
    std::fs::write(&bad, "DBUSER=calypso\nDBURL=jdbc\\u12\n").expect("write");
    for (file, expected) in [
        (&missing, format!("{}: cannot read it", missing.display())),
        (&bad, format!("{}:2:11: malformed \\uXXXX escape", bad.display())),
    ] {
        let out = sim(&["--component", "DataServer", "--config", file.to_str().expect("utf-8")])
            .output()
            .await
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{err}");
        assert!(err.contains("--config") && err.contains(&expected), "{expected:?} in {err}");
        assert!(out.stdout.is_empty(), "nothing bound");
    }
}
