//! Batching of documents into `_bulk` requests by count, by size and by age: a batch is cut when
//! it holds `docs` documents, when the next document would take it past `bytes`, or `age` after
//! its first document arrived — so a quiet file's last line still ships within a second.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::request::body_size;
use crate::record::Document;

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

/// Cuts the documents of a channel into batches. Its state lives in the struct, so `next` may be
/// cancelled (raced against a stop signal) without losing what it had gathered.
#[derive(Debug)]
pub struct Batcher {
    rx: mpsc::Receiver<Document>,
    limits: BatchLimits,
    pending: Vec<Document>,
    pending_bytes: usize,
    /// When the first pending document arrived (the age limit counts from there).
    since: Option<Instant>,
    /// A document that did not fit the previous batch: the first of the next.
    carry: Option<Document>,
    closed: bool,
}

impl Batcher {
    pub fn new(rx: mpsc::Receiver<Document>, limits: BatchLimits) -> Self {
        let limits = BatchLimits { docs: limits.docs.max(1), bytes: limits.bytes.max(1), ..limits };
        Batcher { rx, limits, pending: Vec::new(), pending_bytes: 0, since: None, carry: None, closed: false }
    }

    /// The next batch; `None` once the channel is closed and everything received was handed
    /// out. When the channel closes, what is pending is handed out at once (no waiting for the
    /// age limit: that is the flush on shutdown).
    pub async fn next(&mut self) -> Option<Vec<Document>> {
        if let Some(doc) = self.carry.take() {
            self.add(doc);
        }
        loop {
            if self.full() || (self.closed && !self.pending.is_empty()) {
                return Some(self.cut());
            }
            if self.closed {
                return None;
            }
            // What is already queued is taken without a timer: arming one per document costs
            // more than the document.
            let received = match self.rx.try_recv() {
                Ok(doc) => Some(doc),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => match self.since {
                    None => self.rx.recv().await,
                    Some(since) => {
                        match tokio::time::timeout_at(since + self.limits.age, self.rx.recv()).await {
                            Ok(r) => r,
                            Err(_) => return Some(self.cut()),
                        }
                    }
                },
            };
            match received {
                None => self.closed = true,
                Some(doc) => {
                    let size = body_size(&doc);
                    if !self.pending.is_empty() && self.pending_bytes + size > self.limits.bytes {
                        self.carry = Some(doc);
                        return Some(self.cut());
                    }
                    self.add(doc);
                }
            }
        }
    }

    fn add(&mut self, doc: Document) {
        self.pending_bytes += body_size(&doc);
        self.pending.push(doc);
        self.since.get_or_insert_with(Instant::now);
    }

    fn full(&self) -> bool {
        self.pending.len() >= self.limits.docs || self.pending_bytes >= self.limits.bytes
    }

    fn cut(&mut self) -> Vec<Document> {
        self.pending_bytes = 0;
        self.since = None;
        std::mem::take(&mut self.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::Ack;

    fn doc(n: usize, size: usize) -> Document {
        Document { index: "i".into(), id: format!("{n}"), source: vec![b'x'; size], ack: Ack::none() }
    }

    fn ids(b: &[Document]) -> Vec<&str> {
        b.iter().map(|d| d.id.as_str()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn cut_by_count() {
        let (tx, rx) = mpsc::channel(100);
        let mut b = Batcher::new(rx, BatchLimits { docs: 3, ..BatchLimits::default() });
        for n in 0..7 {
            tx.send(doc(n, 10)).await.expect("send");
        }
        let t0 = Instant::now();
        assert_eq!(ids(&b.next().await.expect("batch")), ["0", "1", "2"]);
        assert_eq!(ids(&b.next().await.expect("batch")), ["3", "4", "5"]);
        assert_eq!(t0.elapsed(), Duration::ZERO, "full batches do not wait");
        drop(tx);
        assert_eq!(ids(&b.next().await.expect("batch")), ["6"]);
        assert!(b.next().await.is_none());
        assert_eq!(t0.elapsed(), Duration::ZERO, "closing flushes at once");
    }

    #[tokio::test(start_paused = true)]
    async fn cut_by_bytes_carries_the_next() {
        let (tx, rx) = mpsc::channel(100);
        // Each doc is 35 + 1 + 1 + 100 = 137 bytes: two fit in 300, the third is carried.
        let mut b = Batcher::new(rx, BatchLimits { bytes: 300, ..BatchLimits::default() });
        for n in 0..3 {
            tx.send(doc(n, 100)).await.expect("send");
        }
        tx.send(doc(3, 1000)).await.expect("send");
        drop(tx);
        assert_eq!(ids(&b.next().await.expect("batch")), ["0", "1"]);
        assert_eq!(ids(&b.next().await.expect("batch")), ["2"]);
        // Larger than the limit alone: a batch of its own, not stuck.
        assert_eq!(ids(&b.next().await.expect("batch")), ["3"]);
        assert!(b.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn cut_by_age_from_the_first_document() {
        let (tx, rx) = mpsc::channel(100);
        let mut b = Batcher::new(rx, BatchLimits::default());
        let t0 = Instant::now();
        let feeder = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await; // idle before: does not count
            tx.send(doc(0, 10)).await.expect("send");
            tokio::time::sleep(Duration::from_millis(600)).await;
            tx.send(doc(1, 10)).await.expect("send");
            tokio::time::sleep(Duration::from_millis(600)).await;
            tx.send(doc(2, 10)).await.expect("send");
            tx
        });
        assert_eq!(ids(&b.next().await.expect("batch")), ["0", "1"]);
        assert_eq!(t0.elapsed(), Duration::from_secs(6), "1 s after the first document");
        let tx = feeder.await.expect("feeder");
        assert_eq!(ids(&b.next().await.expect("batch")), ["2"]);
        assert_eq!(t0.elapsed(), Duration::from_millis(7200));
        drop(tx);
        assert!(b.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_next_keeps_what_it_gathered() {
        let (tx, rx) = mpsc::channel(100);
        let mut b = Batcher::new(rx, BatchLimits::default());
        tx.send(doc(0, 10)).await.expect("send");
        let r = tokio::time::timeout(Duration::from_millis(100), b.next()).await;
        assert!(r.is_err(), "still gathering");
        tx.send(doc(1, 10)).await.expect("send");
        assert_eq!(ids(&b.next().await.expect("batch")), ["0", "1"]);
    }
}
