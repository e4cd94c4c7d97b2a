//! agent-logship in a namespace with Services named like it: the kubelet's service-link
//! variables never stop it; real typos hold it (and fail `--check`).

use std::process::Stdio;

use calypso_testkit::kube_env::service_links;
use calypso_testkit::process::Spawned;
use nix::sys::signal::Signal;
use tokio::process::Command;

fn start(args: &[&str], env: &[(String, String)]) -> Spawned {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agent-logship"));
    cmd.args(args).env_clear().envs(env.iter().map(|(k, v)| (k, v))).stdout(Stdio::null());
    Spawned::start(cmd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_links_of_services_named_after_it_are_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = service_links("agent-logship", "10.96.0.14");
    env.extend(service_links("agent-logship-metrics", "fd00::14"));
    let glob = format!("{}/*.log", dir.path().display());
    let data = dir.path().join("data").display().to_string();
    let args = ["--listen", "127.0.0.1:0", "--paths", &glob, "--data-dir", &data];
    let mut agent = start(&args, &env);
    agent.said("shipping").await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typo_names_the_setting_meant() {
    let env = vec![("AGENT_LOGSHIP_ES_ULR".to_string(), "http://es:9200".to_string())];
    let mut check = start(&["--check"], &env);
    assert_eq!(check.exit_code().await, 64);
    assert!(check.stderr().contains("did you mean AGENT_LOGSHIP_ES_URL?"), "{}", check.stderr());
    // The sidecar holds, saying the same.
    let mut agent = start(&["--listen", "127.0.0.1:0"], &env);
    agent.said("did you mean AGENT_LOGSHIP_ES_URL?").await;
    assert!(agent.running(), "held, not exited");
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
}
