//! The images run as a kubelet would run them: `podman kube play` of the example pods in
//! deploy/example/ — a DataServer stand-in (calypso-sim) that starts slowly, then an EngineServer
//! pod whose init containers are agent-init (renders the config from a ConfigMap into an
//! emptyDir) and agent-wait (blocks until the DataServer is GREEN), then the EngineServer sim on
//! the rendered file with agent-health beside it. Every image is FROM scratch and runs as 65532.
//!
//! Needs podman (and runc): skipped loudly without it (scripts/install-test-tools installs both
//! and writes the containers.conf it needs). Builds the images with scripts/build-images first.
//! The pods use the host's network: the example's fixed ports (18141-18143, for use by hand) are
//! replaced by free ones in copies of its manifests, so that a port taken on the machine (or a
//! second run) cannot break the test.

use calypso_testkit::client;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const DATASERVER_POD: &str = "calypso-dataserver";
const ENGINESERVER_POD: &str = "calypso-engineserver";
const CONFIGMAP_VOLUME: &str = "calypso-templates";
/// The example's manifests, in the order they are played.
const MANIFESTS: [&str; 2] = ["deploy/example/dataserver.yaml", "deploy/example/engineserver.yaml"];
/// The example's ports: the DataServer's health, the EngineServer's, agent-health's.
const EXAMPLE_PORTS: [u16; 3] = [18141, 18142, 18143];
/// For everything after the images are built: the pods start in about 6 s here.
const DEADLINE: Duration = Duration::from_secs(90);
const EVERY: Duration = Duration::from_millis(200);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .args(["--runtime", "runc", "--cgroup-manager=cgroupfs"])
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("podman {args:?}: {e}"))
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

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

/// Free ports on 127.0.0.1, one for each of [`EXAMPLE_PORTS`]: bound together (so distinct),
/// read, closed.
fn free_ports() -> [u16; 3] {
    let listeners = EXAMPLE_PORTS.map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"));
    listeners.map(|l| l.local_addr().expect("addr").port())
}

/// Copies of the example's manifests in `dir`, their ports replaced by `ports`.
fn manifests_on(dir: &Path, ports: [u16; 3]) -> [PathBuf; 2] {
    MANIFESTS.map(|file| {
        let mut text = std::fs::read_to_string(root().join(file)).expect("an example manifest");
        for (example, port) in EXAMPLE_PORTS.iter().zip(ports) {
            text = text.replace(&format!("127.0.0.1:{example}"), &format!("127.0.0.1:{port}"));
        }
        let copy = dir.join(Path::new(file).file_name().expect("a file name"));
        std::fs::write(&copy, text).expect("write a manifest");
        copy
    })
}

/// Removes the example's pods and the ConfigMap's volume: before the test (a run that was killed)
/// and after it, whatever happened; on a failure it first prints what every container said.
struct Pods;

impl Pods {
    fn clean() {
        for file in MANIFESTS.iter().rev() {
            let _ = podman(&["kube", "down", file]);
        }
        let _ = podman(&["pod", "rm", "-f", "--ignore", ENGINESERVER_POD, DATASERVER_POD]);
        let _ = podman(&["volume", "rm", "-f", CONFIGMAP_VOLUME]);
    }
}

impl Drop for Pods {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- podman ps -a\n{}", text(&podman(&["ps", "-a"])));
            for (pod, c) in [
                (DATASERVER_POD, "dataserver"),
                (ENGINESERVER_POD, "render-config"),
                (ENGINESERVER_POD, "wait-for-dataserver"),
                (ENGINESERVER_POD, "engineserver"),
                (ENGINESERVER_POD, "health"),
            ] {
                eprintln!("--- {pod}-{c} ({:?})\n{}", state(pod, c), logs(pod, c));
            }
        }
        Pods::clean();
    }
}

/// Calls `probe` every 200 ms until it returns `Some`, up to `deadline`; panics naming `what`.
async fn until<T>(what: &str, deadline: Instant, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(EVERY).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn example_pods_run_init_wait_sim_and_health_from_scratch_images() {
    if calypso_testkit::require_tool("podman").is_none() {
        return;
    }
    let started = Instant::now();
    let build = Command::new(root().join("scripts/build-images"))
        .current_dir(root())
        .output()
        .expect("scripts/build-images runs");
    assert!(build.status.success(), "scripts/build-images failed:\n{}", text(&build));
    eprintln!("images built in {:.1?}:\n{}", started.elapsed(), String::from_utf8_lossy(&build.stdout));
    for image in ["agent-init", "agent-wait", "agent-health", "calypso-sim"] {
        let user = podman(&[
            "image",
            "inspect",
            "--format",
            "{{.Config.User}} {{len .RootFS.Layers}}",
            &format!("localhost/{image}:dev"),
        ]);
        assert_eq!(
            String::from_utf8_lossy(&user.stdout).trim(),
            "65532:65532 1",
            "{image}: non-root, one layer (FROM scratch)"
        );
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let ports = free_ports();
    let [dataserver_yaml, engineserver_yaml] = manifests_on(dir.path(), ports);
    for (file, port) in [(&dataserver_yaml, ports[0]), (&engineserver_yaml, ports[2])] {
        let text = std::fs::read_to_string(file).expect("read");
        assert!(text.contains(&format!("127.0.0.1:{port}")), "the example's ports changed? {text}");
    }
    let engine_health = format!("http://127.0.0.1:{}/health", ports[1]);
    let agent_health_readyz = format!("http://127.0.0.1:{}/readyz", ports[2]);
    eprintln!("ports: DataServer {}, EngineServer {}, agent-health {}", ports[0], ports[1], ports[2]);

    Pods::clean();
    let _pods = Pods;
    let t0 = Instant::now();
    let deadline = t0 + DEADLINE;
    let play = podman(&["kube", "play", "--network", "host", path(&dataserver_yaml)]);
    assert!(play.status.success(), "kube play dataserver.yaml:\n{}", text(&play));
    // podman runs the init containers before `kube play` returns: this one blocks while agent-wait
    // waits for the DataServer (about its 5 s startup delay). Bounded by the deadline.
    let mut engine = Command::new("podman")
        .args(["--runtime", "runc", "--cgroup-manager=cgroupfs", "kube", "play", "--network", "host"])
        .arg(&engineserver_yaml)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("podman kube play runs");
    let played =
        until("kube play engineserver.yaml to return", deadline, async || engine.try_wait().expect("wait"))
            .await;
    let played_out = engine.wait_with_output().expect("output");
    assert!(played.success(), "kube play engineserver.yaml: {played}\n{}", text(&played_out));
    eprintln!("pods played in {:.1?}", t0.elapsed());

    // 1. agent-init rendered the file and exited 0.
    until("agent-init to exit 0", deadline, async || {
        (state(ENGINESERVER_POD, "render-config")? == "exited 0").then_some(())
    })
    .await;
    let init_log = logs(ENGINESERVER_POD, "render-config");
    assert!(init_log.contains("rendered calypsosystem.properties.EXAMPLE"), "agent-init log:\n{init_log}");

    // 2. agent-wait waited for the DataServer (refused or RED "starting"), then was ready.
    until("agent-wait to exit 0", deadline, async || {
        (state(ENGINESERVER_POD, "wait-for-dataserver")? == "exited 0").then_some(())
    })
    .await;
    let wait_log = logs(ENGINESERVER_POD, "wait-for-dataserver");
    let waited = wait_log
        .lines()
        .position(|l| l.contains("dataserver: connection refused") || l.contains("dataserver: state RED"))
        .unwrap_or_else(|| panic!("agent-wait did not wait for the dataserver:\n{wait_log}"));
    let ready = wait_log
        .lines()
        .position(|l| l.contains("dataserver: ready after"))
        .unwrap_or_else(|| panic!("agent-wait never saw the dataserver ready:\n{wait_log}"));
    assert!(waited < ready, "agent-wait:\n{wait_log}");

    // 3. The EngineServer sim, started on the rendered file, answers GREEN (its DataServer too).
    let report = until("the EngineServer sim to answer GREEN", deadline, async || {
        let answer = client::get(&engine_health, Duration::from_secs(2)).await.ok()?;
        let json = answer.json().ok()?;
        (answer.status == 200 && json["state"] == "GREEN").then_some(json)
    })
    .await;
    assert_eq!(report["server"], "engineserver-0", "{report}");
    let sim_log = logs(ENGINESERVER_POD, "engineserver");
    assert!(
        sim_log.contains("calypsosystem.properties.EXAMPLE keys=7"),
        "the sim read the rendered file:\n{sim_log}"
    );

    // 4. agent-health's /readyz, from its cache, says ready.
    until("agent-health /readyz to answer 200", deadline, async || {
        let answer = client::get(&agent_health_readyz, Duration::from_secs(2)).await.ok()?;
        (answer.status == 200).then_some(())
    })
    .await;
    eprintln!("all checks passed {:.1?} after kube play ({:.1?} in all)", t0.elapsed(), started.elapsed());
}
