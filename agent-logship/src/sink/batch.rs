//! Batching into `_bulk` requests by count, by size and by age: a batch is cut when it holds
//! `docs` documents, when the last document took it past `bytes` (that document then starts the
//! next), or `age` after its first document arrived — so a quiet file's last line still ships
//! within a second. Records are encoded into the batch's body as they are taken from the channel.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::bulk::{Bodies, Bulk, BulkWriter};

/// When to cut a batch. Defaults: 2000 documents, 5 MiB (uncompressed body), 1 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub docs: usize,
    pub bytes: usize,
    pub age: Duration,
}

impl Default for BatchLimits {
    fn default() -> Self {
        // 5 MiB stays well under the 10 MiB cap of managed services and ES's 100mb default.
        BatchLimits { docs: 2000, bytes: 5 * 1024 * 1024, age: Duration::from_secs(1) }
    }
}

/// Cuts what a channel brings, runs of items, into batches. Its state lives in the struct, so
/// `next` may be cancelled (raced against a stop signal) without losing what it had gathered.
#[derive(Debug)]
pub struct Batcher<T> {
    rx: mpsc::Receiver<Vec<T>>,
    limits: BatchLimits,
    open: BulkWriter,
    /// The last batch's body size: the next is given room for about as much.
    expect: usize,
    /// When the open batch's first document arrived (the age limit counts from there).
    since: Option<Instant>,
    /// The rest of the run taken from the channel, not yet in a batch.
    queued: std::vec::IntoIter<T>,
    closed: bool,
}

impl<T> Batcher<T> {
    /// Batches for `index` (the target of the requests' path).
    pub fn new(rx: mpsc::Receiver<Vec<T>>, limits: BatchLimits, index: Arc<str>) -> Self {
        let limits = BatchLimits { docs: limits.docs.max(1), bytes: limits.bytes.max(1), ..limits };
        let open = BulkWriter::new(index, 64 * 1024, &Bodies::default());
        Batcher { rx, limits, open, expect: 0, since: None, queued: Vec::new().into_iter(), closed: false }
    }

    /// Room for a new batch: a bit more than the last one: a body grown by doubling would be
    /// copied at each step, one reserved at the byte limit would hold memory it never uses
    /// (batches are mostly cut by count).
    fn room(&self) -> usize {
        (self.expect + self.expect / 8 + 4096).min(self.limits.bytes + 64 * 1024)
    }

    /// The next batch, each item added with `add` (which pushes its documents: one, usually);
    /// `None` once the channel is closed and everything received was handed out. When the
    /// channel closes, what is pending is handed out at once (no waiting for the age limit:
    /// that is the flush on shutdown).
    pub async fn next(&mut self, mut add: impl FnMut(&mut BulkWriter, T)) -> Option<Bulk> {
        loop {
            if self.full() {
                return Some(self.cut());
            }
            while let Some(item) = self.queued.next() {
                add(&mut self.open, item);
                if !self.open.is_empty() {
                    self.since.get_or_insert_with(Instant::now);
                }
                if self.full() {
                    return Some(self.cut());
                }
            }
            if self.closed {
                return (!self.open.is_empty()).then(|| self.cut());
            }
            // The next run: the age timer is armed once per run, not per item (that cost more
            // than the item). `queued` is empty here.
            let run = match self.since {
                None => self.rx.recv().await,
                Some(since) => match tokio::time::timeout_at(since + self.limits.age, self.rx.recv()).await {
                    Ok(run) => run,
                    Err(_) => return Some(self.cut()),
                },
            };
            match run {
                Some(run) => self.queued = run.into_iter(),
                None => self.closed = true,
            }
        }
    }

    fn full(&self) -> bool {
        self.open.len() >= self.limits.docs || self.open.body_len() >= self.limits.bytes
    }

    /// Hands out the open batch. One that went past the byte limit with its last document
    /// gives that document to the next batch (a document larger than the limit alone is a
    /// batch of its own, never stuck).
    fn cut(&mut self) -> Bulk {
        let carried = if self.open.body_len() > self.limits.bytes && self.open.len() > 1 {
            self.open.split_last(self.room())
        } else {
            None
        };
        self.expect = self.open.body_len();
        let next = carried.unwrap_or_else(|| self.open.next(self.room()));
        self.since = (!next.is_empty()).then(Instant::now);
        std::mem::replace(&mut self.open, next).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Ack;

    /// `(n, size)`: a document with id `n` whose source is `size` bytes.
    type Doc = (usize, usize);

    fn add(w: &mut BulkWriter, (n, size): Doc) {
        w.push(&n.to_string(), Ack::none(), |o| o.resize(o.len() + size, b'x'));
    }

    fn ids(b: &Bulk) -> Vec<String> {
        (0..b.len()).map(|i| b.id(i).to_string()).collect()
    }

    fn batcher(limits: BatchLimits) -> (mpsc::Sender<Vec<Doc>>, Batcher<Doc>) {
        let (tx, rx) = mpsc::channel(100);
        (tx, Batcher::new(rx, limits, "i".into()))
    }

    #[tokio::test(start_paused = true)]
    async fn cut_by_count() {
        let (tx, mut b) = batcher(BatchLimits { docs: 3, ..BatchLimits::default() });
        for n in 0..7 {
            tx.send(vec![(n, 10)]).await.expect("send");
        }
        let t0 = Instant::now();
        assert_eq!(ids(&b.next(add).await.expect("batch")), ["0", "1", "2"]);
        assert_eq!(ids(&b.next(add).await.expect("batch")), ["3", "4", "5"]);
        assert_eq!(t0.elapsed(), Duration::ZERO, "full batches do not wait");
        drop(tx);
        assert_eq!(ids(&b.next(add).await.expect("batch")), ["6"]);
        assert!(b.next(add).await.is_none());
        assert_eq!(t0.elapsed(), Duration::ZERO, "closing flushes at once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_is_cut_across_batches_in_order() {
        let (tx, mut b) = batcher(BatchLimits { docs: 4, ..BatchLimits::default() });
        tx.send((0..6).map(|n| (n, 10)).collect()).await.expect("send");
        tx.send(vec![]).await.expect("send");
        tx.send((6..9).map(|n| (n, 10)).collect()).await.expect("send");
        drop(tx);
        assert_eq!(ids(&b.next(add).await.expect("batch")), ["0", "1", "2", "3"]);
        assert_eq!(ids(&b.next(add).await.expect("batch")), ["4", "5", "6", "7"]);
        assert_eq!(ids(&b.next(add).await.expect("batch")), ["8"]);
        assert!(b.next(add).await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn cut_by_bytes_carries_the_last() {
        // Each document is 23 + 100 + 1 = 124 bytes of body: two fit in 300, the third is carried.
        let (tx, mut b) = batcher(BatchLimits { bytes: 300, ..BatchLimits::default() });
        for n in 0..3 {
            tx.send(vec![(n, 100)]).await.expect("send");
        }
        tx.send(vec![(3, 1000)]).await.expect("send");
        tx.send(vec![(4, 10)]).await.expect("send");
        drop(tx);
        let first = b.next(add).await.expect("batch");
        assert_eq!(ids(&first), ["0", "1"]);
        assert!(first.body().len() <= 300);
        assert_eq!(ids(&b.next(add).await.expect("batch")), ["2"]);
        // Larger than the limit alone: a batch of its own, not stuck.
        assert_eq!(ids(&b.next(add).await.expect("batch")), ["3"]);
        assert_eq!(ids(&b.next(add).await.expect("batch")), ["4"]);
        assert!(b.next(add).await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn cut_by_age_from_the_first_document() {
        let (tx, mut b) = batcher(BatchLimits::default());
        let t0 = Instant::now();
        let feeder = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await; // idle before: does not count
            tx.send(vec![(0, 10)]).await.expect("send");
            tokio::time::sleep(Duration::from_millis(600)).await;
            tx.send(vec![(1, 10)]).await.expect("send");
            tokio::time::sleep(Duration::from_millis(600)).await;
            tx.send(vec![(2, 10)]).await.expect("send");
            tx
        });
        assert_eq!(ids(&b.next(add).await.expect("batch")), ["0", "1"]);
        assert_eq!(t0.elapsed(), Duration::from_secs(6), "1 s after the first document");
        let tx = feeder.await.expect("feeder");
        assert_eq!(ids(&b.next(add).await.expect("batch")), ["2"]);
        assert_eq!(t0.elapsed(), Duration::from_millis(7200));
        drop(tx);
        assert!(b.next(add).await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_next_keeps_what_it_gathered() {
        let (tx, mut b) = batcher(BatchLimits::default());
        tx.send(vec![(0, 10)]).await.expect("send");
        let r = tokio::time::timeout(Duration::from_millis(100), b.next(add)).await;
        assert!(r.is_err(), "still gathering");
        tx.send(vec![(1, 10)]).await.expect("send");
        assert_eq!(ids(&b.next(add).await.expect("batch")), ["0", "1"]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_item_may_add_nothing() {
        let (tx, mut b) = batcher(BatchLimits::default());
        tx.send(vec![(0, 10)]).await.expect("send");
        drop(tx);
        let batch = b.next(|_, _| {}).await;
        assert!(batch.is_none(), "no empty batch");
    }
}
