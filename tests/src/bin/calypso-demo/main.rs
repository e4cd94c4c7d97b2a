//! `calypso-demo`: the agents working together against simulated Calypso servers, as real
//! processes on this machine — no cluster, no container engine. First agent-init renders the
//! servers' configuration (`calypsosystem.properties.DEMO` and friends) from templates, env
//! values and a Secret laid out as the kubelet mounts one, as the init container of every pod
//! would. Then each server's "pod" is
//! `agent-wait --component X -- calypso-sim --component X --config <rendered file> ...`:
//! agent-wait holds the server back until its dependencies are healthy, then execs it, exactly as
//! an init container gate would. The demo prints one timeline of what every process says and of
//! each server's health as seen from outside, then a DataServer failover, then a summary of who
//! waited for what.
//!
//! Beside the EngineServer runs agent-health, its probe sidecar, started when the engine's gate
//! opens (a native sidecar listed after the agent-wait init container). The demo probes it as the
//! kubelet would — `/startupz` until it passes, then `/readyz` and `/livez` — and shows that the
//! DataServer failover makes the engine not ready (out of the Service) while its liveness holds
//! (never restarted), although the outage lasts longer than agent-health's liveness grace.
//!
//! It also draws the timeline as a picture: an SVG file (`--svg PATH`) with one lane per server
//! coloured by what it was doing (not listening, waiting, starting, ready, not ready), agent-health's
//! readyz and livez beside the EngineServer, and agent-logship's shipped documents over time. The
//! demo records what it observes as it goes ([`timeline`]); [`svg`] draws it.
//!
//! Run it with `./demo` (which builds the binaries first).

// This binary's output is its stdout timeline.
#![allow(clippy::print_stdout)]

mod svg;
mod timeline;

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use calypso::{Component, State};
use calypso_testkit::client::{self, Method};
use calypso_testkit::kube_sim::{EventUpdate, KubeOptions, KubeSim, NewEvent, Timing};
use clap::Parser;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::timeline::{Band, Status, Timeline};

/// Renders the servers' configuration with agent-init, then runs Event, Auth, Data and Engine
/// server simulators on it, each gated by agent-wait in component mode, with agent-health as the
/// EngineServer's probe sidecar, and prints a timeline of who waited for what; then fails the
/// DataServer over: the engine turns not ready, and stays live.
#[derive(Debug, Parser)]
///
/// It also writes the timeline as an SVG picture (`--svg`) and prints its path at the end.
#[command(name = "calypso-demo", version, args_override_self = true)]
struct Cli {
    /// Directory holding the agent-init, agent-wait, agent-health and calypso-sim binaries
    /// [default: this binary's].
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// How long the DataServer takes to start (RED "starting" until then).
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    dataserver_startup: Duration,
    /// Skip the DataServer failover at the end.
    #[arg(long)]
    no_failover: bool,
    /// Where to write the timeline as an SVG picture: one lane per server coloured by state over
    /// time, agent-health's probes, agent-logship's shipped documents. Written whole (a temporary
    /// file beside it, then renamed); its directory is created if missing. `./demo` writes
    /// `target/calypso-demo/timeline.svg`.
    #[arg(long, value_name = "PATH", default_value = "calypso-demo-timeline.svg")]
    svg: PathBuf,
}

/// The servers of the demo, in the order they are started (all at once; the gates order them).
const SERVERS: [(Component, &str); 4] = [
    (Component::EventServer, "1s"),
    (Component::AuthServer, "1s"),
    (Component::DataServer, ""), // from --dataserver-startup
    (Component::EngineServer, "1s"),
];

const PATIENCE: Duration = Duration::from_secs(60);
/// How long the demo goes on watching once the failover is over, so that the timeline (and its
/// picture) shows the recovered state for a while, not just the instant it began.
const AFTERWARDS: Duration = Duration::from_secs(2);

/// How long the DataServer's database stays down in the failover: seconds longer than agent-health
/// needs to notice (two polls), so that a busy machine still shows readyz fail.
const OUTAGE: Duration = Duration::from_secs(4);
/// agent-health's settings beside the EngineServer: short, for the demo (defaults: 2s, 1s, 60s),
/// but with an attempt timeout a loaded machine meets.
const HEALTH_INTERVAL: &str = "500ms";
const HEALTH_ATTEMPT_TIMEOUT: &str = "400ms";
const LIVENESS_GRACE: Duration = Duration::from_secs(2);
/// "Liveness holds" means something only if the outage outlasts the liveness grace.
const _: () = assert!(OUTAGE.as_millis() > LIVENESS_GRACE.as_millis());
/// How often the demo probes agent-health, as a kubelet would (every `periodSeconds`).
const PROBE_PERIOD: Duration = Duration::from_millis(100);

/// The environment agent-init renders for: `calypsosystem.properties.DEMO`.
const ENV: &str = "DEMO";
/// The database the rendered configuration names; the DataServer's health shows it.
const DB_URL: &str = "jdbc:oracle:thin:@calypso-db.demo:1521:DEMO";
/// The Secret's database password: hostile to a naive `.properties` writer (`= : #` and a
/// trailing backslash). It never appears in the demo's output.
const DB_PASSWORD: &str = "p@ss=w:rd#1\\";
/// The DataServer's sensor whose details the timeline shows.
const DATABASE_SENSOR: &str = "Calypso/DatabaseConnection";

/// The templates the demo's pods share (a ConfigMap in a cluster).
const TEMPLATES: [(&str, &str); 3] = [
    (
        "calypsosystem.properties.tmpl",
        "# calypsosystem.properties, rendered by agent-init for each environment\n\
DRIVER=oracle.jdbc.OracleDriver\n\
DBURL=${DBURL}\n\
DBUSER=${DBUSER:-calypso}\n\
DBPASSWORD=${secret:db-password}\n\
DATA_SERVER_NAME=${DATA_SERVER_NAME:-dataserver-demo}\n\
EVENTSERVERHOST=${EVENTSERVERHOST}\n\
EVENTSERVERPORT=${EVENTSERVERPORT}\n",
    ),
    (
        "calypsouser.properties.tmpl",
        "# calypsouser.properties\n\
CLIENTUSER=${CLIENTUSER:-calypso_user}\n\
WINDOW_TITLE=${WINDOW_TITLE:-Calypso demo}\n",
    ),
    (
        "log4j2.xml.tmpl",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<Configuration status=\"WARN\">\n\
  <Appenders>\n\
    <RollingFile name=\"file\" fileName=\"$${sys:calypso.home}/logs/server.log\" filePattern=\"$${sys:calypso.home}/logs/server.log.%i\"/>\n\
  </Appenders>\n\
  <Loggers>\n\
    <Logger name=\"com.calypso.tk.core\" level=\"${LOG_CATEGORY_CORE:-INFO}\"/>\n\
    <Root level=\"${LOG_LEVEL:-WARN}\"><AppenderRef ref=\"file\"/></Root>\n\
  </Loggers>\n\
</Configuration>\n",
    ),
];

struct Line {
    who: String,
    text: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Stopped by a signal: the run is dropped, and with it every process it started (they are
    // killed on drop) and its scratch directory; a demo killed alone must not leave them running.
    let stopped = async {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        }
    };
    let result = tokio::select! {
        result = run(cli) => result,
        signal = stopped => Err(format!("stopped by {signal}")),
    };
    match result {
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
    let agent_init = bin_dir.join("agent-init");
    let agent_wait = bin_dir.join("agent-wait");
    let agent_health = bin_dir.join("agent-health");
    let agent_logship = bin_dir.join("agent-logship");
    let sim = bin_dir.join("calypso-sim");
    let es_sim = bin_dir.join("es-sim");
    for b in [&agent_init, &agent_wait, &agent_health, &agent_logship, &sim, &es_sim] {
        if !b.exists() {
            return Err(format!(
                "{} is missing: build it first (cargo build --release -p agent-init -p agent-wait -p agent-health -p agent-logship -p calypso-testkit)",
                b.display()
            ));
        }
    }

    // One port per server: the rendered configuration and the gates name them before the servers
    // start. (agent-health binds a port of its own choosing and says which.)
    let ports = free_ports(SERVERS.len())?;
    let url = |i: usize| format!("http://127.0.0.1:{}/health", ports[i]);
    let scratch = Scratch::create()?;
    let inputs = Inputs::write(&scratch.0)?;
    let start = Instant::now();
    // What the picture shows, recorded where the demo observes it.
    let lanes: Vec<(&str, &[Band])> = SERVERS
        .iter()
        .map(|(c, _)| {
            let bands: &[Band] = if *c == Component::EngineServer {
                &[Band::Health, Band::Readyz, Band::Livez]
            } else {
                &[Band::Health]
            };
            (c.name(), bands)
        })
        .collect();
    let mut timeline = Timeline::new(
        &lanes,
        "agent-logship",
        &[(LOGS, "log records in es-sim"), (EVENTS, "Kubernetes Events in es-sim")],
    );

    println!("calypso-demo: agent-init renders the servers' configuration from templates, env values and a");
    println!(
        "  Secret; then 4 Calypso servers, each gated by agent-wait in component mode, all start at once."
    );
    println!("  startup order enforced: EventServer -> AuthServer -> DataServer -> EngineServer");
    println!("  agent-health, the EngineServer's probe sidecar, answers its kubelet probes");
    println!("  agent-logship, one beside each server, ships its rotating log4j logs into es-sim,");
    println!("  and one more ships the namespace's Kubernetes Events (from kube-sim) into es-sim\n");
    let config = render_config(start, &agent_init, &inputs, ports[0]).await?;

    let (tx, mut rx) = mpsc::unbounded_channel::<Line>();
    let (mut es, es_url) = start_es_sim(&es_sim).await?;
    say(start, &format!("es-sim (the Elasticsearch double) listens on {es_url}"));
    let mut shippers = Vec::new();
    for (component, _) in &SERVERS {
        let name = component.name().to_ascii_lowercase();
        shippers.push(start_logship(&agent_logship, &name, &scratch.0, &es_url, &tx)?);
    }
    let timing = Timing { bookmark_interval: Duration::from_secs(1), ..Timing::default() };
    let kube = KubeSim::start(KubeOptions { timing, ..KubeOptions::default() })
        .await
        .map_err(|e| format!("cannot start kube-sim: {e}"))?;
    say(
        start,
        &format!(
            "kube-sim (the Kubernetes API double) listens on {}: Events of namespace {NAMESPACE}",
            kube.url()
        ),
    );
    shippers.push(start_events_logship(&agent_logship, &scratch.0, &es_url, &kube.url(), &tx)?);
    let mut events = ClusterEvents::new(kube);
    say(start, &format!("all 4 servers start now, each sim with --config {}", config.display()));
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
            .args(["--startup-delay", &startup])
            .arg("--config")
            .arg(&config)
            .arg("--log-file")
            .arg(log_dir(&scratch.0, &name).join(format!("{}.log", component.name())))
            .args(["--log-rate", "40", "--log-max-size", "64K", "--log-backups", "100"]);
        if *component == Component::EngineServer {
            cmd.args(["--upstream", &url(2), "--upstream-interval", "200ms"]);
        }
        for (j, (dep, _)) in SERVERS.iter().enumerate() {
            cmd.env(format!("CALYPSO_{}_HEALTH_URL", dep.env_key()), url(j));
        }
        cmd.env("AGENT_LOG", "info");
        children.push(spawn(cmd, &format!("{name} pod"), &tx)?);
        events.emit(&format!("{name}-0"), "Started", "Started container calypso");
    }
    let (watch_tx, mut watch_rx) = mpsc::unbounded_channel::<(usize, String, Status)>();
    for (i, (component, _)) in SERVERS.iter().enumerate() {
        let detail = (*component == Component::DataServer).then_some(DATABASE_SENSOR);
        tokio::spawn(watch(i, url(i), detail, watch_tx.clone()));
    }
    // What the DataServer's database sensor said before the failover, to say again after it.
    let mut db_details: Option<String> = None;
    // The EngineServer's probe sidecar, once its gate has opened, and what its probes answer.
    let mut sidecar: Option<Proc> = None;
    let (probe_tx, mut probe_rx) = mpsc::unbounded_channel::<ProbeAnswer>();
    let live_checks = Arc::new(LiveChecks::default());
    let mut ready_now = false;
    let mut unready_in_failover = false;
    let mut ready_after_failover = false;

    // Print everything until the EngineServer is GREEN and ready (after the failover, again),
    // remembering when each server was first GREEN.
    let mut green_at: [Option<Duration>; 4] = [None; 4];
    // Whether agent-wait has let each server start, and what its health API answered last: nothing
    // listening behind a closed gate is waiting.
    let mut gate_open = [false; 4];
    let mut answered: [(Status, String); 4] = std::array::from_fn(|_| (Status::NotListening, String::new()));
    let mut engine_green = false;
    // When the engine lost its DataServer and got it back; livez checks before the failover.
    let mut outage: (Option<Duration>, Option<Duration>) = (None, None);
    let mut live_before = 0;
    let mut failover = if cli.no_failover { Phase::Done } else { Phase::Pending };
    let deadline = tokio::time::Instant::now() + PATIENCE;
    // Once all is over: when to stop watching.
    let mut stop_at: Option<tokio::time::Instant> = None;
    let mut shipped_tick = tokio::time::interval(Duration::from_secs(2));
    // The kubelet's readiness probe period (periodSeconds: 1): each failure, one more occurrence.
    let mut kubelet_tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_readyz = String::new();
    let mut trace_shown = false;
    // What each process said last, and what each probe answers now: told when something fails.
    let mut last_words = LastWords::default();
    let mut probes_say: [String; 3] = Default::default();
    loop {
        tokio::select! {
            _ = shipped_tick.tick() => {
                let events_stored = count(&es_url, EVENTS_STREAMS).await.unwrap_or(0);
                let (per_server, logs_stored) = stored_counts(&es_url).await;
                print(start, "es-sim", &format!("stored: {per_server} · Kubernetes Events {events_stored}"));
                timeline.sample(LOGS, start.elapsed(), logs_stored);
                timeline.sample(EVENTS, start.elapsed(), events_stored);
                if !trace_shown && let Some(doc) = a_stack_trace(&es_url).await {
                    trace_shown = true;
                    say(start, "a Java stack trace, stored as one document:");
                    for line in doc.lines() {
                        print(start, "es-sim", line);
                    }
                }
            }
            _ = kubelet_tick.tick() => {
                if !ready_now && unready_in_failover && !ready_after_failover {
                    events.probe_failed("engineserver-0", &last_readyz);
                }
                // A process that is gone never does what the demo waits for: say so now.
                let running = children.iter_mut().chain(sidecar.as_mut()).chain(shippers.iter_mut()).chain([&mut es]);
                if let Some((who, status)) = first_exited(running) {
                    return Err(format!("{who} exited ({status}) while the demo watched\n{}", last_words.of(&who)));
                }
            }
            Some(line) = rx.recv() => {
                print(start, &line.who, &line.text);
                last_words.heard(&line);
                // agent-health says where it listens once it does: the kubelet's probes begin.
                if line.who == AGENT_HEALTH && let Some(port) = listening_port(&line.text) {
                    tokio::spawn(probe(port, probe_tx.clone(), live_checks.clone()));
                }
                // agent-wait has opened a server's gate (and the EngineServer's sidecar starts with it).
                let gate = SERVERS.iter().position(|(c, _)| line.who == format!("{} pod", c.name().to_ascii_lowercase()));
                if let Some(i) = gate.filter(|_| line.text.contains("starting the command")) {
                    gate_open[i] = true;
                    let (answer, said) = &answered[i];
                    timeline.status(SERVERS[i].0.name(), Band::Health, start.elapsed(), timeline::server_status(true, *answer), said);
                }
                let opened = gate == Some(3) && line.text.contains("starting the command");
                if opened && sidecar.is_none() {
                    sidecar = Some(start_sidecar(start, &agent_health, &url(3), &tx)?);
                }
            }
            Some(answer) = probe_rx.recv() => {
                print(start, &format!("engineserver {}", answer.probe), &answer.text);
                let (band, said) = match answer.probe {
                    "startupz" => (Band::Startupz, 0),
                    "readyz" => (Band::Readyz, 1),
                    _ => (Band::Livez, 2),
                };
                probes_say[said].clone_from(&answer.text);
                if let Some(status) = timeline::probe_status(band, answer.status, answer.listening) {
                    timeline.status(Component::EngineServer.name(), band, start.elapsed(), status, &answer.text);
                }
                if answer.probe == "readyz" {
                    let was_ready = ready_now;
                    ready_now = answer.status == Some(200);
                    let in_failover = matches!(failover, Phase::DataServerDown | Phase::Recovering);
                    if !ready_now && in_failover {
                        // What the kubelet reports: each failed probe one more occurrence.
                        last_readyz.clone_from(&answer.text);
                        events.probe_failed("engineserver-0", &answer.text);
                        if was_ready {
                            events.emit("engineserver-0", "ReadinessChanged", "not ready: out of the Service's endpoints (liveness holds: not restarted)");
                        }
                        unready_in_failover = true;
                    }
                    if ready_now && unready_in_failover && !ready_after_failover {
                        events.emit("engineserver-0", "ReadinessChanged", "ready: back in the Service's endpoints");
                        timeline.marker(start.elapsed(), "engine ready again");
                        ready_after_failover = true;
                    }
                }
            }
            Some((i, state, answer)) = watch_rx.recv() => {
                let who = format!("{} health", SERVERS[i].0.name().to_ascii_lowercase());
                print(start, &who, &state);
                let status = timeline::server_status(gate_open[i], answer);
                timeline.status(SERVERS[i].0.name(), Band::Health, start.elapsed(), status, &state);
                answered[i] = (answer, state.clone());
                let green = state.starts_with("GREEN");
                if green && green_at[i].is_none() {
                    green_at[i] = Some(start.elapsed());
                }
                if i == 3 {
                    engine_green = green;
                }
                match (&failover, i, green) {
                    (Phase::DataServerDown, 3, false) => {
                        failover = Phase::Recovering;
                        outage.0 = Some(start.elapsed());
                        say(start, &format!(
                            "failover: the engine is disconnected but alive (not restarted); the database returns in {}",
                            humantime::format_duration(OUTAGE)
                        ));
                        say(start, &format!(
                            "  longer than agent-health's liveness grace ({}): readyz must fail, livez must hold",
                            humantime::format_duration(LIVENESS_GRACE)
                        ));
                        let port = ports[2];
                        let mut query = url::form_urlencoded::Serializer::new(String::new());
                        query.append_pair("state", "GREEN").append_pair("value", "1");
                        if let Some(d) = &db_details {
                            query.append_pair("details", d);
                        }
                        let query = query.finish();
                        tokio::spawn(async move {
                            // Pacing for the reader, not a wait for anything.
                            tokio::time::sleep(OUTAGE).await;
                            if let Err(e) = control(&port, &query).await {
                                eprintln!("calypso-demo: cannot end the failover: {e}");
                            }
                        });
                    }
                    (Phase::Recovering, 3, true) => {
                        failover = Phase::Done;
                        outage.1 = Some(start.elapsed());
                    }
                    _ => {}
                }
            }
            _ = tokio::time::sleep_until(stop_at.unwrap_or(deadline)), if stop_at.is_some() => break,
            _ = tokio::time::sleep_until(deadline) => {
                let engine = &answered[3].1;
                let waiting = if sidecar.is_none() {
                    format!("the EngineServer's gate never opened (its health: {engine})")
                } else if probes_say.iter().all(String::is_empty) {
                    "agent-health never said where it listens".to_string()
                } else {
                    let [startupz, readyz, livez] = &probes_say;
                    format!(
                        "{}: the EngineServer's health answers {engine}; agent-health's startupz {startupz}, \
        readyz {readyz}, livez {livez}",
                        failover.waits_for()
                    )
                };
                return Err(format!(
                    "not done within {PATIENCE:?}: {waiting}\n{}\n{}",
                    last_words.of(AGENT_HEALTH),
                    last_words.of("engineserver pod")
                ));
            }
        }
        // The engine is GREEN and in service (its readyz passes): now fail the DataServer over.
        if failover == Phase::Pending && engine_green && ready_now {
            failover = Phase::DataServerDown;
            live_before = live_checks.checks.load(Ordering::Relaxed);
            db_details = sensor_details(&url(2), DATABASE_SENSOR).await;
            say(start, "failover: the DataServer loses its database");
            timeline.marker(start.elapsed(), "failover: the DataServer loses its database");
            events.emit(
                "dataserver-0",
                "Unhealthy",
                "Readiness probe failed: database sensor RED (database failover in progress)",
            );
            control(&ports[2], "state=RED&value=0&details=database%20failover%20in%20progress").await?;
        }
        if stop_at.is_none()
            && failover == Phase::Done
            && engine_green
            && ready_now
            && (cli.no_failover || ready_after_failover)
        {
            if let (Some(lost), Some(back)) = outage {
                let checks = live_checks.checks.load(Ordering::Relaxed) - live_before;
                let held =
                    if live_checks.failed.load(Ordering::Relaxed) == 0 { "held" } else { "did NOT hold" };
                say(
                    start,
                    &format!(
                        "failover over: the engine is back in service after {:.1}s without its DataServer; \
livez {held} ({checks} checks since the failover began): never restarted",
                        (back - lost).as_secs_f64()
                    ),
                );
            }
            stop_at = Some(tokio::time::Instant::now() + AFTERWARDS);
        }
    }
    // The servers are stopped next: the lanes end here, the shipped counts go on until drained.
    let observed_until = start.elapsed();
    timeline.marker(observed_until, "servers stopped; the shippers drain");

    println!("\nsummary (seconds after start, when each server first answered GREEN):");
    for (i, (component, _)) in SERVERS.iter().enumerate() {
        let waited: Vec<&str> = component.dependencies().iter().map(|d| d.name()).collect();
        let waited = if waited.is_empty() { "nothing".to_string() } else { waited.join(", ") };
        let at = green_at[i].map_or("never".to_string(), |d| format!("{:.1}s", d.as_secs_f64()));
        println!("  {:<13} GREEN at {at:>6}   waited for {waited}", component.name());
    }
    let (checks, failed) =
        (live_checks.checks.load(Ordering::Relaxed), live_checks.failed.load(Ordering::Relaxed));
    let live = if failed == 0 {
        format!("livez stayed 200 ({checks} checks)")
    } else {
        format!("livez failed {failed} of {checks} checks")
    };
    if cli.no_failover {
        println!("agent-health: readyz 200, {live}");
    } else if unready_in_failover {
        println!("agent-health: readyz went 503 during the failover, {live}");
    } else {
        println!("agent-health: readyz never went 503 during the failover, {live}");
    }
    for child in children.iter_mut().chain(sidecar.as_mut()) {
        stop(child).await;
    }
    // The servers have stopped writing: every record they wrote must arrive, once.
    let written: u64 = SERVERS
        .iter()
        .map(|(c, _)| records_written(&log_dir(&scratch.0, &c.name().to_ascii_lowercase())))
        .sum();
    let arrived = tokio::time::timeout(PATIENCE, async {
        loop {
            if count(&es_url, "logs-calypso.*").await == Some(written) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    // Every Event occurrence kube-sim emitted must arrive, once.
    let emitted = events.occurrences;
    let events_arrived = tokio::time::timeout(PATIENCE, async {
        loop {
            if count(&es_url, EVENTS_STREAMS).await == Some(emitted) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    for shipper in &mut shippers {
        stop(shipper).await;
    }
    let events_stored = count(&es_url, EVENTS_STREAMS).await.unwrap_or(0);
    let stored = count(&es_url, "logs-calypso.*").await.unwrap_or(0);
    timeline.sample(LOGS, start.elapsed(), stored);
    timeline.sample(EVENTS, start.elapsed(), events_stored);
    let traces = a_stack_trace(&es_url).await.is_some();
    stop(&mut es).await;
    println!(
        "agent-logship: {written} records written by the servers, {stored} stored in es-sim{}{}",
        if stored == written { " (equal)" } else { " (NOT equal)" },
        if traces { ", stack traces whole" } else { "" }
    );
    println!(
        "agent-logship: {emitted} Kubernetes Event occurrences emitted by kube-sim ({} Events), {events_stored} stored in es-sim{}",
        events.emitted.len(),
        if events_stored == emitted { " (equal)" } else { " (NOT equal)" }
    );
    drop(scratch);
    let picture = timeline.picture(
        "calypso-demo: the pods' timeline",
        "Each server's health API seen from outside (gated by agent-wait), agent-health's probes of the \
EngineServer, agent-logship's shipped documents",
        observed_until,
    );
    write_atomically(&cli.svg, &svg::render(&picture))
        .map_err(|e| format!("cannot write the timeline picture {}: {e}", cli.svg.display()))?;
    let shown = std::fs::canonicalize(&cli.svg).unwrap_or_else(|_| cli.svg.clone());
    println!("timeline picture: {}", shown.display());
    if events_arrived.is_err() || events_stored != emitted {
        return Err(format!("agent-logship shipped {events_stored} of {emitted} Event occurrences"));
    }
    if arrived.is_err() || stored != written {
        return Err(format!("agent-logship shipped {stored} of {written} records"));
    }
    if failed > 0 || !(cli.no_failover || unready_in_failover) {
        return Err("agent-health did not keep the engine live while taking it out of service".into());
    }
    Ok(())
}

/// Starts agent-health beside the EngineServer, with short settings for the demo.
fn start_sidecar(
    start: Instant,
    bin: &Path,
    upstream: &str,
    tx: &mpsc::UnboundedSender<Line>,
) -> Result<Proc, String> {
    let grace = humantime::format_duration(LIVENESS_GRACE).to_string();
    say(
        start,
        &format!(
            "the EngineServer's gate opened: its sidecar agent-health starts (--interval {HEALTH_INTERVAL}, \
--liveness-grace {grace}); probed as the kubelet does: startupz, then readyz and livez"
        ),
    );
    let mut cmd = Command::new(bin);
    // A port of its own choosing, which it says in its "serving" line: one chosen for it here
    // and free now could be taken by the time it binds.
    cmd.args(["--upstream", upstream, "--listen", "127.0.0.1:0"])
        .args(["--interval", HEALTH_INTERVAL, "--attempt-timeout", HEALTH_ATTEMPT_TIMEOUT])
        .args(["--liveness-grace", &grace, "--shutdown-delay", "100ms"])
        .env("AGENT_LOG", "info")
        .env("AGENT_LOG_FORMAT", "text");
    spawn(cmd, AGENT_HEALTH, tx)
}

/// What one of agent-health's probe endpoints answers now.
struct ProbeAnswer {
    probe: &'static str,
    /// The HTTP status, if it answered.
    status: Option<u16>,
    /// Whether anything listened (when it did not answer: refused, or no answer in time).
    listening: bool,
    text: String,
}

/// How many times livez was asked, and how many times it did not answer 200.
#[derive(Default)]
struct LiveChecks {
    checks: AtomicU64,
    failed: AtomicU64,
}

/// Probes agent-health as the kubelet does, every [`PROBE_PERIOD`]: `/startupz` until it passes
/// (the kubelet holds the other probes back until then), then `/readyz` and `/livez`. Reports
/// each change of what an endpoint answers.
async fn probe(port: u16, tx: mpsc::UnboundedSender<ProbeAnswer>, live: Arc<LiveChecks>) {
    let ask = |path: &'static str| async move {
        let url = format!("http://127.0.0.1:{port}/{path}");
        // As the kubelet's timeoutSeconds, generous: answers come from a cache.
        match client::get(&url, Duration::from_secs(2)).await {
            Err(e) if e.is_refused() => (None, false, "not listening".to_string()),
            Err(e) => (None, true, format!("unreachable: {e}")),
            Ok(resp) => (Some(resp.status), true, format!("{} {}", resp.status, resp.text().trim_end())),
        }
    };
    let mut last: [String; 3] = Default::default();
    let mut report =
        |i: usize, probe: &'static str, (status, listening, text): (Option<u16>, bool, String)| {
            if text == last[i] {
                return true;
            }
            last[i] = text.clone();
            tx.send(ProbeAnswer { probe, status, listening, text }).is_ok()
        };
    loop {
        let answer = ask("startupz").await;
        let started = answer.0 == Some(200);
        if !report(0, "startupz", answer) {
            return;
        }
        if started {
            break;
        }
        tokio::time::sleep(PROBE_PERIOD).await;
    }
    loop {
        let ready = ask("readyz").await;
        let alive = ask("livez").await;
        live.checks.fetch_add(1, Ordering::Relaxed);
        if alive.0 != Some(200) {
            live.failed.fetch_add(1, Ordering::Relaxed);
        }
        if !report(1, "readyz", ready) || !report(2, "livez", alive) {
            return;
        }
        tokio::time::sleep(PROBE_PERIOD).await;
    }
}

/// The demo's scratch directory (templates, Secret, rendered files), removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn create() -> Result<Scratch, String> {
        let dir = std::env::temp_dir().join(format!("calypso-demo-{}", std::process::id()));
        // A leftover of a process with our id is long gone; its directory is ours to replace.
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| format!("cannot clear {}: {e}", dir.display()))?;
        }
        std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What agent-init reads and where it writes, as the volumes of a pod would hold them.
struct Inputs {
    /// The templates (a ConfigMap mount).
    templates: PathBuf,
    /// The database credentials (a Secret mount: timestamped directory, `..data`, key links).
    secrets: PathBuf,
    /// The rendered files (the emptyDir the Calypso container reads).
    output: PathBuf,
}

impl Inputs {
    fn write(root: &Path) -> Result<Inputs, String> {
        let inputs = Inputs {
            templates: root.join("templates"),
            secrets: root.join("secrets"),
            output: root.join("config"),
        };
        let io = |what: &str, e: std::io::Error| format!("cannot write the demo's {what}: {e}");
        for d in [&inputs.templates, &inputs.secrets, &inputs.output] {
            std::fs::create_dir(d).map_err(|e| io("directories", e))?;
        }
        for (name, text) in TEMPLATES {
            std::fs::write(inputs.templates.join(name), text).map_err(|e| io("templates", e))?;
        }
        // The kubelet's layout: the keys live in a timestamped directory that `..data` points
        // to, and each key is a link through `..data`, so that an update is one atomic swap.
        let stamp = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
        let stamp = format!("..{}", stamp.trim_end_matches('Z').replace(['-', 'T', ':'], "_"));
        let data = inputs.secrets.join(&stamp);
        std::fs::create_dir(&data).map_err(|e| io("Secret", e))?;
        // As `kubectl create secret --from-file` takes it from an editor: with a final newline,
        // which agent-init removes.
        std::fs::write(data.join("db-password"), format!("{DB_PASSWORD}\n")).map_err(|e| io("Secret", e))?;
        std::os::unix::fs::symlink(&stamp, inputs.secrets.join("..data")).map_err(|e| io("Secret", e))?;
        std::os::unix::fs::symlink("..data/db-password", inputs.secrets.join("db-password"))
            .map_err(|e| io("Secret", e))?;
        Ok(inputs)
    }
}

/// Runs agent-init as an init container would, then `agent-init --print` to show the rendered
/// `calypsosystem.properties.DEMO` with its secrets redacted; returns that file's path.
async fn render_config(
    start: Instant,
    bin: &Path,
    inputs: &Inputs,
    event_server_port: u16,
) -> Result<PathBuf, String> {
    let command = || {
        let mut cmd = Command::new(bin);
        // Only what the pod spec would give it, whatever this shell has set.
        cmd.env_clear()
            .env("AGENT_INIT_TEMPLATES", &inputs.templates)
            .env("AGENT_INIT_ENV", ENV)
            .env("AGENT_INIT_SECRETS_DIR", &inputs.secrets)
            .env("AGENT_INIT_OUTPUT", &inputs.output)
            .env("AGENT_LOG", "info")
            .env("DBURL", DB_URL)
            .env("EVENTSERVERHOST", "127.0.0.1")
            .env("EVENTSERVERPORT", event_server_port.to_string())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    };
    say(
        start,
        &format!(
            "agent-init renders {} templates for {ENV} (env values, Secret db-password) into {}",
            TEMPLATES.len(),
            inputs.output.display()
        ),
    );
    let out = command().output().await.map_err(|e| format!("cannot run agent-init: {e}"))?;
    for line in
        String::from_utf8_lossy(&out.stderr).lines().chain(String::from_utf8_lossy(&out.stdout).lines())
    {
        print(start, "agent-init", without_timestamp(line));
    }
    if !out.status.success() {
        return Err(format!("agent-init failed ({}): see its lines above", out.status));
    }

    let file = format!("calypsosystem.properties.{ENV}");
    say(start, &format!("the rendered {file}, as agent-init --print shows it (secrets redacted):"));
    let out =
        command().arg("--print").output().await.map_err(|e| format!("cannot run agent-init --print: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "agent-init --print failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let printed = String::from_utf8_lossy(&out.stdout);
    let mut in_file = false;
    for line in printed.lines() {
        if line.starts_with("==> ") {
            in_file = line.starts_with(&format!("==> {file} "));
        }
        if in_file {
            print(start, "agent-init --print", line);
        }
    }
    Ok(inputs.output.join(file))
}

/// The details of one sensor of the server's report now, if it answers and has them.
async fn sensor_details(url: &str, sensor: &str) -> Option<String> {
    let report = client::get(url, Duration::from_millis(500)).await.ok()?.health().ok()?;
    report.nodes().into_iter().find(|(path, _)| path == sensor).and_then(|(_, n)| n.details.clone())
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Pending,
    DataServerDown,
    Recovering,
    Done,
}

impl Phase {
    /// What the demo waits for in this phase, for a demo that ran out of patience.
    fn waits_for(&self) -> &'static str {
        match self {
            Phase::Pending => "waiting for the EngineServer to be GREEN and ready before the failover",
            Phase::DataServerDown => "waiting for the EngineServer to notice the DataServer's outage",
            Phase::Recovering => "waiting for the EngineServer to be GREEN again after the failover",
            Phase::Done => "waiting for agent-health's readyz to pass again after the failover",
        }
    }
}

/// The name agent-health's lines carry in the timeline.
const AGENT_HEALTH: &str = "agent-health";

/// The port in agent-health's "serving" line (`listen=127.0.0.1:36319`), once it says it.
fn listening_port(text: &str) -> Option<u16> {
    let addr = text.split_whitespace().find_map(|field| field.strip_prefix("listen="))?;
    addr.parse::<SocketAddr>().ok().map(|a| a.port())
}

/// The last few lines each process said, by the name its lines carry.
#[derive(Default)]
struct LastWords(std::collections::HashMap<String, std::collections::VecDeque<String>>);

impl LastWords {
    const KEPT: usize = 6;

    fn heard(&mut self, line: &Line) {
        let said = self.0.entry(line.who.clone()).or_default();
        if said.len() == Self::KEPT {
            said.pop_front();
        }
        said.push_back(line.text.clone());
    }

    fn of(&self, who: &str) -> String {
        match self.0.get(who) {
            Some(said) => {
                format!("{who} said last:\n  {}", said.iter().cloned().collect::<Vec<_>>().join("\n  "))
            }
            None => format!("{who} said nothing"),
        }
    }
}

fn say(start: Instant, text: &str) {
    print(start, "demo", &format!(">>> {text}"));
}

fn print(start: Instant, who: &str, text: &str) {
    println!("[{:>5.1}s] {who:<21} | {text}", start.elapsed().as_secs_f64());
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

/// Polls one server's health every 100 ms and reports each change of what it answers (and that
/// answer's status for the picture); when GREEN, with the details of the `detail` sensor.
async fn watch(
    i: usize,
    url: String,
    detail: Option<&str>,
    tx: mpsc::UnboundedSender<(usize, String, Status)>,
) {
    let mut last = String::new();
    loop {
        let (now, status) = match client::get(&url, Duration::from_millis(500)).await {
            Err(e) if e.is_refused() => ("not listening".to_string(), Status::NotListening),
            Err(e) => (format!("unreachable: {e}"), Status::NoAnswer),
            Ok(resp) => match resp.health() {
                Ok(r) if r.state == State::Green => {
                    let shown = detail.and_then(|sensor| {
                        let details = r.nodes().into_iter().find(|(p, _)| p == sensor)?.1.details.clone()?;
                        Some(format!("GREEN ({sensor}: {details})"))
                    });
                    (shown.unwrap_or_else(|| "GREEN".to_string()), Status::Ready)
                }
                Ok(r) => (r.summary().trim_start_matches("state ").to_string(), timeline::report_status(&r)),
                Err(e) => (format!("bad answer: {e}"), Status::NoAnswer),
            },
        };
        if now != last {
            if tx.send((i, now.clone(), status)).is_err() {
                return;
            }
            last = now;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One of the demo's processes, with the name its lines carry.
struct Proc {
    who: String,
    child: Child,
}

fn spawn(mut cmd: Command, who: &str, tx: &mpsc::UnboundedSender<Line>) -> Result<Proc, String> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| format!("cannot start {who}: {e}"))?;
    if let Some(out) = child.stdout.take() {
        tokio::spawn(forward(out, who.to_string(), tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(forward(err, who.to_string(), tx.clone()));
    }
    Ok(Proc { who: who.to_string(), child })
}

/// The first of these processes that has exited, and how.
fn first_exited<'a>(
    procs: impl IntoIterator<Item = &'a mut Proc>,
) -> Option<(String, std::process::ExitStatus)> {
    procs.into_iter().find_map(|p| match p.child.try_wait() {
        Ok(Some(status)) => Some((p.who.clone(), status)),
        _ => None,
    })
}

/// Forwards a child's lines, without the log timestamp (the timeline has its own clock).
async fn forward(pipe: impl AsyncRead + Unpin, who: String, tx: mpsc::UnboundedSender<Line>) {
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let text = without_timestamp(&line).to_string();
        if tx.send(Line { who: who.clone(), text }).is_err() {
            return;
        }
    }
}

/// A log line without its leading RFC 3339 timestamp, if it has one.
fn without_timestamp(line: &str) -> &str {
    match line.split_once(' ') {
        Some((first, rest)) if first.ends_with('Z') && first.contains('T') => rest.trim_start(),
        _ => line,
    }
}

async fn stop(proc: &mut Proc) {
    if let Some(pid) = proc.child.id().and_then(|p| i32::try_from(p).ok()) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), proc.child.wait()).await;
}

/// Where a server's log4j files are written (and its agent-logship reads them).
fn log_dir(scratch: &Path, name: &str) -> PathBuf {
    scratch.join("logs").join(name)
}

/// Starts es-sim on a free loopback port; its first stdout line says where.
async fn start_es_sim(bin: &Path) -> Result<(Proc, String), String> {
    let mut cmd = Command::new(bin);
    cmd.args(["--listen", "127.0.0.1:0"]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    cmd.kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| format!("cannot start es-sim: {e}"))?;
    let out = child.stdout.take().ok_or("es-sim has no stdout")?;
    let mut lines = BufReader::new(out).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await;
    let line = match first {
        Ok(Ok(Some(line))) => line,
        _ => return Err("es-sim did not say where it listens".into()),
    };
    let url = line.strip_prefix("es-sim listening on ").ok_or_else(|| format!("es-sim said {line:?}"))?;
    Ok((Proc { who: "es-sim".to_string(), child }, url.to_string()))
}

/// A server's log shipper, as its pod's sidecar would be configured.
fn start_logship(
    bin: &Path,
    name: &str,
    scratch: &Path,
    es_url: &str,
    tx: &mpsc::UnboundedSender<Line>,
) -> Result<Proc, String> {
    let logs = log_dir(scratch, name);
    std::fs::create_dir_all(&logs).map_err(|e| format!("cannot create {}: {e}", logs.display()))?;
    let mut cmd = logship_command(bin, scratch, name, es_url);
    cmd.env("AGENT_LOGSHIP_PATHS", logs.join("*.log*"))
        .env("AGENT_LOGSHIP_COMPONENT", name)
        .env("AGENT_LOGSHIP_ENVIRONMENT", "DEMO")
        .env("AGENT_LOGSHIP_NAMESPACE", NAMESPACE)
        .env("AGENT_LOGSHIP_POD_NAME", format!("{name}-0"))
        .env("AGENT_LOGSHIP_CONTAINER_NAME", "calypso")
        .env("AGENT_LOGSHIP_RESCAN_INTERVAL", "1s");
    spawn(cmd, &format!("{name} logship"), tx)
}

/// What every shipper of the demo is given: its data directory `logship/<name>`, es-sim, a
/// free port for its probes, quick batches, warnings only.
fn logship_command(bin: &Path, scratch: &Path, name: &str, es_url: &str) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env("AGENT_LOGSHIP_DATA_DIR", scratch.join("logship").join(name))
        .env("AGENT_LOGSHIP_ES_URL", es_url)
        .env("AGENT_LOGSHIP_LISTEN", "127.0.0.1:0")
        .env("AGENT_LOGSHIP_BATCH_AGE", "300ms")
        .env("AGENT_LOG", "warn");
    cmd
}

/// The Events' data streams.
const EVENTS_STREAMS: &str = "logs-kubernetes.events-*";
/// The picture's counters: the servers' log records and the Events es-sim holds.
const LOGS: &str = "logs";
const EVENTS: &str = "events";
/// The namespace of the demo's pods.
const NAMESPACE: &str = "calypso-demo";

/// The Kubernetes Events the demo's cluster would show, made in kube-sim: one per thing that
/// happens to a pod, a failing probe's one counted up at each failure (as the kubelet does).
struct ClusterEvents {
    kube: KubeSim,
    /// (pod, reason) -> the Event's name.
    emitted: std::collections::BTreeMap<(String, String), String>,
    /// Occurrences emitted: each Event's count, summed.
    occurrences: u64,
}

impl ClusterEvents {
    fn new(kube: KubeSim) -> Self {
        ClusterEvents { kube, emitted: Default::default(), occurrences: 0 }
    }

    /// A new Event about `pod`.
    fn emit(&mut self, pod: &str, reason: &str, message: &str) {
        let key = (pod.to_string(), format!("{reason}:{message}"));
        match self.kube.create_event(NewEvent::about(NAMESPACE, "Pod", pod, reason, message)) {
            Ok(e) => {
                self.emitted.insert(key, e.metadata.name.clone());
                self.occurrences += 1;
            }
            Err(e) => eprintln!("calypso-demo: kube-sim refused an Event: {e}"),
        }
    }

    /// A failed readiness probe: the pod's Unhealthy Event, counted up.
    fn probe_failed(&mut self, pod: &str, answer: &str) {
        let message = format!("Readiness probe failed: {answer}");
        let key = (pod.to_string(), "Unhealthy".to_string());
        match self.emitted.get(&key) {
            Some(name) => match self.kube.update_event(NAMESPACE, name, EventUpdate::default()) {
                Ok(_) => self.occurrences += 1,
                Err(e) => eprintln!("calypso-demo: kube-sim refused an update: {e}"),
            },
            None => {
                match self.kube.create_event(NewEvent::about(NAMESPACE, "Pod", pod, "Unhealthy", &message)) {
                    Ok(e) => {
                        self.emitted.insert(key, e.metadata.name.clone());
                        self.occurrences += 1;
                    }
                    Err(e) => eprintln!("calypso-demo: kube-sim refused an Event: {e}"),
                }
            }
        }
    }
}

/// The namespace's Events shipper (a Deployment of its own in a cluster).
fn start_events_logship(
    bin: &Path,
    scratch: &Path,
    es_url: &str,
    kube_url: &str,
    tx: &mpsc::UnboundedSender<Line>,
) -> Result<Proc, String> {
    let mut cmd = logship_command(bin, scratch, "events", es_url);
    cmd.env("AGENT_LOGSHIP_EVENTS", "true")
        .env("AGENT_LOGSHIP_EVENTS_NAMESPACE", NAMESPACE)
        .env("AGENT_LOGSHIP_KUBE_URL", kube_url);
    spawn(cmd, "events logship", tx)
}

/// Documents es-sim holds in the indices `pattern` names.
async fn count(es_url: &str, pattern: &str) -> Option<u64> {
    let url = format!("{es_url}/_sim/count?index={pattern}");
    let resp = client::get(&url, Duration::from_secs(2)).await.ok()?;
    resp.json().ok()?.get("count")?.as_u64()
}

/// `eventserver 120 · authserver 118 · ...`: what es-sim stored per server so far, and the sum.
async fn stored_counts(es_url: &str) -> (String, u64) {
    let mut parts = Vec::new();
    let mut total = 0;
    for (component, _) in &SERVERS {
        let name = component.name().to_ascii_lowercase();
        let n = count(es_url, &format!("logs-calypso.{name}-*")).await.unwrap_or(0);
        parts.push(format!("{name} {n}"));
        total += n;
    }
    (parts.join(" · "), total)
}

/// One stored document with a stack trace, shown as stored (a few fields, the trace whole).
async fn a_stack_trace(es_url: &str) -> Option<String> {
    let url = format!("{es_url}/_sim/docs?index=logs-calypso.*");
    let docs = client::get(&url, Duration::from_secs(5)).await.ok()?.json().ok()?;
    let doc = docs.as_array()?.iter().find(|d| d.pointer("/error/stack_trace").is_some())?;
    let field = |p: &str| doc.pointer(p).and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let mut out = format!(
        "@timestamp {}  log.level {}  service.name {}\nmessage {}\nerror.type {}\nerror.stack_trace:",
        field("/@timestamp"),
        field("/log/level"),
        field("/service/name"),
        field("/message"),
        field("/error/type")
    );
    for line in field("/error/stack_trace").lines() {
        out.push_str("\n  ");
        out.push_str(line);
    }
    Some(out)
}

/// How many records a server's writer wrote: the highest `seq=N` in its files (they count from 1).
fn records_written(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| l.rsplit_once(" seq=").and_then(|(_, n)| n.trim().parse::<u64>().ok()))
                .max()
        })
        .max()
        .unwrap_or(0)
}

/// Ports free right now on loopback (held together so they differ, then released).
fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot find free ports: {e}"))?;
    listeners.iter().map(|l| l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())).collect()
}

/// Writes `contents` to `path` whole or not at all: into a temporary file beside it (same
/// filesystem), flushed, then renamed over it, so a viewer never shows half a picture. Creates the
/// directory if missing.
fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file"))?;
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    // A leftover of a process with our id is long gone; create_new below never follows a link.
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        file.write_all(contents.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_healths_serving_line_gives_its_port() {
        let said = "INFO serving /livez /readyz /startupz /metrics /status listen=127.0.0.1:41653 \
upstream=http://127.0.0.1:36107/health interval=500ms";
        assert_eq!(listening_port(said), Some(41653));
        assert_eq!(listening_port("INFO serving /livez listen=[::1]:8081 upstream=x"), Some(8081));
        assert_eq!(listening_port("INFO live: ok probe=live ok=true"), None);
        assert_eq!(listening_port("INFO serving listen=somewhere"), None);
    }

    #[test]
    fn last_words_keep_the_newest_lines_of_each_process() {
        let mut words = LastWords::default();
        for n in 0..10 {
            words.heard(&Line { who: "agent-health".into(), text: format!("line {n}") });
        }
        let said = words.of("agent-health");
        assert!(said.starts_with("agent-health said last:\n  line 4\n"), "{said}");
        assert!(said.ends_with("line 9") && !said.contains("line 3"), "{said}");
        assert_eq!(words.of("es-sim"), "es-sim said nothing");
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("readable")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn write_atomically_creates_the_directory_and_replaces_the_file_leaving_no_temporary() {
        let root = tempfile::tempdir().expect("temp dir");
        let path = root.path().join("target").join("demo").join("timeline.svg");
        write_atomically(&path, "<svg/>").expect("written");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "<svg/>");
        write_atomically(&path, "<svg>2</svg>").expect("rewritten");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "<svg>2</svg>");
        assert_eq!(entries(path.parent().expect("dir")), ["timeline.svg"]);
    }

    #[test]
    fn write_atomically_fails_cleanly_when_the_path_is_a_directory() {
        let root = tempfile::tempdir().expect("temp dir");
        let path = root.path().join("picture.svg");
        std::fs::create_dir(&path).expect("a directory in the way");
        assert!(write_atomically(&path, "<svg/>").is_err());
        assert_eq!(entries(root.path()), ["picture.svg"], "no temporary file left behind");
        assert!(write_atomically(Path::new("/"), "<svg/>").is_err(), "no file name");
    }

    #[test]
    fn the_svg_flag_has_a_default_and_a_later_one_wins() {
        let cli = Cli::parse_from(["calypso-demo"]);
        assert_eq!(cli.svg, PathBuf::from("calypso-demo-timeline.svg"));
        // ./demo passes its own --svg first; the user's, after it, wins.
        let cli = Cli::parse_from(["calypso-demo", "--svg", "target/a.svg", "--svg", "mine.svg"]);
        assert_eq!(cli.svg, PathBuf::from("mine.svg"));
    }
}
