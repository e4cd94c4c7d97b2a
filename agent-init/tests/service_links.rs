//! agent-init in a namespace with Services named like it: the kubelet's service-link variables
//! (`AGENT_INIT_SERVICE_HOST`, `AGENT_INIT_PORT_8081_TCP`, ...) never stop it; real typos do.

use std::process::{Command, Output};

use calypso_testkit::kube_env::service_links;

fn run(dir: &std::path::Path, env: &[(String, String)]) -> Output {
    std::fs::create_dir_all(dir.join("t")).expect("mkdir");
    std::fs::create_dir_all(dir.join("out")).expect("mkdir");
    std::fs::write(dir.join("t/app.properties.tmpl"), "name=${NAME}\n").expect("template");
    Command::new(env!("CARGO_BIN_EXE_agent-init"))
        .args(["--templates", &dir.join("t").display().to_string()])
        .args(["--output", &dir.join("out").display().to_string(), "--env", "UAT1"])
        .env_clear()
        .env("NAME", "calypso")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("agent-init runs")
}

#[test]
fn service_links_of_services_named_after_it_are_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = service_links("agent-init", "10.96.0.14");
    env.extend(service_links("agent-init-webhook", "fd00::14"));
    let out = run(dir.path(), &env);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let written = std::fs::read_to_string(dir.path().join("out/app.properties.UAT1")).expect("rendered");
    assert_eq!(written, "name=calypso\n");
}

#[test]
fn real_typos_still_fail_naming_the_closest_variable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = service_links("agent-init", "10.96.0.14");
    env.push(("AGENT_INIT_SECRET_DIR".into(), "/secrets".into()));
    let out = run(dir.path(), &env);
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("AGENT_INIT_SECRET_DIR: unknown variable; did you mean AGENT_INIT_SECRETS_DIR?"),
        "{stderr}"
    );
    assert!(!dir.path().join("out/app.properties.UAT1").exists(), "nothing written");
}
