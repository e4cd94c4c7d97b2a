//! Which variables with an agent's prefix are typos. `AGENT_WAIT_TIMOUT=5m` must fail loudly
//! rather than be ignored — but Kubernetes also puts variables with our prefix into every pod:
//! with `enableServiceLinks` (the default) each Service in the namespace becomes
//! `<NAME>_SERVICE_HOST`, `<NAME>_SERVICE_PORT[_<PORT NAME>]`, `<NAME>_PORT` and
//! `<NAME>_PORT_<N>_<PROTO>[_PROTO|_PORT|_ADDR]`, so a Service named `agent-health` (or
//! `agent-health-metrics`) would otherwise stop every pod of the namespace from starting.
//! Those are recognised by name *and* value shape, and ignored.

use std::net::{IpAddr, SocketAddr};

use crate::config::Problem;

/// The problems for `vars` with `prefix` that are neither in `known` nor service links: one per
/// unknown variable (with the closest known name when one is close), then one listing the known
/// names once.
pub fn unknown(prefix: &str, known: &[&str], vars: &[(String, String)]) -> Vec<Problem> {
    let mut problems: Vec<Problem> = Vec::new();
    for (name, value) in vars {
        if !name.starts_with(prefix) || known.contains(&name.as_str()) {
            continue;
        }
        if is_service_link(name, value) {
            tracing::debug!(variable = %name, "ignored: a Kubernetes service-link variable");
            continue;
        }
        let reason = match closest(name, known) {
            Some(k) => format!("unknown variable; did you mean {k}?"),
            None => "unknown variable".to_string(),
        };
        problems.push(Problem::without_value(name, reason));
    }
    if !problems.is_empty() {
        problems.push(Problem::without_value(format!("{prefix}*"), format!("known: {}", known.join(", "))));
    }
    problems
}

/// Whether `name=value` is one of the variables the kubelet injects for a Service. A Service's
/// own name may contain `_PORT_` or `_SERVICE_` too, so every reading of the name is tried.
pub fn is_service_link(name: &str, value: &str) -> bool {
    (name.ends_with("_SERVICE_HOST") && is_ip(value))
        || ((name.ends_with("_SERVICE_PORT") || name.contains("_SERVICE_PORT_")) && is_port(value))
        || (name.ends_with("_PORT") && is_proto_url(value))
        || name.match_indices("_PORT_").any(|(i, m)| is_port_variable(&name[i + m.len()..], value))
}

/// `<N>_<PROTO>` (a `proto://ip:port` value) or `<N>_<PROTO>_PROTO|_PORT|_ADDR`.
fn is_port_variable(tail: &str, value: &str) -> bool {
    let mut parts = tail.split('_');
    let (Some(number), Some(proto)) = (parts.next(), parts.next()) else { return false };
    if !is_port(number) || !is_protocol(&proto.to_ascii_lowercase()) {
        return false;
    }
    match (parts.next(), parts.next()) {
        (None, _) => is_proto_url(value),
        (Some("PROTO"), None) => is_protocol(value),
        (Some("PORT"), None) => is_port(value),
        (Some("ADDR"), None) => is_ip(value),
        _ => false,
    }
}

fn is_port(v: &str) -> bool {
    v.parse::<u16>().is_ok()
}

fn is_ip(v: &str) -> bool {
    v.parse::<IpAddr>().is_ok()
}

/// `tcp://10.0.0.1:8081`, `udp://[fd00::1]:53`.
fn is_proto_url(v: &str) -> bool {
    v.split_once("://").is_some_and(|(proto, addr)| is_protocol(proto) && addr.parse::<SocketAddr>().is_ok())
}

fn is_protocol(p: &str) -> bool {
    matches!(p, "tcp" | "udp" | "sctp")
}

/// The known name closest to `name` by edit distance, if it is close enough to be a typo.
fn closest<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= 3.max(k.len() / 5))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over bytes (the names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::vars_from as vars;

    /// What the kubelet injects for a Service `name` with a port 8081 named `http`.
    fn service_links(name: &str) -> Vec<(String, String)> {
        let n = name.to_ascii_uppercase().replace('-', "_");
        [
            ("_SERVICE_HOST", "10.96.0.12"),
            ("_SERVICE_PORT", "8081"),
            ("_SERVICE_PORT_HTTP", "8081"),
            ("_PORT", "tcp://10.96.0.12:8081"),
            ("_PORT_8081_TCP", "tcp://10.96.0.12:8081"),
            ("_PORT_8081_TCP_PROTO", "tcp"),
            ("_PORT_8081_TCP_PORT", "8081"),
            ("_PORT_8081_TCP_ADDR", "10.96.0.12"),
        ]
        .iter()
        .map(|(suffix, v)| (format!("{n}{suffix}"), v.to_string()))
        .collect()
    }

    #[test]
    fn service_links_are_not_typos() {
        for service in ["agent-wait", "agent-wait-metrics", "agent-port-forward"] {
            let v = service_links(service);
            assert_eq!(unknown("AGENT_WAIT_", &["AGENT_WAIT_TIMEOUT"], &v), [], "{service}");
        }
        let v6 = vars(&[
            ("AGENT_WAIT_SERVICE_HOST", "fd00::12"),
            ("AGENT_WAIT_PORT", "udp://[fd00::12]:53"),
            ("AGENT_WAIT_PORT_53_UDP_ADDR", "fd00::12"),
        ]);
        assert_eq!(unknown("AGENT_WAIT_", &[], &v6), []);
    }

    #[test]
    fn the_shape_without_the_value_is_still_a_typo() {
        let v = vars(&[("AGENT_WAIT_SERVICE_HOST", "my-host"), ("AGENT_WAIT_PORT_8081_TCP_PORT", "x")]);
        assert_eq!(unknown("AGENT_WAIT_", &[], &v).len(), 3);
    }

    #[test]
    fn typos_name_the_closest_known_variable_and_the_known_list_once() {
        let known = ["AGENT_WAIT_TIMEOUT", "AGENT_WAIT_TARGETS", "AGENT_WAIT_STRICT"];
        let v = vars(&[("AGENT_WAIT_TIMOUT", "5m"), ("AGENT_WAIT_TARGTS", "a:1"), ("AGENT_WAIT_X", "1")]);
        let p = unknown("AGENT_WAIT_", &known, &v);
        assert_eq!(p.len(), 4);
        assert_eq!(p[0].reason, "unknown variable; did you mean AGENT_WAIT_TIMEOUT?");
        assert_eq!(p[1].reason, "unknown variable; did you mean AGENT_WAIT_TARGETS?");
        assert_eq!(p[2].reason, "unknown variable");
        assert_eq!(p[3].name, "AGENT_WAIT_*");
        assert_eq!(p[3].reason, "known: AGENT_WAIT_TIMEOUT, AGENT_WAIT_TARGETS, AGENT_WAIT_STRICT");
    }

    #[test]
    fn distances() {
        assert_eq!(edit_distance("TIMOUT", "TIMEOUT"), 1);
        assert_eq!(edit_distance("", "ABC"), 3);
        assert_eq!(edit_distance("KITTEN", "SITTING"), 3);
    }
}
