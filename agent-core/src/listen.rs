//! Where an agent's HTTP server (probes, metrics) listens. The kubelet probes the pod IP, which
//! is IPv6 on IPv6-only clusters and may be either on dual-stack ones: `[::]:PORT` listens as
//! a dual-stack socket (`IPV6_V6ONLY` off, set explicitly rather than left to the
//! `net.ipv6.bindv6only` sysctl), and on `0.0.0.0` where the kernel has no IPv6.
//!
//! A port in use, an address the host does not have, a port it may not use: all configuration
//! errors ([`BindError::is_configuration`]), which the agent reports naming its setting.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::TcpListener;

/// Pending connections the kernel keeps for us (as std and tokio).
const BACKLOG: i32 = 1024;

/// An address to listen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// Every address of the host, IPv4 and IPv6, on this port: `[::]` dual-stack, or
    /// `0.0.0.0` where the kernel has no IPv6. Written `[::]:PORT`.
    DualStack(u16),
    /// Exactly this address (`0.0.0.0:8081` is IPv4 only, `127.0.0.1:8082` loopback only).
    Addr(SocketAddr),
}

impl Listen {
    /// Whether only this host can connect.
    pub fn is_loopback(&self) -> bool {
        matches!(self, Listen::Addr(a) if a.ip().is_loopback())
    }

    /// Binds a listening socket (with `SO_REUSEADDR`, as std and tokio do).
    pub fn bind(&self) -> Result<TcpListener, BindError> {
        match *self {
            Listen::Addr(addr) => bind(addr, None).map_err(|e| BindError::new(addr, e)),
            Listen::DualStack(port) => {
                let any6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
                match bind(any6, Some(false)) {
                    Ok(l) => Ok(l),
                    // No IPv6 in this kernel (EAFNOSUPPORT), or IPv6 disabled (EADDRNOTAVAIL
                    // on `::`): IPv4 is all there is.
                    Err(e) if no_ipv6(&e) => {
                        tracing::info!(error = %e, "no IPv6 on this host: listening on IPv4 only");
                        let any4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
                        bind(any4, None).map_err(|e| BindError::new(any4, e))
                    }
                    Err(e) => Err(BindError::new(any6, e)),
                }
            }
        }
    }
}

fn no_ipv6(e: &io::Error) -> bool {
    const EAFNOSUPPORT: i32 = 97;
    const EADDRNOTAVAIL: i32 = 99;
    matches!(e.raw_os_error(), Some(EAFNOSUPPORT | EADDRNOTAVAIL))
}

/// A listening socket on `addr`; for IPv6, `only_v6` sets `IPV6_V6ONLY` when given.
fn bind(addr: SocketAddr, only_v6: Option<bool>) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if let Some(only) = only_v6 {
        socket.set_only_v6(only)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&SockAddr::from(addr))?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    TcpListener::from_std(socket.into())
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::DualStack(port) => write!(f, "[::]:{port}"),
            Listen::Addr(addr) => write!(f, "{addr}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not ip:port, e.g. [::]:8081 (IPv4 and IPv6), 0.0.0.0:8081 or 127.0.0.1:8082")]
pub struct BadAddress;

impl FromStr for Listen {
    type Err = BadAddress;

    /// `[::]:PORT` is [`Listen::DualStack`]; any other `ip:port` is exactly that address.
    fn from_str(s: &str) -> Result<Self, BadAddress> {
        let addr: SocketAddr = s.trim().parse().map_err(|_| BadAddress)?;
        Ok(match addr.ip() {
            IpAddr::V6(ip) if ip.is_unspecified() => Listen::DualStack(addr.port()),
            _ => Listen::Addr(addr),
        })
    }
}

/// Why a listening socket could not be had.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("{addr} is already in use")]
    InUse { addr: SocketAddr },
    #[error("{addr} is not an address of this host")]
    NotOnHost { addr: SocketAddr },
    #[error("not allowed to listen on {addr}: {source}")]
    Denied { addr: SocketAddr, source: io::Error },
    #[error("cannot listen on {addr}: {source}")]
    Other { addr: SocketAddr, source: io::Error },
}

impl BindError {
    fn new(addr: SocketAddr, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::AddrInUse => BindError::InUse { addr },
            io::ErrorKind::AddrNotAvailable => BindError::NotOnHost { addr },
            io::ErrorKind::PermissionDenied => BindError::Denied { addr, source },
            _ => BindError::Other { addr, source },
        }
    }

    /// Whether a different setting fixes it (exit 64), rather than the host (exit 70).
    pub fn is_configuration(&self) -> bool {
        !matches!(self, BindError::Other { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Listen {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn parsing() {
        assert_eq!(parse("[::]:8081"), Listen::DualStack(8081));
        assert_eq!(parse(" [::]:0 "), Listen::DualStack(0));
        assert_eq!(parse("0.0.0.0:8081"), Listen::Addr("0.0.0.0:8081".parse().expect("addr")));
        assert_eq!(parse("[::1]:9"), Listen::Addr("[::1]:9".parse().expect("addr")));
        assert!("everywhere".parse::<Listen>().is_err());
        assert!("8081".parse::<Listen>().is_err());
        assert_eq!(Listen::DualStack(8081).to_string(), "[::]:8081");
        assert!(parse("127.0.0.2:1").is_loopback() && parse("[::1]:1").is_loopback());
        assert!(!parse("[::]:1").is_loopback() && !parse("10.0.0.1:1").is_loopback());
    }

    /// Whether this machine has an IPv6 loopback (some containers have none).
    fn have_ipv6_loopback() -> bool {
        std::net::TcpListener::bind("[::1]:0").is_ok()
    }

    #[tokio::test]
    async fn dual_stack_serves_ipv4_and_ipv6() {
        let listener = Listen::DualStack(0).bind().expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accept = tokio::spawn(async move {
            for _ in 0..2 {
                listener.accept().await.expect("accept");
            }
        });
        tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("IPv4");
        if have_ipv6_loopback() {
            tokio::net::TcpStream::connect(("::1", port)).await.expect("IPv6");
        } else {
            eprintln!("SKIPPED the IPv6 half: this machine has no IPv6 loopback");
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("IPv4");
        }
        accept.await.expect("accepted both");
    }

    #[tokio::test]
    async fn a_port_in_use_or_an_address_elsewhere_is_a_configuration_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let e = Listen::Addr(addr).bind().expect_err("in use");
        assert!(matches!(e, BindError::InUse { .. }) && e.is_configuration(), "{e:?}");
        assert_eq!(e.to_string(), format!("{addr} is already in use"));
        // TEST-NET-1 (RFC 5737): never an address of this host; binding sends nothing.
        let e = parse("192.0.2.1:0").bind().expect_err("not here");
        assert!(matches!(e, BindError::NotOnHost { .. }) && e.is_configuration(), "{e:?}");
        assert_eq!(e.to_string(), "192.0.2.1:0 is not an address of this host");
    }
}
