//! The task that ships the spool: entries in order, as `_bulk` batches (one data stream each)
//! into the sink's channel; each entry leaves the spool when Elasticsearch has it.

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::shared::Shared;
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
        // The spool first: what /metrics says shipped has left it.
        self.shared.acknowledge(seqs);
        self.shared.metrics.shipped(seqs.len() as u64, newest);
    }
}

/// Entries read from the spool at a time: what is read is in memory until shipped, and a full
/// spool counts only what was not read yet as dropped; a small read-ahead keeps that honest.
const CHUNK: usize = 128;

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
    let mut open: Option<Open> = None;
    loop {
        let appended = shared.appended();
        let entries = match shared.read(next, CHUNK) {
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
        if entries.is_empty() {
            // Nothing more for now. A batch waits for more up to the batch age after its first
            // document (one request per Event would cost more than the Event); then it goes.
            let Some(due) = open.as_ref().map(|o| o.due) else {
                tokio::select! {
                    biased;
                    () = &mut stop => return,
                    () = appended => continue,
                }
            };
            tokio::select! {
                biased;
                () = &mut stop => return,
                () = appended => continue,
                () = tokio::time::sleep_until(due) => {}
            }
            if !send(&tx, &mut open, &mut stop).await {
                return;
            }
            continue;
        }
        for e in entries {
            // Entries dropped from a full spool meanwhile are skipped by the read.
            next = e.seq + 1;
            // One data stream per request: another namespace's entry starts the next batch.
            if open.as_ref().is_some_and(|o| o.batch.index() != e.index)
                && !send(&tx, &mut open, &mut stop).await
            {
                return;
            }
            // The budget may be held by the open batch itself: send it before waiting.
            let permit = match budget.try_take(e.source.len()) {
                Some(p) => p,
                None => {
                    if !send(&tx, &mut open, &mut stop).await {
                        return;
                    }
                    tokio::select! {
                        biased;
                        () = &mut stop => return,
                        p = budget.take(e.source.len()) => p,
                    }
                }
            };
            acks.times.lock().unwrap_or_else(PoisonError::into_inner).insert(e.seq, e.time_ms);
            let batch = &mut open
                .get_or_insert_with(|| Open {
                    batch: BulkWriter::new(Arc::from(e.index.as_str()), 64 * 1024, &bodies),
                    due: Instant::now() + limits.age,
                })
                .batch;
            batch.push(&e.id, Ack::new(to.clone(), e.seq, permit), |out| out.extend_from_slice(&e.source));
            let full = batch.len() >= limits.docs.max(1) || batch.body_len() >= limits.bytes;
            if full && !send(&tx, &mut open, &mut stop).await {
                return;
            }
        }
    }
}

/// The batch being gathered, and when it goes at the latest (its first document's arrival plus
/// the batch age).
struct Open {
    batch: BulkWriter,
    due: Instant,
}

/// Hands the open batch (if any) to the sink; `false` when stopping or the sink is gone.
async fn send(
    tx: &mpsc::Sender<Bulk>,
    open: &mut Option<Open>,
    stop: &mut (impl Future<Output = ()> + Unpin),
) -> bool {
    let Some(Open { batch, .. }) = open.take() else { return true };
    tokio::select! {
        biased;
        () = stop => false,
        sent = tx.send(batch.finish()) => sent.is_ok(),
    }
}
