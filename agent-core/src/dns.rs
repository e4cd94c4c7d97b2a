//! Name resolution with hickory, so static binaries resolve without glibc's NSS.
//!
//! The resolver is built from `/etc/resolv.conf` and `/etc/hosts` and kept while neither file
//! changes: before each lookup both are `stat`ed, and a change of modification time, size or
//! inode (the kubelet rewrites them, an operator may bind-mount new ones) rebuilds it. Reading
//! and parsing the files happens off the runtime's threads (`spawn_blocking`). The `stat` itself
//! stays on the lookup's thread: two metadata lookups of local files (the kubelet bind-mounts
//! both from the node's disk), served from the kernel's inode cache, cost about a microsecond —
//! less than handing them to a blocking thread, which is all `tokio::fs::metadata` would do.
//!
//! No answers are cached (`cache_size` 0): a Service that does not exist yet is looked up anew
//! on each attempt (the pain point of wait tools that resolve once).

use std::fmt;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::system_conf::parse_resolv_conf;
use hickory_resolver::{Hosts, TokioResolver};

use crate::config::{Problem, split_list};

/// Overrides the name servers for every agent: `ip[:port]`, comma or space separated.
pub const SERVERS_ENV: &str = "AGENT_DNS_SERVERS";
pub const RESOLV_CONF: &str = "/etc/resolv.conf";
pub const HOSTS: &str = "/etc/hosts";

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DnsError {
    #[error("dns: no such host {0:?}")]
    NoSuchHost(String),
    #[error("dns: cannot resolve {host:?}: {reason}")]
    Failed { host: String, reason: String },
    /// The attempt's time ran out while the name was still being looked up: the DNS server is
    /// silent, not the target.
    #[error("dns: no answer for {host:?} from {servers} within {}", humantime::format_duration(*after))]
    Silent { host: String, servers: String, after: Duration },
}

/// A resolver: the system's configuration, or explicit name servers. Clones share the built
/// resolver.
#[derive(Clone)]
pub struct Dns {
    servers: Option<Arc<[SocketAddr]>>,
    files: Arc<Files>,
    cache: Arc<Mutex<Option<Cached>>>,
    /// How many times the resolver was built (the files read), for tests and debugging.
    builds: Arc<AtomicUsize>,
}

/// Where the configuration is read from.
#[derive(Debug)]
struct Files {
    resolv_conf: PathBuf,
    hosts: PathBuf,
}

struct Cached {
    stamp: Stamp,
    resolver: TokioResolver,
    /// The name servers it asks, as an error message names them.
    servers: String,
}

/// What a file looked like when it was read; `None` when it could not be `stat`ed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    dev: u64,
    ino: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    resolv_conf: Option<FileStamp>,
    hosts: Option<FileStamp>,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    let m = fs::metadata(path).ok()?;
    Some(FileStamp { modified: m.modified().ok(), len: m.len(), dev: m.dev(), ino: m.ino() })
}

impl fmt::Debug for Dns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dns")
            .field("servers", &self.servers)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl Default for Dns {
    fn default() -> Self {
        Dns::system()
    }
}

impl Dns {
    fn new(servers: Option<Arc<[SocketAddr]>>, resolv_conf: PathBuf, hosts: PathBuf) -> Self {
        Dns {
            servers,
            files: Arc::new(Files { resolv_conf, hosts }),
            cache: Arc::default(),
            builds: Arc::default(),
        }
    }

    /// `/etc/resolv.conf` and `/etc/hosts`, re-read when they change.
    pub fn system() -> Self {
        Dns::new(None, RESOLV_CONF.into(), HOSTS.into())
    }

    /// As [`Dns::system`], from other files (tests, embedding).
    pub fn system_at(resolv_conf: impl Into<PathBuf>, hosts: impl Into<PathBuf>) -> Self {
        Dns::new(None, resolv_conf.into(), hosts.into())
    }

    /// These name servers (hosts file still honoured).
    pub fn with_servers(servers: Vec<SocketAddr>) -> Self {
        Dns::new(Some(servers.into()), RESOLV_CONF.into(), HOSTS.into())
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

    /// How many times the configuration files were read and the resolver built.
    pub fn builds(&self) -> usize {
        self.builds.load(Ordering::Relaxed)
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
        // Marked until an answer (or an error) comes: a lookup cut short by a timeout stays
        // marked, which is how [`Dns::within`] tells a silent DNS server.
        let resolver = self.resolver().await.map_err(failed)?;
        let pending = PENDING.try_with(Pending::clone).ok();
        if let Some(p) = &pending {
            p.set(Some(host.to_string()));
        }
        let found = resolver.lookup_ip(host).await;
        if let Some(p) = &pending {
            p.set(None);
        }
        match found {
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

    /// The cached resolver, or a new one when the files changed since it was built.
    async fn resolver(&self) -> Result<TokioResolver, String> {
        let stamp = self.stamp();
        if let Some(cached) = self.cache.lock().unwrap_or_else(PoisonError::into_inner).as_ref()
            && cached.stamp == stamp
        {
            return Ok(cached.resolver.clone());
        }
        // Stamped before reading: a change while reading leaves an older stamp than the content,
        // so the next lookup reads again — never the other way round.
        let (files, servers) = (self.files.clone(), self.servers.clone());
        let (config, opts, hosts) = tokio::task::spawn_blocking(move || read(&files, servers.as_deref()))
            .await
            .map_err(|e| format!("reading the resolver configuration failed: {e}"))??;
        let servers = describe(&config);
        let resolver = build(config, opts, hosts)?;
        self.builds.fetch_add(1, Ordering::Relaxed);
        *self.cache.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(Cached { stamp, resolver: resolver.clone(), servers });
        Ok(resolver)
    }

    /// Runs `work` within `timeout`. When the time runs out while a lookup made in it (through
    /// [`Dns::lookup`], also for the HTTP client) is still waiting for the DNS server, the error
    /// is [`DnsError::Silent`], naming the servers; otherwise `None`: the target was slow.
    pub async fn within<T>(
        &self,
        timeout: Duration,
        work: impl Future<Output = T>,
    ) -> Result<T, Option<DnsError>> {
        let pending = Pending::default();
        match tokio::time::timeout(timeout, PENDING.scope(pending.clone(), work)).await {
            Ok(done) => Ok(done),
            Err(_) => Err(self.silent(&pending, timeout)),
        }
    }

    /// Inside [`Dns::within`]: whether a lookup was cut short by a timeout of `after` (one
    /// inside the work, such as the HTTP client's connect timeout).
    pub fn cut_short(&self, after: Duration) -> Option<DnsError> {
        PENDING.try_with(|pending| self.silent(pending, after)).ok().flatten()
    }

    fn silent(&self, pending: &Pending, after: Duration) -> Option<DnsError> {
        let host = pending.host()?;
        Some(DnsError::Silent { host, servers: self.servers_described(), after })
    }

    /// The name servers, as [`DnsError::Silent`] names them.
    fn servers_described(&self) -> String {
        let cached = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        match cached.as_ref() {
            Some(c) => c.servers.clone(),
            None => format!("the DNS servers of {}", self.files.resolv_conf.display()),
        }
    }

    fn stamp(&self) -> Stamp {
        Stamp {
            // Explicit servers: resolv.conf is not read, so its changes do not matter.
            resolv_conf: self.servers.is_none().then(|| stamp(&self.files.resolv_conf)).flatten(),
            hosts: stamp(&self.files.hosts),
        }
    }
}

tokio::task_local! {
    /// The lookup under way in a [`Dns::within`], if any.
    static PENDING: Pending;
}

#[derive(Clone, Default)]
struct Pending(Arc<Mutex<Option<String>>>);

impl Pending {
    fn set(&self, host: Option<String>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = host;
    }

    fn host(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// "the DNS server 10.96.0.10:53", "the DNS servers 10.0.0.2:53, 10.0.0.3:53".
fn describe(config: &ResolverConfig) -> String {
    let addrs: Vec<String> = config
        .name_servers()
        .iter()
        .map(|ns| {
            let port = ns.connections.first().map_or(53, |c| c.port);
            SocketAddr::new(ns.ip, port).to_string()
        })
        .collect();
    match addrs.len() {
        0 => "no DNS server (none configured)".to_string(),
        1 => format!("the DNS server {}", addrs[0]),
        _ => format!("the DNS servers {}", addrs.join(", ")),
    }
}

/// Reads and parses the configuration (blocking).
fn read(
    files: &Files,
    servers: Option<&[SocketAddr]>,
) -> Result<(ResolverConfig, ResolverOpts, Hosts), String> {
    let (config, opts) = match servers {
        None => {
            let cannot = |e: &dyn fmt::Display| {
                format!("cannot read the resolver configuration {}: {e}", files.resolv_conf.display())
            };
            let text = fs::read(&files.resolv_conf).map_err(|e| cannot(&e))?;
            parse_resolv_conf(text).map_err(|e| cannot(&e))?
        }
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
            (ResolverConfig::from_name_servers(name_servers), ResolverOpts::default())
        }
    };
    // No hosts file (a scratch image) is no hosts entries, as hickory itself treats it.
    let mut hosts = Hosts::default();
    if let Err(e) = fs::File::open(&files.hosts).and_then(|f| hosts.read_hosts_conf(f)) {
        tracing::debug!(path = %files.hosts.display(), error = %e, "no hosts file entries");
        hosts = Hosts::default();
    }
    Ok((config, opts, hosts))
}

fn build(config: ResolverConfig, mut opts: ResolverOpts, hosts: Hosts) -> Result<TokioResolver, String> {
    opts.cache_size = 0;
    // The hosts file is read above, off the runtime's threads; left to hickory, `build` would
    // read /etc/hosts itself, here.
    opts.use_hosts_file = ResolveHosts::Never;
    let mut resolver = TokioResolver::builder_with_config(config, TokioRuntimeProvider::default())
        .with_options(opts)
        .build()
        .map_err(|e| e.to_string())?;
    resolver.set_hosts(Arc::new(hosts));
    Ok(resolver)
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
    async fn a_lookup_cut_short_names_the_silent_dns_server() {
        // Bound and never read: queries go unanswered, as with a DNS server that is down.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = silent.local_addr().expect("addr");
        let dns = Dns::with_servers(vec![addr]);
        let after = Duration::from_millis(300);
        let got = dns.within(after, dns.lookup("ds.test", 1)).await;
        let servers = format!("the DNS server {addr}");
        assert_eq!(got, Err(Some(DnsError::Silent { host: "ds.test".into(), servers, after })));
        assert_eq!(
            got.unwrap_err().expect("silent").to_string(),
            format!("dns: no answer for \"ds.test\" from the DNS server {addr} within 300ms")
        );
        // Time running out after the lookup, or with no lookup at all, is the target's.
        let literal = dns.within(after, async {
            dns.lookup("127.0.0.1", 1).await.expect("a literal");
            std::future::pending::<()>().await
        });
        assert_eq!(literal.await, Err(None));
    }

    #[tokio::test]
    async fn literals_and_localhost_need_no_server() {
        let dns = Dns::with_servers(vec![]);
        assert_eq!(dns.lookup("10.1.2.3", 80).await, Ok(vec!["10.1.2.3:80".parse().expect("addr")]));
        assert_eq!(dns.lookup("[::1]", 80).await, Ok(vec!["[::1]:80".parse().expect("addr")]));
        assert_eq!(dns.lookup("LOCALHOST", 1).await.map(|a| a.len()), Ok(2));
    }

    fn write_at(path: &Path, text: &str, modified: SystemTime) {
        fs::write(path, text).expect("write");
        fs::File::options().write(true).open(path).and_then(|f| f.set_modified(modified)).expect("mtime");
    }

    #[tokio::test]
    async fn the_files_are_read_again_only_when_they_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (resolv, hosts) = (dir.path().join("resolv.conf"), dir.path().join("hosts"));
        // No name server answers there: every name below comes from the hosts file, for both
        // address families (else the AAAA query would wait for the server's timeout).
        fs::write(&resolv, "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n").expect("write");
        let t0 = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        write_at(&hosts, "10.1.1.1 svc.test\nfd00::1 svc.test\n", t0);
        let dns = Dns::system_at(&resolv, &hosts);
        let ip = |dns: &Dns, host: &'static str| {
            let dns = dns.clone();
            async move {
                let found = dns.lookup(host, 80).await?;
                Ok::<_, DnsError>(found.iter().find(|a| a.is_ipv4()).map(|a| a.ip().to_string()))
            }
        };
        assert_eq!(ip(&dns, "svc.test").await, Ok(Some("10.1.1.1".into())));
        assert_eq!(ip(&dns, "svc.test").await, Ok(Some("10.1.1.1".into())));
        assert_eq!(dns.clone().builds(), 1, "unchanged files are not read again; clones share");

        // A new entry (a longer file).
        write_at(&hosts, "10.1.1.1 svc.test\nfd00::1 svc.test\n10.2.2.2 new.test\nfd00::2 new.test\n", t0);
        assert_eq!(ip(&dns, "new.test").await, Ok(Some("10.2.2.2".into())));
        assert_eq!(dns.builds(), 2);
        // The same size, a new modification time.
        write_at(
            &hosts,
            "10.1.1.1 svc.test\nfd00::1 svc.test\n10.3.3.3 new.test\nfd00::2 new.test\n",
            t0 + std::time::Duration::from_secs(1),
        );
        assert_eq!(ip(&dns, "new.test").await, Ok(Some("10.3.3.3".into())));
        // The same size and time, but a new file renamed into place (a new inode).
        let next = dir.path().join("hosts.new");
        write_at(
            &next,
            "10.1.1.1 svc.test\nfd00::1 svc.test\n10.4.4.4 new.test\nfd00::2 new.test\n",
            t0 + std::time::Duration::from_secs(1),
        );
        fs::rename(&next, &hosts).expect("rename");
        assert_eq!(ip(&dns, "new.test").await, Ok(Some("10.4.4.4".into())));
        assert_eq!(dns.builds(), 4);
        // resolv.conf counts too.
        fs::write(&resolv, "nameserver 127.0.0.1\noptions timeout:2 attempts:1\n").expect("write");
        assert_eq!(ip(&dns, "svc.test").await, Ok(Some("10.1.1.1".into())));
        assert_eq!(dns.builds(), 5);
        assert_eq!(ip(&dns, "svc.test").await, Ok(Some("10.1.1.1".into())));
        assert_eq!(dns.builds(), 5);
    }

    #[tokio::test]
    async fn missing_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (resolv, hosts) = (dir.path().join("resolv.conf"), dir.path().join("hosts"));
        let dns = Dns::system_at(&resolv, &hosts);
        let e = dns.lookup("svc.test", 1).await.expect_err("no resolv.conf");
        assert!(e.to_string().contains("cannot read the resolver configuration"), "{e}");
        assert_eq!(dns.builds(), 0, "a failed read is tried again");
        // Once it appears it is read; no hosts file is no entries, not an error.
        fs::write(&resolv, "nameserver 127.0.0.1\n").expect("write");
        assert!(dns.resolver().await.is_ok());
        assert_eq!(dns.builds(), 1);
        fs::write(&hosts, "10.9.9.9 svc.test\nfd00::9 svc.test\n").expect("write");
        let mut found = dns.lookup("svc.test", 1).await.expect("found");
        found.sort();
        assert_eq!(found, ["10.9.9.9:1".parse().expect("addr"), "[fd00::9]:1".parse().expect("addr")]);
        assert_eq!(dns.builds(), 2, "a hosts file that appears is read");
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
