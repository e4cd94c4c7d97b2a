//! The README's demo as a cross-agent end-to-end test: real agent-init, agent-wait, agent-health
//! and calypso-sim processes — the configuration rendered first, then the servers gated in the
//! Calypso startup order, each reading the rendered file, then a DataServer failover during which
//! the EngineServer's agent-health takes it out of service (readyz) but keeps it live (livez).
//! agent-logship ships every log record and every Kubernetes Event occurrence kube-sim emits for
//! it (the pods started, the failing probe counted up, the readiness changes) into es-sim, once.
//! The same run's SVG picture of the timeline is checked by its structure: one lane per server,
//! the failover visible on the EngineServer's (not ready between two readies, liveness held).

use std::path::Path;
use std::process::Command;

/// The demo's database password, as its Secret holds it and as a `.properties` file escapes it.
const PASSWORD: &str = "p@ss=w:rd#1\\";
const PASSWORD_ESCAPED: &str = "p@ss\\=w\\:rd\\#1\\\\";
/// The database URL the demo renders into `calypsosystem.properties.DEMO`.
const DB_URL: &str = "jdbc:oracle:thin:@calypso-db.demo:1521:DEMO";

#[test]
fn demo_renders_the_config_then_starts_servers_in_dependency_order_and_survives_failover() {
    let demo = Path::new(env!("CARGO_BIN_EXE_calypso-demo"));
    let bin_dir = demo.parent().expect("bin dir");
    for agent in ["agent-wait", "agent-init", "agent-health", "agent-logship", "es-sim"] {
        assert!(
            bin_dir.join(agent).exists(),
            "{agent} is not built in {}: run the workspace's tests (cargo test --workspace), or \
cargo build -p {agent}",
            bin_dir.display()
        );
    }
    let pictures = tempfile::tempdir().expect("temp dir");
    // In a directory that does not exist yet: the demo creates it.
    let svg = pictures.path().join("demo").join("timeline.svg");
    let out = Command::new(demo)
        .args(["--bin-dir", bin_dir.to_str().expect("utf-8"), "--dataserver-startup", "1s"])
        .arg("--svg")
        .arg(&svg)
        .output()
        .expect("demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));

    // The summary gives the time each server first answered GREEN: strictly in startup order.
    let green_at = |server: &str| -> f64 {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(server) && l.contains("GREEN at"))
            .unwrap_or_else(|| panic!("no summary line for {server}:\n{stdout}"));
        let at = line.split("GREEN at").nth(1).and_then(|r| r.split_whitespace().next()).expect("time");
        at.trim_end_matches('s').parse().unwrap_or_else(|_| panic!("bad time in {line:?}"))
    };
    let order = ["EventServer", "AuthServer", "DataServer", "EngineServer"].map(green_at);
    assert!(order.windows(2).all(|w| w[0] < w[1]), "not in startup order: {order:?}\n{stdout}");
    assert!(stdout.contains("engineserver pod") && stdout.contains("dataserver: ready after"), "{stdout}");
    assert!(stdout.contains("connection to DataServer lost"), "the failover is shown:\n{stdout}");
    // agent-logship shipped every record the servers wrote, once, stack traces whole.
    let shipped =
        stdout.lines().find(|l| l.starts_with("agent-logship: ")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(shipped.contains("(equal)") && shipped.contains("stack traces whole"), "{shipped}");
    assert!(stdout.contains("a Java stack trace, stored as one document"), "{stdout}");
    let events =
        stdout.lines().find(|l| l.contains("Kubernetes Event occurrences emitted by kube-sim")).unwrap_or("");
    assert!(events.ends_with("(equal)"), "every Event occurrence stored once: {events}\n{stdout}");
    // The failover's Events: the pods' Started, the DataServer's and the engine's Unhealthy, the
    // readiness changes; and the failing probe's Event counted up (more occurrences than Events).
    let number = |after: &str| -> u64 {
        events
            .split(after)
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let (occurrences, distinct) = (number("agent-logship: "), number("kube-sim ("));
    assert!(distinct >= 8 && occurrences > distinct, "{events}");

    // agent-init ran first: its lines (the render, then --print) come before any server's.
    let lines: Vec<&str> = stdout.lines().collect();
    let first = |who: &str| lines.iter().position(|l| l.contains(&format!("] {who} ")));
    let rendered = first("agent-init").unwrap_or_else(|| panic!("agent-init said nothing:\n{stdout}"));
    assert!(lines[rendered].contains("rendered calypsosystem.properties.DEMO"), "{}", lines[rendered]);
    let servers = ["eventserver", "authserver", "dataserver", "engineserver"];
    for server in servers {
        for who in [format!("{server} pod"), format!("{server} health")] {
            let at = first(&who).unwrap_or_else(|| panic!("no {who} line:\n{stdout}"));
            assert!(rendered < at, "{who} before agent-init:\n{stdout}");
        }
    }
    // The rendered file is shown, its secret redacted, and the password appears nowhere.
    assert!(stdout.contains("agent-init --print    | DBPASSWORD=<redacted>"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for shown in [&stdout, &stderr] {
        assert!(
            !shown.contains(PASSWORD) && !shown.contains(PASSWORD_ESCAPED) && !shown.contains("rd#1"),
            "{shown}"
        );
    }
    // Every sim read the rendered file; the DataServer's health shows the DBURL from it,
    // unescaped (`jdbc\:oracle...` in the file).
    let read = lines
        .iter()
        .filter(|l| l.contains("read the configuration") && l.contains("properties.DEMO"))
        .count();
    assert_eq!(read, servers.len(), "{stdout}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("] dataserver health")
                && l.contains(&format!("connected to {DB_URL} as calypso"))),
        "the DataServer's details show the rendered DBURL:\n{stdout}"
    );

    // agent-health, beside the EngineServer: it speaks in the timeline, and during the failover
    // readyz goes 503 and comes back 200, while livez never answers anything but 200.
    assert!(first("agent-health").is_some(), "agent-health said nothing:\n{stdout}");
    assert!(
        lines.iter().any(|l| l.contains("] agent-health ") && l.contains("serving /livez /readyz")),
        "{stdout}"
    );
    let probe = |name: &str| -> Vec<(usize, &str)> {
        let who = format!("] engineserver {name} ");
        lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.contains(&who))
            .map(|(i, l)| (i, l.split_once(" | ").map_or("", |(_, said)| said)))
            .collect()
    };
    let failover = lines
        .iter()
        .position(|l| l.contains(">>> failover: the DataServer loses its database"))
        .unwrap_or_else(|| panic!("no failover:\n{stdout}"));
    let readyz = probe("readyz");
    assert!(
        readyz.iter().any(|(i, said)| *i < failover && *said == "200 ok"),
        "readyz 200 before the failover:\n{stdout}"
    );
    let unready = readyz
        .iter()
        .find(|(i, said)| *i > failover && said.starts_with("503 ") && said.contains("DataServerConnection"))
        .unwrap_or_else(|| panic!("readyz never went 503 during the failover:\n{stdout}"))
        .0;
    assert!(
        readyz.iter().any(|(i, said)| *i > unready && *said == "200 ok"),
        "readyz not 200 again after the failover:\n{stdout}"
    );
    assert_eq!(readyz.last().map(|(_, said)| *said), Some("200 ok"), "{stdout}");
    let livez = probe("livez");
    assert!(!livez.is_empty(), "livez never probed:\n{stdout}");
    assert!(livez.iter().all(|(_, said)| *said == "200 ok"), "livez was not always 200:\n{stdout}");
    let summary = lines
        .iter()
        .find(|l| l.starts_with("agent-health: "))
        .unwrap_or_else(|| panic!("no agent-health summary:\n{stdout}"));
    assert!(
        summary.starts_with("agent-health: readyz went 503 during the failover, livez stayed 200 ("),
        "{summary}"
    );

    // The picture: its path is the demo's last line.
    let printed = stdout.lines().last().and_then(|l| l.strip_prefix("timeline picture: "));
    let printed = Path::new(printed.unwrap_or_else(|| panic!("no picture's path at the end:\n{stdout}")));
    assert_eq!(printed, svg.canonicalize().expect("the picture exists"), "{stdout}");
    let stored = |what: &str| -> u64 {
        let line = lines.iter().find(|l| l.starts_with("agent-logship: ") && l.contains(what)).expect(what);
        let before = line.split(" stored in es-sim").next().unwrap_or_default();
        before.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{line}"))
    };
    check_the_picture(printed, stored("records written"), stored("Event occurrences"));
}

/// The demo's SVG: well-formed, one lane per server in startup order, every server waiting or
/// starting before it is ready, the failover visible, agent-logship's counts ending at what es-sim
/// stored (`logs`, `events`). On the structure the picture carries for this (`data-` attributes),
/// not on pixels.
fn check_the_picture(path: &Path, logs: u64, events: u64) {
    let text = std::fs::read_to_string(path).expect("the picture is readable");
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("not well-formed XML: {e}"));
    let svg = doc.root_element();
    assert_eq!(svg.tag_name().name(), "svg");
    assert_eq!(svg.tag_name().namespace(), Some("http://www.w3.org/2000/svg"));
    let title = svg.children().find(|n| n.has_tag_name("title")).and_then(|t| t.text());
    assert!(title.is_some_and(|t| t.contains("calypso-demo")), "{title:?}");
    let with_class = |class: &str| -> Vec<roxmltree::Node<'_, '_>> {
        doc.descendants().filter(|n| n.attribute("class") == Some(class)).collect()
    };
    assert_eq!(with_class("legend-entry").len(), 8, "a legend entry per state");
    assert!(with_class("tick").len() >= 5, "a time axis with ticks");

    let lanes = with_class("lane");
    let components: Vec<&str> = lanes.iter().filter_map(|l| l.attribute("data-component")).collect();
    assert_eq!(components, ["EventServer", "AuthServer", "DataServer", "EngineServer"], "one lane each");
    // A band's states in time order, as (state, from, to).
    let band = |lane: &str, band: &str| -> Vec<(String, f64, f64)> {
        let lane = lanes.iter().find(|l| l.attribute("data-component") == Some(lane)).expect("lane");
        let band = lane
            .children()
            .find(|b| b.attribute("data-band") == Some(band))
            .unwrap_or_else(|| panic!("no {band} band"));
        let secs = |n: roxmltree::Node<'_, '_>, a: &str| -> f64 {
            n.attribute(a).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{a} of {n:?}"))
        };
        let segments: Vec<(String, f64, f64)> = band
            .children()
            .filter(|n| n.attribute("class") == Some("segment"))
            .map(|s| {
                (
                    s.attribute("data-state").unwrap_or_default().to_string(),
                    secs(s, "data-from"),
                    secs(s, "data-to"),
                )
            })
            .collect();
        assert!(segments.windows(2).all(|w| w[0].2 <= w[1].1 + 1e-9 && w[0].1 < w[0].2), "{segments:?}");
        segments
    };
    let states =
        |segments: &[(String, f64, f64)]| -> Vec<String> { segments.iter().map(|s| s.0.clone()).collect() };
    // `want` appears in `states` in this order (other states may come between).
    let in_order = |states: &[String], want: &[&str]| -> bool {
        let mut rest = states.iter();
        want.iter().all(|w| rest.any(|s| s == w))
    };
    for server in components {
        let health = states(&band(server, "health"));
        assert!(health.iter().any(|s| s == "ready"), "{server}: {health:?}");
    }
    // The gates: the EngineServer waited for the DataServer (seconds), held by agent-wait.
    let engine = band("EngineServer", "health");
    assert!(in_order(&states(&engine), &["waiting", "ready"]), "{engine:?}");
    let engine_ready = engine.iter().find(|s| s.0 == "ready").expect("engine ready").1;
    let data_ready = band("DataServer", "health").iter().find(|s| s.0 == "ready").expect("ready").1;
    assert!(data_ready < engine_ready, "the DataServer first: {data_ready} < {engine_ready}");
    // The failover: the DataServer and the engine not ready between two readies, in the engine's
    // health and in agent-health's readyz; its livez band live throughout, never failing.
    for (lane, name) in [("DataServer", "health"), ("EngineServer", "health"), ("EngineServer", "readyz")] {
        let states = states(&band(lane, name));
        assert!(in_order(&states, &["ready", "not-ready", "ready"]), "{lane} {name}: {states:?}");
    }
    let livez = states(&band("EngineServer", "livez"));
    assert!(!livez.is_empty() && livez.iter().all(|s| s == "live"), "livez: {livez:?}");
    let markers = with_class("marker");
    assert!(!markers.is_empty(), "the failover is marked");

    // agent-logship's counters: the last sample is what es-sim stored at the end.
    let track = with_class("track");
    assert_eq!(track.len(), 1);
    assert_eq!(track[0].attribute("data-component"), Some("agent-logship"));
    for (series, stored) in [("logs", logs), ("events", events)] {
        let counter = track[0]
            .descendants()
            .find(|n| n.attribute("data-series") == Some(series))
            .unwrap_or_else(|| panic!("no {series} counter"));
        let values: Vec<u64> = counter
            .children()
            .filter(|n| n.attribute("class") == Some("sample"))
            .filter_map(|n| n.attribute("data-value")?.parse().ok())
            .collect();
        assert!(values.len() >= 2 && values.windows(2).all(|w| w[0] <= w[1]), "{series}: {values:?}");
        assert_eq!(values.last(), Some(&stored), "{series}: {values:?}");
    }
}
