//! kube-sim is conformant as far as the official Kubernetes client can tell:
//! `tests/python/kube_sim_conformance.py` drives it with PyPI's `kubernetes` — 401 without a
//! token, `CoreV1Api.list_namespaced_event(limit=.., _continue=..)` page by page over one
//! snapshot, `list_event_for_all_namespaces`, `watch.Watch().stream(...)` receiving ADDED,
//! MODIFIED, DELETED and BOOKMARK from the list's resourceVersion and ending at
//! `timeout_seconds`, the 410s after a compaction as the client raises them (`ApiException` 410
//! from the watch's ERROR event, and from a stale continue token), and the empty-200 trap — and
//! validates every Event (and the EventList) kube-sim serves with PyPI's `kubernetes-validate`
//! against the newest Kubernetes schema it ships (strict: no unknown fields). The packages live
//! in the venv `scripts/install-test-tools` makes; without it the test is skipped loudly, unless
//! `AGENT_TESTS_REQUIRE` names `pyclients`.

use calypso_testkit::kube_sim::{Grant, KubeOptions, KubeSim, Timing};
use calypso_testkit::tools::require_pyclients;
use std::path::PathBuf;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubernetes_client_finds_kube_sim_conformant() {
    let Some(python) = require_pyclients() else { return };
    let opts = KubeOptions {
        tokens: vec![Grant::cluster("conformance-token")],
        timing: Timing { bookmark_interval: Duration::from_millis(200), ..Timing::default() },
        ..KubeOptions::default()
    };
    let kube = KubeSim::start(opts).await.expect("kube-sim starts");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/kube_sim_conformance.py");
    let run = tokio::process::Command::new(&python)
        .arg(&script)
        .args([&kube.url(), "conformance-token"])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the script finishes")
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the conformance script failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.lines().any(|l| l.ends_with(" passed, 0 failed")), "{stdout}");
    // What the client saw is what kube-sim says it served.
    let stats = kube.stats();
    assert!(stats.lists_with("ok") >= 5 && stats.watches_with("ok") >= 2, "{stats:?}");
    assert!(stats.bookmarks >= 1, "{stats:?}");
}
