//! Test helpers shared by the modules' unit tests: a policy, reports, an app fed with polls, and
//! a server on 127.0.0.1:0 with raw HTTP/1.1 requests against it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use calypso::{HealthNode, HealthReport, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::app::App;
use crate::policy::{Policy, Poll};
use crate::server::{Limits, Scope, serve};

/// One good or bad poll flips readiness; long grace.
pub fn policy() -> Policy {
    Policy {
        interval: Duration::from_secs(2),
        attempt_timeout: Duration::from_secs(1),
        amber_ready: true,
        readiness_ignore: Vec::new(),
        ready_failures: 1,
        ready_successes: 1,
        liveness_grace: Duration::from_secs(60),
        liveness_sensors: Vec::new(),
    }
}

/// A report with a System and a Calypso sub-system; the DataServer connection in `dataserver`.
pub fn report(dataserver: State) -> HealthReport {
    let calypso = HealthNode::new("Calypso", dataserver).with_children(vec![
        HealthNode::new("DataServerConnection", dataserver).with_details(match dataserver {
            State::Green => "connected",
            State::Amber => "slow",
            State::Red => "connection to DataServer lost",
        }),
        HealthNode::new("EventServerConnection", State::Green).with_details("connected"),
    ]);
    let system = HealthNode::new("System", State::Green)
        .with_children(vec![HealthNode::new("MemoryUsage", State::Green).with_value(42.5)]);
    HealthReport {
        server: Some("engineserver-0".into()),
        server_type: Some("EngineServer".into()),
        timestamp: None,
        state: dataserver,
        sub_systems: vec![system, calypso],
    }
}

/// An app that has seen `polls`, all completed now.
pub fn app_with(polls: impl IntoIterator<Item = Poll>) -> Arc<App> {
    let app = Arc::new(App::new(policy(), 100));
    for poll in polls {
        app.tracker().observe(poll, Instant::now(), SystemTime::now());
    }
    app
}

pub struct Running {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Resolves the server's stop future.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start(app: Arc<App>, limits: Limits) -> Running {
    start_serving(app, limits, Scope::All).await
}

pub async fn start_serving(app: Arc<App>, limits: Limits, scope: Scope) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, app, limits, scope, async move {
        let _ = rx.await;
    }));
    Running { addr, stop: Some(tx), task }
}

/// A parsed answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Sends `method path` with `Connection: close` and reads the answer to the end (5 s at most).
pub async fn request(addr: SocketAddr, method: &str, path: &str) -> Answer {
    let raw = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    let text = raw_exchange(addr, raw.as_bytes()).await;
    parse(&text)
}

/// Writes `raw` and reads until the server closes (5 s at most).
pub async fn raw_exchange(addr: SocketAddr, raw: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out))
        .await
        .expect("the server answers and closes within 5s")
        .unwrap();
    String::from_utf8(out).unwrap()
}

pub fn parse(text: &str) -> Answer {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no head end in {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    Answer { status, headers, body: body.to_string() }
}
