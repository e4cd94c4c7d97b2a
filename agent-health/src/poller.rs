//! The one background poller: fetches the Calypso health API every interval and feeds the
//! tracker. Its own clock (a missed tick is delayed, not bunched), one attempt at a time.
//!
//! What it feeds the tracker is redacted first ([`agent_core::redact::text`]): sensor details
//! carry JDBC URLs and credentials, and everything agent-health says — answers, `/status`,
//! logs, metrics, the termination message — comes from the tracker, so no secret gets further.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use agent_core::http::{FetchError, HttpClient};
use agent_core::redact;
use tokio::time::{Instant, MissedTickBehavior};
use url::Url;

use crate::app::App;
use crate::policy::{Judged, Policy, Poll};
use crate::stats::PollError;

/// Polls until the task is dropped.
pub async fn run(app: Arc<App>, http: HttpClient, upstream: Url) {
    let policy = Arc::new(app.tracker().policy().clone());
    let (interval, timeout) = (policy.interval, policy.attempt_timeout);
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let started = Instant::now();
        let (judged, error) = poll_once(&http, &upstream, timeout, &policy).await;
        let took = started.elapsed();
        tracing::debug!(took_ms = took.as_millis() as u64, ?error, "polled");
        app.stats().record_poll(took, error);
        app.tracker().observe_judged(judged, Instant::now(), SystemTime::now());
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

/// One poll: an answer (a report, or a bad payload) or no answer, redacted and judged by the
/// policy, and the error label if any.
///
/// Reading, masking and judging a report of up to a megabyte is CPU work: it runs on a blocking
/// thread, so that the probes, served by this runtime's one thread, are answered meanwhile.
pub async fn poll_once(
    http: &HttpClient,
    upstream: &Url,
    timeout: Duration,
    policy: &Arc<Policy>,
) -> (Judged, Option<PollError>) {
    let fetched = http.get(upstream, timeout, calypso::MAX_BODY_BYTES).await;
    let judge_with = policy.clone();
    let read = move || {
        let (poll, error) = as_poll(fetched);
        (judge_with.judge(redacted(poll)), error)
    };
    match tokio::task::spawn_blocking(read).await {
        Ok(judged) => judged,
        Err(e) => {
            let poll = Poll::BadAnswer(format!("the answer could not be read: {e}"));
            (policy.judge(poll), Some(PollError::BadPayload))
        }
    }
}

/// What a fetch's outcome is as a poll.
fn as_poll(fetched: Result<agent_core::http::Fetched, FetchError>) -> (Poll, Option<PollError>) {
    match fetched {
        Ok(got) => match calypso::parse_response(got.status, got.content_type.as_deref(), &got.body) {
            Ok(report) => (Poll::Answer(report), None),
            Err(e) => (Poll::BadAnswer(format!("HTTP {}: {e}", got.status)), Some(PollError::BadPayload)),
        },
        Err(FetchError::BodyTooLarge(limit)) => {
            (Poll::BadAnswer(format!("body larger than {limit} bytes")), Some(PollError::BadPayload))
        }
        // The JVM answered: not ready, but alive.
        Err(e @ FetchError::Truncated { .. }) => {
            (Poll::BadAnswer(e.to_string()), Some(PollError::BadPayload))
        }
        Err(e @ FetchError::Dns(_)) => (Poll::NotAsked(e.to_string()), Some(PollError::Dns)),
        Err(e) => {
            let label = match &e {
                FetchError::Refused => PollError::Refused,
                FetchError::Timeout(_) => PollError::Timeout,
                FetchError::Closed => PollError::Closed,
                _ => PollError::Other,
            };
            (Poll::NoAnswer(e.to_string()), Some(label))
        }
    }
}

/// The poll with every text that came from upstream redacted: the report's names, units and
/// details, the reason of a bad answer or of no answer.
pub fn redacted(poll: Poll) -> Poll {
    match poll {
        Poll::Answer(mut report) => {
            report.map_texts(redact::text_cut);
            Poll::Answer(report)
        }
        Poll::BadAnswer(why) => Poll::BadAnswer(redact::text_cut(&why)),
        Poll::NoAnswer(why) => Poll::NoAnswer(redact::text_cut(&why)),
        Poll::NotAsked(why) => Poll::NotAsked(redact::text_cut(&why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use calypso::{HealthNode, HealthReport, State};

    const SECRET: &str = "hunter2";

    #[test]
    fn what_upstream_says_is_redacted() {
        let details = "cannot connect to jdbc:oracle:thin:calypso/hunter2@db:1521/CAL (password=hunter2)";
        let report = HealthReport {
            server: Some("ds token=hunter2".into()),
            server_type: None,
            timestamp: None,
            state: State::Red,
            sub_systems: vec![HealthNode::new("Calypso", State::Red).with_children(vec![
                HealthNode::new("DatabaseConnection", State::Red).with_details(details),
                HealthNode::new("pwd=hunter2", State::Green),
            ])],
        };
        let Poll::Answer(r) = redacted(Poll::Answer(report)) else { panic!("an answer stays one") };
        let shown = format!("{r:?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert_eq!(
            r.sub_systems[0].children[0].details.as_deref(),
            Some("cannot connect to jdbc:oracle:thin:calypso/***@db:1521/CAL (password=***")
        );
        assert_eq!(r.sub_systems[0].children[1].name, "pwd=***");
        for poll in
            [Poll::BadAnswer("at `secret: hunter2`".into()), Poll::NoAnswer("http://u:hunter2@x".into())]
        {
            let shown = format!("{:?}", redacted(poll));
            assert!(!shown.contains(SECRET), "{shown}");
        }
    }
}
