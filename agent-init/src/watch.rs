//! `--watch`: keep running beside the Calypso container and re-render when a template or a
//! secret changes. The kubelet updates ConfigMap and Secret volumes by swapping the `..data`
//! symlink, so the directories are watched, not the files. Changes are debounced; a failed
//! re-render keeps the old files; the log names the keys that changed, never their values.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use calypso::properties::Document;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::output::write_all;
use crate::render::{Rendered, Values};
use crate::run::render_from_dirs;

/// Watches until `stop` resolves. `files` is what was last written. Errors only when the
/// directories cannot be watched at all.
pub async fn watch(
    config: &Config,
    output: &Path,
    values: &impl Values,
    mut files: Vec<Rendered>,
    stop: impl Future<Output = &'static str>,
) -> Result<&'static str, String> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = tx.send(event);
    })
    .map_err(|e| format!("cannot watch: {e}"))?;
    for dir in config.templates.iter().chain(&config.secrets_dir) {
        watcher
            .watch(dir, RecursiveMode::NonRecursive)
            .map_err(|e| format!("cannot watch {}: {e}", dir.display()))?;
    }
    tracing::info!(debounce = ?config.debounce, "watching the templates and secrets for changes");
    tokio::pin!(stop);
    loop {
        tokio::select! {
            signal = &mut stop => return Ok(signal),
            event = rx.recv() => {
                match event {
                    None => return Err("the file watcher stopped".into()),
                    Some(Err(e)) => tracing::warn!(error = %e, "file watcher error"),
                    Some(Ok(e)) if !is_change(&e) => continue,
                    Some(Ok(_)) => {}
                }
            }
        }
        // Quiet for `debounce` before acting: the kubelet's swap is several events.
        if let Some(signal) = settle(&mut rx, config.debounce, &mut stop).await {
            return Ok(signal);
        }
        files = rerender(config, output, values, files);
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
    stop: &mut (impl Future<Output = &'static str> + Unpin),
) -> Option<&'static str> {
    loop {
        tokio::select! {
            signal = &mut *stop => return Some(signal),
            more = rx.recv() => {
                more.as_ref()?;
            }
            _ = tokio::time::sleep(quiet) => return None,
        }
    }
}

/// One re-render: the new files when written, else the old ones (which stay on disk).
fn rerender(config: &Config, output: &Path, values: &impl Values, old: Vec<Rendered>) -> Vec<Rendered> {
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
    match write_all(output, &new, config.owner) {
        Ok(written) => {
            for name in written {
                let before = old.iter().find(|f| f.output == name);
                let after = new.iter().find(|f| f.output == name);
                tracing::info!(file = %name, "re-rendered: {}", describe_change(before, after));
            }
            new
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
        let mut never = std::pin::pin!(std::future::pending::<&'static str>());
        assert_eq!(settle(&mut rx, quiet, &mut never).await, None);
        assert_eq!(started.elapsed(), Duration::from_millis(1100));
        let mut stop = std::pin::pin!(async { "SIGTERM" });
        assert_eq!(settle(&mut rx, quiet, &mut stop).await, Some("SIGTERM"));
    }
}
