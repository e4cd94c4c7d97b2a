//! A log writer that behaves like a Calypso server's log4j `RollingFileAppender`: realistic
//! records ([`record`]) appended to `X.log`, rotated by size by renaming `X.log.(N-1)` to `X.log.N`
//! ... `X.log` to `X.log.1` (the oldest beyond `backups` dropped) and starting a new `X.log`.
//!
//! It exists for the log shipper's tests: every record carries `seq=N` (1, 2, 3, ... per writer)
//! so a test can check that nothing was lost or duplicated across rotations, a record is never
//! split across two files, and the content is deterministic given the seed (timestamps aside).
//! [`LogWriter::write_n`] writes an exact number of records synchronously; [`LogWriter::run`]
//! writes at a steady rate until told to stop (what the simulator does).

mod record;

pub use record::{ERROR_ONE_IN, log4j_timestamp, record};

use rand::SeedableRng;
use rand::rngs::StdRng;
use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// What to write where.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// The active file, `X.log`; backups are `X.log.1` (newest) to `X.log.<backups>` (oldest).
    pub path: PathBuf,
    /// Records per second for [`LogWriter::run`]; 0 writes nothing.
    pub rate_per_sec: f64,
    /// Rotate before a record would make the active file larger than this (log4j's
    /// `MaxFileSize`). A single record larger than this still gets a file of its own.
    pub max_bytes: u64,
    /// Backups kept (log4j's `MaxBackupIndex`); 0 truncates the file instead of renaming it.
    pub backups: u32,
    /// Rotate as logrotate's `copytruncate` does: copy the active file to `X.log.1` (after
    /// shifting the backups) and truncate it in place, the writer keeping its descriptor.
    pub copy_truncate: bool,
    /// Seeds the record content.
    pub seed: u64,
}

impl LogConfig {
    /// 10 records/s, 10 MiB files, 5 backups, seed 0.
    pub fn new(path: impl Into<PathBuf>) -> LogConfig {
        LogConfig {
            path: path.into(),
            rate_per_sec: 10.0,
            max_bytes: 10 * 1024 * 1024,
            backups: 5,
            copy_truncate: false,
            seed: 0,
        }
    }
}

/// Writes records to a rotated file. Each record is written with one `write` call of the whole
/// record, so a reader never sees a rotation in the middle of one.
#[derive(Debug)]
pub struct LogWriter {
    cfg: LogConfig,
    rng: StdRng,
    next_seq: u64,
    file: File,
    size: u64,
}

impl LogWriter {
    /// Opens (appending to) or creates the active file. Sequence numbers start at 1.
    pub fn open(cfg: LogConfig) -> io::Result<LogWriter> {
        let file = OpenOptions::new().create(true).append(true).open(&cfg.path)?;
        let size = file.metadata()?.len();
        Ok(LogWriter { rng: StdRng::seed_from_u64(cfg.seed), cfg, next_seq: 1, file, size })
    }

    /// The sequence number the next record will carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Writes one record, rotating first when it would not fit; returns its sequence number.
    pub fn write_record(&mut self) -> io::Result<u64> {
        let seq = self.next_seq;
        let text = record(seq, &mut self.rng, SystemTime::now());
        let len = text.len() as u64;
        if self.size > 0 && self.size + len > self.cfg.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(text.as_bytes())?;
        self.size += len;
        self.next_seq += 1;
        Ok(seq)
    }

    /// Writes exactly `n` records now.
    pub fn write_n(&mut self, n: u64) -> io::Result<()> {
        (0..n).try_for_each(|_| self.write_record().map(drop))
    }

    /// Writes `rate_per_sec` records per second until `stop` resolves. The rate is kept on
    /// average (records due since the start are written on each tick) so that slow ticks do not
    /// lower it. Writing is plain blocking file IO: each record is one small `write`, far
    /// cheaper than handing it to a blocking thread.
    pub async fn run(mut self, stop: impl Future<Output = ()>) -> io::Result<()> {
        let mut stop = std::pin::pin!(stop);
        let rate = if self.cfg.rate_per_sec.is_finite() { self.cfg.rate_per_sec.max(0.0) } else { 0.0 };
        if rate == 0.0 {
            stop.await;
            return Ok(());
        }
        let period =
            Duration::from_secs_f64(1.0 / rate).clamp(Duration::from_millis(10), Duration::from_millis(100));
        let mut ticks = tokio::time::interval(period);
        let start = Instant::now();
        let mut written = 0u64;
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = &mut stop => return Ok(()),
            }
            let due = (start.elapsed().as_secs_f64() * rate) as u64;
            while written < due {
                self.write_record()?;
                written += 1;
            }
        }
    }

    /// The files that exist now, oldest first (`X.log.N` ... `X.log.1`, `X.log`): concatenated in
    /// this order they hold the records in sequence.
    pub fn files(&self) -> Vec<PathBuf> {
        existing_files(&self.cfg.path, self.cfg.backups)
    }

    /// log4j's `RollingFileAppender.rollOver()`: shift the backups up by one, dropping the
    /// oldest, move the active file to `.1`, and start an empty active file. With
    /// `copy_truncate`, logrotate's way instead: copy the active file to `.1`, truncate it.
    fn rotate(&mut self) -> io::Result<()> {
        if self.cfg.backups == 0 {
            self.file.set_len(0)?;
        } else {
            for i in (1..self.cfg.backups).rev() {
                let from = backup_path(&self.cfg.path, i);
                if from.exists() {
                    // rename replaces the oldest backup, which is how it is dropped.
                    fs::rename(&from, backup_path(&self.cfg.path, i + 1))?;
                }
            }
            if self.cfg.copy_truncate {
                fs::copy(&self.cfg.path, backup_path(&self.cfg.path, 1))?;
                // The descriptor is in append mode: the next write lands at the new end, 0.
                self.file.set_len(0)?;
            } else {
                fs::rename(&self.cfg.path, backup_path(&self.cfg.path, 1))?;
                self.file = OpenOptions::new().create(true).append(true).open(&self.cfg.path)?;
            }
        }
        self.size = 0;
        Ok(())
    }
}

/// `X.log.<index>` for `X.log`.
pub fn backup_path(path: &Path, index: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{index}"));
    PathBuf::from(name)
}

/// The rotated set of `path` that exists now, oldest first, looking at up to `backups` backups.
pub fn existing_files(path: &Path, backups: u32) -> Vec<PathBuf> {
    (1..=backups)
        .rev()
        .map(|i| backup_path(path, i))
        .chain([path.to_path_buf()])
        .filter(|p| p.exists())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_names() {
        assert_eq!(backup_path(Path::new("/x/DataServer.log"), 3), PathBuf::from("/x/DataServer.log.3"));
    }

    #[test]
    fn copy_truncate_keeps_every_record_once_across_the_copies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("A.log");
        let cfg = LogConfig { max_bytes: 8192, backups: 50, copy_truncate: true, ..LogConfig::new(&path) };
        let mut w = LogWriter::open(cfg).expect("open");
        w.write_n(300).expect("write");
        let text: String = w.files().iter().map(|f| fs::read_to_string(f).expect("read")).collect();
        let seqs: Vec<u64> =
            text.lines().filter_map(|l| l.rsplit_once(" seq=").and_then(|(_, n)| n.parse().ok())).collect();
        assert_eq!(seqs, (1..=300).collect::<Vec<_>>());
        assert!(fs::metadata(&path).expect("active").len() <= 8192);
    }

    #[test]
    fn zero_backups_truncates_in_place() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("A.log");
        let mut w = LogWriter::open(LogConfig { max_bytes: 4096, backups: 0, ..LogConfig::new(&path) })
            .expect("open");
        w.write_n(200).expect("write");
        assert_eq!(w.files(), vec![path.clone()]);
        let text = fs::read_to_string(&path).expect("read");
        assert!(text.len() <= 4096, "{} bytes", text.len());
        assert!(text.ends_with(" seq=200\n") || text.contains(" seq=200\n"), "the newest record is kept");
        assert!(!backup_path(&path, 1).exists());
    }
}
