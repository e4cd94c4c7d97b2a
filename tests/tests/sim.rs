//! The simulator as other tests use it: through its Rust API and its HTTP interface, on
//! 127.0.0.1:0, waiting for outcomes with deadlines rather than fixed sleeps.

use calypso::{Component, HealthNode, HealthReport, State};
use calypso_testkit::client::{self, Method, Response};
use calypso_testkit::logwriter::LogConfig;
use calypso_testkit::sim::GARBAGE_BODY;
use calypso_testkit::{Mode, Sim, SimConfig, SimHandle, eventually};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(10);
const ANSWER: Duration = Duration::from_secs(5);

async fn start(cfg: SimConfig) -> SimHandle {
    Sim::start(cfg).await.expect("simulator starts")
}

async fn get(url: &str) -> Response {
    client::get(url, ANSWER).await.unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

async fn call(method: Method, url: &str) -> Response {
    client::request(method.clone(), url, ANSWER).await.unwrap_or_else(|e| panic!("{method} {url}: {e}"))
}

fn health(r: &Response) -> HealthReport {
    r.health().unwrap_or_else(|e| panic!("health answer {} {:?} does not parse: {e}", r.status, r.text()))
}

fn sensor(report: &HealthReport, path: &str) -> Option<HealthNode> {
    report.nodes().into_iter().find(|(p, _)| p == path).map(|(_, n)| n.clone())
}

fn leaf_paths(report: &HealthReport) -> Vec<String> {
    report.nodes().into_iter().filter(|(_, n)| n.children.is_empty()).map(|(p, _)| p).collect()
}

/// The sensor table of the simulator's documentation, written out independently.
fn expected_sensors(c: Component) -> Vec<String> {
    let mut v = vec!["System/MemoryUsage".to_owned()];
    if c != Component::EventServer {
        v.push("Calypso/EventServerConnection".into());
    }
    if c == Component::DataServer {
        v.push("Calypso/DatabaseConnection".into());
    }
    if !matches!(c, Component::EventServer | Component::AuthServer | Component::DataServer) {
        v.push("Calypso/DataServerConnection".into());
    }
    if c == Component::EngineServer {
        for e in ["TransferEngine", "TaskEngine", "MessageEngine"] {
            v.push(format!("{e}/EngineRunning"));
            v.push(format!("{e}/UnconsumedEvents"));
        }
    }
    v
}

#[tokio::test]
async fn every_component_type_serves_its_sensors_green_in_the_canonical_shape() {
    for c in Component::ALL {
        let sim = start(SimConfig::new(c)).await;
        let r = get(&sim.health_url()).await;
        assert_eq!(r.status, 200, "{c}");
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        let json = r.json().expect("JSON body");
        assert_eq!(json["type"], c.name());
        assert_eq!(json["server"], format!("{}-0", c.name().to_lowercase()));
        assert_eq!(json["state"], "GREEN");
        let ts = json["timestamp"].as_str().expect("timestamp");
        assert!(ts.ends_with('Z') && humantime::parse_rfc3339(ts).is_ok(), "{ts}");
        assert!(json["subSystems"][0]["sensors"].is_array());

        let report = health(&r);
        assert_eq!(leaf_paths(&report), expected_sensors(c), "{c}");
        assert!(report.nodes().iter().all(|(_, n)| n.state == State::Green));
        let memory = sensor(&report, "System/MemoryUsage").expect("memory sensor");
        assert_eq!(
            (memory.unit.as_deref(), memory.amber_threshold, memory.red_threshold),
            (Some("%"), Some(80.0), Some(95.0))
        );
        assert!(memory.value.is_some_and(|v| v < 80.0));
        assert_eq!(sim.control().requests(), 1);
        sim.shutdown().await;
    }
}

#[tokio::test]
async fn engine_server_engines_have_running_and_unconsumed_events_sensors() {
    let sim = start(SimConfig::new(Component::EngineServer)).await;
    let report = health(&get(&sim.health_url()).await);
    for engine in ["TransferEngine", "TaskEngine", "MessageEngine"] {
        let running = sensor(&report, &format!("{engine}/EngineRunning")).expect("EngineRunning");
        assert_eq!(running.value, Some(1.0));
        let events = sensor(&report, &format!("{engine}/UnconsumedEvents")).expect("UnconsumedEvents");
        assert_eq!((events.amber_threshold, events.red_threshold), (Some(1000.0), Some(10000.0)));
    }
}

#[tokio::test]
async fn status_code_and_states_follow_the_worst_sensor() {
    let sim = start(SimConfig::new(Component::EngineServer)).await;
    let control = sim.control();

    control.set_sensor(
        "TaskEngine/UnconsumedEvents",
        State::Amber,
        Some(1500.0),
        Some("1500 events pending"),
    );
    let r = get(&sim.health_url()).await;
    assert_eq!(r.status, 200, "AMBER is served with 200");
    let report = health(&r);
    assert_eq!(report.state, State::Amber);
    assert_eq!(sensor(&report, "TaskEngine").map(|n| n.state), Some(State::Amber));
    assert_eq!(sensor(&report, "TransferEngine").map(|n| n.state), Some(State::Green));

    control.set_sensor(
        "Calypso/DataServerConnection",
        State::Red,
        Some(0.0),
        Some("connection to DataServer lost"),
    );
    let r = get(&sim.health_url()).await;
    assert_eq!(r.status, 503, "RED is served with 503");
    let report = health(&r);
    assert_eq!(report.state, State::Red);
    assert_eq!(sensor(&report, "Calypso").map(|n| n.state), Some(State::Red));
    assert_eq!(
        report.summary(),
        "state RED (Calypso/DataServerConnection: RED 'connection to DataServer lost'; \
TaskEngine/UnconsumedEvents: AMBER '1500 events pending')"
    );
    assert_eq!(control.report().state, State::Red, "report() is what /health serves");

    control.set_sensor("Calypso/DataServerConnection", State::Green, Some(1.0), None);
    control.set_sensor("TaskEngine/UnconsumedEvents", State::Green, Some(3.0), None);
    let r = get(&sim.health_url()).await;
    assert_eq!((r.status, health(&r).state), (200, State::Green));
    assert_eq!(control.requests(), 3);
}

#[tokio::test]
async fn head_other_paths_and_methods() {
    let sim = start(SimConfig::new(Component::AuthServer)).await;
    let head = call(Method::HEAD, &sim.health_url()).await;
    assert_eq!((head.status, head.body.len()), (200, 0));
    assert_eq!(head.content_type.as_deref(), Some("application/json"));
    assert_eq!(get(&sim.url("/healthz")).await.status, 404);
    assert_eq!(get(&sim.url("/")).await.status, 404);
    assert_eq!(call(Method::POST, &sim.health_url()).await.status, 405);
}

#[tokio::test]
async fn custom_health_path_and_server_name() {
    let cfg = SimConfig {
        path: "calypso/health".into(),
        server_name: "ds-primary".into(),
        ..SimConfig::new(Component::DataServer)
    };
    let sim = start(cfg).await;
    assert!(sim.health_url().ends_with("/calypso/health"), "{}", sim.health_url());
    let r = get(&sim.health_url()).await;
    assert_eq!(health(&r).server.as_deref(), Some("ds-primary"));
    assert_eq!(get(&sim.url("/health")).await.status, 404);
}

#[tokio::test]
async fn http_control_api_sets_sensors_and_reports() {
    let sim = start(SimConfig::new(Component::DataServer)).await;
    let r = call(
        Method::PUT,
        &sim.url("/sim/sensor/Calypso/DatabaseConnection?state=red&value=0&details=ORA-12541%3A+no+listener"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json().expect("report JSON")["state"], "RED");

    let r = get(&sim.health_url()).await;
    assert_eq!(r.status, 503);
    let db = sensor(&health(&r), "Calypso/DatabaseConnection").expect("sensor");
    assert_eq!(
        (db.state, db.value, db.details.as_deref()),
        (State::Red, Some(0.0), Some("ORA-12541: no listener"))
    );

    // A new sensor, with POST, in a new sub-system.
    let r = call(Method::POST, &sim.url("/sim/sensor/Replication/Lag?state=AMBER&value=42")).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        sim.control().report().sub_systems.last().map(|s| s.name.clone()).as_deref(),
        Some("Replication")
    );

    let report = get(&sim.url("/sim/report")).await;
    assert_eq!(report.status, 200, "the report is 200 whatever the state");
    assert_eq!(report.json().expect("JSON")["subSystems"][2]["sensors"][0]["value"], 42.0);
    assert_eq!(sim.control().requests(), 1, "control calls are not health requests");
}

#[tokio::test]
async fn http_control_api_refuses_bad_requests_with_a_reason() {
    let sim = start(SimConfig::new(Component::DataServer)).await;
    for (method, path, status, reason) in [
        (Method::PUT, "/sim/sensor/Calypso/DatabaseConnection", 400, "missing parameter state"),
        (Method::PUT, "/sim/sensor/Calypso/DatabaseConnection?state=BLUE", 400, "bad parameter state"),
        (Method::PUT, "/sim/sensor/Calypso/DatabaseConnection?state=RED&value=x", 400, "bad parameter value"),
        (Method::PUT, "/sim/sensor/Calypso?state=RED", 400, "bad sensor path"),
        (Method::POST, "/sim/mode/slow?delay=forever", 400, "bad parameter delay"),
        (Method::POST, "/sim/mode/sideways", 400, "bad mode"),
        (Method::GET, "/sim/mode/hang", 405, "use POST"),
        (Method::GET, "/sim/unknown", 404, "no such control endpoint"),
    ] {
        let r = call(method.clone(), &sim.url(path)).await;
        let text = r.text();
        assert_eq!(r.status, status, "{method} {path}: {text}");
        assert!(text.contains(reason) && text.lines().count() == 1, "{method} {path}: {text:?}");
    }
    assert_eq!(sim.control().mode(), Mode::Normal);
    assert_eq!(get(&sim.health_url()).await.status, 200, "nothing was changed");
}

#[tokio::test]
async fn modes_are_set_through_http() {
    let sim = start(SimConfig::new(Component::RiskServer)).await;
    for (path, mode) in [
        ("hang", Mode::Hang),
        ("close", Mode::Close),
        ("garbage", Mode::Garbage),
        ("empty-503", Mode::EmptyUnavailable),
        ("slow?delay=2s", Mode::Slow(Duration::from_secs(2))),
        ("normal", Mode::Normal),
    ] {
        let r = call(Method::POST, &sim.url(&format!("/sim/mode/{path}"))).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(sim.control().mode(), mode);
    }
}

#[tokio::test]
async fn hang_mode_reads_the_request_and_never_answers_while_control_keeps_working() {
    let sim = start(SimConfig::new(Component::EngineServer)).await;
    sim.control().set_mode(Mode::Hang);
    let started = Instant::now();
    let err = client::get(&sim.health_url(), Duration::from_millis(300)).await.expect_err("no answer");
    assert!(err.is_timeout(), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(300));

    let report = get(&sim.url("/sim/report")).await;
    assert_eq!(report.status, 200, "the control API answers while the health path hangs");
    assert_eq!((sim.control().received(), sim.control().requests()), (1, 0));

    call(Method::POST, &sim.url("/sim/mode/normal")).await;
    assert_eq!(get(&sim.health_url()).await.status, 200);
    assert_eq!(sim.control().requests(), 1);
}

#[tokio::test]
async fn shutdown_gives_up_a_hanging_request_without_waiting_for_the_grace_period() {
    // The simulator's warnings, captured: this test runs on one thread (tokio's current-thread
    // runtime), so a thread-local subscriber sees every task of the simulator.
    let warnings = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(warnings.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let sim = start(SimConfig::new(Component::EngineServer)).await;
    sim.control().set_mode(Mode::Hang);
    let url = sim.health_url();
    let pending = tokio::spawn(async move { client::get(&url, Duration::from_secs(60)).await });
    eventually("the hanging request to be read", WAIT, async || {
        (sim.control().received() == 1).then_some(())
    })
    .await;
    // Without a deadline of its own a hanging answer would keep the shutdown waiting; the
    // generous bound only says that it ends, not how fast.
    tokio::time::timeout(Duration::from_secs(20), sim.shutdown()).await.expect("shutdown completes");
    let outcome = pending.await.expect("join");
    assert!(outcome.as_ref().is_err_and(|e| e.is_closed()), "{outcome:?}");
    // The hanging answer gave up on the stop signal itself: the server did not have to drop
    // the connection when the grace period for answers in flight ran out (it warns when it does).
    let logged = warnings.text();
    assert!(!logged.contains("grace period"), "the shutdown waited for the grace period: {logged}");
}

/// A `tracing` writer that keeps what is written, for tests of what the simulator logs.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

#[tokio::test]
async fn slow_mode_answers_after_the_delay() {
    let sim = start(SimConfig::new(Component::Scheduler)).await;
    sim.control().set_mode(Mode::Slow(Duration::from_millis(400)));
    let started = Instant::now();
    let r = get(&sim.health_url()).await;
    assert!(started.elapsed() >= Duration::from_millis(400), "answered after {:?}", started.elapsed());
    assert_eq!((r.status, health(&r).state), (200, State::Green));
    let err = client::get(&sim.health_url(), Duration::from_millis(100)).await.expect_err("too slow");
    assert!(err.is_timeout(), "{err}");
}

#[tokio::test]
async fn close_mode_closes_without_answering() {
    let sim = start(SimConfig::new(Component::QuoteServer)).await;
    sim.control().set_mode(Mode::Close);
    let err = client::get(&sim.health_url(), ANSWER).await.expect_err("closed");
    assert!(err.is_closed(), "{err}");
    assert_eq!(get(&sim.url("/sim/report")).await.status, 200);
    assert_eq!(sim.control().requests(), 0);
}

#[tokio::test]
async fn garbage_mode_serves_broken_json_that_calypso_refuses() {
    let sim = start(SimConfig::new(Component::MarketDataServer)).await;
    sim.control().set_mode(Mode::Garbage);
    let r = get(&sim.health_url()).await;
    assert_eq!((r.status, r.content_type.as_deref()), (200, Some("application/json")));
    assert_eq!(r.text(), GARBAGE_BODY);
    assert!(r.health().is_err(), "garbage must not parse as a health report");
    assert_eq!(sim.control().requests(), 1);
}

#[tokio::test]
async fn empty_503_mode_serves_an_empty_unavailable() {
    let sim = start(SimConfig::new(Component::PresentationServer)).await;
    sim.control().set_mode(Mode::EmptyUnavailable);
    let r = get(&sim.health_url()).await;
    assert_eq!((r.status, r.body.len()), (503, 0));
    assert_eq!(r.health().map(|h| h.state).ok(), Some(State::Red), "a 5xx without JSON reads as RED");
}

#[tokio::test]
async fn connections_are_refused_until_the_listen_delay_has_passed() {
    let cfg = SimConfig { listen_delay: Duration::from_secs(2), ..SimConfig::new(Component::DataServer) };
    let sim = start(cfg).await;
    assert_ne!(sim.addr().port(), 0, "the port is known before listening");
    let err = client::get(&sim.health_url(), ANSWER).await.expect_err("not listening yet");
    assert!(err.is_refused(), "{err}");
    let r = eventually("the simulator to listen", WAIT, async || {
        client::get(&sim.health_url(), ANSWER).await.ok()
    })
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn starting_is_red_with_a_startup_sensor_then_green() {
    let cfg = SimConfig { startup_delay: Duration::from_secs(2), ..SimConfig::new(Component::DataServer) };
    let sim = start(cfg).await;
    let r = get(&sim.health_url()).await;
    assert_eq!(r.status, 503);
    let report = health(&r);
    assert_eq!(report.state, State::Red);
    let startup = sensor(&report, "Calypso/Startup").expect("startup sensor");
    assert_eq!((startup.state, startup.details.as_deref()), (State::Red, Some("starting")));
    assert!(sim.control().starting());

    let r = eventually("startup to finish", WAIT, async || {
        let r = get(&sim.health_url()).await;
        (r.status == 200).then_some(r)
    })
    .await;
    let report = health(&r);
    assert_eq!(report.state, State::Green);
    assert!(sensor(&report, "Calypso/Startup").is_none(), "the startup sensor disappears");
}

#[tokio::test]
async fn upstream_data_server_failover_drives_the_data_server_connection() {
    let ds = start(SimConfig::new(Component::DataServer)).await;
    let cfg = SimConfig {
        upstream: Some(ds.health_url()),
        upstream_interval: Duration::from_millis(50),
        ..SimConfig::new(Component::EngineServer)
    };
    let engine = start(cfg).await;
    let dsc = |state: State| data_server_connection(&engine).filter(|n| n.state == state);

    let up = eventually("DataServer connection up", WAIT, async || dsc(State::Green)).await;
    assert_eq!(up.details, Some(format!("connected to {}", ds.health_url())));
    assert_eq!(get(&engine.health_url()).await.status, 200);

    // The DataServer loses its database: the engine server sees it as a lost DataServer.
    ds.control().set_sensor("Calypso/DatabaseConnection", State::Red, Some(0.0), Some("ORA-03113"));
    let lost = eventually("DataServer connection lost", WAIT, async || dsc(State::Red)).await;
    let details = lost.details.unwrap_or_default();
    assert!(details.starts_with("connection to DataServer lost: "), "{details}");
    assert!(details.contains("Calypso/DatabaseConnection") && details.contains("ORA-03113"), "{details}");
    assert_eq!(get(&engine.health_url()).await.status, 503);

    // A manual setting of the driven sensor only lasts until the next poll.
    engine.control().set_sensor("Calypso/DataServerConnection", State::Green, Some(1.0), Some("manual"));
    eventually("the poll to overwrite the manual setting", WAIT, async || dsc(State::Red)).await;

    ds.control().set_sensor("Calypso/DatabaseConnection", State::Green, Some(1.0), None);
    eventually("DataServer connection back", WAIT, async || dsc(State::Green)).await;
    assert_eq!(get(&engine.health_url()).await.status, 200);

    // The DataServer goes away altogether. A poll cut off while it shuts down may report the
    // broken exchange first; the refused connections that follow must show.
    ds.shutdown().await;
    eventually("DataServer gone (cannot connect)", WAIT, async || {
        dsc(State::Red).filter(|n| n.details.as_deref().is_some_and(|d| d.contains("cannot connect")))
    })
    .await;
}

fn data_server_connection(sim: &SimHandle) -> Option<HealthNode> {
    sensor(&sim.control().report(), "Calypso/DataServerConnection")
}

#[tokio::test]
async fn upstream_that_hangs_counts_as_lost() {
    let ds = start(SimConfig::new(Component::DataServer)).await;
    ds.control().set_mode(Mode::Hang);
    let cfg = SimConfig {
        upstream: Some(ds.health_url()),
        upstream_interval: Duration::from_millis(50),
        ..SimConfig::new(Component::CalculationServer)
    };
    let calc = start(cfg).await;
    // RED from the start (not yet connected), and still RED after a timed-out poll.
    let red = eventually("a timed-out poll", WAIT, async || {
        data_server_connection(&calc)
            .filter(|n| n.details.as_deref().is_some_and(|d| d.contains("no answer within")))
    })
    .await;
    assert_eq!(red.state, State::Red);
}

#[tokio::test]
async fn upstream_on_a_component_without_the_data_server_connection_sensor_is_refused() {
    let ds = start(SimConfig::new(Component::DataServer)).await;
    for c in [Component::EventServer, Component::AuthServer, Component::DataServer] {
        let cfg = SimConfig { upstream: Some(ds.health_url()), ..SimConfig::new(c) };
        let err = Sim::start(cfg).await.expect_err("refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{c}: {err}");
        let text = err.to_string();
        assert!(text.contains(c.name()) && text.contains("Calypso/DataServerConnection"), "{text}");
    }
    let cfg =
        SimConfig { upstream: Some("https://ds/health".into()), ..SimConfig::new(Component::Scheduler) };
    let err = Sim::start(cfg).await.expect_err("not http");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("http://"), "{err}");
}

#[tokio::test]
async fn the_upstream_url_is_shown_without_its_credentials() {
    let ds = start(SimConfig::new(Component::DataServer)).await;
    let with_secrets = ds.health_url().replace("http://", "http://calypso:s3cret@") + "?token=t0ken&verbose";
    let cfg = SimConfig {
        upstream: Some(with_secrets),
        upstream_interval: Duration::from_millis(50),
        ..SimConfig::new(Component::Dispatcher)
    };
    let dispatcher = start(cfg).await;
    let shown = format!("{}?token=***&verbose", ds.health_url().replace("http://", "http://calypso:***@"));
    let before = data_server_connection(&dispatcher).and_then(|n| n.details).unwrap_or_default();
    assert!(!before.contains("s3cret") && !before.contains("t0ken"), "{before}");
    let up = eventually("DataServer connection up", WAIT, async || {
        data_server_connection(&dispatcher).filter(|n| n.state == State::Green)
    })
    .await;
    assert_eq!(up.details, Some(format!("connected to {shown}")));
}

#[tokio::test]
async fn exit_over_http_answers_then_stops() {
    let sim = start(SimConfig::new(Component::EventServer)).await;
    let r = call(Method::POST, &sim.url("/sim/exit")).await;
    assert_eq!(r.status, 200);
    tokio::time::timeout(WAIT, sim.exit_requested()).await.expect("exit requested");
    let url = sim.health_url();
    sim.shutdown().await;
    let err = client::get(&url, ANSWER).await.expect_err("stopped");
    assert!(err.is_refused(), "{err}");
}

#[tokio::test]
async fn a_sim_with_a_log_writes_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("DataServer.log");
    let cfg = SimConfig {
        log: Some(LogConfig { rate_per_sec: 500.0, ..LogConfig::new(&path) }),
        ..SimConfig::new(Component::DataServer)
    };
    let sim = start(cfg).await;
    eventually("some log records", WAIT, async || {
        let text = std::fs::read_to_string(&path).ok()?;
        text.contains(" seq=20\n").then_some(())
    })
    .await;
    sim.shutdown().await;
    let text = std::fs::read_to_string(&path).expect("log");
    assert!(text.lines().next().is_some_and(|l| l.ends_with(" seq=1")), "{text}");
}
