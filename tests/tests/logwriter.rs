//! The log writer as the log shipper's tests use it: rotation like log4j's RollingFileAppender,
//! whole records per file, contiguous sequence numbers, deterministic content.

use calypso_testkit::eventually;
use calypso_testkit::logwriter::{LogConfig, LogWriter, backup_path, record};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// A line that starts a record: `yyyy-MM-dd HH:mm:ss,SSS `.
fn starts_record(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 24
        && b[..4].iter().all(u8::is_ascii_digit)
        && (b[4], b[7], b[10], b[13], b[16], b[19], b[23]) == (b'-', b'-', b' ', b':', b':', b',', b' ')
}

/// The `seq=` numbers of the records in `text`, in order.
fn seqs(text: &str) -> Vec<u64> {
    text.lines()
        .filter(|l| starts_record(l))
        .map(|l| {
            let (_, n) = l.rsplit_once(" seq=").unwrap_or_else(|| panic!("no seq in {l:?}"));
            n.parse().unwrap_or_else(|_| panic!("bad seq in {l:?}"))
        })
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn rotates_like_log4j_without_splitting_or_losing_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("DataServer.log");
    let cfg = LogConfig { max_bytes: 16 * 1024, backups: 3, seed: 42, ..LogConfig::new(&path) };
    let mut writer = LogWriter::open(cfg).expect("open");
    writer.write_n(2000).expect("write");
    assert_eq!(writer.next_seq(), 2001);

    let files = writer.files();
    let expected: Vec<_> =
        [3, 2, 1].map(|i| backup_path(&path, i)).into_iter().chain([path.clone()]).collect();
    assert_eq!(files, expected, "X.log.3 (oldest) .. X.log");
    assert!(!backup_path(&path, 4).exists(), "backups beyond 3 are dropped");

    let mut all = String::new();
    for f in &files {
        let text = read(f);
        assert!(text.len() as u64 <= 16 * 1024, "{} is {} bytes", f.display(), text.len());
        assert!(text.lines().next().is_some_and(starts_record), "{} starts mid-record", f.display());
        assert!(text.ends_with('\n'), "{} ends mid-line", f.display());
        all.push_str(&text);
    }
    let seqs = seqs(&all);
    let first = seqs[0];
    assert!(first > 1, "the oldest records were rotated away");
    assert_eq!(seqs, (first..=2000).collect::<Vec<_>>(), "contiguous across files, oldest first");

    assert!(all.contains("\n\tat com.calypso."), "stack trace frames");
    assert!(all.contains("\nCaused by: java."), "caused-by sections");
    assert!(all.contains(" more\n"), "'... N more' lines");
    assert!(all.contains("java.sql.SQLException: ") || all.contains("java.sql.SQLRecoverableException: "));
    for level in [" INFO ", " DEBUG ", " WARN ", " ERROR "] {
        assert!(all.lines().any(|l| starts_record(l) && l.contains(level)), "no{level}record");
    }
    let errors = all.lines().filter(|l| starts_record(l) && l.contains(" ERROR ")).count();
    let records = seqs.len();
    assert!(
        errors * 40 > records && errors * 10 < records,
        "{errors} errors in {records} records, expected ~1/20"
    );
}

#[test]
fn with_enough_backups_nothing_is_lost() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("EngineServer.log");
    let mut writer =
        LogWriter::open(LogConfig { max_bytes: 4096, backups: 1000, ..LogConfig::new(&path) }).expect("open");
    writer.write_n(500).expect("write");
    let files = writer.files();
    assert!(files.len() > 10, "{} files", files.len());
    let all: String = files.iter().map(|f| read(f)).collect();
    assert_eq!(seqs(&all), (1..=500).collect::<Vec<_>>());
}

#[test]
fn content_is_deterministic_given_the_seed() {
    let strip = |text: String| -> Vec<String> {
        text.lines().map(|l| if starts_record(l) { l[23..].to_owned() } else { l.to_owned() }).collect()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, seed: u64| {
        let path = dir.path().join(name);
        let mut w = LogWriter::open(LogConfig { seed, ..LogConfig::new(&path) }).expect("open");
        w.write_n(300).expect("write");
        strip(read(&path))
    };
    assert_eq!(write("a.log", 5), write("b.log", 5));
    assert_ne!(write("c.log", 5), write("d.log", 6));
}

#[test]
fn record_is_usable_without_files() {
    let mut rng = StdRng::seed_from_u64(1);
    let now = SystemTime::now();
    let text: String = (1..=100).map(|seq| record(seq, &mut rng, now)).collect();
    assert_eq!(seqs(&text), (1..=100).collect::<Vec<_>>());
    assert!(text.lines().all(|l| starts_record(l)
        || l.starts_with('\t')
        || l.starts_with("Caused by: ")
        || l.starts_with("java.")));
}

#[tokio::test]
async fn run_writes_at_a_rate_until_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("Scheduler.log");
    let writer = LogWriter::open(LogConfig { rate_per_sec: 200.0, max_bytes: 8192, ..LogConfig::new(&path) })
        .expect("open");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(writer.run(async move {
        let _ = stopped.await;
    }));
    eventually("50 records", Duration::from_secs(10), async || {
        let all: String =
            calypso_testkit::logwriter::existing_files(&path, 5).iter().map(|f| read(f)).collect();
        (seqs(&all).len() >= 50).then_some(())
    })
    .await;
    let _ = stop.send(());
    task.await.expect("join").expect("no IO error");
    let all: String = calypso_testkit::logwriter::existing_files(&path, 5).iter().map(|f| read(f)).collect();
    let seqs = seqs(&all);
    let first = seqs[0];
    assert_eq!(seqs, (first..first + seqs.len() as u64).collect::<Vec<_>>());
}
