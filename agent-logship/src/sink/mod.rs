//! The sink: documents in, `_bulk` requests out, acknowledgements back.
//!
//! [`batch`] cuts the channel into batches, whose documents are encoded straight into a
//! [`bulk`] body; [`request`] compresses it; [`es`] sends it through the [`client`] and hands the
//! answer to the pure [`classify`], then acknowledges, retries or dead-letters ([`dead_letter`])
//! each document; [`tls`] makes the client's TLS from the CA and client-certificate files, [`proxy`]
//! says which requests go through the egress proxy and tells its failures from Elasticsearch's. Without a
//! URL, [`stdout`] writes the documents as NDJSON instead.

pub mod aws_credentials;
pub mod batch;
pub mod bulk;
pub mod classify;
pub mod client;
pub mod dead_letter;
pub mod es;
pub mod proxy;
pub mod request;
pub mod sigv4;
pub mod stdout;
pub mod tls;

use std::future::Future;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::metrics::Metrics;
pub use batch::{BatchLimits, Batcher};
pub use bulk::{Bulk, BulkWriter, DocumentIds};
pub use es::{EsOptions, EsSink};
pub use stdout::{StdoutError, StdoutSink};

/// Where documents go.
#[derive(Debug)]
pub enum Sink {
    /// Elasticsearch / OpenSearch, at most `max_in_flight` requests at once.
    Es {
        sink: Arc<EsSink>,
        max_in_flight: usize,
    },
    Stdout(StdoutSink),
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    Stdout(#[from] StdoutError),
}

/// How [`run`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The channel closed and every document received was acknowledged: safe to checkpoint.
    Drained,
    /// `stop` fired first: unacknowledged documents were dropped (their sources keep their
    /// checkpoints before them; they are read again after a restart and 409s absorb the rest).
    Stopped,
}

/// Ships the batches of `rx` until the channel is closed and every document received is
/// acknowledged (the graceful stop: the sources stop and drop their senders, this drains), or
/// until `stop` resolves (the grace period is over: give up at once).
pub async fn run(
    mut rx: mpsc::Receiver<Bulk>,
    sink: Sink,
    metrics: Arc<Metrics>,
    stop: impl Future<Output = ()>,
) -> Result<Ended, SinkError> {
    let work = async {
        match sink {
            Sink::Stdout(mut out) => {
                while let Some(bulk) = rx.recv().await {
                    out.write_batch(bulk, &metrics)?;
                }
            }
            Sink::Es { sink, max_in_flight } => {
                let max = max_in_flight.max(1);
                // Dropped with `work` when `stop` wins: its tasks are aborted.
                let mut tasks = JoinSet::new();
                loop {
                    if tasks.len() >= max {
                        let _ = tasks.join_next().await;
                        continue;
                    }
                    tokio::select! {
                        batch = rx.recv() => match batch {
                            Some(bulk) => {
                                let sink = sink.clone();
                                tasks.spawn(async move { sink.deliver(bulk).await });
                            }
                            None => break,
                        },
                        Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                    }
                }
                while tasks.join_next().await.is_some() {}
            }
        }
        Ok::<_, SinkError>(())
    };
    tokio::select! {
        r = work => r.map(|()| Ended::Drained),
        () = stop => Ok(Ended::Stopped),
    }
}
