//! The probe policy: what each poll of the Calypso health API means for the kubelet's three
//! probes. Pure: polls and the clock come in as arguments, verdicts go out.
//!
//! - **readiness** follows the report (GREEN, or AMBER unless strict; ignored sensors are never
//!   the only cause), with hysteresis, and fails on stale data;
//! - **liveness** fails only when Calypso itself stops answering for the grace period (or a
//!   chosen sensor stays RED that long): a RED answer is an answer, so a DataServer failover
//!   never gets servers restarted;
//! - **startup** passes from the first reachable report that is not RED, and stays passed until
//!   Calypso stops answering: the kubelet asks `/startupz` only of a container that has not
//!   started yet, so a running server never notices, but a Calypso container the kubelet
//!   restarted (liveness, crash, OOM kill) beside this sidecar gets its whole startup budget again
//!   instead of a passed startup and a liveness clock that began when the old JVM died.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::{Duration, SystemTime};

use calypso::{HealthReport, State};
use tokio::time::Instant;

use crate::pattern::Pattern;

/// A poll and what the policy makes of it ([`Policy::judge`]).
#[derive(Debug)]
pub struct Judged {
    poll: Poll,
    /// Good for readiness, or why not.
    readiness: Result<(), String>,
    /// The liveness sensors RED in the report (none but in an answer).
    red_liveness_sensors: BTreeSet<String>,
}

/// The settings of the policy.
#[derive(Debug, Clone)]
pub struct Policy {
    pub interval: Duration,
    pub attempt_timeout: Duration,
    /// AMBER counts as ready (`AGENT_HEALTH_AMBER=ready`, the default).
    pub amber_ready: bool,
    pub readiness_ignore: Vec<Pattern>,
    pub ready_failures: u32,
    pub ready_successes: u32,
    pub liveness_grace: Duration,
    pub liveness_sensors: Vec<Pattern>,
}

impl Policy {
    /// What this policy makes of a poll, worked out before the tracker is locked: walking a
    /// report of a megabyte takes a while, and the probes wait for the lock (the poller does this
    /// on a blocking thread).
    pub fn judge(&self, poll: Poll) -> Judged {
        let readiness = self.readiness(&poll);
        let red_liveness_sensors = match &poll {
            Poll::Answer(report) => report
                .nodes()
                .into_iter()
                // Sensors are leaves: a sub-system (`Calypso`) is no sensor, and matching it
                // would let a connection sensor decide liveness through its parent.
                .filter(|(path, n)| {
                    n.children.is_empty()
                        && n.state == State::Red
                        && self.liveness_sensors.iter().any(|p| p.matches(path))
                })
                .map(|(path, _)| path)
                .collect(),
            _ => BTreeSet::new(),
        };
        Judged { poll, readiness, red_liveness_sensors }
    }

    /// Whether one poll is good for readiness, else why not.
    fn readiness(&self, poll: &Poll) -> Result<(), String> {
        let report = match poll {
            Poll::Answer(r) => r,
            Poll::BadAnswer(why) => return Err(format!("bad health payload: {why}")),
            Poll::NoAnswer(why) => return Err(format!("unreachable: {why}")),
            Poll::NotAsked(why) => return Err(format!("not asked: {why}")),
        };
        let causes = report.causes();
        let counted: Vec<_> =
            causes.iter().filter(|c| !self.readiness_ignore.iter().any(|p| p.matches(&c.path))).collect();
        // The server's own state, unless ignored sensors are among its causes: then the worst
        // of the others (ignored sensors are never the only cause).
        let state = if counted.len() == causes.len() {
            report.state
        } else {
            counted.iter().map(|c| c.node.state).max().unwrap_or(State::Green)
        };
        let ok = match state {
            State::Green => true,
            State::Amber => self.amber_ready,
            State::Red => false,
        };
        if ok {
            return Ok(());
        }
        let parts: Vec<String> =
            counted.iter().take(3).map(|c| format!("{}: {}", c.path, c.node.state)).collect();
        Err(if parts.is_empty() {
            format!("state {state}")
        } else {
            format!("state {state} ({})", parts.join("; "))
        })
    }

    /// No completed poll for this long makes the data stale: 3 x interval + attempt timeout.
    pub fn stale_after(&self) -> Duration {
        self.interval.saturating_mul(3).saturating_add(self.attempt_timeout)
    }
}

/// What one poll found.
#[derive(Debug, Clone, PartialEq)]
pub enum Poll {
    /// A health report (whatever its state).
    Answer(HealthReport),
    /// An HTTP answer whose body is no health report: the process answers, the payload is bad.
    BadAnswer(String),
    /// No HTTP answer at all: refused, reset, timed out.
    NoAnswer(String),
    /// Calypso could not be asked: the upstream's name did not resolve (no such name, or the
    /// DNS server failed or was silent). Not ready, but it says nothing of whether the JVM
    /// runs — a DNS outage must not get every Calypso server restarted.
    NotAsked(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Probe {
    Live,
    Ready,
    Startup,
}

impl Probe {
    pub const ALL: [Probe; 3] = [Probe::Live, Probe::Ready, Probe::Startup];

    pub fn name(self) -> &'static str {
        match self {
            Probe::Live => "live",
            Probe::Ready => "ready",
            Probe::Startup => "startup",
        }
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A probe's answer: pass, or fail with a one-line reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub ok: bool,
    pub reason: String,
}

impl Verdict {
    fn pass() -> Self {
        Verdict { ok: true, reason: "ok".into() }
    }

    fn fail(reason: impl Into<String>) -> Self {
        Verdict { ok: false, reason: reason.into() }
    }
}

/// One line of `?verbose`: a check that went into a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub state: Option<State>,
    /// How old the information is.
    pub age: Option<Duration>,
    pub reason: String,
}

/// A probe's verdict changing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub probe: Probe,
    pub ok: bool,
    pub at: SystemTime,
    pub reason: String,
}

/// The transitions kept for `/status`.
pub const TRANSITIONS_KEPT: usize = 64;

/// Sensors that report a connection to another server: they go RED in a failover that a
/// restart cannot fix, so they may never decide liveness.
pub const CONNECTION_SENSORS: [&str; 3] =
    ["Calypso/DataServerConnection", "Calypso/DatabaseConnection", "Calypso/EventServerConnection"];

/// The policy's memory of past polls.
#[derive(Debug)]
pub struct Tracker {
    policy: Policy,
    last: Option<(Poll, Instant, SystemTime)>,
    ready: bool,
    ready_reason: String,
    good_in_a_row: u32,
    bad_in_a_row: u32,
    unreachable_since: Option<(Instant, String)>,
    red_since: BTreeMap<String, Instant>,
    started: bool,
    shutting_down: bool,
    verdicts: BTreeMap<Probe, bool>,
    transitions: VecDeque<Transition>,
    transition_counts: BTreeMap<(Probe, bool), u64>,
}

impl Tracker {
    pub fn new(policy: Policy) -> Self {
        Tracker {
            policy,
            last: None,
            ready: false,
            ready_reason: "no poll completed yet".into(),
            good_in_a_row: 0,
            bad_in_a_row: 0,
            unreachable_since: None,
            red_since: BTreeMap::new(),
            started: false,
            shutting_down: false,
            verdicts: BTreeMap::new(),
            transitions: VecDeque::new(),
            transition_counts: BTreeMap::new(),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Takes one completed poll into account.
    pub fn observe(&mut self, poll: Poll, now: Instant, wall: SystemTime) {
        let judged = self.policy.judge(poll);
        self.observe_judged(judged, now, wall);
    }

    /// Takes one completed poll, judged already, into account.
    pub fn observe_judged(&mut self, judged: Judged, now: Instant, wall: SystemTime) {
        let Judged { poll, readiness, red_liveness_sensors: red } = judged;
        // After a stale spell the old polls say nothing: readiness starts over.
        if self.last.as_ref().is_some_and(|(_, at, _)| now.duration_since(*at) > self.policy.stale_after()) {
            self.ready = false;
            self.good_in_a_row = 0;
            self.bad_in_a_row = 0;
        }
        // Readiness, with hysteresis.
        match readiness {
            Ok(()) => {
                self.good_in_a_row += 1;
                self.bad_in_a_row = 0;
                if !self.ready && self.good_in_a_row >= self.policy.ready_successes {
                    self.ready = true;
                }
            }
            Err(reason) => {
                self.bad_in_a_row += 1;
                self.good_in_a_row = 0;
                if self.ready && self.bad_in_a_row >= self.policy.ready_failures {
                    self.ready = false;
                }
                self.ready_reason = reason;
            }
        }
        if !self.ready && self.good_in_a_row > 0 {
            self.ready_reason = format!(
                "recovering: {} of {} good polls in a row",
                self.good_in_a_row, self.policy.ready_successes
            );
        }
        // Liveness: how long without any answer, how long each liveness sensor has been RED.
        match &poll {
            Poll::NoAnswer(why) => {
                // Without an answer nothing is known of the sensors: the unreachable clock alone
                // decides, and a sensor's RED spell starts over when answers return.
                self.red_since.clear();
                // No JVM answers: whatever answers next is a server starting (again).
                self.started = false;
                if self.unreachable_since.is_none() {
                    self.unreachable_since = Some((now, why.clone()));
                } else if let Some((_, last_why)) = &mut self.unreachable_since {
                    *last_why = why.clone();
                }
            }
            Poll::Answer(report) => {
                self.unreachable_since = None;
                self.red_since.retain(|path, _| red.contains(path));
                for path in red {
                    self.red_since.entry(path).or_insert(now);
                }
                if report.state != State::Red {
                    self.started = true;
                }
            }
            Poll::BadAnswer(_) => self.unreachable_since = None,
            // Nothing is known of Calypso meanwhile: the liveness clocks start over, so that the
            // time DNS was down never counts as time Calypso did not answer.
            Poll::NotAsked(_) => {
                self.unreachable_since = None;
                self.red_since.clear();
            }
        }
        self.last = Some((poll, now, wall));
        self.record_transitions(now, wall);
    }

    /// From now on readiness fails with "shutting down"; liveness is unaffected.
    pub fn shut_down(&mut self, now: Instant, wall: SystemTime) {
        self.shutting_down = true;
        self.record_transitions(now, wall);
    }

    /// Re-evaluates time-dependent verdicts (staleness, grace periods) for the transition log.
    pub fn tick(&mut self, now: Instant, wall: SystemTime) {
        self.record_transitions(now, wall);
    }

    pub fn verdict(&self, probe: Probe, now: Instant) -> Verdict {
        match probe {
            Probe::Ready => self.readiness(now),
            Probe::Live => self.liveness(now),
            Probe::Startup => self.startup(),
        }
    }

    fn readiness(&self, now: Instant) -> Verdict {
        if self.shutting_down {
            return Verdict::fail("shutting down");
        }
        match &self.last {
            None => Verdict::fail("no poll completed yet"),
            Some((_, at, _)) if now.duration_since(*at) > self.policy.stale_after() => {
                Verdict::fail(format!(
                    "stale: no completed poll for {}",
                    humantime::format_duration(round(now.duration_since(*at)))
                ))
            }
            Some(_) if self.ready => Verdict::pass(),
            Some(_) => Verdict::fail(self.ready_reason.clone()),
        }
    }

    fn liveness(&self, now: Instant) -> Verdict {
        let grace = self.policy.liveness_grace;
        if let Some((since, why)) = &self.unreachable_since
            && now.duration_since(*since) >= grace
        {
            let took = humantime::format_duration(round(now.duration_since(*since)));
            return Verdict::fail(format!("no answer from Calypso for {took} ({why})"));
        }
        for (path, since) in &self.red_since {
            if now.duration_since(*since) >= grace {
                let took = humantime::format_duration(round(now.duration_since(*since)));
                return Verdict::fail(format!("sensor {path} RED for {took}"));
            }
        }
        Verdict::pass()
    }

    fn startup(&self) -> Verdict {
        if self.started {
            return Verdict::pass();
        }
        match &self.last {
            None => Verdict::fail("starting: no poll completed yet"),
            Some((Poll::Answer(r), _, _)) => Verdict::fail(format!("starting: {}", r.summary())),
            Some((Poll::BadAnswer(why), _, _)) => {
                Verdict::fail(format!("starting: bad health payload: {why}"))
            }
            Some((Poll::NoAnswer(why) | Poll::NotAsked(why), _, _)) => {
                Verdict::fail(format!("starting: {why}"))
            }
        }
    }

    /// The checks behind a probe's verdict, for `?verbose`.
    pub fn checks(&self, probe: Probe, now: Instant) -> Vec<Check> {
        let age = self.last.as_ref().map(|(_, at, _)| now.duration_since(*at));
        let state = match &self.last {
            Some((Poll::Answer(r), _, _)) => Some(r.state),
            _ => None,
        };
        let verdict = self.verdict(probe, now);
        let mut checks = vec![Check {
            name: "upstream".into(),
            ok: matches!(self.last, Some((Poll::Answer(_) | Poll::BadAnswer(_), _, _))),
            state,
            age,
            reason: match &self.last {
                None => "no poll completed yet".into(),
                Some((Poll::Answer(r), _, _)) => r.summary(),
                Some((Poll::BadAnswer(why), _, _)) => format!("bad health payload: {why}"),
                Some((Poll::NoAnswer(why), _, _)) => format!("no answer: {why}"),
                Some((Poll::NotAsked(why), _, _)) => format!("not asked: {why}"),
            },
        }];
        if let Some((Poll::Answer(report), _, _)) = &self.last {
            for (path, node) in report.nodes() {
                if !node.children.is_empty() {
                    continue;
                }
                let ignored =
                    probe == Probe::Ready && self.policy.readiness_ignore.iter().any(|p| p.matches(&path));
                let watched =
                    probe != Probe::Live || self.policy.liveness_sensors.iter().any(|p| p.matches(&path));
                if !watched {
                    continue;
                }
                let mut reason = node.details.clone().unwrap_or_default();
                if ignored {
                    reason = format!("ignored for readiness; {reason}");
                }
                let ok = ignored
                    || node.state == State::Green
                    || (node.state == State::Amber && self.policy.amber_ready);
                checks.push(Check { name: path, ok, state: Some(node.state), age, reason });
            }
        }
        checks.push(Check {
            name: probe.name().into(),
            ok: verdict.ok,
            state: None,
            age: None,
            reason: verdict.reason,
        });
        checks
    }

    pub fn last_report(&self) -> Option<&HealthReport> {
        match &self.last {
            Some((Poll::Answer(r), _, _)) => Some(r),
            _ => None,
        }
    }

    /// The last poll: what it found and when it completed.
    pub fn last_poll(&self) -> Option<(&Poll, SystemTime)> {
        self.last.as_ref().map(|(p, _, wall)| (p, *wall))
    }

    /// When the last poll completed.
    pub fn last_poll_at(&self) -> Option<Instant> {
        self.last.as_ref().map(|(_, at, _)| *at)
    }

    pub fn transitions(&self) -> impl Iterator<Item = &Transition> {
        self.transitions.iter()
    }

    /// How often each probe turned to passing (`true`) or failing (`false`).
    pub fn transition_counts(&self) -> &BTreeMap<(Probe, bool), u64> {
        &self.transition_counts
    }

    fn record_transitions(&mut self, now: Instant, wall: SystemTime) {
        for probe in Probe::ALL {
            let v = self.verdict(probe, now);
            let before = self.verdicts.insert(probe, v.ok);
            // The first verdict of each probe is no transition, unless it is a pass.
            if before == Some(v.ok) || (before.is_none() && !v.ok) {
                continue;
            }
            *self.transition_counts.entry((probe, v.ok)).or_insert(0) += 1;
            tracing::info!(probe = %probe, ok = v.ok, "{probe}: {}", v.reason);
            if self.transitions.len() == TRANSITIONS_KEPT {
                self.transitions.pop_front();
            }
            self.transitions.push_back(Transition { probe, ok: v.ok, at: wall, reason: v.reason });
        }
    }
}

/// Whole seconds above ten seconds, milliseconds below: readable reasons.
fn round(d: Duration) -> Duration {
    if d >= Duration::from_secs(10) {
        Duration::from_secs(d.as_secs())
    } else {
        Duration::from_millis(d.as_millis() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calypso::HealthNode;

    const S: Duration = Duration::from_secs(1);

    fn policy() -> Policy {
        Policy {
            interval: 2 * S,
            attempt_timeout: S,
            amber_ready: true,
            readiness_ignore: vec![],
            ready_failures: 2,
            ready_successes: 2,
            liveness_grace: 60 * S,
            liveness_sensors: vec![],
        }
    }

    /// An engine server's report with the given states of two sensors.
    fn engine(dsc: State, running: State) -> Poll {
        let node = |name: &str, s| HealthNode::new(name, s);
        let subs = vec![
            node("Calypso", dsc).with_children(vec![node("DataServerConnection", dsc).with_details("lost")]),
            node("TransferEngine", running).with_children(vec![node("EngineRunning", running)]),
        ];
        let state = State::worst(subs.iter().map(|n| n.state)).unwrap_or(State::Green);
        Poll::Answer(HealthReport {
            server: None,
            server_type: None,
            timestamp: None,
            state,
            sub_systems: subs,
        })
    }

    /// A tracker fed `polls`, one per interval from t0; returns it and the time of the last poll.
    fn feed(policy: Policy, polls: Vec<Poll>) -> (Tracker, Instant) {
        let t0 = Instant::now();
        let mut t = Tracker::new(policy);
        let mut at = t0;
        for (i, p) in polls.into_iter().enumerate() {
            at = t0 + 2 * S * i as u32;
            t.observe(p, at, SystemTime::now());
        }
        (t, at)
    }

    fn green() -> Poll {
        engine(State::Green, State::Green)
    }

    fn ok(t: &Tracker, probe: Probe, now: Instant) -> bool {
        t.verdict(probe, now).ok
    }

    #[test]
    fn ready_after_two_good_polls() {
        let (t, at) = feed(policy(), vec![green()]);
        assert_eq!(t.verdict(Probe::Ready, at).reason, "recovering: 1 of 2 good polls in a row");
        let (t, at) = feed(policy(), vec![green(), green()]);
        assert!(ok(&t, Probe::Ready, at) && ok(&t, Probe::Live, at) && ok(&t, Probe::Startup, at));
    }

    #[test]
    fn failover_is_not_ready_but_alive_however_long() {
        let mut polls = vec![green(), green()];
        polls.extend((0..100).map(|_| engine(State::Red, State::Green)));
        let (t, at) = feed(policy(), polls);
        let ready = t.verdict(Probe::Ready, at);
        assert!(!ready.ok);
        assert_eq!(ready.reason, "state RED (Calypso/DataServerConnection: RED)");
        assert!(ok(&t, Probe::Live, at), "200 s of RED answers never fail liveness");
        assert!(ok(&t, Probe::Startup, at), "startup stays latched");
    }

    #[test]
    fn hysteresis_holds_through_flapping() {
        let mut polls = vec![green(), green()];
        for _ in 0..10 {
            polls.push(engine(State::Red, State::Green));
            polls.push(green());
        }
        let (t, at) = feed(policy(), polls);
        assert!(ok(&t, Probe::Ready, at), "never two bad polls in a row");
        let (t, at) = feed(policy(), vec![green(), green(), engine(State::Red, State::Green)]);
        assert!(ok(&t, Probe::Ready, at), "one bad poll is not enough");
        let (t, at) = feed(
            policy(),
            vec![
                green(),
                green(),
                engine(State::Red, State::Green),
                engine(State::Red, State::Green),
                green(),
            ],
        );
        assert!(!ok(&t, Probe::Ready, at), "one good poll is not enough to come back");
    }

    #[test]
    fn stale_data_is_not_ready() {
        let (t, at) = feed(policy(), vec![green(), green()]);
        assert!(ok(&t, Probe::Ready, at + 7 * S), "3 x 2s + 1s is the limit");
        let v = t.verdict(Probe::Ready, at + 7 * S + Duration::from_millis(1));
        assert_eq!((v.ok, v.reason.as_str()), (false, "stale: no completed poll for 7s 1ms"));
        assert!(ok(&t, Probe::Live, at + 100 * S), "a stuck poller is no reason to restart Calypso");
    }

    #[test]
    fn liveness_fails_only_after_the_grace_without_any_answer() {
        let mut polls = vec![green(), green()];
        polls.extend((0..30).map(|_| Poll::NoAnswer("connection refused".into())));
        let (t, at) = feed(policy(), polls);
        // First NoAnswer at 4 s, last at 62 s: 58 s without an answer.
        assert!(ok(&t, Probe::Live, at));
        let v = t.verdict(Probe::Live, at + 2 * S);
        assert_eq!((v.ok, v.reason.as_str()), (false, "no answer from Calypso for 1m (connection refused)"));
        assert_eq!(t.verdict(Probe::Ready, at).reason, "unreachable: connection refused");
        // Any answer, even a bad one, resets the clock.
        let mut polls = vec![green(), green()];
        polls.extend((0..29).map(|_| Poll::NoAnswer("timeout".into())));
        polls.push(Poll::BadAnswer("invalid JSON".into()));
        polls.extend((0..5).map(|_| Poll::NoAnswer("timeout".into())));
        let (t, at) = feed(policy(), polls);
        assert!(ok(&t, Probe::Live, at + 2 * S));
    }

    #[test]
    fn a_name_that_does_not_resolve_is_not_ready_but_never_fails_liveness() {
        let silent = || Poll::NotAsked("dns: no answer for \"ds\" from the DNS server 10.96.0.10:53".into());
        let mut polls = vec![green(), green()];
        polls.extend((0..100).map(|_| silent()));
        let (t, at) = feed(policy(), polls);
        assert!(ok(&t, Probe::Live, at + 2 * S), "a DNS outage must not restart Calypso");
        assert!(ok(&t, Probe::Startup, at), "started once, started");
        let v = t.verdict(Probe::Ready, at);
        assert_eq!(v.reason, "not asked: dns: no answer for \"ds\" from the DNS server 10.96.0.10:53");
        // Time DNS was down never counts as time Calypso did not answer: one refused poll before
        // the outage and one after do not add up to the grace.
        let mut polls = vec![green(), green(), Poll::NoAnswer("connection refused".into())];
        polls.extend((0..40).map(|_| silent()));
        polls.push(Poll::NoAnswer("connection refused".into()));
        let (t, at) = feed(policy(), polls);
        assert!(ok(&t, Probe::Live, at + 2 * S), "the clock started over after the outage");
        // Calypso silent for the whole grace after DNS answers again does fail liveness.
        let mut polls = vec![green(), green()];
        polls.extend((0..5).map(|_| silent()));
        polls.extend((0..31).map(|_| Poll::NoAnswer("connection refused".into())));
        let (t, at) = feed(policy(), polls);
        let v = t.verdict(Probe::Live, at);
        assert_eq!((v.ok, v.reason.as_str()), (false, "no answer from Calypso for 1m (connection refused)"));
    }

    #[test]
    fn liveness_sensors_red_for_the_grace() {
        let p = Policy { liveness_sensors: vec![Pattern::new("*/EngineRunning")], ..policy() };
        let mut polls = vec![green(), green()];
        polls.extend((0..31).map(|_| engine(State::Green, State::Red)));
        let (t, at) = feed(p.clone(), polls);
        let v = t.verdict(Probe::Live, at);
        assert_eq!((v.ok, v.reason.as_str()), (false, "sensor TransferEngine/EngineRunning RED for 1m"));
        let mut polls = vec![green(), green()];
        polls.extend((0..20).map(|_| engine(State::Green, State::Red)));
        polls.push(green());
        polls.extend((0..20).map(|_| engine(State::Green, State::Red)));
        let (t, at) = feed(p, polls);
        assert!(ok(&t, Probe::Live, at), "a GREEN answer restarts the sensor's grace");
    }

    #[test]
    fn the_servers_own_state_counts_when_nothing_is_ignored() {
        // A payload may say RED above an AMBER sensor.
        let Poll::Answer(mut report) = engine(State::Amber, State::Green) else { unreachable!() };
        report.state = State::Red;
        let (t, at) = feed(policy(), vec![Poll::Answer(report.clone()), Poll::Answer(report)]);
        assert!(!ok(&t, Probe::Ready, at));
    }

    #[test]
    fn a_subsystem_is_no_liveness_sensor() {
        let p = Policy { liveness_sensors: vec![Pattern::new("Calypso")], ..policy() };
        let mut polls = vec![green(), green()];
        polls.extend((0..40).map(|_| engine(State::Red, State::Green)));
        let (t, at) = feed(p, polls);
        assert!(ok(&t, Probe::Live, at));
    }

    #[test]
    fn readiness_starts_over_after_stale_data() {
        let t0 = Instant::now();
        let mut t = Tracker::new(policy());
        t.observe(green(), t0, SystemTime::now());
        t.observe(green(), t0 + 2 * S, SystemTime::now());
        assert!(ok(&t, Probe::Ready, t0 + 2 * S));
        t.observe(green(), t0 + 60 * S, SystemTime::now());
        assert!(!ok(&t, Probe::Ready, t0 + 60 * S), "one fresh poll after a stale spell is not enough");
        t.observe(green(), t0 + 62 * S, SystemTime::now());
        assert!(ok(&t, Probe::Ready, t0 + 62 * S));
    }

    #[test]
    fn amber_and_ignored_sensors() {
        let amber = engine(State::Amber, State::Green);
        let (t, at) = feed(policy(), vec![amber.clone(), amber.clone()]);
        assert!(ok(&t, Probe::Ready, at));
        let strict = Policy { amber_ready: false, ..policy() };
        let (t, at) = feed(strict, vec![amber.clone(), amber]);
        assert!(!ok(&t, Probe::Ready, at));

        let ignoring = Policy { readiness_ignore: vec![Pattern::new("Calypso/DataServer*")], ..policy() };
        let red = engine(State::Red, State::Green);
        let (t, at) = feed(ignoring.clone(), vec![red.clone(), red]);
        assert!(ok(&t, Probe::Ready, at), "an ignored sensor is never the only cause");
        let both = engine(State::Red, State::Red);
        let (t, at) = feed(ignoring, vec![both.clone(), both]);
        assert_eq!(t.verdict(Probe::Ready, at).reason, "state RED (TransferEngine/EngineRunning: RED)");
    }

    #[test]
    fn startup_passes_at_the_first_answer_that_is_not_red_and_stays_while_answers_come() {
        let (t, at) = feed(policy(), vec![Poll::NoAnswer("connection refused".into())]);
        assert_eq!(t.verdict(Probe::Startup, at).reason, "starting: connection refused");
        let (t, at) = feed(policy(), vec![engine(State::Red, State::Green)]);
        assert!(!ok(&t, Probe::Startup, at));
        let (t, at) = feed(
            policy(),
            vec![
                engine(State::Amber, State::Green),
                engine(State::Red, State::Red),
                Poll::BadAnswer("x".into()),
            ],
        );
        assert!(ok(&t, Probe::Startup, at), "RED and bad answers after the start are answers");
    }

    /// The kubelet restarted the Calypso container (liveness, crash, OOM kill) and not this
    /// sidecar: the new JVM gets the startup budget again, and liveness does not count the old
    /// one's silence against it.
    #[test]
    fn a_restarted_calypso_container_starts_over() {
        let mut polls = vec![green(), green()];
        polls.extend((0..40).map(|_| Poll::NoAnswer("connection refused".into())));
        let (t, at) = feed(policy(), polls.clone());
        assert_eq!(t.verdict(Probe::Startup, at).reason, "starting: connection refused");
        polls.push(engine(State::Red, State::Green));
        let (t, at) = feed(policy(), polls.clone());
        assert!(!ok(&t, Probe::Startup, at), "RED 'starting' is not started");
        assert!(ok(&t, Probe::Live, at), "an answer ends the no-answer clock");
        polls.push(green());
        let (t, at) = feed(policy(), polls);
        assert!(ok(&t, Probe::Startup, at));
    }

    #[test]
    fn shutting_down_is_not_ready_but_alive() {
        let (mut t, at) = feed(policy(), vec![green(), green()]);
        t.shut_down(at, SystemTime::now());
        assert_eq!(t.verdict(Probe::Ready, at).reason, "shutting down");
        assert!(ok(&t, Probe::Live, at));
    }

    #[test]
    fn transitions_are_recorded_and_counted() {
        let (t, _) = feed(
            policy(),
            vec![
                green(),
                green(),
                engine(State::Red, State::Green),
                engine(State::Red, State::Green),
                green(),
                green(),
            ],
        );
        let got: Vec<(Probe, bool)> = t.transitions().map(|tr| (tr.probe, tr.ok)).collect();
        assert_eq!(
            got,
            [
                (Probe::Live, true),
                (Probe::Startup, true),
                (Probe::Ready, true),
                (Probe::Ready, false),
                (Probe::Ready, true)
            ]
        );
        assert_eq!(t.transition_counts()[&(Probe::Ready, false)], 1);
    }

    #[test]
    fn verbose_checks_name_every_sensor() {
        let (t, at) = feed(policy(), vec![engine(State::Red, State::Green)]);
        let checks = t.checks(Probe::Ready, at);
        let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["upstream", "Calypso/DataServerConnection", "TransferEngine/EngineRunning", "ready"]
        );
        assert!(!checks[1].ok && checks[2].ok && !checks[3].ok);
    }
}
