//! `/status`: the verdicts, the last poll and report, the recent transitions, the timings and
//! the poll counts, as one JSON document for people and for tests.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::app::App;
use crate::policy::{Poll, Probe};
use crate::stats::PollError;

/// The document. The tracker and the stats are locked one after the other, briefly.
pub fn render(app: &App, now: Instant) -> Value {
    let mut doc = {
        let tracker = app.tracker();
        let mut verdicts = Map::new();
        for probe in Probe::ALL {
            let v = tracker.verdict(probe, now);
            verdicts.insert(probe.name().into(), json!({ "ok": v.ok, "reason": v.reason }));
        }
        let last_poll = match tracker.last_poll() {
            None => Value::Null,
            Some((poll, at)) => {
                let (outcome, error) = match poll {
                    Poll::Answer(_) => ("answer", Value::Null),
                    Poll::BadAnswer(why) => ("bad_answer", json!(why)),
                    Poll::NoAnswer(why) => ("no_answer", json!(why)),
                    Poll::NotAsked(why) => ("not_asked", json!(why)),
                };
                json!({ "completed_at": rfc3339(at), "outcome": outcome, "error": error })
            }
        };
        let report = tracker.last_report().map_or(Value::Null, |r| r.to_canonical_json());
        let transitions: Vec<Value> = tracker
            .transitions()
            .map(|t| json!({ "probe": t.probe.name(), "ok": t.ok, "at": rfc3339(t.at), "reason": t.reason }))
            .collect();
        let policy = tracker.policy();
        let timings = json!({
            "interval_ms": millis(policy.interval),
            "attempt_timeout_ms": millis(policy.attempt_timeout),
            "stale_after_ms": millis(policy.stale_after()),
            "liveness_grace_ms": millis(policy.liveness_grace),
        });
        json!({
            "verdicts": verdicts,
            "last_poll": last_poll,
            "report": report,
            "transitions": transitions,
            "timings": timings,
        })
    };
    let polls = {
        let stats = app.stats();
        let errors: Map<String, Value> = PollError::ALL
            .iter()
            .map(|e| (e.label().to_string(), json!(stats.poll_errors.get(e).copied().unwrap_or(0))))
            .collect();
        json!({ "count": stats.poll_count, "errors": errors })
    };
    if let Some(o) = doc.as_object_mut() {
        o.insert("polls".into(), polls);
    }
    doc
}

fn rfc3339(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::PollError;
    use crate::testing::{app_with, report};
    use calypso::State;

    #[test]
    fn before_any_poll() {
        let app = app_with([]);
        let doc = render(&app, Instant::now());
        assert_eq!(doc["verdicts"]["live"], json!({ "ok": true, "reason": "ok" }));
        assert_eq!(doc["verdicts"]["ready"], json!({ "ok": false, "reason": "no poll completed yet" }));
        assert_eq!(doc["verdicts"]["startup"]["ok"], false);
        assert_eq!(doc["last_poll"], Value::Null);
        assert_eq!(doc["report"], Value::Null);
        assert_eq!(doc["transitions"], json!([]));
        assert_eq!(
            doc["timings"],
            json!({ "interval_ms": 2000, "attempt_timeout_ms": 1000, "stale_after_ms": 7000, "liveness_grace_ms": 60000 })
        );
        assert_eq!(doc["polls"]["count"], 0);
        assert_eq!(doc["polls"]["errors"].as_object().map(|o| o.len()), Some(PollError::ALL.len()));
        assert_eq!(doc["polls"]["errors"]["bad_payload"], 0);
    }

    #[test]
    fn after_polls() {
        let wall = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        let app = app_with([]);
        app.tracker().observe(Poll::Answer(report(State::Green)), Instant::now(), wall);
        app.tracker().observe(Poll::Answer(report(State::Red)), Instant::now(), wall);
        app.stats().record_poll(Duration::from_millis(5), None);
        app.stats().record_poll(Duration::from_millis(5), Some(PollError::Refused));
        let doc = render(&app, Instant::now());

        assert_eq!(
            doc["last_poll"],
            json!({ "completed_at": "2023-11-14T22:13:20.123Z", "outcome": "answer", "error": null })
        );
        assert_eq!(doc["report"], report(State::Red).to_canonical_json());
        assert_eq!(doc["verdicts"]["ready"]["ok"], false);
        let transitions = doc["transitions"].as_array().unwrap();
        let ready: Vec<&Value> = transitions.iter().filter(|t| t["probe"] == "ready").collect();
        assert_eq!(ready.len(), 2, "{transitions:?}");
        assert_eq!(ready[0]["ok"], true);
        assert_eq!(ready[1]["ok"], false);
        assert_eq!(ready[1]["at"], "2023-11-14T22:13:20.123Z");
        assert_eq!(ready[1]["reason"], "state RED (Calypso/DataServerConnection: RED)");
        assert_eq!(doc["polls"]["count"], 2);
        assert_eq!(doc["polls"]["errors"]["refused"], 1);

        app.tracker().observe(Poll::NoAnswer("connection refused".into()), Instant::now(), wall);
        let doc = render(&app, Instant::now());
        assert_eq!(doc["last_poll"]["outcome"], "no_answer");
        assert_eq!(doc["last_poll"]["error"], "connection refused");
        assert_eq!(doc["report"], Value::Null);
        app.tracker().observe(Poll::BadAnswer("not JSON".into()), Instant::now(), wall);
        let doc = render(&app, Instant::now());
        assert_eq!(doc["last_poll"]["outcome"], "bad_answer");
        assert_eq!(doc["last_poll"]["error"], "not JSON");
    }
}
