//! `agent-health check`: asks a running sidecar over loopback, for Docker `HEALTHCHECK` and exec
//! probes. A tiny HTTP/1.1 GET over a plain TCP stream: no DNS (the host is an IP address or
//! `localhost`), no TLS, nothing to configure.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use url::{Host, Url};

/// The most of an answer read: the head and the first line of the body fit easily.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// GETs `url` within `timeout`: whether the status was 200, and the body's first line.
/// `Err` says why there was no HTTP answer (bad URL, refused, timed out, not HTTP).
pub async fn check(url: &Url, timeout: Duration) -> Result<(bool, String), String> {
    let addr = address(url)?;
    let request = request(url);
    let exchange = async {
        let mut stream =
            TcpStream::connect(addr).await.map_err(|e| format!("cannot connect to {addr}: {e}"))?;
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("cannot send the request to {addr}: {e}"))?;
        read_answer(&mut stream).await.map_err(|e| format!("cannot read the answer from {addr}: {e}"))
    };
    let raw = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer from {addr} within {}", humantime::format_duration(timeout)))??;
    let (status, first_line) = parse(&raw)?;
    Ok((status == 200, first_line))
}

fn address(url: &Url) -> Result<SocketAddr, String> {
    if url.scheme() != "http" {
        return Err(format!("{url}: only http:// is supported (the sidecar is asked over loopback)"));
    }
    let ip = match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
        Some(Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Some(Host::Domain(d)) => {
            return Err(format!("{url}: the host must be an IP address or localhost, not {d} (no DNS here)"));
        }
        None => return Err(format!("{url}: no host")),
    };
    let port = url.port_or_known_default().ok_or_else(|| format!("{url}: no port"))?;
    Ok(SocketAddr::new(ip, port))
}

fn request(url: &Url) -> String {
    let mut target = url.path().to_string();
    if let Some(q) = url.query() {
        target.push('?');
        target.push_str(q);
    }
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => String::new(),
    };
    format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: agent-health-check/{}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// Reads until the server closes, the body announced by `content-length` is in, or
/// [`MAX_ANSWER_BYTES`].
async fn read_answer(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut raw = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(raw);
        }
        raw.extend_from_slice(&buf[..n]);
        if raw.len() >= MAX_ANSWER_BYTES || complete(&raw) {
            return Ok(raw);
        }
    }
}

/// Whether the head is in and the body is as long as its `content-length`.
fn complete(raw: &[u8]) -> bool {
    let Some(end) = head_end(raw) else { return false };
    let head = String::from_utf8_lossy(&raw[..end]);
    match header(&head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        Some(len) => raw.len() - (end + 4) >= len,
        None => false,
    }
}

fn head_end(raw: &[u8]) -> Option<usize> {
    raw.windows(4).position(|w| w == b"\r\n\r\n")
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// The status code and the first line of the body (chunked bodies decoded).
fn parse(raw: &[u8]) -> Result<(u16, String), String> {
    let end = head_end(raw).ok_or_else(|| {
        if raw.is_empty() {
            "the connection closed without an answer".to_string()
        } else {
            "no HTTP answer".to_string()
        }
    })?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let status_line = head.split("\r\n").next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    let status = match (parts.next(), parts.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => {
            code.parse::<u16>().map_err(|_| format!("bad status line {status_line:?}"))?
        }
        _ => return Err(format!("bad status line {status_line:?}")),
    };
    let mut body = &raw[end + 4..];
    let decoded;
    if header(&head, "transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        decoded = dechunk(body);
        body = &decoded;
    } else if let Some(len) = header(&head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        body = &body[..len.min(body.len())];
    }
    let line = body.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line).trim_end().to_string();
    Ok((status, line))
}

/// The data of a chunked body, as much as arrived.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..eol]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else { break };
        if size == 0 {
            break;
        }
        let data = &raw[eol + 2..];
        let take = size.min(data.len());
        out.extend_from_slice(&data[..take]);
        if take < size || data.len() < take + 2 {
            break;
        }
        raw = &data[take + 2..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Poll;
    use crate::server::Limits;
    use crate::testing::{app_with, report, start};
    use calypso::State;
    use tokio::net::TcpListener;

    fn url(addr: SocketAddr, path: &str) -> Url {
        Url::parse(&format!("http://{addr}{path}")).unwrap()
    }

    #[tokio::test]
    async fn asks_the_real_server() {
        let app = app_with([Poll::Answer(report(State::Green)), Poll::Answer(report(State::Red))]);
        let server = start(app, Limits::default()).await;
        let t = Duration::from_secs(5);
        assert_eq!(check(&url(server.addr, "/livez"), t).await, Ok((true, "ok".into())));
        assert_eq!(
            check(&url(server.addr, "/readyz"), t).await,
            Ok((false, "state RED (Calypso/DataServerConnection: RED)".into()))
        );
        assert_eq!(check(&url(server.addr, "/startupz"), t).await, Ok((true, "ok".into())));
        let (ok, line) = check(&url(server.addr, "/readyz?verbose"), t).await.unwrap();
        assert!(!ok);
        assert!(line.starts_with("[+]upstream RED age="), "{line}");
        assert_eq!(check(&url(server.addr, "/nope"), t).await, Ok((false, "not found".into())));
        let localhost = Url::parse(&format!("http://localhost:{}/livez", server.addr.port())).unwrap();
        assert_eq!(check(&localhost, t).await, Ok((true, "ok".into())));
    }

    #[tokio::test]
    async fn refused_is_an_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = check(&url(addr, "/livez"), Duration::from_secs(5)).await.unwrap_err();
        assert!(err.contains("cannot connect"), "{err}");
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _hold = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            std::future::pending::<()>().await;
            drop(s);
        });
        let err = check(&url(addr, "/livez"), Duration::from_millis(200)).await.unwrap_err();
        assert!(err.contains("within 200ms"), "{err}");
    }

    #[tokio::test]
    async fn chunked_and_closing_servers() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for answer in [
                &b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nstal\r\n8\r\ne data\nx\r\n0\r\n\r\n"[..],
                b"HTTP/1.0 200 OK\r\n\r\nfine\r\nmore",
                b"garbage",
            ] {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await.unwrap();
                s.write_all(answer).await.unwrap();
            }
        });
        let t = Duration::from_secs(5);
        assert_eq!(check(&url(addr, "/readyz"), t).await, Ok((false, "stale data".into())));
        assert_eq!(check(&url(addr, "/readyz"), t).await, Ok((true, "fine".into())));
        assert_eq!(check(&url(addr, "/readyz"), t).await, Err("no HTTP answer".into()));
    }

    #[tokio::test]
    async fn only_loopback_style_urls() {
        let t = Duration::from_secs(1);
        let err = check(&Url::parse("https://127.0.0.1:8081/readyz").unwrap(), t).await.unwrap_err();
        assert!(err.contains("only http://"), "{err}");
        let err = check(&Url::parse("http://example.com/readyz").unwrap(), t).await.unwrap_err();
        assert!(err.contains("IP address or localhost"), "{err}");
    }

    #[test]
    fn the_request_names_the_target_and_host() {
        let r = request(&Url::parse("http://127.0.0.1:8081/readyz?verbose").unwrap());
        assert!(r.starts_with("GET /readyz?verbose HTTP/1.1\r\nHost: 127.0.0.1:8081\r\n"), "{r}");
        assert!(r.ends_with("Connection: close\r\n\r\n"));
        let r = request(&Url::parse("http://[::1]/livez").unwrap());
        assert!(r.starts_with("GET /livez HTTP/1.1\r\nHost: [::1]\r\n"), "{r}");
        assert_eq!(address(&Url::parse("http://[::1]/livez").unwrap()), Ok("[::1]:80".parse().unwrap()));
    }

    #[test]
    fn parses_answers() {
        assert_eq!(parse(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n"), Ok((200, "ok".into())));
        assert_eq!(parse(b"HTTP/1.1 204 No Content\r\n\r\n"), Ok((204, String::new())));
        assert_eq!(parse(b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nabc"), Ok((200, "a".into())));
        assert!(parse(b"").is_err());
        assert!(parse(b"SSH-2.0\r\n\r\n").is_err());
        assert!(complete(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"));
        assert!(!complete(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok"));
    }
}
