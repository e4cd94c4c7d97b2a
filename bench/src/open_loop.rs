//! An open-loop HTTP/1.1 load generator: a fixed request rate over a few keep-alive connections,
//! every request on a schedule, and its latency measured from the time it was **scheduled** to be
//! sent, not from when it was sent. A slow answer that holds up the next request on its
//! connection therefore counts against the server instead of vanishing from the numbers
//! (coordinated omission, which wrk2 corrects the same way; plain wrk, closed-loop, does not).
//!
//! Blocking sockets on one thread per connection, no async runtime: the send times must be
//! precise to well under a millisecond, and a runtime's timer wheel ticks in milliseconds. Each
//! thread sleeps until just before a request is due, then spins (yielding) for the rest, and
//! how late each send still was is reported as the generator's own error (`lag`).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::thread;
use std::time::{Duration, Instant};

/// How much of the wait before a send is spent spinning rather than sleeping.
const SPIN: Duration = Duration::from_micros(150);
/// How long one exchange may take before it counts as an error.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A plain `http://host:port/path` URL.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    /// `host:port` as the URL gives it, for the Host header.
    pub authority: String,
    /// Path and query.
    pub path: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url}: only http:// URLs"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let with_port = if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| format!("{url}: {e}"))?
            .next()
            .ok_or_else(|| format!("{url}: no address"))?;
        Ok(Target { addr, authority: authority.to_string(), path: path.to_string() })
    }

    fn request(&self) -> Vec<u8> {
        format!("GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: probe-latency\r\n\r\n", self.path, self.authority)
            .into_bytes()
    }
}

/// What to send, how fast, for how long.
#[derive(Debug, Clone)]
pub struct Config {
    pub target: Target,
    /// Requests per second, over all connections.
    pub rate: u32,
    /// How long to measure.
    pub duration: Duration,
    /// How long to send before measuring (connections and caches warm).
    pub warmup: Duration,
    /// Keep-alive connections; request `i` goes on connection `i % connections`.
    pub connections: usize,
}

/// The measured requests (those scheduled after the warm-up).
#[derive(Debug, Default)]
pub struct Report {
    /// From the scheduled send to the complete answer, sorted.
    pub latency: Vec<Duration>,
    /// From the actual send to the complete answer, sorted.
    pub service: Vec<Duration>,
    /// How late the generator sent, sorted: its own contribution to `latency`.
    pub lag: Vec<Duration>,
    /// Answers other than 200.
    pub not_ok: u64,
    /// Exchanges that failed (connection closed or reset, timeout, bad answer).
    pub errors: u64,
    /// From the first scheduled send to the last answer.
    pub elapsed: Duration,
}

impl Report {
    /// Answers per second over the measured part.
    pub fn rate(&self) -> f64 {
        self.latency.len() as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// The `q` quantile (0..=1) of sorted samples, nearest rank; zero when empty.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs the schedule and gathers the answers.
pub fn run(cfg: &Config) -> Result<Report, String> {
    if cfg.rate == 0 || cfg.connections == 0 {
        return Err("the rate and the number of connections must be above zero".into());
    }
    let total = (f64::from(cfg.rate) * (cfg.warmup + cfg.duration).as_secs_f64()).round() as u64;
    let period_ns = 1_000_000_000 / u64::from(cfg.rate);
    let request = cfg.target.request();
    // Connect everything first, so that no connect lands in the schedule.
    let conns = (0..cfg.connections)
        .map(|_| Conn::open(cfg.target.addr))
        .collect::<io::Result<Vec<_>>>()
        .map_err(|e| format!("cannot connect to {}: {e}", cfg.target.addr))?;
    let t0 = Instant::now() + Duration::from_millis(20);
    let measured_from = t0 + cfg.warmup;
    let n = cfg.connections as u64;
    let threads: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(k, conn)| {
            let mut conn = Some(conn);
            let request = request.clone();
            let addr = cfg.target.addr;
            thread::spawn(move || {
                let mut part = Report::default();
                let mut last_done = t0;
                let mut i = k as u64;
                while i < total {
                    let due = t0 + Duration::from_nanos(period_ns * i);
                    wait_until(due);
                    let sent = Instant::now();
                    let answer = match conn.as_mut() {
                        Some(c) => c.exchange(&request),
                        None => Err(io::Error::other("not connected")),
                    };
                    let done = Instant::now();
                    let measured = due >= measured_from;
                    match answer {
                        Ok((status, keep_alive)) => {
                            if measured {
                                part.latency.push(done - due);
                                part.service.push(done - sent);
                                part.lag.push(sent - due);
                                part.not_ok += u64::from(status != 200);
                            }
                            if !keep_alive {
                                conn = Conn::open(addr).ok();
                            }
                        }
                        Err(_) => {
                            if measured {
                                part.errors += 1;
                            }
                            conn = Conn::open(addr).ok();
                        }
                    }
                    last_done = done;
                    i += n;
                }
                (part, last_done)
            })
        })
        .collect();
    let mut report = Report::default();
    let mut last = measured_from;
    for t in threads {
        let (part, done) = t.join().map_err(|_| "a connection thread panicked".to_string())?;
        report.latency.extend(part.latency);
        report.service.extend(part.service);
        report.lag.extend(part.lag);
        report.not_ok += part.not_ok;
        report.errors += part.errors;
        last = last.max(done);
    }
    report.elapsed = last.saturating_duration_since(measured_from);
    report.latency.sort_unstable();
    report.service.sort_unstable();
    report.lag.sort_unstable();
    Ok(report)
}

/// One `GET` on a fresh connection: the status of the answer.
pub fn get_status(target: &Target) -> io::Result<u16> {
    Conn::open(target.addr)?.exchange(&target.request()).map(|(status, _)| status)
}

/// Sleeps until shortly before `due`, then spins until it.
fn wait_until(due: Instant) {
    loop {
        let now = Instant::now();
        if now >= due {
            return;
        }
        let left = due - now;
        if left > SPIN {
            thread::sleep(left - SPIN);
        } else {
            thread::yield_now();
        }
    }
}

/// One keep-alive connection and what it has read beyond the last answer.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn open(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(Conn { stream, buf: Vec::with_capacity(4096) })
    }

    /// Sends one request and reads its whole answer: the status, and whether the connection
    /// stays open.
    fn exchange(&mut self, request: &[u8]) -> io::Result<(u16, bool)> {
        self.stream.write_all(request)?;
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            self.fill()?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).map_err(io::Error::other)?;
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| io::Error::other("no status line"))?;
        let mut length = None;
        let mut keep_alive = true;
        for line in head.split("\r\n").skip(1) {
            let Some((name, value)) = line.split_once(':') else { continue };
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_ascii_lowercase());
            match name.as_str() {
                "content-length" => length = value.parse::<usize>().ok(),
                "transfer-encoding" if value != "identity" => {
                    return Err(io::Error::other("chunked answers are not supported"));
                }
                "connection" if value == "close" => keep_alive = false,
                _ => {}
            }
        }
        let length = length.ok_or_else(|| io::Error::other("no content-length"))?;
        while self.buf.len() < head_end + length {
            self.fill()?;
        }
        self.buf.drain(..head_end + length);
        Ok((status, keep_alive))
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let ms = |n| Duration::from_millis(n);
        let v: Vec<_> = (1..=100).map(ms).collect();
        assert_eq!(quantile(&v, 0.5), ms(50));
        assert_eq!(quantile(&v, 0.99), ms(99));
        assert_eq!(quantile(&v, 0.999), ms(100));
        assert_eq!(quantile(&v, 1.0), ms(100));
        assert_eq!(quantile(&v, 0.0), ms(1));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn targets_parse() {
        let t = Target::parse("http://127.0.0.1:8081/readyz").expect("parses");
        assert_eq!(
            (t.addr.port(), t.authority.as_str(), t.path.as_str()),
            (8081, "127.0.0.1:8081", "/readyz")
        );
        assert!(Target::parse("https://127.0.0.1/").is_err());
    }
}
