"""es-sim's SigV4 check, proven with AWS's own signer: requests signed by botocore (as
opensearch-py's AWSV4SignerAuth and the AWS SDKs sign them) are accepted, and refused with 403
when signed with another secret, for another region or service, or with a body changed after
signing. Usage: es_sim_sigv4.py URL KEY_ID SECRET REGION SERVICE"""

import gzip
import json
import sys
import urllib.error
import urllib.request

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from opensearchpy import AWSV4SignerAuth, OpenSearch, RequestsHttpConnection
from opensearchpy.exceptions import AuthorizationException

from checks import check, finish

url, key_id, secret, region, service = sys.argv[1:6]


def send(method, path, body=b"", headers=None, secret_=secret, region_=region, service_=service, tamper=None):
    """Signs with botocore's SigV4Auth, sends with urllib: the status."""
    headers = dict(headers or {})
    req = AWSRequest(method=method, url=url.rstrip("/") + path, data=body, headers=headers)
    SigV4Auth(Credentials(key_id, secret_, "session-token-1"), service_, region_).add_auth(req)
    data = tamper if tamper is not None else body
    r = urllib.request.Request(req.url, data=data or None, method=method, headers=dict(req.headers.items()))
    try:
        with urllib.request.urlopen(r) as answer:
            return answer.status
    except urllib.error.HTTPError as e:
        return e.code


bulk = b'{"create":{"_id":"sig-1"}}\n{"@timestamp":"2026-12-08T10:00:00Z","message":"signed"}\n'
zipped = gzip.compress(bulk)
# botocore signs the query as it is written (it expects it encoded, as the clients write it);
# AWS, and es-sim, decode and encode it again: `,` and `*` are written encoded here.
path = "/logs-sigv4.app-test/_bulk?filter_path=errors%2Citems.%2A.status%2Citems.%2A.error"
ndjson = {"Content-Type": "application/x-ndjson"}
check("a signed GET /", send("GET", "/") == 200)
status = send("POST", path, zipped, {**ndjson, "Content-Encoding": "gzip"})
check("a signed gzip _bulk with the filter agent-logship sends", status == 200, f"status {status}")
check("another secret: 403", send("GET", "/", secret_=secret + "x") == 403)
check("another region: 403", send("GET", "/", region_="us-east-2") == 403)
check("another service: 403", send("GET", "/", service_="s3") == 403)
check("the body changed after signing: 403", send("POST", path, bulk, ndjson, tamper=bulk.replace(b"signed", b"forged")) == 403)

# The official client's own SigV4 support (opensearch-py on botocore).
client = OpenSearch(
    hosts=[url],
    http_auth=AWSV4SignerAuth(Credentials(key_id, secret, None), region, service),
    connection_class=RequestsHttpConnection,
)
check("opensearch-py signs info()", "version" in client.info())
answer = client.bulk(body=b'{"create":{"_id":"sig-2"}}\n{"message":"client"}\n', index="logs-sigv4.app-test")
check("opensearch-py signs a bulk", answer.get("errors") is False, json.dumps(answer))
wrong = OpenSearch(
    hosts=[url],
    http_auth=AWSV4SignerAuth(Credentials(key_id, "not-the-secret", None), region, service),
    connection_class=RequestsHttpConnection,
)
try:
    wrong.info()
    check("opensearch-py with another secret: 403", False, "accepted")
except AuthorizationException as e:
    check("opensearch-py with another secret: 403", e.status_code == 403)

finish()
