//! Reading a file that Kubernetes mounts (a Secret's or a ConfigMap's key) before each use:
//! never blocking, never unbounded. Such a path is a setting, and a mistake in it (a FIFO, a
//! device, a log file) must give an error, not a reader stuck forever while it holds a lock, nor
//! gigabytes read on every request.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The largest mounted file read: a certificate chain, a key or a token is a few KB, and a
/// Secret holds at most 1 MiB.
pub const MAX_BYTES: u64 = 1 << 20;

/// The file's content. Refused with an error of kind `InvalidInput`: anything but a regular file
/// (after the links are followed, as the kubelet's are), and a file over `max` bytes. Opening
/// does not wait for a writer (a FIFO), and nothing is read before the type is known.
pub fn read(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
    }
    if meta.len() > max {
        return Err(too_large(max));
    }
    let mut content = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // A file growing while it is read stops at the limit too.
    file.take(max + 1).read_to_end(&mut content)?;
    if content.len() as u64 > max {
        return Err(too_large(max));
    }
    Ok(content)
}

fn too_large(max: u64) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("larger than {max} bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_up_to_the_limit_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("key");
        std::fs::write(&file, b"0123456789").expect("write");
        assert_eq!(read(&file, 10).expect("read"), b"0123456789");
        let e = read(&file, 9).expect_err("too large");
        assert_eq!(
            (e.kind(), e.to_string()),
            (std::io::ErrorKind::InvalidInput, "larger than 9 bytes".into())
        );
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).expect("link");
        assert_eq!(read(&link, 10).expect("through the link"), b"0123456789");
        assert_eq!(read(dir.path(), 10).expect_err("a directory").kind(), std::io::ErrorKind::InvalidInput);
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR)
            .expect("mkfifo");
        // Without a writer: refused at once, not waited on.
        let e = read(&fifo, 10).expect_err("a FIFO");
        assert_eq!(
            (e.kind(), e.to_string()),
            (std::io::ErrorKind::InvalidInput, "not a regular file".into())
        );
        assert_eq!(
            read(&dir.path().join("missing"), 10).expect_err("missing").kind(),
            std::io::ErrorKind::NotFound
        );
    }
}
