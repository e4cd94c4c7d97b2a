//! The egress proxy between agent-logship and Elasticsearch: which requests go through it (the
//! `NO_PROXY` rule), its credentials, and its own failures told apart from Elasticsearch's.
//!
//! Only the Elasticsearch sink uses a proxy. Health checks (agent-wait, agent-health) and the
//! Kubernetes API client go direct whatever the environment says: they talk to pods and Services
//! inside the cluster, where a proxy could only add a way to fail, and a `NO_PROXY` list rarely
//! covers every pod address and Service name.

use std::net::IpAddr;
use std::path::PathBuf;

use url::Url;

/// Where the proxy is and for which URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyOptions {
    /// For `http://` URLs of Elasticsearch (the request forwarded as is).
    pub http: Option<Url>,
    /// For `https://` URLs (a tunnel through `CONNECT`, TLS inside it).
    pub https: Option<Url>,
    /// Hosts reached without the proxy.
    pub no_proxy: NoProxy,
    /// Basic credentials for the proxy, each read from its file.
    pub auth: Option<ProxyAuth>,
}

/// The proxy's basic credentials: a user-name file and a password file (a mounted Secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyAuth {
    pub username_file: PathBuf,
    pub password_file: PathBuf,
}

impl ProxyOptions {
    /// The proxy that `url` goes through, or `None` when it goes direct. Link-local addresses
    /// always go direct: no proxy can reach the node's own (the EKS Pod Identity agent at
    /// `169.254.170.23`, `fd00:ec2::23` being in no proxy's reach either, it is listed too).
    pub fn for_url(&self, url: &Url) -> Option<&Url> {
        let local = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_link_local(),
            Some(url::Host::Ipv6(ip)) => {
                (ip.segments()[0] & 0xffc0) == 0xfe80 || ip.segments()[..2] == [0xfd00, 0x0ec2]
            }
            _ => false,
        };
        if local {
            return None;
        }
        let proxy = match url.scheme() {
            "https" => self.https.as_ref(),
            _ => self.http.as_ref(),
        }?;
        (!self.no_proxy.matches(url)).then_some(proxy)
    }

    /// For the log: the proxies without their credentials, and whether `NO_PROXY` has entries.
    pub fn describe(&self) -> String {
        let shown = |u: &Option<Url>| {
            u.as_ref().map_or("direct".to_string(), |u| agent_core::redact::url(u.as_str()))
        };
        let bypass = if self.no_proxy.entries.is_empty() { "" } else { " (NO_PROXY)" };
        format!("https: {}, http: {}{bypass}", shown(&self.https), shown(&self.http))
    }

    /// The standard variables (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, upper or lower case, the
    /// upper case first), as curl and most tools read them; `None` when neither proxy is set.
    pub fn from_env(vars: &[(String, String)]) -> Result<Option<ProxyOptions>, String> {
        let var = |names: [&str; 2]| {
            names
                .iter()
                .find_map(|n| vars.iter().find(|(k, v)| k == n && !v.trim().is_empty()))
                .map(|(k, v)| (k, v))
        };
        let proxy = |names| {
            var(names)
                .map(|(name, value)| parse_proxy(value).map_err(|why| format!("{name}: {why}")))
                .transpose()
        };
        let https = proxy(["HTTPS_PROXY", "https_proxy"])?;
        let http = proxy(["HTTP_PROXY", "http_proxy"])?;
        if https.is_none() && http.is_none() {
            return Ok(None);
        }
        let no_proxy =
            var(["NO_PROXY", "no_proxy"]).map_or_else(NoProxy::default, |(_, v)| NoProxy::parse(v));
        Ok(Some(ProxyOptions { http, https, no_proxy, auth: None }))
    }
}

/// A proxy's URL: `http://host:port` (or `https://`, TLS to the proxy itself); without a scheme,
/// `http://` is meant, as curl reads `HTTPS_PROXY=proxy:3128`.
pub fn parse_proxy(text: &str) -> Result<Url, String> {
    let text = text.trim();
    let with_scheme = if text.contains("://") { text.to_string() } else { format!("http://{text}") };
    match Url::parse(&with_scheme) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(u),
        Ok(u) if !matches!(u.scheme(), "http" | "https") => Err(format!(
            "{}: a proxy is http:// or https:// (not {})",
            agent_core::redact::url(text),
            u.scheme()
        )),
        _ => Err(format!("{}: not a proxy URL (http://host:port)", agent_core::redact::url(text))),
    }
}

/// A `NO_PROXY` list: `*` (everything), host names that match themselves and their subdomains
/// (`example.com` and `.example.com` both match `es.example.com`), IP addresses, and CIDR ranges
/// (`10.0.0.0/8`, `fd00::/8`). Case does not matter; a port in an entry is ignored, as curl does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    All,
    Domain(String),
    Ip(IpAddr),
    Cidr(IpAddr, u8),
}

impl NoProxy {
    pub fn parse(text: &str) -> NoProxy {
        // `*` alone means every host; in a list, curl takes it for no entry.
        if text.trim() == "*" {
            return NoProxy { entries: vec![Entry::All] };
        }
        let entries = text.split([',', ' ']).map(str::trim).filter_map(Self::entry).collect();
        NoProxy { entries }
    }

    /// One entry; `None` for one that can match nothing (`*` in a list, `.`, a bad range).
    fn entry(e: &str) -> Option<Entry> {
        if let Some((ip, bits)) = e.split_once('/') {
            let ip = ip.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok()?;
            let bits = bits.parse::<u8>().ok().filter(|&b| b <= if ip.is_ipv4() { 32 } else { 128 })?;
            return Some(Entry::Cidr(ip, bits));
        }
        let host = e.trim_start_matches("*.").trim_start_matches('.');
        // `[::1]:9200`, `10.0.0.1:9200`, `host:9200`: the port is ignored.
        let host = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(v6),
            None if host.matches(':').count() == 1 => host.split(':').next().unwrap_or(host),
            None => host,
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Some(Entry::Ip(ip));
        }
        // A fully qualified name's trailing dot is the same name.
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        (!host.is_empty() && host != "*").then_some(Entry::Domain(host))
    }

    /// Whether `url` is reached without the proxy.
    pub fn matches(&self, url: &Url) -> bool {
        let host = match url.host() {
            Some(url::Host::Domain(d)) => Host::Name(d.trim_end_matches('.').to_ascii_lowercase()),
            Some(url::Host::Ipv4(ip)) => Host::Ip(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Host::Ip(IpAddr::V6(ip)),
            None => return false,
        };
        self.entries.iter().any(|entry| match (entry, &host) {
            (Entry::All, _) => true,
            (Entry::Domain(d), Host::Name(h)) => {
                h == d
                    || (h.len() > d.len()
                        && h.ends_with(d.as_str())
                        && h.as_bytes()[h.len() - d.len() - 1] == b'.')
            }
            (Entry::Ip(ip), Host::Ip(h)) => ip == h,
            (Entry::Cidr(net, bits), Host::Ip(h)) => in_range(*h, *net, *bits),
            _ => false,
        })
    }
}

enum Host {
    Name(String),
    Ip(IpAddr),
}

fn in_range(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let prefix = |a: u128, b: u128, width: u32| {
        let bits = u32::from(bits).min(width);
        bits == 0 || (a ^ b) >> (width - bits) == 0
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => prefix(u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => prefix(u128::from(a), u128::from(b), 128),
        _ => false,
    }
}

/// How the proxy failed: its own failure, not Elasticsearch's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyFailure {
    /// 407: it wants credentials, or refused the ones given (by `CONNECT`, some proxies answer a
    /// wrong password with 401: then [`ProxyFailure::Refused`]).
    Auth,
    /// It refused: the tunnel's `CONNECT` answered with an error other than 407 (403 for a
    /// denied destination, 502 or 503 when it cannot reach Elasticsearch, 401 from a proxy that
    /// answers a wrong password so), or a forwarded request answered 403 by the proxy itself.
    Refused,
    /// It closed the connection while the tunnel was being set up.
    Closed,
    /// It could not be reached.
    Unreachable,
    /// It answered a forwarded (`http://`) request with a 5xx page of its own (it cannot reach
    /// Elasticsearch, or is overloaded).
    Status(u16),
}

impl ProxyFailure {
    /// Tells a proxy's failure from the text of a request error (its whole chain of causes):
    /// the tunnel's errors are hyper-util's, which it does not export as types.
    pub fn of_error(chain: &str) -> Option<ProxyFailure> {
        let (_, tunnel) = chain.split_once("tunnel error: ")?;
        Some(if tunnel.starts_with("proxy authorization required") {
            ProxyFailure::Auth
        } else if tunnel.starts_with("unsuccessful") {
            ProxyFailure::Refused
        } else if tunnel.starts_with("failed to create underlying connection") {
            ProxyFailure::Unreachable
        } else {
            ProxyFailure::Closed
        })
    }

    /// Tells a proxy's own answer to a forwarded request (`from_elasticsearch`: the answer has
    /// Elasticsearch's product header or error body): 407, and a 403 or 5xx of its own. A 401 is
    /// left to be Elasticsearch's: OpenSearch's carries no body of its kind, and taking it for
    /// the proxy's would retry a wrong password quickly (a realm may lock the account).
    pub fn of_answer(status: u16, from_elasticsearch: bool) -> Option<ProxyFailure> {
        match status {
            407 => Some(ProxyFailure::Auth),
            _ if from_elasticsearch => None,
            403 => Some(ProxyFailure::Refused),
            500..=599 => Some(ProxyFailure::Status(status)),
            _ => None,
        }
    }

    /// Its place in [`ProxyFailure::LABELS`] (the `reason` of `agent_logship_proxy_failures_total`).
    pub fn index(self) -> usize {
        match self {
            ProxyFailure::Auth => 0,
            ProxyFailure::Refused => 1,
            ProxyFailure::Closed => 2,
            ProxyFailure::Unreachable => 3,
            ProxyFailure::Status(_) => 4,
        }
    }

    /// Every label, for `/metrics` to show each from the start.
    pub const LABELS: [&'static str; 5] = ["auth", "refused", "closed", "unreachable", "status"];
}

impl std::fmt::Display for ProxyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxyFailure::Auth => f.write_str("the proxy wants credentials, or refused the ones given (407)"),
            ProxyFailure::Refused => {
                f.write_str("the proxy refused the tunnel to Elasticsearch (a destination it denies, or one it cannot reach)")
            }
            ProxyFailure::Closed => f.write_str("the proxy closed the connection while the tunnel was being set up"),
            ProxyFailure::Unreachable => f.write_str("the proxy cannot be reached"),
            ProxyFailure::Status(s) => write!(f, "the proxy answered {s} with a page of its own, not Elasticsearch's"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(u: &str) -> Url {
        u.parse().expect("url")
    }

    #[test]
    fn no_proxy_matches_hosts_their_subdomains_addresses_and_ranges() {
        let np = NoProxy::parse(
            ".svc.cluster.local, example.com,10.0.0.0/8 ,192.168.1.7, fd00::/8, [::1], es-int:9200",
        );
        for yes in [
            "https://es.logging.svc.cluster.local:9200",
            "https://example.com",
            "https://ES.Example.COM:9200",
            "http://10.1.2.3:9200",
            "https://192.168.1.7",
            "https://[fd12::1]:9200",
            "https://[::1]:9200",
            "https://es-int:9200",
        ] {
            assert!(np.matches(&url(yes)), "{yes}");
        }
        for no in [
            "https://notexample.com",
            "https://example.com.evil.net",
            "https://11.0.0.1",
            "https://192.168.1.8",
            "https://[fe80::1]",
            "https://es.logging.example.net",
        ] {
            assert!(!np.matches(&url(no)), "{no}");
        }
        assert!(NoProxy::parse("*").matches(&url("https://anything:1")));
        // As curl: `*` in a list is no entry; trailing dots are the same name; ports ignored.
        assert!(!NoProxy::parse("x, *").matches(&url("https://anything:1")));
        assert!(NoProxy::parse("example.com.").matches(&url("https://es.example.com")));
        assert!(NoProxy::parse("example.com").matches(&url("https://es.example.com.:9200")));
        assert!(NoProxy::parse("127.0.0.1:9200").matches(&url("http://127.0.0.1:9300")));
        assert!(NoProxy::parse("[fd00::]/8").matches(&url("https://[fd12::1]")));
        for nothing in [".", "10.0.0.0/99", "fd00::/200", "*.", "[", ":"] {
            assert!(!NoProxy::parse(nothing).matches(&url("https://es.bank.")), "{nothing}");
            assert!(!NoProxy::parse(nothing).matches(&url("https://10.1.1.1")), "{nothing}");
        }
        assert!(!NoProxy::parse("").matches(&url("https://anything:1")));
        assert!(NoProxy::parse("0.0.0.0/0").matches(&url("https://1.2.3.4")));
    }

    #[test]
    fn the_standard_variables_upper_case_first_and_without_scheme() {
        let vars = |pairs: &[(&str, &str)]| {
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>()
        };
        let got = ProxyOptions::from_env(&vars(&[
            ("https_proxy", "http://lower:1"),
            ("HTTPS_PROXY", "proxy.bank:3128"),
            ("NO_PROXY", ".cluster.local"),
        ]))
        .expect("valid")
        .expect("set");
        assert_eq!(got.https, Some(url("http://proxy.bank:3128")));
        assert_eq!(got.http, None);
        assert_eq!(got.for_url(&url("https://es.bank:9200")), Some(&url("http://proxy.bank:3128")));
        assert_eq!(got.for_url(&url("https://es.logging.svc.cluster.local")), None);
        assert_eq!(got.for_url(&url("http://es.bank:9200")), None, "no HTTP_PROXY: http:// goes direct");
        assert_eq!(got.for_url(&url("http://169.254.170.23/v1/credentials")), None, "the node's own");
        assert_eq!(got.for_url(&url("http://[fd00:ec2::23]/v1/credentials")), None);
        assert_eq!(got.describe(), "https: http://proxy.bank:3128/, http: direct (NO_PROXY)");
        assert_eq!(ProxyOptions::from_env(&vars(&[("NO_PROXY", "x")])), Ok(None));
        let bad =
            ProxyOptions::from_env(&vars(&[("HTTPS_PROXY", "socks5://u:pw@p:1080")])).expect_err("socks");
        assert!(bad.contains("HTTPS_PROXY") && bad.contains("socks5") && !bad.contains("pw"), "{bad}");
    }

    #[test]
    fn proxy_failures_are_told_from_the_error_chain() {
        let chain =
            |tail: &str| format!("error sending request: client error (Connect): tunnel error: {tail}");
        assert_eq!(ProxyFailure::of_error(&chain("proxy authorization required")), Some(ProxyFailure::Auth));
        assert_eq!(ProxyFailure::of_error(&chain("unsuccessful")), Some(ProxyFailure::Refused));
        assert_eq!(ProxyFailure::of_error(&chain("unexpected end of file")), Some(ProxyFailure::Closed));
        assert_eq!(
            ProxyFailure::of_error(&chain("failed to create underlying connection: tcp connect error")),
            Some(ProxyFailure::Unreachable)
        );
        assert_eq!(ProxyFailure::of_error("error sending request: connection refused"), None);
        assert_eq!(ProxyFailure::of_answer(407, true), Some(ProxyFailure::Auth));
        assert_eq!(ProxyFailure::of_answer(401, false), None, "OpenSearch's 401 has no body of its kind");
        assert_eq!(ProxyFailure::of_answer(403, false), Some(ProxyFailure::Refused));
        assert_eq!(ProxyFailure::of_answer(503, false), Some(ProxyFailure::Status(503)));
        assert_eq!(ProxyFailure::of_answer(503, true), None, "Elasticsearch's own 503");
        assert_eq!(ProxyFailure::of_answer(200, false), None);
        assert_eq!(ProxyFailure::of_answer(404, false), None);
    }
}
