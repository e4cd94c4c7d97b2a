//! The demo's timeline as data, for the picture: what each component was doing when, recorded
//! where the demo already observes it (each server's health as seen from outside, agent-wait's
//! gate, agent-health's probe answers, es-sim's document counts), then turned into lanes of
//! segments that [`crate::svg`] draws.
//!
//! Pure: the caller passes the times (seconds since the demo started); no clock, no IO.

use std::time::Duration;

use calypso::{HealthReport, State};

/// What a band of a lane shows over a stretch of time: one colour of the picture each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Nothing answers on the server's port (its process is not there yet, or not listening).
    NotListening,
    /// agent-wait holds the server back until its dependencies are healthy.
    Waiting,
    /// The server answers RED "starting" (or agent-health's `/startupz` has not passed yet).
    Starting,
    /// GREEN (or AMBER: Calypso serves traffic then); agent-health's `/readyz` answers 200.
    Ready,
    /// RED for another reason than starting, e.g. a DataServer failover; `/readyz` answers 503.
    NotReady,
    /// Something answers, but not a health report (a timeout, garbage).
    NoAnswer,
    /// agent-health's `/livez` answers 200: the kubelet leaves the container running.
    Live,
    /// `/livez` fails: the kubelet would restart the container.
    NotLive,
}

impl Status {
    /// Every status, in the legend's order.
    pub const ALL: [Status; 8] = [
        Status::NotListening,
        Status::Waiting,
        Status::Starting,
        Status::Ready,
        Status::NotReady,
        Status::NoAnswer,
        Status::Live,
        Status::NotLive,
    ];

    /// The name in the picture's `data-state` attributes, which tests read.
    pub fn name(self) -> &'static str {
        match self {
            Status::NotListening => "not-listening",
            Status::Waiting => "waiting",
            Status::Starting => "starting",
            Status::Ready => "ready",
            Status::NotReady => "not-ready",
            Status::NoAnswer => "no-answer",
            Status::Live => "live",
            Status::NotLive => "not-live",
        }
    }

    /// What the legend says.
    pub fn label(self) -> &'static str {
        match self {
            Status::NotListening => "not listening",
            Status::Waiting => "waiting (held by agent-wait)",
            Status::Starting => "starting (RED \"starting\")",
            Status::Ready => "ready (GREEN, readyz 200)",
            Status::NotReady => "not ready (RED, readyz 503)",
            Status::NoAnswer => "no answer",
            Status::Live => "live (livez 200)",
            Status::NotLive => "not live (livez failing)",
        }
    }
}

/// What a server's health report says, as a status: RED with the `Calypso/Startup` sensor among
/// its causes is starting (what calypso-sim serves until its startup delay has passed); any
/// other RED is not ready.
pub fn report_status(report: &HealthReport) -> Status {
    match report.state {
        State::Green | State::Amber => Status::Ready,
        State::Red if report.causes().iter().any(|c| c.path == "Calypso/Startup") => Status::Starting,
        State::Red => Status::NotReady,
    }
}

/// A server's status from what its health API answers and whether agent-wait has opened its gate:
/// nothing listens while agent-wait holds it back, and that is waiting, not a crash.
pub fn server_status(gate_open: bool, answer: Status) -> Status {
    match answer {
        Status::NotListening if !gate_open => Status::Waiting,
        other => other,
    }
}

/// One of agent-health's answers as a status of its band: `/startupz` failing is starting (the
/// kubelet holds the other probes back meanwhile), and once it passes `/readyz` says the rest
/// (`None`: passing startup is not being ready); `/readyz` is ready or not; `/livez` live or not.
/// `status` is the HTTP status, `None` if nothing answered (`listening` tells which way).
pub fn probe_status(probe: Band, status: Option<u16>, listening: bool) -> Option<Status> {
    Some(match (probe, status) {
        (_, None) if !listening => Status::NotListening,
        (_, None) => Status::NoAnswer,
        (Band::Startupz, Some(200)) => return None,
        (Band::Startupz, Some(_)) => Status::Starting,
        (Band::Livez, Some(200)) => Status::Live,
        (Band::Livez, Some(_)) => Status::NotLive,
        (_, Some(200)) => Status::Ready,
        (_, Some(_)) => Status::NotReady,
    })
}

/// The bands of a lane: the server's health as seen from outside, and agent-health's view of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Band {
    /// The server's health API, polled by the demo (the lane's main, thick band).
    Health,
    /// agent-health's `/startupz` answers: drawn in the readyz band, before readyz is probed.
    Startupz,
    /// agent-health's `/readyz` answers (the kubelet's readiness probe).
    Readyz,
    /// agent-health's `/livez` answers (the kubelet's liveness probe).
    Livez,
}

impl Band {
    /// The name in the picture's `data-band` attributes.
    pub fn name(self) -> &'static str {
        match self {
            Band::Health => "health",
            Band::Startupz | Band::Readyz => "readyz",
            Band::Livez => "livez",
        }
    }

    /// What the picture writes beside the band (nothing beside the main band).
    pub fn label(self) -> &'static str {
        match self {
            Band::Health => "",
            Band::Startupz | Band::Readyz => "agent-health /readyz",
            Band::Livez => "agent-health /livez",
        }
    }

    /// `/startupz` and `/readyz` share a band: startup is where readiness begins.
    fn drawn_as(self) -> Band {
        match self {
            Band::Startupz => Band::Readyz,
            other => other,
        }
    }
}

/// The picture's content: what [`crate::svg::render`] draws.
#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    pub title: String,
    pub subtitle: String,
    /// The end of the time axis (its start is the demo's start).
    pub end: Duration,
    pub lanes: Vec<Lane>,
    /// Counts over time (agent-logship's shipped documents), drawn below the lanes.
    pub counters: Counters,
    /// Moments worth a vertical line across every lane (the failover).
    pub markers: Vec<Marker>,
}

/// One component's lane.
#[derive(Debug, Clone, PartialEq)]
pub struct Lane {
    pub component: String,
    pub bands: Vec<BandSegments>,
}

/// One band of a lane, as consecutive segments (gaps where nothing was observed).
#[derive(Debug, Clone, PartialEq)]
pub struct BandSegments {
    pub band: Band,
    pub segments: Vec<Segment>,
}

/// A stretch of time in one status.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub status: Status,
    pub from: Duration,
    pub to: Duration,
    /// What was observed when it began (the health summary, the probe's answer), for the tooltip.
    pub detail: String,
}

/// A component's counters, e.g. agent-logship's shipped documents per kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Counters {
    pub component: String,
    pub series: Vec<Series>,
}

/// One counter sampled over time.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The name in the picture's `data-series` attributes.
    pub name: String,
    pub label: String,
    /// (when, value), in time order.
    pub samples: Vec<(Duration, u64)>,
}

/// A moment across every lane.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub at: Duration,
    pub label: String,
}

/// The status changes and samples observed so far. Lanes and series are declared up front so
/// that one that saw nothing is still drawn (empty), in the declared order.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// (component, its bands' changes), in the declared order.
    lanes: Vec<(String, Vec<BandChanges>)>,
    counters: Counters,
    markers: Vec<Marker>,
}

/// One band's changes, in time order.
type BandChanges = (Band, Vec<Change>);

#[derive(Debug, Clone)]
struct Change {
    at: Duration,
    status: Status,
    detail: String,
}

impl Timeline {
    /// A timeline of these lanes (component, its bands) and of `counter`'s series (name, label).
    pub fn new(lanes: &[(&str, &[Band])], counter: &str, series: &[(&str, &str)]) -> Timeline {
        Timeline {
            lanes: lanes
                .iter()
                .map(|(c, bands)| (c.to_string(), bands.iter().map(|b| (b.drawn_as(), Vec::new())).collect()))
                .collect(),
            counters: Counters {
                component: counter.to_string(),
                series: series
                    .iter()
                    .map(|(name, label)| Series {
                        name: name.to_string(),
                        label: label.to_string(),
                        samples: Vec::new(),
                    })
                    .collect(),
            },
            markers: Vec::new(),
        }
    }

    /// `component`'s `band` shows `status` from `at` on. The same status again is no change (its
    /// first detail stays); an undeclared lane or band is ignored: the picture shows what was
    /// declared.
    pub fn status(&mut self, component: &str, band: Band, at: Duration, status: Status, detail: &str) {
        let Some((_, bands)) = self.lanes.iter_mut().find(|(c, _)| c == component) else { return };
        let Some((_, changes)) = bands.iter_mut().find(|(b, _)| *b == band.drawn_as()) else { return };
        if changes.last().is_some_and(|c| c.status == status) {
            return;
        }
        changes.push(Change { at, status, detail: detail.to_string() });
    }

    /// `series` counted `value` at `at`.
    pub fn sample(&mut self, series: &str, at: Duration, value: u64) {
        if let Some(s) = self.counters.series.iter_mut().find(|s| s.name == series) {
            s.samples.push((at, value));
        }
    }

    /// A moment worth a line across the lanes.
    pub fn marker(&mut self, at: Duration, label: &str) {
        self.markers.push(Marker { at, label: label.to_string() });
    }

    /// The picture of what was observed until `until`: each status lasts until the next change of
    /// its band, the last one until `until` (when the demo stopped watching). The time axis
    /// ends at `until` or at the last sample or marker, whichever is later.
    pub fn picture(&self, title: &str, subtitle: &str, until: Duration) -> Picture {
        let lanes = self
            .lanes
            .iter()
            .map(|(component, bands)| Lane {
                component: component.clone(),
                bands: bands
                    .iter()
                    .map(|(band, changes)| BandSegments { band: *band, segments: segments(changes, until) })
                    .collect(),
            })
            .collect();
        let last_sample = self.counters.series.iter().filter_map(|s| s.samples.last().map(|(at, _)| *at));
        let end = self.markers.iter().map(|m| m.at).chain(last_sample).fold(until, Duration::max);
        Picture {
            title: title.to_string(),
            subtitle: subtitle.to_string(),
            end,
            lanes,
            counters: self.counters.clone(),
            markers: self.markers.clone(),
        }
    }
}

/// The picture's resolution: it gives times in milliseconds, so a shorter segment would be one
/// that begins where it ends (a gate that opened the instant its server was first asked).
const RESOLUTION: Duration = Duration::from_millis(1);

/// Changes as segments: each until the next change, the last until `until`; nothing after
/// `until`, and none shorter than the picture can show.
fn segments(changes: &[Change], until: Duration) -> Vec<Segment> {
    let ends = changes.iter().skip(1).map(|c| c.at).chain(std::iter::once(until));
    changes
        .iter()
        .zip(ends)
        .map(|(c, to)| Segment { status: c.status, from: c.at, to: to.min(until), detail: c.detail.clone() })
        .filter(|s| s.to.saturating_sub(s.from) >= RESOLUTION)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use calypso::HealthNode;

    fn s(secs: f64) -> Duration {
        Duration::from_secs_f64(secs)
    }

    fn states(p: &Picture, lane: usize, band: usize) -> Vec<(&'static str, f64, f64)> {
        p.lanes[lane].bands[band]
            .segments
            .iter()
            .map(|g| (g.status.name(), g.from.as_secs_f64(), g.to.as_secs_f64()))
            .collect()
    }

    #[test]
    fn changes_become_segments_until_the_next_change_or_the_end() {
        let mut t = Timeline::new(&[("DataServer", &[Band::Health])], "agent-logship", &[]);
        t.status("DataServer", Band::Health, s(0.5), Status::Waiting, "not listening");
        t.status("DataServer", Band::Health, s(1.0), Status::Starting, "RED");
        t.status("DataServer", Band::Health, s(1.5), Status::Starting, "RED again: no change");
        t.status("DataServer", Band::Health, s(3.0), Status::Ready, "GREEN");
        let p = t.picture("t", "", s(5.0));
        assert_eq!(states(&p, 0, 0), [("waiting", 0.5, 1.0), ("starting", 1.0, 3.0), ("ready", 3.0, 5.0)]);
        assert_eq!(p.lanes[0].bands[0].segments[1].detail, "RED", "the first detail stays");
        assert_eq!(p.end, s(5.0));
    }

    #[test]
    fn a_segment_shorter_than_a_millisecond_is_not_drawn() {
        let mut t = Timeline::new(&[("EventServer", &[Band::Health])], "agent-logship", &[]);
        t.status("EventServer", Band::Health, s(0.074_1), Status::Waiting, "gate closed");
        t.status("EventServer", Band::Health, s(0.074_4), Status::NotListening, "gate opened");
        t.status("EventServer", Band::Health, s(0.662), Status::Starting, "RED");
        let p = t.picture("t", "", s(1.0));
        assert_eq!(states(&p, 0, 0), [("not-listening", 0.074_4, 0.662), ("starting", 0.662, 1.0)]);
    }

    #[test]
    fn declared_lanes_stay_in_order_and_empty_ones_are_kept() {
        let mut t = Timeline::new(
            &[("EventServer", &[Band::Health]), ("EngineServer", &[Band::Health, Band::Readyz, Band::Livez])],
            "agent-logship",
            &[("logs", "logs")],
        );
        t.status("Nobody", Band::Health, s(1.0), Status::Ready, "ignored");
        t.status("EventServer", Band::Livez, s(1.0), Status::Live, "no such band: ignored");
        t.status("EngineServer", Band::Startupz, s(1.0), Status::Starting, "503 starting");
        t.status("EngineServer", Band::Readyz, s(2.0), Status::Ready, "200 ok");
        let p = t.picture("t", "", s(4.0));
        let lanes: Vec<&str> = p.lanes.iter().map(|l| l.component.as_str()).collect();
        assert_eq!(lanes, ["EventServer", "EngineServer"]);
        assert!(p.lanes[0].bands[0].segments.is_empty());
        let bands: Vec<&str> = p.lanes[1].bands.iter().map(|b| b.band.name()).collect();
        assert_eq!(bands, ["health", "readyz", "livez"]);
        assert_eq!(states(&p, 1, 1), [("starting", 1.0, 2.0), ("ready", 2.0, 4.0)]);
        assert!(p.lanes[1].bands[2].segments.is_empty());
    }

    #[test]
    fn nothing_is_drawn_after_the_end_and_the_axis_covers_samples_and_markers() {
        let mut t = Timeline::new(&[("A", &[Band::Health])], "agent-logship", &[("logs", "logs")]);
        t.status("A", Band::Health, s(1.0), Status::Ready, "");
        t.status("A", Band::Health, s(6.0), Status::NotReady, "after the end");
        t.sample("logs", s(7.5), 40);
        t.sample("nope", s(9.0), 1);
        t.marker(s(2.0), "failover");
        let p = t.picture("t", "", s(5.0));
        assert_eq!(states(&p, 0, 0), [("ready", 1.0, 5.0)]);
        assert_eq!(p.end, s(7.5));
        assert_eq!(p.counters.series[0].samples, [(s(7.5), 40)]);
    }

    #[test]
    fn a_closed_gate_makes_not_listening_waiting() {
        assert_eq!(server_status(false, Status::NotListening), Status::Waiting);
        assert_eq!(server_status(true, Status::NotListening), Status::NotListening);
        assert_eq!(server_status(false, Status::Ready), Status::Ready);
    }

    #[test]
    fn probe_answers_become_statuses() {
        assert_eq!(probe_status(Band::Startupz, Some(503), true), Some(Status::Starting));
        assert_eq!(probe_status(Band::Startupz, None, false), Some(Status::NotListening));
        assert_eq!(probe_status(Band::Startupz, Some(200), true), None, "readyz tells");
        assert_eq!(probe_status(Band::Readyz, Some(200), true), Some(Status::Ready));
        assert_eq!(probe_status(Band::Readyz, Some(503), true), Some(Status::NotReady));
        assert_eq!(probe_status(Band::Readyz, None, true), Some(Status::NoAnswer));
        assert_eq!(probe_status(Band::Livez, Some(200), true), Some(Status::Live));
        assert_eq!(probe_status(Band::Livez, Some(500), true), Some(Status::NotLive));
    }

    #[test]
    fn red_starting_is_starting_and_other_red_is_not_ready() {
        let report = |state, sensor: &str| HealthReport {
            server: None,
            server_type: None,
            timestamp: None,
            state,
            sub_systems: vec![
                HealthNode::new("Calypso", state).with_children(vec![HealthNode::new(sensor, state)]),
            ],
        };
        assert_eq!(report_status(&report(State::Red, "Startup")), Status::Starting);
        assert_eq!(report_status(&report(State::Red, "DataServerConnection")), Status::NotReady);
        assert_eq!(report_status(&report(State::Green, "Startup")), Status::Ready);
        assert_eq!(report_status(&report(State::Amber, "Memory")), Status::Ready);
    }
}
