//! `deploy/preflight`, the one command a platform engineer runs before applying deploy/: checks
//! the API server and every kubelet are 1.29 or newer, and that a server-side dry run keeps a
//! native sidecar's `restartPolicy: Always` (and a preStop sleep action, else a note naming
//! `deploy/components/prestop-exec`). `tests/python/preflight_test.py` runs it with real
//! kubectl against `tests/python/preflight_api.py`, a Kubernetes API test double, once per
//! scenario (all good, API server 1.28, one old kubelet, sidecar gate off, sleep action off,
//! a 1.29 kubelet, pod creation or node listing forbidden, `-n`/`--context`, 1.100,
//! unreachable, usage errors, `--help`), and checks the double against the official Python
//! `kubernetes` client. Needs kubectl and the venv `scripts/install-test-tools` makes; skipped
//! loudly without them unless `AGENT_TESTS_REQUIRE` names `kubectl` and `pyclients`.

use calypso_testkit::tools::{require_kubectl, require_pyclients};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// The scenarios preflight_test.py must have run, at the least.
const SCENARIOS: [&str; 13] = [
    "all-good",
    "api-1.28",
    "old-node",
    "sidecar-off",
    "sleep-off",
    "skewed-kubelet",
    "pods-forbidden",
    "nodes-forbidden",
    "namespace-and-context",
    "big-minor",
    "unreachable",
    "usage",
    "python-client",
];

#[tokio::test(flavor = "current_thread")]
async fn preflight_passes_a_good_cluster_and_names_what_is_wrong_with_a_bad_one() {
    let Some(kubectl) = require_kubectl() else { return };
    let Some(python) = require_pyclients() else { return };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let kubectl_dir = kubectl.parent().expect("kubectl is in a directory").to_path_buf();
    let path = std::env::join_paths(
        std::iter::once(kubectl_dir)
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
    )
    .expect("a PATH");
    let run = tokio::process::Command::new(&python)
        .arg(root.join("tests/python/preflight_test.py"))
        .env("PATH", path)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .expect("preflight_test.py finishes within 10 minutes")
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "preflight_test.py failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let passed = stdout
        .lines()
        .find_map(|l| l.strip_suffix(" passed, 0 failed").and_then(|n| n.parse::<usize>().ok()));
    assert!(passed.is_some_and(|n| n >= SCENARIOS.len() * 3), "no 'N passed, 0 failed' line:\n{stdout}");
    let ran: Vec<&str> = stdout.lines().filter_map(|l| l.strip_prefix("scenario: ")).collect();
    for scenario in SCENARIOS {
        assert!(ran.contains(&scenario), "scenario {scenario} did not run:\n{stdout}");
    }
}
