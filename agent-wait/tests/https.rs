//! https and calypso+https targets against a real TLS server (rustls) with a certificate made
//! for the test: trusted through SSL_CERT_FILE, as a scratch image with a mounted CA bundle
//! would, and refused without it.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::process::Command;

const GREEN: &str = r#"{"server":"dataserver-0","type":"DataServer","state":"GREEN","subSystems":[]}"#;

/// A TLS server for `localhost` answering every request with a GREEN health report; returns
/// its port and the certificate (PEM) to trust.
async fn tls_server() -> (u16, String) {
    let (acceptor, ca) = calypso_testkit::tls::localhost();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{GREEN}",
                    GREEN.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, ca)
}

async fn agent_wait(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_agent-wait"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out).await.expect("exits").expect("runs");
    (out.status.code().expect("exit code"), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_through_ssl_cert_file() {
    let (port, pem) = tls_server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, pem).expect("write");
    let ca = ca.to_str().expect("utf-8");
    for target in [format!("calypso+https://localhost:{port}/health"), format!("https://localhost:{port}/")] {
        let (code, stderr) = agent_wait(&["--timeout", "20s", &target], &[("SSL_CERT_FILE", ca)]).await;
        assert_eq!(code, 0, "{target}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_certificate_is_not_ready_and_says_why() {
    let (port, _) = tls_server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("none.pem");
    std::fs::write(&empty, "").expect("write");
    let target = format!("calypso+https://localhost:{port}/health");
    let (code, stderr) =
        agent_wait(&["--timeout", "1s", &target], &[("SSL_CERT_FILE", empty.to_str().expect("utf-8"))]).await;
    assert_eq!(code, 124, "{stderr}");
    assert!(
        stderr.contains("(TLS: invalid peer certificate: UnknownIssuer)"),
        "names the TLS problem: {stderr}"
    );
}
