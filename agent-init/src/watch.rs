//! `--watch`: keep running beside the Calypso container and re-render when a template or a
//! secret changes. The kubelet updates ConfigMap and Secret volumes by swapping the `..data`
//! symlink, so the directories are watched, not the files. Changes are debounced; a failed
//! re-render keeps the old files; the log names the keys that changed, never their values.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use calypso::properties::Document;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::output::{Checkpoint, WriteError, write_all};
use crate::render::{Rendered, Values};
use crate::run::{Failure, once, render_from_dirs};
use crate::stop::{Gate, Guarded, Signal, Stops, guarded, next};

/// Renders and writes, then re-renders on every change until a stop signal, which it returns.
/// Fails as the first pass fails (a signal before its files are written is
/// [`Failure::Stopped`]), or when the directories cannot be watched at all.
///
/// The watcher starts before the first render: a Secret or ConfigMap swap that lands while the
/// first render reads the files is then an event and re-rendered. (Started after it, the
/// watcher would miss such a swap for good.) Every pass runs off the runtime's threads.
pub async fn watch<V: Values + Send + Sync + 'static>(
    config: Arc<Config>,
    values: Arc<V>,
    gate: Arc<Gate>,
    stops: &mut Stops,
) -> Result<Signal, Failure> {
    let output = config.output.clone().ok_or_else(|| Failure::Internal("no output directory".into()))?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = tx.send(event);
    })
    .map_err(|e| Failure::Internal(format!("cannot watch: {e}")))?;
    for dir in config.templates.iter().chain(&config.secrets_dir) {
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|e| Failure::Internal(format!("cannot watch {}: {e}", dir.display())))?;
    }
    tracing::info!(debounce = ?config.debounce, "watching the templates and secrets for changes");

    let first = {
        let (config, values) = (config.clone(), values.clone());
        move |gate: &Gate| once(&config, &*values, gate)
    };
    let mut files = match guarded(&gate, stops, first).await {
        Guarded::Finished { result: Ok(files), stop: None } => files,
        Guarded::Finished { result: Ok(_), stop: Some(signal) } => return Ok(signal),
        Guarded::Finished { result: Err(failure), .. } => return Err(failure),
        Guarded::Abandoned(signal) => return Err(Failure::Stopped(signal)),
        Guarded::Died(e) => return Err(Failure::Internal(format!("the rendering task died: {e}"))),
    };
    loop {
        tokio::select! {
            signal = next(stops) => return Ok(signal),
            event = rx.recv() => {
                match event {
                    None => return Err(Failure::Internal("the file watcher stopped".into())),
                    Some(Err(e)) => tracing::warn!(error = %e, "file watcher error"),
                    Some(Ok(e)) if !is_change(&e) => continue,
                    Some(Ok(_)) => {}
                }
            }
        }
        // Quiet for `debounce` before acting: the kubelet's swap is several events.
        if let Some(signal) = settle(&mut rx, config.debounce, stops).await {
            return Ok(signal);
        }
        let pass = {
            let (config, values, output) = (config.clone(), values.clone(), output.clone());
            let old = std::mem::take(&mut files);
            move |gate: &Gate| rerender(&config, &output, &*values, old, gate)
        };
        files = match guarded(&gate, stops, pass).await {
            Guarded::Finished { result, stop: None } => result,
            Guarded::Finished { stop: Some(signal), .. } | Guarded::Abandoned(signal) => return Ok(signal),
            Guarded::Died(e) => return Err(Failure::Internal(format!("a re-render died: {e}"))),
        };
    }
}

/// Whether an event can change what renders. Reads are not: inotify reports our own reads of the
/// templates and secrets (IN_OPEN, IN_ACCESS), which would otherwise trigger a re-render after
/// every re-render, forever.
fn is_change(event: &notify::Event) -> bool {
    !matches!(event.kind, notify::EventKind::Access(_))
}

/// Drains events until none came for `quiet`; `Some(signal)` when stopped meanwhile. Reads are
/// not drained here: any event in the quiet time only delays the re-render, which is harmless.
async fn settle<T>(
    rx: &mut mpsc::UnboundedReceiver<T>,
    quiet: Duration,
    stops: &mut Stops,
) -> Option<Signal> {
    loop {
        tokio::select! {
            signal = next(stops) => return Some(signal),
            more = rx.recv() => {
                more.as_ref()?;
            }
            _ = tokio::time::sleep(quiet) => return None,
        }
    }
}

/// One re-render: the new files when written, else the old ones (which stay on disk).
fn rerender(
    config: &Config,
    output: &Path,
    values: &impl Values,
    old: Vec<Rendered>,
    checkpoint: &impl Checkpoint,
) -> Vec<Rendered> {
    tracing::debug!("a template or secret changed: re-rendering");
    let new = match render_from_dirs(config, values) {
        Ok(new) => new,
        Err(failure) => {
            for item in failure.items() {
                tracing::error!("{item}");
            }
            tracing::error!("re-render failed; the files stay as they were");
            return old;
        }
    };
    match write_all(output, &new, config.owner, checkpoint) {
        Ok(written) => {
            for name in written {
                let before = old.iter().find(|f| f.output == name);
                let after = new.iter().find(|f| f.output == name);
                tracing::info!(file = %name, "re-rendered: {}", describe_change(before, after));
            }
            new
        }
        Err(e @ WriteError::Stopped(_)) => {
            tracing::info!("{e}; the files stay as they were");
            old
        }
        Err(e) => {
            tracing::error!("{e}; the other files stay as they were");
            old
        }
    }
}

/// `keys changed: DBPASSWORD, LOG_LEVEL` for properties files, else what changed in general.
fn describe_change(before: Option<&Rendered>, after: Option<&Rendered>) -> String {
    let (Some(before), Some(after)) = (before, after) else { return "new file".into() };
    let mode =
        if before.mode() == after.mode() { String::new() } else { format!("; mode {:04o}", after.mode()) };
    let (Some(old), Some(new)) = (pairs(before), pairs(after)) else {
        return format!("contents changed{mode}");
    };
    let keys: Vec<&str> = old
        .keys()
        .chain(new.keys())
        .filter(|k| old.get(*k) != new.get(*k))
        .map(String::as_str)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if keys.is_empty() {
        format!("comments or layout changed{mode}")
    } else {
        format!("keys changed: {}{mode}", keys.join(", "))
    }
}

fn pairs(file: &Rendered) -> Option<BTreeMap<String, String>> {
    if file.keys.is_empty() {
        return None;
    }
    Some(Document::parse(&file.text).ok()?.pairs().ok()?.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_no_changes() {
        use notify::event::{AccessKind, CreateKind, ModifyKind, RenameMode};
        let ev = |kind| notify::Event::new(kind);
        assert!(!is_change(&ev(notify::EventKind::Access(AccessKind::Any))));
        assert!(is_change(&ev(notify::EventKind::Create(CreateKind::Any))));
        assert!(is_change(&ev(notify::EventKind::Modify(ModifyKind::Name(RenameMode::Both)))));
    }

    #[tokio::test(start_paused = true)]
    async fn settle_waits_for_quiet() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let quiet = Duration::from_millis(500);
        let started = tokio::time::Instant::now();
        // Events at 0.3 s and 0.6 s: quiet from 0.6 s, so settled at 1.1 s.
        tokio::spawn(async move {
            for _ in 0..2 {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let _ = tx.send(());
            }
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        let (stop, mut stops) = mpsc::unbounded_channel();
        assert_eq!(settle(&mut rx, quiet, &mut stops).await, None);
        assert_eq!(started.elapsed(), Duration::from_millis(1100));
        stop.send("SIGTERM").expect("send");
        assert_eq!(settle(&mut rx, quiet, &mut stops).await, Some("SIGTERM"));
    }
}
