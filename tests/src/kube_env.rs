//! The environment the kubelet gives a pod: with `enableServiceLinks` (the default) every
//! Service of the namespace becomes a set of variables in every container.

/// The service-link variables of a Service `name` at `ip` with ports `http` 8081 (TCP) and
/// `metrics` 9090 (TCP), exactly as the kubelet names and fills them.
pub fn service_links(name: &str, ip: &str) -> Vec<(String, String)> {
    let n = name.to_ascii_uppercase().replace('-', "_");
    let mut vars = vec![
        (format!("{n}_SERVICE_HOST"), ip.to_string()),
        (format!("{n}_SERVICE_PORT"), "8081".to_string()),
        (format!("{n}_PORT"), format!("tcp://{}:8081", bracketed(ip))),
    ];
    for (port_name, port) in [("HTTP", 8081), ("METRICS", 9090)] {
        let url = format!("tcp://{}:{port}", bracketed(ip));
        vars.extend([
            (format!("{n}_SERVICE_PORT_{port_name}"), port.to_string()),
            (format!("{n}_PORT_{port}_TCP"), url),
            (format!("{n}_PORT_{port}_TCP_PROTO"), "tcp".to_string()),
            (format!("{n}_PORT_{port}_TCP_PORT"), port.to_string()),
            (format!("{n}_PORT_{port}_TCP_ADDR"), ip.to_string()),
        ]);
    }
    vars
}

fn bracketed(ip: &str) -> String {
    if ip.contains(':') { format!("[{ip}]") } else { ip.to_string() }
}
