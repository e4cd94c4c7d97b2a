"""Drives es-sim with the official Python clients, to prove it answers as the real servers do.

Usage: es_sim_conformance.py elasticsearch|opensearch URL USER PASSWORD
es-sim must run with --basic-auth USER:PASSWORD. The control API (/_sim/) sets the faults.
Prints one line per check and "N passed, 0 failed" at the end; exits 1 at the first failure.
"""
import json
import sys
import urllib.request

flavour, url, user, password = sys.argv[1:5]
passed = 0


def check(what, condition, detail=""):
    global passed
    if not condition:
        print(f"FAILED: {what} {detail}", flush=True)
        sys.exit(1)
    passed += 1
    print(f"ok: {what}", flush=True)


def control(method, path):
    req = urllib.request.Request(url + path, method=method, data=b"" if method != "GET" else None)
    with urllib.request.urlopen(req) as answer:
        return json.load(answer)


if flavour == "elasticsearch":
    from elasticsearch import ApiError, AuthenticationException, Elasticsearch, helpers

    client = Elasticsearch(url, basic_auth=(user, password), http_compress=True, request_timeout=20)
    anonymous = Elasticsearch(url, request_timeout=20)
    version_prefix = "8."
else:
    from opensearchpy import OpenSearch, helpers
    from opensearchpy.exceptions import AuthenticationException
    from opensearchpy.exceptions import TransportError as ApiError

    client = OpenSearch(url, http_auth=(user, password), http_compress=True, timeout=20)
    anonymous = OpenSearch(url, timeout=20)
    version_prefix = "2."

# info(): the Elasticsearch client refuses a server without X-Elastic-Product.
info = client.info()
check("info() version", info["version"]["number"].startswith(version_prefix), info["version"])
if flavour == "opensearch":
    check("info() distribution", info["version"].get("distribution") == "opensearch")

# Basic auth: without credentials, 401.
try:
    anonymous.info()
    check("401 without credentials", False)
except AuthenticationException as e:
    check("401 without credentials", getattr(e, "status_code", None) == 401 or getattr(e, "meta", None) is not None)

# An index template with a data stream (priority above Elasticsearch's built-in logs template).
template = {
    "index_patterns": ["logs-conformance.*-*"],
    "priority": 200,
    "data_stream": {},
    "template": {"mappings": {"properties": {"@timestamp": {"type": "date"}, "log": {"properties": {"level": {"type": "keyword"}}}}}},
}
if flavour == "elasticsearch":
    ack = client.indices.put_index_template(name="conformance", **template)
else:
    ack = client.indices.put_index_template(name="conformance", body=template)
check("put_index_template acknowledged", ack["acknowledged"] is True)
check("exists_index_template", bool(client.indices.exists_index_template(name="conformance")))
got = client.indices.get_index_template(name="conformance")
check("get_index_template", got["index_templates"][0]["index_template"]["index_patterns"] == ["logs-conformance.*-*"], got)

STREAM = "logs-conformance.app-test"


def actions(ids, extra=None):
    for i in ids:
        doc = {"@timestamp": "2024-05-01T12:00:00.000Z", "message": f"record {i}", "log": {"level": "INFO"}}
        if extra:
            doc.update(extra(i))
        yield {"_op_type": "create", "_index": STREAM, "_id": f"id-{i}", "_source": doc}


def ship(ids, extra=None, **kwargs):
    results = {}
    for ok, item in helpers.streaming_bulk(client, actions(ids, extra), raise_on_error=False, chunk_size=50, **kwargs):
        body = item["create"]
        results[body["_id"]] = body["status"]
    return results


first = ship(range(100))
check("100 creates answered 201", set(first.values()) == {201} and len(first) == 100, first)
check("count() is 100", client.count(index=STREAM)["count"] == 100)

again = ship(range(100))
check("a re-send answers 409 for every item", set(again.values()) == {409}, set(again.values()))
check("count() still 100", client.count(index=STREAM)["count"] == 100)

conflict = ship([1000], extra=lambda i: {"log": "flat string where an object is mapped"})
check("a mapping conflict answers 400", conflict == {"id-1000": 400}, conflict)

no_ts = list(helpers.streaming_bulk(client, [{"_op_type": "create", "_index": STREAM, "_id": "no-ts", "_source": {"message": "x"}}], raise_on_error=False))
check("a document without @timestamp answers 400", no_ts[0][1]["create"]["status"] == 400, no_ts)

index_op = list(helpers.streaming_bulk(client, [{"_op_type": "index", "_index": STREAM, "_id": "idx", "_source": {"@timestamp": "2024-05-01T00:00:00Z"}}], raise_on_error=False))
check("index op into a data stream answers 400", index_op[0][1]["index"]["status"] == 400, index_op)

# Every 3rd item 429: without retries some items come back 429 ...
control("POST", "/_sim/faults?item_429_every=3")
rejected = ship(range(2000, 2030))
check("injected 429s reach the client", sorted(set(rejected.values())) == [201, 429], rejected)
# ... and streaming_bulk's own retry of 429s (max_retries) stores them in the end.
retried = ship(range(3000, 3030), max_retries=5, initial_backoff=0.01, max_backoff=0.05)
check("streaming_bulk retries 429s until stored", set(retried.values()) == {201}, retried)
control("DELETE", "/_sim/faults")
stored_429s = len([s for s in rejected.values() if s == 201])
check("count() after the 429s", client.count(index=STREAM)["count"] == 100 + stored_429s + 30)

# A whole-request 503: the clients' transports retry 503s (max_retries=3 by default), so the
# document is stored on the second attempt, and es-sim counted the refused one.
control("POST", "/_sim/faults?fail_next=1")
after_503 = ship([4000])
check("a 503 is retried by the transport and then stored", after_503 == {"id-4000": 201}, after_503)
check("the 503 was answered", control("GET", "/_sim/stats")["refused_requests"].get("503") == 1)
control("POST", "/_sim/faults?fail_next=10")
try:
    ship([4001])
    check("503s reach the client once its retries are spent", False)
except ApiError as e:
    status = getattr(e, "status_code", None) or getattr(getattr(e, "meta", None), "status", None)
    check("503s reach the client once its retries are spent", status == 503, repr(e))
control("DELETE", "/_sim/faults")

search = client.search(index=STREAM, body={"query": {"match_all": {}}, "size": 5})
check("search() hits with _source", len(search["hits"]["hits"]) == 5 and "message" in search["hits"]["hits"][0]["_source"], search)
check("search() total", search["hits"]["total"]["value"] == client.count(index=STREAM)["count"])

stats = control("GET", "/_sim/stats")
check("the client sent gzip", stats["gzip_requests"] > 0, stats)
check("the 409s are counted as duplicates", stats["duplicates"] >= 100, stats)

# filter_path, as agent-logship sends it with every _bulk: the answer keeps `errors` and, per
# item, `status` and (when it failed) `error`; every item stays, in order. Through the client's
# own filter_path argument (it joins the list with commas).
def doc(i, log={"level": "INFO"}):
    return {"@timestamp": "2024-05-01T12:00:00.000Z", "message": f"record {i}", "log": log}


operations = [
    {"create": {"_index": STREAM, "_id": "id-0"}}, doc(0),  # already stored: 409
    {"create": {"_index": STREAM, "_id": "id-5000"}}, doc(5000),  # new: 201
    {"create": {"_index": STREAM, "_id": "id-5001"}}, doc(5001, log="flat"),  # mapping conflict: 400
]
shipper_filter = ["errors", "items.*.status", "items.*.error"]
if flavour == "elasticsearch":
    trimmed = client.bulk(operations=operations, filter_path=shipper_filter).body
else:
    trimmed = client.bulk(body=operations, filter_path=shipper_filter)
check("filter_path: only errors and items at the top", sorted(trimmed) == ["errors", "items"] and trimmed["errors"] is True, trimmed)
items = [item["create"] for item in trimmed["items"]]
check("filter_path: every item, in order, with its status", [i["status"] for i in items] == [409, 201, 400], trimmed)
check("filter_path: a stored item is only its status", items[1] == {"status": 201}, items[1])
check(
    "filter_path: a failed item is its status and its whole error",
    all(sorted(i) == ["error", "status"] and sorted(i["error"]) == ["index", "index_uuid", "reason", "shard", "type"] for i in (items[0], items[2])),
    items,
)
check("filter_path: the 409 is a version conflict", items[0]["error"]["type"] == "version_conflict_engine_exception", items[0])
if flavour == "elasticsearch":
    clean = client.bulk(operations=[{"create": {"_index": STREAM, "_id": "id-5002"}}, doc(5002)], filter_path="errors,items.*.error").body
else:
    clean = client.bulk(body=[{"create": {"_index": STREAM, "_id": "id-5002"}}, doc(5002)], filter_path="errors,items.*.error")
check("filter_path: nothing failed, nothing but errors", clean == {"errors": False}, clean)

print(f"{passed} passed, 0 failed", flush=True)
