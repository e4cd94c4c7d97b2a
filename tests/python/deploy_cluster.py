"""The checks of deploy/ that read the rendered manifests as the cluster would run them, not as
podman does (deploy_check.py calls check_environment for every overlay): at most one pod of a
server that must never run twice, a disruption budget for every server, spread and priority in
prod, ephemeral storage, a restricted Namespace, in-cluster names qualified with the namespace,
the log shipper never gating Calypso, settings where they belong, GitOps annotations, the setup
Job and its credential, the stop budget, the heap, every reference resolving, and every network
flow the manifests imply admitted by the default-deny policies (and nothing else).

One limit: the manifests name external hosts (the database, Elasticsearch), not their addresses,
so a flow to one is admitted by any ipBlock rule on its port; that each ipBlock holds the right
addresses is the overlay's to know."""

import re
from urllib.parse import urlparse

from checks import check
from netpol import admits, selector_matches

SINGLETONS = {"dataserver", "engineserver", "scheduler"}
# Calypso's own stop within the grace period (docs/operations.md, "Stopping"); the agents' parts
# come from their settings' defaults (docs/configuration.md).
CALYPSO_STOP_SECONDS = 60
DEFAULTS = {"AGENT_LOGSHIP_SHUTDOWN_GRACE": "20s", "AGENT_HEALTH_SHUTDOWN_DELAY": "5s"}
# The variables only the Events shipper (or the setup Job) may read: a log sidecar ignores them
# with a warning, or turns into an Events shipper (AGENT_LOGSHIP_EVENTS), and changing them must
# roll no Calypso pod.
EVENTS_ONLY = re.compile(r"AGENT_LOGSHIP_(EVENTS|KUBE_|SPOOL_|RETENTION_)")
PLACEHOLDER = re.compile(r"192\.0\.2\.")
KUBELET_LOG_MI = 50  # the kubelet keeps a container's log up to 5 x 10Mi
PROMETHEUS = {"namespace": "monitoring", "labels": {"app.kubernetes.io/name": "prometheus"}}
DNS = {"namespace": "kube-system", "labels": {"k8s-app": "kube-dns"}}
UNITS = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "Ti": 1024 * 1024, "": 1 / (1024 * 1024)}


def mebibytes(quantity):
    m = re.fullmatch(r"(\d+)(Ki|Mi|Gi|Ti|)", str(quantity))
    return int(m.group(1)) * UNITS[m.group(2)] if m else None


def seconds(duration):
    m = re.fullmatch(r"(\d+)(s|m)", duration)
    return int(m.group(1)) * (60 if m.group(2) == "m" else 1)


def pods_of(docs):
    """(workload, pod template) of every workload, Jobs included."""
    return [(d, d["spec"]["template"]) for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job")]


def component_of(doc):
    return doc["spec"]["template"]["metadata"].get("labels", {}).get("app.kubernetes.io/component")


def long_running(spec):
    """The containers that run beside each other: the pod's containers and its native sidecars."""
    return spec["containers"] + [c for c in spec.get("initContainers", []) if c.get("restartPolicy") == "Always"]


def expand(value, env):
    """The kubelet's $(NAME) expansion of env values and args ($$ escapes)."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), value)


def container_env(container, config_maps, pod_meta, namespace):
    """A container's environment as the kubelet builds it: envFrom, then env (expanded)."""
    env = {}
    for source in container.get("envFrom", []):
        env.update(config_maps.get(source.get("configMapRef", {}).get("name"), {}))
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = expand(e["value"], env)
            continue
        ref = e.get("valueFrom", {})
        if "configMapKeyRef" in ref:
            env[e["name"]] = config_maps.get(ref["configMapKeyRef"]["name"], {}).get(ref["configMapKeyRef"]["key"], "")
        elif ref.get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[e["name"]] = namespace
        elif "fieldRef" in ref:
            m = re.fullmatch(r"metadata\.labels\['(.+)'\]", ref["fieldRef"]["fieldPath"])
            env[e["name"]] = pod_meta.get("labels", {}).get(m.group(1), "") if m else ""
    return env


def check_environment(name, docs, config_maps, prod):
    """Every check of this module for one rendered overlay (not the vendor-style example)."""
    namespaces = [d for d in docs if d["kind"] == "Namespace"]
    check(f"{name}: one Namespace, the one every object is in",
          len(namespaces) == 1 and all(d["metadata"].get("namespace") in (None, namespaces[0]["metadata"]["name"]) for d in docs),
          str([n["metadata"]["name"] for n in namespaces]))
    if len(namespaces) != 1:
        return
    ns = namespaces[0]["metadata"]["name"]
    check_namespace(name, namespaces[0])
    calypso = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")
               and d["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "calypso"]
    check_at_most_one(name, docs, calypso)
    check_disruption(name, docs, calypso, prod)
    if prod:
        check_placement(name, docs, calypso)
    for doc, pod in pods_of(docs):
        check_restricted(name, doc, pod["spec"])
        check_ephemeral_storage(name, doc, pod["spec"])
    check_qualified_names(name, docs, config_maps, ns)
    check_references(name, docs, config_maps)
    check_settings_placement(name, docs, calypso)
    check_gitops(name, docs, prod)
    check_setup_job(name, docs)
    for d in calypso:
        check_stop_and_heap(name, d, config_maps)
    if any(d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "default-deny" for d in docs):
        check_network_flows(name, docs, config_maps, ns)


def check_namespace(name, namespace):
    labels = namespace["metadata"].get("labels", {})
    annotations = namespace["metadata"].get("annotations", {})
    check(f"{name}: Namespace {namespace['metadata']['name']} enforces Pod Security restricted, at a pinned version",
          labels.get("pod-security.kubernetes.io/enforce") == "restricted"
          and re.fullmatch(r"v1\.\d+", labels.get("pod-security.kubernetes.io/enforce-version", "")) is not None, str(labels))
    check(f"{name}: Namespace {namespace['metadata']['name']} is never pruned or deleted by Argo CD or Flux",
          {"Prune=false", "Delete=false"} <= set(annotations.get("argocd.argoproj.io/sync-options", "").split(","))
          and annotations.get("kustomize.toolkit.fluxcd.io/prune") == "disabled", str(annotations))


def check_at_most_one(name, docs, calypso):
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    for d in calypso:
        component, kind, what = component_of(d), d["kind"], f"{name}: {d['kind']} {d['metadata']['name']}"
        if component in SINGLETONS:
            check(f"{what}: a server that must never run twice is a StatefulSet of one",
                  kind == "StatefulSet" and d["spec"].get("replicas") == 1, f"{kind} replicas={d['spec'].get('replicas')}")
        if kind != "StatefulSet":
            continue
        governing = services.get(d["spec"].get("serviceName"), {})
        labels = d["spec"]["template"]["metadata"]["labels"]
        check(f"{what}: its governing Service {d['spec'].get('serviceName')} exists and selects its pods",
              bool(governing) and selector_matches({"matchLabels": governing["spec"].get("selector", {})}, labels))
        if component in SINGLETONS:
            # Its clients (and agent-wait) must find it only once it is Ready.
            check(f"{what}: its Service lists Ready pods only",
                  governing.get("spec", {}).get("publishNotReadyAddresses") is not True, str(governing.get("spec")))
        else:
            # Its members find each other by name before they are Ready.
            check(f"{what}: scales, so its governing Service is headless and publishes not-ready addresses",
                  governing.get("spec", {}).get("clusterIP") == "None" and governing["spec"].get("publishNotReadyAddresses") is True,
                  str(governing.get("spec")))


def check_disruption(name, docs, calypso, prod):
    budgets = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    workloads = calypso + [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "agent-logship-events"]
    for d in workloads:
        labels = d["spec"]["template"]["metadata"]["labels"]
        mine = [b for b in budgets if selector_matches(b["spec"]["selector"], labels)]
        what = f"{name}: {d['kind']} {d['metadata']['name']}"
        check(f"{what}: exactly one PodDisruptionBudget selects its pods", len(mine) == 1, str([b["metadata"]["name"] for b in mine]))
        if len(mine) != 1:
            continue
        spec = mine[0]["spec"]
        replicas = d["spec"].get("replicas", 1)
        # In prod a server of one pod is never drained away: the maintenance procedure moves it.
        alone = prod and replicas == 1 and d["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "calypso"
        if alone or component_of(d) in SINGLETONS:
            want = 0 if prod else 1
            check(f"{what}: a server of one pod has maxUnavailable {want} ({'a drain waits for the maintenance procedure' if prod else 'a drain restarts it'})",
                  spec.get("maxUnavailable") == want and "minAvailable" not in spec, str(spec))
        else:
            check(f"{what}: one pod at a time ({replicas} replicas keep {max(replicas - 1, 0)} available)",
                  spec.get("maxUnavailable") == 1 and "minAvailable" not in spec, str(spec))
        if alone:
            check(f"{what}: not even a singleton that is not ready (an engine while the DataServer restarts) is evicted",
                  spec.get("unhealthyPodEvictionPolicy") == "IfHealthyBudget", str(spec))
        else:
            check(f"{what}: a pod that is not Ready never blocks a drain",
                  spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow", str(spec))


def check_placement(name, docs, calypso):
    eventservers = [d["spec"].get("replicas", 1) for d in calypso if component_of(d) == "eventserver"]
    check(f"{name}: one EventServer, until the vendor confirms how its nodes form a cluster", eventservers == [1], str(eventservers))
    classes = {d["metadata"]["name"] for d in docs if d["kind"] == "PriorityClass"}
    for d in calypso:
        spec, labels = d["spec"]["template"]["spec"], d["spec"]["template"]["metadata"]["labels"]
        what = f"{name}: {d['kind']} {d['metadata']['name']}"
        check(f"{what}: has a PriorityClass the overlay defines", spec.get("priorityClassName") in classes,
              f"{spec.get('priorityClassName')} of {classes}")
        keys = {}
        for c in spec.get("topologySpreadConstraints", []):
            selector = dict(c["labelSelector"])
            # matchLabelKeys: the pod's own values of those keys join the selector.
            # (a key the pod does not have is ignored: pod-template-hash on a StatefulSet's pods).
            selector["matchLabels"] = {**selector.get("matchLabels", {}), **{k: labels[k] for k in c.get("matchLabelKeys", []) if k in labels}}
            own_only = selector_matches(selector, labels) and all(
                not selector_matches(selector, o["spec"]["template"]["metadata"]["labels"]) for o in docs
                if o is not d and o["kind"] in ("Deployment", "StatefulSet"))
            # Honor would drop cordoned nodes from the count, and a drained pod could then join
            # another of its server on the last node that has one.
            keys[c["topologyKey"]] = (c["whenUnsatisfiable"], own_only, c.get("nodeTaintsPolicy", "Ignore"),
                                      d["kind"] == "StatefulSet" or "pod-template-hash" in c.get("matchLabelKeys", []))
        check(f"{what}: spread over nodes (never two on one, cordoned nodes counted) and zones, counting its own pods only, of its own revision",
              keys.get("kubernetes.io/hostname") == ("DoNotSchedule", True, "Ignore", True)
              and keys.get("topology.kubernetes.io/zone", (None, False, None, False))[1:] == (True, "Ignore", True), str(keys))


def check_restricted(name, doc, spec):
    """Pod Security's restricted profile (its checks as of 1.29 and since), for every container."""
    what = f"{name}: {doc['kind']} {doc['metadata']['name']}"
    sc = spec.get("securityContext", {})
    problems = [k for k in ("hostNetwork", "hostPID", "hostIPC") if spec.get(k)]
    problems += [f"volume {v['name']}" for v in spec.get("volumes", [])
                 if not set(v) - {"name"} <= {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}]
    problems += ["sysctls"] if sc.get("sysctls") else []
    for c in spec.get("initContainers", []) + spec["containers"]:
        csc = c.get("securityContext", {})
        seccomp = csc.get("seccompProfile", sc.get("seccompProfile", {})).get("type")
        caps = csc.get("capabilities", {})
        if csc.get("privileged") or csc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{c['name']}: privilege")
        if csc.get("runAsNonRoot", sc.get("runAsNonRoot")) is not True or csc.get("runAsUser", sc.get("runAsUser")) == 0:
            problems.append(f"{c['name']}: root")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{c['name']}: seccomp")
        if "ALL" not in caps.get("drop", []) or not set(caps.get("add", [])) <= {"NET_BIND_SERVICE"}:
            problems.append(f"{c['name']}: capabilities")
        if any(p.get("hostPort") for p in c.get("ports", [])) or csc.get("procMount", "Default") != "Default":
            problems.append(f"{c['name']}: host port or procMount")
    check(f"{what}: passes Pod Security restricted", not problems, str(problems))


def check_ephemeral_storage(name, doc, spec):
    what = f"{name}: {doc['kind']} {doc['metadata']['name']}"
    containers = spec.get("initContainers", []) + spec["containers"]
    missing = [c["name"] for c in containers
               if not all("ephemeral-storage" in c.get("resources", {}).get(k, {}) for k in ("requests", "limits"))]
    check(f"{what}: every container requests and limits ephemeral-storage", not missing, str(missing))
    disks = [v for v in spec.get("volumes", []) if "emptyDir" in v and v["emptyDir"].get("medium") != "Memory"]
    unbounded = [v["name"] for v in disks if mebibytes(v["emptyDir"].get("sizeLimit")) is None]
    check(f"{what}: every emptyDir on disk has a sizeLimit", not unbounded, str(unbounded))
    if missing or unbounded:
        return
    running = long_running(spec)
    limits = sum(mebibytes(c["resources"]["limits"]["ephemeral-storage"]) for c in running)
    needed = sum(mebibytes(v["emptyDir"]["sizeLimit"]) for v in disks) + KUBELET_LOG_MI * len(running)
    check(f"{what}: its containers' ephemeral-storage limits ({limits:.0f}Mi) hold its emptyDirs and logs ({needed:.0f}Mi)",
          limits >= needed)


def hosts_in(key, text, services):
    """Host names in a text: URL hosts, and in a value Calypso reads (a template line, a
    calypso-values entry, the value of a key that names a host: EVENTSERVERHOST, ...) every word
    that starts with a Service's name and is followed by a port, a path, a separator or nothing
    (RMI_HOSTS=dataserver:1099,authserver)."""
    found = re.findall(r"[a-z][a-z0-9+.-]*://(?:[^@/\s]*@)?([A-Za-z0-9.-]+)", text)
    if re.search(r"(HOST|SERVER_NAME)$", key) and re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)*", text):
        found.append(text)
    if re.search(r"(\.tmpl$|^ConfigMap calypso-values)", key):
        words = r"(?<![\w.@/$-])((?:%s)(?:\.[a-z0-9-]+)*)(?=[:/,;\s]|$)" % "|".join(map(re.escape, sorted(services)))
        found += [w for w in re.findall(words, text) if w not in found]
    return found


def used_by(container, key):
    """Whether the program of a container acts on the variable: each agent reads its own prefix
    (agent-wait also the dependencies' CALYPSO_*_HEALTH_URL); agent-init's template values are
    what Calypso itself connects to."""
    program = (container.get("command") or [""])[0]
    if program == "/agent-wait":
        return key.startswith("AGENT_WAIT_") or re.fullmatch(r"CALYPSO_[A-Z]+_HEALTH_URL", key) is not None
    if program == "/agent-init":
        return not key.startswith(("AGENT_", "CALYPSO_"))
    agent = re.fullmatch(r"/agent-([a-z]+)", program)
    return agent is not None and key.startswith(f"AGENT_{agent.group(1).upper()}_")


def check_qualified_names(name, docs, config_maps, ns):
    """Every in-cluster name the manifests give is <service>.<namespace>.svc: never a short name
    the node's search domains could answer, never a placeholder left."""
    services = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    texts = [(f"ConfigMap {cm} {k}", v) for cm, data in config_maps.items() for k, v in data.items()]
    for doc, pod in pods_of(docs):
        for c in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
            env = container_env(c, config_maps, pod["metadata"], ns)
            texts += [(f"{doc['metadata']['name']}/{c['name']} env {k}", v) for k, v in env.items()]
            texts += [(f"{doc['metadata']['name']}/{c['name']} args", expand(a, env)) for a in c.get("args", [])]
    named = 0
    for where, text in texts:
        for line in str(text).splitlines():
            value = line.split("=", 1)[-1] if where.endswith(".tmpl") else line
            for host in hosts_in(where, value, services):
                if host.split(".")[0] in services:
                    named += 1
                    check(f"{name}: {where}: {host} is qualified with the namespace",
                          host in (f"{host.split('.')[0]}.{ns}.svc", f"{host.split('.')[0]}.{ns}.svc.cluster.local"), line)
        check(f"{name}: {where}: no NAMESPACE placeholder left", "NAMESPACE" not in str(text), str(text)[:200])
    check(f"{name}: the in-cluster names were found", named >= 6, str(named))


def check_references(name, docs, config_maps):
    """Every ConfigMap a pod reads exists (unless optional); every Service's target port is a
    port of the pods it selects; a PriorityClass's value sits above ordinary workloads and below
    the cluster's own."""
    for doc, pod in pods_of(docs):
        spec = pod["spec"]
        refs = [(v["configMap"]["name"], v["configMap"].get("optional")) for v in spec.get("volumes", []) if "configMap" in v]
        for c in spec.get("initContainers", []) + spec["containers"]:
            refs += [(s["configMapRef"]["name"], s["configMapRef"].get("optional")) for s in c.get("envFrom", []) if "configMapRef" in s]
            refs += [(e["valueFrom"]["configMapKeyRef"]["name"], e["valueFrom"]["configMapKeyRef"].get("optional"))
                     for e in c.get("env", []) if "configMapKeyRef" in e.get("valueFrom", {})]
        missing = sorted({n for n, optional in refs if not optional and n not in config_maps})
        check(f"{name}: {doc['kind']} {doc['metadata']['name']}: every ConfigMap it reads exists", not missing, str(missing))
    for svc in (d for d in docs if d["kind"] == "Service"):
        pods = [pod for _, pod in pods_of(docs) if selector_matches({"matchLabels": svc["spec"].get("selector", {})}, pod["metadata"].get("labels", {}))]
        ports = [p for pod in pods[:1] for c in pod["spec"]["containers"] for p in c.get("ports", [])]
        bad = [p["port"] for p in svc["spec"]["ports"]
               if not any(p.get("targetPort", p["port"]) in (c.get("name"), c["containerPort"]) for c in ports)]
        check(f"{name}: Service {svc['metadata']['name']} selects pods that serve each of its target ports", bool(pods) and not bad, str(bad))
    for pc in (d for d in docs if d["kind"] == "PriorityClass"):
        check(f"{name}: PriorityClass {pc['metadata']['name']} is above ordinary workloads and below the cluster's own",
              0 < pc.get("value", 0) < 1_000_000_000 and pc.get("globalDefault") is not True, str(pc.get("value")))


def check_settings_placement(name, docs, calypso):
    shared = next((d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("calypso-agents-")), {})
    events_only = sorted(k for k in shared.get("data", {}) if EVENTS_ONLY.match(k))
    check(f"{name}: no Events-only or setup-only variable in the shared calypso-agents", not events_only, str(events_only))
    for d in calypso:
        spec = d["spec"]["template"]["spec"]
        read = [s["configMapRef"]["name"] for c in spec.get("initContainers", []) + spec["containers"]
                for s in c.get("envFrom", []) if "configMapRef" in s]
        check(f"{name}: {d['kind']} {d['metadata']['name']} reads no Events shipper's ConfigMap",
              not any(r.startswith("agent-logship-events") for r in read), str(read))
        logship = next((c for c in spec.get("initContainers", []) if c["name"] == "agent-logship"), {})
        check(f"{name}: {d['kind']} {d['metadata']['name']}: the log shipper never gates Calypso (no startup or readiness probe)",
              bool(logship) and "startupProbe" not in logship and "readinessProbe" not in logship, str(sorted(logship)))
    for d in docs:
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "agent-logship-events":
            read = [s["configMapRef"]["name"] for c in d["spec"]["template"]["spec"]["containers"]
                    for s in c.get("envFrom", []) if "configMapRef" in s]
            check(f"{name}: the Events shipper reads its own ConfigMap, after the shared one",
                  len(read) == 2 and read[0].startswith("calypso-agents-") and read[1].startswith("agent-logship-events-"), str(read))


def check_gitops(name, docs, prod):
    for d in docs:
        if d["kind"] not in ("ConfigMap", "Secret") or not re.search(r"-[a-z0-9]{10}$", d["metadata"]["name"]):
            continue
        annotations = d["metadata"].get("annotations", {})
        what = f"{name}: generated {d['kind']} {d['metadata']['name']}"
        if d["kind"] == "ConfigMap":
            check(f"{what} outlives the rollout that replaces it (Argo CD PruneLast, Flux prune disabled)",
                  annotations.get("argocd.argoproj.io/sync-options") == "PruneLast=true"
                  and annotations.get("kustomize.toolkit.fluxcd.io/prune") == "disabled", str(annotations))
        if any("${" in str(v) for v in d.get("data", {}).values()):
            check(f"{what} holds ${{...}} placeholders, so Flux must not substitute into it",
                  annotations.get("kustomize.toolkit.fluxcd.io/substitute") == "disabled", str(annotations))
    images = {c["image"] for _, pod in pods_of(docs) for c in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]}
    agents = {i for i in images if i.split("@")[0].split(":")[0].endswith("/calypso-agents") or i.startswith("calypso-agents")}
    check(f"{name}: the servers, the Events shipper and prepare/'s setup Job run one calypso-agents image", len(agents) == 1, str(agents))
    if prod:
        check(f"{name}: every image is pinned by digest", all(re.search(r"@sha256:[0-9a-f]{64}$", i) for i in images), str(images))


def check_setup_job(name, docs):
    jobs = [d for d in docs if d["kind"] == "Job" and d["metadata"]["name"] == "agent-logship-setup"]
    check(f"{name}: agent-logship setup runs as its own Job", len(jobs) == 1)
    admin = []
    for doc, pod in pods_of(docs):
        spec = pod["spec"]
        secrets = {v["secret"]["secretName"] for v in spec.get("volumes", []) if "secret" in v}
        if "calypso-agents-elasticsearch-setup" in secrets:
            admin.append(doc["metadata"]["name"])
        runs_setup = any(c.get("command", [])[:2] == ["/agent-logship", "setup"] for c in spec.get("initContainers", []) + spec["containers"])
        check(f"{name}: {doc['kind']} {doc['metadata']['name']}: setup and its administrator credential go together",
              runs_setup == ("calypso-agents-elasticsearch-setup" in secrets) and not (runs_setup and "calypso-agents-elasticsearch" in secrets),
              str(secrets))
    check(f"{name}: only the setup Job holds the administrator credential", admin == ["agent-logship-setup"], str(admin))
    if jobs:
        job = jobs[0]
        annotations = job["metadata"].get("annotations", {})
        namespace = next((d for d in docs if d["kind"] == "Namespace"), {"metadata": {}})
        read = {r["configMapRef"]["name"] for c in job["spec"]["template"]["spec"]["containers"] for r in c.get("envFrom", [])}
        inputs = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] in read]
        wave = lambda o: int(o["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0"))
        check(f"{name}: Argo CD creates the Namespace, then the Job's ConfigMap, then the Job, and replaces the Job when it changes; so does Flux",
              len(inputs) == 1 and wave(namespace) < wave(inputs[0]) < wave(job)
              and "Force=true,Replace=true" in annotations.get("argocd.argoproj.io/sync-options", "")
              and "argocd.argoproj.io/hook" not in annotations
              and annotations.get("kustomize.toolkit.fluxcd.io/force") == "enabled", str(annotations))
        check(f"{name}: the setup Job retries through an Elasticsearch outage of 30 minutes",
              job["spec"].get("activeDeadlineSeconds", 0) >= 1800 and job["spec"].get("backoffLimit", 6) >= 10, str(job["spec"]))


def check_stop_and_heap(name, doc, config_maps):
    spec = doc["spec"]["template"]["spec"]
    what = f"{name}: {doc['kind']} {doc['metadata']['name']}"
    calypso = spec["containers"][0]
    inits = {c["name"]: c for c in spec.get("initContainers", [])}
    settings = lambda agent: {**DEFAULTS, **container_env(inits.get(agent, {}), config_maps, {}, "")}
    pre_stop = calypso.get("lifecycle", {}).get("preStop", {})
    command = pre_stop.get("exec", {}).get("command", [])
    # The sleep action, or its 1.29 fallback (deploy/components/prestop-exec): the image's sleep.
    sleep = pre_stop.get("sleep", {}).get("seconds") or (int(command[1]) if command[:1] == ["sleep"] and len(command) == 2 else 0)
    budget = (sleep + CALYPSO_STOP_SECONDS + seconds(settings("agent-logship")["AGENT_LOGSHIP_SHUTDOWN_GRACE"])
              + seconds(settings("agent-health")["AGENT_HEALTH_SHUTDOWN_DELAY"]))
    check(f"{what}: a preStop sleep lets the endpoints drain before Calypso's SIGTERM", sleep >= 5, str(pre_stop))
    grace = spec.get("terminationGracePeriodSeconds", 30)
    check(f"{what}: the grace period ({grace}s) holds the preStop, Calypso's stop, agent-logship's and agent-health's ({budget}s)",
          grace >= budget, str(grace))
    options = {e["name"]: e.get("value", "") for e in calypso.get("env", [])}.get("JAVA_TOOL_OPTIONS", "")
    check(f"{what}: the heap follows the container's memory limit",
          "-XX:MaxRAMPercentage=" in options and "-Xmx" not in options
          and "memory" in calypso.get("resources", {}).get("limits", {}), options)


def service_endpoint(docs, ns, host, port):
    """(pod endpoint, target port) of the pods behind host:port, a Service of this render, or
    (a pod of another namespace, port) for <name>.<other>.svc, or (external, port)."""
    parts = host.split(".")
    if len(parts) >= 3 and parts[2] == "svc" and parts[1] != ns:
        return {"namespace": parts[1], "labels": {}}, port
    for d in docs:
        if d["kind"] == "Service" and d["metadata"]["name"] == parts[0]:
            entry = next((p for p in d["spec"]["ports"] if p["port"] == port), None)
            pods = [pod for _, pod in pods_of(docs) if selector_matches({"matchLabels": d["spec"].get("selector", {})}, pod["metadata"].get("labels", {}))]
            if entry is None or not pods:
                return None, port
            ports = [p for c in pods[0]["spec"]["containers"] for p in c.get("ports", [])]
            target = entry.get("targetPort", port)
            if isinstance(target, str):
                target = next((p["containerPort"] for p in ports if p.get("name") == target), None)
            return {"namespace": ns, "labels": pods[0]["metadata"]["labels"], "ports": ports}, target
    return {"external": host}, port


def check_network_flows(name, docs, config_maps, ns):
    """Every flow the rendered manifests imply, derived from their URLs and ports, admitted by
    the NetworkPolicies; and what no flow needs, refused."""
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    namespaces = {d["metadata"]["name"]: d["metadata"].get("labels", {}) for d in docs if d["kind"] == "Namespace"}
    flows = []  # (what, src pod, dst endpoint, port, protocol)
    for doc, pod in pods_of(docs):
        src = {"namespace": ns, "labels": pod["metadata"].get("labels", {})}
        who = doc["metadata"]["name"]
        flows += [(f"{who} -> DNS/{p}", src, DNS, 53, p) for p in ("UDP", "TCP")]
        for c in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
            env = container_env(c, config_maps, pod["metadata"], ns)
            texts = [(k, v) for k, v in env.items() if used_by(c, k)] + [("args", expand(a, env)) for a in c.get("args", [])]
            for key, value in texts:
                for url in re.findall(r"(?:https?|jdbc:oracle:thin:@)[^\s,]*", str(value)):
                    parsed = urlparse(url.replace("jdbc:oracle:thin:@", "tcp://"))
                    if not parsed.hostname or parsed.hostname == "127.0.0.1":
                        continue
                    port = parsed.port or {"https": 443, "http": 80}.get(parsed.scheme, 0)
                    dst, target = service_endpoint(docs, ns, parsed.hostname, port)
                    flows.append((f"{who}/{c['name']} {key} -> {parsed.hostname}:{port}", src, dst, target, "TCP"))
            if env.get("AGENT_LOGSHIP_EVENTS") == "true":
                flows.append((f"{who}/{c['name']} -> the API server", src, {"external": "the API server"}, 443, "TCP"))
            for p in c.get("ports", []):
                if p.get("name") in ("probes", "logship"):
                    dst = {"namespace": ns, "labels": pod["metadata"].get("labels", {}), "ports": c["ports"]}
                    flows.append((f"Prometheus -> {who}/{c['name']}:{p['containerPort']}", PROMETHEUS, dst, p["containerPort"], "TCP"))
    values = next((v for k, v in config_maps.items() if k.startswith("calypso-values-")), {})
    if values.get("EVENTSERVERHOST") and values.get("EVENTSERVERPORT"):
        dst, target = service_endpoint(docs, ns, values["EVENTSERVERHOST"], int(values["EVENTSERVERPORT"]))
        for doc, pod in pods_of(docs):
            if doc["metadata"].get("labels", {}).get("app.kubernetes.io/part-of") == "calypso":
                flows.append((f"{doc['metadata']['name']} -> EVENTSERVERHOST:{target}", {"namespace": ns, "labels": pod["metadata"]["labels"]}, dst, target, "TCP"))
    for what, src, dst, port, protocol in flows:
        ok, why = admits(policies, namespaces, src, dst, port, protocol) if dst and port else (False, "no such Service port")
        check(f"{name}: network: {what}/{protocol} admitted", ok, why)
    check(f"{name}: network: the flows were derived", len(flows) >= 40, str(len(flows)))
    left = [p["metadata"]["name"] for p in policies if PLACEHOLDER.search(str(p["spec"]))]
    check(f"{name}: network: the overlay set every address the component leaves to it", not left, str(left))
    # Default deny is real: what no flow needs is refused.
    pod_of = lambda component: next({"namespace": ns, "labels": pod["metadata"]["labels"]}
                                    for doc, pod in pods_of(docs) if component_of(doc) == component)
    dataserver, events = pod_of("dataserver"), pod_of("events")
    stranger = {"namespace": "elsewhere", "labels": {"app": "anything"}}
    internet = {"external": "an address no rule names", "ip": "198.51.100.7"}
    refused = [("another namespace -> the DataServer's health API", stranger, dataserver, 8140),
               ("Prometheus's namespace -> the DataServer's health API", PROMETHEUS, dataserver, 8140),
               ("the DataServer -> the internet, on the database's port", dataserver, internet, 1521),
               ("the DataServer -> the internet, on HTTPS", dataserver, internet, 443),
               ("the Events shipper -> the internet, on the API server's port", events, internet, 443),
               ("the Events shipper -> a Calypso server", events, dataserver, 8140)]
    refused += [(f"another namespace -> {what.split(' -> ')[1]}", stranger, dst, port)
                for what, src, dst, port, _ in flows if src is PROMETHEUS]
    for what, src, dst, port in refused:
        check(f"{name}: network: {what} refused", not admits(policies, namespaces, src, dst, port)[0])
