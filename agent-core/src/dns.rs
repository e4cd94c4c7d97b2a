//! Name resolution with hickory, so static binaries resolve without glibc's NSS. Every lookup
//! builds a fresh resolver: it re-reads `/etc/resolv.conf` and `/etc/hosts` and keeps no cache,
//! so a Service that does not exist yet is looked up anew on each attempt (the pain point of
//! wait tools that resolve once).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

use crate::config::{Problem, split_list};

/// Overrides the name servers for every agent: `ip[:port]`, comma or space separated.
pub const SERVERS_ENV: &str = "AGENT_DNS_SERVERS";

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DnsError {
    #[error("dns: no such host {0:?}")]
    NoSuchHost(String),
    #[error("dns: cannot resolve {host:?}: {reason}")]
    Failed { host: String, reason: String },
}

/// A resolver: the system's configuration, or explicit name servers.
#[derive(Debug, Clone, Default)]
pub struct Dns {
    servers: Option<Arc<[SocketAddr]>>,
}

impl Dns {
    /// `/etc/resolv.conf` and `/etc/hosts`, re-read on every lookup.
    pub fn system() -> Self {
        Dns { servers: None }
    }

    /// These name servers (hosts file still honoured).
    pub fn with_servers(servers: Vec<SocketAddr>) -> Self {
        Dns { servers: Some(servers.into()) }
    }

    /// From `AGENT_DNS_SERVERS` when set and non-empty, else the system configuration.
    pub fn from_vars<'a>(mut vars: impl Iterator<Item = (&'a str, &'a str)>) -> Result<Self, Problem> {
        let Some((_, value)) = vars.find(|(k, v)| *k == SERVERS_ENV && !v.trim().is_empty()) else {
            return Ok(Dns::system());
        };
        let servers = split_list(value)
            .map(|s| {
                s.parse::<SocketAddr>()
                    .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                    .map_err(|_| Problem::new(SERVERS_ENV, value, format!("{s:?} is not ip[:port]")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Dns::with_servers(servers))
    }

    /// The addresses of `host` (a name or an IP literal), with `port`.
    pub async fn lookup(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, DnsError> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        // RFC 6761: localhost is always loopback, even in a scratch image without /etc/hosts.
        if host.eq_ignore_ascii_case("localhost") {
            return Ok(vec![
                SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port),
                SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port),
            ]);
        }
        let failed = |reason: String| DnsError::Failed { host: host.to_string(), reason };
        let resolver = self.resolver().map_err(failed)?;
        match resolver.lookup_ip(host).await {
            Ok(found) => {
                let addrs: Vec<SocketAddr> = found.iter().map(|ip| SocketAddr::new(ip, port)).collect();
                if addrs.is_empty() { Err(DnsError::NoSuchHost(host.to_string())) } else { Ok(addrs) }
            }
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => {
                Err(DnsError::NoSuchHost(host.to_string()))
            }
            Err(e) => Err(failed(e.to_string())),
        }
    }

    fn resolver(&self) -> Result<TokioResolver, String> {
        let mut builder = match &self.servers {
            None => TokioResolver::builder_tokio()
                .map_err(|e| format!("cannot read the system resolver configuration: {e}"))?,
            Some(servers) => {
                let name_servers = servers
                    .iter()
                    .map(|addr| {
                        let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
                        for c in &mut ns.connections {
                            c.port = addr.port();
                        }
                        ns
                    })
                    .collect();
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(name_servers),
                    TokioRuntimeProvider::default(),
                )
            }
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.cache_size = 0;
        builder.build().map_err(|e| e.to_string())
    }
}

impl reqwest::dns::Resolve for Dns {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let dns = self.clone();
        Box::pin(async move {
            // reqwest fills in the port; 0 here.
            let addrs = dns.lookup(name.as_str(), 0).await?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literals_and_localhost_need_no_server() {
        let dns = Dns::with_servers(vec![]);
        assert_eq!(dns.lookup("10.1.2.3", 80).await, Ok(vec!["10.1.2.3:80".parse().expect("addr")]));
        assert_eq!(dns.lookup("[::1]", 80).await, Ok(vec!["[::1]:80".parse().expect("addr")]));
        assert_eq!(dns.lookup("LOCALHOST", 1).await.map(|a| a.len()), Ok(2));
    }

    #[test]
    fn servers_from_env() {
        let vars = [("AGENT_DNS_SERVERS", "127.0.0.1:5353, 10.0.0.10")];
        let dns = Dns::from_vars(vars.iter().copied()).expect("valid");
        let servers: Vec<String> = dns.servers.expect("set").iter().map(|s| s.to_string()).collect();
        assert_eq!(servers, ["127.0.0.1:5353", "10.0.0.10:53"]);
        let bad = [("AGENT_DNS_SERVERS", "dns.local")];
        assert!(Dns::from_vars(bad.iter().copied()).unwrap_err().reason.contains("\"dns.local\""));
    }
}
