//! The files source's reading loop (a thread of its own: file IO blocks) and its handle.
//!
//! Each turn: rescan when the watcher saw names change or the rescan interval passed; then look at
//! every open file: identify it (first-line fingerprint, checkpoint), check that what we read is
//! still there (truncation, rewrite), read new bytes into its frame, send the records — each after
//! taking its bytes from the budget, so a spent budget pauses reading — and let go of files that
//! were rotated away or deleted once they gave nothing new for the grace period.

use std::collections::HashSet;
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};

use super::acks::{AckWindow, TrackState, Tracker};
use super::checkpoint::{self, CheckpointError, Entry};
use super::discover::{self, Wake};
use super::pathglob::PathGlob;
use super::tail::{
    Reader, Reading, dev_ino_size, file_final_fingerprint, file_fingerprint, file_tail, file_window,
    last_line_end,
};
use super::{FilesConfig, FilesError, StartAt};
use crate::flow::{Ack, Budget};
use crate::frame::{MakeFrame, Position};
use crate::framing::pod_from_path;
use crate::metrics::Metrics;
use crate::record::{FileMeta, Record};

/// A record, its file, its way back.
pub type Item = (Record, Arc<FileMeta>, Ack);

/// What the source sends: a run of items of one file, in order. Sent as one message, so the
/// channel's cost (a slot, its atomics, maybe a wake-up) is paid per run, not per record.
pub type Run = Vec<Item>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One tracked file for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStatus {
    pub path: String,
    pub fingerprint: u64,
    /// Size at the last look.
    pub size: u64,
    /// Offset up to which everything is acknowledged.
    pub committed: u64,
    /// `size - committed`.
    pub lag_bytes: u64,
    /// How long the oldest unacknowledged record of the file has been out.
    pub oldest_unacked: Option<Duration>,
    /// Still read (false: let go, waiting for its last acknowledgements).
    pub reading: bool,
}

/// What the loop, the checkpoint writer and the handle share.
#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    /// `FilesConfig::masking`, written with every checkpoint.
    masking: String,
    forget_after: Duration,
    trackers: Mutex<Vec<Arc<Tracker>>>,
    /// Checkpoint entries of files not being read now (loaded at start, or let go and all acked).
    table: Mutex<Vec<Entry>>,
    /// A let-go file's entry joined the table: the files taken for its copies are looked at
    /// again (they may go on past where it ended, and can now be claimed there).
    retired: AtomicBool,
    dirty: Arc<AtomicBool>,
    save_lock: Mutex<()>,
    /// The last [`Shared::save_before_sending`] failed (said once until one succeeds).
    unsaved: AtomicBool,
    metrics: Arc<Metrics>,
}

impl Shared {
    /// The entry whose file this is (same fingerprint, same bytes before its verified offset),
    /// taken out of the table: its reader now owns it. Several: the one of the same path, else
    /// the furthest.
    fn claim(&self, fingerprint: u64, size: u64, file: &File, path: &Path) -> Option<Entry> {
        let mut table = lock(&self.table);
        let path = path.to_string_lossy();
        let matching = table
            .iter()
            .enumerate()
            .filter(|(_, e)| e.matches(fingerprint, size, |at| file_window(file, at)))
            .max_by_key(|(_, e)| (e.path == path, e.committed.offset))
            .map(|(i, _)| i)?;
        Some(table.swap_remove(matching))
    }

    fn save(&self) -> Result<(), CheckpointError> {
        let _one_at_a_time = lock(&self.save_lock);
        let now = SystemTime::now();
        let (mut all, mut retired) = (Vec::new(), Vec::new());
        lock(&self.trackers).retain(|t| {
            let mut s = t.lock();
            s.settle();
            if s.reading {
                s.seen = now;
            }
            let e = Entry {
                fingerprint: s.fingerprint,
                committed: s.window.committed(),
                verify: s.verify,
                cuts: s.cuts.clone(),
                path: s.path.to_string(),
                name: s.name.to_string(),
                dev: s.dev,
                ino: s.ino,
                seen: s.seen,
            };
            let done = !s.reading && s.window.outstanding() == 0;
            if done {
                retired.push(e)
            } else {
                all.push(e)
            }
            !done
        });
        let mut table = lock(&self.table);
        if !retired.is_empty() {
            self.retired.store(true, Ordering::Release);
        }
        table.append(&mut retired);
        checkpoint::prune(&mut table, now, self.forget_after);
        all.extend(table.iter().cloned());
        drop(table);
        checkpoint::save(&self.dir, &all, &self.masking)
    }

    /// Saves now because records are about to be sent that a re-read must frame the same way
    /// (ended by the clock: their cuts; the first of a file started at its end: where it
    /// starts). A failure (a full volume) is said once per spell; the records are sent anyway
    /// (holding them would stop shipping).
    fn save_before_sending(&self) {
        match self.save() {
            Ok(()) => self.unsaved.store(false, Ordering::Release),
            Err(error) => {
                self.dirty.store(true, Ordering::Release);
                Metrics::add(&self.metrics.checkpoint_failures, 1);
                if !self.unsaved.swap(true, Ordering::AcqRel) {
                    tracing::warn!(
                        %error,
                        "cannot write the checkpoint before sending records a re-read must see \
                         the same way; sending them anyway (after a crash before the next \
                         checkpoint, such a record may be stored again, joined with the lines \
                         after it)"
                    );
                }
            }
        }
    }
}

/// The running files source. Dropping it stops reading (without a last checkpoint: call
/// [`FilesSource::checkpoint`] first for a graceful stop).
#[derive(Debug)]
pub struct FilesSource {
    shared: Arc<Shared>,
    /// Closed (true) by `stop_reading`; the loop sends only while it is open.
    gate: Arc<Mutex<bool>>,
    stop_tx: watch::Sender<bool>,
    /// Set by `drain`: the loop reads to the ends, flushes, sends and stops.
    draining: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    saver: tokio::task::JoinHandle<()>,
}

impl FilesSource {
    /// Loads the checkpoint of `config.data_dir` (a corrupt one is moved aside with a warning and
    /// the source starts fresh, from the beginning of every file) and starts reading.
    pub fn start(
        config: FilesConfig,
        make_frame: MakeFrame,
        budget: Budget,
        out: mpsc::Sender<Run>,
        metrics: Arc<Metrics>,
    ) -> Result<FilesSource, FilesError> {
        let handle = Handle::try_current().map_err(|_| FilesError::NoRuntime)?;
        let globs: Vec<PathGlob> = config.paths.iter().filter_map(|g| PathGlob::parse(g)).collect();
        if globs.is_empty() {
            return Err(FilesError::NoPaths(config.paths.clone()));
        }
        let exclude = config.exclude.iter().filter_map(|g| PathGlob::parse(g)).collect();
        // `start_at` is for the very first start only: after a restart a file without a
        // checkpoint entry appeared while the agent was down (log4j rolling during a rolling
        // update) and is read from its beginning. A corrupt checkpoint reads everything again.
        let (table, start_at) = match checkpoint::load_if_any(&config.data_dir) {
            Ok(Some((t, masking))) => {
                say_masking_changed(&t, masking.as_deref(), &config.masking);
                (t, StartAt::Beginning)
            }
            Ok(None) => (Vec::new(), config.start_at),
            Err(error @ CheckpointError::Corrupt { .. }) => {
                tracing::warn!(
                    error = %error,
                    "starting without a checkpoint: every file is read from its beginning \
                     (Elasticsearch answers 409 for what it already has)"
                );
                (Vec::new(), StartAt::Beginning)
            }
            Err(e) => return Err(e.into()),
        };
        // A checkpoint file at once, so that a restart before the first periodic write is not
        // taken for the very first start. A write that fails (a full volume) is tried again by
        // the periodic writer; the source goes on.
        let first_write =
            if table.is_empty() { checkpoint::save(&config.data_dir, &[], &config.masking) } else { Ok(()) };
        if let Err(error) = &first_write {
            tracing::warn!(%error, "cannot write the checkpoint yet; trying again with the next write");
        }
        let shared = Arc::new(Shared {
            dir: config.data_dir.clone(),
            masking: config.masking.clone(),
            forget_after: config.forget_after,
            trackers: Mutex::new(Vec::new()),
            table: Mutex::new(table),
            retired: AtomicBool::new(false),
            dirty: Arc::new(AtomicBool::new(first_write.is_err())),
            save_lock: Mutex::new(()),
            unsaved: AtomicBool::new(false),
            metrics: metrics.clone(),
        });
        let gate = Arc::new(Mutex::new(false));
        let draining = Arc::new(AtomicBool::new(false));
        let (stop_tx, stop_rx) = watch::channel(false);
        let saver = tokio::spawn(save_periodically(shared.clone(), config.checkpoint_interval));
        let mut the_loop = Loop {
            io: Io { handle, budget, out, metrics, gate: gate.clone(), stop_rx },
            shared: shared.clone(),
            make_frame,
            globs,
            exclude,
            start_at,
            cfg: config,
            readers: Vec::new(),
            warned: HashSet::new(),
            nothing_found: false,
            buf: vec![0; 64 * 1024],
            draining: draining.clone(),
            framed: 0,
        };
        let thread = std::thread::Builder::new()
            .name("logship-files".into())
            .spawn(move || the_loop.run())
            .map_err(FilesError::Thread)?;
        Ok(FilesSource { shared, gate, stop_tx, draining, thread: Some(thread), saver })
    }

    /// The graceful stop: read every open file to its current end, emit the records the frames
    /// hold (a line without its newline excepted), send them all, then stop and drop the
    /// sender, so that the pipeline behind drains. Sending still waits for the budget:
    /// [`FilesSource::stop_reading`] cuts a drain short.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// No record is sent after this returns (the one being sent is dropped, not acknowledged:
    /// it is read again after a restart).
    pub fn stop_reading(&self) {
        *lock(&self.gate) = true;
        let _ = self.stop_tx.send(true);
    }

    /// Writes the checkpoint now (after the sink drained, at a graceful stop).
    pub async fn checkpoint(&self) -> Result<(), FilesError> {
        self.shared.dirty.store(false, Ordering::Release);
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.save()).await??;
        Ok(())
    }

    /// The files tracked now, for `/metrics`.
    pub fn status(&self) -> Vec<FileStatus> {
        lock(&self.shared.trackers)
            .iter()
            .map(|t| {
                let s = t.lock();
                let committed = s.window.committed().offset;
                FileStatus {
                    path: s.path.to_string(),
                    fingerprint: s.fingerprint,
                    size: s.size,
                    committed,
                    lag_bytes: s.size.saturating_sub(committed),
                    oldest_unacked: s.window.oldest().map(|t| t.elapsed()),
                    reading: s.reading,
                }
            })
            .collect()
    }
}

impl Drop for FilesSource {
    fn drop(&mut self) {
        self.stop_reading();
        self.saver.abort();
        if let Some(t) = self.thread.take() {
            // Prompt: the loop checks the stop flag every poll interval and its waits end on it.
            let _ = t.join();
        }
    }
}

/// Says so when the records are masked otherwise than when the checkpoint was written (the rules
/// or patterns changed, redaction was turned on or off, or the checkpoint predates masking).
/// Nothing before a checkpointed position is read again, so no acknowledged record is stored
/// twice; but the records after it, those in flight at the last stop, are framed again with
/// other bytes and so other ids.
fn say_masking_changed(table: &[Entry], before: Option<&str>, now: &str) {
    if table.is_empty() || now.is_empty() || before == Some(now) {
        return;
    }
    tracing::warn!(
        before = before.unwrap_or("none (written before records were masked)"),
        now,
        files = table.len(),
        "the masking of records changed since the checkpoint was written: the records after it \
         (in flight at the last stop, or acknowledged in its last second if it was a crash) get \
         other ids than when they were sent, so any of them Elasticsearch already has is stored \
         again; nothing before it is read again"
    );
}

async fn save_periodically(shared: Arc<Shared>, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if shared.dirty.swap(false, Ordering::AcqRel) {
            let s = shared.clone();
            match tokio::task::spawn_blocking(move || s.save()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    Metrics::add(&shared.metrics.checkpoint_failures, 1);
                    tracing::warn!(%error, "checkpoint not written; retrying");
                    shared.dirty.store(true, Ordering::Release);
                }
                Err(error) => tracing::warn!(%error, "checkpoint writer failed"),
            }
        }
    }
}

/// The loop was told to stop.
#[derive(Debug)]
struct Stopped;

/// What sending needs, apart from the readers (so a reader can be borrowed while sending).
struct Io {
    handle: Handle,
    budget: Budget,
    out: mpsc::Sender<Run>,
    metrics: Arc<Metrics>,
    gate: Arc<Mutex<bool>>,
    stop_rx: watch::Receiver<bool>,
}

impl Io {
    fn stopped(&self) -> bool {
        *self.stop_rx.borrow()
    }

    /// Sends `records` of `reading` in order, each after taking its bytes from the budget. The
    /// budget and the channel are taken for a run of records at once (one wait per run, not per
    /// record: the per-record cost is what bounds throughput), then shared out.
    fn send(&self, reading: &Reading, records: Vec<Record>) -> Result<(), Stopped> {
        let mut records = records.into_iter().peekable();
        while records.peek().is_some() {
            let mut run = Vec::new();
            let mut total = 0;
            while let Some(rec) = records.next_if(|r| {
                let share = self.budget.share(r.bytes.len());
                run.is_empty() || (run.len() < MAX_RUN && (total + share) as u64 <= self.budget.max())
            }) {
                total += self.budget.share(rec.bytes.len());
                run.push(rec);
            }
            self.send_run(reading, run, total)?;
        }
        Ok(())
    }

    fn send_run(&self, reading: &Reading, run: Vec<Record>, total: usize) -> Result<(), Stopped> {
        let mut stop = self.stop_rx.clone();
        let (budget, out, n) = (&self.budget, &self.out, run.len());
        let got = self.handle.block_on(async move {
            let permit = tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => None,
                p = budget.take(total) => Some(p),
            }?;
            let slot = tokio::select! {
                biased;
                _ = stop.wait_for(|s| *s) => None,
                slot = out.reserve() => slot.ok(),
            }?;
            Some((permit, slot))
        });
        let Some((permit, slot)) = got else { return Err(Stopped) };
        let mut permit = Some(permit);
        let gate = lock(&self.gate);
        if *gate {
            return Err(Stopped);
        }
        let last = n - 1;
        let now = Instant::now();
        Metrics::add(&self.metrics.records_read, n as u64);
        Metrics::add(&self.metrics.records_cut, run.iter().filter(|r| r.cut).count() as u64);
        // The run's records enter the acknowledgement window together: one lock per run.
        let mut tracker = reading.tracker.lock();
        let mut items = Vec::with_capacity(n);
        for (i, rec) in run.into_iter().enumerate() {
            // The run's total is the sum of its records' shares: each splits its own off, the
            // last takes what is left (a lone record larger than the budget: all of it).
            let share = self.budget.share(rec.bytes.len());
            let mine = if i == last { permit.take() } else { permit.as_mut().and_then(|p| p.split(share)) };
            let Some(mine) = mine else {
                debug_assert!(false, "a run's permits match its records");
                return Err(Stopped);
            };
            let end = Position { offset: rec.end, chain: rec.chain };
            let seq = tracker.window.sent(end, now);
            items.push((rec, reading.meta.clone(), Ack::new(reading.tracker.clone(), seq, mine)));
        }
        slot.send(items);
        Ok(())
    }
}

/// Records sent per wait for the budget and the channel, as one message.
const MAX_RUN: usize = 256;

struct Loop {
    io: Io,
    shared: Arc<Shared>,
    make_frame: MakeFrame,
    cfg: FilesConfig,
    globs: Vec<PathGlob>,
    exclude: Vec<PathGlob>,
    start_at: StartAt,
    readers: Vec<Reader>,
    /// Paths we could not open, warned about once.
    warned: HashSet<PathBuf>,
    /// Whether the last rescan found no file at all: said once per spell, since a pod whose
    /// globs match nothing would otherwise ship nothing without a word.
    nothing_found: bool,
    buf: Vec<u8>,
    draining: Arc<AtomicBool>,
    /// What the frames hold, counted at each turn's start and kept up to date as files are read
    /// (see [`Loop::step`]).
    framed: usize,
}

impl Loop {
    fn run(&mut self) {
        let (tx, rx) = std::sync::mpsc::channel();
        let _watcher = discover::watch(&self.globs, tx);
        let mut first = true;
        let mut names = true;
        let mut next_scan = Instant::now();
        while !self.io.stopped() {
            if self.draining.load(Ordering::Acquire) {
                if let Err(Stopped) = self.drain() {
                    tracing::debug!("drain cut short");
                }
                break;
            }
            if names || Instant::now() >= next_scan {
                self.rescan(first);
                first = false;
                names = false;
                next_scan = Instant::now() + self.cfg.rescan_interval;
            }
            let busy = match self.turn() {
                Ok(busy) => busy,
                Err(Stopped) => break,
            };
            let wait = if busy { Duration::ZERO } else { self.cfg.poll_interval };
            match rx.recv_timeout(wait) {
                Ok(w) => {
                    names |= w == Wake::Names;
                    names |= rx.try_iter().any(|w| w == Wake::Names);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
            }
        }
        tracing::debug!("file reading stopped");
    }

    /// Matches the globs' files against the open ones: renamed files get their new name, files
    /// no longer found start their grace, new files are opened.
    fn rescan(&mut self, at_startup: bool) {
        let found = discover::scan(&self.globs, &self.exclude);
        let nothing = found.is_empty() && self.readers.is_empty();
        if nothing && !self.nothing_found {
            let paths: Vec<String> = self.globs.iter().map(|g| g.to_string()).collect();
            tracing::info!(
                paths = %paths.join(","),
                rescan = %humantime::format_duration(self.cfg.rescan_interval),
                "no file matches the paths (yet); watching for one"
            );
        }
        self.nothing_found = nothing;
        let now = Instant::now();
        for r in &mut self.readers {
            match found.iter().find(|f| (f.dev, f.ino) == (r.dev, r.ino)) {
                Some(f) => {
                    if f.path != r.path {
                        tracing::debug!(from = %r.path.display(), to = %f.path.display(), "file renamed");
                        r.path = f.path.clone();
                    }
                    r.gone_since = None;
                }
                None => {
                    r.gone_since.get_or_insert(now);
                }
            }
        }
        for f in found {
            if self.readers.iter().any(|r| (r.dev, r.ino) == (f.dev, f.ino)) {
                continue;
            }
            match File::open(&f.path).and_then(|file| Reader::new(file, f.path.clone(), at_startup)) {
                Ok(r) => {
                    self.warned.remove(&f.path);
                    tracing::debug!(path = %f.path.display(), "file found");
                    self.readers.push(r);
                }
                Err(error) => {
                    if self.warned.insert(f.path.clone()) {
                        tracing::warn!(path = %f.path.display(), %error, "cannot open file; retrying at each rescan");
                    }
                }
            }
        }
    }

    /// Reads every open file to its end, then sends what the frames still hold.
    fn drain(&mut self) -> Result<(), Stopped> {
        while self.turn()? {}
        for r in &mut self.readers {
            if let Some(reading) = r.reading.as_mut() {
                reading.frame.flush(&mut reading.timed);
                reading.held_cuts();
            }
        }
        self.send_timed()
    }

    /// Sends the records the clock ended this turn, once their cuts are saved (one write for
    /// all files).
    fn send_timed(&mut self) -> Result<(), Stopped> {
        if !self.readers.iter().any(|r| r.reading.as_ref().is_some_and(|x| !x.timed.is_empty())) {
            return Ok(());
        }
        self.shared.save_before_sending();
        for r in &mut self.readers {
            if let Some(reading) = r.reading.as_mut() {
                let records = std::mem::take(&mut reading.timed);
                self.io.send(reading, records)?;
            }
        }
        Ok(())
    }

    /// Looks at every open file once; whether one had more to read than a turn allows.
    fn turn(&mut self) -> Result<bool, Stopped> {
        if self.shared.retired.swap(false, Ordering::AcqRel) {
            for r in &mut self.readers {
                r.alias_size = None;
            }
        }
        let mut busy = false;
        self.framed =
            self.readers.iter().filter_map(|r| r.reading.as_ref()).map(|x| x.frame.pending_bytes()).sum();
        let mut i = 0;
        while i < self.readers.len() {
            busy |= self.step(i)?;
            i += 1;
        }
        self.send_timed()?;
        let grace = self.cfg.rotate_grace;
        self.readers.retain(|r| !(r.done_with() && r.gone_since.is_some_and(|g| g.elapsed() >= grace)));
        Ok(busy)
    }

    fn step(&mut self, i: usize) -> Result<bool, Stopped> {
        let grace = self.cfg.rotate_grace;
        let r = &mut self.readers[i];
        let Ok((_, _, size)) = dev_ino_size(&r.file) else { return Ok(false) };
        let grew = size != r.size;
        if grew {
            r.size = size;
            r.last_growth = Instant::now();
        }
        if r.reading.is_none() {
            // A let-go file that was never read: its first line never got its newline (a JVM
            // that died writing it). Read now, or that line is lost with the file.
            let let_go = r.let_go(grace);
            let never_read = let_go && !r.done_with();
            if (r.alias_size == Some(size) || r.gone_since.is_some()) && !never_read {
                return Ok(false);
            }
            self.identify(i, let_go);
        }
        let r = &mut self.readers[i];
        let Some(reading) = r.reading.as_mut() else { return Ok(false) };
        reading.tracker.lock().size = size;
        if (size < reading.read || grew) && !reading.still_there(&r.file, size) {
            self.replaced(i)?;
            return Ok(true);
        }
        let r = &mut self.readers[i];
        let Some(reading) = r.reading.as_mut() else { return Ok(false) };
        let mut records = Vec::new();
        let framed_before = reading.frame.pending_bytes();
        let n = reading.read_new(&r.file, size, &mut self.buf, &mut records).unwrap_or_else(|error| {
            tracing::warn!(path = %r.path.display(), %error, "read failed; retrying");
            0
        });
        Metrics::add(&self.io.metrics.bytes_read, n);
        self.io.send(reading, records)?;
        let framed = reading.frame.pending_bytes();
        self.framed = (self.framed + framed).saturating_sub(framed_before);
        if framed > 0 && self.framed > self.cfg.framed_max_bytes {
            // The frames hold more than they may: this file's pending record is shipped now
            // rather than when its next line comes (a line still being written stays).
            // Sent at once, not with the turn's other timed records: held until the turn's end,
            // they would all be in memory together.
            reading.frame.flush(&mut reading.timed);
            if reading.held_cuts() {
                self.shared.save_before_sending();
                let records = std::mem::take(&mut reading.timed);
                Metrics::add(&self.io.metrics.records_shipped_early, records.len() as u64);
                self.framed = self.framed.saturating_sub(framed - reading.frame.pending_bytes());
                self.io.send(reading, records)?;
                return Ok(true);
            }
        }
        if n == 0 {
            reading.frame.idle(tokio::time::Instant::now(), &mut reading.timed);
            if reading.held_cuts() {
                // Sent at the end of the turn, after their cuts are saved; let go next turn.
                return Ok(false);
            }
        }
        if n == 0 && r.let_go(grace) {
            tracing::debug!(path = %r.path.display(), "rotated away or deleted, read to its end: let go");
            r.finished = true;
            if let Some(reading) = r.reading.take() {
                self.finish(reading)?;
            }
        }
        Ok(n >= super::tail::TURN)
    }

    /// Emits what the frame still holds and lets the tracker go once all is acknowledged.
    fn finish(&self, mut reading: Reading) -> Result<(), Stopped> {
        let mut records = Vec::new();
        reading.frame.finish(&mut records);
        reading.mark_end_of(&records);
        self.io.send(&reading, records)?;
        reading.tracker.lock().reading = false;
        self.shared.dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// Gives reader `i` an identity once its first line is complete (or, `let_go`, once it will
    /// not change any more): the copy of a file being read (not read itself), the file of a
    /// checkpoint entry (resumed there), or a new file.
    fn identify(&mut self, i: usize, let_go: bool) {
        let r = &self.readers[i];
        let fp = if let_go { file_final_fingerprint(&r.file) } else { file_fingerprint(&r.file) };
        let Some(fp) = fp else {
            // Its first line is incomplete: `start_at` no longer applies once it is there.
            self.readers[i].at_startup = false;
            return;
        };
        let size = r.size;
        // Same first line as a file being read: the same file only if the bytes agree up to where
        // both go. When unsure, read it: a double read costs 409s, a wrong skip loses data.
        let copy_of = self.readers.iter().enumerate().find(|(j, other)| {
            other.reading.as_ref().is_some_and(|o| {
                let x = size.min(o.read);
                *j != i
                    && o.fingerprint == fp
                    && x > 0
                    && file_window(&r.file, x).is_some_and(|h| file_window(&other.file, x) == Some(h))
            })
        });
        if let Some((_, other)) = copy_of {
            tracing::debug!(path = %r.path.display(), of = %other.path.display(), "a copy of a file being read");
            self.readers[i].alias_size = Some(size);
            return;
        }
        let claimed = self.shared.claim(fp, size, &r.file, &r.path);
        let name: Arc<str> = match &claimed {
            Some(e) if !e.name.is_empty() => e.name.as_str().into(),
            _ => stem(&r.path).into(),
        };
        let at_end = claimed.is_none() && r.at_startup && self.start_at == StartAt::End;
        let (start, verify, cuts) = match claimed {
            Some(e) => (e.committed, e.verify, e.cuts),
            None if at_end => (Position { offset: last_line_end(&r.file, size), chain: 0 }, None, Vec::new()),
            None => (Position::default(), None, Vec::new()),
        };
        tracing::debug!(path = %r.path.display(), offset = start.offset, "reading file");
        let path: Arc<str> = r.path.to_string_lossy().into();
        let tracker = Arc::new(Tracker::new(
            TrackState {
                fingerprint: fp,
                path: path.clone(),
                name: name.clone(),
                dev: r.dev,
                ino: r.ino,
                size,
                window: AckWindow::new(start),
                marks: verify.into_iter().collect(),
                verify,
                cuts: cuts.clone(),
                reading: true,
                seen: SystemTime::now(),
            },
            self.shared.dirty.clone(),
        ));
        lock(&self.shared.trackers).push(tracker.clone());
        self.shared.dirty.store(true, Ordering::Release);
        let mut frame = (self.make_frame)(start);
        frame.cut_at(&cuts);
        let reading = Reading {
            fingerprint: fp,
            frame,
            read: start.offset,
            // What we resume after: it tells whether the file is rewritten from here on.
            tail: file_tail(&r.file, start.offset),
            timed: Vec::new(),
            tracker,
            meta: Arc::new(FileMeta { pod: pod_from_path(&r.path), path, fingerprint: fp, name }),
        };
        if at_end {
            // Where it starts is kept before anything is sent: after a crash before the next
            // checkpoint, the file would be read from 0 (the records again, under other ids).
            reading.mark_start();
            self.shared.save_before_sending();
        }
        let r = &mut self.readers[i];
        r.reading = Some(reading);
        r.alias_size = None;
        r.at_startup = false;
    }

    /// Reader `i`'s file no longer holds what we read (copytruncate, or rewritten): finish the
    /// old content from its copy if there is one (same first line, the bytes we read, at least as
    /// long), else let it end; the file itself is then a new one, read from 0.
    fn replaced(&mut self, i: usize) -> Result<(), Stopped> {
        let Some(reading) = self.readers[i].reading.take() else { return Ok(()) };
        let r = &mut self.readers[i];
        r.alias_size = None;
        r.at_startup = false;
        let (path, dev, ino) = (r.path.clone(), r.dev, r.ino);
        tracing::info!(path = %path.display(), read = reading.read, "file truncated or replaced: reading it again from 0");
        let copy = self
            .readers
            .iter()
            .position(|o| {
                o.reading.is_none() && (o.dev, o.ino) != (dev, ino) && reading.continues_in(&o.file)
            })
            .or_else(|| self.copy_in_dir(&path, dev, ino, &reading));
        match copy {
            Some(j) => {
                let c = &mut self.readers[j];
                tracing::info!(copy = %c.path.display(), "finishing the truncated file's content from its copy");
                {
                    let mut s = reading.tracker.lock();
                    (s.dev, s.ino) = (c.dev, c.ino);
                    s.path = c.path.to_string_lossy().into();
                }
                c.reading = Some(reading);
                c.alias_size = None;
                Ok(())
            }
            None => self.finish(reading),
        }
    }

    /// A file next to `path` (the glob may not match it) that continues `reading`: opened as a
    /// reader of its own; its index.
    fn copy_in_dir(&mut self, path: &Path, dev: u64, ino: u64, reading: &Reading) -> Option<usize> {
        let dir = path.parent()?;
        for entry in fs::read_dir(dir).ok()?.flatten() {
            let p = entry.path();
            let Ok(m) = fs::metadata(&p) else { continue };
            if !m.is_file() || (m.dev(), m.ino()) == (dev, ino) || m.len() < reading.read {
                continue;
            }
            if self.readers.iter().any(|r| (r.dev, r.ino) == (m.dev(), m.ino())) {
                continue;
            }
            let Ok(file) = File::open(&p) else { continue };
            if reading.continues_in(&file) {
                let Ok(mut r) = Reader::new(file, p, false) else { continue };
                // Not matched by the globs, perhaps: the rescan decides; until then it is read.
                r.gone_since = None;
                self.readers.push(r);
                return Some(self.readers.len() - 1);
            }
        }
        None
    }
}

/// A file's name without the suffixes rotation adds: `app.log` for `app.log.3`, `app.log.1.gz`,
/// `app.log-20261127`, `0.log.20261127-101500` (the kubelet's).
fn stem(path: &Path) -> String {
    let mut name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    loop {
        let cut = name.strip_suffix(".gz").map(str::len).or_else(|| {
            let at = name.rfind(['.', '-'])?;
            let suffix = &name[at + 1..];
            let rotation = !suffix.is_empty()
                && suffix.bytes().any(|b| b.is_ascii_digit())
                && suffix
                    .bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'T' | b'Z' | b':'));
            (rotation && at > 0).then_some(at)
        });
        match cut {
            Some(at) => name.truncate(at),
            None => return name,
        }
    }
}

#[cfg(test)]
mod stem_tests {
    use super::*;

    #[test]
    fn rotation_suffixes_are_removed() {
        for (path, stem_) in [
            ("/l/app.log", "app.log"),
            ("/l/app.log.3", "app.log"),
            ("/l/app.log.1.gz", "app.log"),
            ("/l/app.log-20261127", "app.log"),
            ("/l/app.log-2026-11-27", "app.log"),
            ("/var/log/pods/ns_p_u/c/0.log.20261127-101500", "0.log"),
            ("/l/DataServer.log", "DataServer.log"),
            ("/l/2026.log", "2026.log"),
        ] {
            assert_eq!(stem(Path::new(path)), stem_, "{path}");
        }
    }
}
