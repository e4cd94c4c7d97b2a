//! The `_bulk` request for a batch: its body, compressed when gzip is on, and its path.
//! The body was written by the encoder ([`super::bulk`]); gzip takes it in one call (one pass,
//! no small writes) into a buffer kept from one request to the next, so the only allocation
//! per request is the compressed body itself.

use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use isal::{Codec, CompressionLevel};

use super::bulk::{Bulk, DocumentIds};

/// The path and query of a batch's request: `<index>/_bulk`, the answer filtered to what
/// `classify` reads (`errors`, each item's `status` and `error`). An unfiltered answer repeats
/// `_index`, `_id`, `_version`, `result`, `_shards`, `_seq_no`... for every document: about
/// 200 bytes each, as much to parse as the log line was to ship.
pub fn path(bulk: &Bulk) -> String {
    // Index names cannot hold `/`, `?` or `#` (see `encode::index_name`), but may hold `%`,
    // which the server would decode.
    let index = bulk.index().replace('%', "%25");
    format!("{index}/_bulk?filter_path=errors,items.*.status,items.*.error")
}

/// Compresses request bodies: gzip made by ISA-L's igzip (Intel's deflate, in assembly), at
/// level 1. gzip is the largest single cost of shipping with it on, and igzip halves it:
/// measured on the benchmark's own `_bulk` bodies (5 MiB each, one core), igzip level 1 shrinks
/// them 8.9x at 830 MB/s where zlib-rs level 1 (with its SIMD paths) does 6.5x at 436 MB/s; the
/// whole benchmark run went from 3.33 to 2.66 CPU-seconds (`bench/README.md`).
#[derive(Debug, Default)]
pub struct Gzip {
    /// igzip writes into a slice it is given; this one is kept (zeroed once, not per request)
    /// and grows to the largest body's need. Requests compress one at a time through it:
    /// compressing is CPU work anyway, and there are two cores.
    scratch: Mutex<Vec<u8>>,
}

/// Room beyond a body's own size that gzip may need: its header and trailer, and a stored
/// block's 5 bytes per 64 KiB when the body does not compress (`ISAL_DEF_MAX_HDR_SIZE` is 328).
const SLACK: usize = 4096;

impl Gzip {
    /// The gzip of `plain`; `None` when igzip refuses it (it has no reason to: the caller then
    /// sends the body plain).
    pub fn compress(&self, plain: &[u8]) -> Option<Bytes> {
        let mut scratch = self.scratch.lock().unwrap_or_else(PoisonError::into_inner);
        // Log documents compress about ninefold: a quarter is room enough, and what a body
        // does not touch of it is never made resident.
        let first = plain.len() / 4 + SLACK;
        if scratch.len() < first {
            *scratch = vec![0; first];
        }
        let mut result = compress_into(plain, &mut scratch);
        if result.is_err() && scratch.len() < bound(plain.len()) {
            // Too little room: the body does not compress (random tokens, binary). Once more
            // with room for all of it, kept for the bodies to come.
            *scratch = vec![0; bound(plain.len())];
            result = compress_into(plain, &mut scratch);
        }
        match result {
            Ok(n) => Some(Bytes::copy_from_slice(&scratch[..n])),
            Err(e) => {
                tracing::error!(error = %e, bytes = plain.len(), "gzip failed; sending uncompressed");
                None
            }
        }
    }
}

fn compress_into(plain: &[u8], out: &mut [u8]) -> Result<usize, isal::error::Error> {
    isal::compress_into(plain, out, CompressionLevel::One, Codec::Gzip)
}

/// The most a body of `len` bytes can take once compressed.
fn bound(len: usize) -> usize {
    len + len / 16 + SLACK
}

/// The body to send: the batch's own (shared, not copied; rewritten when the server makes the
/// ids) or, with `gzip`, its compressed copy. Returns the body and whether it is gzip.
pub fn body(bulk: &Bulk, ids: DocumentIds, gzip: Option<&Gzip>) -> (Bytes, bool) {
    let plain = match ids {
        DocumentIds::Agent => bulk.body().clone(),
        DocumentIds::Server => Bytes::from(bulk.body_with_server_ids()),
    };
    match gzip.and_then(|g| g.compress(&plain)) {
        Some(z) => (z, true),
        None => (plain, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::bulk::test_bulk;
    use std::io::Read;

    #[test]
    fn path_targets_the_index_and_filters_the_answer() {
        let b = test_bulk("logs-calypso.engine-uat", &[("a", "{}")]);
        assert_eq!(path(&b), "logs-calypso.engine-uat/_bulk?filter_path=errors,items.*.status,items.*.error");
        let b = test_bulk("logs-100%", &[("a", "{}")]);
        assert!(path(&b).starts_with("logs-100%25/_bulk?"), "{}", path(&b));
    }

    #[test]
    fn gzip_round_trips() {
        let docs: Vec<(String, String)> =
            (0..100).map(|i| (format!("{i:032x}"), format!(r#"{{"message":"line {i}"}}"#))).collect();
        let refs: Vec<(&str, &str)> = docs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let bulk = test_bulk("logs-calypso.engine-uat", &refs);
        let (plain, gzip) = body(&bulk, DocumentIds::Agent, None);
        assert!(!gzip);
        assert_eq!(plain, *bulk.body());
        let (gz, gzip) = body(&bulk, DocumentIds::Agent, Some(&Gzip::default()));
        assert!(gzip);
        assert_eq!(gunzip(&gz), plain);
        assert!(gz.len() * 4 < plain.len(), "{} vs {}", gz.len(), plain.len());
        // What is compressed is what would be sent plain, server ids included.
        let (plain, _) = body(&bulk, DocumentIds::Server, None);
        let (gz, _) = body(&bulk, DocumentIds::Server, Some(&Gzip::default()));
        assert_eq!(gunzip(&gz), plain);
        assert!(plain.starts_with(
            b"{\"create\":{}}\n{\"agent_logship.id\":\"00000000000000000000000000000000\",\"message\":\"line 0\"}\n"
        ));
    }

    /// zlib's decoder (flate2), not igzip's: what Elasticsearch reads with is another gzip.
    fn gunzip(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(gz).read_to_end(&mut out).expect("gunzip");
        out
    }

    /// A body that does not compress overflows the first guess at its room: it is compressed
    /// again with room for all of it, and a smaller body after it reuses that room.
    #[test]
    fn incompressible_bodies_get_room_and_keep_it() {
        let gzip = Gzip::default();
        // xorshift: bytes with no repeats for deflate to find.
        let mut x = 0x9E37_79B9_7F4A_7C15_u64;
        let noise: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let gz = gzip.compress(&noise).expect("compressed");
        assert_eq!(gunzip(&gz), noise);
        assert!(gz.len() > noise.len(), "stored, not shrunk: {}", gz.len());
        let room = gzip.scratch.lock().map(|s| s.len()).unwrap_or_default();
        assert!(room >= bound(noise.len()), "{room}");
        let text = b"2026-11-21 08:00:00,007 INFO  [main] [Scheduler] done\n".repeat(1000);
        assert_eq!(gunzip(&gzip.compress(&text).expect("compressed")), text);
        assert_eq!(gzip.scratch.lock().map(|s| s.len()).unwrap_or_default(), room);
        assert_eq!(gunzip(&gzip.compress(b"").expect("empty")), b"");
    }

    /// Measures gzip levels on log-like documents: `cargo test -p agent-logship --release
    /// gzip_levels -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement, not a test"]
    fn gzip_levels() {
        let docs: Vec<(String, String)> = (0..20_000)
            .map(|i| {
                (
                    format!("{:032x}", i * 7919),
                    format!(
                        r#"{{"@timestamp":"2024-05-02T10:{:02}:{:02}.{:03}Z","log":{{"level":"INFO","logger":"com.calypso.engine.TradeEngine","offset":{}}},"process":{{"thread":{{"name":"pool-3-thread-{}"}}}},"message":"Processed trade {} for book FX-{} in {} ms","service":{{"name":"engineserver"}}}}"#,
                        i / 60 % 60, i % 60, i % 1000, i * 180, i % 8, 100000 + i, i % 37, i % 250
                    ),
                )
            })
            .collect();
        let refs: Vec<(&str, &str)> = docs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let plain = test_bulk("logs-calypso.engineserver-uat", &refs).body().clone();
        let mut out = vec![0; bound(plain.len())];
        for (level, name) in
            [(CompressionLevel::Zero, 0), (CompressionLevel::One, 1), (CompressionLevel::Three, 3)]
        {
            let t = std::time::Instant::now();
            let n = isal::compress_into(&plain, &mut out, level, Codec::Gzip).expect("compress");
            let secs = t.elapsed().as_secs_f64();
            assert_eq!(gunzip(&out[..n]), plain);
            eprintln!(
                "igzip level {name}: {} -> {n} bytes ({:.1}x), {:.0} MB/s",
                plain.len(),
                plain.len() as f64 / n as f64,
                plain.len() as f64 / secs / 1e6
            );
        }
    }
}
