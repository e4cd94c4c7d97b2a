//! The NetworkPolicy evaluator the manifest checks use to prove a default-deny namespace still
//! admits every flow the manifests need (`tests/python/netpol.py`): its unit tests
//! (`tests/python/netpol_test.py`) pass under the project's Python. Needs the venv
//! `scripts/install-test-tools` makes; skipped loudly without it unless `AGENT_TESTS_REQUIRE`
//! names `pyclients`.

use calypso_testkit::tools::require_pyclients;
use std::path::PathBuf;

#[test]
fn the_network_policy_evaluator_passes_its_unit_tests() {
    let Some(python) = require_pyclients() else { return };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new(&python)
        .arg(root.join("tests/python/netpol_test.py"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let tally = stdout
        .lines()
        .find_map(|l| l.strip_suffix(" passed, 0 failed")?.parse::<u32>().ok())
        .unwrap_or_else(|| panic!("no \"N passed, 0 failed\" line:\n{stdout}"));
    assert!(tally > 30, "only {tally} checks ran:\n{stdout}");
}
