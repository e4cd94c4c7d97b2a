//! `/metrics`: Prometheus text exposition 0.0.4. Label sets are bounded: sensors are capped at
//! [`App::max_sensor_metrics`] (the rest counted in `agent_health_sensors_dropped`), every
//! other label takes values from a fixed list.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use calypso::{HealthNode, State};
use tokio::time::Instant;

use crate::app::App;
use crate::policy::Probe;
use crate::stats::{BUCKETS, PollError};

/// One leaf sensor of the last report.
struct Sensor {
    subsystem: String,
    sensor: String,
    state: State,
    value: Option<f64>,
}

/// What the tracker says, copied out so that the lock is held only for that.
struct Snapshot {
    sensors: Vec<Sensor>,
    dropped: usize,
    server_state: Option<State>,
    verdicts: [(Probe, bool); 3],
    transitions: Vec<(Probe, bool, u64)>,
    last_poll_age: Option<f64>,
}

fn snapshot(app: &App, now: Instant) -> Snapshot {
    let tracker = app.tracker();
    let mut sensors = Vec::new();
    let mut dropped = 0;
    let mut server_state = None;
    if let Some(report) = tracker.last_report() {
        server_state = Some(report.state);
        let mut seen = BTreeSet::new();
        let mut leaves = Vec::new();
        for sub in &report.sub_systems {
            leaves_of(sub, &sub.name, None, &mut leaves);
        }
        for leaf in leaves {
            if sensors.len() >= app.max_sensor_metrics
                || !seen.insert((leaf.subsystem.clone(), leaf.sensor.clone()))
            {
                // Over the cap, or the same labels twice (duplicate names): left out.
                dropped += 1;
                continue;
            }
            sensors.push(leaf);
        }
    }
    let verdicts = Probe::ALL.map(|p| (p, tracker.verdict(p, now).ok));
    let counts = tracker.transition_counts();
    let transitions = Probe::ALL
        .iter()
        .flat_map(|p| [true, false].map(|ok| (*p, ok, counts.get(&(*p, ok)).copied().unwrap_or(0))))
        .collect();
    let last_poll_age = tracker.last_poll_at().map(|at| now.duration_since(at).as_secs_f64());
    Snapshot { sensors, dropped, server_state, verdicts, transitions, last_poll_age }
}

/// The leaves under a sub-system, in report order: `sensor` is the path below the sub-system.
fn leaves_of(node: &HealthNode, subsystem: &str, path: Option<&str>, out: &mut Vec<Sensor>) {
    if node.children.is_empty() {
        out.push(Sensor {
            subsystem: subsystem.to_string(),
            sensor: path.unwrap_or_default().to_string(),
            state: node.state,
            value: node.value,
        });
        return;
    }
    for child in &node.children {
        let child_path = match path {
            Some(p) => format!("{p}/{}", child.name),
            None => child.name.clone(),
        };
        leaves_of(child, subsystem, Some(&child_path), out);
    }
}

/// The whole exposition.
pub fn render(app: &App, now: Instant) -> String {
    let snap = snapshot(app, now);
    let stats = app.stats().clone();
    let mut out = String::with_capacity(4096 + snap.sensors.len() * 300);

    family(
        &mut out,
        "calypso_health_state",
        "gauge",
        "State of each Calypso health sensor: 1 for the current state.",
    );
    for s in &snap.sensors {
        for state in State::ALL {
            let labels = [
                ("subsystem", s.subsystem.as_str()),
                ("sensor", s.sensor.as_str()),
                ("state", state.as_str()),
            ];
            sample(&mut out, "calypso_health_state", &labels, bool_value(s.state == state));
        }
    }
    family(
        &mut out,
        "calypso_health_sensor_value",
        "gauge",
        "Metric value of each Calypso health sensor that reports one.",
    );
    for s in &snap.sensors {
        if let Some(v) = s.value {
            let labels = [("subsystem", s.subsystem.as_str()), ("sensor", s.sensor.as_str())];
            sample(&mut out, "calypso_health_sensor_value", &labels, float(v));
        }
    }
    family(
        &mut out,
        "calypso_server_state",
        "gauge",
        "Overall state of the Calypso server: 1 for the current state.",
    );
    if let Some(current) = snap.server_state {
        for state in State::ALL {
            sample(
                &mut out,
                "calypso_server_state",
                &[("state", state.as_str())],
                bool_value(current == state),
            );
        }
    }
    family(
        &mut out,
        "agent_health_sensors_dropped",
        "gauge",
        "Sensors of the last report left out of the metrics (over the cap, or duplicate names).",
    );
    sample(&mut out, "agent_health_sensors_dropped", &[], snap.dropped.to_string());

    family(
        &mut out,
        "agent_health_poll_duration_seconds",
        "histogram",
        "Time taken by polls of the Calypso health API.",
    );
    for (i, le) in BUCKETS.iter().enumerate() {
        let le = float(*le);
        sample(
            &mut out,
            "agent_health_poll_duration_seconds_bucket",
            &[("le", &le)],
            stats.poll_buckets[i].to_string(),
        );
    }
    let inf = stats.poll_buckets[BUCKETS.len()].to_string();
    sample(&mut out, "agent_health_poll_duration_seconds_bucket", &[("le", "+Inf")], inf);
    sample(&mut out, "agent_health_poll_duration_seconds_sum", &[], float(stats.poll_sum_seconds));
    sample(&mut out, "agent_health_poll_duration_seconds_count", &[], stats.poll_count.to_string());

    family(&mut out, "agent_health_poll_errors_total", "counter", "Polls that failed, by reason.");
    for e in PollError::ALL {
        let n = stats.poll_errors.get(&e).copied().unwrap_or(0);
        sample(&mut out, "agent_health_poll_errors_total", &[("reason", e.label())], n.to_string());
    }

    family(
        &mut out,
        "agent_health_probe_requests_total",
        "counter",
        "Probe requests answered, by probe and result.",
    );
    for probe in Probe::ALL {
        let (pass, fail) = stats.probe_requests.get(&probe).copied().unwrap_or((0, 0));
        for (result, n) in [("pass", pass), ("fail", fail)] {
            let labels = [("probe", probe.name()), ("result", result)];
            sample(&mut out, "agent_health_probe_requests_total", &labels, n.to_string());
        }
    }

    family(
        &mut out,
        "agent_health_transitions_total",
        "counter",
        "Probe verdict changes, by probe and new verdict.",
    );
    for (probe, ok, n) in &snap.transitions {
        let labels = [("probe", probe.name()), ("to", if *ok { "pass" } else { "fail" })];
        sample(&mut out, "agent_health_transitions_total", &labels, n.to_string());
    }

    for (probe, ok) in snap.verdicts {
        let (name, help) = match probe {
            Probe::Ready => ("agent_health_ready", "Whether the readiness probe passes now."),
            Probe::Live => ("agent_health_live", "Whether the liveness probe passes now."),
            Probe::Startup => ("agent_health_started", "Whether the startup probe passes now."),
        };
        family(&mut out, name, "gauge", help);
        sample(&mut out, name, &[], bool_value(ok));
    }

    family(
        &mut out,
        "agent_health_last_poll_age_seconds",
        "gauge",
        "Seconds since the last poll of the Calypso health API completed.",
    );
    if let Some(age) = snap.last_poll_age {
        sample(&mut out, "agent_health_last_poll_age_seconds", &[], float(age));
    }
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: String) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape_label(v));
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(&value);
    out.push('\n');
}

fn bool_value(b: bool) -> String {
    if b { "1" } else { "0" }.to_string()
}

/// A float as Prometheus reads it: `+Inf`, `-Inf`, `NaN`, else the shortest exact form.
fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v:?}")
    }
}

/// Label values: backslash, double quote and line feed escaped.
fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text: backslash and line feed escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Poll;
    use crate::stats::PollError;
    use crate::testing::{app_with, policy, report};
    use calypso::{HealthNode, HealthReport};
    use std::time::{Duration, SystemTime};

    /// Every sample line of a family (name followed by `{` or ` `).
    fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| {
                l.strip_prefix(name).is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
            })
            .collect()
    }

    /// Each family has HELP and TYPE before its samples, and every sample belongs to one.
    fn assert_well_formed(text: &str) {
        let mut current: Option<(String, String)> = None;
        let mut helped = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                helped = Some(rest.split(' ').next().unwrap().to_string());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert_eq!(helped.as_deref(), Some(name), "HELP right before TYPE for {name}");
                assert!(["gauge", "counter", "histogram"].contains(&kind));
                current = Some((name.to_string(), kind.to_string()));
            } else {
                let (family, kind) = current.as_ref().expect("sample after a TYPE");
                let name = line.split(['{', ' ']).next().unwrap();
                let ok = match kind.as_str() {
                    "histogram" => {
                        [format!("{family}_bucket"), format!("{family}_sum"), format!("{family}_count")]
                            .contains(&name.to_string())
                    }
                    _ => name == family,
                };
                assert!(ok, "{line} outside its family {family}");
                let value = line.rsplit(' ').next().unwrap();
                assert!(value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value), "{line}");
            }
        }
    }

    #[test]
    fn every_family_is_present_with_help_and_type() {
        let app = app_with([Poll::Answer(report(State::Green))]);
        let text = render(&app, Instant::now());
        assert_well_formed(&text);
        for family in [
            "calypso_health_state",
            "calypso_health_sensor_value",
            "calypso_server_state",
            "agent_health_sensors_dropped",
            "agent_health_poll_duration_seconds",
            "agent_health_poll_errors_total",
            "agent_health_probe_requests_total",
            "agent_health_transitions_total",
            "agent_health_ready",
            "agent_health_live",
            "agent_health_started",
            "agent_health_last_poll_age_seconds",
        ] {
            assert!(text.contains(&format!("# HELP {family} ")), "{family}");
            assert!(text.contains(&format!("# TYPE {family} ")), "{family}");
        }
    }

    #[test]
    fn sensor_states_one_series_per_state() {
        let app = app_with([Poll::Answer(report(State::Red))]);
        let text = render(&app, Instant::now());
        let states = samples(&text, "calypso_health_state");
        assert_eq!(states.len(), 3 * 3, "three leaves, three states each: {states:?}");
        assert!(states.contains(
            &r#"calypso_health_state{subsystem="Calypso",sensor="DataServerConnection",state="RED"} 1"#
        ));
        assert!(states.contains(
            &r#"calypso_health_state{subsystem="Calypso",sensor="DataServerConnection",state="GREEN"} 0"#
        ));
        assert!(
            states.contains(
                &r#"calypso_health_state{subsystem="System",sensor="MemoryUsage",state="GREEN"} 1"#
            )
        );
        assert_eq!(
            samples(&text, "calypso_health_sensor_value"),
            [r#"calypso_health_sensor_value{subsystem="System",sensor="MemoryUsage"} 42.5"#]
        );
        assert_eq!(
            samples(&text, "calypso_server_state"),
            [
                r#"calypso_server_state{state="GREEN"} 0"#,
                r#"calypso_server_state{state="AMBER"} 0"#,
                r#"calypso_server_state{state="RED"} 1"#
            ]
        );
        assert_eq!(samples(&text, "agent_health_sensors_dropped"), ["agent_health_sensors_dropped 0"]);
    }

    #[test]
    fn deeper_sensors_join_their_path_and_label_values_are_escaped() {
        let weird = HealthNode::new("Engine \"A\"\\B\nC", State::Amber)
            .with_children(vec![HealthNode::new("Queue", State::Amber).with_value(f64::INFINITY)]);
        let r = HealthReport {
            server: None,
            server_type: None,
            timestamp: None,
            state: State::Amber,
            sub_systems: vec![HealthNode::new("Sub", State::Amber).with_children(vec![weird])],
        };
        let app = app_with([Poll::Answer(r)]);
        let text = render(&app, Instant::now());
        assert_well_formed(&text);
        assert!(
            text.contains(
                r#"calypso_health_state{subsystem="Sub",sensor="Engine \"A\"\\B\nC/Queue",state="AMBER"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"calypso_health_sensor_value{subsystem="Sub",sensor="Engine \"A\"\\B\nC/Queue"} +Inf"#
        ));
    }

    #[test]
    fn sensors_are_capped_and_the_rest_counted() {
        let sensors: Vec<HealthNode> =
            (0..10).map(|i| HealthNode::new(format!("S{i}"), State::Green).with_value(i as f64)).collect();
        let r = HealthReport {
            server: None,
            server_type: None,
            timestamp: None,
            state: State::Green,
            sub_systems: vec![HealthNode::new("Sub", State::Green).with_children(sensors)],
        };
        let app = App::new(policy(), 4);
        app.tracker().observe(Poll::Answer(r), Instant::now(), SystemTime::now());
        let text = render(&app, Instant::now());
        let values = samples(&text, "calypso_health_sensor_value");
        assert_eq!(values.len(), 4);
        assert!(values[3].contains(r#"sensor="S3""#), "report order: {values:?}");
        assert_eq!(samples(&text, "calypso_health_state").len(), 4 * 3);
        assert_eq!(samples(&text, "agent_health_sensors_dropped"), ["agent_health_sensors_dropped 6"]);
    }

    #[test]
    fn duplicate_sensors_are_exported_once() {
        let r = HealthReport {
            server: None,
            server_type: None,
            timestamp: None,
            state: State::Green,
            sub_systems: vec![
                HealthNode::new("Sub", State::Green).with_children(vec![HealthNode::new("X", State::Green)]),
                HealthNode::new("Sub", State::Green).with_children(vec![HealthNode::new("X", State::Green)]),
            ],
        };
        let text = render(&app_with([Poll::Answer(r)]), Instant::now());
        assert_eq!(samples(&text, "calypso_health_state").len(), 3);
        assert_eq!(samples(&text, "agent_health_sensors_dropped"), ["agent_health_sensors_dropped 1"]);
    }

    #[test]
    fn without_a_report_no_sensor_series_and_no_poll_age() {
        let app = app_with([]);
        let text = render(&app, Instant::now());
        assert_well_formed(&text);
        assert!(samples(&text, "calypso_health_state").is_empty());
        assert!(samples(&text, "calypso_server_state").is_empty());
        assert!(samples(&text, "agent_health_last_poll_age_seconds").is_empty());
        assert_eq!(samples(&text, "agent_health_ready"), ["agent_health_ready 0"]);
        assert_eq!(samples(&text, "agent_health_live"), ["agent_health_live 1"]);
        assert_eq!(samples(&text, "agent_health_started"), ["agent_health_started 0"]);
        // An unreachable server: still no sensors, but a poll age.
        app.tracker().observe(Poll::NoAnswer("refused".into()), Instant::now(), SystemTime::now());
        let text = render(&app, Instant::now());
        assert!(samples(&text, "calypso_health_state").is_empty());
        assert_eq!(samples(&text, "agent_health_last_poll_age_seconds").len(), 1);
    }

    #[test]
    fn histogram_errors_probes_and_transitions() {
        let app = app_with([Poll::Answer(report(State::Green)), Poll::Answer(report(State::Red))]);
        {
            let mut stats = app.stats();
            stats.record_poll(Duration::from_millis(3), None);
            stats.record_poll(Duration::from_millis(700), Some(PollError::Timeout));
            stats.record_probe(Probe::Ready, false);
            stats.record_probe(Probe::Live, true);
            stats.record_probe(Probe::Live, true);
        }
        let text = render(&app, Instant::now());
        assert_well_formed(&text);
        let buckets = samples(&text, "agent_health_poll_duration_seconds_bucket");
        assert_eq!(buckets.len(), BUCKETS.len() + 1);
        assert_eq!(buckets[0], r#"agent_health_poll_duration_seconds_bucket{le="0.005"} 1"#);
        assert!(buckets.contains(&r#"agent_health_poll_duration_seconds_bucket{le="0.5"} 1"#));
        assert!(buckets.contains(&r#"agent_health_poll_duration_seconds_bucket{le="1.0"} 2"#));
        assert_eq!(buckets[BUCKETS.len()], r#"agent_health_poll_duration_seconds_bucket{le="+Inf"} 2"#);
        assert_eq!(
            samples(&text, "agent_health_poll_duration_seconds_sum"),
            ["agent_health_poll_duration_seconds_sum 0.703"]
        );
        assert_eq!(
            samples(&text, "agent_health_poll_duration_seconds_count"),
            ["agent_health_poll_duration_seconds_count 2"]
        );

        let errors = samples(&text, "agent_health_poll_errors_total");
        assert_eq!(errors.len(), PollError::ALL.len());
        assert!(errors.contains(&r#"agent_health_poll_errors_total{reason="timeout"} 1"#));
        assert!(errors.contains(&r#"agent_health_poll_errors_total{reason="refused"} 0"#));

        let probes = samples(&text, "agent_health_probe_requests_total");
        assert_eq!(probes.len(), 6);
        assert!(probes.contains(&r#"agent_health_probe_requests_total{probe="live",result="pass"} 2"#));
        assert!(probes.contains(&r#"agent_health_probe_requests_total{probe="ready",result="fail"} 1"#));
        assert!(probes.contains(&r#"agent_health_probe_requests_total{probe="startup",result="pass"} 0"#));

        // Ready passed after the GREEN poll, failed after the RED one (one failure is enough here).
        let transitions = samples(&text, "agent_health_transitions_total");
        assert_eq!(transitions.len(), 6);
        assert!(transitions.contains(&r#"agent_health_transitions_total{probe="ready",to="pass"} 1"#));
        assert!(transitions.contains(&r#"agent_health_transitions_total{probe="ready",to="fail"} 1"#));
        assert_eq!(samples(&text, "agent_health_ready"), ["agent_health_ready 0"]);
        assert_eq!(samples(&text, "agent_health_started"), ["agent_health_started 1"]);
    }

    #[test]
    fn poll_age_follows_the_clock() {
        let app = app_with([]);
        let at = Instant::now();
        app.tracker().observe(Poll::Answer(report(State::Green)), at, SystemTime::now());
        let text = render(&app, at + Duration::from_millis(1500));
        assert_eq!(
            samples(&text, "agent_health_last_poll_age_seconds"),
            ["agent_health_last_poll_age_seconds 1.5"]
        );
    }

    #[test]
    fn every_poll_error_is_listed() {
        // Fails to compile when a variant is added without listing it in PollError::ALL.
        fn index(e: PollError) -> usize {
            match e {
                PollError::Refused => 0,
                PollError::Timeout => 1,
                PollError::Closed => 2,
                PollError::Dns => 3,
                PollError::BadPayload => 4,
                PollError::Other => 5,
            }
        }
        for (i, e) in PollError::ALL.iter().enumerate() {
            assert_eq!(index(*e), i);
        }
    }

    /// The exposition as a real parser reads it: `promtool check metrics` (skipped loudly when
    /// promtool is absent, unless `AGENT_TESTS_REQUIRE` names it).
    #[test]
    fn promtool_accepts_it() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let Some(promtool) = calypso_testkit::require_tool("promtool") else { return };
        let weird = HealthNode::new("Engine \"A\"\\B\nC", State::Amber)
            .with_children(vec![HealthNode::new("Queue", State::Amber).with_value(f64::NAN)]);
        let mut r = report(State::Red);
        r.sub_systems.push(HealthNode::new("Sub", State::Amber).with_children(vec![weird]));
        r.sub_systems.push(HealthNode::new("Empty", State::Green));
        let app = app_with([Poll::Answer(report(State::Green)), Poll::Answer(r)]);
        app.stats().record_poll(Duration::from_millis(30), Some(PollError::BadPayload));
        app.stats().record_probe(Probe::Ready, false);
        let text = render(&app, Instant::now());
        let mut child = Command::new(promtool)
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool: {}{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn floats_and_escapes() {
        assert_eq!(float(1.0), "1.0");
        assert_eq!(float(0.005), "0.005");
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(float(1e300), "1e300");
        assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(escape_help("x\\y\nz"), "x\\\\y\\nz");
    }
}
