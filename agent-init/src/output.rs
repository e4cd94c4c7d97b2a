//! Writing the rendered files into the output directory: each through a temporary file in the
//! same directory, fsynced, renamed over the old one, then the directory fsynced — so a reader
//! sees the old file or the new one, never half of one, even across a crash.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::render::Rendered;
use crate::stop::Signal;

/// `uid:gid` to give the files (`AGENT_INIT_OWNER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// Why the files were not (all) written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write {}: {reason}; no file was changed", path.display())]
    Stage { path: PathBuf, reason: String },
    #[error("cannot rename {} to {}: {reason}", from.display(), to.display())]
    Rename { from: PathBuf, to: PathBuf, reason: String },
    #[error("cannot sync {}: {reason}", dir.display())]
    Sync { dir: PathBuf, reason: String },
    /// A stop was requested before the renames began: no file was changed.
    #[error("stopped by {0} before any file was changed")]
    Stopped(Signal),
}

/// Where [`write_all`] lets a stop request in: before it changes anything and before each
/// staged file (then it removes what it staged and no file has changed), and once more before
/// the renames. Once past that point of no return, every rename is done.
pub trait Checkpoint {
    /// Before staging (each) file: `Err` abandons the write.
    fn proceed(&self) -> Result<(), Signal>;
    /// Before the renames: `Err` abandons the write; `Ok` commits to finishing them.
    fn commit(&self) -> Result<(), Signal>;
    /// The write is over: done, failed or abandoned.
    fn done(&self);
}

/// A write that nothing stops.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unstoppable;

impl Checkpoint for Unstoppable {
    fn proceed(&self) -> Result<(), Signal> {
        Ok(())
    }
    fn commit(&self) -> Result<(), Signal> {
        Ok(())
    }
    fn done(&self) {}
}

/// Writes every file whose contents, mode or owner differ from what is there; returns the names
/// written. Two phases, so that a failure (or a stop request, at a [`Checkpoint`]) changes
/// nothing: every new file is first written and fsynced under a temporary name (any failure
/// removes them all and leaves the old files), then all are renamed into place and the
/// directory is fsynced. Files already identical are left alone (no needless change events for
/// watchers).
pub fn write_all(
    dir: &Path,
    files: &[Rendered],
    owner: Option<Owner>,
    checkpoint: &impl Checkpoint,
) -> Result<Vec<String>, WriteError> {
    let changed: Vec<&Rendered> =
        files.iter().filter(|f| !unchanged(&dir.join(&f.output), f, owner)).collect();
    if changed.is_empty() {
        return Ok(Vec::new());
    }
    let result = stage_and_commit(dir, &changed, owner, checkpoint);
    checkpoint.done();
    result
}

fn stage_and_commit(
    dir: &Path,
    changed: &[&Rendered],
    owner: Option<Owner>,
    checkpoint: &impl Checkpoint,
) -> Result<Vec<String>, WriteError> {
    let mut staged: Vec<(PathBuf, &Rendered)> = Vec::new();
    let remove = |staged: &[(PathBuf, &Rendered)]| {
        for (t, _) in staged {
            let _ = fs::remove_file(t);
        }
    };
    for file in changed {
        if let Err(signal) = checkpoint.proceed() {
            remove(&staged);
            return Err(WriteError::Stopped(signal));
        }
        let tmp = dir.join(format!(".{}.agent-init.tmp", file.output));
        if let Err(e) = stage(&tmp, file, owner) {
            remove(&staged);
            let _ = fs::remove_file(&tmp);
            return Err(WriteError::Stage { path: dir.join(&file.output), reason: e.to_string() });
        }
        staged.push((tmp, file));
    }
    if let Err(signal) = checkpoint.commit() {
        remove(&staged);
        return Err(WriteError::Stopped(signal));
    }
    let mut written = Vec::new();
    for (tmp, file) in &staged {
        let path = dir.join(&file.output);
        // A rename within one directory fails only if the directory itself went away.
        fs::rename(tmp, &path).map_err(|e| WriteError::Rename {
            from: tmp.clone(),
            to: path.clone(),
            reason: e.to_string(),
        })?;
        written.push(file.output.clone());
    }
    // The renames are durable only once the directory itself is.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| WriteError::Sync { dir: dir.to_path_buf(), reason: e.to_string() })?;
    Ok(written)
}

fn unchanged(path: &Path, file: &Rendered, owner: Option<Owner>) -> bool {
    let (Ok(bytes), Ok(meta)) = (fs::read(path), fs::metadata(path)) else { return false };
    bytes == file.text.as_bytes()
        && meta.permissions().mode() & 0o777 == file.mode()
        && owner.is_none_or(|o| (meta.uid(), meta.gid()) == (o.uid, o.gid))
}

/// Writes one file's new contents under `tmp`, with its mode and owner, fsynced.
fn stage(tmp: &Path, file: &Rendered, owner: Option<Owner>) -> io::Result<()> {
    // A leftover from an interrupted run is ours to replace.
    match fs::remove_file(tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut f = OpenOptions::new().write(true).create_new(true).mode(file.mode()).open(tmp)?;
    // The umask may have narrowed the mode given at creation; the mode is part of the contract.
    f.set_permissions(fs::Permissions::from_mode(file.mode()))?;
    f.write_all(file.text.as_bytes())?;
    if let Some(o) = owner {
        let (uid, gid) = (nix::unistd::Uid::from_raw(o.uid), nix::unistd::Gid::from_raw(o.gid));
        nix::unistd::fchown(&f, Some(uid), Some(gid)).map_err(io::Error::from)?;
    }
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(name: &str, text: &str, secret: bool) -> Rendered {
        Rendered {
            output: name.into(),
            text: text.into(),
            redacted: text.into(),
            has_secret: secret,
            keys: vec![],
            resolutions: vec![],
        }
    }

    #[test]
    fn writes_modes_and_skips_identical_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = [rendered("a.properties.X", "A=1\n", false), rendered("s.properties.X", "P=x\n", true)];
        assert_eq!(
            write_all(dir.path(), &files, None, &Unstoppable),
            Ok(vec!["a.properties.X".into(), "s.properties.X".into()])
        );
        let mode = |n: &str| fs::metadata(dir.path().join(n)).expect("meta").permissions().mode() & 0o777;
        assert_eq!((mode("a.properties.X"), mode("s.properties.X")), (0o640, 0o600));
        assert_eq!(
            write_all(dir.path(), &files, None, &Unstoppable),
            Ok(vec![]),
            "identical: nothing written"
        );
        let changed = [rendered("a.properties.X", "A=2\n", false)];
        assert_eq!(write_all(dir.path(), &changed, None, &Unstoppable), Ok(vec!["a.properties.X".into()]));
        assert_eq!(fs::read_to_string(dir.path().join("a.properties.X")).expect("read"), "A=2\n");
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .expect("ls")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_failure_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope");
        let e = write_all(&missing, &[rendered("a", "x", false)], None, &Unstoppable)
            .expect_err("no dir")
            .to_string();
        assert!(e.starts_with(&format!("cannot write {}/a: ", missing.display())), "{e}");
        assert!(e.ends_with("; no file was changed"), "{e}");
    }

    /// Stops at the `n`th checkpoint (0-based), counting `proceed` and `commit` calls alike.
    struct StopAt {
        n: usize,
        seen: std::cell::Cell<usize>,
        done: std::cell::Cell<bool>,
    }

    impl StopAt {
        fn new(n: usize) -> Self {
            StopAt { n, seen: 0.into(), done: false.into() }
        }
        fn check(&self) -> Result<(), Signal> {
            let seen = self.seen.replace(self.seen.get() + 1);
            if seen == self.n { Err("SIGTERM") } else { Ok(()) }
        }
    }

    impl Checkpoint for StopAt {
        fn proceed(&self) -> Result<(), Signal> {
            self.check()
        }
        fn commit(&self) -> Result<(), Signal> {
            self.check()
        }
        fn done(&self) {
            self.done.set(true);
        }
    }

    #[test]
    fn a_stop_before_the_renames_changes_no_file() {
        let files = [rendered("a", "new\n", false), rendered("b", "new\n", true)];
        // Before the first file, before the second, and before the renames.
        for n in 0..3 {
            let dir = tempfile::tempdir().expect("tempdir");
            write_all(dir.path(), &[rendered("a", "old\n", false)], None, &Unstoppable).expect("first");
            let stop = StopAt::new(n);
            assert_eq!(write_all(dir.path(), &files, None, &stop), Err(WriteError::Stopped("SIGTERM")));
            assert!(stop.done.get(), "the checkpoint hears that the write is over");
            let mut names: Vec<String> = fs::read_dir(dir.path())
                .expect("ls")
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect();
            names.sort();
            assert_eq!(names, ["a"], "stopped at checkpoint {n}: nothing staged is left");
            assert_eq!(fs::read_to_string(dir.path().join("a")).expect("read"), "old\n");
        }
        // Past the commit checkpoint, nothing stops the renames.
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(write_all(dir.path(), &files, None, &StopAt::new(3)), Ok(vec!["a".into(), "b".into()]));
    }

    #[test]
    fn a_failure_changes_no_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_all(dir.path(), &[rendered("a", "old\n", false)], None, &Unstoppable).expect("first");
        // The second file cannot be staged: its temporary name is taken by a directory.
        fs::create_dir(dir.path().join(".b.agent-init.tmp")).expect("mkdir");
        let files = [rendered("a", "new\n", false), rendered("b", "x", false)];
        write_all(dir.path(), &files, None, &Unstoppable).expect_err("b cannot be written");
        assert_eq!(fs::read_to_string(dir.path().join("a")).expect("read"), "old\n", "a untouched");
        assert!(!dir.path().join(".a.agent-init.tmp").exists(), "staged file removed");
    }
}
