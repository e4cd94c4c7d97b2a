//! agent-health in a namespace with Services named like it: the kubelet's service-link
//! variables never stop it; real typos do.

use std::process::Stdio;

use calypso::Component;
use calypso_testkit::kube_env::service_links;
use calypso_testkit::process::Spawned;
use calypso_testkit::{Sim, SimConfig};
use nix::sys::signal::Signal;
use tokio::process::Command;

fn start(args: &[&str], env: &[(String, String)]) -> Spawned {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agent-health"));
    cmd.args(args).env_clear().envs(env.iter().map(|(k, v)| (k, v))).stdout(Stdio::null());
    Spawned::start(cmd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_links_of_services_named_after_it_are_ignored() {
    let sim = Sim::start(SimConfig::new(Component::EngineServer)).await.expect("sim");
    let mut env = service_links("agent-health", "10.96.0.13");
    env.extend(service_links("agent-health-metrics", "fd00::13"));
    let args = ["--upstream", &sim.health_url(), "--listen", "127.0.0.1:0", "--shutdown-delay", "100ms"];
    let mut agent = start(&args, &env);
    agent.said("serving /livez").await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_typos_still_fail_naming_the_closest_variable() {
    let mut env = service_links("agent-health", "10.96.0.13");
    env.push(("AGENT_HEALTH_UPSTREAM".into(), "http://127.0.0.1:1/health".into()));
    env.push(("AGENT_HEALTH_INTERVALL".into(), "5s".into()));
    let mut agent = start(&[], &env);
    assert_eq!(agent.exit_code().await, 64);
    let stderr = agent.stderr();
    assert!(
        stderr.contains("AGENT_HEALTH_INTERVALL: unknown variable; did you mean AGENT_HEALTH_INTERVAL?"),
        "{stderr}"
    );
}
