//! The one background poller: fetches the Calypso health API every interval and feeds the
//! tracker. Its own clock (a missed tick is delayed, not bunched), one attempt at a time.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use agent_core::http::{FetchError, HttpClient};
use tokio::time::{Instant, MissedTickBehavior};
use url::Url;

use crate::app::App;
use crate::policy::Poll;
use crate::stats::PollError;

/// Polls until the task is dropped.
pub async fn run(app: Arc<App>, http: HttpClient, upstream: Url) {
    let (interval, timeout) = {
        let t = app.tracker();
        (t.policy().interval, t.policy().attempt_timeout)
    };
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let started = Instant::now();
        let (poll, error) = poll_once(&http, &upstream, timeout).await;
        let took = started.elapsed();
        tracing::debug!(took_ms = took.as_millis() as u64, ?error, "polled");
        app.stats().record_poll(took, error);
        app.tracker().observe(poll, Instant::now(), SystemTime::now());
    }
}

/// Re-evaluates the time-dependent verdicts every interval, so that staleness and grace
/// periods show in the transition log even when the poller is stuck.
pub async fn tick(app: Arc<App>) {
    let interval = app.tracker().policy().interval;
    let mut ticks = tokio::time::interval(interval);
    loop {
        ticks.tick().await;
        app.tracker().tick(Instant::now(), SystemTime::now());
    }
}

/// One poll: an answer (a report, or a bad payload) or no answer, and the error label if any.
pub async fn poll_once(http: &HttpClient, upstream: &Url, timeout: Duration) -> (Poll, Option<PollError>) {
    match http.get(upstream, timeout, calypso::MAX_BODY_BYTES).await {
        Ok(got) => match calypso::parse_response(got.status, got.content_type.as_deref(), &got.body) {
            Ok(report) => (Poll::Answer(report), None),
            Err(e) => (Poll::BadAnswer(format!("HTTP {}: {e}", got.status)), Some(PollError::BadPayload)),
        },
        Err(FetchError::BodyTooLarge(limit)) => {
            (Poll::BadAnswer(format!("body larger than {limit} bytes")), Some(PollError::BadPayload))
        }
        Err(e) => {
            let label = match &e {
                FetchError::Refused => PollError::Refused,
                FetchError::Timeout(_) => PollError::Timeout,
                FetchError::Closed => PollError::Closed,
                FetchError::Dns(_) => PollError::Dns,
                _ => PollError::Other,
            };
            (Poll::NoAnswer(e.to_string()), Some(label))
        }
    }
}
