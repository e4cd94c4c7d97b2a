//! The `_bulk` request for a batch: its body, compressed when gzip is on, and its path.
//! The body was written by the encoder ([`super::bulk`]); gzip takes it in one call (one pass,
//! no small writes), so the only copy made here is the compressed one.

use std::io::Write;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;

use super::bulk::Bulk;

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

/// The body to send: the batch's own (shared, not copied) or its gzip. gzip uses the fastest
/// level: measured on 20 000 log documents (`gzip_levels` below, release build, zlib-rs with its
/// SIMD paths) level 1 shrinks the body 8.7x at 649 MB/s, level 3 12.4x at 290 MB/s, level 6
/// 12.5x at 230 MB/s — over twice the CPU for a third less bytes is not worth it here (gzip is
/// already the largest single cost of shipping). Returns the body and whether it is gzip.
pub fn body(bulk: &Bulk, gzip: bool) -> (Bytes, bool) {
    if gzip {
        // Log documents compress about tenfold; a sixth is a generous first guess.
        let mut enc = GzEncoder::new(Vec::with_capacity(bulk.body().len() / 6 + 64), Compression::fast());
        match enc.write_all(bulk.body()).and_then(|()| enc.finish()) {
            Ok(z) => return (Bytes::from(z), true),
            // The encoder writes to memory and cannot fail; were it to, a plain body works.
            Err(e) => tracing::error!(error = %e, "gzip failed; sending uncompressed"),
        }
    }
    (bulk.body().clone(), false)
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
        let (plain, gzip) = body(&bulk, false);
        assert!(!gzip);
        assert_eq!(plain, *bulk.body());
        let (gz, gzip) = body(&bulk, true);
        assert!(gzip);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&gz[..]).read_to_end(&mut out).expect("gunzip");
        assert_eq!(out, plain);
        assert!(gz.len() * 4 < plain.len(), "{} vs {}", gz.len(), plain.len());
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
        for level in [1, 3, 6] {
            let t = std::time::Instant::now();
            let mut enc = GzEncoder::new(Vec::with_capacity(plain.len() / 4), Compression::new(level));
            enc.write_all(&plain).expect("write");
            let out = enc.finish().expect("finish");
            let secs = t.elapsed().as_secs_f64();
            eprintln!(
                "level {level}: {} -> {} bytes ({:.1}x), {:.0} MB/s",
                plain.len(),
                out.len(),
                plain.len() as f64 / out.len() as f64,
                plain.len() as f64 / secs / 1e6
            );
        }
    }
}
