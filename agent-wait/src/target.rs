//! What to wait for: the target syntax of the command line and `AGENT_WAIT_TARGETS`, parsed into
//! checkable kinds. Pure; the checks themselves are in `check`.

use std::fmt;
use std::path::PathBuf;

use url::Url;

/// Where a Calypso health API lives when the URL gives no path (assumed, see
/// docs/health-payloads.md; the simulator serves it there).
pub const DEFAULT_CALYPSO_PATH: &str = "/health";

/// One thing to wait for, with the label progress lines use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `dataserver` in component mode, else the target as written (credentials masked).
    pub label: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Ready when a TCP connection succeeds.
    Tcp { host: String, port: u16 },
    /// Ready when the status is in the accepted ranges (and the JSON predicate holds).
    Http { url: Url },
    /// Ready when the Calypso health report is GREEN (or AMBER unless strict).
    Calypso { url: Url },
    /// Ready when the file exists and is not empty.
    File { path: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadTarget(String);

impl Target {
    /// Parses `tcp://host:port`, `host:port`, `http(s)://...`, `calypso://host:port/path`,
    /// `calypso+https://...` or `file:///path`.
    pub fn parse(text: &str) -> Result<Target, BadTarget> {
        let text = text.trim();
        let bad = |why: &str| BadTarget(why.to_string());
        let (scheme, rest) = match text.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r),
            None if looks_like_host_port(text) => ("tcp".to_string(), text),
            None => return Err(bad(SYNTAX)),
        };
        let kind = match scheme.as_str() {
            "tcp" => {
                let url = parse_url(&format!("tcp://{rest}"))?;
                let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| bad("no host"))?;
                let port = url.port().ok_or_else(|| bad("no port: tcp targets need host:port"))?;
                Kind::Tcp { host: host.trim_start_matches('[').trim_end_matches(']').to_string(), port }
            }
            "http" | "https" => Kind::Http { url: http_url(&scheme, rest)? },
            "calypso" | "calypso+http" => Kind::Calypso { url: calypso_url(http_url("http", rest)?) },
            "calypso+https" => Kind::Calypso { url: calypso_url(http_url("https", rest)?) },
            "file" => {
                // `file:///p` and `file://localhost/p`; percent-escapes decoded.
                let url = parse_url(&format!("file://{rest}"))?;
                let path = url
                    .to_file_path()
                    .map_err(|()| bad("file targets need an absolute path: file:///path"))?;
                Kind::File { path }
            }
            other => return Err(BadTarget(format!("unknown scheme {other:?}; {SYNTAX}"))),
        };
        Ok(Target { label: agent_core::redact::url(text), kind })
    }

    /// Splits a list of targets on white space, and on commas outside a URL's query or
    /// fragment (where a comma is data: `http://a/x?ids=1,2`) and outside its user info (a
    /// password may hold one: `http://u:Pa,ss@h/`, told by an `@` before the host ends).
    pub fn split_list(text: &str) -> Vec<&str> {
        let mut items = Vec::new();
        let (mut start, mut in_query) = (0, false);
        // The end of the authority after the last `://`, and its last `@` (cached: every comma
        // of one authority asks the same).
        let mut authority = None;
        for (i, c) in text.char_indices() {
            if c == ',' && !in_query && in_user_info(text, start, i, &mut authority) {
                continue;
            }
            if c.is_whitespace() || (c == ',' && !in_query) {
                items.push(&text[start..i]);
                start = i + c.len_utf8();
                in_query = false;
            } else if c == '?' || c == '#' {
                in_query = true;
            }
        }
        items.push(&text[start..]);
        items.retain(|s| !s.is_empty());
        items
    }

    /// A Calypso health check of a component's URL, labelled with the component.
    pub fn calypso_health(label: &str, url_text: &str) -> Result<Target, BadTarget> {
        let t = Target::parse(url_text)?;
        let kind = match t.kind {
            Kind::Http { url } | Kind::Calypso { url } => Kind::Calypso { url: calypso_url(url) },
            _ => return Err(BadTarget("a health URL must be http://, https:// or calypso://".into())),
        };
        Ok(Target { label: label.to_string(), kind })
    }
}

/// Whether the comma at `i` lies in the user info of a URL: after a `://` of the item that
/// starts at `item_start`, before the last `@` ahead of the next `/`, `?`, `#` or white space.
fn in_user_info(
    text: &str,
    item_start: usize,
    i: usize,
    authority: &mut Option<(usize, Option<usize>)>,
) -> bool {
    let Some(scheme) = text[item_start..i].rfind("://") else { return false };
    if text[item_start + scheme + 3..i].contains(['/', '?', '#']) {
        return false;
    }
    let last_at = match *authority {
        Some((end, last_at)) if end > i => last_at,
        _ => {
            let ends = |c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace();
            let end = text[i..].find(ends).map_or(text.len(), |e| i + e);
            let last_at = text[i..end].rfind('@').map(|a| i + a);
            *authority = Some((end, last_at));
            last_at
        }
    };
    last_at.is_some_and(|at| i < at)
}

const SYNTAX: &str = "expected tcp://host:port, host:port, http(s)://..., calypso://host:port/path, calypso+https://... or file:///path";

fn looks_like_host_port(s: &str) -> bool {
    matches!(s.rsplit_once(':'), Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok())
}

fn parse_url(s: &str) -> Result<Url, BadTarget> {
    Url::parse(s).map_err(|e| BadTarget(format!("not a URL: {e}")))
}

fn http_url(scheme: &str, rest: &str) -> Result<Url, BadTarget> {
    let url = parse_url(&format!("{scheme}://{rest}"))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(BadTarget("no host".into()));
    }
    Ok(url)
}

fn calypso_url(mut url: Url) -> Url {
    if url.path() == "/" || url.path().is_empty() {
        url.set_path(DEFAULT_CALYPSO_PATH);
    }
    url
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> Kind {
        Target::parse(s).unwrap_or_else(|e| panic!("{s}: {e}")).kind
    }

    #[test]
    fn tcp_forms() {
        assert_eq!(kind("tcp://db:1521"), Kind::Tcp { host: "db".into(), port: 1521 });
        assert_eq!(kind("db.ns.svc:1521"), Kind::Tcp { host: "db.ns.svc".into(), port: 1521 });
        assert_eq!(kind("tcp://[::1]:80"), Kind::Tcp { host: "::1".into(), port: 80 });
        assert!(Target::parse("tcp://db").unwrap_err().0.contains("no port"));
    }

    #[test]
    fn http_and_calypso() {
        assert_eq!(
            kind("http://a:8080/ready"),
            Kind::Http { url: "http://a:8080/ready".parse().expect("url") }
        );
        assert_eq!(
            kind("calypso://ds:8140"),
            Kind::Calypso { url: "http://ds:8140/health".parse().expect("url") }
        );
        assert_eq!(
            kind("calypso+https://ds/api/health"),
            Kind::Calypso { url: "https://ds/api/health".parse().expect("url") }
        );
        assert!(Target::parse("http://").is_err());
    }

    #[test]
    fn files_and_errors() {
        assert_eq!(kind("file:///tmp/ready"), Kind::File { path: "/tmp/ready".into() });
        assert_eq!(kind("file://localhost/tmp/a%20b"), Kind::File { path: "/tmp/a b".into() });
        assert!(Target::parse("file://tmp/ready").unwrap_err().0.contains("absolute"));
        assert!(Target::parse("ftp://x").unwrap_err().0.starts_with("unknown scheme \"ftp\""));
        assert!(Target::parse("dataserver").unwrap_err().0.starts_with("expected"));
    }

    #[test]
    fn secrets_are_masked_in_labels() {
        let t = Target::parse("http://user:s3cret@host:1/x?token=abc").expect("valid");
        assert_eq!(t.label, "http://user:***@host:1/x?token=***");
        assert_eq!(t.to_string(), t.label);
    }

    #[test]
    fn lists_split_outside_queries() {
        assert_eq!(
            Target::split_list(" a:1, b:2\nhttp://c/x?ids=1,2 d:4,e:5"),
            ["a:1", "b:2", "http://c/x?ids=1,2", "d:4", "e:5"]
        );
        assert!(Target::split_list(" , ").is_empty());
    }

    #[test]
    fn a_comma_in_a_password_does_not_split() {
        assert_eq!(
            Target::split_list("http://calypso:Pa,ss9@db:1/health,tcp://a:1,http://b:2/x"),
            ["http://calypso:Pa,ss9@db:1/health", "tcp://a:1", "http://b:2/x"]
        );
        assert_eq!(Target::split_list("http://u:a,b,c@h:1,h2:2"), ["http://u:a,b,c@h:1", "h2:2"]);
        assert_eq!(Target::split_list("tcp://a:1,tcp://u:p@b:2"), ["tcp://a:1", "tcp://u:p@b:2"]);
    }

    #[test]
    fn component_health_urls() {
        let t = Target::calypso_health("dataserver", "http://ds:8140").expect("valid");
        assert_eq!(t.label, "dataserver");
        assert_eq!(t.kind, Kind::Calypso { url: "http://ds:8140/health".parse().expect("url") });
        assert!(Target::calypso_health("x", "tcp://ds:1").is_err());
    }
}
