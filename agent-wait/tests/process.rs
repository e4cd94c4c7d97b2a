//! agent-wait as a process: real sockets, real signals, real exec, against the Calypso simulator
//! and the DNS double of `calypso-testkit`. Every wait is "until something is observed, within a
//! deadline"; nothing sleeps a fixed time.

use std::net::Ipv4Addr;
use std::process::Stdio;

use calypso::{Component, State};
use calypso_testkit::black_hole::{BlackHole, listen_drops};
use calypso_testkit::dns::DnsDouble;
use calypso_testkit::process::{PATIENCE, Spawned};
use calypso_testkit::{Mode, Sim, SimConfig, SimHandle, eventually};
use tokio::net::TcpSocket;
use tokio::process::Command;

/// Starts agent-wait with only `env` (and PATH) in its environment; stdout piped.
fn start(args: &[&str], env: &[(&str, &str)]) -> Spawned {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agent-wait"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .stdout(Stdio::piped());
    Spawned::start(cmd)
}

async fn sim(component: Component) -> SimHandle {
    Sim::start(SimConfig::new(component)).await.expect("sim starts")
}

fn calypso_url(sim: &SimHandle) -> String {
    sim.health_url().replacen("http://", "calypso://", 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_that_starts_resolving_late() {
    let dns = DnsDouble::start().await.expect("dns double");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let target = format!("tcp://dataserver.test:{port}");
    let servers = dns.addr().to_string();
    let mut agent = start(&[&target], &[("AGENT_DNS_SERVERS", &servers)]);
    agent.said("dns: no such host \"dataserver.test\"").await;
    let before = dns.queries();
    eventually("another lookup", PATIENCE, async || (dns.queries() > before).then_some(())).await;
    assert!(agent.running(), "a name that does not resolve yet is not fatal");
    dns.insert("dataserver.test", Ipv4Addr::LOCALHOST);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    assert!(agent.stderr().contains("1 target ready in"));
}

/// http and calypso targets resolve through the HTTP client's resolver: the same re-resolution,
/// and an HTTP proxy in the environment is not used for health checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calypso_target_by_late_name_ignoring_proxies() {
    let dns = DnsDouble::start().await.expect("dns double");
    let ds = sim(Component::DataServer).await;
    let target = format!("calypso://dataserver.test:{}/health", ds.addr().port());
    let servers = dns.addr().to_string();
    let proxy = "http://127.0.0.1:9";
    let mut agent = start(
        &[&target],
        &[
            ("AGENT_DNS_SERVERS", &servers),
            ("HTTP_PROXY", proxy),
            ("http_proxy", proxy),
            ("ALL_PROXY", proxy),
        ],
    );
    agent.said("dns: no such host \"dataserver.test\"").await;
    dns.insert("dataserver.test", Ipv4Addr::LOCALHOST);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    assert!(ds.control().requests() > 0, "the simulator itself answered");
}

/// A name whose first address drops every SYN (a node gone) and whose second accepts: ready
/// through the second within the first attempt, for tcp (raced, RFC 8305) and http (the connect
/// timeout shared between the addresses). Tried one after the other with no connect timeout, every attempt would spend
/// its whole timeout on the first address, and agent-wait would never be ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_that_drops_packets_does_not_hold_the_name() {
    let dns = DnsDouble::start().await.expect("dns double");
    let ds = sim(Component::DataServer).await;
    let port = ds.addr().port();
    let hole = BlackHole::bind((Ipv4Addr::new(127, 0, 0, 2), port).into()).await.expect("black hole");
    let direct = tokio::time::timeout(PATIENCE / 10, tokio::net::TcpStream::connect(hole.addr())).await;
    assert!(direct.is_err(), "the first address drops SYNs: {direct:?}");
    dns.insert_all("dataserver.test", &[Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::LOCALHOST]);
    let servers = dns.addr().to_string();
    for target in
        [format!("tcp://dataserver.test:{port}"), format!("calypso://dataserver.test:{port}/health")]
    {
        let drops = listen_drops();
        // The overall deadline is many attempts long: before the fix it ran out.
        let args = [target.as_str(), "--attempt-timeout", "4s", "--timeout", "40s"];
        let mut agent = start(&args, &[("AGENT_DNS_SERVERS", &servers)]);
        assert_eq!(agent.exit_code().await, 0, "{target}: {}", agent.stderr());
        assert!(listen_drops() > drops, "{target}: agent-wait met the black hole");
        let stderr = agent.stderr();
        let ready = stderr.lines().find(|l| l.contains(": ready after")).expect("a ready line");
        assert!(ready.contains(" attempts=1 "), "{target}: ready within the first attempt: {stderr}");
    }
}

/// A DNS server that does not answer is named as the reason, for tcp and http targets alike:
/// the target is not to blame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_dns_server_is_named_not_the_target() {
    let dns = DnsDouble::start().await.expect("dns double");
    dns.insert("dataserver.test", Ipv4Addr::LOCALHOST);
    dns.silence(true);
    let servers = dns.addr().to_string();
    let ds = sim(Component::DataServer).await;
    let port = ds.addr().port();
    for target in
        [format!("tcp://dataserver.test:{port}"), format!("calypso://dataserver.test:{port}/health")]
    {
        let agent = start(&[&target, "--attempt-timeout", "300ms"], &[("AGENT_DNS_SERVERS", &servers)]);
        let want =
            format!("dns: no answer for \"dataserver.test\" from the DNS server {servers} within 300ms");
        agent.said(&want).await;
    }
    dns.silence(false);
    let target = format!("tcp://dataserver.test:{port}");
    let mut agent = start(&[&target, "--attempt-timeout", "300ms"], &[("AGENT_DNS_SERVERS", &servers)]);
    assert_eq!(agent.exit_code().await, 0, "answered again: {}", agent.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_then_listening() {
    // Bound but not listening: connections are refused until listen().
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let target = format!("tcp://{}", socket.local_addr().expect("addr"));
    let mut agent = start(&[&target], &[]);
    agent.said("connection refused").await;
    let _listener = socket.listen(8).expect("listen");
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_503_then_200() {
    let ds = sim(Component::DataServer).await;
    ds.control().set_sensor("Calypso/DatabaseConnection", State::Red, Some(0.0), Some("db down"));
    let mut agent = start(&[&ds.health_url()], &[]);
    agent.said("HTTP 503, want 200-299").await;
    ds.control().set_sensor("Calypso/DatabaseConnection", State::Green, Some(1.0), None);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_value_predicate() {
    let ds = sim(Component::DataServer).await;
    ds.control().set_sensor("Calypso/DatabaseConnection", State::Amber, None, None);
    let args =
        [ds.health_url(), "--json-path".into(), "$.state".into(), "--json-value".into(), "GREEN".into()];
    let mut agent = start(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    agent.said("HTTP 200, but $.state is \"AMBER\", want \"GREEN\"").await;
    ds.control().set_sensor("Calypso/DatabaseConnection", State::Green, None, None);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calypso_red_amber_green_strict() {
    let ds = sim(Component::DataServer).await;
    let c = ds.control();
    c.set_sensor("Calypso/DatabaseConnection", State::Red, Some(0.0), Some("db down"));
    let mut agent = start(&["--strict", &calypso_url(&ds)], &[]);
    agent.said("state RED (Calypso/DatabaseConnection: RED 'db down')").await;
    c.set_sensor("Calypso/DatabaseConnection", State::Amber, Some(1.0), Some("slow"));
    agent.said("state AMBER (Calypso/DatabaseConnection: AMBER 'slow')").await;
    assert!(agent.running(), "AMBER is not ready when strict");
    c.set_sensor("Calypso/DatabaseConnection", State::Green, Some(1.0), None);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calypso_amber_is_ready_unless_strict() {
    let ds = sim(Component::DataServer).await;
    let c = ds.control();
    c.set_sensor("Calypso/DatabaseConnection", State::Red, Some(0.0), Some("db down"));
    let mut agent = start(&[&calypso_url(&ds)], &[]);
    agent.said("state RED").await;
    c.set_sensor("Calypso/DatabaseConnection", State::Amber, Some(1.0), Some("slow"));
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_payload_is_not_ready_and_named() {
    let ds = sim(Component::DataServer).await;
    ds.control().set_mode(Mode::Garbage);
    let mut agent = start(&[&calypso_url(&ds)], &[]);
    agent.said("bad health payload (HTTP 200): invalid JSON at line 1").await;
    ds.control().set_mode(Mode::Normal);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hang_fires_the_attempt_timeout() {
    let ds = sim(Component::DataServer).await;
    ds.control().set_mode(Mode::Hang);
    let mut agent = start(&["--attempt-timeout", "200ms", &calypso_url(&ds)], &[]);
    agent.said("no answer within 200ms").await;
    let before = ds.control().received();
    // A hung attempt is abandoned and a new one made: the server sees new requests.
    eventually("a second hung request", PATIENCE, async || {
        (ds.control().received() > before + 1).then_some(())
    })
    .await;
    ds.control().set_mode(Mode::Normal);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_expiry_writes_the_exact_termination_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let term = dir.path().join("termination-log");
    let missing = dir.path().join("ready");
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let tcp = format!("tcp://{}", socket.local_addr().expect("addr"));
    let file = format!("file://{}", missing.display());
    // Seconds for the first attempts (instant here) to finish even on a starved machine.
    let mut agent =
        start(&["--timeout", "3s", &tcp, &file], &[("AGENT_TERMINATION_LOG", term.to_str().expect("utf-8"))]);
    assert_eq!(agent.exit_code().await, 124, "{}", agent.stderr());
    let expected =
        format!("deadline 3s passed; not ready: {tcp} (connection refused); {file} (no such file)\n");
    assert_eq!(std::fs::read_to_string(&term).expect("termination message"), expected);
    assert!(agent.stderr().contains(expected.trim_end()), "{}", agent.stderr());
}

/// Calypso sensor details may carry JDBC URLs and credentials: the progress lines and the
/// termination message show them redacted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_sensor_details_are_redacted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let term = dir.path().join("termination-log");
    let ds = sim(Component::DataServer).await;
    let details = "cannot connect to jdbc:oracle:thin:calypso/hunter2@db:1521/CAL password=hunter2";
    ds.control().set_sensor("Calypso/DatabaseConnection", State::Red, Some(0.0), Some(details));
    let mut agent = start(
        &["--timeout", "3s", &calypso_url(&ds)],
        &[("AGENT_TERMINATION_LOG", term.to_str().expect("utf-8"))],
    );
    assert_eq!(agent.exit_code().await, 124, "{}", agent.stderr());
    let message = std::fs::read_to_string(&term).expect("termination message");
    let shown = "'cannot connect to jdbc:oracle:thin:calypso/***@db:1521/CAL password=***'";
    assert!(message.contains(shown), "{message}");
    assert!(agent.stderr().contains(shown), "the progress line: {}", agent.stderr());
    assert!(
        !message.contains("hunter2") && !agent.stderr().contains("hunter2"),
        "{message}{}",
        agent.stderr()
    );
}

/// A bare `user:password@host:port` is a TCP target: its password is masked in the progress
/// lines and the termination message like every URL's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_user_info_target_is_masked_everywhere() {
    let dir = tempfile::tempdir().expect("tempdir");
    let term = dir.path().join("termination-log");
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let target = format!("calypso:hunter2@{}", socket.local_addr().expect("addr"));
    let mut agent =
        start(&["--timeout", "2s", &target], &[("AGENT_TERMINATION_LOG", term.to_str().expect("utf-8"))]);
    assert_eq!(agent.exit_code().await, 124, "{}", agent.stderr());
    let message = std::fs::read_to_string(&term).expect("termination message");
    let shown = format!("calypso:***@{} (connection refused)", socket.local_addr().expect("addr"));
    assert!(message.contains(&shown), "{message}");
    let stderr = agent.stderr();
    assert!(stderr.contains("calypso:***@"), "{stderr}");
    assert!(!message.contains("hunter2") && !stderr.contains("hunter2"), "{message}{stderr}");
}

/// A report of 160 KB of URLs (masking that once grew with its square took seconds) cannot
/// hold an attempt, nor the deadline: `--timeout 3s` ends within seconds of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_red_report_does_not_hold_the_deadline() {
    let ds = sim(Component::DataServer).await;
    let hostile = "http://a@b:c/".repeat(80 * 1024 / 13);
    ds.control().set_sensor("Calypso/Endpoints", State::Red, None, Some(&hostile));
    ds.control().set_sensor("Calypso/Routes", State::Red, None, Some(&hostile));
    let started = std::time::Instant::now();
    let mut agent = start(&["--timeout", "3s", &calypso_url(&ds)], &[]);
    assert_eq!(agent.exit_code().await, 124, "{}", agent.stderr());
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(6), "exited {took:?} after a 3 s deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_waiting_exits_143() {
    let dir = tempfile::tempdir().expect("tempdir");
    let term = dir.path().join("termination-log");
    let file = format!("file://{}", dir.path().join("never").display());
    let mut agent = start(&[&file], &[("AGENT_TERMINATION_LOG", term.to_str().expect("utf-8"))]);
    agent.said("no such file").await;
    agent.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 143, "{}", agent.stderr());
    let message = std::fs::read_to_string(&term).expect("termination message");
    assert_eq!(message, format!("SIGTERM while waiting; not ready: {file} (no such file)\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_replaces_agent_wait() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = dir.path().join("ready");
    std::fs::write(&ready, "yes").expect("write");
    let file = format!("file://{}", ready.display());
    // The same PID afterwards proves exec, not fork: the command replaced agent-wait.
    let mut agent = start(&[&file, "--", "sh", "-c", "echo pid=$$; exit 7"], &[]);
    let pid = agent.child.id().expect("pid");
    let mut stdout = agent.child.stdout.take().expect("stdout");
    assert_eq!(agent.exit_code().await, 7, "the command's exit code is the container's");
    let mut out = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut out).await.expect("read");
    assert_eq!(out, format!("pid={pid}\n"));
}

/// agent-wait holds SIGTERM and SIGINT blocked for its signal thread; the command must not
/// inherit that, or it would never hear the kubelet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_starts_with_no_signal_blocked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = dir.path().join("ready");
    std::fs::write(&ready, "yes").expect("write");
    let file = format!("file://{}", ready.display());
    let mut agent = start(&[&file, "--", "grep", "^SigBlk:", "/proc/self/status"], &[]);
    let mut stdout = agent.child.stdout.take().expect("stdout");
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    let mut out = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut out).await.expect("read");
    assert_eq!(out, "SigBlk:\t0000000000000000\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_not_found_exits_127() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ready = dir.path().join("ready");
    std::fs::write(&ready, "yes").expect("write");
    let file = format!("file://{}", ready.display());
    let mut agent = start(&[&file, "--", "/no/such/program", "--password=x"], &[]);
    assert_eq!(agent.exit_code().await, 127);
    assert!(agent.stderr().contains("cannot run \"/no/such/program\""), "{}", agent.stderr());
    assert!(!agent.stderr().contains("password=x"), "arguments may hold secrets");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configuration_lists_every_problem_and_exits_64() {
    let dir = tempfile::tempdir().expect("tempdir");
    let term = dir.path().join("termination-log");
    let mut agent = start(
        &["--timeout", "soon", "--component", "engineserver", "ftp://x"],
        &[
            ("AGENT_TERMINATION_LOG", term.to_str().expect("utf-8")),
            ("AGENT_WAIT_MAX_INTERVAL", "fast"),
            ("AGENT_LOG_FORMAT", "xml"),
        ],
    );
    assert_eq!(agent.exit_code().await, 64, "{}", agent.stderr());
    let message = std::fs::read_to_string(&term).expect("termination message");
    for needle in [
        "5 configuration problems",
        "AGENT_LOG_FORMAT=\"xml\"",
        "--timeout=\"soon\"",
        "AGENT_WAIT_MAX_INTERVAL=\"fast\"",
        "CALYPSO_DATASERVER_HEALTH_URL: missing",
        "TARGET=\"ftp://x\": unknown scheme",
    ] {
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_flag_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let term = dir.path().join("termination-log");
    let mut agent = start(&["--frobnicate"], &[("AGENT_TERMINATION_LOG", term.to_str().expect("utf-8"))]);
    assert_eq!(agent.exit_code().await, 64);
    assert!(agent.stderr().contains("--frobnicate"), "{}", agent.stderr());
    let message = std::fs::read_to_string(&term).expect("termination message");
    assert!(message.starts_with("error: unexpected argument '--frobnicate'"), "{message:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_exits_0_and_documents_the_environment() {
    let mut agent = start(&["--help"], &[]);
    let mut stdout = agent.child.stdout.take().expect("stdout");
    assert_eq!(agent.exit_code().await, 0);
    let mut out = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut out).await.expect("read");
    for needle in ["--component", "AGENT_WAIT_TIMEOUT", "CALYPSO_<COMPONENT>_HEALTH_URL", "124", "calypso://"]
    {
        assert!(out.contains(needle), "{needle} missing from --help");
    }
}

/// Dataserver-first: the DataServer's agent-wait holds until the AuthServer is healthy, and the
/// EngineServer's until the DataServer is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn component_mode_enforces_startup_order() {
    let auth = sim(Component::AuthServer).await;
    let ds = sim(Component::DataServer).await;
    auth.control().set_sensor("Calypso/EventServerConnection", State::Red, Some(0.0), Some("no broker"));
    ds.control().set_sensor("Calypso/DatabaseConnection", State::Red, Some(0.0), Some("db down"));
    let mut ds_wait =
        start(&["--component", "dataserver"], &[("CALYPSO_AUTHSERVER_HEALTH_URL", &auth.health_url())]);
    let mut es_wait =
        start(&["--component", "EngineServer"], &[("CALYPSO_DATASERVER_HEALTH_URL", &ds.health_url())]);
    ds_wait.said("authserver: state RED (Calypso/EventServerConnection: RED 'no broker')").await;
    es_wait.said("dataserver: state RED (Calypso/DatabaseConnection: RED 'db down')").await;

    auth.control().set_sensor("Calypso/EventServerConnection", State::Green, Some(1.0), None);
    assert_eq!(ds_wait.exit_code().await, 0, "{}", ds_wait.stderr());
    assert!(ds_wait.stderr().contains("authserver: ready after"));
    assert!(es_wait.running(), "the engine still waits for the DataServer");

    ds.control().set_sensor("Calypso/DatabaseConnection", State::Green, Some(1.0), None);
    assert_eq!(es_wait.exit_code().await, 0, "{}", es_wait.stderr());
    assert!(es_wait.stderr().contains("dataserver: ready after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn component_without_dependencies_is_ready_at_once() {
    let mut agent = start(&["--component", "event-server"], &[]);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    assert!(agent.stderr().contains("0 targets ready"));
}

/// A SIGTERM that arrives after every target is ready and before the exec is not swallowed:
/// agent-wait stops (143) and the command never starts. agent-wait is held at that very moment
/// by its own log line: its stderr is a pipe the test filled, so the write of "1 target ready"
/// blocks until the test drains it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_just_before_the_exec_stops_agent_wait() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ready, started) = (dir.path().join("ready"), dir.path().join("started"));
    std::fs::write(&ready, "yes").expect("write");
    let (reader, writer) = std::io::pipe().expect("pipe");
    let writer = tokio::net::unix::pipe::Sender::from_owned_fd(writer.into()).expect("non-blocking");
    writer.writable().await.expect("an empty pipe is writable");
    while writer.try_write(&[b'.'; 4096]).is_ok() {}
    let writer = writer.into_blocking_fd().expect("blocking again");
    let file = format!("file://{}", ready.display());
    let touch = format!("touch {}; sleep 60", started.display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_agent-wait"))
        .args([file.as_str(), "--", "sh", "-c", &touch])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        // Only the lines after the wait: the first write that blocks is "1 target ready".
        .env("AGENT_LOG", "warn,agent_wait=info,agent_wait::wait=warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(writer))
        .kill_on_drop(true)
        .spawn()
        .expect("agent-wait starts");
    let pid = child.id().expect("pid");
    // /proc/PID/syscall: "1 0x2 ..." is write(2, ...), the main thread's blocked log line.
    eventually("agent-wait blocked writing its ready line", PATIENCE, async || {
        let syscall = std::fs::read_to_string(format!("/proc/{pid}/syscall")).ok()?;
        syscall.starts_with("1 0x2 ").then_some(())
    })
    .await;
    calypso_testkit::process::signal_pid(pid, nix::sys::signal::Signal::SIGTERM);
    let drained = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut { reader }, &mut out);
        out
    });
    let status =
        tokio::time::timeout(PATIENCE, child.wait()).await.expect("agent-wait ends").expect("status");
    let stderr = drained.join().expect("drained");
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("SIGTERM after every target was ready, before \"sh\" started"), "{stderr}");
    assert!(!started.exists(), "the command never started");
}
