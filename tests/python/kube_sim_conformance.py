"""Drives kube-sim with the official Kubernetes Python client, to prove it answers as the API
server does, and validates every Event it serves against the Kubernetes schema.

Usage: kube_sim_conformance.py URL TOKEN
kube-sim must run with --token TOKEN and a short bookmark interval (the Rust test sets 200ms).
Events are made through the control API (/_sim/). Prints one line per check and
"N passed, 0 failed" at the end; exits 1 at the first failure.
"""
import json
import sys
import time
import urllib.request

import kubernetes_validate
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

url, token = sys.argv[1:3]
NS = "calypso"
passed = 0
validated = 0
SCHEMA = kubernetes_validate.latest_version()


def check(what, condition, detail=""):
    global passed
    if not condition:
        print(f"FAILED: {what} {detail}", flush=True)
        sys.exit(1)
    passed += 1
    print(f"ok: {what}", flush=True)


def control(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else (b"" if method != "GET" else None)
    req = urllib.request.Request(url + path, method=method, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as answer:
        return json.load(answer)


def valid(obj, what):
    """Validates one object (an Event or EventList with kind and apiVersion) against the schema."""
    global validated
    try:
        kubernetes_validate.validate(obj, SCHEMA, strict=True)
    except kubernetes_validate.ValidationError as e:
        check(f"{what} is a valid {obj.get('kind')} ({SCHEMA}, strict)", False, f"{e}: {json.dumps(obj)}")
    validated += 1


def as_item(raw):
    """A list item as the schema wants it (the server leaves kind and apiVersion out of items)."""
    return dict(raw, kind="Event", apiVersion="v1")


def api(with_token=True):
    config = client.Configuration()
    config.host = url
    if with_token:
        config.api_key = {"authorization": token}
        config.api_key_prefix = {"authorization": "Bearer"}
    return client.CoreV1Api(client.ApiClient(config))


v1 = api()
check(f"schemas of Kubernetes {SCHEMA} (1.33 or newer)", tuple(int(x) for x in SCHEMA.split(".")[:2]) >= (1, 33), SCHEMA)

# Authentication: no token, 401.
try:
    api(with_token=False).list_namespaced_event(NS)
    check("401 without a token", False)
except ApiException as e:
    check("401 without a token", e.status == 401, e)

# Events of both kinds: a core/v1 recorder's (count, first/lastTimestamp) and a new-API one
# (eventTime, series, action, reportingComponent).
names = []
for i in range(7):
    e = control("POST", "/_sim/events", {
        "metadata": {"namespace": NS, "name": f"dataserver-0.{i:016x}"},
        "involvedObject": {"kind": "Pod", "name": "dataserver-0", "apiVersion": "v1", "uid": "0b6ae7f5-45ec-4d9e-9a43-4b0f1bb3c001", "fieldPath": "spec.containers{dataserver}"},
        "reason": "Unhealthy", "message": f"Readiness probe failed ({i})", "type": "Warning",
        "source": {"component": "kubelet", "host": "node-1"},
        "reportingComponent": "kubelet", "reportingInstance": "node-1",
    })
    names.append(e["metadata"]["name"])
    valid(e, "a created event")
series = control("POST", "/_sim/events", {
    "metadata": {"namespace": NS, "name": "calypso-riskserver.series"},
    "involvedObject": {"kind": "StatefulSet", "name": "calypso-riskserver", "apiVersion": "apps/v1"},
    "reason": "FailedCreate", "message": "create Pod calypso-riskserver-1 failed", "type": "Warning",
    "eventTime": "2025-06-01T10:00:00.123456Z", "action": "Create",
    "reportingComponent": "statefulset-controller", "reportingInstance": "kube-controller-manager-node-1",
})
series = control("PATCH", f"/_sim/events/{NS}/calypso-riskserver.series", {"seriesCount": 2})
valid(series, "an event with a series")
check("a series event has eventTime, series, no count", series["eventTime"] == "2025-06-01T10:00:00.123456Z" and series["series"]["count"] == 2 and "count" not in series, series)
control("POST", "/_sim/events", {"metadata": {"namespace": "other", "name": "elsewhere"}, "involvedObject": {"kind": "Node", "name": "node-1"}, "reason": "NodeReady"})
names.append("calypso-riskserver.series")

# LIST with pagination, through the client's own limit/_continue.
pages, items, token_ = [], [], None
while True:
    page = v1.list_namespaced_event(NS, limit=3, _continue=token_)
    pages.append(page)
    items.extend(page.items)
    token_ = page.metadata._continue
    if not token_:
        break
check("list_namespaced_event(limit=3) in pages of 3", [len(p.items) for p in pages] == [3, 3, 2], [len(p.items) for p in pages])
check("every page of one snapshot", len({p.metadata.resource_version for p in pages}) == 1)
check("remainingItemCount on all but the last page", [p.metadata.remaining_item_count for p in pages] == [5, 2, None])
check("items ordered by name, all there", [e.metadata.name for e in items] == sorted(names), [e.metadata.name for e in items])
recorded = next(e for e in items if e.metadata.name == names[0])
check("V1Event fields", recorded.involved_object.kind == "Pod" and recorded.involved_object.field_path == "spec.containers{dataserver}" and recorded.count == 1 and recorded.type == "Warning" and recorded.first_timestamp is not None and recorded.metadata.uid, recorded)
check("the series in the model", next(e for e in items if e.series).series.count == 2)
everywhere = v1.list_event_for_all_namespaces()
check("list_event_for_all_namespaces", [e.metadata.namespace for e in everywhere.items].count("other") == 1 and len(everywhere.items) == 9)

# The raw JSON of a list, validated: the list itself and every item.
raw = v1.list_namespaced_event(NS, _preload_content=False)
raw = json.loads(raw.data)
valid(raw, "the EventList")
for item in raw["items"]:
    check_kind = "kind" not in item and "apiVersion" not in item
    if not check_kind:
        check("list items without kind", False, item)
    valid(as_item(item), "a listed event")
list_rv = raw["metadata"]["resourceVersion"]

# Changes after the list: ADDED, MODIFIED (count 2, then 5), DELETED.
control("POST", "/_sim/events", {"metadata": {"namespace": NS, "name": "later"}, "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "Pulled"})
control("PUT", f"/_sim/events/{NS}/later")
control("PATCH", f"/_sim/events/{NS}/later", {"count": 5, "message": "seen 5 times"})
control("DELETE", f"/_sim/events/{NS}/{names[0]}")

# WATCH from the list's resourceVersion with bookmarks; timeout_seconds ends the stream (the
# client does not reconnect when a timeout is given).
w = watch.Watch()
seen, bookmarks = [], []
started = time.monotonic()
for ev in w.stream(v1.list_namespaced_event, NS, resource_version=list_rv, allow_watch_bookmarks=True, timeout_seconds=2):
    if ev["type"] == "BOOKMARK":
        bookmarks.append(ev["raw_object"])
        continue
    seen.append((ev["type"], ev["object"].metadata.name, ev["object"].count))
    valid(ev["raw_object"], f"a watched event ({ev['type']})")
elapsed = time.monotonic() - started
check("watch: ADDED, MODIFIED, MODIFIED, DELETED in order", seen == [("ADDED", "later", 1), ("MODIFIED", "later", 2), ("MODIFIED", "later", 5), ("DELETED", names[0], 1)], seen)
check("watch: BOOKMARKs with the resourceVersion", len(bookmarks) >= 1 and all(b["kind"] == "Event" and b["metadata"]["resourceVersion"].isdigit() for b in bookmarks), bookmarks)
check("watch: the client tracked the bookmark's resourceVersion", w.resource_version == bookmarks[-1]["metadata"]["resourceVersion"], (w.resource_version, bookmarks[-1]))
check("watch: timeout_seconds ended the stream", 1.5 <= elapsed < 15, elapsed)

# All namespaces, from "now" with the current state first (no resourceVersion).
start_types = [ev["type"] for ev in watch.Watch().stream(v1.list_event_for_all_namespaces, timeout_seconds=1)]
check("watch without resourceVersion: ADDED for the current state", start_types == ["ADDED"] * 9, start_types)

# After a compaction, the 410s as the client surfaces them.
control("POST", "/_sim/compact")
try:
    for _ in watch.Watch().stream(v1.list_namespaced_event, NS, resource_version=list_rv, timeout_seconds=5):
        pass
    check("watch from a compacted resourceVersion raises 410", False)
except ApiException as e:
    check("watch from a compacted resourceVersion raises 410 Expired", e.status == 410 and "Expired" in e.reason and "too old resource version" in e.reason, e)
raw_lines = v1.list_namespaced_event(NS, watch=True, resource_version=list_rv, timeout_seconds=5, _preload_content=False).data.decode().splitlines()
error = json.loads(raw_lines[0])
check("the raw stream: one ERROR with a 410 Status, then the end", len(raw_lines) == 1 and error["type"] == "ERROR" and error["object"]["code"] == 410 and error["object"]["kind"] == "Status", raw_lines)
try:
    v1.list_namespaced_event(NS, limit=3, _continue=pages[0].metadata._continue)
    check("a compacted continue token raises 410", False)
except ApiException as e:
    body = json.loads(e.body)
    check("a compacted continue token raises 410 with a Status", e.status == 410 and body["reason"] == "Expired" and body["kind"] == "Status", e)

# The empty-200 trap: the client sees a watch that ends at once with nothing.
control("POST", "/_sim/faults?empty_watches=1")
nothing = list(watch.Watch().stream(v1.list_namespaced_event, NS, resource_version=str(control("POST", "/_sim/compact")["compacted"]), timeout_seconds=5))
check("the empty-200 trap: a watch with nothing in it", nothing == [], nothing)
stats = control("GET", "/_sim/stats")
check("stats count the outcomes", stats["watches"].get("expired") == 2 and stats["watches"].get("empty") == 1 and stats["lists"].get("expired") == 1, stats)

check(f"{validated} Event objects valid against the Kubernetes {SCHEMA} schema", validated >= 20, validated)
print(f"{passed} passed, 0 failed", flush=True)
