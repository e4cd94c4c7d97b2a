#!/usr/bin/env python3
"""deploy/preflight, scenario by scenario, against the Kubernetes API test double
preflight_api.py driven by real kubectl; and the double itself against the official Python
`kubernetes` client.

Each scenario starts the double as a subprocess (it prints its port first), writes a kubeconfig
pointing at it (plain HTTP, no auth), runs deploy/preflight with only kubectl's directory and
the system's in PATH, then checks the exit status, the output, and the double's request log,
which shows that the scenario's fault did happen. Needs kubectl on PATH and the `kubernetes`
package importable. Prints one ok/FAIL line per check, "scenario: NAME" before each scenario's,
and "N passed, M failed" at the end (checks.py).
"""

import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from checks import check, finish  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PREFLIGHT = ROOT / "deploy" / "preflight"
DOUBLE = HERE / "preflight_api.py"
SYSTEM_PATH = "/usr/bin:/bin"
TIMEOUT = 120  # seconds, for any one run of preflight

KUBECTL = shutil.which("kubectl")
if not KUBECTL:
    sys.exit("kubectl is not on PATH")
WORK = Path(tempfile.mkdtemp(prefix="preflight-test-"))


class Double:
    """preflight_api.py with the scenario's flags, from start to stop."""

    def __init__(self, *flags):
        self.stderr_path = WORK / f"double-{os.getpid()}-{id(self)}.log"
        self._stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, str(DOUBLE), "--exit-on-stdin-eof", *flags],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            stdin=subprocess.PIPE,  # never written: it closes when this script ends, however it ends
            text=True,
        )
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        line = self.proc.stdout.readline() if ready else ""
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"the double did not start (first line {line!r}): {self.log()}")
        self.port = int(line)
        self.url = f"http://127.0.0.1:{self.port}"

    def log(self):
        self._stderr.flush()
        return self.stderr_path.read_text()

    def requests(self):
        """[(method, path, status)] in the order served."""
        served, pending = [], None
        for line in self.log().splitlines():
            m = re.match(r"preflight_api: (\S+) (\S+) accept=", line)
            if m:
                pending = (m.group(1), m.group(2))
            m = re.match(r"preflight_api:   -> (\d+)", line)
            if m and pending:
                served.append((*pending, int(m.group(1))))
                pending = None
        return served

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc.stdin.close()
        self.proc.stdout.close()
        self._stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def closed_port():
    """A port on 127.0.0.1 that nothing listens on (bound by us, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def kubeconfig(contexts, current):
    """A kubeconfig file with one cluster per context (name -> server URL), no credentials."""
    path = WORK / f"kubeconfig-{len(list(WORK.iterdir()))}"
    lines = ["apiVersion: v1", "kind: Config", "clusters:"]
    for name, url in contexts.items():
        lines += [f"- name: {name}", "  cluster:", f"    server: {url}", "    insecure-skip-tls-verify: true"]
    lines.append("contexts:")
    for name in contexts:
        lines += [f"- name: {name}", "  context:", f"    cluster: {name}", "    user: nobody"]
    lines += ["users:", "- name: nobody", "  user: {}", f"current-context: {current}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def preflight(*args, config=None, path=None):
    """Runs deploy/preflight; returns (status, stdout, stderr)."""
    env = {
        "PATH": path if path is not None else f"{Path(KUBECTL).parent}:{SYSTEM_PATH}",
        "HOME": str(WORK),
        "KUBECACHEDIR": str(WORK / "kube-cache"),
        "TMPDIR": str(WORK),
        "LANG": "C.UTF-8",
    }
    if config is not None:
        env["KUBECONFIG"] = str(config)
    try:
        out = subprocess.run(
            [str(PREFLIGHT), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired as e:
        return None, e.stdout or "", f"timed out after {TIMEOUT}s\n{e.stderr or ''}"
    return out.returncode, out.stdout, out.stderr


def run_against(double, *args):
    return preflight(*args, config=kubeconfig({"test": double.url}, "test"))


def lines(out, prefix):
    return [line for line in out.splitlines() if line.startswith(prefix)]


def posts(double):
    return [r for r in double.requests() if r[0] == "POST"]


def common(name, double, status, out, err, want_status):
    """What every scenario with a reachable double must show."""
    print(f"scenario: {name}")
    shown = f"\nstatus {status}\nstdout:\n{out}\nstderr:\n{err}\nrequests:\n{double.log()}"
    check(f"{name}: exit status {want_status}", status == want_status, shown)
    check(
        f"{name}: says once that a kubelet's own feature gates cannot be read",
        sum("kubelet's own feature gates cannot be read through the API" in line for line in lines(out, "note ")) == 1,
        out,
    )
    check(
        f"{name}: every dry run is one (dryRun=All), without OpenAPI downloads",
        all("dryRun=All" in p for _, p, _ in posts(double))
        and not any(p.startswith("/openapi") for _, p, _ in double.requests()),
        double.log(),
    )
    return shown


def scenario_all_good():
    with Double(
        "--server-version", "v1.33.1",
        "--node", "cp-1=v1.33.1",
        "--node", "worker-1=v1.33.1-eks-abcdef",
        "--node", "worker-2=v1.33.0",
    ) as d:
        status, out, err = run_against(d)
        shown = common("all-good", d, status, out, err, 0)
        check("all-good: four ok lines, no FAIL", len(lines(out, "ok   ")) == 4 and not lines(out, "FAIL"), shown)
        check("all-good: names the server version", "API server is v1.33.1" in out, shown)
        check("all-good: counts the three nodes", "every kubelet is 1.29 or newer (3 nodes)" in out, shown)
        served = [(m, p.split("?")[0], s) for m, p, s in d.requests()]
        check(
            "all-good: kubectl asked for /version, aggregated discovery, the nodes and one dry-run create, all served",
            sorted(served)
            == sorted(
                [
                    ("GET", "/version", 200),
                    ("GET", "/api", 200),
                    ("GET", "/apis", 200),
                    ("GET", "/api/v1/nodes", 200),
                    ("POST", "/api/v1/namespaces/default/pods", 201),
                ]
            ),
            shown,
        )
        check("all-good: aggregated discovery needed no legacy /api/v1", ("GET", "/api/v1", 200) not in served, shown)


def scenario_api_1_28():
    with Double(
        "--server-version", "v1.28.9", "--node", "cp-1=v1.28.9", "--sidecar", "off", "--sleep", "unknown"
    ) as d:
        status, out, err = run_against(d)
        shown = common("api-1.28", d, status, out, err, 1)
        check(
            "api-1.28: FAIL naming the server version v1.28.9",
            any("API server is v1.28.9, older than 1.29" in line for line in lines(out, "FAIL")),
            shown,
        )
        check(
            "api-1.28: the 1.28 server fell back to legacy discovery (GET /api/v1)",
            any(p.startswith("/api/v1?") and s == 200 for _, p, s in d.requests()),
            shown,
        )
        check(
            "api-1.28: the dry run with the sleep action was refused (422), the one without it kept nothing",
            [s for _, _, s in posts(d)] == [422, 201],
            shown,
        )
        check(
            "api-1.28: FAIL says restartPolicy was dropped",
            any("dropped restartPolicy: Always" in line for line in lines(out, "FAIL")),
            shown,
        )
        check(
            "api-1.28: note names deploy/components/prestop-exec for the refused sleep action",
            any("refused a Pod with a preStop sleep action" in line and "deploy/components/prestop-exec" in line for line in lines(out, "note")),
            shown,
        )


def scenario_old_node():
    with Double(
        "--server-version", "v1.30.4-eks-abc",
        "--node", "node-a=v1.30.4-eks-abc",
        "--node", "node-b=v1.28.5",
        "--node", "node-c=v1.30.2+k3s1",
    ) as d:
        status, out, err = run_against(d)
        shown = common("old-node", d, status, out, err, 1)
        fails = lines(out, "FAIL")
        check("old-node: exactly one FAIL", len(fails) == 1, shown)
        check("old-node: it names node-b and its kubelet v1.28.5", bool(fails) and "node-b (v1.28.5)" in fails[0], shown)
        check("old-node: it names neither node-a nor node-c", bool(fails) and "node-a" not in fails[0] and "node-c" not in fails[0], shown)
        check("old-node: the API server (v1.30.4-eks-abc) passes", "ok   API server is v1.30.4-eks-abc" in out, shown)
        check(
            "old-node: the double served the node list with the old kubelet",
            any(p.startswith("/api/v1/nodes") and s == 200 for _, p, s in d.requests()) and "v1.28.5" in str(d.proc.args),
            shown,
        )


def scenario_sidecar_off():
    with Double(
        "--server-version", "v1.29.0-gke.1234", "--node", "pool-1=v1.29.0-gke.1234", "--sidecar", "off", "--sleep", "off"
    ) as d:
        status, out, err = run_against(d)
        shown = common("sidecar-off", d, status, out, err, 1)
        fails = lines(out, "FAIL")
        check("sidecar-off: exactly one FAIL, saying restartPolicy was dropped", len(fails) == 1 and "dropped restartPolicy: Always" in fails[0], shown)
        check("sidecar-off: the fix names the SidecarContainers feature gate", bool(fails) and "SidecarContainers" in fails[0], shown)
        check("sidecar-off: the GKE version v1.29.0-gke.1234 parses and passes", "ok   API server is v1.29.0-gke.1234" in out, shown)
        check("sidecar-off: the dry run was accepted (201): the field was dropped silently", [s for _, _, s in posts(d)] == [201], shown)


def scenario_sleep_off():
    with Double(
        "--server-version", "v1.30.2+k3s1", "--node", "k3s-1=v1.30.2+k3s1", "--node", "k3s-2=v1.30.2+k3s1", "--sleep", "off"
    ) as d:
        status, out, err = run_against(d)
        shown = common("sleep-off", d, status, out, err, 0)
        check("sleep-off: no FAIL", not lines(out, "FAIL"), shown)
        check(
            "sleep-off: a note says the sleep action was dropped and names deploy/components/prestop-exec",
            any("dropped the preStop sleep action" in line and "deploy/components/prestop-exec" in line for line in lines(out, "note ")),
            shown,
        )
        check("sleep-off: restartPolicy still passes", "ok   API server keeps restartPolicy: Always" in out, shown)
        check("sleep-off: one dry run, accepted (201)", [s for _, _, s in posts(d)] == [201], shown)


def scenario_skewed_kubelet():
    with Double(
        "--server-version", "v1.32.3", "--node", "new=v1.32.3", "--node", "old=v1.29.10"
    ) as d:
        status, out, err = run_against(d)
        shown = common("skewed-kubelet", d, status, out, err, 0)
        check("skewed-kubelet: no FAIL (1.29 kubelets run native sidecars)", not lines(out, "FAIL"), shown)
        check(
            "skewed-kubelet: a note names the 1.29 node and deploy/components/prestop-exec",
            any("old (v1.29.10)" in line and "deploy/components/prestop-exec" in line for line in lines(out, "note ")),
            shown,
        )


def scenario_pods_forbidden():
    with Double("--server-version", "v1.31.0", "--node", "n=v1.31.0", "--forbid", "pods") as d:
        status, out, err = run_against(d)
        shown = common("pods-forbidden", d, status, out, err, 1)
        fails = lines(out, "FAIL")
        check(
            "pods-forbidden: FAIL says which RBAC is needed (create on pods in the namespace)",
            len(fails) == 1
            and "verb create on pods in namespace default" in fails[0]
            and "kubectl auth can-i create pods -n default" in fails[0]
            and '"STDIN"' not in fails[0],
            shown,
        )
        check("pods-forbidden: the double refused the one dry run (403), no retry", [s for _, _, s in posts(d)] == [403], shown)
        check("pods-forbidden: the sleep action is noted as not checked", any("not checked" in line for line in lines(out, "note ")), shown)


def scenario_nodes_forbidden():
    with Double("--server-version", "v1.31.0", "--forbid", "nodes") as d:
        status, out, err = run_against(d)
        shown = common("nodes-forbidden", d, status, out, err, 1)
        fails = lines(out, "FAIL")
        check("nodes-forbidden: FAIL says listing nodes needs RBAC verb list on nodes", len(fails) == 1 and "list on nodes" in fails[0], shown)
        check("nodes-forbidden: the double refused the node list (403)", any(p.startswith("/api/v1/nodes") and s == 403 for _, p, s in d.requests()), shown)


def scenario_namespace_and_context():
    with Double("--server-version", "v1.33.1") as d:
        config = kubeconfig({"dead": f"http://127.0.0.1:{closed_port()}", "good": d.url}, "dead")
        status, out, err = preflight("-n", "calypso", "--context", "good", config=config)
        shown = common("namespace-and-context", d, status, out, err, 0)
        status2, out2, err2 = preflight("--namespace=calypso-uat", "--context=good", config=config)
        check("namespace-and-context: the = forms work too", status2 == 0, f"{status2}\n{out2}\n{err2}")
        paths = [p.split("?")[0] for _, p, _ in posts(d)]
        check(
            "namespace-and-context: the dry runs went to the namespaces asked for, through the context asked for",
            paths == ["/api/v1/namespaces/calypso/pods", "/api/v1/namespaces/calypso-uat/pods"],
            shown,
        )
        check("namespace-and-context: the ok line names the namespace", "in namespace calypso)" in out, shown)


def scenario_big_minor():
    with Double("--server-version", "v1.100.0", "--node", "n=v1.100.3") as d:
        status, out, err = run_against(d)
        shown = common("big-minor", d, status, out, err, 0)
        check("big-minor: 1.100 counts as newer than 1.29", "ok   API server is v1.100.0" in out and "ok   every kubelet is 1.29 or newer (1 node)" in out, shown)


def scenario_unreachable():
    print("scenario: unreachable")
    port = closed_port()
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        refused = False
    except ConnectionRefusedError:
        refused = True
    check("unreachable: nothing listens on the port (connection refused)", refused)
    status, out, err = preflight(config=kubeconfig({"test": f"http://127.0.0.1:{port}"}, "test"))
    shown = f"\nstatus {status}\nstdout:\n{out}\nstderr:\n{err}"
    check("unreachable: exit status 2", status == 2, shown)
    check("unreachable: says the cluster cannot be reached", "cannot reach the cluster" in err and str(port) in err, shown)
    check("unreachable: no check lines", not lines(out, "ok") and not lines(out, "FAIL"), shown)


def scenario_usage():
    print("scenario: usage")
    with Double() as d:
        config = kubeconfig({"test": d.url}, "test")
        for args, want in ((["--frobnicate"], "unknown argument: --frobnicate"), (["-n"], "-n needs a value"), (["extra"], "unknown argument: extra")):
            status, out, err = preflight(*args, config=config)
            check(f"usage: {' '.join(args)} exits 2 saying {want!r}", status == 2 and want in err and "--help" in err, f"{status}\n{out}\n{err}")
        check("usage: a usage error asks the cluster nothing", d.requests() == [], d.log())
    for flag in ("--help", "-h"):
        status, out, err = preflight(flag)
        check(
            f"usage: {flag} exits 0 with the usage and the exit statuses",
            status == 0 and out.startswith("Usage: preflight") and "Exit status" in out and "-n, --namespace" in out and not err,
            f"{status}\n{out}\n{err}",
        )
    if shutil.which("kubectl", path=SYSTEM_PATH):
        check("usage: kubectl missing (skipped: kubectl is in the system PATH)", True)
    else:
        status, out, err = preflight(path=SYSTEM_PATH)
        check("usage: without kubectl on PATH, exit 2 saying so", status == 2 and "kubectl is not on PATH" in err, f"{status}\n{out}\n{err}")


def scenario_python_client():
    """The double against the official client: what it serves deserializes into the models."""
    print("scenario: python-client")
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    def api(double):
        return client.ApiClient(client.Configuration(host=double.url))

    def pod():
        return client.V1Pod(
            api_version="v1",
            kind="Pod",
            metadata=client.V1ObjectMeta(generate_name="conformance-"),
            spec=client.V1PodSpec(
                init_containers=[client.V1Container(name="sidecar", image="registry.k8s.io/pause:3.10", restart_policy="Always")],
                containers=[
                    client.V1Container(
                        name="main",
                        image="registry.k8s.io/pause:3.10",
                        lifecycle=client.V1Lifecycle(pre_stop=client.V1LifecycleHandler(sleep=client.V1SleepAction(seconds=1))),
                    )
                ],
            ),
        )

    with Double("--server-version", "v1.29.0-gke.1234", "--node", "a=v1.29.0-gke.1234", "--node", "b=v1.28.5") as d:
        with api(d) as c:
            v = client.VersionApi(c).get_code()
            check(
                "python-client: VersionApi().get_code() reads the version",
                v.git_version == "v1.29.0-gke.1234" and v.major == "1" and v.minor == "29+" and v.platform == "linux/amd64",
                repr(v),
            )
            nodes = client.CoreV1Api(c).list_node()
            check(
                "python-client: list_node() reads each node's kubelet version",
                [(n.metadata.name, n.status.node_info.kubelet_version) for n in nodes.items] == [("a", "v1.29.0-gke.1234"), ("b", "v1.28.5")],
                repr(nodes)[:2000],
            )
            made = client.CoreV1Api(c).create_namespaced_pod("calypso", pod(), dry_run="All")
            check(
                "python-client: create_namespaced_pod(dry_run='All') returns the Pod, sidecar and sleep kept",
                isinstance(made, client.V1Pod)
                and made.metadata.name.startswith("conformance-")
                and len(made.metadata.name) == len("conformance-") + 5
                and made.metadata.namespace == "calypso"
                and made.metadata.uid
                and made.spec.init_containers[0].restart_policy == "Always"
                and made.spec.containers[0].lifecycle.pre_stop.sleep.seconds == 1
                and made.spec.containers[0].termination_message_path == "/dev/termination-log"
                and made.status.phase == "Pending",
                repr(made)[:3000],
            )
            try:
                client.CoreV1Api(c).create_namespaced_pod("calypso", pod())
                refused = None
            except ApiException as e:
                refused = e.status
            check("python-client: a create that is not a dry run is refused by the double (400)", refused == 400, d.log())
        check(
            "python-client: the double saw GET /version/, the node list and the dry-run POST",
            [(m, p.split("?")[0], s) for m, p, s in d.requests()]
            == [
                ("GET", "/version/", 200),
                ("GET", "/api/v1/nodes", 200),
                ("POST", "/api/v1/namespaces/calypso/pods", 201),
                ("POST", "/api/v1/namespaces/calypso/pods", 400),
            ]
            and "dryRun=All" in d.requests()[2][1],
            d.log(),
        )
    with Double("--server-version", "v1.29.2", "--sidecar", "off", "--sleep", "off") as d, api(d) as c:
        made = client.CoreV1Api(c).create_namespaced_pod("default", pod(), dry_run="All")
        check(
            "python-client: with both gates off the Pod comes back without restartPolicy and lifecycle",
            made.spec.init_containers[0].restart_policy is None and made.spec.containers[0].lifecycle is None,
            repr(made)[:3000],
        )
    with Double("--forbid", "pods") as d, api(d) as c:
        try:
            client.CoreV1Api(c).create_namespaced_pod("default", pod(), dry_run="All")
            caught = None
        except ApiException as e:
            caught = e
        check(
            "python-client: forbidden pod creation raises ApiException 403 Forbidden",
            caught is not None and caught.status == 403 and '"reason": "Forbidden"' in caught.body,
            repr(caught),
        )


def main():
    for scenario in (
        scenario_all_good,
        scenario_api_1_28,
        scenario_old_node,
        scenario_sidecar_off,
        scenario_sleep_off,
        scenario_skewed_kubelet,
        scenario_pods_forbidden,
        scenario_nodes_forbidden,
        scenario_namespace_and_context,
        scenario_big_minor,
        scenario_unreachable,
        scenario_usage,
        scenario_python_client,
    ):
        try:
            scenario()
        except Exception as e:  # a scenario that blows up is a failed check, not the end of the run
            check(f"{scenario.__name__} ran", False, f"{type(e).__name__}: {e}")
    shutil.rmtree(WORK, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
