//! Connecting to a name with several addresses as RFC 8305 ("Happy Eyeballs" v2) asks, so that
//! one address that drops packets (a node gone, a stale endpoint, a firewall) cannot hold a
//! target "not ready" while another address of the same name accepts at once. Trying them one
//! after the other, a dropped SYN costs the whole attempt timeout, every attempt, for as long as
//! the name lists that address first.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// How long an attempt runs alone before the next address is tried alongside it: RFC 8305 §5's
/// recommended "Connection Attempt Delay".
pub const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// The order to try addresses in (RFC 8305 §4): the families alternate, starting with the family
/// of the first address, each family in the order the resolver gave.
pub fn interleave(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else { return Vec::new() };
    let (same, other): (Vec<SocketAddr>, Vec<SocketAddr>) =
        addrs.iter().partition(|a| a.is_ipv4() == first.is_ipv4());
    let (mut same, mut other) = (same.into_iter(), other.into_iter());
    let mut ordered = Vec::with_capacity(addrs.len());
    while ordered.len() < addrs.len() {
        ordered.extend(same.next());
        ordered.extend(other.next());
    }
    ordered
}

/// The first connection any of `addrs` accepts. A new attempt starts every [`ATTEMPT_DELAY`], or
/// at once when the one before failed; the attempts still running are dropped (closed) when one
/// wins. When all fail, the reason of the last failure. No timeout of its own: the caller bounds
/// the whole race.
pub async fn race(addrs: &[SocketAddr]) -> Result<TcpStream, String> {
    let mut waiting = interleave(addrs).into_iter();
    let mut running = JoinSet::new();
    let mut last = String::from("the name has no address");
    loop {
        if let Some(addr) = waiting.next() {
            running.spawn(async move { (addr, TcpStream::connect(addr).await) });
        }
        let ended = if waiting.len() == 0 {
            running.join_next().await
        } else {
            match tokio::time::timeout(ATTEMPT_DELAY, running.join_next()).await {
                Ok(ended) => ended,
                Err(_) => continue, // the next address joins the race
            }
        };
        match ended {
            None => return Err(last),
            Some(Ok((_, Ok(stream)))) => return Ok(stream),
            Some(Ok((addr, Err(e)))) => last = reason(addr, &e),
            Some(Err(e)) => last = format!("connect attempt failed: {e}"),
        }
    }
}

fn reason(addr: SocketAddr, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        _ => format!("connect {addr}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use calypso_testkit::black_hole::BlackHole;

    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().expect("addr")).collect()
    }

    #[test]
    fn families_alternate_from_the_first_address_family() {
        let given = addrs(&["[::1]:1", "[::2]:1", "[::3]:1", "10.0.0.1:1", "10.0.0.2:1"]);
        let want = addrs(&["[::1]:1", "10.0.0.1:1", "[::2]:1", "10.0.0.2:1", "[::3]:1"]);
        assert_eq!(interleave(&given), want);
        let given = addrs(&["10.0.0.1:1", "[::1]:1", "10.0.0.2:1"]);
        assert_eq!(interleave(&given), addrs(&["10.0.0.1:1", "[::1]:1", "10.0.0.2:1"]));
        let one_family = addrs(&["10.0.0.2:1", "10.0.0.1:1"]);
        assert_eq!(interleave(&one_family), one_family, "the resolver's order kept");
        assert!(interleave(&[]).is_empty());
    }

    #[tokio::test]
    async fn an_address_that_drops_packets_does_not_hold_the_others() {
        let hole = BlackHole::bind("127.0.0.1:0".parse().expect("addr")).await.expect("black hole");
        let good = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let (hole_addr, good_addr) = (hole.addr(), good.local_addr().expect("addr"));
        let direct = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(hole_addr)).await;
        assert!(direct.is_err(), "the hole drops SYNs: {direct:?}");
        let stream = tokio::time::timeout(Duration::from_secs(30), race(&[hole_addr, good_addr]))
            .await
            .expect("the race ends long before the hole's SYN retries do")
            .expect("connected");
        assert_eq!(stream.peer_addr().expect("peer"), good_addr);
    }

    #[tokio::test]
    async fn all_refused_is_connection_refused() {
        let closed: Vec<SocketAddr> = {
            let a = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let b = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            vec![a.local_addr().expect("addr"), b.local_addr().expect("addr")]
        };
        assert_eq!(race(&closed).await.map(|_| ()), Err("connection refused".to_string()));
        assert_eq!(race(&[]).await.map(|_| ()), Err("the name has no address".to_string()));
    }
}
