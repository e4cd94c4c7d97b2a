"""Turns rendered Kubernetes manifests (kubectl kustomize deploy/overlays/sim) into what
`podman kube play` (4.3) can run on one machine without a cluster: one YAML of Pods and ConfigMaps,
and a JSON plan of the ports each pod got. What podman cannot run is transformed, each rule with
its reason (docs/images.md, "The sim overlay as real pods"):

- Deployments and StatefulSets become one Pod each (podman plays Pods; replicas and identity are
  the cluster's business). The pod keeps the template's labels and the workload's name.
- Native sidecars (init containers with restartPolicy: Always) become plain containers: podman
  has no native sidecars. The pod's restartPolicy becomes OnFailure (podman 4.3 applies it to
  init containers too and would rerun agent-init and agent-wait after they exit 0).
- Secrets become ConfigMaps of the same name (their files look the same to agent-init).
- envFrom, configMapKeyRef and fieldRef (the Downward API) are resolved to plain values, as the
  kubelet would, so that the ports below can be rewritten per pod.
- Probes and lifecycle hooks are removed: podman runs an httpGet probe as curl inside the
  container, and a FROM-scratch image has no curl (the test probes agent-health itself, as the
  kubelet would); podman 4.3 knows no preStop `sleep` action.
- $(NAME) in args is expanded from the container's environment, as the kubelet does.
- Every pod shares the host's network (--network host: no CNI here), so each pod gets its own
  free ports for 8140 (Calypso's health API), 8081 (agent-health), 8082 (agent-logship),
  8083 (agent-health's debug listener) and 9200 (es-sim), on 127.0.0.1; Service URLs
  (http://dataserver.calypso-sim.svc:8140) point at the serving pod's port.
- podman 4.3 names an emptyDir's volume after the volume alone, so pods that use the same name
  would share it (every pod's logs in every pod's log directory): each pod's emptyDirs get the
  pod's name in front.
- Services, NetworkPolicies, PodDisruptionBudgets, the Namespace, RBAC, ServiceAccounts, the
  Events Deployment (it needs a Kubernetes API server) and the setup Job are left out.

Pods are written in dependency order (es-sim, then the EventServer, the AuthServer, the
DataServer, then the rest): `podman kube play` starts them one after the other and waits for each pod's init
containers, and agent-wait holds a pod until its dependencies are healthy.

Usage: podman_pods.py RENDERED.yaml OUT.yaml  (the plan is printed on stdout as JSON)
"""

import base64
import json
import re
import socket
import sys

import yaml

# The ports of a pod in the manifests, rewritten per pod.
POD_PORTS = ("8140", "8081", "8082", "8083", "9200")
LEFT_OUT = {"Service", "NetworkPolicy", "PodDisruptionBudget", "Namespace", "Job", "Role", "RoleBinding",
            "ClusterRole", "ClusterRoleBinding", "ServiceAccount"}
# Start order: who others wait for first.
ORDER = ["es-sim", "eventserver", "authserver", "dataserver"]


def free_ports(n):
    """n distinct free ports on 127.0.0.1 (bound together, read, closed)."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def field(pod_meta, path):
    """A Downward API fieldRef's value for a pod."""
    m = re.fullmatch(r"metadata\.labels\['(.+)'\]", path)
    if m:
        return pod_meta.get("labels", {})[m.group(1)]
    m = re.fullmatch(r"metadata\.annotations\['(.+)'\]", path)
    if m:
        return pod_meta.get("annotations", {})[m.group(1)]
    return {
        "metadata.name": pod_meta["name"],
        "metadata.namespace": pod_meta.get("namespace", "default"),
        "spec.nodeName": socket.gethostname(),
    }[path]


def resolved_env(container, pod_meta, config_maps):
    """The container's environment as the kubelet builds it: envFrom first, env after (wins)."""
    values = {}
    for source in container.pop("envFrom", []):
        ref = source.get("configMapRef") or source.get("secretRef")
        data = config_maps.get(ref["name"])
        if data is None:
            if ref.get("optional"):
                continue
            raise SystemExit(f"{container['name']}: envFrom {ref['name']}: no such ConfigMap/Secret")
        values.update({source.get("prefix", "") + k: v for k, v in data.items()})
    for var in container.get("env", []):
        if "value" in var:
            values[var["name"]] = var["value"]
            continue
        ref = var["valueFrom"]
        if "fieldRef" in ref:
            values[var["name"]] = field(pod_meta, ref["fieldRef"]["fieldPath"])
        elif "configMapKeyRef" in ref or "secretKeyRef" in ref:
            key_ref = ref.get("configMapKeyRef") or ref["secretKeyRef"]
            values[var["name"]] = config_maps[key_ref["name"]][key_ref["key"]]
        else:
            raise SystemExit(f"{container['name']}: {var['name']}: unsupported valueFrom {ref}")
    return [{"name": k, "value": v} for k, v in values.items()]


def expand(text, env):
    """The kubelet's $(NAME) expansion ($$ escapes; an unknown name stays as it is)."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


def rewrite(text, own, services):
    """Service URLs (short or qualified: name.namespace.svc) to the serving pod's port, then this
    pod's own ports to its own."""
    def service(m):
        host, port = m.group(1), m.group(2)
        if host in services and port in services[host]:
            return f"http://127.0.0.1:{services[host][port]}"
        return m.group(0)

    text = re.sub(r"http://([a-z0-9][a-z0-9-]*)(?:\.[a-z0-9-]+\.svc(?:\.cluster\.local)?)?:(\d+)", service, text)
    return re.sub(r"(?<=:)(" + "|".join(POD_PORTS) + r")\b", lambda m: str(own[m.group(1)]), text)


def main(rendered, out):
    docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
    config_maps, workloads = {}, []
    for d in docs:
        kind = d["kind"]
        if kind == "ConfigMap":
            config_maps[d["metadata"]["name"]] = d.get("data", {})
        elif kind == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in d.get("data", {}).items()}
            data.update(d.get("stringData", {}))
            config_maps[d["metadata"]["name"]] = data
        elif kind in ("Deployment", "StatefulSet"):
            if d["metadata"]["name"] == "agent-logship-events":
                continue  # needs a Kubernetes API server
            workloads.append(d)
        elif kind not in LEFT_OUT:
            raise SystemExit(f"{kind} {d['metadata']['name']}: not expected in the sim overlay")
    workloads.sort(key=lambda w: (ORDER.index(w["metadata"]["name"]) if w["metadata"]["name"] in ORDER else len(ORDER), w["metadata"]["name"]))

    plan = {}
    for w in workloads:
        plan[w["metadata"]["name"]] = dict(zip(POD_PORTS, free_ports(len(POD_PORTS))))
    services = {name: ports for name, ports in plan.items()}

    pods = []
    for w in workloads:
        name = w["metadata"]["name"]
        template = w["spec"]["template"]
        meta = {
            "name": name,
            "namespace": w["metadata"].get("namespace", "default"),
            "labels": template["metadata"].get("labels", {}),
            "annotations": {
                **template["metadata"].get("annotations", {}),
                # Keep the exited init containers, so their exit codes and logs can be read.
                "io.podman.annotations.init.container.type": "always",
            },
        }
        spec = template["spec"]
        spec["restartPolicy"] = "OnFailure"
        init, sidecars = [], []
        for c in spec.get("initContainers", []):
            (sidecars if c.pop("restartPolicy", None) == "Always" else init).append(c)
        spec["initContainers"] = init
        spec["containers"] = spec["containers"] + sidecars
        for c in init + spec["containers"]:
            for key in ("startupProbe", "livenessProbe", "readinessProbe", "lifecycle"):
                c.pop(key, None)
            c["env"] = resolved_env(c, meta, config_maps)
            for var in c["env"]:
                var["value"] = rewrite(str(var["value"]), plan[name], services)
            env = {var["name"]: var["value"] for var in c["env"]}
            if "args" in c:
                c["args"] = [rewrite(expand(a, env), plan[name], services) for a in c["args"]]
            c.pop("ports", None)
        for v in spec.get("volumes", []):
            if "emptyDir" in v:
                for c in init + spec["containers"]:
                    for m in c.get("volumeMounts", []):
                        if m["name"] == v["name"]:
                            m["name"] = f"{name}-{v['name']}"
                v["name"] = f"{name}-{v['name']}"
            if "secret" in v:
                secret = v.pop("secret")
                v["configMap"] = {"name": secret["secretName"], **{k: secret[k] for k in ("optional", "items") if k in secret}}
        meta.pop("namespace")
        pods.append({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})

    used = {v["configMap"]["name"] for p in pods for v in p["spec"].get("volumes", []) if "configMap" in v}
    maps = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}, "data": config_maps[n]}
        for n in sorted(used)
        if n in config_maps
    ]
    with open(out, "w") as f:
        yaml.safe_dump_all(maps + pods, f, sort_keys=False)
    json.dump({"pods": [p["metadata"]["name"] for p in pods], "ports": plan}, sys.stdout, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:])
