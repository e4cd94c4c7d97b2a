"""An exact evaluator of Kubernetes NetworkPolicy (networking.k8s.io/v1) semantics, for manifest
checkers: does a set of policies admit the connection src -> dst:port/protocol?
Pure functions, no IO, standard library only.

Policies are NetworkPolicy dicts as rendered YAML, each with metadata.namespace (a ValueError
otherwise, or when a dict's kind is not NetworkPolicy). namespaces is {name: labels}; the
evaluator sets kubernetes.io/metadata.name=<name> on each itself, as the API server does, and
a namespace missing from the dict has just that label.

An endpoint is either a pod, {"namespace": str, "labels": {..}, "ports": [{name, containerPort,
protocol}]} ("labels" and "ports" optional; "ports" only matters for named ports when the pod is
the destination), or something outside the cluster, {"external": "a description", "ip": "..."}
("ip" optional, IPv4 or IPv6).

The rules (Kubernetes docs, "Network Policies"): a pod is isolated for ingress (egress) iff a
policy of its own namespace selects it with Ingress (Egress) among its policyTypes; without
policyTypes (or with an empty list) a policy has Ingress, plus Egress when its egress list is not
empty. A connection is allowed iff the source side admits it (src external, or not
egress-isolated, or an egress rule of a policy isolating it admits dst:port) and the destination
side does too (dst external, or not ingress-isolated, or an ingress rule admits src:port).
A rule without from/to admits every peer, without ports every port.

Simplifications:
- ipBlock peers match only external endpoints, never pods: we never put pod IPs in ipBlocks.
  An external endpoint without "ip" is matched by every ipBlock; with one, by the blocks whose
  cidr contains it and none of whose excepts do.
- Host-network and node traffic (kubelet probes) is not modelled: most CNIs always admit a
  node's own traffic to its pods, whatever the policies say.
- Manifests the API server would reject (an empty peer, an ipBlock next to a selector, endPort
  with a named port, an unknown selector operator) raise ValueError rather than being guessed at.
"""

import ipaddress

NAME_LABEL = "kubernetes.io/metadata.name"
DIRECTIONS = ("Ingress", "Egress")


def selector_matches(selector, labels):
    """Whether a LabelSelector ({matchLabels, matchExpressions}; {} or None: everything) matches
    labels (all its terms must hold)."""
    selector = selector or {}
    labels = labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            ok = key in labels and labels[key] in values
        elif op == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif op == "Exists":
            ok = key in labels
        elif op == "DoesNotExist":
            ok = key not in labels
        else:
            raise ValueError(f"unknown LabelSelector operator {op!r}")
        if not ok:
            return False
    return True


def namespace_labels(namespaces, name):
    """The labels of namespace `name`, with the automatic kubernetes.io/metadata.name."""
    return {**(namespaces.get(name) or {}), NAME_LABEL: name}


def is_pod(endpoint):
    return "external" not in endpoint


def policy_name(policy):
    meta = policy.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def _namespace_of(policy):
    if policy.get("kind", "NetworkPolicy") != "NetworkPolicy":
        raise ValueError(f"not a NetworkPolicy: {policy.get('kind')} {policy_name(policy)}")
    ns = (policy.get("metadata") or {}).get("namespace")
    if not ns:
        raise ValueError(f"NetworkPolicy {policy_name(policy)} has no metadata.namespace")
    return ns


def policy_types(policy):
    """spec.policyTypes, or its default: Ingress, plus Egress when spec.egress is not empty."""
    spec = policy.get("spec") or {}
    types = spec.get("policyTypes")
    if not types:
        types = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
    return list(types)


def isolating(policies, pod, direction):
    """The policies that select `pod` for `direction` ("Ingress" or "Egress"): the pod is
    isolated in that direction iff this list is not empty."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    if not is_pod(pod):
        return []
    return [
        p for p in policies
        if _namespace_of(p) == pod["namespace"]
        and direction in policy_types(p)
        and selector_matches((p.get("spec") or {}).get("podSelector"), pod.get("labels"))
    ]


def isolated(policies, pod, direction):
    """Whether `pod` is isolated for `direction` ("Ingress" or "Egress")."""
    return bool(isolating(policies, pod, direction))


def peer_matches(peer, policy_ns, namespaces, endpoint):
    """Whether one from/to entry of a policy in namespace policy_ns matches endpoint."""
    block = peer.get("ipBlock")
    pod_sel, ns_sel = peer.get("podSelector"), peer.get("namespaceSelector")
    if block is not None:
        if pod_sel is not None or ns_sel is not None:
            raise ValueError(f"a peer with ipBlock and a selector: {peer}")
        return not is_pod(endpoint) and ip_block_matches(block, endpoint.get("ip"))
    if pod_sel is None and ns_sel is None:
        raise ValueError(f"an empty peer: {peer}")
    if not is_pod(endpoint):
        return False
    ns = endpoint["namespace"]
    if ns_sel is None and ns != policy_ns:
        return False
    if ns_sel is not None and not selector_matches(ns_sel, namespace_labels(namespaces, ns)):
        return False
    return pod_sel is None or selector_matches(pod_sel, endpoint.get("labels"))


def ip_block_matches(block, ip):
    """Whether an ipBlock {cidr, except} holds address ip (None: an unknown address, matched)."""
    net = ipaddress.ip_network(block["cidr"], strict=False)
    excepts = [ipaddress.ip_network(e, strict=False) for e in block.get("except") or []]
    if ip is None:
        return True
    addr = ipaddress.ip_address(ip)

    def within(n):
        return n.version == addr.version and addr in n

    return within(net) and not any(within(e) for e in excepts)


def port_matches(entry, dst, port, protocol):
    """Whether a NetworkPolicyPort {protocol, port, endPort} admits port/protocol on dst."""
    if entry.get("protocol", "TCP") != protocol:
        return False
    want, end = entry.get("port"), entry.get("endPort")
    if want is None:
        return True
    if isinstance(want, str):
        if want.isdigit():
            raise ValueError(f"port {want!r} is a string: a named port needs a letter")
        if end is not None:
            raise ValueError(f"endPort with the named port {want!r}")
        return is_pod(dst) and any(
            c.get("name") == want and c.get("protocol", "TCP") == protocol and c.get("containerPort") == port
            for c in dst.get("ports") or []
        )
    return want <= port <= end if end is not None else want == port


def rule_admits(rule, peers_key, policy_ns, namespaces, peer, dst, port, protocol):
    """Whether one ingress (peers_key "from") or egress ("to") rule admits peer and
    dst's port/protocol."""
    peers = rule.get(peers_key) or []
    ports = rule.get("ports") or []
    return (not peers or any(peer_matches(p, policy_ns, namespaces, peer) for p in peers)) and (
        not ports or any(port_matches(e, dst, port, protocol) for e in ports)
    )


def side_admits(policies, namespaces, pod, direction, other, dst, port, protocol):
    """(ok, why) for one side: pod's isolation for direction, other being the far end."""
    if not is_pod(pod):
        return True, f"{direction.lower()}: {pod['external']} is outside the cluster"
    isolators = isolating(policies, pod, direction)
    if not isolators:
        return True, f"{direction.lower()}: no policy isolates {pod['namespace']} pod {pod.get('labels')}"
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for p in isolators:
        for i, rule in enumerate((p.get("spec") or {}).get(rules_key) or []):
            if rule_admits(rule, peers_key, _namespace_of(p), namespaces, other, dst, port, protocol):
                return True, f"{direction.lower()}: {policy_name(p)} {rules_key}[{i}] admits it"
    names = ", ".join(policy_name(p) for p in isolators)
    return False, f"{direction.lower()} of {pod['namespace']} pod {pod.get('labels')}: isolated by {names}, no rule admits it"


def admits(policies, namespaces, src, dst, port, protocol="TCP"):
    """Whether the connection src -> dst:port/protocol is allowed by policies: (ok, why), why
    naming what admitted it or the side (and its isolating policies) that blocks it."""
    egress = side_admits(policies, namespaces, src, "Egress", dst, dst, port, protocol)
    ingress = side_admits(policies, namespaces, dst, "Ingress", src, dst, port, protocol)
    blocked = [why for ok, why in (egress, ingress) if not ok]
    if blocked:
        return False, "; ".join(blocked)
    return True, f"{egress[1]}; {ingress[1]}"
