"""Unit tests of netpol.py, the NetworkPolicy evaluator: python3 tests/python/netpol_test.py
(from anywhere). One line per check, then "N passed, M failed"; exit status 1 on a failure."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from checks import check, finish  # noqa: E402
from netpol import admits, isolated, policy_types, selector_matches  # noqa: E402


def pol(name, ns, spec):
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def pod(ns, labels=None, ports=None):
    p = {"namespace": ns, "labels": labels or {}}
    if ports is not None:
        p["ports"] = ports
    return p


def expect(what, result, want):
    ok, why = result
    check(f"{what}: {'allowed' if want else 'blocked'}", ok is want, f"got {ok}: {why}")


DENY_IN = pol("deny-in", "app", {"podSelector": {}, "policyTypes": ["Ingress"]})
DENY_OUT = pol("deny-out", "app", {"podSelector": {}, "policyTypes": ["Egress"]})
NS = {"app": {"team": "calypso"}, "mon": {"team": "ops"}, "other": {}}
WEB = pod("app", {"app": "web"}, [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                                  {"name": "dns", "containerPort": 5353, "protocol": "UDP"}])
DB = pod("app", {"app": "db"})
MON = pod("mon", {"app": "prometheus"})
MON_OTHER = pod("mon", {"app": "grafana"})
OTHER_PROM = pod("other", {"app": "prometheus"})
NET = {"external": "the internet"}

# No policies: everything goes.
expect("no policies, pod -> pod", admits([], NS, DB, WEB, 8080), True)
expect("no policies, pod -> external", admits([], NS, WEB, NET, 443), True)

# Default-deny ingress, then an allow rule.
expect("default-deny ingress, pod -> pod", admits([DENY_IN], NS, DB, WEB, 8080), False)
expect("default-deny ingress, external -> pod", admits([DENY_IN], NS, NET, WEB, 8080), False)
expect("default-deny ingress does not isolate egress", admits([DENY_IN], NS, WEB, NET, 443), True)
ALLOW_DB_WEB = pol("db-to-web", "app", {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"],
                                        "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "db"}}}],
                                                     "ports": [{"port": 8080}]}]})
expect("allow rule re-admits db -> web:8080", admits([DENY_IN, ALLOW_DB_WEB], NS, DB, WEB, 8080), True)
expect("allow rule is for port 8080 only", admits([DENY_IN, ALLOW_DB_WEB], NS, DB, WEB, 8081), False)
expect("allow rule is for db only", admits([DENY_IN, ALLOW_DB_WEB], NS, WEB, WEB, 8080), False)
expect("allow rule selects web, db stays denied", admits([DENY_IN, ALLOW_DB_WEB], NS, WEB, DB, 8080), False)
ALLOW_ALL_IN = pol("all-in", "app", {"podSelector": {}, "ingress": [{}]})
expect("an empty ingress rule admits everyone", admits([DENY_IN, ALLOW_ALL_IN], NS, NET, DB, 1), True)

# Egress-only isolation.
expect("default-deny egress blocks pod -> external", admits([DENY_OUT], NS, WEB, NET, 443), False)
expect("default-deny egress blocks pod -> pod", admits([DENY_OUT], NS, WEB, DB, 5432), False)
expect("default-deny egress leaves ingress open", admits([DENY_OUT], NS, MON, WEB, 8080), True)
check("egress-only policy: isolated for egress", isolated([DENY_OUT], WEB, "Egress") is True)
check("egress-only policy: not isolated for ingress", isolated([DENY_OUT], WEB, "Ingress") is False)
check("external endpoints are never isolated", isolated([DENY_OUT], NET, "Egress") is False)

# policyTypes defaults.
check("no policyTypes, no egress: Ingress", policy_types(pol("p", "app", {"podSelector": {}})) == ["Ingress"])
check("no policyTypes, egress rules: Ingress and Egress",
      policy_types(pol("p", "app", {"podSelector": {}, "egress": [{}]})) == ["Ingress", "Egress"])
check("no policyTypes, empty egress list: Ingress only",
      policy_types(pol("p", "app", {"podSelector": {}, "egress": []})) == ["Ingress"])
check("explicit policyTypes kept", policy_types(DENY_OUT) == ["Egress"])
EGRESS_ONLY_RULES = pol("e", "app", {"podSelector": {}, "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]})
expect("defaulted policy with egress denies other egress", admits([EGRESS_ONLY_RULES], NS, WEB, NET, 443), False)
expect("defaulted policy with egress is also ingress default-deny", admits([EGRESS_ONLY_RULES], NS, MON, WEB, 8080), False)
expect("defaulted policy with egress admits its rule", admits([EGRESS_ONLY_RULES], NS, WEB, NET, 53, "UDP"), True)

# Both sides are needed pod -> pod.
ALLOW_WEB_OUT_DB = pol("web-out", "app", {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Egress"],
                                          "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "db"}}}]}]})
ALLOW_DB_IN_WEB = pol("db-in", "app", {"podSelector": {"matchLabels": {"app": "db"}}, "policyTypes": ["Ingress"],
                                       "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}]})
both_deny = [DENY_IN, DENY_OUT]
expect("egress allowed, ingress not", admits(both_deny + [ALLOW_WEB_OUT_DB], NS, WEB, DB, 5432), False)
expect("ingress allowed, egress not", admits(both_deny + [ALLOW_DB_IN_WEB], NS, WEB, DB, 5432), False)
expect("egress and ingress allowed", admits(both_deny + [ALLOW_WEB_OUT_DB, ALLOW_DB_IN_WEB], NS, WEB, DB, 5432), True)
ok, why = admits(both_deny + [ALLOW_WEB_OUT_DB], NS, WEB, DB, 5432)
check("why names the blocking side and policy", "ingress" in why and "app/deny-in" in why, why)

# Policies of another namespace do not apply.
DENY_OTHER = pol("deny-all", "other", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
expect("deny-all in namespace other leaves app alone", admits([DENY_OTHER], NS, WEB, DB, 5432), True)
expect("deny-all in namespace other blocks its pod's ingress", admits([DENY_OTHER], NS, WEB, OTHER_PROM, 9090), False)
POD_SEL_ONLY = pol("from-prom", "app", {"podSelector": {}, "ingress": [{"from": [
    {"podSelector": {"matchLabels": {"app": "prometheus"}}}]}]})
expect("podSelector alone means the policy's own namespace", admits([POD_SEL_ONLY], NS, MON, WEB, 8080), False)

# namespaceSelector by the automatic name label.
FROM_MON_NS = pol("from-mon", "app", {"podSelector": {}, "ingress": [{"from": [
    {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mon"}}}]}]})
expect("namespaceSelector by name admits mon", admits([FROM_MON_NS], NS, MON, WEB, 8080), True)
expect("namespaceSelector by name, namespace absent from the dict", admits([FROM_MON_NS], {}, MON, WEB, 8080), True)
expect("namespaceSelector by name excludes other", admits([FROM_MON_NS], NS, OTHER_PROM, WEB, 8080), False)
expect("namespaceSelector never matches external", admits([FROM_MON_NS], NS, NET, WEB, 8080), False)
FROM_OPS = pol("from-ops", "app", {"podSelector": {}, "ingress": [{"from": [
    {"namespaceSelector": {"matchLabels": {"team": "ops"}}}]}]})
expect("namespaceSelector by a namespace label", admits([FROM_OPS], NS, MON_OTHER, WEB, 8080), True)
expect("namespaceSelector: namespace without the label", admits([FROM_OPS], NS, DB, WEB, 8080), False)

# One peer with both selectors (AND) versus two peers (OR).
AND = pol("and", "app", {"podSelector": {}, "ingress": [{"from": [
    {"namespaceSelector": {"matchLabels": {"team": "ops"}}, "podSelector": {"matchLabels": {"app": "prometheus"}}}]}]})
OR = pol("or", "app", {"podSelector": {}, "ingress": [{"from": [
    {"namespaceSelector": {"matchLabels": {"team": "ops"}}}, {"podSelector": {"matchLabels": {"app": "prometheus"}}}]}]})
expect("AND peer: prometheus in mon", admits([AND], NS, MON, WEB, 8080), True)
expect("AND peer: grafana in mon", admits([AND], NS, MON_OTHER, WEB, 8080), False)
expect("AND peer: prometheus in other", admits([AND], NS, OTHER_PROM, WEB, 8080), False)
expect("OR peers: grafana in mon", admits([OR], NS, MON_OTHER, WEB, 8080), True)
expect("OR peers: prometheus in app", admits([OR], NS, pod("app", {"app": "prometheus"}), WEB, 8080), True)
expect("OR peers: prometheus in other (podSelector is own namespace)", admits([OR], NS, OTHER_PROM, WEB, 8080), False)

# matchExpressions, all four operators.
L = {"tier": "backend", "env": "prod"}
for sel, labels, want in [
    ({"key": "tier", "operator": "In", "values": ["backend", "api"]}, L, True),
    ({"key": "tier", "operator": "In", "values": ["frontend"]}, L, False),
    ({"key": "zone", "operator": "In", "values": ["a"]}, L, False),
    ({"key": "tier", "operator": "NotIn", "values": ["frontend"]}, L, True),
    ({"key": "tier", "operator": "NotIn", "values": ["backend"]}, L, False),
    ({"key": "zone", "operator": "NotIn", "values": ["a"]}, L, True),
    ({"key": "env", "operator": "Exists"}, L, True),
    ({"key": "zone", "operator": "Exists"}, L, False),
    ({"key": "zone", "operator": "DoesNotExist"}, L, True),
    ({"key": "env", "operator": "DoesNotExist"}, L, False),
]:
    check(f"matchExpressions {sel['key']} {sel['operator']} {sel.get('values', '')} -> {want}",
          selector_matches({"matchExpressions": [sel]}, labels) is want)
check("matchLabels and matchExpressions are ANDed",
      selector_matches({"matchLabels": {"env": "prod"}, "matchExpressions": [
          {"key": "tier", "operator": "In", "values": ["api"]}]}, L) is False)
check("{} selects everything", selector_matches({}, {}) is True and selector_matches({}, L) is True)
EXPR = pol("expr", "app", {"podSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
                           "policyTypes": ["Ingress"]})
expect("matchExpressions in spec.podSelector isolate web", admits([EXPR], NS, DB, WEB, 8080), False)
expect("matchExpressions in spec.podSelector leave db open", admits([EXPR], NS, WEB, DB, 5432), True)

# Named ports.
NAMED = pol("named", "app", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                             "ingress": [{"ports": [{"port": "http"}, {"port": "dns", "protocol": "UDP"}]}],
                             "egress": [{"ports": [{"port": "http"}]}]})
expect("named port http matches web's 8080", admits([NAMED], NS, NET, WEB, 8080), True)
expect("named port http does not match 8081", admits([NAMED], NS, NET, WEB, 8081), False)
expect("named port http is TCP: UDP 8080 not matched", admits([NAMED], NS, NET, WEB, 8080, "UDP"), False)
expect("named port dns UDP 5353", admits([NAMED], NS, NET, WEB, 5353, "UDP"), True)
expect("named port dns with TCP rule protocol mismatch", admits([NAMED], NS, NET, WEB, 5353, "TCP"), False)
UDP_HTTP = pod("app", {"app": "odd"}, [{"name": "http", "containerPort": 8080, "protocol": "UDP"}])
expect("named port http (TCP rule) vs a UDP container port http", admits([NAMED], NS, NET, UDP_HTTP, 8080), False)
expect("named port on a pod without ports", admits([NAMED], NS, NET, DB, 8080), False)
expect("named egress port to an external dst never matches", admits([NAMED], NS, WEB, NET, 8080), False)
expect("named egress port resolves on the destination pod", admits([NAMED], NS, DB, WEB, 8080), True)

# endPort ranges and ports without a number.
RANGE = pol("range", "app", {"podSelector": {}, "ingress": [{"ports": [{"port": 32000, "endPort": 32768}]}]})
expect("endPort: lower bound", admits([RANGE], NS, NET, WEB, 32000), True)
expect("endPort: upper bound inclusive", admits([RANGE], NS, NET, WEB, 32768), True)
expect("endPort: just below", admits([RANGE], NS, NET, WEB, 31999), False)
expect("endPort: just above", admits([RANGE], NS, NET, WEB, 32769), False)
ANY_UDP = pol("any-udp", "app", {"podSelector": {}, "ingress": [{"ports": [{"protocol": "UDP"}]}]})
expect("port entry without port: any UDP port", admits([ANY_UDP], NS, NET, WEB, 12345, "UDP"), True)
expect("port entry without port: not TCP", admits([ANY_UDP], NS, NET, WEB, 12345, "TCP"), False)
ANY_TCP = pol("any-tcp", "app", {"podSelector": {}, "ingress": [{"ports": [{}]}]})
expect("empty port entry: any TCP port", admits([ANY_TCP], NS, NET, WEB, 1, "TCP"), True)
expect("empty port entry: not SCTP", admits([ANY_TCP], NS, NET, WEB, 1, "SCTP"), False)

# ipBlock with except, IPv4 and IPv6.
BLOCKS = pol("blocks", "app", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [
    {"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}},
    {"ipBlock": {"cidr": "2001:db8::/32", "except": ["2001:db8:dead::/48"]}}]}]})
expect("ipBlock v4 inside cidr", admits([BLOCKS], NS, WEB, {"external": "x", "ip": "10.2.3.4"}, 443), True)
expect("ipBlock v4 inside except", admits([BLOCKS], NS, WEB, {"external": "x", "ip": "10.1.3.4"}, 443), False)
expect("ipBlock v4 outside cidr", admits([BLOCKS], NS, WEB, {"external": "x", "ip": "192.168.0.1"}, 443), False)
expect("ipBlock v6 inside cidr", admits([BLOCKS], NS, WEB, {"external": "x", "ip": "2001:db8:1::1"}, 443), True)
expect("ipBlock v6 inside except", admits([BLOCKS], NS, WEB, {"external": "x", "ip": "2001:db8:dead::1"}, 443), False)
expect("ipBlock v6 outside cidr", admits([BLOCKS], NS, WEB, {"external": "x", "ip": "2001:db9::1"}, 443), False)
expect("ipBlock, external without ip", admits([BLOCKS], NS, WEB, NET, 443), True)
expect("ipBlock never matches a pod", admits([BLOCKS], NS, WEB, DB, 5432), False)
EXCEPT_ONLY = pol("v4-only", "app", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{"to": [
    {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}}]}]})
expect("0.0.0.0/0 except metadata: metadata blocked",
       admits([EXCEPT_ONLY], NS, WEB, {"external": "metadata", "ip": "169.254.169.254"}, 80), False)
expect("0.0.0.0/0 does not hold an IPv6 address", admits([EXCEPT_ONLY], NS, WEB, {"external": "x", "ip": "::1"}, 80), False)

# DNS: UDP and TCP 53 are different ports.
DNS_UDP = pol("dns", "app", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [{
    "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
    "ports": [{"port": 53, "protocol": "UDP"}]}]})
COREDNS = pod("kube-system", {"k8s-app": "kube-dns"})
expect("DNS over UDP 53 to kube-dns", admits([DNS_UDP], NS, WEB, COREDNS, 53, "UDP"), True)
expect("DNS over TCP 53 when only UDP is allowed", admits([DNS_UDP], NS, WEB, COREDNS, 53, "TCP"), False)
expect("UDP 53 to a non-DNS pod in kube-system", admits([DNS_UDP], NS, WEB, pod("kube-system", {"k8s-app": "x"}), 53, "UDP"), False)

# Manifests the API server rejects raise.
for what, bad in [
    ("an empty peer", pol("bad", "app", {"podSelector": {}, "ingress": [{"from": [{}]}]})),
    ("ipBlock with a selector", pol("bad", "app", {"podSelector": {}, "ingress": [{"from": [
        {"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]})),
    ("endPort with a named port", pol("bad", "app", {"podSelector": {}, "ingress": [{"ports": [
        {"port": "http", "endPort": 9000}]}]})),
    ("a policy without namespace", {"kind": "NetworkPolicy", "metadata": {"name": "x"}, "spec": {"podSelector": {}}}),
]:
    try:
        admits([bad], NS, NET, WEB, 8080)
        check(f"{what} raises ValueError", False, "no exception")
    except ValueError:
        check(f"{what} raises ValueError", True)

finish()
