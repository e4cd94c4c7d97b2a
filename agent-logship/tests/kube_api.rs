//! The Events source's API access as in a pod: the URL from `KUBERNETES_SERVICE_HOST` and
//! `_PORT`, TLS trusted through the CA file only, the bearer token read from a projected-volume
//! layout (`token -> ..data/token`, `..data` swapped by a rename) and read again after it
//! rotates, a 403 explained, and no token in any log line. The API server here is a real TLS
//! server (rustls, a certificate made for the test) that answers LIST with one Event and each
//! WATCH with another, and records each request's token.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use calypso_testkit::eventually;
use calypso_testkit::process::Spawned;
use nix::sys::signal::Signal;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::process::Command;

/// The tokens the server saw, in order.
type Seen = Arc<Mutex<Vec<String>>>;

fn event(uid: &str, rv: u32) -> String {
    format!(
        r#"{{"kind":"Event","apiVersion":"v1","metadata":{{"name":"engineserver-0.{uid}","namespace":"calypso","uid":"{uid}","resourceVersion":"{rv}","creationTimestamp":"2026-11-27T10:00:00Z"}},"involvedObject":{{"kind":"Pod","name":"engineserver-0","namespace":"calypso"}},"reason":"Unhealthy","message":"Readiness probe failed","type":"Warning","count":1,"lastTimestamp":"2026-11-27T10:00:00Z"}}"#
    )
}

/// An HTTPS API server for `localhost`: LIST answers one Event at resourceVersion 7; each WATCH
/// one more Event, held open a little over a second (not ended early), then ended. The token
/// `forbidden` gets a 403 Status. Returns its port and the CA (PEM) to trust.
async fn api_server(seen: Seen) -> (u16, String) {
    let (acceptor, ca) = calypso_testkit::tls::localhost();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let mut watches = 0u32;
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let Ok(mut tls) = acceptor.accept(tcp).await else { continue };
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let token = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("authorization: Bearer ")
                        .or_else(|| l.strip_prefix("Authorization: Bearer "))
                })
                .unwrap_or("")
                .to_string();
            seen.lock().unwrap_or_else(PoisonError::into_inner).push(token.clone());
            let watch = head.lines().next().is_some_and(|l| l.contains("watch=1"));
            let (status, body, hold) = if token == "forbidden" {
                let status = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"events is forbidden: User \"system:serviceaccount:calypso:default\" cannot list resource \"events\"","reason":"Forbidden","code":403}"#;
                ("403 Forbidden", status.to_string(), false)
            } else if watch {
                watches += 1;
                (
                    "200 OK",
                    format!(
                        r#"{{"type":"ADDED","object":{}}}"#,
                        event(&format!("watched-{watches}"), 7 + watches)
                    ) + "\n",
                    true,
                )
            } else {
                (
                    "200 OK",
                    format!(
                        r#"{{"kind":"EventList","apiVersion":"v1","metadata":{{"resourceVersion":"7"}},"items":[{}]}}"#,
                        event("listed", 7)
                    ),
                    false,
                )
            };
            tokio::spawn(async move {
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                if hold {
                    tokio::time::sleep(Duration::from_millis(1200)).await;
                }
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, ca)
}

/// The kubelet's projected-volume layout: `<dir>/token -> ..data/token`, `..data -> <version>`.
fn project_token(dir: &Path, version: &str, token: &str) {
    let v = dir.join(version);
    std::fs::create_dir_all(&v).expect("version dir");
    std::fs::write(v.join("token"), token).expect("token");
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(version, &tmp).expect("symlink");
    std::fs::rename(&tmp, dir.join("..data")).expect("swap ..data");
    if !dir.join("token").exists() {
        symlink("..data/token", dir.join("token")).expect("token link");
    }
}

fn docs(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn seen_tokens(seen: &Seen) -> Vec<String> {
    seen.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_cluster_tls_and_a_rotated_token_ship_events_without_a_pause_or_a_leak() {
    let seen = Seen::default();
    let (port, pem) = api_server(seen.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let account = dir.path().join("serviceaccount");
    project_token(&account, "..2026_11_27_10_00_00.1", "forbidden");
    let ca = dir.path().join("ca.crt");
    std::fs::write(&ca, pem).expect("ca");
    let out = dir.path().join("stdout.ndjson");
    let port = port.to_string();
    let (token, data) = (account.join("token"), dir.path().join("data"));
    let env = [
        ("KUBERNETES_SERVICE_HOST", "localhost"),
        ("KUBERNETES_SERVICE_PORT", port.as_str()),
        ("AGENT_LOGSHIP_EVENTS", "true"),
        ("AGENT_LOGSHIP_EVENTS_NAMESPACE", "calypso"),
        ("AGENT_LOGSHIP_KUBE_TOKEN_FILE", token.to_str().expect("utf-8")),
        ("AGENT_LOGSHIP_KUBE_CA_FILE", ca.to_str().expect("utf-8")),
        ("AGENT_LOGSHIP_EVENTS_WATCH_TIMEOUT", "2s"),
        ("AGENT_LOGSHIP_DATA_DIR", data.to_str().expect("utf-8")),
        ("AGENT_LOGSHIP_LISTEN", "127.0.0.1:0"),
        ("AGENT_LOG", "info"),
    ];
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agent-logship"));
    cmd.env_clear().envs(env).stdout(std::fs::File::create(&out).expect("stdout")).stdin(Stdio::null());
    let mut agent = Spawned::start(cmd);

    // A token without the rights: refused, and the log says what is missing.
    agent.said("403 Forbidden").await;
    assert!(agent.stderr().contains("needs get, list and watch on events"), "{}", agent.stderr());
    assert!(docs(&out).is_empty());

    // The kubelet rotates the token: the next request carries the new one, and shipping starts.
    project_token(&account, "..2026_11_27_10_05_00.2", "token-two");
    eventually("the listed and a watched Event shipped", Duration::from_secs(30), async || {
        let d = docs(&out);
        let ids: Vec<&str> = d.iter().filter_map(|d| d["_id"].as_str()).collect();
        (ids.contains(&"listed.1") && ids.iter().any(|i| i.starts_with("watched-"))).then_some(())
    })
    .await;
    // Rotated again while watching: the watches go on with the third token, no failure between.
    let failures_before = agent.stderr().matches("Kubernetes API request failed").count();
    project_token(&account, "..2026_11_27_10_10_00.3", "token-three");
    eventually("a request with the third token", Duration::from_secs(20), async || {
        seen_tokens(&seen).iter().any(|t| t == "token-three").then_some(())
    })
    .await;
    let watched_before = docs(&out).len();
    eventually("more Events shipped after the rotation", Duration::from_secs(20), async || {
        (docs(&out).len() > watched_before).then_some(())
    })
    .await;
    assert_eq!(
        agent.stderr().matches("Kubernetes API request failed").count(),
        failures_before,
        "{}",
        agent.stderr()
    );

    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    let stderr = agent.stderr();
    for token in ["token-two", "token-three"] {
        assert!(!stderr.contains(token), "a token in the log:\n{stderr}");
    }
    let first = &docs(&out)[0];
    assert_eq!(first["_index"], "logs-kubernetes.events-calypso");
    assert_eq!(first["_source"]["service"]["name"], "engineserver");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_not_trusted_by_the_ca_file_is_refused_and_said_so() {
    let (port, _) = api_server(Seen::default()).await;
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("other-ca.crt");
    std::fs::write(&ca, other.cert.pem()).expect("ca");
    let url = format!("https://localhost:{port}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_agent-logship"));
    cmd.env_clear()
        .args([
            "--events",
            "true",
            "--kube-url",
            &url,
            "--events-namespace",
            "calypso",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("AGENT_LOGSHIP_KUBE_CA_FILE", &ca)
        .env("AGENT_LOGSHIP_DATA_DIR", dir.path().join("data"))
        .stdout(Stdio::null());
    let mut agent = Spawned::start(cmd);
    agent.said("Kubernetes API request failed").await;
    let stderr = agent.stderr();
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{stderr}");
}
