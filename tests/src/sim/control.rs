//! The simulator's shared state and [`Control`], the handle tests script it with. The HTTP
//! control API (`api.rs`) and the upstream poller go through the same methods.

use super::sensors::Sensors;
use calypso::{Component, State};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// How the health path answers. The control API under `/sim/` is not affected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Answer with the current report: 200 for GREEN/AMBER, 503 for RED.
    #[default]
    Normal,
    /// Accept the connection and read the request, never answer (a wedged JVM).
    Hang,
    /// Answer normally after a delay (a JVM in a long GC pause).
    Slow(Duration),
    /// Answer 200, `application/json`, with a body that starts like JSON and is cut off.
    Garbage,
    /// Answer 503 with an empty body (a proxy or servlet container without the app).
    EmptyUnavailable,
    /// Accept the connection, then close it without answering.
    Close,
}

impl fmt::Display for Mode {
    /// The name the control API uses: `normal`, `hang`, `slow 2s`, `garbage`, `empty-503`, `close`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Normal => f.write_str("normal"),
            Mode::Hang => f.write_str("hang"),
            Mode::Slow(d) => write!(f, "slow {}", humantime::format_duration(*d)),
            Mode::Garbage => f.write_str("garbage"),
            Mode::EmptyUnavailable => f.write_str("empty-503"),
            Mode::Close => f.write_str("close"),
        }
    }
}

/// Everything the server, the poller and the [`Control`] clones share.
#[derive(Debug)]
pub(crate) struct Shared {
    component: Component,
    server_name: String,
    /// Startup ends `startup_delay` after this instant.
    startup_end: Instant,
    sensors: Mutex<Sensors>,
    mode: Mutex<Mode>,
    received: AtomicU64,
    answered: AtomicU64,
    /// `true` once the simulator is told to stop (by [`Control::request_stop`]).
    stop: watch::Sender<bool>,
}

/// Scripts a running simulator: set sensors, change the mode, read what it serves. Cheap to
/// clone; every clone controls the same simulator.
#[derive(Debug, Clone)]
pub struct Control {
    shared: Arc<Shared>,
}

impl Control {
    pub(crate) fn new(component: Component, server_name: String, startup_end: Instant) -> Control {
        Control {
            shared: Arc::new(Shared {
                component,
                server_name,
                startup_end,
                sensors: Mutex::new(Sensors::initial(component)),
                mode: Mutex::new(Mode::Normal),
                received: AtomicU64::new(0),
                answered: AtomicU64::new(0),
                stop: watch::Sender::new(false),
            }),
        }
    }

    /// Sets the sensor at `path` (`"Calypso/DatabaseConnection"`: sub-system, sensor, and
    /// optionally deeper components), creating whatever is missing. `value` and `details`
    /// replace the sensor's (None clears them); its unit and thresholds stay. The sub-system's
    /// and the server's states follow (worst of their sensors) on the next answer.
    ///
    /// With an upstream configured, `Calypso/DataServerConnection` is overwritten by the next
    /// upstream poll.
    ///
    /// # Panics
    ///
    /// When `path` does not name at least a sub-system and a sensor: that is a bug in the test.
    pub fn set_sensor(&self, path: &str, state: State, value: Option<f64>, details: Option<&str>) {
        let segments = split_path(path);
        assert!(segments.len() >= 2, "sensor path {path:?} must be SubSystem/Sensor");
        self.set_sensor_at(&segments, state, value, details);
    }

    /// [`Control::set_sensor`] with the path already split and checked.
    pub(crate) fn set_sensor_at(
        &self,
        path: &[&str],
        state: State,
        value: Option<f64>,
        details: Option<&str>,
    ) {
        lock(&self.shared.sensors).set(path, state, value, details);
    }

    /// Changes how the health path answers, from the next request on.
    pub fn set_mode(&self, mode: Mode) {
        let old = std::mem::replace(&mut *lock(&self.shared.mode), mode);
        if old != mode {
            tracing::info!(from = %old, to = %mode, "health path mode changed");
        }
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        *lock(&self.shared.mode)
    }

    /// The report the health path would serve now in [`Mode::Normal`], with the current time
    /// and, while starting, the RED `Calypso/Startup` sensor.
    pub fn report(&self) -> calypso::HealthReport {
        let timestamp = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let sensors = lock(&self.shared.sensors).clone();
        sensors.report(&self.shared.server_name, self.shared.component, timestamp, self.starting())
    }

    /// How many health-path requests were answered so far (any status, HEAD included); requests
    /// left unanswered by [`Mode::Hang`] or [`Mode::Close`] are not counted.
    pub fn requests(&self) -> u64 {
        self.shared.answered.load(Ordering::Relaxed)
    }

    /// How many health-path requests were received so far, answered or not: a test can tell
    /// that a request is hanging in [`Mode::Hang`] when this is ahead of [`Control::requests`].
    pub fn received(&self) -> u64 {
        self.shared.received.load(Ordering::Relaxed)
    }

    /// Whether the simulator is still in its startup delay.
    pub fn starting(&self) -> bool {
        Instant::now() < self.shared.startup_end
    }

    pub(crate) fn startup_end(&self) -> Instant {
        self.shared.startup_end
    }

    pub(crate) fn count_request(&self) {
        self.shared.received.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_answer(&self) {
        self.shared.answered.fetch_add(1, Ordering::Relaxed);
    }

    /// Tells every task of the simulator to stop. Idempotent.
    pub(crate) fn request_stop(&self) {
        self.shared.stop.send_replace(true);
    }

    /// Resolves once a stop was requested.
    pub(crate) async fn stopped(&self) {
        let mut rx = self.shared.stop.subscribe();
        // The sender lives in `shared`, which `self` keeps alive, so this only ends on a stop.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// The non-empty `/`-separated names of a sensor path.
pub(crate) fn split_path(path: &str) -> Vec<&str> {
    path.split('/').filter(|s| !s.is_empty()).collect()
}

/// Locks a mutex, ignoring poisoning: the data is plain values that a panicking test thread
/// cannot leave half-updated in a way that matters to a test double.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
