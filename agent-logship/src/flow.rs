//! The two things that connect the sources and the sink: a [`Budget`] of in-flight bytes (read
//! but not yet acknowledged; when spent, reading pauses — backpressure, not buffering) and the
//! [`Ack`] each document carries back to its source.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The in-flight byte budget shared by every source.
#[derive(Debug, Clone)]
pub struct Budget {
    bytes: Arc<Semaphore>,
    max: u32,
}

/// A share of the [`Budget`], given back when dropped.
#[derive(Debug)]
pub struct Permit(OwnedSemaphorePermit);

impl Permit {
    /// Takes `other`'s bytes into this share (both from the same budget; else `other` is simply
    /// given back).
    fn merge(&mut self, other: Permit) {
        if Arc::ptr_eq(self.0.semaphore(), other.0.semaphore()) {
            self.0.merge(other.0);
        }
    }

    /// Splits `bytes` off this share (for the records of a batch taken at once); `None` if it
    /// holds fewer.
    pub fn split(&mut self, bytes: usize) -> Option<Permit> {
        self.0.split(bytes.max(1)).map(Permit)
    }
}

impl Budget {
    /// A budget of `max` bytes (capped at `u32::MAX`).
    pub fn new(max: u64) -> Self {
        let max = u32::try_from(max).unwrap_or(u32::MAX).max(1);
        Budget { bytes: Arc::new(Semaphore::new(max as usize)), max }
    }

    /// What [`Budget::take`] takes for `bytes`: at least 1, at most the whole budget.
    pub fn share(&self, bytes: usize) -> usize {
        u32::try_from(bytes).unwrap_or(u32::MAX).clamp(1, self.max) as usize
    }

    /// Takes `bytes` from the budget, waiting while it is spent. A record larger than the whole
    /// budget takes all of it rather than waiting forever.
    pub async fn take(&self, bytes: usize) -> Permit {
        let n = self.share(bytes) as u32;
        match self.bytes.clone().acquire_many_owned(n).await {
            Ok(p) => Permit(p),
            // The semaphore is never closed; were it, nothing would wait.
            Err(_) => unreachable_closed(),
        }
    }

    /// [`Budget::take`] without waiting: `None` while the budget is spent.
    pub fn try_take(&self, bytes: usize) -> Option<Permit> {
        let n = self.share(bytes) as u32;
        self.bytes.clone().try_acquire_many_owned(n).ok().map(Permit)
    }

    /// Bytes read but not yet acknowledged.
    pub fn in_flight(&self) -> u64 {
        u64::from(self.max) - self.bytes.available_permits() as u64
    }

    pub fn max(&self) -> u64 {
        u64::from(self.max)
    }
}

#[cold]
fn unreachable_closed() -> ! {
    // The semaphore lives as long as the budget and is never closed.
    std::process::abort()
}

/// Who wants to hear that a document was delivered: a file's acknowledgement tracker, say.
pub trait Acknowledge: Send + Sync + std::fmt::Debug {
    /// The document with this source-assigned sequence number is stored (or dead-lettered, so
    /// never coming back): the source may move its checkpoint past it once all earlier ones are.
    fn acknowledge(&self, seq: u64);

    /// Several at once (a source may take its lock once for them).
    fn acknowledge_all(&self, seqs: &[u64]) {
        for seq in seqs {
            self.acknowledge(*seq);
        }
    }
}

/// A document's way back to its source, holding its share of the budget.
#[derive(Debug)]
pub struct Ack {
    to: Option<Arc<dyn Acknowledge>>,
    seq: u64,
    _permit: Option<Permit>,
}

impl Ack {
    pub fn new(to: Arc<dyn Acknowledge>, seq: u64, permit: Permit) -> Self {
        Ack { to: Some(to), seq, _permit: Some(permit) }
    }

    /// An acknowledgement nobody waits for (stdout sink tests, documents built in tests).
    pub fn none() -> Self {
        Ack { to: None, seq: 0, _permit: None }
    }

    /// Delivered: tell the source, give the bytes back.
    pub fn done(self) {
        if let Some(to) = &self.to {
            to.acknowledge(self.seq);
        }
    }
}

/// [`Ack::done`] for a batch's documents: each source told once for its run of them, the bytes
/// given back in one piece — per document, the locks cost more than the rest of shipping it.
pub fn done_all(acks: impl IntoIterator<Item = Ack>) {
    let mut budget: Option<Permit> = None;
    let mut source: Option<Arc<dyn Acknowledge>> = None;
    let mut seqs = Vec::new();
    for Ack { to, seq, _permit: permit } in acks {
        if let Some(to) = to {
            if !source.as_ref().is_some_and(|s| Arc::ptr_eq(s, &to)) {
                if let Some(s) = source.replace(to) {
                    s.acknowledge_all(&seqs);
                }
                seqs.clear();
            }
            seqs.push(seq);
        }
        match (&mut budget, permit) {
            (Some(all), Some(p)) => all.merge(p),
            (None, p) => budget = p,
            (Some(_), None) => {}
        }
    }
    if let Some(s) = source {
        s.acknowledge_all(&seqs);
    }
    // Given back after the sources heard, as `Ack::done` does.
    drop(budget);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Debug, Default)]
    struct Heard(Mutex<Vec<Vec<u64>>>);
    impl Acknowledge for Heard {
        fn acknowledge(&self, seq: u64) {
            self.acknowledge_all(&[seq]);
        }
        fn acknowledge_all(&self, seqs: &[u64]) {
            self.0.lock().expect("lock").push(seqs.to_vec());
        }
    }

    #[tokio::test]
    async fn done_all_tells_each_run_of_a_source_once_and_gives_the_budget_back() {
        let budget = Budget::new(100);
        let (a, b) = (Arc::new(Heard::default()), Arc::new(Heard::default()));
        let mut acks = Vec::new();
        for (to, seq) in [(&a, 0), (&a, 1), (&b, 7), (&a, 2)] {
            let to: Arc<dyn Acknowledge> = to.clone();
            acks.push(Ack::new(to, seq, budget.take(10).await));
        }
        acks.push(Ack::none());
        assert_eq!(budget.in_flight(), 40);
        assert!(budget.try_take(61).is_none(), "60 left");
        drop(budget.try_take(60).expect("60 left"));
        done_all(acks);
        assert_eq!(*a.0.lock().expect("lock"), [vec![0, 1], vec![2]]);
        assert_eq!(*b.0.lock().expect("lock"), [vec![7]]);
        assert_eq!(budget.in_flight(), 0);
    }
}
