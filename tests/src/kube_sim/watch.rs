//! A WATCH as a stream: the backlog (changes after the asked resourceVersion, or a synthetic
//! ADDED per current event), then live changes, BOOKMARKs when allowed, one JSON object per
//! line in its own chunk; it ends cleanly at its deadline, breaks off when the server goes down.

use super::event::Event;
use super::store::{Change, WatchStart};
use super::{Shared, lock};
use bytes::Bytes;
use hyper::body::{Body, Frame};
use serde::Serialize;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

/// Why a streamed body broke off (hyper then drops the connection without the last chunk).
#[derive(Debug, thiserror::Error)]
#[error("the server went down")]
pub struct Cut;

/// A response body fed by a task.
#[derive(Debug)]
pub struct ChannelBody(mpsc::Receiver<Result<Bytes, Cut>>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Cut;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Cut>>> {
        self.0.poll_recv(cx).map(|next| next.map(|r| r.map(Frame::data)))
    }
}

#[derive(Serialize)]
struct Line<'a, T: Serialize> {
    #[serde(rename = "type")]
    type_: &'a str,
    object: T,
}

/// One line of the stream: `{"type":..,"object":..}\n`.
pub fn line<T: Serialize>(type_: &str, object: T) -> Bytes {
    let mut out = serde_json::to_vec(&Line { type_, object }).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

fn change_line(change: &Change) -> Bytes {
    line(change.type_.as_str(), change.object.typed())
}

/// What a watch streams.
pub struct Plan {
    pub start: WatchStart,
    pub namespace: Option<String>,
    pub duration: Duration,
    /// BOOKMARK this often (`None`: not allowed).
    pub bookmarks: Option<Duration>,
}

/// Starts the watch task; its output is the body.
pub fn stream(shared: Arc<Shared>, plan: Plan) -> ChannelBody {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(run(shared, plan, tx));
    ChannelBody(rx)
}

async fn run(shared: Arc<Shared>, plan: Plan, tx: mpsc::Sender<Result<Bytes, Cut>>) {
    shared.count(|s| s.active_watches += 1);
    let ended = feed(&shared, plan, &tx).await;
    shared.count(|s| {
        s.active_watches -= 1;
        *s.watch_ends.entry(ended).or_default() += 1;
    });
}

async fn feed(shared: &Shared, plan: Plan, tx: &mpsc::Sender<Result<Bytes, Cut>>) -> &'static str {
    let Plan { start: WatchStart { backlog, mut live, mut position }, namespace, duration, bookmarks } = plan;
    let mut epoch = shared.listener.subscribe();
    let deadline = tokio::time::sleep(duration);
    tokio::pin!(deadline);
    let send = async |bytes: Bytes, bookmark: bool| {
        let ok = tx.send(Ok(bytes)).await.is_ok();
        shared.count(|s| if bookmark { s.bookmarks += 1 } else { s.watch_events += 1 });
        ok
    };
    for change in &backlog {
        position = position.max(change.rv);
        if !send(change_line(change), false).await {
            return "client";
        }
    }
    let every = bookmarks.unwrap_or(Duration::from_secs(3600));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut deadline => return "timeout",
            _ = epoch.changed() => {
                let _ = tx.send(Err(Cut)).await;
                return "down";
            }
            () = tx.closed() => return "client",
            next = live.recv() => match next {
                Ok(change) => {
                    if change.rv <= position {
                        continue;
                    }
                    position = change.rv;
                    if namespace.as_deref().is_some_and(|ns| change.namespace() != ns) {
                        continue;
                    }
                    if !send(change_line(&change), false).await {
                        return "client";
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => return "lagged",
                Err(broadcast::error::RecvError::Closed) => return "down",
            },
            _ = ticker.tick(), if bookmarks.is_some() => {
                // Everything up to `position` was delivered (or was of other namespaces).
                let bookmark = Event::bookmark(position);
                if !send(line("BOOKMARK", bookmark.typed()), true).await {
                    return "client";
                }
            }
        }
    }
}

/// Whether the empty-200 trap takes this watch (counting it down).
pub fn trapped(shared: &Shared) -> bool {
    let mut faults = lock(&shared.faults);
    if faults.empty_watches > 0 {
        faults.empty_watches -= 1;
        return true;
    }
    false
}
