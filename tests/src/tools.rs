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
        assert!(
            !required(tool),
            "{REQUIRE_VAR} names {tool}, but it is not on PATH: run scripts/install-test-tools"
        );
        // Straight to stderr, past the test harness's capture: a skip must be seen.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {tool} is not installed (scripts/install-test-tools installs it; set {REQUIRE_VAR}={tool} to make this an error)"
        );
    }
    found
}
