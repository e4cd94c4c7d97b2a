//! The real `java.util.Properties` as a test oracle: [`Jvm::load_many`] loads `.properties` files
//! in one JVM run, through both `Properties.load(InputStream)` (ISO-8859-1) and
//! `Properties.load(Reader)` over a UTF-8 `InputStreamReader`, and returns what Java read.
//!
//! The loader is `jvm/PropertiesDump.java`, compiled with `javac` once per process into a
//! private temporary directory (`$TMPDIR/calypso-testkit-jvm-<pid>-<n>`) that lives as long as the
//! process; directories left by processes that no longer exist are removed on the next setup.
//! `JAVA_HOME/bin` is used when `JAVA_HOME` is set and holds both tools, else `java` and `javac`
//! from `PATH`.
//!
//! Where Java is missing, [`Jvm::get`] returns `None` and says so loudly on stderr (not captured
//! by the test harness), so tests can return early; where `AGENT_TESTS_REQUIRE` (a
//! comma-separated list) contains `java`, as on CI, it panics instead.

use std::collections::BTreeMap;
use std::io::{self, Write as _};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

const SOURCE: &str = include_str!("jvm/PropertiesDump.java");
const CLASS: &str = "PropertiesDump";
const DIR_PREFIX: &str = "calypso-testkit-jvm-";
/// The environment variable listing tools whose tests must not be skipped.
pub use crate::tools::REQUIRE_VAR;

/// A compiled loader, ready to run.
#[derive(Debug)]
pub struct Jvm {
    java: PathBuf,
    dir: PathBuf,
}

/// What Java read through one reader: the properties, or the exception's class and message.
pub type LoadResult = Result<BTreeMap<String, String>, String>;

/// What Java read from one file, through each reader: the properties, or the exception's class
/// and message (`java.lang.IllegalArgumentException: Malformed \uxxxx encoding.`).
///
/// Keys and values are Java strings; one holding an unpaired UTF-16 surrogate (possible only
/// from a `\uXXXX` escape of one) has it replaced by U+FFFD, as Rust text must be valid Unicode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub via_stream: Result<BTreeMap<String, String>, String>,
    pub via_reader: Result<BTreeMap<String, String>, String>,
}

impl Loaded {
    /// Both results, named by reader, for assertions that loop over them.
    pub fn by_reader(&self) -> [(&'static str, &LoadResult); 2] {
        [("load(InputStream)", &self.via_stream), ("load(Reader, UTF-8)", &self.via_reader)]
    }
}

impl Jvm {
    /// The loader, compiled on first use; `None` when `java` or `javac` is missing, after a
    /// `SKIPPED: ...` line on stderr.
    ///
    /// # Panics
    ///
    /// When Java is missing but `AGENT_TESTS_REQUIRE` contains `java`; when `javac` is there but
    /// the loader does not compile or the temporary directory cannot be written.
    pub fn get() -> Option<&'static Jvm> {
        static JVM: OnceLock<Result<Jvm, String>> = OnceLock::new();
        match JVM.get_or_init(setup) {
            Ok(jvm) => Some(jvm),
            Err(missing) => {
                assert!(
                    !required(),
                    "{REQUIRE_VAR} contains `java`, but {missing}: install a JDK (java and javac, \
                     17 or later) or remove `java` from {REQUIRE_VAR}"
                );
                // Straight to stderr, past the test harness's capture: a skip must be seen.
                let _ = writeln!(
                    io::stderr(),
                    "SKIPPED: java.util.Properties oracle tests: {missing} (install a JDK: java and \
                     javac, 17 or later; set {REQUIRE_VAR}=java to make this an error)"
                );
                None
            }
        }
    }

    /// Loads every file in one JVM run, through both readers. Paths are passed to Java as
    /// arguments, relative to the current directory.
    pub fn load_many(&self, paths: &[PathBuf]) -> io::Result<Vec<Loaded>> {
        let output = Command::new(&self.java)
            .args(["-Xshare:auto", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp"])
            .arg(&self.dir)
            .arg(CLASS)
            .args(paths)
            .stdin(Stdio::null())
            .output()?;
        if !output.status.success() {
            return Err(io::Error::other(format!(
                "{} {CLASS} failed ({}): {}",
                self.java.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )));
        }
        let stdout = String::from_utf8(output.stdout)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "loader output is not UTF-8"))?;
        parse_dump(&stdout, paths.len())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("loader output: {e}")))
    }

    /// Loads one file, through both readers.
    pub fn load(&self, path: &Path) -> io::Result<Loaded> {
        self.load_many(&[path.to_path_buf()])?
            .pop()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "loader output: no file"))
    }
}

fn required() -> bool {
    crate::tools::required("java")
}

/// `Ok` with the compiled loader, `Err` saying what is missing.
fn setup() -> Result<Jvm, String> {
    let (java, javac) = tools();
    for tool in [&java, &javac] {
        let found = Command::new(tool)
            .arg("-version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Err(e) = found {
            return Err(format!("`{}` cannot be run ({e})", tool.display()));
        }
    }
    let dir = process_dir().unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
    let source = dir.join(format!("{CLASS}.java"));
    std::fs::write(&source, SOURCE).unwrap_or_else(|e| panic!("cannot write {}: {e}", source.display()));
    let compiled = Command::new(&javac)
        .args(["-encoding", "UTF-8", "-nowarn", "-d"])
        .arg(&dir)
        .arg(&source)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("`{}` cannot be run: {e}", javac.display()));
    assert!(
        compiled.status.success(),
        "{} {} failed ({}): {}",
        javac.display(),
        source.display(),
        compiled.status,
        String::from_utf8_lossy(&compiled.stderr).trim()
    );
    Ok(Jvm { java, dir })
}

/// `java` and `javac`: from `JAVA_HOME/bin` when it has both, else from `PATH`.
fn tools() -> (PathBuf, PathBuf) {
    if let Some(home) = std::env::var_os("JAVA_HOME") {
        let bin = Path::new(&home).join("bin");
        let (java, javac) = (bin.join("java"), bin.join("javac"));
        if java.is_file() && javac.is_file() {
            return (java, javac);
        }
    }
    (PathBuf::from("java"), PathBuf::from("javac"))
}

/// A new directory only this process uses, after removing those of processes that are gone.
fn process_dir() -> io::Result<PathBuf> {
    let base = std::env::temp_dir();
    remove_stale_dirs(&base);
    let pid = std::process::id();
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let mut last = None;
    for attempt in 0..64u32 {
        let dir = base.join(format!("{DIR_PREFIX}{pid}-{:x}", nanos.wrapping_add(attempt)));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free directory name")))
}

/// Removes `calypso-testkit-jvm-<pid>-*` directories whose process no longer runs (Linux only:
/// decided by `/proc/<pid>`; elsewhere nothing is removed). Errors are ignored: another user's
/// directory, or one another process removes at the same time.
fn remove_stale_dirs(base: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(base) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(DIR_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Reads the loader's output (format in PropertiesDump.java) for `files` files.
fn parse_dump(out: &str, files: usize) -> Result<Vec<Loaded>, String> {
    let mut lines = out.split('\n');
    let mut loaded = Vec::with_capacity(files);
    for n in 0..files {
        match lines.next() {
            Some("FILE") => {}
            other => return Err(format!("expected FILE for file {n}, got {other:?}")),
        }
        let via_stream = parse_result(&mut lines)?;
        let via_reader = parse_result(&mut lines)?;
        loaded.push(Loaded { via_stream, via_reader });
    }
    match (lines.next(), lines.next(), lines.next()) {
        (Some("END"), Some(""), None) => Ok(loaded),
        other => Err(format!("expected END after {files} files, got {other:?}")),
    }
}

fn parse_result<'a>(lines: &mut impl Iterator<Item = &'a str>) -> Result<LoadResult, String> {
    let line = lines.next().ok_or("truncated")?;
    if let Some(rest) = line.strip_prefix("ERR ") {
        let (class, message) = rest.split_once(' ').ok_or_else(|| format!("bad ERR line {line:?}"))?;
        return Ok(Err(format!("{class}: {}", utf16_hex(message)?)));
    }
    let count = line
        .strip_prefix("OK ")
        .and_then(|n| n.parse::<usize>().ok())
        .ok_or_else(|| format!("expected OK <n> or ERR, got {line:?}"))?;
    let mut map = BTreeMap::new();
    for _ in 0..count {
        let line = lines.next().ok_or("truncated")?;
        let (key, value) = line.split_once(' ').ok_or_else(|| format!("bad pair line {line:?}"))?;
        map.insert(utf16_hex(key)?, utf16_hex(value)?);
    }
    Ok(Ok(map))
}

/// Decodes four hex digits per UTF-16 code unit; an unpaired surrogate becomes U+FFFD.
fn utf16_hex(hex: &str) -> Result<String, String> {
    if !hex.len().is_multiple_of(4) || !hex.is_ascii() {
        return Err(format!("bad UTF-16 hex {hex:?}"));
    }
    let units = (0..hex.len())
        .step_by(4)
        .map(|i| u16::from_str_radix(&hex[i..i + 4], 16).map_err(|_| format!("bad UTF-16 hex {hex:?}")))
        .collect::<Result<Vec<u16>, String>>()?;
    Ok(String::from_utf16_lossy(&units))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_dump_format() {
        let out = "FILE\nOK 2\n 0041\n0061d83dde00 \nERR java.lang.IllegalArgumentException 004d0061\nFILE\nOK 0\nOK 1\nd800 0078\nEND\n";
        let loaded = parse_dump(out, 2).unwrap();
        let map = |pairs: &[(&str, &str)]| {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>()
        };
        assert_eq!(loaded[0].via_stream, Ok(map(&[("", "A"), ("a😀", "")])));
        assert_eq!(loaded[0].via_reader, Err("java.lang.IllegalArgumentException: Ma".to_owned()));
        assert_eq!(loaded[1].via_stream, Ok(map(&[])));
        assert_eq!(loaded[1].via_reader, Ok(map(&[("\u{fffd}", "x")])));
    }

    #[test]
    fn refuses_a_truncated_or_garbled_dump() {
        assert!(parse_dump("FILE\nOK 2\n 0041\n", 1).is_err());
        assert!(parse_dump("FILE\nOK 0\nOK 0\n", 1).is_err());
        assert!(parse_dump("FILE\nOK 0\nOK 0\nEND\n", 2).is_err());
        assert!(parse_dump("FILE\nOK 1\n004 0041\nOK 0\nEND\n", 1).is_err());
        assert!(parse_dump("FILE\nWHAT\n", 1).is_err());
        assert!(parse_dump("FILE\nOK 0\nOK 0\nEND\nmore", 1).is_err());
    }
}
