//! Writing the rendered files into the output directory: each through a temporary file in the
//! same directory, fsynced, renamed over the old one, then the directory fsynced — so a reader
//! sees the old file or the new one, never half of one, even across a crash.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::render::Rendered;

/// `uid:gid` to give the files (`AGENT_INIT_OWNER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// Writes every file whose contents or mode differ from what is there; returns the names
/// written. Files already identical are left alone (no needless change events for watchers).
pub fn write_all(dir: &Path, files: &[Rendered], owner: Option<Owner>) -> Result<Vec<String>, String> {
    let mut written = Vec::new();
    for file in files {
        let path = dir.join(&file.output);
        if unchanged(&path, file) {
            continue;
        }
        write_one(dir, file, owner).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
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

fn unchanged(path: &Path, file: &Rendered) -> bool {
    match (fs::read(path), fs::metadata(path)) {
        (Ok(bytes), Ok(meta)) => {
            bytes == file.text.as_bytes() && meta.permissions().mode() & 0o777 == file.mode()
        }
        _ => false,
    }
}

fn write_one(dir: &Path, file: &Rendered, owner: Option<Owner>) -> io::Result<()> {
    let tmp = dir.join(format!(".{}.agent-init.tmp", file.output));
    // A leftover from an interrupted run is ours to replace.
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(file.mode()).open(&tmp)?;
        // The umask may have narrowed the mode given at creation; the mode is part of the contract.
        f.set_permissions(fs::Permissions::from_mode(file.mode()))?;
        f.write_all(file.text.as_bytes())?;
        if let Some(o) = owner {
            nix::unistd::fchown(
                &f,
                Some(nix::unistd::Uid::from_raw(o.uid)),
                Some(nix::unistd::Gid::from_raw(o.gid)),
            )
            .map_err(io::Error::from)?;
        }
        f.sync_all()?;
        fs::rename(&tmp, dir.join(&file.output))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
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
    }
}
