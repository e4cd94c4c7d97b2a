#!/usr/bin/env python3
"""A Kubernetes API test double for deploy/preflight (stdlib only).

It serves what real `kubectl` (1.37) and the official Python client ask for when preflight runs:

  GET  /version, /version/                 the server's version (major/minor/gitVersion/...)
  GET  /api, /apis                         discovery: aggregated (apidiscovery.k8s.io/v2, when
                                           the Accept header asks for it and the simulated
                                           server is 1.30 or newer; v2beta1 for 1.27-1.32) or
                                           legacy (APIVersions / APIGroupList); 406 when the
                                           Accept header allows neither
  GET  /api/v1                             legacy discovery: an APIResourceList (pods, nodes,
                                           namespaces)
  GET  /api/v1/nodes                       a NodeList with one Node per --node
  POST /api/v1/namespaces/{ns}/pods        dry runs only (dryRun=All): 201 with the Pod as the
                                           API server would have created it, with fields dropped
                                           as the scenario says
  anything else                            404 (a Status)

The scenario is given by flags:

  --server-version v1.33.1        what /version says
  --node NAME=KUBELET_VERSION     a node (repeatable; default: one node at the server version)
  --sidecar on|off                SidecarContainers on the API server; off drops
                                  initContainers[].restartPolicy silently, as a real server does
  --sleep on|off|unknown          PodLifecycleSleepAction: off drops lifecycle.*.sleep (and a
                                  handler left empty) silently; unknown is a server older than
                                  1.29 that has no such field: strict field validation refuses it
                                  (400), otherwise it is dropped, with a warning for
                                  fieldValidation=Warn, and the emptied handler fails validation
                                  (422), as on a real 1.28
  --forbid pods|nodes             403 for creating pods / listing nodes (repeatable)
  --exit-on-stdin-eof             exit when standard input closes: a test that pipes it cannot
                                  leave the double behind, even when the test itself is killed

It listens on 127.0.0.1 on a free port, prints the port as the first line on stdout, and logs
every request (method, path with query, Accept) to stderr, one line each, so a failing test
shows what the client asked for.
"""

import argparse
import datetime
import hashlib
import http.server
import json
import os
import random
import re
import sys
import threading
import urllib.parse
import uuid

AGGREGATED_V2 = ("apidiscovery.k8s.io", "v2")
AGGREGATED_V2BETA1 = ("apidiscovery.k8s.io", "v2beta1")

# The core/v1 resources the double knows: (name, singular, kind, namespaced, verbs, short names).
RESOURCES = [
    ("namespaces", "namespace", "Namespace", False, ["create", "delete", "get", "list", "patch", "update", "watch"], ["ns"]),
    ("nodes", "node", "Node", False, ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"], ["no"]),
    (
        "pods",
        "pod",
        "Pod",
        True,
        ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        ["po"],
    ),
]

NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # what the API server's name generator uses


def parse_version(text):
    m = re.match(r"^v?(\d+)\.(\d+)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"not a Kubernetes version: {text!r}")
    return int(m.group(1)), int(m.group(2))


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def status(code, reason, message, details=None):
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details is not None:
        body["details"] = details
    return body


class Scenario:
    def __init__(self, args):
        self.git_version = args.server_version
        self.major, self.minor = parse_version(args.server_version)
        self.nodes = args.node or [("node-1", args.server_version)]
        self.sidecar = args.sidecar
        self.sleep = args.sleep
        self.forbid = set(args.forbid or [])

    def version_document(self):
        flavoured = bool(re.search(r"[-+]", self.git_version.split(".", 2)[-1]))
        doc = {"major": str(self.major), "minor": f"{self.minor}{'+' if flavoured else ''}"}
        if (self.major, self.minor) >= (1, 33):
            # 1.33 added the emulation and compatibility versions to /version.
            doc.update(
                emulationMajor=str(self.major),
                emulationMinor=str(self.minor),
                minCompatibilityMajor=str(self.major),
                minCompatibilityMinor=str(self.minor - 1),
            )
        doc.update(
            gitVersion=self.git_version,
            gitCommit=hashlib.sha1(self.git_version.encode()).hexdigest(),
            gitTreeState="clean",
            buildDate="2025-05-15T08:00:00Z",
            goVersion="go1.24.2",
            compiler="gc",
            platform="linux/amd64",
        )
        return doc

    def aggregated_versions(self):
        """The aggregated discovery versions the simulated server serves."""
        served = []
        if (self.major, self.minor) >= (1, 30):
            served.append(AGGREGATED_V2)
        if (1, 27) <= (self.major, self.minor) <= (1, 32):
            served.append(AGGREGATED_V2BETA1)
        return served

    def node(self, i, name, kubelet):
        return {
            "metadata": {
                "name": name,
                "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
                "resourceVersion": str(1000 + i),
                "creationTimestamp": "2025-01-01T00:00:00Z",
                "labels": {
                    "kubernetes.io/arch": "amd64",
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                },
            },
            "spec": {"podCIDR": f"10.244.{i}.0/24", "podCIDRs": [f"10.244.{i}.0/24"]},
            "status": {
                "capacity": {"cpu": "4", "memory": "16318412Ki", "pods": "110"},
                "allocatable": {"cpu": "4", "memory": "16216012Ki", "pods": "110"},
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "lastHeartbeatTime": now(),
                        "lastTransitionTime": "2025-01-01T00:00:00Z",
                        "reason": "KubeletReady",
                        "message": "kubelet is posting ready status",
                    }
                ],
                "addresses": [
                    {"type": "InternalIP", "address": f"10.0.0.{10 + i}"},
                    {"type": "Hostname", "address": name},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "machineID": hashlib.md5(name.encode()).hexdigest(),
                    "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
                    "bootID": str(uuid.uuid5(uuid.NAMESPACE_OID, name)),
                    "kernelVersion": "6.1.0-18-amd64",
                    "osImage": "Debian GNU/Linux 12 (bookworm)",
                    "containerRuntimeVersion": "containerd://1.7.22",
                    "kubeletVersion": kubelet,
                    "kubeProxyVersion": kubelet,
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
            },
        }

    def node_list(self):
        return {
            "kind": "NodeList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": "4242"},
            "items": [self.node(i, name, kubelet) for i, (name, kubelet) in enumerate(self.nodes)],
        }


def resource_list():
    return {
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {
                "name": name,
                "singularName": singular,
                "namespaced": namespaced,
                "kind": kind,
                "verbs": verbs,
                "shortNames": short,
                **({"categories": ["all"]} if name == "pods" else {}),
                "storageVersionHash": hashlib.sha256(name.encode()).hexdigest()[:11] + "=",
            }
            for name, singular, kind, namespaced, verbs, short in RESOURCES
        ],
    }


def aggregated(core, version):
    """The APIGroupDiscoveryList for /api (core=True) or /apis (no groups besides core here)."""
    items = []
    if core:
        items.append(
            {
                "metadata": {"creationTimestamp": None},
                "versions": [
                    {
                        "version": "v1",
                        "resources": [
                            {
                                "resource": name,
                                "responseKind": {"group": "", "version": "v1", "kind": kind},
                                "scope": "Namespaced" if namespaced else "Cluster",
                                "singularResource": singular,
                                "verbs": verbs,
                                "shortNames": short,
                                **({"categories": ["all"]} if name == "pods" else {}),
                            }
                            for name, singular, kind, namespaced, verbs, short in RESOURCES
                        ],
                        "freshness": "Current",
                    }
                ],
            }
        )
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "/".join(version), "metadata": {}, "items": items}


def media_ranges(accept):
    """[(type, {param: value})] from an Accept header, in the client's order."""
    ranges = []
    for part in (accept or "*/*").split(","):
        fields = [f.strip() for f in part.split(";")]
        params = {}
        for f in fields[1:]:
            if "=" in f:
                k, v = f.split("=", 1)
                params[k.strip()] = v.strip()
        ranges.append((fields[0].lower(), params))
    return ranges


# --- the Pod create -------------------------------------------------------------------------


def lifecycle_handlers(spec):
    """(path, container list name, index, hook name, handler) for every lifecycle hook."""
    for kind in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(kind) or []):
            lifecycle = c.get("lifecycle") or {}
            for hook in ("postStart", "preStop"):
                if isinstance(lifecycle.get(hook), dict):
                    yield f"spec.{kind}[{i}].lifecycle.{hook}", c, hook


def drop_sleep(spec):
    """What a server with PodLifecycleSleepAction off does: drop the sleep action, then a
    handler left empty, then a lifecycle left empty (pkg/api/pod dropPodLifecycleSleepAction)."""
    for _path, container, hook in list(lifecycle_handlers(spec)):
        handler = container["lifecycle"][hook]
        if "sleep" in handler:
            del handler["sleep"]
            if not handler:
                del container["lifecycle"][hook]
        if not container["lifecycle"]:
            del container["lifecycle"]


def default_container(c):
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    image = c.get("image", "")
    tagless = ":" not in image.rsplit("/", 1)[-1] and "@" not in image
    c.setdefault("imagePullPolicy", "Always" if tagless or image.endswith(":latest") else "IfNotPresent")
    c.setdefault("resources", {})


def validate(pod):
    """A few of the API server's Pod validations: [(field, reason, message)]."""
    errors = []
    spec = pod.get("spec") or {}
    if not spec.get("containers"):
        errors.append(("spec.containers", "FieldValueRequired", "Required value"))
    for kind in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(kind) or []):
            for field in ("name", "image"):
                if not c.get(field):
                    errors.append((f"spec.{kind}[{i}].{field}", "FieldValueRequired", "Required value"))
            if kind == "initContainers" and "restartPolicy" in c and c["restartPolicy"] != "Always":
                errors.append(
                    (
                        f"spec.{kind}[{i}].restartPolicy",
                        "FieldValueNotSupported",
                        f'Unsupported value: "{c["restartPolicy"]}": supported values: "Always"',
                    )
                )
    for path, container, hook in lifecycle_handlers(spec):
        actions = [a for a in ("exec", "httpGet", "tcpSocket", "sleep") if a in container["lifecycle"][hook]]
        if not actions:
            errors.append((path, "FieldValueRequired", "Required value: must specify a handler type"))
        elif len(actions) > 1:
            errors.append((path, "FieldValueForbidden", "Forbidden: may not specify more than 1 handler type"))
    return errors


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as kubectl and the Python client expect
    server_version = "preflight-api"
    scenario: Scenario

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass  # the request log below replaces the default one

    def log_request_line(self):
        print(
            f"preflight_api: {self.command} {self.path} accept={self.headers.get('Accept', '-')}"
            + (f" content-type={self.headers.get('Content-Type', '-')}" if self.command != "GET" else ""),
            file=sys.stderr,
            flush=True,
        )

    def reply(self, code, body, content_type="application/json", headers=()):
        data = json.dumps(body, indent=2).encode() + b"\n"
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache, private")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        print(f"preflight_api:   -> {code}", file=sys.stderr, flush=True)

    def not_found(self):
        self.reply(404, status(404, "NotFound", "the server could not find the requested resource", {}))

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.log_request_line()
        url = urllib.parse.urlsplit(self.path)
        path, query = url.path, urllib.parse.parse_qs(url.query)
        s = self.scenario
        if path in ("/version", "/version/"):
            self.reply(200, s.version_document())
        elif path in ("/api", "/apis"):
            self.discovery(core=path == "/api")
        elif path == "/api/v1":
            self.reply(200, resource_list())
        elif path == "/api/v1/nodes":
            if "nodes" in s.forbid:
                self.reply(
                    403,
                    status(
                        403,
                        "Forbidden",
                        'nodes is forbidden: User "preflight" cannot list resource "nodes" in API group "" '
                        "at the cluster scope",
                        {"kind": "nodes"},
                    ),
                )
            else:
                self.reply(200, s.node_list())
        else:
            self.not_found()

    def discovery(self, core):
        served = self.scenario.aggregated_versions()
        for media, params in media_ranges(self.headers.get("Accept")):
            if media in ("application/json", "application/*", "*/*") and "as" in params:
                wanted = (params.get("g"), params.get("v"))
                if params.get("as") == "APIGroupDiscoveryList" and wanted in served:
                    self.reply(
                        200,
                        aggregated(core, wanted),
                        content_type=f"application/json;g={wanted[0]};v={wanted[1]};as=APIGroupDiscoveryList",
                    )
                    return
                continue  # a form this server does not serve: try the client's next choice
            if media in ("application/json", "application/*", "*/*"):
                if core:
                    self.reply(
                        200,
                        {
                            "kind": "APIVersions",
                            "versions": ["v1"],
                            "serverAddressByClientCIDRs": [
                                {"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.1:6443"}
                            ],
                        },
                    )
                else:
                    self.reply(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
                return
        self.reply(
            406,
            status(406, "NotAcceptable", "only the following media types are accepted: application/json", {}),
        )

    def do_POST(self):  # noqa: N802
        self.log_request_line()
        url = urllib.parse.urlsplit(self.path)
        m = re.fullmatch(r"/api/v1/namespaces/([a-z0-9]([-a-z0-9]*[a-z0-9])?)/pods", url.path)
        if not m:
            self.body()
            self.not_found()
            return
        namespace = m.group(1)
        query = urllib.parse.parse_qs(url.query)
        raw = self.body()
        s = self.scenario
        # Authorization comes first on a real server, before the body is even decoded.
        if "pods" in s.forbid:
            self.reply(
                403,
                status(
                    403,
                    "Forbidden",
                    f'pods is forbidden: User "preflight" cannot create resource "pods" in API group "" '
                    f'in the namespace "{namespace}"',
                    {"kind": "pods"},
                ),
            )
            return
        dry_run = query.get("dryRun", [])
        if dry_run != ["All"]:
            # Not a real server's answer: the double stores nothing, so it refuses to pretend.
            self.reply(
                400,
                status(400, "BadRequest", f"preflight_api answers dry runs only (dryRun=All), got dryRun={dry_run}"),
            )
            return
        validation = query.get("fieldValidation", ["Warn"])[0]
        if validation not in ("Strict", "Warn", "Ignore"):
            self.reply(400, status(400, "BadRequest", f"invalid fieldValidation directive: {validation}"))
            return
        # No Content-Type means the server's first supported type, JSON, as on a real server.
        if not (self.headers.get("Content-Type") or "application/json").startswith("application/json"):
            self.reply(
                415,
                status(415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {self.headers.get('Content-Type')}"),
            )
            return
        try:
            pod = json.loads(raw)
        except ValueError as e:
            self.reply(400, status(400, "BadRequest", f"the object provided is unrecognized: {e}"))
            return
        if pod.get("kind") != "Pod" or pod.get("apiVersion") != "v1":
            self.reply(400, status(400, "BadRequest", "the object provided is not a v1 Pod"))
            return
        meta = pod.setdefault("metadata", {})
        if meta.get("namespace", namespace) != namespace:
            self.reply(
                400,
                status(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                ),
            )
            return
        spec = pod.setdefault("spec", {})
        warnings = []
        if s.sleep == "unknown":
            unknown = [f"{path}.sleep" for path, c, hook in lifecycle_handlers(spec) if "sleep" in c["lifecycle"][hook]]
            if unknown and validation == "Strict":
                fields = ", ".join(f'unknown field "{f}"' for f in unknown)
                self.reply(
                    400,
                    status(400, "BadRequest", f'Pod in version "v1" cannot be handled as a Pod: strict decoding error: {fields}'),
                )
                return
            if validation == "Warn":
                warnings += [f'299 - "unknown field \\"{f}\\""' for f in unknown]
            # Decoding drops what the server's types do not have: the handler stays, empty.
            for _path, container, hook in list(lifecycle_handlers(spec)):
                container["lifecycle"][hook].pop("sleep", None)
        elif s.sleep == "off":
            drop_sleep(spec)
        if s.sidecar == "off":
            for c in spec.get("initContainers") or []:
                c.pop("restartPolicy", None)
        if not meta.get("name"):
            if not meta.get("generateName"):
                self.reply(
                    422,
                    status(
                        422,
                        "Invalid",
                        "Pod is invalid: metadata.name: Required value: name or generateName is required",
                        {"kind": "Pod", "causes": [{"reason": "FieldValueRequired", "message": "Required value: name or generateName is required", "field": "metadata.name"}]},
                    ),
                )
                return
            meta["name"] = meta["generateName"] + "".join(random.choice(NAME_CHARS) for _ in range(5))
        errors = validate(pod)
        if errors:
            name = meta["name"]
            message = ", ".join(f"{field}: {msg}" for field, _reason, msg in errors)
            self.reply(
                422,
                status(
                    422,
                    "Invalid",
                    f'Pod "{name}" is invalid: {"[" + message + "]" if len(errors) > 1 else message}',
                    {
                        "name": name,
                        "kind": "Pod",
                        "causes": [{"reason": r, "message": msg, "field": f} for f, r, msg in errors],
                    },
                ),
                headers=[("Warning", w) for w in warnings],
            )
            return
        # What a dry-run create returns: defaulted, with a uid and a timestamp, never stored
        # (so no resourceVersion).
        meta["namespace"] = namespace
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        for c in (spec.get("initContainers") or []) + spec["containers"]:
            default_container(c)
        for key, value in (
            ("restartPolicy", "Always"),
            ("terminationGracePeriodSeconds", 30),
            ("dnsPolicy", "ClusterFirst"),
            ("serviceAccountName", "default"),
            ("serviceAccount", "default"),
            ("securityContext", {}),
            ("schedulerName", "default-scheduler"),
            ("priority", 0),
            ("enableServiceLinks", True),
            ("preemptionPolicy", "PreemptLowerPriority"),
        ):
            spec.setdefault(key, value)
        spec.setdefault(
            "tolerations",
            [
                {"key": f"node.kubernetes.io/{t}", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
                for t in ("not-ready", "unreachable")
            ],
        )
        pod["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        self.reply(201, pod, headers=[("Warning", w) for w in warnings])

    def refuse(self):
        self.log_request_line()
        self.body()
        self.not_found()

    do_PUT = do_PATCH = do_DELETE = refuse


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--server-version", default="v1.33.1")
    p.add_argument(
        "--node",
        action="append",
        type=lambda s: tuple(s.split("=", 1)) if "=" in s else p.error(f"--node wants NAME=VERSION, got {s!r}"),
        help="NAME=KUBELET_VERSION (repeatable)",
    )
    p.add_argument("--sidecar", choices=["on", "off"], default="on")
    p.add_argument("--sleep", choices=["on", "off", "unknown"], default="on")
    p.add_argument("--forbid", action="append", choices=["pods", "nodes"])
    p.add_argument("--exit-on-stdin-eof", action="store_true")
    args = p.parse_args()
    try:
        parse_version(args.server_version)
    except argparse.ArgumentTypeError as e:
        p.error(str(e))
    Handler.scenario = Scenario(args)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if args.exit_on_stdin_eof:
        threading.Thread(target=lambda: (sys.stdin.buffer.read(), os._exit(0)), daemon=True).start()
    print(server.server_address[1], flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
