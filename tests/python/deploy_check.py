"""Checks the manifests `kubectl kustomize` rendered from deploy/ (argv: NAME=FILE pairs; NAME is
the overlay, NAME-prepare its prepare/ (checked together with it, as one environment),
"vendor-style" for deploy/examples/vendor-style, or "amazon-opensearch" for
deploy/examples/amazon-opensearch, the uat overlay with the aws-iam components): every object valid against the
oldest Kubernetes the manifests support (1.29) and the newest schema kubernetes-validate ships
(strict: no unknown fields), then the facts the manifests promise: hardened pods and containers, the four agents in every
Calypso pod (agent-health and agent-logship as native sidecars, the Calypso container's probes at
agent-health's port, the component from the Downward API), agent-wait aimed at the DataServer's
Service, the Events Deployment with its RBAC, the sim overlay without Calypso and with es-sim, the
AWS IAM role reaching agent-logship alone, and every checkov skip justified; and, in deploy_cluster.py, what the cluster does with them (drains,
evictions, rollouts, GitOps, a default-deny namespace). Prints one line per check, then
"N passed, M failed"."""

import re
import sys
from urllib.parse import urlparse

import kubernetes_validate
import yaml

from checks import check, finish
from deploy_cluster import check_at_most_one, check_environment, check_gitops

OLDEST = "1.29.0"
SCHEMAS = [OLDEST, kubernetes_validate.latest_version()]
COMPONENT_LABEL = "app.kubernetes.io/component"
COMPONENT_FIELD = f"metadata.labels['{COMPONENT_LABEL}']"
AGENTS = ["agent-init", "agent-wait", "agent-health", "agent-logship"]
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "Namespace", "PriorityClass"}


def env_of(container):
    """The container's literal env values and fieldRef paths, by name."""
    out = {}
    for e in container.get("env", []):
        if "value" in e:
            out[e["name"]] = e["value"]
        elif "fieldRef" in e.get("valueFrom", {}):
            out[e["name"]] = ("fieldRef", e["valueFrom"]["fieldRef"]["fieldPath"])
    return out


def config_maps_of(container):
    return [s["configMapRef"]["name"] for s in container.get("envFrom", []) if "configMapRef" in s]


def settings_of(container, config_maps):
    """What the container sees: its envFrom ConfigMaps, then its own env (which wins)."""
    out = {}
    for name in config_maps_of(container):
        out.update(config_maps.get(name, {}))
    out.update(env_of(container))
    return out


def port_of(listen):
    return int(listen.rsplit(":", 1)[1])


def image_name(image):
    """registry/path/name:tag@digest -> name."""
    return image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]


def is_calypso_workload(doc):
    return doc["kind"] in WORKLOADS and doc["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "calypso"


def service_for(docs, namespace, url):
    """The Service a URL's host names (NAME or NAME.NAMESPACE[.svc...]) and its port."""
    host, port = urlparse(url).hostname, urlparse(url).port or 80
    name = host.split(".")[0]
    for d in docs:
        if d["kind"] == "Service" and d["metadata"]["name"] == name and d["metadata"].get("namespace") == namespace:
            if any(p["port"] == port for p in d["spec"]["ports"]):
                return d
    return None


def selects(service, pod_labels):
    selector = service["spec"].get("selector", {})
    return bool(selector) and all(pod_labels.get(k) == v for k, v in selector.items())


def check_pod(name, doc, pod, vendor):
    spec = pod["spec"]
    what = f"{name}: {doc['kind']} {doc['metadata']['name']}"
    sc = spec.get("securityContext", {})
    check(f"{what}: pod runs as non-root with RuntimeDefault seccomp and an fsGroup",
          sc.get("runAsNonRoot") is True and sc.get("seccompProfile", {}).get("type") == "RuntimeDefault"
          and isinstance(sc.get("fsGroup"), int), str(sc))
    if not vendor:
        check(f"{what}: pod runs as 65532", sc.get("runAsUser") == 65532 and sc.get("runAsGroup") == 65532, str(sc))
        check(f"{what}: no service links", spec.get("enableServiceLinks") is False, str(spec.get("enableServiceLinks")))
        needs_token = spec.get("serviceAccountName") == "agent-logship-events"
        check(f"{what}: ServiceAccount token only where the API is read",
              spec.get("automountServiceAccountToken") is needs_token, str(spec.get("automountServiceAccountToken")))
    for c in spec.get("initContainers", []) + spec.get("containers", []):
        csc = c.get("securityContext", {})
        res = c.get("resources", {})
        agent = c["name"] in AGENTS or image_name(c["image"]).endswith("calypso-agents")
        if vendor and not agent:
            continue  # the vendor's own containers are the vendor's
        check(f"{what}: container {c['name']} hardened",
              csc.get("readOnlyRootFilesystem") is True and csc.get("allowPrivilegeEscalation") is False
              and "ALL" in csc.get("capabilities", {}).get("drop", [])
              and csc.get("seccompProfile", sc.get("seccompProfile", {})).get("type") == "RuntimeDefault"
              and csc.get("runAsNonRoot", sc.get("runAsNonRoot")) is True, str(csc))
        check(f"{what}: container {c['name']} has cpu and memory requests and limits",
              all(k in res.get(kind, {}) for kind in ("requests", "limits") for k in ("cpu", "memory")), str(res))
        check(f"{what}: container {c['name']} has a pinned image and a pull policy",
              ":" in c["image"].rsplit("/", 1)[-1] and not c["image"].endswith(":latest") and "imagePullPolicy" in c,
              c["image"])
        if vendor and agent:
            check(f"{what}: agent {c['name']} runs as the pod's user", "runAsUser" not in csc, str(csc))


def check_calypso_pod(name, docs, doc, config_maps):
    pod = doc["spec"]["template"]
    spec, labels = pod["spec"], pod["metadata"].get("labels", {})
    what = f"{name}: {doc['kind']} {doc['metadata']['name']}"
    namespace = doc["metadata"].get("namespace")
    inits = {c["name"]: c for c in spec.get("initContainers", [])}
    check(f"{what}: the four agents, in order, ahead of the pod's own init containers",
          [c["name"] for c in spec.get("initContainers", [])][:4] == AGENTS, str(list(inits)))
    if not all(a in inits for a in AGENTS):
        return
    for a in AGENTS:
        c = inits[a]
        check(f"{what}: {a} runs /{a} from the calypso-agents image",
              image_name(c["image"]) == "calypso-agents" and c.get("command", [None])[0] == f"/{a}", f"{c['image']} {c.get('command')}")
    sidecars = [a for a in AGENTS if inits[a].get("restartPolicy") == "Always"]
    check(f"{what}: agent-health and agent-logship are native sidecars, agent-init and agent-wait run once",
          sidecars == ["agent-health", "agent-logship"], str(sidecars))

    calypso = spec["containers"][0]
    health = settings_of(inits["agent-health"], config_maps)
    health_port = port_of(health.get("AGENT_HEALTH_LISTEN", "[::]:8081"))
    check(f"{what}: agent-health serves on the port it declares",
          any(p["containerPort"] == health_port for p in inits["agent-health"].get("ports", [])), str(health_port))
    for probe, path in (("startupProbe", "/startupz"), ("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
        got = calypso.get(probe, {}).get("httpGet", {})
        check(f"{what}: the Calypso container's {probe} is httpGet {path} at agent-health's port {health_port}",
              got.get("path") == path and got.get("port") == health_port, str(calypso.get(probe)))
    upstream = urlparse(health.get("AGENT_HEALTH_UPSTREAM", ""))
    check(f"{what}: agent-health polls the pod's own Calypso on a port the Calypso container declares",
          upstream.hostname == "127.0.0.1" and any(p["containerPort"] == upstream.port for p in calypso.get("ports", [])),
          health.get("AGENT_HEALTH_UPSTREAM"))

    component = labels.get(COMPONENT_LABEL)
    check(f"{what}: the pod is labelled with its component", bool(component), str(labels))
    wait = settings_of(inits["agent-wait"], config_maps)
    logship = settings_of(inits["agent-logship"], config_maps)
    check(f"{what}: agent-wait and agent-logship take the component from the Downward API",
          wait.get("AGENT_WAIT_COMPONENT") == ("fieldRef", COMPONENT_FIELD)
          and logship.get("AGENT_LOGSHIP_COMPONENT") == ("fieldRef", COMPONENT_FIELD),
          f"{wait.get('AGENT_WAIT_COMPONENT')} {logship.get('AGENT_LOGSHIP_COMPONENT')}")
    if component and component.replace("-", "") not in ("eventserver", "authserver", "dataserver"):
        url = wait.get("CALYPSO_DATASERVER_HEALTH_URL", "")
        service = service_for(docs, namespace, url) if url else None
        dataservers = [d for d in docs if is_calypso_workload(d)
                       and d["spec"]["template"]["metadata"].get("labels", {}).get(COMPONENT_LABEL) == "dataserver"]
        check(f"{what}: agent-wait waits for the DataServer at its Service ({url})",
              service is not None and len(dataservers) == 1
              and selects(service, dataservers[0]["spec"]["template"]["metadata"]["labels"]), url)

    init_env = settings_of(inits["agent-init"], config_maps)
    mounts = {m["name"]: m for m in calypso.get("volumeMounts", [])}
    init_mounts = {m["mountPath"]: m["name"] for m in inits["agent-init"].get("volumeMounts", [])}
    log_mounts = {m["name"]: m for m in inits["agent-logship"].get("volumeMounts", [])}
    config = init_mounts.get(init_env.get("AGENT_INIT_OUTPUT"))
    check(f"{what}: agent-init writes into a volume the Calypso container reads",
          bool(init_env.get("AGENT_INIT_ENV")) and config in mounts and mounts[config].get("readOnly") is True, str(config))
    logs = [n for n, m in log_mounts.items() if m.get("readOnly") and n in mounts and not mounts[n].get("readOnly")]
    check(f"{what}: agent-logship reads the log volume the Calypso container writes",
          len(logs) == 1 and logship.get("AGENT_LOGSHIP_PATHS", "").startswith(log_mounts[logs[0]]["mountPath"] + "/"),
          str(log_mounts))


def check_events(name, docs, config_maps):
    events = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "agent-logship-events"]
    check(f"{name}: one agent-logship Deployment for the Events", len(events) == 1)
    if not events:
        return
    d = events[0]
    spec = d["spec"]["template"]["spec"]
    shipper = spec["containers"][0]
    env = settings_of(shipper, config_maps)
    check(f"{name}: the Events shipper runs twice with AGENT_LOGSHIP_EVENTS=true",
          d["spec"]["replicas"] == 2 and env.get("AGENT_LOGSHIP_EVENTS") == "true", str(d["spec"]["replicas"]))
    account = spec.get("serviceAccountName")
    bindings = [b for b in docs if b["kind"] == "RoleBinding"
                and any(s["kind"] == "ServiceAccount" and s["name"] == account for s in b.get("subjects", []))]
    roles = {r["metadata"]["name"]: r for r in docs if r["kind"] == "Role"}
    check(f"{name}: its ServiceAccount {account} is bound to a Role that reads events and nothing more",
          len(bindings) == 1 and roles.get(bindings[0]["roleRef"]["name"], {}).get("rules")
          == [{"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]}], str(bindings))
    check(f"{name}: Elasticsearch URL set for the Events and the logs", bool(env.get("AGENT_LOGSHIP_ES_URL")), str(env))
    setup = [settings_of(c, config_maps) for d in docs if d["kind"] == "Job" for c in d["spec"]["template"]["spec"]["containers"]]
    check(f"{name}: the setup Job installs the retention, at the same Elasticsearch",
          len(setup) == 1 and setup[0].get("AGENT_LOGSHIP_RETENTION_DAYS", "").isdigit()
          and setup[0].get("AGENT_LOGSHIP_ES_URL") == env.get("AGENT_LOGSHIP_ES_URL"), str(setup))


def check_aws(name, docs, config_maps):
    """The aws-iam components: the shippers sign, and the IAM role reaches agent-logship alone."""
    accounts = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceAccount"}
    role = "eks.amazonaws.com/role-arn"
    for account, wanted in [("calypso-log-writer", "calypso-log-writer"), ("agent-logship-events", "calypso-log-writer"),
                            ("calypso-log-setup", "calypso-log-setup")]:
        arn = accounts.get(account, {}).get("metadata", {}).get("annotations", {}).get(role, "")
        check(f"{name}: ServiceAccount {account} has the IAM role {wanted}", arn.endswith(f":role/{wanted}"), arn)
    check(f"{name}: the Calypso pods' ServiceAccount mounts no Kubernetes API token",
          accounts.get("calypso-log-writer", {}).get("automountServiceAccountToken") is False)
    for d in docs:
        if d["kind"] not in WORKLOADS:
            continue
        spec = d["spec"]["template"]["spec"]
        containers = [c["name"] for c in spec.get("initContainers", []) + spec["containers"]]
        what = f"{name}: {d['kind']} {d['metadata']['name']}"
        if is_calypso_workload(d):
            skipped = d["spec"]["template"]["metadata"].get("annotations", {}).get("eks.amazonaws.com/skip-containers", "")
            check(f"{what} runs as calypso-log-writer", spec.get("serviceAccountName") == "calypso-log-writer",
                  str(spec.get("serviceAccountName")))
            check(f"{what}: EKS's webhook gives the role to agent-logship alone",
                  sorted(skipped.split(",")) == sorted(c for c in containers if c != "agent-logship"), skipped)
            check(f"{what} still mounts no Kubernetes API token", spec.get("automountServiceAccountToken") is False)
        if d["kind"] == "Job":
            check(f"{what} runs as calypso-log-setup", spec.get("serviceAccountName") == "calypso-log-setup")
        for c in spec.get("initContainers", []) + spec["containers"]:
            env = settings_of(c, config_maps)
            if "AGENT_LOGSHIP_ES_URL" not in env:
                continue
            check(f"{what} {c['name']}: signs for Amazon OpenSearch Service with no API key or user",
                  env.get("AGENT_LOGSHIP_AWS_SIGV4") == "es"
                  and not any(k in env for k in ("AGENT_LOGSHIP_API_KEY_FILE", "AGENT_LOGSHIP_USERNAME_FILE")), str(env))


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def main():
    environments = {}
    files = dict(arg.split("=", 1) for arg in sys.argv[1:])
    for name, path in files.items():
        if name.endswith("-prepare"):
            continue
        docs = load(path)
        vendor = name == "vendor-style"
        aws = name == "amazon-opensearch"
        if not vendor:
            # prepare/ holds what must exist first, and only that; the servers' rendering none of it.
            prepared = load(files[f"{name}-prepare"])
            # (the sim's also holds es-sim, which the setup Job writes to).
            own = [d for d in prepared if d["metadata"].get("labels", {}).get("app.kubernetes.io/name") != "es-sim"]
            kinds = ["ConfigMap", "Job", "Namespace"] + (["ServiceAccount"] if aws else [])
            check(f"{name}: prepare/ holds the Namespace, the setup Job and its ConfigMap, nothing else",
                  sorted(d["kind"] for d in own) == kinds, str([d["kind"] for d in prepared]))
            check(f"{name}: the servers' rendering holds no Namespace and no Job",
                  not any(d["kind"] in ("Namespace", "Job") for d in docs))
            docs += prepared
        check(f"{name}: rendered something", len(docs) > 0)
        check(f"{name}: the newest schema {SCHEMAS[1]} is Kubernetes 1.33 or newer",
              tuple(int(x) for x in SCHEMAS[1].split(".")[:2]) >= (1, 33))
        for d in docs:
            for schema in SCHEMAS:
                try:
                    kubernetes_validate.validate(d, schema, strict=True)
                    check(f"{name}: {d['kind']} {d['metadata']['name']} valid against {schema}", True)
                except kubernetes_validate.ValidationError as e:
                    check(f"{name}: {d['kind']} {d['metadata']['name']} valid against {schema}", False, str(e).splitlines()[0])
            if d["kind"] not in CLUSTER_SCOPED:
                check(f"{name}: {d['kind']} {d['metadata']['name']} has a namespace", bool(d["metadata"].get("namespace")))
            for key, value in d["metadata"].get("annotations", {}).items():
                if "checkov.io/skip" in key:
                    check(f"{name}: {d['kind']} {d['metadata']['name']} {key} names a check and justifies it",
                          re.fullmatch(r"CKV2?_K8S_\d+=[^=]{30,}", value) is not None, value)
        config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
        calypso = [d for d in docs if is_calypso_workload(d)]
        check(f"{name}: Calypso workloads found", len(calypso) >= (2 if vendor else 6), str(len(calypso)))
        for d in docs:
            if d["kind"] in WORKLOADS:
                check_pod(name, d, d["spec"]["template"], vendor)
        for d in calypso:
            check_calypso_pod(name, docs, d, config_maps)
        if vendor:
            originals = {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0] for d in calypso}
            ds = originals.get("calypso-dataserver", {})
            check(f"{name}: the vendor's own container, mounts and volumes stay",
                  ds.get("name") == "dataserver" and any(m["name"] == "license" for m in ds.get("volumeMounts", [])),
                  str(ds.get("volumeMounts")))
            check_gitops(name, docs, prod=False)
            check_at_most_one(name, docs, calypso)
            continue
        check_events(name, docs, config_maps)
        check_environment(name, docs, config_maps, prod=name == "prod")
        if aws:
            check_aws(name, docs, config_maps)
            continue
        for d in calypso:
            if d["kind"] == "Deployment":
                # Rollouts may wait for agent-wait (30m) and the startup budget (10m).
                check(f"{name}: Deployment {d['metadata']['name']} has a progress deadline past agent-wait's timeout and the startup budget",
                      d["spec"].get("progressDeadlineSeconds", 600) >= 2400, str(d["spec"].get("progressDeadlineSeconds")))
        agents = next((v for k, v in config_maps.items() if k.startswith("calypso-agents-")), {})
        environments[name] = agents.get("AGENT_INIT_ENV")
        if name == "sim":
            images = {image_name(c["image"]) for d in docs if d["kind"] in WORKLOADS
                      for c in d["spec"]["template"]["spec"].get("initContainers", []) + d["spec"]["template"]["spec"]["containers"]}
            check(f"{name}: no Calypso image, calypso-sim in its place", "calypso" not in images and "calypso-sim" in images, str(images))
            es = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "es-sim"]
            check(f"{name}: es-sim runs", len(es) == 1 and image_name(es[0]["spec"]["template"]["spec"]["containers"][0]["image"]) == "es-sim")
            url = agents.get("AGENT_LOGSHIP_ES_URL", "")
            service = service_for(docs, "calypso-sim", url) if url else None
            check(f"{name}: agent-logship ships to es-sim's Service ({url})",
                  service is not None and bool(es) and selects(service, es[0]["spec"]["template"]["metadata"]["labels"]), url)
    named = [e for e in environments.values() if e]
    check("every overlay renders for its own environment name", len(named) == len(set(named)) == len(environments), str(environments))
    finish()


main()
