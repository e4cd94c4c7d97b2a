//! The README's demo as a cross-agent end-to-end test: real agent-wait and calypso-sim
//! processes, gated in the Calypso startup order.

use std::path::Path;
use std::process::Command;

#[test]
fn demo_starts_servers_in_dependency_order_and_survives_failover() {
    let demo = Path::new(env!("CARGO_BIN_EXE_calypso-demo"));
    let bin_dir = demo.parent().expect("bin dir");
    assert!(
        bin_dir.join("agent-wait").exists(),
        "agent-wait is not built in {}: run the workspace's tests (cargo test --workspace)",
        bin_dir.display()
    );
    let out = Command::new(demo)
        .args(["--bin-dir", bin_dir.to_str().expect("utf-8"), "--dataserver-startup", "1s"])
        .output()
        .expect("demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "demo failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));

    // The summary gives the time each server first answered GREEN: strictly in startup order.
    let green_at = |server: &str| -> f64 {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(server) && l.contains("GREEN at"))
            .unwrap_or_else(|| panic!("no summary line for {server}:\n{stdout}"));
        let at = line.split("GREEN at").nth(1).and_then(|r| r.split_whitespace().next()).expect("time");
        at.trim_end_matches('s').parse().unwrap_or_else(|_| panic!("bad time in {line:?}"))
    };
    let order = ["EventServer", "AuthServer", "DataServer", "EngineServer"].map(green_at);
    assert!(order.windows(2).all(|w| w[0] < w[1]), "not in startup order: {order:?}\n{stdout}");
    assert!(stdout.contains("engineserver pod") && stdout.contains("dataserver: ready after"), "{stdout}");
    assert!(stdout.contains("connection to DataServer lost"), "the failover is shown:\n{stdout}");
}
