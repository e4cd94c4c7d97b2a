//! The log file `logship-bench` ships: Calypso's log4j format,
//! `yyyy-MM-dd HH:mm:ss,SSS LEVEL [thread] [Category] message seq=N`, every fifth record an ERROR
//! followed by a 6-line Java stack trace (so a shipper that splits or glues multi-line records
//! shows it in its document count), one in forty a line with a credential as Calypso logs them
//! (a JDBC URL in a connection failure, a properties dump, an HTTP client's headers at debug
//! level), written once and reused.
//!
//! The single-line records are the test kit's ([`calypso_testkit::logwriter::record`], the same
//! content the shipper's tests and the demo write); the kit's own errors (one in twenty, with
//! traces of 11-16 lines) are drawn again so that the share and the shape of the traces here are
//! exactly the ones the benchmark states. Timestamps advance by a fixed step from a fixed start,
//! so a seed and a size give the same bytes on every machine.

use calypso_testkit::logwriter::{log4j_timestamp, record};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Every this many records (seq 5, 10, 15, ...) is an ERROR with a stack trace.
pub const TRACE_EVERY: u64 = 5;
/// Lines of every stack trace, after the record's first line.
pub const TRACE_LINES: usize = 6;
/// Every this many records (seq 1, 41, 81, ...: never one with a trace) holds a credential.
pub const CREDENTIAL_EVERY: u64 = 40;
/// The first record's time: 2026-11-21 08:00:00,000 UTC.
const START_MS: u64 = 1_795_248_000_000;
/// Time between two records.
const STEP_MS: u64 = 7;
/// Bumped whenever the content changes, so an old file is not reused for a new layout.
const LAYOUT: u32 = 2;

/// What to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSpec {
    /// Write records until the file holds at least this many bytes.
    pub min_bytes: u64,
    /// Seeds the content.
    pub seed: u64,
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogFacts {
    pub bytes: u64,
    pub records: u64,
    pub lines: u64,
    /// Records with a stack trace.
    pub traces: u64,
    /// Records with a credential.
    pub credentials: u64,
}

/// Writes records one after the other, each a whole `String` ending in `\n`.
#[derive(Debug)]
pub struct Generator {
    rng: StdRng,
    next_seq: u64,
}

impl Generator {
    pub fn new(seed: u64) -> Generator {
        Generator { rng: StdRng::seed_from_u64(seed), next_seq: 1 }
    }

    /// The next record and its sequence number.
    pub fn next_record(&mut self) -> (u64, String) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let now = UNIX_EPOCH + Duration::from_millis(START_MS + seq * STEP_MS);
        let text = if seq.is_multiple_of(TRACE_EVERY) {
            error_record(seq, &mut self.rng, now)
        } else if seq % CREDENTIAL_EVERY == 1 {
            credential_record(seq, &mut self.rng, now)
        } else {
            loop {
                let r = record(seq, &mut self.rng, now);
                // The kit's own ERROR records (multi-line) are drawn again: traces come only
                // from `error_record`, one in TRACE_EVERY.
                if r.bytes().filter(|b| *b == b'\n').count() == 1 {
                    break r;
                }
            }
        };
        (seq, text)
    }
}

/// A one-line record holding a credential, in one of the forms Calypso's servers log.
fn credential_record<R: Rng + ?Sized>(seq: u64, rng: &mut R, now: SystemTime) -> String {
    let pw: String = (0..12).map(|_| char::from(rng.random_range(b'a'..=b'z'))).collect();
    let line = match rng.random_range(0..5) {
        0 => format!(
            "WARN  [main] [DataServer] Cannot get connection from jdbc:oracle:thin:calypso/{pw}@db01.bank:1521/CALP, retrying"
        ),
        1 => format!(
            "INFO  [main] [Startup] calypsouser.properties: DRIVER=oracle.jdbc.OracleDriver DBUSER=calypso DBPASSWORD={pw} ENV=uat"
        ),
        2 => format!(
            "DEBUG [http-client-3] [RestClient] > POST /api/v1/trades Host: gateway.bank Authorization: Bearer {pw}.{pw}"
        ),
        3 => format!(
            "WARN  [pool-1-thread-2] [MarketData] feed down: https://mdfeed:{pw}@feed.bank:8443/rates"
        ),
        _ => format!("INFO  [main] [Auth] login ok token={pw} user=ops"),
    };
    format!("{} {line} seq={seq}\n", log4j_timestamp(now))
}

/// An ERROR record with exactly [`TRACE_LINES`] lines of stack trace.
fn error_record<R: Rng + ?Sized>(seq: u64, rng: &mut R, now: SystemTime) -> String {
    const ERRORS: &[(&str, &str, &str, &str)] = &[
        (
            "TradeServer",
            "Error saving trade",
            "java.sql.SQLException: ORA-00060: deadlock detected while waiting for resource",
            "com.calypso.tk.product.sql.TradeSQL.save(TradeSQL.java:",
        ),
        (
            "DataServer",
            "Could not refresh cache for trade",
            "java.sql.SQLRecoverableException: IO Error: Connection reset",
            "com.calypso.tk.util.cache.LocalCache.refresh(LocalCache.java:",
        ),
        (
            "TransferEngine",
            "Failed to process event PSEventTransfer for trade",
            "java.rmi.RemoteException: Error processing transfer; nested exception is: java.sql.SQLException: ORA-01013: user requested cancel of current operation",
            "com.calypso.tk.bo.sql.BOTransferSQL.save(BOTransferSQL.java:",
        ),
    ];
    const THREADS: &[&str] = &["main", "pool-2-thread-7", "EventProcessor-3", "TransferEngine-Worker-1"];
    let (category, message, exception, frame) = ERRORS[rng.random_range(0..ERRORS.len())];
    let thread = THREADS[rng.random_range(0..THREADS.len())];
    let trade = rng.random_range(1_000_000..9_999_999u32);
    format!(
        "{stamp} ERROR [{thread}] [{category}] {message} {trade} seq={seq}\n\
         {exception}\n\
         \tat {frame}{l1})\n\
         \tat com.calypso.tk.core.sql.ioSQL.executeUpdate(ioSQL.java:{l2})\n\
         \tat com.calypso.engine.Engine.handleEvent(Engine.java:{l3})\n\
         Caused by: java.net.SocketException: Connection reset\n\
         \t... {more} more\n",
        stamp = log4j_timestamp(now),
        l1 = rng.random_range(40..2500),
        l2 = rng.random_range(40..2500),
        l3 = rng.random_range(40..2500),
        more = rng.random_range(8..30),
    )
}

/// Writes the records to `out` until at least `spec.min_bytes` are written.
pub fn write<W: Write>(spec: LogSpec, out: &mut W) -> io::Result<LogFacts> {
    let mut g = Generator::new(spec.seed);
    let mut facts = LogFacts { bytes: 0, records: 0, lines: 0, traces: 0, credentials: 0 };
    while facts.bytes < spec.min_bytes {
        let (seq, text) = g.next_record();
        out.write_all(text.as_bytes())?;
        facts.bytes += text.len() as u64;
        facts.records += 1;
        facts.lines += text.bytes().filter(|b| *b == b'\n').count() as u64;
        if seq.is_multiple_of(TRACE_EVERY) {
            facts.traces += 1;
        } else if seq % CREDENTIAL_EVERY == 1 {
            facts.credentials += 1;
        }
    }
    Ok(facts)
}

/// The file for `spec` in `dir`, written now unless a complete one is there already (its facts
/// are kept beside it in `<file>.facts`, written after the file itself, so a half-written file
/// is never reused).
pub fn ensure(dir: &Path, spec: LogSpec) -> io::Result<(PathBuf, LogFacts)> {
    fs::create_dir_all(dir)?;
    let path = dir.join(format!("calypso-{}-s{}-v{LAYOUT}.log", spec.min_bytes, spec.seed));
    let facts_path = path.with_extension("log.facts");
    if let Ok(text) = fs::read_to_string(&facts_path)
        && let Some(facts) = parse_facts(&text)
        && fs::metadata(&path).is_ok_and(|m| m.len() == facts.bytes)
    {
        return Ok((path, facts));
    }
    let _ = fs::remove_file(&facts_path);
    let tmp = path.with_extension("log.tmp");
    let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    let facts = write(spec, &mut out)?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    fs::rename(&tmp, &path)?;
    fs::write(&facts_path, format_facts(&facts))?;
    Ok((path, facts))
}

fn format_facts(f: &LogFacts) -> String {
    format!(
        "bytes={}\nrecords={}\nlines={}\ntraces={}\ncredentials={}\n",
        f.bytes, f.records, f.lines, f.traces, f.credentials
    )
}

fn parse_facts(text: &str) -> Option<LogFacts> {
    let get = |key: &str| {
        text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('=')).and_then(|v| v.parse().ok())
    };
    Some(LogFacts {
        bytes: get("bytes")?,
        records: get("records")?,
        lines: get("lines")?,
        traces: get("traces")?,
        credentials: get("credentials")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fifth_record_has_a_six_line_trace_and_content_is_deterministic() {
        let mut a = Generator::new(3);
        let mut b = Generator::new(3);
        for _ in 0..200 {
            let (seq, text) = a.next_record();
            assert_eq!((seq, text.clone()), b.next_record());
            let lines: Vec<&str> = text.lines().collect();
            let first = lines[0];
            assert!(first.ends_with(&format!(" seq={seq}")), "{first}");
            assert!(first.get(4..5) == Some("-") && first.get(19..20) == Some(","), "{first}");
            assert!(text.ends_with('\n'));
            if seq % TRACE_EVERY == 0 {
                assert_eq!(lines.len(), 1 + TRACE_LINES, "{text}");
                assert!(first.get(24..29) == Some("ERROR"), "{first}");
                // No continuation line looks like a record start or carries a seq.
                for l in &lines[1..] {
                    assert!(!l.contains("seq=") && !l.starts_with("20"), "{l}");
                }
            } else {
                assert_eq!(lines.len(), 1, "{text}");
            }
        }
    }

    #[test]
    fn timestamps_start_on_the_fixed_day_and_advance() {
        let (_, first) = Generator::new(1).next_record();
        assert!(first.starts_with("2026-11-21 08:00:00,007 "), "{first}");
    }

    #[test]
    fn writes_at_least_the_size_and_counts_what_it_wrote() {
        let mut buf = Vec::new();
        let facts = write(LogSpec { min_bytes: 100_000, seed: 9 }, &mut buf).unwrap();
        assert_eq!(facts.bytes, buf.len() as u64);
        assert!(facts.bytes >= 100_000 && facts.bytes < 101_000);
        assert_eq!(facts.traces, facts.records / TRACE_EVERY);
        assert_eq!(facts.credentials, facts.records.div_ceil(CREDENTIAL_EVERY));
        let masked = |text: &str| agent_core::redact::text(text) != text;
        assert_eq!(facts.lines, facts.records + facts.traces * TRACE_LINES as u64);
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(text.matches(" seq=").count() as u64, facts.records);
        // The credential records are what masking finds, and only they.
        let found = text.lines().filter(|l| masked(l)).count() as u64;
        assert_eq!(found, facts.credentials);
    }

    #[test]
    fn ensure_reuses_a_complete_file_and_rewrites_a_torn_one() {
        let dir = tempfile::tempdir().unwrap();
        let spec = LogSpec { min_bytes: 20_000, seed: 1 };
        let (path, facts) = ensure(dir.path(), spec).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), facts.bytes);
        let (again, facts2) = ensure(dir.path(), spec).unwrap();
        assert_eq!((again.clone(), facts2), (path.clone(), facts));
        // A file whose size disagrees with its facts is written again.
        fs::write(&path, "torn").unwrap();
        let (_, facts3) = ensure(dir.path(), spec).unwrap();
        assert_eq!(facts3, facts);
        assert_eq!(fs::metadata(&path).unwrap().len(), facts.bytes);
    }
}
