//! DataServer failover emulation: a server that depends on the DataServer polls the DataServer's
//! health and reports its `Calypso/DataServerConnection` sensor from the result, as a real one
//! reports losing and regaining its RMI connection.
//!
//! The URL may carry credentials (`user:pass@`, `?token=`): it goes into the sensor's details
//! and the log only through [`agent_core::redact::url`].

use super::control::Control;
use super::sensors::{CALYPSO, DATA_SERVER_CONNECTION};
use crate::client;
use calypso::State;
use std::time::Duration;
use tokio::time::MissedTickBehavior;

/// One attempt's deadline: long enough for a loaded test machine, short enough that a hung
/// upstream shows as lost within a couple of seconds.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(1);

/// Polls `url` every `interval` until the simulator stops. Every poll writes the sensor (so a
/// manual setting lasts only until the next poll); transitions are logged.
pub(crate) async fn poll(control: Control, url: String, interval: Duration) {
    let shown = agent_core::redact::url(&url);
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut was_connected = None;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = control.stopped() => return,
        }
        let verdict = tokio::select! {
            v = check(&url) => v,
            _ = control.stopped() => return,
        };
        let path = [CALYPSO, DATA_SERVER_CONNECTION];
        match &verdict {
            Ok(()) => {
                control.set_sensor_at(&path, State::Green, Some(1.0), Some(&format!("connected to {shown}")));
            }
            Err(reason) => {
                let details = format!("connection to DataServer lost: {reason}");
                control.set_sensor_at(&path, State::Red, Some(0.0), Some(&details));
            }
        }
        let connected = verdict.is_ok();
        if was_connected != Some(connected) {
            match verdict {
                Ok(()) => tracing::info!(upstream = %shown, "DataServer connection up"),
                Err(reason) => tracing::warn!(upstream = %shown, %reason, "DataServer connection lost"),
            }
            was_connected = Some(connected);
        }
    }
}

/// `Ok` when the upstream answers GREEN; otherwise why not, in one line.
async fn check(url: &str) -> Result<(), String> {
    let answer = client::get(url, ATTEMPT_TIMEOUT).await.map_err(|e| e.to_string())?;
    let report = answer.health().map_err(|e| format!("bad health answer ({}): {e}", answer.status))?;
    if report.state == State::Green { Ok(()) } else { Err(report.summary()) }
}
