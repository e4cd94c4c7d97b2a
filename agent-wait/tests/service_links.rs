//! agent-wait in a namespace with Services named like it: the kubelet's service-link variables
//! (`AGENT_WAIT_SERVICE_HOST`, `AGENT_WAIT_PORT_8081_TCP`, ...) never stop it; real typos do.

use calypso::Component;
use calypso_testkit::kube_env::service_links;
use calypso_testkit::process::Spawned;
use calypso_testkit::{Sim, SimConfig};
use tokio::process::Command;

fn start(args: &[&str], env: &[(String, String)]) -> Spawned {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agent-wait"));
    cmd.args(args).env_clear().envs(env.iter().map(|(k, v)| (k, v)));
    Spawned::start(cmd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_links_of_services_named_after_it_are_ignored() {
    let sim = Sim::start(SimConfig::new(Component::DataServer)).await.expect("sim");
    let target = sim.health_url().replacen("http://", "calypso://", 1);
    let mut env = service_links("agent-wait", "10.96.0.12");
    env.extend(service_links("agent-wait-metrics", "fd00::12"));
    env.push(("AGENT_LOG".into(), "debug".into()));
    let mut agent = start(&[&target, "--timeout", "30s"], &env);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    assert!(agent.stderr().contains("a Kubernetes service-link variable"), "logged at debug");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_typos_still_fail_naming_the_closest_variable() {
    let mut env = service_links("agent-wait", "10.96.0.12");
    env.push(("AGENT_WAIT_TIMOUT".into(), "5m".into()));
    env.push(("AGENT_WAIT_STRCT".into(), "true".into()));
    let mut agent = start(&["127.0.0.1:1"], &env);
    assert_eq!(agent.exit_code().await, 64);
    let stderr = agent.stderr();
    assert!(
        stderr.contains("AGENT_WAIT_TIMOUT: unknown variable; did you mean AGENT_WAIT_TIMEOUT?"),
        "{stderr}"
    );
    assert!(
        stderr.contains("AGENT_WAIT_STRCT: unknown variable; did you mean AGENT_WAIT_STRICT?"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("AGENT_WAIT_MAX_INTERVAL").count(), 1, "the known names once: {stderr}");
    assert!(!stderr.contains("AGENT_WAIT_SERVICE_HOST"), "{stderr}");
}
