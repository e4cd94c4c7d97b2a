//! An address that drops every connection attempt, as a host that is gone (or a firewall) does:
//! a listener whose accept queue is full. Linux then drops each new SYN without answering, so
//! the client retransmits and waits — no "connection refused" ever comes back. It counts as a
//! listen drop in `/proc/net/netstat`, which is how a test proves its client really met it.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// A black hole; lasts until dropped.
pub struct BlackHole {
    listener: TcpListener,
    _queued: Vec<TcpStream>,
}

impl BlackHole {
    /// A black hole at `addr` (port 0: any free port).
    pub async fn bind(addr: SocketAddr) -> io::Result<BlackHole> {
        let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        socket.bind(addr)?;
        let listener = socket.listen(0)?;
        let at = listener.local_addr()?;
        // Linux queues backlog + 1 connections that nobody accepts; the next SYN is dropped.
        // A completed loopback connect takes microseconds; one that has not completed after
        // 200 ms had its SYN dropped: the queue is full.
        let mut queued = Vec::new();
        while let Ok(connected) =
            tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(at)).await
        {
            queued.push(connected?);
        }
        Ok(BlackHole { listener, _queued: queued })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }
}

/// SYNs dropped so far in this network namespace because a listener's queue was full
/// (`TcpExt: ListenDrops`).
pub fn listen_drops() -> u64 {
    let netstat = std::fs::read_to_string("/proc/net/netstat").expect("/proc/net/netstat");
    let mut lines = netstat.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next().expect("TcpExt names"), lines.next().expect("TcpExt values"));
    let at = names.split_whitespace().position(|n| n == "ListenDrops").expect("ListenDrops");
    values.split_whitespace().nth(at).and_then(|v| v.parse().ok()).expect("a ListenDrops count")
}
