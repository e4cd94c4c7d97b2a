//! Finding the files the globs match: a scan of the directories under each glob's base (symlinks
//! followed: Kubernetes' `/var/log/containers/*.log` are symlinks), and a `notify` watcher on those
//! bases that asks for a rescan when names change. The periodic rescan is the fallback for what
//! the watcher misses (directories created later, network file systems, overflowing queues).

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use notify::{RecursiveMode, Watcher};

use super::pathglob::{PathGlob, has_wildcard, match_name};

/// `**` descends at most this deep (symlinked directories could loop).
const MAX_DEPTH: usize = 16;

/// A regular file a glob matches, as found now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
}

/// All regular files matched by `globs` and by none of `exclude`, one per (dev, inode) — a file
/// under two names (hard link, two symlinks) is one file; the first name in sorted order wins.
pub fn scan(globs: &[PathGlob], exclude: &[PathGlob]) -> Vec<Found> {
    let mut paths = Vec::new();
    for g in globs {
        let rest: Vec<&str> = g.rest.iter().map(String::as_str).collect();
        walk(&g.base, &rest, 0, &mut paths);
    }
    paths.sort();
    paths.dedup();
    let mut seen = HashSet::new();
    paths
        .into_iter()
        .filter(|p| !exclude.iter().any(|x| x.matches(p)))
        .filter_map(|path| {
            // metadata() follows symlinks: the target's identity and size.
            let m = fs::metadata(&path).ok()?;
            (m.is_file() && seen.insert((m.dev(), m.ino()))).then(|| Found {
                dev: m.dev(),
                ino: m.ino(),
                size: m.len(),
                path,
            })
        })
        .collect()
}

fn walk(dir: &Path, rest: &[&str], depth: usize, out: &mut Vec<PathBuf>) {
    let Some((first, tail)) = rest.split_first() else { return };
    if *first == "**" {
        // Zero directories...
        walk(dir, tail, depth, out);
        if depth >= MAX_DEPTH {
            return;
        }
        // ...or one more, keeping the `**`.
        for sub in read_dir(dir).into_iter().filter(|p| p.is_dir()) {
            walk(&sub, rest, depth + 1, out);
        }
        return;
    }
    if !has_wildcard(first) {
        let p = dir.join(first);
        if tail.is_empty() {
            out.push(p);
        } else if p.is_dir() {
            walk(&p, tail, depth, out);
        }
        return;
    }
    for p in read_dir(dir) {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !match_name(first, &name) {
            continue;
        }
        if tail.is_empty() {
            out.push(p);
        } else if p.is_dir() {
            walk(&p, tail, depth, out);
        }
    }
}

fn read_dir(dir: &Path) -> Vec<PathBuf> {
    match fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => Vec::new(),
    }
}

/// What the watcher tells the reading loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A name was created, removed or renamed: rescan.
    Names,
    /// Some file changed: read.
    Data,
}

/// Watches the glob bases; events arrive on `tx`. `None` when no watcher could be set up (the
/// periodic rescan still finds everything, later). Bases that do not exist yet are not watched:
/// the rescan finds their files.
pub fn watch(globs: &[PathGlob], tx: mpsc::Sender<Wake>) -> Option<notify::RecommendedWatcher> {
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        use notify::EventKind;
        let wake = match event.map(|e| e.kind) {
            Ok(EventKind::Access(_)) => return,
            Ok(EventKind::Modify(notify::event::ModifyKind::Data(_))) => Wake::Data,
            // Creations, removals, renames, and errors (queue overflow): look again.
            _ => Wake::Names,
        };
        let _ = tx.send(wake);
    })
    .map_err(|error| tracing::warn!(%error, "no file watcher: new files are found by the periodic rescan"))
    .ok()?;
    for g in globs {
        let mode = if g.recursive { RecursiveMode::Recursive } else { RecursiveMode::NonRecursive };
        if let Err(error) = watcher.watch(&g.base, mode) {
            tracing::debug!(%error, dir = %g.base.display(), "not watching (yet)");
        }
    }
    Some(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_symlinks_and_excludes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        fs::create_dir_all(d.join("a/b")).expect("mkdir");
        for f in ["x.log", "x.log.1", "y.txt", "a/b/z.log"] {
            fs::write(d.join(f), "line\n").expect("write");
        }
        std::os::unix::fs::symlink(d.join("y.txt"), d.join("link.log")).expect("symlink");
        let g = |s: &str| PathGlob::parse(&format!("{}/{s}", d.display())).expect("glob");
        let names = |found: Vec<Found>| -> Vec<String> {
            found.iter().map(|f| f.path.strip_prefix(d).expect("under").display().to_string()).collect()
        };
        assert_eq!(names(scan(&[g("*.log*")], &[])), vec!["link.log", "x.log", "x.log.1"]);
        assert_eq!(names(scan(&[g("*.log*")], &[g("*.1")])), vec!["link.log", "x.log"]);
        assert_eq!(names(scan(&[g("**/*.log")], &[])), vec!["a/b/z.log", "link.log", "x.log"]);
        assert_eq!(names(scan(&[g("x.log")], &[])), vec!["x.log"]);
        assert_eq!(names(scan(&[g("nope/*.log")], &[])), Vec::<String>::new());
    }
}
