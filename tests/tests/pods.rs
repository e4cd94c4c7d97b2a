//! The sim overlay as real pods: `scripts/build-images`, then `kubectl kustomize` of
//! `deploy/overlays/sim/prepare` (es-sim) and `deploy/overlays/sim` (the servers), turned by `tests/python/podman_pods.py` into what podman 4.3 can run
//! (no native sidecars, no Services, one host network: each rule and its reason are in that
//! script and in docs/images.md), played with `podman kube play`. The whole topology starts —
//! es-sim and six Calypso servers (calypso-sim), each pod with agent-init, agent-wait,
//! agent-health and agent-logship from the calypso-agents image — and the test checks what a
//! cluster would show: agent-init's files in the pod's emptyDir, the EngineServer's agent-wait
//! holding it until the DataServer was healthy, agent-health answering the kubelet's probes, and
//! agent-logship shipping every server's log into es-sim.
//!
//! Needs podman, kubectl and the Python venv (scripts/install-test-tools): skipped loudly without
//! them, unless `AGENT_TESTS_REQUIRE` names them (scripts/test does).

use calypso_testkit::client;
use calypso_testkit::podman::{self, run as podman, text, workspace_root as root};
use calypso_testkit::tools::{require_kubectl, require_pyclients};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// For everything after the images are built: the seven pods start in about 30 s here (the sim
/// overlay's DataServer takes 20 s to turn GREEN, and podman starts the pods one by one).
const DEADLINE: Duration = Duration::from_secs(240);
const EVERY: Duration = Duration::from_millis(250);
/// The ConfigMaps (and the Secret, a ConfigMap for podman) the pods mount: podman keeps a volume
/// for each, named after it (plus Kustomize's hash).
const CONFIG_MAPS: [&str; 3] = ["calypso-templates", "calypso-secrets", "calypso-agents-elasticsearch"];
const SERVERS: [&str; 6] =
    ["eventserver", "authserver", "dataserver", "engineserver", "riskserver", "scheduler"];

/// A container's `podman logs` (stdout and stderr together).
fn logs(pod: &str, container: &str) -> String {
    text(&podman(&["logs", &format!("{pod}-{container}")]))
}

/// A container's state and exit code, as `exited 0`, or None when it does not exist (yet).
fn state(pod: &str, container: &str) -> Option<String> {
    let out = podman(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        &format!("{pod}-{container}"),
    ]);
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The transformed manifests and the ports each pod got.
struct Played {
    file: PathBuf,
    /// pod -> manifest port ("8140", "8081", "9200", ...) -> its port on the host.
    ports: Value,
}

impl Played {
    fn port(&self, pod: &str, port: &str) -> u64 {
        self.ports[pod][port].as_u64().unwrap_or_else(|| panic!("no port {port} for {pod}: {}", self.ports))
    }

    /// Removes the pods and their volumes: before the test (a run that was killed) and after it,
    /// whatever happened; on a failure it first prints what every container said.
    fn clean(file: &Path) {
        let _ = podman(&["kube", "down", file.to_str().expect("UTF-8")]);
        let mut pods = vec!["es-sim"];
        pods.extend(SERVERS);
        let mut rm = vec!["pod", "rm", "-f", "--ignore"];
        rm.extend(&pods);
        let _ = podman(&rm);
        let volumes = podman(&["volume", "ls", "--format", "{{.Name}}"]);
        for volume in String::from_utf8_lossy(&volumes.stdout).lines() {
            let config_map = CONFIG_MAPS.iter().any(|m| volume.starts_with(&format!("{m}-")));
            if config_map || pods.iter().any(|p| volume.starts_with(&format!("{p}-"))) {
                let _ = podman(&["volume", "rm", "-f", volume]);
            }
        }
    }
}

impl Drop for Played {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- podman ps -a\n{}", text(&podman(&["ps", "-a"])));
            for pod in SERVERS {
                for c in ["agent-init", "agent-wait", "calypso", "agent-health", "agent-logship"] {
                    let log = logs(pod, c);
                    let tail: Vec<&str> = log.lines().rev().take(8).collect();
                    eprintln!(
                        "--- {pod}-{c} ({:?})\n{}",
                        state(pod, c),
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    );
                }
            }
        }
        Played::clean(&self.file);
    }
}

/// Calls `probe` every 250 ms until it returns `Some`, up to `deadline`; panics naming `what`.
async fn until<T>(what: &str, deadline: Instant, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(EVERY).await;
    }
}

fn run(command: &mut Command, what: &str) -> Vec<u8> {
    let out =
        command.current_dir(root()).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(out.status.success(), "{what} failed:\n{}", text(&out));
    out.stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sim_overlay_runs_as_real_pods_with_all_four_agents() {
    if calypso_testkit::require_tool("podman").is_none() {
        return;
    }
    let Some(kubectl) = require_kubectl() else { return };
    let Some(python) = require_pyclients() else { return };
    let started = Instant::now();
    let images = run(&mut Command::new(root().join("scripts/build-images")), "scripts/build-images");
    eprintln!("images built in {:.1?}:\n{}", started.elapsed(), String::from_utf8_lossy(&images));

    let dir = tempfile::tempdir().expect("tempdir");
    let rendered = dir.path().join("sim.yaml");
    // prepare/ first (es-sim), then the servers, as one stream of documents.
    let mut manifests = run(
        Command::new(&kubectl).args(["kustomize", "deploy/overlays/sim/prepare"]),
        "kubectl kustomize prepare",
    );
    manifests.extend_from_slice(b"---\n");
    manifests
        .extend(run(Command::new(&kubectl).args(["kustomize", "deploy/overlays/sim"]), "kubectl kustomize"));
    std::fs::write(&rendered, manifests).expect("write the rendering");
    let file = dir.path().join("sim-pods.yaml");
    let plan = run(
        Command::new(&python).arg("tests/python/podman_pods.py").arg(&rendered).arg(&file),
        "podman_pods.py",
    );
    let plan: Value = serde_json::from_slice(&plan).expect("the plan is JSON");
    assert_eq!(plan["pods"][0], "es-sim", "es-sim first: {plan}");
    assert_eq!(plan["pods"].as_array().map(Vec::len), Some(7), "es-sim and six servers: {plan}");
    let transformed = std::fs::read_to_string(&file).expect("the transformed manifests");
    assert!(!transformed.contains("restartPolicy: Always"), "no native sidecar left for podman");

    Played::clean(&file);
    let played = Played { file: file.clone(), ports: plan["ports"].clone() };
    let t0 = Instant::now();
    let deadline = t0 + DEADLINE;
    // podman starts the pods one after the other, each after its init containers: this returns
    // once the last pod started (the EngineServer's agent-wait holds it ~20 s). Bounded.
    let mut play = podman::command(&["kube", "play", "--network", "host"])
        .arg(&file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("podman kube play runs");
    let status = until("podman kube play to return", deadline, async || play.try_wait().expect("wait")).await;
    let out = play.wait_with_output().expect("output");
    assert!(status.success(), "kube play: {status}\n{}", text(&out));
    eprintln!("pods played in {:.1?}", t0.elapsed());

    // 1. In every server pod, agent-init and agent-wait exited 0, in that order.
    for pod in SERVERS {
        for init in ["agent-init", "agent-wait"] {
            until(&format!("{pod}'s {init} to exit 0"), deadline, async || {
                (state(pod, init)? == "exited 0").then_some(())
            })
            .await;
        }
    }

    // 2. agent-init's files are in the pod's emptyDir, the secret-bearing one readable by the
    //    pod's user alone; the secret is in the file, never in the log.
    let volume = podman(&["volume", "inspect", "--format", "{{.Mountpoint}}", "engineserver-calypso-config"]);
    assert!(volume.status.success(), "the EngineServer's config emptyDir: {}", text(&volume));
    let config_dir = PathBuf::from(String::from_utf8_lossy(&volume.stdout).trim());
    let system = config_dir.join("calypsosystem.properties.SIM");
    let rendered_system =
        std::fs::read_to_string(&system).expect("agent-init rendered calypsosystem.properties.SIM");
    assert!(rendered_system.contains("calypso-db.sim"), "the sim overlay's DBURL:\n{rendered_system}");
    assert!(config_dir.join("calypsouser.properties.SIM").is_file(), "calypsouser.properties.SIM rendered");
    let init_log = logs("engineserver", "agent-init");
    assert!(
        init_log.contains("calypsosystem.properties.SIM"),
        "agent-init says what it rendered:\n{init_log}"
    );
    assert!(!init_log.contains("sim-only"), "a secret in agent-init's log:\n{init_log}");
    let sim_log = logs("engineserver", "calypso");
    assert!(
        sim_log.contains("calypsosystem.properties.SIM keys="),
        "the sim read the rendered file:\n{sim_log}"
    );

    // 3. The EngineServer's agent-wait waited for the DataServer (RED "starting" for 20 s), then
    //    let it start; the DataServer's own gate waited for the AuthServer only.
    let wait_log = logs("engineserver", "agent-wait");
    let waited = wait_log
        .lines()
        .position(|l| l.contains("dataserver: state RED") || l.contains("dataserver: connection refused"));
    let ready = wait_log.lines().position(|l| l.contains("dataserver: ready after"));
    assert!(
        matches!((waited, ready), (Some(w), Some(r)) if w < r),
        "the EngineServer's agent-wait did not wait for the DataServer:\n{wait_log}"
    );

    // 4. agent-health answers the kubelet's probes for every server, from its cache.
    for pod in SERVERS {
        let port = played.port(pod, "8081");
        for probe in ["startupz", "livez", "readyz"] {
            let url = format!("http://127.0.0.1:{port}/{probe}");
            until(&format!("{pod}'s agent-health /{probe} to answer 200"), deadline, async || {
                let answer = client::get(&url, Duration::from_secs(2)).await.ok()?;
                (answer.status == 200).then_some(())
            })
            .await;
        }
    }

    // 5. agent-logship ships every server's log into es-sim, one data stream per component.
    let es = played.port("es-sim", "9200");
    for pod in SERVERS {
        let url = format!("http://127.0.0.1:{es}/_sim/count?index=logs-calypso.{pod}-*");
        let count = until(&format!("{pod}'s log records in es-sim"), deadline, async || {
            let answer = client::get(&url, Duration::from_secs(2)).await.ok()?;
            let count = answer.json().ok()?["count"].as_u64()?;
            (count > 0).then_some(count)
        })
        .await;
        eprintln!("{pod}: {count} records in es-sim");
    }
    eprintln!("all checks passed {:.1?} after kube play ({:.1?} in all)", t0.elapsed(), started.elapsed());
}
