//! What an API request asks for: the path (one namespace's events, all namespaces', one event)
//! and the query parameters of LIST and WATCH, checked as the API server checks them (400 with a
//! Status for a bad one). Pure.

use super::continuation::Continue;
use super::status::Status;
use super::store::ListAt;
use std::time::Duration;

/// A request of the events API.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiRequest {
    List {
        namespace: Option<String>,
        at: ListAt,
        limit: Option<usize>,
        from: Option<Continue>,
    },
    /// `from` `None`: start with the current state (resourceVersion unset or "0").
    Watch {
        namespace: Option<String>,
        from: Option<u64>,
        timeout: Option<Duration>,
        bookmarks: bool,
    },
    Get {
        namespace: String,
        name: String,
    },
}

impl ApiRequest {
    /// The namespace the request reads; `None`: all (the cluster scope).
    pub fn namespace(&self) -> Option<&str> {
        match self {
            ApiRequest::List { namespace, .. } | ApiRequest::Watch { namespace, .. } => namespace.as_deref(),
            ApiRequest::Get { namespace, .. } => Some(namespace),
        }
    }

    /// The RBAC verb.
    pub fn verb(&self) -> &'static str {
        match self {
            ApiRequest::List { .. } => "list",
            ApiRequest::Watch { .. } => "watch",
            ApiRequest::Get { .. } => "get",
        }
    }
}

/// Why a request is not served.
#[derive(Debug, Clone, PartialEq)]
pub enum Refused {
    /// A path the server has no handler for: a plain-text `404 page not found`.
    NoRoute,
    /// Answered with this Status.
    Status(Status),
}

/// Go's `strconv.ParseBool`, which the API server uses for boolean parameters (the Python client
/// sends `True`).
fn parse_bool(name: &str, v: &str) -> Result<bool, Refused> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(bad(format!(
            "{name}: Invalid value: \"{v}\": strconv.ParseBool: parsing \"{v}\": invalid syntax"
        ))),
    }
}

fn parse_number(name: &str, v: &str) -> Result<u64, Refused> {
    v.parse::<u64>().map_err(|_| {
        bad(format!("{name}: Invalid value: \"{v}\": strconv.ParseInt: parsing \"{v}\": invalid syntax"))
    })
}

fn bad(message: String) -> Refused {
    Refused::Status(Status::bad_request(message))
}

/// Parses `GET path?query` of the events API (`segments` percent-decoded).
pub fn parse(segments: &[&str], query: Option<&str>) -> Result<ApiRequest, Refused> {
    let (namespace, name) = match segments {
        ["api", "v1", "events"] => (None, None),
        ["api", "v1", "namespaces", ns, "events"] => (Some((*ns).to_owned()), None),
        ["api", "v1", "namespaces", ns, "events", name] => (Some((*ns).to_owned()), Some((*name).to_owned())),
        _ => return Err(Refused::NoRoute),
    };
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned().collect();
    let param = |n: &str| {
        params.iter().rev().find(|(k, _)| k == n).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    };
    for selector in ["labelSelector", "fieldSelector"] {
        if let Some(v) = param(selector) {
            return Err(bad(format!("{selector}={v}: kube-sim does not implement selectors")));
        }
    }
    if let Some(v) = param("sendInitialEvents")
        && parse_bool("sendInitialEvents", v)?
    {
        return Err(bad("sendInitialEvents: kube-sim does not implement streaming lists".into()));
    }
    let watch = param("watch").map(|v| parse_bool("watch", v)).transpose()?.unwrap_or(false);
    let rv = param("resourceVersion");
    let rv_number = rv.map(|v| parse_number("resourceVersion", v)).transpose()?;
    if let Some(name) = name {
        if watch {
            return Err(Refused::NoRoute);
        }
        return Ok(ApiRequest::Get { namespace: namespace.unwrap_or_default(), name });
    }
    if watch {
        let timeout = param("timeoutSeconds").map(|v| parse_number("timeoutSeconds", v)).transpose()?;
        let bookmarks =
            param("allowWatchBookmarks").map(|v| parse_bool("allowWatchBookmarks", v)).transpose()?;
        return Ok(ApiRequest::Watch {
            namespace,
            from: rv_number.filter(|&rv| rv != 0),
            timeout: timeout.filter(|&t| t > 0).map(Duration::from_secs),
            bookmarks: bookmarks.unwrap_or(false),
        });
    }
    let limit = param("limit")
        .map(|v| parse_number("limit", v))
        .transpose()?
        .map(|l| usize::try_from(l).unwrap_or(usize::MAX));
    let from = match param("continue") {
        None => None,
        Some(token) => {
            if rv_number.is_some_and(|rv| rv != 0) {
                return Err(bad("specifying resource version is not allowed when using continue".into()));
            }
            Some(Continue::decode(token).map_err(|e| bad(e.to_string()))?)
        }
    };
    let at = match (param("resourceVersionMatch"), rv_number) {
        (None, None | Some(0)) => ListAt::Latest,
        (None, Some(rv)) => ListAt::NotOlderThan(rv),
        (Some(_), _) if from.is_some() => {
            return Err(bad("resourceVersionMatch is forbidden when continue is provided".into()));
        }
        (Some("NotOlderThan"), Some(rv)) => ListAt::NotOlderThan(rv),
        (Some("Exact"), Some(rv)) if rv != 0 => ListAt::Exact(rv),
        (Some(m @ ("Exact" | "NotOlderThan")), _) => {
            return Err(bad(format!(
                "resourceVersionMatch: Forbidden: resourceVersionMatch \"{m}\" is forbidden for resourceVersion \"{}\"",
                rv.unwrap_or("")
            )));
        }
        (Some(m), _) => {
            return Err(bad(format!(
                "resourceVersionMatch: Unsupported value: \"{m}\": supported values: \"Exact\", \"NotOlderThan\""
            )));
        }
    };
    Ok(ApiRequest::List { namespace, at, limit, from })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: &str, query: &str) -> Result<ApiRequest, Refused> {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        parse(&segs, Some(query))
    }

    fn status(r: Result<ApiRequest, Refused>) -> u16 {
        match r {
            Err(Refused::Status(s)) => s.code,
            other => panic!("not a Status: {other:?}"),
        }
    }

    #[test]
    fn lists_and_watches() {
        assert_eq!(
            p("/api/v1/namespaces/calypso/events", "limit=500"),
            Ok(ApiRequest::List {
                namespace: Some("calypso".into()),
                at: ListAt::Latest,
                limit: Some(500),
                from: None
            })
        );
        assert_eq!(
            p("/api/v1/events", "watch=True&resourceVersion=17&allowWatchBookmarks=true&timeoutSeconds=5"),
            Ok(ApiRequest::Watch {
                namespace: None,
                from: Some(17),
                timeout: Some(Duration::from_secs(5)),
                bookmarks: true
            })
        );
        assert!(matches!(
            p("/api/v1/events", "watch=1&resourceVersion=0"),
            Ok(ApiRequest::Watch { from: None, bookmarks: false, .. })
        ));
        assert!(matches!(
            p("/api/v1/events", "resourceVersion=3&resourceVersionMatch=Exact"),
            Ok(ApiRequest::List { at: ListAt::Exact(3), .. })
        ));
        assert!(matches!(
            p("/api/v1/events", "resourceVersion=3"),
            Ok(ApiRequest::List { at: ListAt::NotOlderThan(3), .. })
        ));
        assert_eq!(
            p("/api/v1/namespaces/a/events/b", ""),
            Ok(ApiRequest::Get { namespace: "a".into(), name: "b".into() })
        );
    }

    #[test]
    fn bad_requests() {
        assert_eq!(p("/api/v1/pods", ""), Err(Refused::NoRoute));
        assert_eq!(p("/apis/events.k8s.io/v1/events", ""), Err(Refused::NoRoute));
        for q in [
            "limit=ten",
            "watch=maybe",
            "watch=1&resourceVersion=abc",
            "watch=1&timeoutSeconds=-1",
            "continue=garbage",
            "labelSelector=a%3Db",
            "resourceVersionMatch=Exact",
            "resourceVersion=0&resourceVersionMatch=Exact",
            "resourceVersion=5&resourceVersionMatch=Newest",
        ] {
            assert_eq!(status(p("/api/v1/events", q)), 400, "{q}");
        }
        let token =
            Continue { rv: 5, after: super::super::event::Key { namespace: "a".into(), name: "b".into() } }
                .encode();
        assert_eq!(status(p("/api/v1/events", &format!("continue={token}&resourceVersion=5"))), 400);
        assert!(p("/api/v1/events", &format!("continue={token}&resourceVersion=0")).is_ok());
    }
}
