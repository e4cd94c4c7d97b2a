//! The task that ships the spool: entries in order, as `_bulk` batches (one data stream each)
//! into the sink's channel; each entry leaves the spool when Elasticsearch has it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;

use super::source::Shared;
use crate::flow::{Ack, Acknowledge, Budget};
use crate::sink::bulk::Bodies;
use crate::sink::{BatchLimits, Bulk, BulkWriter};

/// How the sink's acknowledgements reach the spool.
#[derive(Debug)]
struct SpoolAcks {
    shared: Arc<Shared>,
    /// Each entry in flight's own time, for the shipped-event age.
    times: Mutex<HashMap<u64, i64>>,
}

impl Acknowledge for SpoolAcks {
    fn acknowledge(&self, seq: u64) {
        self.acknowledge_all(&[seq]);
    }

    fn acknowledge_all(&self, seqs: &[u64]) {
        let newest = {
            let mut times = self.times.lock().unwrap_or_else(PoisonError::into_inner);
            seqs.iter().filter_map(|s| times.remove(s)).max().unwrap_or(0)
        };
        self.shared.metrics.shipped(seqs.len() as u64, newest);
        self.shared.acknowledge(seqs);
    }
}

/// Ships until `stop` completes (what was read but not yet sent is read again at the next
/// start: the spool keeps it).
pub async fn run(
    shared: Arc<Shared>,
    tx: mpsc::Sender<Bulk>,
    limits: BatchLimits,
    budget: Budget,
    stop: impl Future<Output = ()>,
) {
    let mut stop = pin!(stop);
    let acks = Arc::new(SpoolAcks { shared: shared.clone(), times: Mutex::default() });
    let to: Arc<dyn Acknowledge> = acks.clone();
    let bodies = Bodies::default();
    let mut next = shared.committed();
    loop {
        let appended = shared.appended();
        let entries = match shared.read(next, limits.docs.max(1)) {
            Ok(entries) => entries,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the Events spool; trying again");
                tokio::select! {
                    biased;
                    () = &mut stop => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        let Some(last) = entries.last() else {
            tokio::select! {
                biased;
                () = &mut stop => return,
                () = appended => continue,
            }
        };
        // Entries dropped from a full spool meanwhile are skipped by the read.
        next = last.seq + 1;
        for group in entries.chunk_by(|a, b| a.index == b.index) {
            let room =
                group.iter().map(|e| e.source.len() + e.id.len() + 32).sum::<usize>().min(limits.bytes);
            let mut batch = BulkWriter::new(Arc::from(group[0].index.as_str()), room, &bodies);
            for e in group {
                let permit = tokio::select! {
                    biased;
                    () = &mut stop => return,
                    p = budget.take(e.source.len()) => p,
                };
                acks.times.lock().unwrap_or_else(PoisonError::into_inner).insert(e.seq, e.time_ms);
                batch
                    .push(&e.id, Ack::new(to.clone(), e.seq, permit), |out| out.extend_from_slice(&e.source));
                if batch.body_len() >= limits.bytes {
                    let full = std::mem::replace(
                        &mut batch,
                        BulkWriter::new(Arc::from(e.index.as_str()), room, &bodies),
                    );
                    if !send(&tx, full, &mut stop).await {
                        return;
                    }
                }
            }
            if !batch.is_empty() && !send(&tx, batch, &mut stop).await {
                return;
            }
        }
    }
}

/// Hands a batch to the sink; `false` when stopping or the sink is gone.
async fn send(
    tx: &mpsc::Sender<Bulk>,
    batch: BulkWriter,
    stop: &mut (impl Future<Output = ()> + Unpin),
) -> bool {
    tokio::select! {
        biased;
        () = stop => false,
        sent = tx.send(batch.finish()) => sent.is_ok(),
    }
}
