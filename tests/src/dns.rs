//! A DNS server double: RFC 1035 over UDP on `127.0.0.1:0`, answering only what a test has told
//! it. It is the "local resolver double" for checking that agents re-resolve names on every
//! attempt (a Kubernetes Service that does not exist yet must not be fatal).
//!
//! Protocol as a real authoritative server answers a stub resolver: the reply echoes the query
//! ID, opcode, RD bit and question; a known name gets its A records, in the order the test gave
//! them (TTL 0, so nothing may cache them); an AAAA query for a known name gets NOERROR with no answers (NODATA); an unknown name gets
//! NXDOMAIN (RCODE 3) with no records; a query it cannot parse gets FORMERR (RCODE 1). EDNS
//! options in the additional section are ignored, as RFC 6891 allows a server without EDNS to.
//! Silenced, it reads queries and answers none, as a DNS server that is down (or overloaded)
//! does to a client.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

const TYPE_A: u16 = 1;
const CLASS_IN: u16 = 1;
const RCODE_FORMERR: u8 = 1;
const RCODE_NXDOMAIN: u8 = 3;

#[derive(Default)]
struct Zone {
    records: Mutex<HashMap<String, Vec<Ipv4Addr>>>,
    queries: AtomicU64,
    silent: AtomicBool,
}

/// A running DNS double; stops when dropped.
pub struct DnsDouble {
    addr: SocketAddr,
    zone: Arc<Zone>,
    task: JoinHandle<()>,
}

impl DnsDouble {
    pub async fn start() -> std::io::Result<DnsDouble> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let addr = socket.local_addr()?;
        let zone = Arc::new(Zone::default());
        let task = tokio::spawn(serve(socket, zone.clone()));
        Ok(DnsDouble { addr, zone, task })
    }

    /// Where to send queries (`AGENT_DNS_SERVERS`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// From now on `name` resolves to `ip` (names compare without case or trailing dot).
    pub fn insert(&self, name: &str, ip: Ipv4Addr) {
        self.insert_all(name, &[ip]);
    }

    /// From now on `name` resolves to every one of `ips`, answered in this order.
    pub fn insert_all(&self, name: &str, ips: &[Ipv4Addr]) {
        self.records().insert(normalise(name), ips.to_vec());
    }

    /// From now on `name` is NXDOMAIN.
    pub fn remove(&self, name: &str) {
        self.records().remove(&normalise(name));
    }

    /// From now on (`true`) no query is answered, until `false`.
    pub fn silence(&self, silent: bool) {
        self.zone.silent.store(silent, Ordering::SeqCst);
    }

    /// Queries answered so far.
    pub fn queries(&self) -> u64 {
        self.zone.queries.load(Ordering::SeqCst)
    }

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Ipv4Addr>>> {
        self.zone.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for DnsDouble {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

async fn serve(socket: UdpSocket, zone: Arc<Zone>) {
    let mut buf = [0u8; 1500];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else { continue };
        if zone.silent.load(Ordering::SeqCst) {
            continue;
        }
        let answer = {
            let records = zone.records.lock().unwrap_or_else(PoisonError::into_inner);
            respond(&buf[..n], |name| records.get(name).cloned())
        };
        zone.queries.fetch_add(1, Ordering::SeqCst);
        if let Some(answer) = answer {
            let _ = socket.send_to(&answer, peer).await;
        }
    }
}

/// The reply to one query, or `None` when it is too short to carry an ID (dropped, as servers do).
pub fn respond(query: &[u8], lookup: impl Fn(&str) -> Option<Vec<Ipv4Addr>>) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    let header = |rcode: u8, qd: u16, an: u16| {
        let mut h = Vec::with_capacity(512);
        h.extend_from_slice(&query[0..2]); // ID
        // QR=1, opcode copied, AA=1, RD copied; RA=1, RCODE.
        h.push(0x80 | (query[2] & 0x78) | 0x04 | (query[2] & 0x01));
        h.push(0x80 | rcode);
        for count in [qd, an, 0, 0] {
            h.extend_from_slice(&count.to_be_bytes());
        }
        h
    };
    let Some((name, question_end)) = parse_question(query) else {
        return Some(header(RCODE_FORMERR, 0, 0));
    };
    let qtype = u16::from_be_bytes([query[question_end - 4], query[question_end - 3]]);
    let qclass = u16::from_be_bytes([query[question_end - 2], query[question_end - 1]]);
    let question = &query[12..question_end];
    let reply = match lookup(&name) {
        None => [header(RCODE_NXDOMAIN, 1, 0), question.to_vec()].concat(),
        Some(ips) if qtype == TYPE_A && qclass == CLASS_IN => {
            let count = u16::try_from(ips.len()).ok()?;
            let mut r = [header(0, 1, count), question.to_vec()].concat();
            for ip in ips {
                r.extend_from_slice(&[0xC0, 0x0C]); // the name: a pointer to the question's
                r.extend_from_slice(&TYPE_A.to_be_bytes());
                r.extend_from_slice(&CLASS_IN.to_be_bytes());
                r.extend_from_slice(&0u32.to_be_bytes()); // TTL 0
                r.extend_from_slice(&4u16.to_be_bytes());
                r.extend_from_slice(&ip.octets());
            }
            r
        }
        Some(_) => [header(0, 1, 0), question.to_vec()].concat(), // NODATA
    };
    Some(reply)
}

/// The first question's name (lower case, no trailing dot) and where the question ends.
fn parse_question(query: &[u8]) -> Option<(String, usize)> {
    let qdcount = u16::from_be_bytes([query[4], query[5]]);
    if qdcount != 1 {
        return None;
    }
    let mut labels = Vec::new();
    let mut i = 12;
    loop {
        let len = usize::from(*query.get(i)?);
        i += 1;
        if len == 0 {
            break;
        }
        if len > 63 {
            return None; // compression is not allowed in a question's first name
        }
        labels.push(std::str::from_utf8(query.get(i..i + len)?).ok()?.to_ascii_lowercase());
        i += len;
    }
    let end = i + 4;
    (end <= query.len()).then(|| (labels.join("."), end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&CLASS_IN.to_be_bytes());
        q
    }

    #[test]
    fn answers_known_names_nxdomain_otherwise() {
        let ip = Ipv4Addr::new(127, 0, 0, 1);
        let lookup = |n: &str| (n == "ds.test").then(|| vec![ip]);
        let a = respond(&query("DS.test", TYPE_A), lookup).expect("reply");
        assert_eq!(&a[0..2], &[0xAB, 0xCD], "ID echoed");
        assert_eq!(a[3] & 0x0F, 0, "NOERROR");
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 1, "one answer");
        assert_eq!(&a[a.len() - 4..], &ip.octets());
        let nx = respond(&query("other.test", TYPE_A), lookup).expect("reply");
        assert_eq!(nx[3] & 0x0F, RCODE_NXDOMAIN);
        let nodata = respond(&query("ds.test", 28), lookup).expect("reply");
        assert_eq!((nodata[3] & 0x0F, nodata[7]), (0, 0));
        assert_eq!(respond(&[0; 13], lookup).map(|r| r[3] & 0x0F), Some(RCODE_FORMERR));
        assert_eq!(respond(&[0; 5], lookup), None);
    }

    #[test]
    fn answers_every_address_in_order() {
        let ips = [Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::LOCALHOST];
        let a = respond(&query("ds.test", TYPE_A), |_| Some(ips.to_vec())).expect("reply");
        assert_eq!(u16::from_be_bytes([a[6], a[7]]), 2, "two answers");
        let question_end = 12 + "ds.test".len() + 2 + 4;
        let rdata: Vec<&[u8]> = a[question_end..].chunks(16).map(|rr| &rr[12..]).collect();
        assert_eq!(rdata, [&ips[0].octets()[..], &ips[1].octets()[..]]);
    }
}
