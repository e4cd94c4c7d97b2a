//! A real HTTP proxy for the tests: Debian's tinyproxy (installed by
//! `scripts/install-test-tools`), in the foreground on a loopback port, with or without basic
//! auth. It forwards `http://` requests and tunnels `https://` ones by `CONNECT`; its log says
//! which it did.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Tinyproxy {
    tool: PathBuf,
    /// Its configuration and log; removed when it is dropped.
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Tinyproxy {
    /// Started on a free port of 127.0.0.1, taking clients from there only; `auth`: the user and
    /// password it asks for. `None` (after a `SKIPPED:` line, or a failure when required) without
    /// tinyproxy.
    pub fn start(auth: Option<(&str, &str)>) -> Option<Tinyproxy> {
        let tool = crate::require_tool("tinyproxy")?;
        // tinyproxy binds the port itself: a free one is found first (another process could
        // take it in between; the start below then fails loudly).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("tinyproxy-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for tinyproxy");
        let mut conf = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 60\nAllow 127.0.0.1\nMaxClients 64\nLogLevel Info\nLogFile \"{}\"\n",
            dir.join("tinyproxy.log").display()
        );
        if let Some((user, password)) = auth {
            conf.push_str(&format!("BasicAuth {user} {password}\n"));
        }
        std::fs::write(dir.join("tinyproxy.conf"), conf).expect("config");
        let mut proxy = Tinyproxy { tool, dir, port, child: None };
        proxy.up();
        Some(proxy)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Starts it again (after [`Tinyproxy::down`]), on the same port, and waits until it takes
    /// connections.
    pub fn up(&mut self) {
        let child = Command::new(&self.tool)
            .args(["-d", "-c"])
            .arg(self.dir.join("tinyproxy.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tinyproxy starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "tinyproxy did not listen on {}: {}", self.port, self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills it (SIGKILL: every tunnel cut at once) and waits for it to be gone.
    pub fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("tinyproxy.log")
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        self.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
