//! The simulated server's sensor tree: which sensors each component type has (the table in
//! `sensors.md`), setting them, and turning them into the report the health path serves.
//! Pure: no clock, no IO; the caller passes the timestamp and whether the server is starting.

use calypso::{Component, HealthNode, HealthReport, State};

/// The sub-system that holds the Calypso connection sensors and the startup sensor.
pub(crate) const CALYPSO: &str = "Calypso";
/// The sensor the upstream poller drives (a path below [`CALYPSO`]).
pub(crate) const DATA_SERVER_CONNECTION: &str = "DataServerConnection";
const STARTUP: &str = "Startup";
/// The engines an EngineServer reports as sub-systems (a subset of what real ones host, enough to
/// exercise per-engine sub-systems).
const ENGINES: [(&str, f64); 3] = [("TransferEngine", 12.0), ("TaskEngine", 3.0), ("MessageEngine", 0.0)];

/// The example connection targets the initial details name.
const DEFAULT_DB_URL: &str = "jdbc:oracle:thin:@calypso-db:1521:CALYPSO";
const DEFAULT_EVENT_SERVER_HOST: &str = "eventserver";
const DEFAULT_EVENT_SERVER_PORT: &str = "61616";

/// Where a simulated server is connected, as its `calypsosystem.properties` tells it
/// (`calypso-sim --config`): shown in the details of its connection sensors instead of the
/// built-in examples. Each part is optional; a missing one keeps the example's. There is no
/// password here, by design: details are served to anyone who asks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connections {
    /// `DBURL`: the DataServer's `Calypso/DatabaseConnection` says `connected to <DBURL> as
    /// <DBUSER>` (credentials and query values in the URL shown as `***`).
    pub db_url: Option<String>,
    /// `DBUSER`.
    pub db_user: Option<String>,
    /// `EVENTSERVERHOST`: `Calypso/EventServerConnection` (every type but the EventServer) says
    /// `connected to EventServer tcp://<EVENTSERVERHOST>:<EVENTSERVERPORT>`.
    pub event_server_host: Option<String>,
    /// `EVENTSERVERPORT`.
    pub event_server_port: Option<String>,
}

/// The connection sensors of `component` whose details `connections` changes, with the new
/// details (all of them GREEN, value 1, as at start).
pub(crate) fn connection_details(
    component: Component,
    connections: &Connections,
) -> Vec<([&'static str; 2], String)> {
    let mut out = Vec::new();
    let c = connections;
    if component != Component::EventServer && (c.event_server_host.is_some() || c.event_server_port.is_some())
    {
        let host = c.event_server_host.as_deref().unwrap_or(DEFAULT_EVENT_SERVER_HOST);
        let port = c.event_server_port.as_deref().unwrap_or(DEFAULT_EVENT_SERVER_PORT);
        out.push((
            [CALYPSO, "EventServerConnection"],
            format!("connected to EventServer tcp://{host}:{port}"),
        ));
    }
    if component == Component::DataServer && (c.db_url.is_some() || c.db_user.is_some()) {
        let url = agent_core::redact::url(c.db_url.as_deref().unwrap_or(DEFAULT_DB_URL));
        let details = match &c.db_user {
            Some(user) => format!("connected to {url} as {user}"),
            None => format!("connected to {url}"),
        };
        out.push(([CALYPSO, "DatabaseConnection"], details));
    }
    out
}

/// The sub-systems of one simulated server, in the order they are served. Leaf states are what
/// was set; inner states are recomputed from their children on every [`Sensors::report`], so
/// they are always the worst of their sensors whatever was set before.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sensors {
    sub_systems: Vec<HealthNode>,
}

impl Sensors {
    /// The initial, all-GREEN sensors of a component type (see `sensors.md`).
    pub(crate) fn initial(component: Component) -> Sensors {
        let system = vec![HealthNode {
            unit: Some("%".into()),
            amber_threshold: Some(80.0),
            red_threshold: Some(95.0),
            ..sensor("MemoryUsage", 41.5, "heap 1.7 GiB of 4 GiB")
        }];

        let mut calypso = Vec::new();
        if component != Component::EventServer {
            calypso.push(sensor(
                "EventServerConnection",
                1.0,
                format!(
                    "connected to EventServer tcp://{DEFAULT_EVENT_SERVER_HOST}:{DEFAULT_EVENT_SERVER_PORT}"
                ),
            ));
        }
        if component == Component::DataServer {
            calypso.push(sensor(
                "DatabaseConnection",
                1.0,
                format!("connected to {DEFAULT_DB_URL}, pool 12/50"),
            ));
        }
        if has_data_server_connection(component) {
            calypso.push(sensor(DATA_SERVER_CONNECTION, 1.0, "connected to DataServer dataserver:1099"));
        }

        let mut sub_systems = vec![HealthNode::new("System", State::Green).with_children(system)];
        // The EventServer has no Calypso connection sensors, and an empty sub-system means nothing.
        if !calypso.is_empty() {
            sub_systems.push(HealthNode::new(CALYPSO, State::Green).with_children(calypso));
        }
        if component == Component::EngineServer {
            sub_systems.extend(ENGINES.iter().map(|&(engine, pending)| {
                HealthNode::new(engine, State::Green).with_children(vec![
                    sensor("EngineRunning", 1.0, "engine running"),
                    HealthNode {
                        amber_threshold: Some(1000.0),
                        red_threshold: Some(10000.0),
                        ..sensor("UnconsumedEvents", pending, format!("{pending} events pending"))
                    },
                ])
            }));
        }
        Sensors { sub_systems }
    }

    /// Sets the node at `path` (sub-system, sensor, and optionally deeper components), creating
    /// any missing node on the way. `value` and `details` replace the old ones (None clears);
    /// unit and thresholds are configuration and stay.
    pub(crate) fn set(&mut self, path: &[&str], state: State, value: Option<f64>, details: Option<&str>) {
        if let Some(node) = find_or_create(&mut self.sub_systems, path) {
            node.state = state;
            node.value = value;
            node.details = details.map(str::to_owned);
        }
    }

    /// The node at `path`, if any.
    #[cfg(test)]
    pub(crate) fn get(&self, path: &[&str]) -> Option<&HealthNode> {
        let (first, rest) = path.split_first()?;
        let mut node = self.sub_systems.iter().find(|n| n.name == *first)?;
        for name in rest {
            node = node.children.iter().find(|n| n.name == *name)?;
        }
        Some(node)
    }

    /// The report served now. While `starting`, a RED `Calypso/Startup` sensor is added, which
    /// makes the whole server RED.
    pub(crate) fn report(
        &self,
        server: &str,
        component: Component,
        timestamp: String,
        starting: bool,
    ) -> HealthReport {
        let mut sensors = self.clone();
        if starting {
            sensors.set(&[CALYPSO, STARTUP], State::Red, None, Some("starting"));
        }
        let mut sub_systems = sensors.sub_systems;
        sub_systems.iter_mut().for_each(aggregate);
        HealthReport {
            server: Some(server.to_owned()),
            server_type: Some(component.name().to_owned()),
            timestamp: Some(timestamp),
            state: State::worst(sub_systems.iter().map(|s| s.state)).unwrap_or(State::Green),
            sub_systems,
        }
    }
}

/// Whether a component type has the `Calypso/DataServerConnection` sensor: it does when it
/// starts after, and so connects to, the DataServer. Taken from the topology so the simulator
/// and the agents agree on who depends on the DataServer.
pub fn has_data_server_connection(component: Component) -> bool {
    component.transitive_dependencies().contains(&Component::DataServer)
}

fn sensor(name: &str, value: f64, details: impl Into<String>) -> HealthNode {
    HealthNode::new(name, State::Green).with_value(value).with_details(details)
}

/// The node at `path`, created (GREEN, empty) where missing; `None` only for an empty path.
fn find_or_create<'a>(nodes: &'a mut Vec<HealthNode>, path: &[&str]) -> Option<&'a mut HealthNode> {
    let (first, rest) = path.split_first()?;
    let i = match nodes.iter().position(|n| n.name == *first) {
        Some(i) => i,
        None => {
            nodes.push(HealthNode::new(*first, State::Green));
            nodes.len() - 1
        }
    };
    let node = &mut nodes[i];
    if rest.is_empty() { Some(node) } else { find_or_create(&mut node.children, rest) }
}

/// Makes every inner node's state the worst of its children, bottom up.
fn aggregate(node: &mut HealthNode) {
    node.children.iter_mut().for_each(aggregate);
    if let Some(worst) = State::worst(node.children.iter().map(|c| c.state)) {
        node.state = worst;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOCS: &str = include_str!("sensors.md");

    fn paths(s: &Sensors) -> Vec<String> {
        let r = s.report("x-0", Component::EngineServer, "t".into(), false);
        r.nodes().into_iter().filter(|(_, n)| n.children.is_empty()).map(|(p, _)| p).collect()
    }

    #[test]
    fn engine_server_has_engines_and_data_server_connection() {
        assert_eq!(
            paths(&Sensors::initial(Component::EngineServer)),
            [
                "System/MemoryUsage",
                "Calypso/EventServerConnection",
                "Calypso/DataServerConnection",
                "TransferEngine/EngineRunning",
                "TransferEngine/UnconsumedEvents",
                "TaskEngine/EngineRunning",
                "TaskEngine/UnconsumedEvents",
                "MessageEngine/EngineRunning",
                "MessageEngine/UnconsumedEvents",
            ]
        );
    }

    #[test]
    fn every_initial_sensor_is_in_the_documented_table() {
        for c in [Component::EventServer, Component::DataServer, Component::EngineServer] {
            for p in paths(&Sensors::initial(c)) {
                assert!(DOCS.contains(&p), "{p} of {c} missing from sensors.md");
            }
        }
    }

    #[test]
    fn states_are_worst_of_sensors_and_follow_changes_both_ways() {
        let mut s = Sensors::initial(Component::EngineServer);
        s.set(&["TaskEngine", "UnconsumedEvents"], State::Amber, Some(1500.0), None);
        let r = s.report("e", Component::EngineServer, "t".into(), false);
        assert_eq!(r.state, State::Amber);
        assert_eq!(r.sub_systems[3].state, State::Amber);
        assert_eq!(r.sub_systems[2].state, State::Green);

        s.set(&["TaskEngine", "UnconsumedEvents"], State::Green, Some(1.0), None);
        let r = s.report("e", Component::EngineServer, "t".into(), false);
        assert_eq!(r.state, State::Green, "an inner node recovers when its sensors do");
    }

    #[test]
    fn set_replaces_value_and_details_keeps_thresholds_and_creates_missing() {
        let mut s = Sensors::initial(Component::DataServer);
        s.set(&["System", "MemoryUsage"], State::Red, Some(97.0), Some("heap nearly full"));
        let m = s.get(&["System", "MemoryUsage"]).cloned();
        assert_eq!(
            m.as_ref().map(|m| (m.state, m.value, m.red_threshold)),
            Some((State::Red, Some(97.0), Some(95.0)))
        );
        assert_eq!(m.and_then(|m| m.details).as_deref(), Some("heap nearly full"));

        s.set(&["Custom", "Thing", "Part"], State::Amber, None, None);
        let r = s.report("d", Component::DataServer, "t".into(), false);
        assert_eq!(r.sub_systems.last().map(|n| (n.name.as_str(), n.state)), Some(("Custom", State::Amber)));
        assert_eq!(r.state, State::Red);
    }

    #[test]
    fn connections_change_the_details_of_the_sensors_the_component_has() {
        let all = Connections {
            db_url: Some("jdbc:postgresql://db:5432/calypso?password=hunter2".into()),
            db_user: Some("calypso_uat".into()),
            event_server_host: Some("es.uat".into()),
            event_server_port: None,
        };
        assert_eq!(
            connection_details(Component::DataServer, &all),
            [
                (
                    [CALYPSO, "EventServerConnection"],
                    "connected to EventServer tcp://es.uat:61616".to_owned()
                ),
                (
                    [CALYPSO, "DatabaseConnection"],
                    "connected to jdbc:postgresql://db:5432/calypso?password=*** as calypso_uat".to_owned()
                ),
            ]
        );
        let engine = connection_details(Component::EngineServer, &all);
        assert_eq!(
            engine.iter().map(|(p, _)| p.join("/")).collect::<Vec<_>>(),
            ["Calypso/EventServerConnection"]
        );
        assert!(connection_details(Component::EventServer, &all).is_empty());
        assert!(connection_details(Component::DataServer, &Connections::default()).is_empty());

        let url_only =
            Connections { db_url: Some("jdbc:oracle:thin:@db:1521:X".into()), ..Connections::default() };
        assert_eq!(
            connection_details(Component::DataServer, &url_only),
            [([CALYPSO, "DatabaseConnection"], "connected to jdbc:oracle:thin:@db:1521:X".to_owned())]
        );
    }

    #[test]
    fn starting_adds_a_red_startup_sensor_only_to_the_report() {
        let s = Sensors::initial(Component::AuthServer);
        let r = s.report("a", Component::AuthServer, "t".into(), true);
        assert_eq!(r.state, State::Red);
        assert_eq!(r.summary(), "state RED (Calypso/Startup: RED 'starting')");
        assert!(s.get(&[CALYPSO, STARTUP]).is_none());
        assert_eq!(s.report("a", Component::AuthServer, "t".into(), false).state, State::Green);
    }
}
