//! The Events source as a process, between kube-sim (the Kubernetes API double) and es-sim:
//! every occurrence stored exactly once across watch timeouts, a 410 after compaction and an
//! empty-200 burst; two replicas and a SIGKILL without duplicates; an Elasticsearch outage
//! longer than the Events' TTL (with a SIGKILL in it) losing nothing; a token rotation without
//! a refusal; a full spool dropping its oldest and saying so.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use calypso_testkit::es_sim::{EsOptions, EsSim};
use calypso_testkit::eventually;
use calypso_testkit::kube_sim::{EventUpdate, Grant, KubeOptions, KubeSim, NewEvent, Timing};
use calypso_testkit::process::Spawned;
use tokio::process::Command;

const NS: &str = "calypso";
const STREAM: &str = "logs-kubernetes.events-calypso";

/// agent-logship shipping the Events of `calypso` from `kube` to `es`, with short watches.
fn agent(kube: &KubeSim, es: &EsSim, data: &Path, extra: &[(&str, &str)]) -> Spawned {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agent-logship"));
    cmd.env_clear()
        .env("AGENT_LOG", "info")
        .env("AGENT_LOGSHIP_EVENTS", "true")
        .env("AGENT_LOGSHIP_EVENTS_NAMESPACE", NS)
        .env("AGENT_LOGSHIP_KUBE_URL", kube.url())
        .env("AGENT_LOGSHIP_ES_URL", es.url())
        .env("AGENT_LOGSHIP_DATA_DIR", data)
        .env("AGENT_LOGSHIP_LISTEN", "127.0.0.1:0")
        .env("AGENT_LOGSHIP_BATCH_AGE", "100ms")
        .env("AGENT_LOGSHIP_EVENTS_WATCH_TIMEOUT", "2s")
        .envs(extra.iter().copied())
        .stdout(Stdio::null());
    Spawned::start(cmd)
}

/// A kube-sim with bookmarks every half second.
async fn kube_sim() -> KubeSim {
    let timing = Timing { bookmark_interval: Duration::from_millis(500), ..Timing::default() };
    KubeSim::start(KubeOptions { timing, ..KubeOptions::default() }).await.expect("kube-sim")
}

/// An Event about a pod of `workload`, returning its (name, uid).
fn create(kube: &KubeSim, workload: &str, reason: &str) -> (String, String) {
    let pod = format!("{workload}-7d9f8b6c5-x2x9k");
    let e = kube
        .create_event(NewEvent::about(NS, "Pod", &pod, reason, &format!("{reason} on {pod}")))
        .expect("create");
    (e.metadata.name.clone(), e.metadata.uid.clone())
}

/// One more occurrence of the Event `name`.
fn bump(kube: &KubeSim, name: &str) {
    kube.update_event(NS, name, EventUpdate::default()).expect("update");
}

fn stored(es: &EsSim) -> BTreeSet<String> {
    es.docs(STREAM).iter().filter_map(|d| d["_id"].as_str().map(String::from)).collect()
}

/// Waits until exactly `want` is stored (nothing missing, nothing else).
async fn stored_exactly(es: &EsSim, want: &BTreeSet<String>) {
    let what = format!("{} occurrences stored", want.len());
    eventually(&what, Duration::from_secs(40), async || (stored(es) == *want).then_some(())).await;
    assert_eq!(es.count_in(STREAM), want.len() as u64, "each occurrence stored once");
}

async fn metric_at_least(agent: &Spawned, name: &str, n: f64) {
    let reached = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if agent.metric(name).await.is_some_and(|v| v >= n) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(reached.is_ok(), "{name} did not reach {n}: {:?}\n{}", agent.metric(name).await, agent.stderr());
}

fn id(uid: &str, n: u32) -> String {
    format!("{uid}.{n}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_occurrence_once_across_watch_timeouts_a_410_and_an_empty_burst() {
    let kube = kube_sim().await;
    let es = EsSim::start(EsOptions::default()).await.expect("es-sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, uid_a) = create(&kube, "dataserver", "Unhealthy");
    let agent = agent(&kube, &es, dir.path(), &[]);
    let mut want = BTreeSet::from([id(&uid_a, 1)]);
    stored_exactly(&es, &want).await;

    // count 1 -> 5, each occurrence seen by the watch.
    for n in 2..=5 {
        bump(&kube, &a);
        want.insert(id(&uid_a, n));
        stored_exactly(&es, &want).await;
    }
    // Watches end at their timeout and resume from the last version.
    eventually("a watch ended by its timeout", Duration::from_secs(10), async || {
        (kube.stats().watch_ends_with("timeout") >= 1).then_some(())
    })
    .await;
    let (_, uid_b) = create(&kube, "engineserver", "BackOff");
    want.insert(id(&uid_b, 1));
    stored_exactly(&es, &want).await;

    // While the API server is away, changes happen and are compacted: the watch's version is
    // gone (410), a relist finds the Events as they are now.
    kube.down().await;
    let (_, uid_c) = create(&kube, "riskserver", "Evicted");
    bump(&kube, &a);
    kube.compact();
    kube.up().expect("up");
    want.extend([id(&uid_a, 6), id(&uid_c, 1)]);
    stored_exactly(&es, &want).await;
    assert!(
        kube.stats().watches_with("expired") + kube.stats().lists_with("expired") >= 1,
        "{:?}",
        kube.stats()
    );
    metric_at_least(&agent, "agent_logship_events_relists_total{reason=\"gone\"}", 1.0).await;

    // The trap: watches answering an empty 200 at once. Three make a relist, with waits between.
    kube.set_empty_watches(3);
    metric_at_least(&agent, "agent_logship_events_relists_total{reason=\"empty_watches\"}", 1.0).await;
    assert_eq!(kube.stats().watches_with("empty"), 3, "{:?}", kube.stats());
    let (_, uid_d) = create(&kube, "scheduler", "Unhealthy");
    want.insert(id(&uid_d, 1));
    stored_exactly(&es, &want).await;
    // Relists repeat every Event; they were not shipped again (taken already), nor stored twice.
    assert_eq!(es.stats().items_with(409), 0, "{:?}", es.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_and_a_sigkill_store_each_occurrence_once() {
    let kube = kube_sim().await;
    let es = EsSim::start(EsOptions::default()).await.expect("es-sim");
    let (one, two) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    let mut want = BTreeSet::new();
    let mut first = agent(&kube, &es, one.path(), &[]);
    let second = agent(&kube, &es, two.path(), &[]);
    // Both are watching once both have taken the first Event.
    let (name, uid) = create(&kube, "engineserver-0", "Scheduled");
    want.insert(id(&uid, 1));
    let mut names = vec![(name, uid)];
    for a in [&first, &second] {
        metric_at_least(a, "agent_logship_events_taken_total", 1.0).await;
    }
    for i in 1..30 {
        let (name, uid) = create(&kube, &format!("engineserver-{}", i % 3), "Unhealthy");
        want.insert(id(&uid, 1));
        names.push((name, uid));
        if i == 15 {
            first.child.start_kill().expect("SIGKILL");
        }
    }
    let _ = first.exit().await;
    let restarted = agent(&kube, &es, one.path(), &[]);
    stored_exactly(&es, &want).await;
    // Count updates, each seen by the watches of both.
    for (name, uid) in names.iter().take(10) {
        bump(&kube, name);
        want.insert(id(uid, 2));
    }
    stored_exactly(&es, &want).await;
    // Both replicas sent them: what the second stored, the first was answered 409 for.
    eventually("both replicas delivered", Duration::from_secs(20), async || {
        (es.stats().items_with(409) > 0).then_some(())
    })
    .await;
    for a in [&second, &restarted] {
        assert!(!a.stderr().contains("ERROR"), "{}", a.stderr());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_the_events_ttl_with_a_sigkill_in_it_loses_nothing() {
    let kube = kube_sim().await;
    kube.set_ttl(Some(Duration::from_secs(5)));
    let es = EsSim::start(EsOptions::default()).await.expect("es-sim");
    let dir = tempfile::tempdir().expect("tempdir");
    es.down().await;
    let mut agent1 = agent(&kube, &es, dir.path(), &[]);
    let mut want = BTreeSet::new();
    let mut names = Vec::new();
    for i in 0..20 {
        let (name, uid) = create(&kube, "dataserver", if i % 2 == 0 { "Unhealthy" } else { "BackOff" });
        want.insert(id(&uid, 1));
        names.push((name, uid));
    }
    metric_at_least(&agent1, "agent_logship_events_taken_total", 20.0).await;
    for (name, uid) in names.iter().step_by(5) {
        bump(&kube, name);
        want.insert(id(uid, 2));
    }
    let n = want.len() as f64;
    metric_at_least(&agent1, "agent_logship_events_taken_total", n).await;
    // The API server lets them all go; only the spool has them now. Then a SIGKILL.
    eventually("kube-sim deleted them (TTL)", Duration::from_secs(20), async || {
        kube.events().is_empty().then_some(())
    })
    .await;
    agent1.child.start_kill().expect("SIGKILL");
    let _ = agent1.exit().await;
    let agent2 = agent(&kube, &es, dir.path(), &[]);
    agent2.said("shipping").await;
    es.up().expect("es-sim up");
    stored_exactly(&es, &want).await;
    metric_at_least(&agent2, "agent_logship_events_shipped_total", n).await;
    eventually("the spool emptied", Duration::from_secs(10), async || {
        (agent2.metric("agent_logship_events_spool_pending").await == Some(0.0)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_token_is_used_at_once_and_nothing_is_refused() {
    let kube =
        KubeSim::start(KubeOptions { tokens: vec![Grant::cluster("token-one")], ..KubeOptions::default() })
            .await
            .expect("kube-sim");
    let es = EsSim::start(EsOptions::default()).await.expect("es-sim");
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, "token-one\n").expect("token");
    let token_env = token.to_str().expect("utf-8");
    let agent = agent(&kube, &es, &dir.path().join("data"), &[("AGENT_LOGSHIP_KUBE_TOKEN_FILE", token_env)]);
    let (_, uid) = create(&kube, "engineserver", "Unhealthy");
    let mut want = BTreeSet::from([id(&uid, 1)]);
    stored_exactly(&es, &want).await;
    // The kubelet writes the new token; the API server takes the old one only for a moment more.
    std::fs::write(&token, "token-two\n").expect("token");
    kube.set_tokens(vec![Grant::cluster("token-two")], Duration::from_millis(300));
    for i in 0..5 {
        let (_, uid) = create(&kube, "engineserver", &format!("Reason{i}"));
        want.insert(id(&uid, 1));
    }
    stored_exactly(&es, &want).await;
    let stats = kube.stats();
    assert_eq!(stats.lists_with("unauthorized") + stats.watches_with("unauthorized"), 0, "{stats:?}");
    assert!(!agent.stderr().contains("token-two"), "{}", agent.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spool_drops_its_oldest_occurrences_and_says_so() {
    let kube = kube_sim().await;
    let es = EsSim::start(EsOptions::default()).await.expect("es-sim");
    let dir = tempfile::tempdir().expect("tempdir");
    es.down().await;
    let agent = agent(&kube, &es, dir.path(), &[("AGENT_LOGSHIP_SPOOL_MAX_BYTES", "128KiB")]);
    agent.said("shipping").await;
    let mut uids = Vec::new();
    for i in 0..600 {
        let (_, uid) = create(&kube, "engineserver", &format!("Reason{i}"));
        uids.push(uid);
    }
    metric_at_least(&agent, "agent_logship_events_taken_total", 600.0).await;
    let dropped = agent.metric("agent_logship_events_spool_dropped_total").await.expect("metric") as usize;
    assert!(dropped > 0, "600 occurrences of about 700 bytes do not fit in 128 KiB");
    agent.said("the Events spool is full").await;
    es.up().expect("es-sim up");
    // Each occurrence is stored or counted as dropped, never both, never neither; the newest
    // is kept.
    let created: BTreeSet<String> = uids.iter().map(|u| id(u, 1)).collect();
    let newest = id(uids.last().expect("600"), 1);
    eventually("what the spool kept stored", Duration::from_secs(40), async || {
        (stored(&es).len() + dropped == 600).then_some(())
    })
    .await;
    let kept = stored(&es);
    assert!(kept.is_subset(&created) && kept.contains(&newest), "{} stored", kept.len());
    assert_eq!(es.count_in(STREAM), kept.len() as u64);
}
