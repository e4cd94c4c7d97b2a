//! Writing the rendered files into the output directory: each through a temporary file in the
//! same directory, fsynced, renamed over the old one, then the directory fsynced — so a reader
//! sees the old file or the new one, never half of one, even across a crash.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::render::Rendered;

/// `uid:gid` to give the files (`AGENT_INIT_OWNER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// Writes every file whose contents, mode or owner differ from what is there; returns the names
/// written. Two phases, so that a failure changes nothing: every new file is first written and
/// fsynced under a temporary name (any failure removes them all and leaves the old files), then
/// all are renamed into place and the directory is fsynced. Files already identical are left
/// alone (no needless change events for watchers).
pub fn write_all(dir: &Path, files: &[Rendered], owner: Option<Owner>) -> Result<Vec<String>, String> {
    let changed: Vec<&Rendered> =
        files.iter().filter(|f| !unchanged(&dir.join(&f.output), f, owner)).collect();
    let mut staged: Vec<(PathBuf, &Rendered)> = Vec::new();
    for file in &changed {
        let tmp = dir.join(format!(".{}.agent-init.tmp", file.output));
        if let Err(e) = stage(&tmp, file, owner) {
            for (t, _) in staged.iter().chain([(tmp.clone(), *file)].iter()) {
                let _ = fs::remove_file(t);
            }
            return Err(format!(
                "cannot write {}: {e}; no file was changed",
                dir.join(&file.output).display()
            ));
        }
        staged.push((tmp, file));
    }
    let mut written = Vec::new();
    for (tmp, file) in &staged {
        let path = dir.join(&file.output);
        // A rename within one directory fails only if the directory itself went away.
        fs::rename(tmp, &path)
            .map_err(|e| format!("cannot rename {} to {}: {e}", tmp.display(), path.display()))?;
        written.push(file.output.clone());
    }
    if !written.is_empty() {
        // The renames are durable only once the directory itself is.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("cannot sync {}: {e}", dir.display()))?;
    }
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
            write_all(dir.path(), &files, None),
            Ok(vec!["a.properties.X".into(), "s.properties.X".into()])
        );
        let mode = |n: &str| fs::metadata(dir.path().join(n)).expect("meta").permissions().mode() & 0o777;
        assert_eq!((mode("a.properties.X"), mode("s.properties.X")), (0o640, 0o600));
        assert_eq!(write_all(dir.path(), &files, None), Ok(vec![]), "identical: nothing written");
        let changed = [rendered("a.properties.X", "A=2\n", false)];
        assert_eq!(write_all(dir.path(), &changed, None), Ok(vec!["a.properties.X".into()]));
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
        let e = write_all(&missing, &[rendered("a", "x", false)], None).expect_err("no dir");
        assert!(e.starts_with(&format!("cannot write {}/a: ", missing.display())), "{e}");
        assert!(e.ends_with("; no file was changed"), "{e}");
    }

    #[test]
    fn a_failure_changes_no_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        write_all(dir.path(), &[rendered("a", "old\n", false)], None).expect("first");
        // The second file cannot be staged: its temporary name is taken by a directory.
        fs::create_dir(dir.path().join(".b.agent-init.tmp")).expect("mkdir");
        let files = [rendered("a", "new\n", false), rendered("b", "x", false)];
        write_all(dir.path(), &files, None).expect_err("b cannot be written");
        assert_eq!(fs::read_to_string(dir.path().join("a")).expect("read"), "old\n", "a untouched");
        assert!(!dir.path().join(".a.agent-init.tmp").exists(), "staged file removed");
    }
}
