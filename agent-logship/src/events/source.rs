//! The Events source as the rest of agent-logship sees it: the watcher and the shipper, started
//! together around the spool they share ([`super::shared`]).

use std::future::Future;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::api::KubeClient;
use super::cursor::Pacing;
use super::shared::Shared;
use super::{shipper, watcher};
use crate::flow::Budget;
use crate::redaction::Redactor;
use crate::sink::{BatchLimits, Bulk};

/// The two tasks of the Events source.
pub struct EventsTasks {
    pub watcher: JoinHandle<()>,
    pub shipper: JoinHandle<()>,
}

/// Starts watching with `client` and shipping into `tx`, both until `stop` completes.
pub fn start<S>(
    client: KubeClient,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Bulk>,
    limits: BatchLimits,
    budget: Budget,
    redactor: Option<Arc<Redactor>>,
    stop: impl Fn() -> S,
) -> EventsTasks
where
    S: Future<Output = ()> + Send + 'static,
{
    let watcher = watcher::Watcher::new(client, Pacing::default(), shared.clone(), redactor);
    EventsTasks {
        watcher: tokio::spawn(watcher.run(stop())),
        shipper: tokio::spawn(shipper::run(shared, tx, limits, budget, stop())),
    }
}
