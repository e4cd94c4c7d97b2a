//! The RBAC for agent-logship's Events source (`deploy/rbac/`): valid against the newest
//! Kubernetes schema PyPI's `kubernetes-validate` ships (strict), and granting exactly `get`,
//! `list` and `watch` on core/v1 `events` to the ServiceAccount it declares — nothing more
//! (`tests/python/rbac_check.py`). Needs the venv `scripts/install-test-tools` makes; skipped
//! loudly without it unless `AGENT_TESTS_REQUIRE` names `pyclients`.

use calypso_testkit::tools::require_pyclients;
use std::path::PathBuf;

#[test]
fn the_events_rbac_is_valid_and_grants_only_reading_events() {
    let Some(python) = require_pyclients() else { return };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let files: Vec<PathBuf> = ["events-namespace.yaml", "events-cluster.yaml"]
        .iter()
        .map(|f| root.join("deploy/rbac").join(f))
        .collect();
    let out = std::process::Command::new(&python)
        .arg(root.join("tests/python/rbac_check.py"))
        .args(&files)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.lines().any(|l| l == "14 passed, 0 failed"), "{stdout}");
}
