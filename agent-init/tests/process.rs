//! agent-init as a process: real files, real modes, real signals, a kubelet-style Secret volume
//! (`..data` symlink swap) for --watch.

use std::fs;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use calypso_testkit::eventually;
use calypso_testkit::process::Spawned;
use nix::sys::signal::Signal::SIGTERM;

const PATIENCE: Duration = Duration::from_secs(20);

/// A scratch setup: template directories, a Secret volume laid out as the kubelet does, and an
/// output directory.
struct Setup {
    root: tempfile::TempDir,
    generation: u32,
}

impl Setup {
    fn new() -> Setup {
        let root = tempfile::tempdir().expect("tempdir");
        for d in ["base", "uat", "out"] {
            fs::create_dir(root.path().join(d)).expect("mkdir");
        }
        let mut s = Setup { root, generation: 0 };
        s.secrets(&[("db-password", "s3cr=t:#!\n")]);
        s
    }

    fn path(&self, p: &str) -> PathBuf {
        self.root.path().join(p)
    }

    fn template(&self, dir: &str, name: &str, text: &str) {
        fs::write(self.path(dir).join(name), text).expect("write template");
    }

    /// Writes the Secret volume as the kubelet does: a new timestamped directory, `..data_tmp`
    /// pointing at it renamed over `..data`, and `key -> ..data/key` links.
    fn secrets(&mut self, pairs: &[(&str, &str)]) {
        self.generation += 1;
        let dir = self.path("secrets");
        fs::create_dir_all(&dir).expect("mkdir");
        let gen_dir = format!("..2026_11_21_12_00_0{}", self.generation);
        fs::create_dir(dir.join(&gen_dir)).expect("mkdir gen");
        for (k, v) in pairs {
            fs::write(dir.join(&gen_dir).join(k), v).expect("write secret");
        }
        symlink(&gen_dir, dir.join("..data_tmp")).expect("symlink tmp");
        fs::rename(dir.join("..data_tmp"), dir.join("..data")).expect("swap ..data");
        for (k, _) in pairs {
            let link = dir.join(k);
            if fs::symlink_metadata(&link).is_err() {
                symlink(format!("..data/{k}"), &link).expect("key link");
            }
        }
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_agent-init"));
        let templates = format!("{}:{}", self.path("base").display(), self.path("uat").display());
        cmd.args(args)
            .env_clear()
            .env("AGENT_INIT_TEMPLATES", templates)
            .env("AGENT_INIT_ENV", "UAT1")
            .env("AGENT_INIT_SECRETS_DIR", self.path("secrets"))
            .env("AGENT_INIT_OUTPUT", self.path("out"))
            .env("AGENT_TERMINATION_LOG", self.path("termination-log"))
            .envs(env.iter().copied())
            .stdin(Stdio::null());
        cmd
    }

    /// Replaces the current Secret volume's `key` with a FIFO: reading it blocks until the test
    /// writes it, so the test knows where agent-init is.
    fn fifo_secret(&self, key: &str) -> PathBuf {
        let path = self.path("secrets").join("..data").join(key);
        let _ = fs::remove_file(&path);
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
        path
    }

    fn spawn(&self, args: &[&str], env: &[(&str, &str)]) -> Spawned {
        Spawned::start(tokio::process::Command::from(self.command(args, env)))
    }

    /// Every file of the output directory with its contents and mode, hidden ones included.
    fn snapshot(&self) -> Vec<(String, String, u32)> {
        self.outputs()
            .into_iter()
            .map(|n| {
                let path = self.path("out").join(&n);
                let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
                (n, fs::read_to_string(&path).unwrap_or_default(), mode)
            })
            .collect()
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args, env).output().expect("agent-init runs")
    }

    fn out(&self, name: &str) -> String {
        fs::read_to_string(self.path("out").join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn mode(&self, name: &str) -> u32 {
        fs::metadata(self.path("out").join(name)).expect("meta").permissions().mode() & 0o777
    }

    fn termination(&self) -> String {
        fs::read_to_string(self.path("termination-log")).unwrap_or_default()
    }

    fn outputs(&self) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(self.path("out"))
            .expect("ls")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }
}

const SYSTEM: &str = "\
# Calypso system properties
DRIVER=oracle.jdbc.OracleDriver
DBURL=${DBURL}
DBUSER=${DBUSER:-calypso}
DBPASSWORD=${secret:db-password}
LOG_LEVEL=INFO
";

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn standard(s: &Setup) {
    s.template("base", "calypsosystem.properties.tmpl", SYSTEM);
    s.template(
        "uat",
        "calypsosystem.properties.tmpl",
        "# UAT\nLOG_LEVEL=DEBUG\nMAX_RETRY_CONNECT=${RETRIES:-20}\n",
    );
    s.template("base", "log4j2.xml.tmpl", "<Logger level=\"${LEVEL:-info}\" name=\"${CATEGORY}\"/>\n");
    s.template("base", "jvm.options.tmpl", "-Xmx${HEAP:-2g}\n");
    s.template("uat", "jvm.options.tmpl", "-Xmx${HEAP:-8g}\n");
}

const ENV: &[(&str, &str)] = &[("DBURL", "jdbc:oracle:thin:@db:1521:UAT1"), ("CATEGORY", "A&B <x>")];

#[test]
fn renders_overlays_kinds_and_modes() {
    let s = Setup::new();
    standard(&s);
    let o = s.run(&[], ENV);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(s.outputs(), ["calypsosystem.properties.UAT1", "jvm.options", "log4j2.xml"]);
    assert_eq!(
        s.out("calypsosystem.properties.UAT1"),
        "# Calypso system properties\nDRIVER=oracle.jdbc.OracleDriver\nDBURL=jdbc\\:oracle\\:thin\\:@db\\:1521\\:UAT1\n\
DBUSER=calypso\nDBPASSWORD=s3cr\\=t\\:\\#\\!\nLOG_LEVEL=DEBUG\nMAX_RETRY_CONNECT=20\n"
    );
    assert_eq!(s.out("log4j2.xml"), "<Logger level=\"info\" name=\"A&amp;B &lt;x&gt;\"/>\n");
    assert_eq!(s.out("jvm.options"), "-Xmx8g\n", "the overlay replaces other files whole");
    assert_eq!(s.mode("calypsosystem.properties.UAT1"), 0o600, "holds a secret");
    assert_eq!(s.mode("log4j2.xml"), 0o640);
    assert!(!stderr(&o).contains("s3cr"), "no secret in the log");
}

#[test]
fn idempotent_byte_for_byte() {
    let s = Setup::new();
    standard(&s);
    assert!(s.run(&[], ENV).status.success());
    let first: Vec<Vec<u8>> =
        s.outputs().iter().map(|n| fs::read(s.path("out").join(n)).expect("read")).collect();
    let o = s.run(&[], ENV);
    assert!(o.status.success());
    let second: Vec<Vec<u8>> =
        s.outputs().iter().map(|n| fs::read(s.path("out").join(n)).expect("read")).collect();
    assert_eq!(first, second);
    assert!(stderr(&o).contains("written=0 unchanged=3"), "{}", stderr(&o));
}

#[test]
fn every_missing_value_listed_and_nothing_written() {
    let s = Setup::new();
    standard(&s);
    s.template("base", "calypsouser.properties.tmpl", "CLIENTPASSWD=${secret:client-password}\nX=${NOPE}\n");
    fs::write(s.path("out").join("jvm.options"), "old\n").expect("old file");
    let o = s.run(&[], &[("CATEGORY", "c")]);
    assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));
    let message = s.termination();
    for needle in [
        "3 template problems; nothing written: ",
        "calypsosystem.properties.tmpl:3:7: variable DBURL is not set",
        "calypsouser.properties.tmpl:1:14: secret client-password not found",
        "calypsouser.properties.tmpl:2:3: variable NOPE is not set",
    ] {
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
    assert_eq!(s.outputs(), ["jvm.options"], "no output file created");
    assert_eq!(s.out("jvm.options"), "old\n", "old files untouched");
}

#[test]
fn syntax_errors_and_duplicates_with_positions() {
    let s = Setup::new();
    s.template("base", "a.properties.tmpl", "A=${}\nB=${X:=y}\nA=2\nC=${UNCLOSED\n");
    let o = s.run(&[], &[]);
    assert_eq!(o.status.code(), Some(65));
    let err = stderr(&o);
    let base = s.path("base").join("a.properties.tmpl");
    for needle in [
        format!("{}:3:1: duplicate key \"A\" (first at line 1)", base.display()),
        format!("{}:1:3: empty placeholder", base.display()),
        format!("{}:2:3: unsupported placeholder ${{X:=y}}", base.display()),
        format!("{}:4:3: unterminated placeholder", base.display()),
    ] {
        assert!(err.contains(&needle), "{needle:?} not in {err}");
    }
}

#[test]
fn required_keys_of_calypsosystem() {
    let s = Setup::new();
    s.template("base", "calypsosystem.properties.tmpl", "DRIVER=x\nDBURL=\n");
    let o = s.run(&[], &[("AGENT_INIT_REQUIRE", "calypsosystem.properties:LOG_LEVEL")]);
    assert_eq!(o.status.code(), Some(65));
    let m = s.termination();
    for needle in ["DBURL is empty", "DBUSER is missing", "DBPASSWORD is missing", "LOG_LEVEL is missing"] {
        assert!(m.contains(needle), "{needle:?} not in {m:?}");
    }
}

#[test]
fn check_and_print_never_show_secrets() {
    let s = Setup::new();
    standard(&s);
    let o = s.run(&["--check"], ENV);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("calypsosystem.properties.UAT1 (mode 0600, 6 keys)"), "{out}");
    assert!(out.contains("${secret:db-password}") && out.contains("secret "), "{out}");
    assert!(out.contains("${DBUSER:-calypso}") && out.contains("default"), "{out}");
    assert!(out.contains("3 files valid; nothing written (--check)"), "{out}");
    assert!(s.outputs().is_empty(), "--check writes nothing");
    let o = s.run(&["--print"], ENV);
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(out.contains("DBPASSWORD=<redacted>"), "{out}");
    assert!(out.contains("DBURL=jdbc\\:oracle"), "{out}");
    for text in [out, stderr(&o)] {
        assert!(!text.contains("s3cr"), "secret shown: {text}");
    }
    assert!(s.outputs().is_empty(), "--print writes nothing");
}

#[test]
fn bad_configuration_exits_64() {
    let s = Setup::new();
    let o = s.run(&[], &[("AGENT_INIT_TEMPLATES", "/no/such/dir"), ("AGENT_INIT_OWNER", "me")]);
    assert_eq!(o.status.code(), Some(64));
    assert!(
        s.termination().contains("AGENT_INIT_OWNER=\"me\": must be numeric uid:gid"),
        "{}",
        s.termination()
    );
    let o = s.run(&[], &[("AGENT_INIT_TEMPLATES", "/no/such/dir")]);
    assert_eq!(o.status.code(), Some(64));
    assert!(s.termination().contains("cannot read template directory /no/such/dir"), "{}", s.termination());
    let o = s.run(&[], &[("AGENT_INIT_OUTPUT", "/no/such/out")]);
    assert_eq!(o.status.code(), Some(64));
    assert!(
        s.termination().contains("AGENT_INIT_OUTPUT=\"/no/such/out\": no such directory"),
        "{}",
        s.termination()
    );
}

#[test]
fn owner_is_applied() {
    let s = Setup::new();
    standard(&s);
    // Root may give files away; anyone may "give" them to themselves.
    let (uid, gid) = if nix::unistd::geteuid().is_root() {
        (4242, 4343)
    } else {
        (nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw())
    };
    // First without an owner: a re-run with one must change the owner of unchanged files too.
    assert!(s.run(&[], ENV).status.success());
    let owner = format!("{uid}:{gid}");
    let o = s.run(&[], &[ENV, &[("AGENT_INIT_OWNER", owner.as_str())]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let meta = fs::metadata(s.path("out").join("log4j2.xml")).expect("meta");
    assert_eq!((meta.uid(), meta.gid()), (uid, gid));
}

#[test]
fn a_value_that_is_not_utf8_is_named_as_such() {
    use std::os::unix::ffi::OsStrExt;
    let s = Setup::new();
    s.template("base", "a.tmpl", "x=${LATIN1}\n");
    let o =
        s.command(&[], &[]).env("LATIN1", std::ffi::OsStr::from_bytes(b"caf\xe9")).output().expect("runs");
    assert_eq!(o.status.code(), Some(65));
    assert!(s.termination().contains("a.tmpl:1:3: variable LATIN1 is not UTF-8 text"), "{}", s.termination());
}

#[test]
fn empty_environment_name_is_refused() {
    let s = Setup::new();
    standard(&s);
    let o = s.run(&["--env", ""], ENV);
    assert_eq!(o.status.code(), Some(64));
    assert!(s.outputs().is_empty());
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for `path` to contain `needle`.
fn wait_for_content(path: &Path, needle: &str) {
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        if fs::read_to_string(path).is_ok_and(|t| t.contains(needle)) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{} never contained {needle:?}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_rerenders_on_a_secret_swap_and_keeps_files_on_failure() {
    let mut s = Setup::new();
    standard(&s);
    let log = s.path("agent.log");
    let child = s
        .command(
            &["--watch", "--debounce", "100ms"],
            &[ENV, &[("AGENT_LOG", "info,agent_init=debug")]].concat(),
        )
        .stderr(fs::File::create(&log).expect("log"))
        .spawn()
        .expect("starts");
    // Killed if the test fails half-way, so no watcher outlives it.
    let mut child = KillOnDrop(child);
    let system = s.path("out").join("calypsosystem.properties.UAT1");
    wait_for_content(&system, "DBPASSWORD=s3cr");
    wait_for_content(&log, "watching the templates and secrets");

    s.secrets(&[("db-password", "n3w-pass")]);
    wait_for_content(&system, "DBPASSWORD=n3w-pass");
    wait_for_content(&log, "keys changed: DBPASSWORD");
    // Our own reads of the templates are no changes: once settled, no re-render follows. (A
    // wait to show that nothing happens; with the bug it re-rendered every debounce period.)
    let renders = || fs::read_to_string(&log).expect("log").matches("re-rendering").count();
    let settled = renders();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(renders(), settled, "re-rendered without a change");

    // A broken template: the re-render fails, the files stay.
    s.template("uat", "calypsosystem.properties.tmpl", "LOG_LEVEL=${BROKEN\n");
    wait_for_content(&log, "re-render failed; the files stay as they were");
    assert!(fs::read_to_string(&system).expect("read").contains("DBPASSWORD=n3w-pass"));

    let logged = fs::read_to_string(&log).expect("log");
    assert!(!logged.contains("s3cr") && !logged.contains("n3w-pass"), "values never logged: {logged}");
    let pid = nix::unistd::Pid::from_raw(child.0.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("kill");
    let status = eventually("agent-init to exit", PATIENCE, async || child.0.try_wait().expect("wait")).await;
    assert_eq!(status.code(), Some(0), "a stopped watcher exits 0");
}

/// Opens the FIFO for writing once agent-init has opened it for reading (which is when a
/// non-blocking open stops failing): from then on agent-init is blocked reading it, until the
/// returned writer writes or is closed.
async fn writer_once_read(fifo: &Path) -> fs::File {
    let nonblocking = nix::fcntl::OFlag::O_NONBLOCK.bits();
    eventually("agent-init to open the FIFO", PATIENCE, async || {
        fs::OpenOptions::new().write(true).custom_flags(nonblocking).open(fifo).ok()
    })
    .await
}

#[test]
fn variables_named_like_secrets_are_secret() {
    let s = Setup::new();
    s.template(
        "base",
        "app.properties.tmpl",
        "URL=${DBURL}\nPASSWORD=${DB_PASSWORD}\nPIN=${CARD_PIN:-0000}\n",
    );
    s.template("base", "app.xml.tmpl", "<db password=\"${db_password}\"/>\n");
    let env = &[("DBURL", "jdbc:x"), ("DB_PASSWORD", "hunter2:pw"), ("db_password", "hunter3")];

    let o = s.run(&["--print"], env);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("==> app.properties.UAT1 (mode 0600) <==\nURL=jdbc\\:x\nPASSWORD=<redacted>\n"),
        "{out}"
    );
    assert!(out.contains("<db password=\"<redacted>\"/>"), "case does not matter: {out}");
    let o = s.run(&["--check"], env);
    assert!(o.status.success(), "{}", stderr(&o));
    let check = stdout(&o);
    assert!(check.contains("app.properties.UAT1 (mode 0600, 3 keys)"), "{check}");
    let line = |needle: &str| check.lines().find(|l| l.contains(needle)).unwrap_or_default().to_string();
    assert!(line("${DB_PASSWORD}").contains(" env, secret "), "{check}");
    assert!(line("${CARD_PIN:-0000}").contains(" default "), "not secret by default: {check}");
    assert!(line("${DBURL}").contains(" env "), "{check}");
    let o = s.run(&[], env);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(s.out("app.properties.UAT1"), "URL=jdbc\\:x\nPASSWORD=hunter2\\:pw\nPIN=0000\n");
    assert_eq!((s.mode("app.properties.UAT1"), s.mode("app.xml")), (0o600, 0o600));
    for text in [out, check, stderr(&o)] {
        assert!(!text.contains("hunter"), "a secret shown: {text}");
    }

    // An error on the very line of the secret, and one about the secret value itself, show
    // none of it (not even the character XML cannot hold).
    s.template("base", "app.properties.tmpl", "PASSWORD=${DB_PASSWORD}${MISSING}\n");
    let o = s.run(&[], &[("DB_PASSWORD", "hunter2"), ("db_password", "hunter3\u{1}")]);
    assert_eq!(o.status.code(), Some(65), "{}", stderr(&o));
    let (err, message) = (stderr(&o), s.termination());
    for text in [&err, &message] {
        assert!(text.contains("app.properties.tmpl:1:24: variable MISSING is not set"), "{text}");
        assert!(
            text.contains("app.xml.tmpl:1:15: ${db_password}: the secret value holds a character"),
            "{text}"
        );
        assert!(!text.contains("hunter") && !text.contains("U+0001"), "a secret shown: {text}");
    }

    // AGENT_INIT_SECRET_VARS replaces the list.
    s.template("base", "app.properties.tmpl", "PASSWORD=${DB_PASSWORD}\nPIN=${CARD_PIN:-0000}\n");
    let o = s.run(
        &["--print"],
        &[("DB_PASSWORD", "hunter2"), ("AGENT_INIT_SECRET_VARS", "*_pin"), ("db_password", "x")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("PASSWORD=hunter2\nPIN=<redacted>\n"), "{}", stdout(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_rendering_exits_143_and_changes_nothing() {
    let s = Setup::new();
    standard(&s);
    fs::write(s.path("out").join("jvm.options"), "old\n").expect("old file");
    fs::write(s.path("out").join("calypsosystem.properties.UAT1"), "OLD=1\n").expect("old file");
    let before = s.snapshot();
    let fifo = s.fifo_secret("db-password");
    let mut agent = s.spawn(&[], ENV);
    let writer = writer_once_read(&fifo).await;
    agent.signal(SIGTERM);
    assert_eq!(agent.exit_code().await, 143, "{}", agent.stderr());
    drop(writer);
    assert_eq!(s.termination(), "stopped by SIGTERM; no file was changed\n");
    assert!(agent.stderr().contains("stopped by SIGTERM; no file was changed"), "{}", agent.stderr());
    assert_eq!(s.snapshot(), before, "the output directory is as it was");
}

/// As PID 1 (of a new PID namespace), where the kernel drops a signal that has no handler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_as_pid_1_exits_143() {
    let Some(unshare) = calypso_testkit::require_tool("unshare") else { return };
    let mut args = vec!["--pid", "--fork", "--kill-child"];
    if !nix::unistd::geteuid().is_root() {
        args.push("--map-root-user");
    }
    let probe = Command::new(&unshare).args(&args).arg("true").output().expect("unshare runs");
    if !probe.status.success() {
        assert!(
            !calypso_testkit::tools::required("unshare"),
            "cannot make a PID namespace: {}",
            stderr(&probe)
        );
        eprintln!("SKIPPED: cannot make a PID namespace here: {}", stderr(&probe).trim());
        return;
    }
    let s = Setup::new();
    standard(&s);
    let fifo = s.fifo_secret("db-password");
    let agent_init = s.command(&[], ENV);
    let mut cmd = Command::new(&unshare);
    cmd.args(&args).arg("--").arg(agent_init.get_program()).args(agent_init.get_args());
    cmd.env_clear().envs(agent_init.get_envs().filter_map(|(k, v)| Some((k, v?))));
    let mut wrapper = Spawned::start(tokio::process::Command::from(cmd));
    let writer = writer_once_read(&fifo).await;
    // The wrapper's child is agent-init, PID 1 in its namespace.
    let wrapper_pid = wrapper.child.id().expect("pid");
    let children = format!("/proc/{wrapper_pid}/task/{wrapper_pid}/children");
    let pid: i32 = fs::read_to_string(&children).expect("children").trim().parse().expect("one child");
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    assert!(status.lines().any(|l| l.starts_with("NSpid:") && l.trim_end().ends_with("\t1")), "{status}");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), SIGTERM).expect("kill");
    assert_eq!(wrapper.exit_code().await, 143, "{}", wrapper.stderr());
    drop(writer);
    assert_eq!(s.termination(), "stopped by SIGTERM; no file was changed\n");
    assert!(s.outputs().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_a_swap_that_lands_during_the_first_render() {
    let mut s = Setup::new();
    standard(&s);
    let fifo = s.fifo_secret("db-password");
    let mut agent = s.spawn(&["--watch", "--debounce", "100ms"], ENV);
    // agent-init is inside its first render, reading the old Secret, when the new one lands.
    let mut writer = writer_once_read(&fifo).await;
    s.secrets(&[("db-password", "n3w-pass")]);
    std::io::Write::write_all(&mut writer, b"old-pass").expect("write fifo");
    drop(writer);
    let system = s.path("out").join("calypsosystem.properties.UAT1");
    wait_for_content(&system, "DBPASSWORD=n3w-pass");
    agent.said("keys changed: DBPASSWORD").await;
    agent.signal(SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    assert!(!agent.stderr().contains("pass"), "values never logged: {}", agent.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_the_first_render_of_watch_exits_143() {
    let s = Setup::new();
    standard(&s);
    let fifo = s.fifo_secret("db-password");
    let mut agent = s.spawn(&["--watch"], ENV);
    let writer = writer_once_read(&fifo).await;
    agent.signal(SIGTERM);
    assert_eq!(agent.exit_code().await, 143, "{}", agent.stderr());
    drop(writer);
    assert_eq!(s.termination(), "stopped by SIGTERM; no file was changed\n");
    assert!(s.outputs().is_empty());
}

/// Each failure class: the reason on stderr and as the termination message.
#[test]
fn every_failure_is_on_stderr_and_in_the_termination_message() {
    let s = Setup::new();
    standard(&s);
    let tmp_taken = s.path("out").join(".calypsosystem.properties.UAT1.agent-init.tmp");
    let out = s.path("out").join("calypsosystem.properties.UAT1");
    type Vars<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Vars, i32, String); 4] = [
        (&[("AGENT_INIT_OWNER", "me")], 64, "AGENT_INIT_OWNER=\"me\": must be numeric uid:gid".into()),
        (
            &[("AGENT_INIT_TEMPLATES", "/no/such/dir")],
            64,
            "cannot read template directory /no/such/dir".into(),
        ),
        (&[("CATEGORY", "c")], 65, "calypsosystem.properties.tmpl:3:7: variable DBURL is not set".into()),
        (ENV, 70, format!("cannot write {}: ", out.display())),
    ];
    for (env, code, reason) in cases {
        if code == 70 {
            // The staging file's name is taken by a directory: the write fails, changing nothing.
            fs::create_dir(&tmp_taken).expect("mkdir");
        }
        let _ = fs::remove_file(s.path("termination-log"));
        let o = s.run(&[], env);
        assert_eq!(o.status.code(), Some(code), "{}", stderr(&o));
        assert!(stderr(&o).contains(&reason), "{reason:?} not on stderr: {}", stderr(&o));
        assert!(s.termination().contains(&reason), "{reason:?} not in {:?}", s.termination());
    }
    assert!(s.termination().ends_with("; no file was changed\n"), "{}", s.termination());
    assert_eq!(s.outputs(), [".calypsosystem.properties.UAT1.agent-init.tmp"], "nothing written");
}
