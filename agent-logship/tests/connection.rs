//! How agent-logship reaches Elasticsearch where banks run it, with real processes: through mutual
//! TLS, the client certificate and key in a Secret that the kubelet swaps when cert-manager
//! renews them (`docs/elasticsearch-connection.md`).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use calypso_testkit::es_sim::{EsOptions, EsSim};
use calypso_testkit::eventually;
use calypso_testkit::process::{PATIENCE, Spawned};
use calypso_testkit::tls::{Seen, TestCa, front};
use nix::sys::signal::Signal;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_agent-logship");

fn agent(env: &[(&str, &str)]) -> Spawned {
    let mut cmd = Command::new(BIN);
    cmd.env_clear().env("AGENT_LOG", "info").envs(env.iter().copied()).stdout(Stdio::null());
    Spawned::start(cmd)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// A sidecar shipping `dir/*.log` (JSON lines) to `url`, quickly, with `extra`.
fn sidecar<'a>(
    dir: &'a Path,
    glob: &'a str,
    url: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("AGENT_LOGSHIP_PATHS", glob),
        ("AGENT_LOGSHIP_DATA_DIR", s(dir)),
        ("AGENT_LOGSHIP_ES_URL", url),
        ("AGENT_LOGSHIP_FORMAT", "json"),
        ("AGENT_LOGSHIP_LISTEN", "127.0.0.1:0"),
        ("AGENT_LOGSHIP_BATCH_AGE", "100ms"),
        ("AGENT_LOGSHIP_RESCAN_INTERVAL", "300ms"),
        ("AGENT_LOGSHIP_SHUTDOWN_GRACE", "1s"),
        ("AGENT_LOGSHIP_COMPONENT", "engineserver"),
        ("AGENT_LOGSHIP_NAMESPACE", "calypso-uat"),
        ("AGENT_LOGSHIP_POD_NAME", "engineserver-0"),
        ("AGENT_LOGSHIP_CONTAINER_NAME", "calypso"),
    ];
    env.extend_from_slice(extra);
    env
}

/// Appends JSON log lines `trade N booked` for `range` to `log`.
fn append(log: &Path, range: std::ops::Range<u32>) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log");
    for i in range {
        writeln!(f, r#"{{"@timestamp":"2026-12-08T10:00:00.000Z","message":"trade {i} booked"}}"#)
            .expect("write");
    }
}

/// How many times each message was stored.
fn stored(es: &EsSim) -> BTreeMap<String, u32> {
    let mut seen = BTreeMap::new();
    for doc in es.docs("logs-*") {
        let message = doc.pointer("/message").and_then(|m| m.as_str()).unwrap_or_default().to_string();
        *seen.entry(message).or_insert(0) += 1;
    }
    seen
}

/// Every record of `range` stored exactly once, and nothing else.
fn exactly_once(es: &EsSim, range: std::ops::Range<u32>) {
    let want: BTreeMap<String, u32> = range.map(|i| (format!("trade {i} booked"), 1)).collect();
    assert_eq!(stored(es), want);
}

/// Waits (with the tests' patience) until `what` holds.
async fn until(what: &str, mut holds: impl FnMut() -> bool) {
    eventually(what, PATIENCE, async || holds().then_some(())).await;
}

async fn stored_all(es: &EsSim, range: std::ops::Range<u32>) {
    let n = range.len() as u64;
    until(&format!("{n} documents stored"), || es.count() >= n).await;
}

/// A Secret's volume as the kubelet writes it: each version in a directory of its own, `..data`
/// a link to the current one, swapped in one rename, and each key a link through `..data`.
struct SecretVolume<'a> {
    dir: &'a Path,
    versions: u32,
}

impl SecretVolume<'_> {
    fn publish(&mut self, files: &[(&str, &str)]) {
        self.versions += 1;
        let version = format!("..2026_12_08_10_00_00.{:09}", self.versions);
        std::fs::create_dir(self.dir.join(&version)).expect("version dir");
        for (name, content) in files {
            std::fs::write(self.dir.join(&version).join(name), content).expect("key");
        }
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&version, &tmp).expect("link");
        std::fs::rename(&tmp, self.dir.join("..data")).expect("swap");
        for (name, _) in files {
            let link = self.dir.join(name);
            if link.symlink_metadata().is_err() {
                std::os::unix::fs::symlink(format!("..data/{name}"), link).expect("key link");
            }
        }
    }
}

fn presented(seen: &Arc<Mutex<Seen>>) -> Vec<Option<Vec<u8>>> {
    seen.lock().expect("seen").presented.clone()
}

fn refused(seen: &Arc<Mutex<Seen>>) -> u64 {
    seen.lock().expect("seen").refused
}

/// Elasticsearch behind mutual TLS (its PKI realm): without a client certificate the handshake is
/// refused and the data waits; a certificate from another CA is refused too; the right one, put
/// in place by the kubelet's `..data` swap after the start, ships everything; the pair renewed
/// mid-stream (a new key) is taken without a restart and presented from then on; a pair that does
/// not belong together is warned about and the last usable one stays. Every record exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_is_presented_renewed_without_a_restart_and_a_bad_one_leaves_the_last_in_use() {
    let es = EsSim::start(EsOptions::default()).await.expect("es-sim");
    let (servers, clients, strangers) =
        (TestCa::new("es-ca"), TestCa::new("clients-ca"), TestCa::new("other-ca"));
    let (port, seen) = front(servers.server_requiring(&clients), es.addr()).await;
    let url = format!("https://localhost:{port}");
    let dir = tempfile::tempdir().expect("tmp");
    let (data, logs, secret) = (dir.path().join("data"), dir.path().join("logs"), dir.path().join("es-tls"));
    for d in [&data, &logs, &secret] {
        std::fs::create_dir(d).expect("mkdir");
    }
    let glob = format!("{}/*.log", s(&logs));
    let log = logs.join("app.json.log");
    let mut volume = SecretVolume { dir: &secret, versions: 0 };
    volume.publish(&[("ca.crt", &servers.pem())]);
    let ca_file = secret.join("ca.crt");
    append(&log, 0..10);

    // No client certificate: refused at the handshake, nothing stored, the data waits.
    let mut plain = agent(&sidecar(&data, &glob, &url, &[("AGENT_LOGSHIP_CA_FILE", s(&ca_file))]));
    until("two refused handshakes", || refused(&seen) >= 2).await;
    plain.said("cannot deliver to Elasticsearch").await;
    assert!(plain.running(), "still up: {}", plain.stderr());
    assert_eq!(es.count(), 0);
    plain.signal(Signal::SIGTERM);
    assert_eq!(plain.exit_code().await, 0, "{}", plain.stderr());

    // With the certificate settings, before cert-manager has issued the pair: the data waits.
    let (cert_file, key_file) = (secret.join("tls.crt"), secret.join("tls.key"));
    let tls = [
        ("AGENT_LOGSHIP_CA_FILE", s(&ca_file)),
        ("AGENT_LOGSHIP_CLIENT_CERT_FILE", s(&cert_file)),
        ("AGENT_LOGSHIP_CLIENT_KEY_FILE", s(&key_file)),
    ];
    let mut shipper = agent(&sidecar(&data, &glob, &url, &tls));
    shipper.said("the client certificate file does not exist (yet)").await;
    // A certificate another CA issued: refused at the handshake.
    let stranger = strangers.client("engineserver-0");
    let before = refused(&seen);
    volume.publish(&[
        ("ca.crt", &servers.pem()),
        ("tls.crt", &stranger.cert_pem),
        ("tls.key", &stranger.key_pem),
    ]);
    until("a refused handshake with the stranger's certificate", || refused(&seen) > before).await;
    assert_eq!(es.count(), 0);
    // The pair the clients' CA issued: everything ships.
    let first = clients.client("engineserver-0");
    volume.publish(&[("ca.crt", &servers.pem()), ("tls.crt", &first.cert_pem), ("tls.key", &first.key_pem)]);
    stored_all(&es, 0..10).await;
    shipper.said("the client certificate changed: new connections use it").await;
    assert!(presented(&seen).contains(&Some(first.der.clone())));

    // Renewed mid-stream: a new key and certificate, swapped in while records are written.
    append(&log, 10..20);
    let renewed = clients.client("engineserver-0");
    volume.publish(&[
        ("ca.crt", &servers.pem()),
        ("tls.crt", &renewed.cert_pem),
        ("tls.key", &renewed.key_pem),
    ]);
    append(&log, 20..30);
    until("the renewed certificate presented", || presented(&seen).contains(&Some(renewed.der.clone())))
        .await;
    stored_all(&es, 0..30).await;

    // A pair that does not belong together (the renewed certificate, another key): said, and the
    // renewed pair stays in use.
    let other_key = clients.client("engineserver-0").key_pem;
    volume.publish(&[("ca.crt", &servers.pem()), ("tls.crt", &renewed.cert_pem), ("tls.key", &other_key)]);
    append(&log, 30..40);
    shipper.said("does not belong to the first certificate").await;
    stored_all(&es, 0..40).await;
    // The pair gone from the Secret: said once (it will not be renewed), the connections keep
    // the last usable one.
    volume.publish(&[("ca.crt", &servers.pem())]);
    append(&log, 40..45);
    shipper.said("cannot read the files the connections were made from").await;
    stored_all(&es, 0..45).await;
    assert!(shipper.running(), "never a restart: {}", shipper.stderr());
    for restarts in ["agent_logship_worker_restarts_total", "agent_logship_pipeline_restarts_total"] {
        assert_eq!(shipper.metric(restarts).await, Some(0.0), "{restarts}");
    }
    shipper.signal(Signal::SIGTERM);
    assert_eq!(shipper.exit_code().await, 0, "{}", shipper.stderr());
    let stderr = shipper.stderr();
    assert_eq!(
        stderr.matches("does not belong to the first certificate").count(),
        1,
        "warned once: {stderr}"
    );
    assert_eq!(stderr.matches("cannot read the files the connections").count(), 1, "warned once: {stderr}");
    let last = presented(&seen).into_iter().flatten().last();
    assert_eq!(last, Some(renewed.der.clone()), "the last usable pair is the one in use");
    assert!(!stderr.contains("PRIVATE KEY") && !stderr.contains(&renewed.key_pem[30..60]), "{stderr}");
    exactly_once(&es, 0..45);
}

/// A pair that is not one, or half a pair, is a setting's mistake for `--check` and `setup`
/// (exit 64, naming the setting and the file, never the key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_client_pair_is_named_by_check_and_setup() {
    let ca = TestCa::new("clients-ca");
    let (one, other) = (ca.client("a"), ca.client("b"));
    let dir = tempfile::tempdir().expect("tmp");
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, &one.cert_pem).expect("write");
    std::fs::write(&key, &other.key_pem).expect("write");
    let url = "https://localhost:9";
    let run = async |args: &[&str], env: &[(&str, &str)]| {
        let out = Command::new(BIN)
            .args(args)
            .env_clear()
            .env("AGENT_LOGSHIP_ES_URL", url)
            .env("AGENT_LOGSHIP_COMPONENT", "engineserver")
            .envs(env.iter().copied())
            .output()
            .await
            .expect("runs");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let pair = [("AGENT_LOGSHIP_CLIENT_CERT_FILE", s(&cert)), ("AGENT_LOGSHIP_CLIENT_KEY_FILE", s(&key))];
    // `--check` and `setup` both refuse (64), naming the key's setting and saying `why`.
    let both_refuse = async |why: &str| {
        for args in [&["--check"][..], &["setup"][..]] {
            let (code, stderr) = run(args, &pair).await;
            assert_eq!(code, Some(64), "{args:?}: {stderr}");
            assert!(stderr.contains("AGENT_LOGSHIP_CLIENT_KEY_FILE") && stderr.contains(why), "{stderr}");
            assert!(!stderr.contains(&other.key_pem[40..80]), "{stderr}");
        }
    };
    both_refuse("does not belong").await;
    let (code, stderr) = run(&["--check"], &pair[..1]).await;
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains("AGENT_LOGSHIP_CLIENT_KEY_FILE") && stderr.contains("needs its key file too"),
        "{stderr}"
    );
    // A key file that is not there (yet): a shipper waits for it; `--check` and `setup` say so.
    std::fs::remove_file(&key).expect("rm");
    both_refuse("No such file").await;
}

/// es-sim on `https://localhost:PORT` (a TLS front), the certificate to trust in a file, and a
/// scratch directory whose `logs/app.json.log` a sidecar ships: the set-up of the proxy tests.
struct HttpsScene {
    es: EsSim,
    url: String,
    port: u16,
    dir: tempfile::TempDir,
    glob: String,
    log: std::path::PathBuf,
}

impl HttpsScene {
    async fn new() -> HttpsScene {
        let es = EsSim::start(EsOptions::default()).await.expect("es-sim");
        let (acceptor, ca) = calypso_testkit::tls::localhost();
        let (port, _) = front(acceptor, es.addr()).await;
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir(dir.path().join("logs")).expect("mkdir");
        std::fs::write(dir.path().join("ca.crt"), ca).expect("ca");
        let glob = format!("{}/logs/*.log", s(dir.path()));
        let log = dir.path().join("logs/app.json.log");
        HttpsScene { es, url: format!("https://localhost:{port}"), port, dir, glob, log }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// A sidecar shipping to `url` (the front's or es-sim's own), trusting the front, with `extra`.
    fn start(&self, url: &str, extra: &[(&str, &str)]) -> Spawned {
        let (data, ca) = (self.path("data"), self.path("ca.crt"));
        let mut env = vec![("AGENT_LOGSHIP_CA_FILE", s(&ca))];
        env.extend_from_slice(extra);
        agent(&sidecar(&data, &self.glob, url, &env))
    }
}

/// Waits until the agent has counted a proxy failure for `reason`.
async fn counted(agent: &Spawned, reason: &str) {
    let series = format!("agent_logship_proxy_failures_total{{reason=\"{reason}\"}}");
    eventually(&series, PATIENCE, async || (agent.metric(&series).await >= Some(1.0)).then_some(())).await;
}

/// Elasticsearch on `https://` reached only through an egress proxy (tinyproxy, by `CONNECT`):
/// everything ships through it; killed mid-stream, the proxy's failure is counted as its own and
/// the data waits; started again, the rest ships; every record exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_egress_proxy_by_connect_and_across_its_restart_every_record_once() {
    let Some(mut proxy) = calypso_testkit::proxy::Tinyproxy::start(None) else { return };
    let scene = HttpsScene::new().await;
    let es = &scene.es;
    append(&scene.log, 0..10);
    let proxy_url = proxy.url();
    let mut agent = scene.start(&scene.url, &[("AGENT_LOGSHIP_ES_PROXY", proxy_url.as_str())]);
    stored_all(es, 0..10).await;
    let tunnel = format!("CONNECT localhost:{} ", scene.port);
    assert!(proxy.log().contains(&tunnel), "the proxy carried it: {}", proxy.log());

    proxy.down();
    append(&scene.log, 10..20);
    counted(&agent, "unreachable").await;
    assert_eq!(es.count(), 10, "nothing goes around the proxy");
    proxy.up();
    stored_all(es, 0..20).await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    exactly_once(es, 0..20);
}

/// The standard proxy variables are ignored unless asked for; asked for, `HTTPS_PROXY` is used
/// and `NO_PROXY` honoured. The proxy they name here is a closed port: whatever ships went direct.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_variables_are_taken_only_when_asked_and_no_proxy_goes_direct() {
    let scene = HttpsScene::new().await;
    let es = &scene.es;
    let closed =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let nowhere = format!("http://127.0.0.1:{closed}");
    let env_proxy = [("HTTPS_PROXY", nowhere.as_str()), ("https_proxy", nowhere.as_str())];
    let run = async |extra: &[(&str, &str)], range: std::ops::Range<u32>| {
        append(&scene.log, range.clone());
        let mut agent = scene.start(&scene.url, extra);
        stored_all(es, 0..range.end).await;
        agent.signal(Signal::SIGTERM);
        assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    };
    // Not asked: the variables are ignored.
    run(&env_proxy, 0..5).await;
    // Asked, with the host in NO_PROXY: direct.
    let asked = ("AGENT_LOGSHIP_ES_PROXY_FROM_ENV", "true");
    run(&[env_proxy[0], asked, ("NO_PROXY", "example.com,localhost")], 5..10).await;
    // Asked, without NO_PROXY: through the proxy, which is not there.
    append(&scene.log, 10..15);
    let mut through = scene.start(&scene.url, &[env_proxy[1], asked]);
    counted(&through, "unreachable").await;
    assert_eq!(es.count(), 10);
    through.signal(Signal::SIGTERM);
    assert_eq!(through.exit_code().await, 0, "{}", through.stderr());
    exactly_once(es, 0..10);
}

/// A proxy that asks for credentials: without them (407), or with a wrong password (tinyproxy
/// answers the `CONNECT` with 401: a refused tunnel), the data waits, counted as the proxy's,
/// until the password file is fixed; no restart. Then Elasticsearch goes away behind the proxy
/// (a forwarded `http://` request): the proxy's error page is counted as its own. Every record
/// once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_refuses_the_credentials_holds_the_data_until_the_file_is_fixed() {
    let Some(proxy) = calypso_testkit::proxy::Tinyproxy::start(Some(("calypso", "Pr0xy-Pass"))) else {
        return;
    };
    let scene = HttpsScene::new().await;
    let (es, log) = (&scene.es, &scene.log);
    let (user, password) = (scene.path("proxy-user"), scene.path("proxy-password"));
    std::fs::write(&user, "calypso\n").expect("user");
    let proxy_url = proxy.url();
    let without = [("AGENT_LOGSHIP_ES_PROXY", proxy_url.as_str())];
    let mut with = without.to_vec();
    with.extend([
        ("AGENT_LOGSHIP_ES_PROXY_USERNAME_FILE", s(&user)),
        ("AGENT_LOGSHIP_ES_PROXY_PASSWORD_FILE", s(&password)),
    ]);

    // No credentials: 407 to the tunnel.
    append(log, 0..10);
    let mut bare = scene.start(&scene.url, &without);
    counted(&bare, "auth").await;
    bare.said("the proxy wants credentials, or refused the ones given (407)").await;
    bare.signal(Signal::SIGTERM);
    assert_eq!(bare.exit_code().await, 0, "{}", bare.stderr());
    assert_eq!(es.count(), 0);

    // A wrong password (tinyproxy answers 401 to the CONNECT: the tunnel refused), then the
    // right one, no restart.
    std::fs::write(&password, "wrong\n").expect("password");
    let mut tunnelled = scene.start(&scene.url, &with);
    counted(&tunnelled, "refused").await;
    assert_eq!(es.count(), 0, "nothing past the proxy");
    std::fs::write(&password, "Pr0xy-Pass\n").expect("password");
    stored_all(es, 0..10).await;
    tunnelled.said("the proxy's credentials changed: new connections use them").await;
    tunnelled.signal(Signal::SIGTERM);
    assert_eq!(tunnelled.exit_code().await, 0, "{}", tunnelled.stderr());

    // Forwarded (`http://`), Elasticsearch away: the proxy answers with a 500 page of its own.
    append(log, 10..20);
    let mut forwarded = scene.start(&es.url(), &with);
    stored_all(es, 0..20).await;
    es.down().await;
    append(log, 20..25);
    counted(&forwarded, "status").await;
    assert_eq!(es.count(), 20);
    es.up().expect("up");
    stored_all(es, 0..25).await;
    forwarded.signal(Signal::SIGTERM);
    assert_eq!(forwarded.exit_code().await, 0, "{}", forwarded.stderr());
    for agent in [&bare, &tunnelled, &forwarded] {
        assert!(!agent.stderr().contains("Pr0xy-Pass"), "{}", agent.stderr());
    }
    exactly_once(es, 0..25);
}

/// Behind the proxy, what fails inside the tunnel (TLS with Elasticsearch: its certificate not
/// trusted) is Elasticsearch's, not the proxy's; a URL that fails through the proxy gives way to
/// the next one; and the proxy's credential files are not waited for by URLs that go direct.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_the_proxy_failures_are_placed_right_and_the_next_url_is_tried() {
    let Some(proxy) = calypso_testkit::proxy::Tinyproxy::start(None) else { return };
    let scene = HttpsScene::new().await;
    let es = &scene.es;
    let proxy_url = proxy.url();
    let through = ("AGENT_LOGSHIP_ES_PROXY", proxy_url.as_str());

    // Another CA than the one that signed the front: refused inside the tunnel.
    let stranger = scene.path("stranger-ca.crt");
    std::fs::write(&stranger, rcgen::generate_simple_self_signed(vec!["x".into()]).expect("cert").cert.pem())
        .expect("ca");
    append(&scene.log, 0..5);
    let data = scene.path("data");
    let mut untrusted =
        agent(&sidecar(&data, &scene.glob, &scene.url, &[("AGENT_LOGSHIP_CA_FILE", s(&stranger)), through]));
    untrusted.said("invalid peer certificate").await;
    assert_eq!(
        untrusted.metric("agent_logship_proxy_failures_total{reason=\"unreachable\"}").await,
        Some(0.0)
    );
    untrusted.signal(Signal::SIGTERM);
    assert_eq!(untrusted.exit_code().await, 0, "{}", untrusted.stderr());

    // A dead node first (the proxy answers its own 500 page), then the front: shipped there.
    let closed =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
    let urls = format!("http://127.0.0.1:{closed},{}", scene.url);
    let mut failover = scene.start(&urls, &[through]);
    stored_all(es, 0..5).await;
    counted(&failover, "status").await;
    failover.signal(Signal::SIGTERM);
    assert_eq!(failover.exit_code().await, 0, "{}", failover.stderr());

    // Direct by NO_PROXY, the proxy's credential files not there (an optional Secret): shipped.
    append(&scene.log, 5..10);
    let missing = scene.path("no-such-file");
    let mut direct = scene.start(
        &es.url(),
        &[
            ("AGENT_LOGSHIP_ES_PROXY_FROM_ENV", "true"),
            ("HTTP_PROXY", &format!("http://127.0.0.1:{closed}")),
            ("NO_PROXY", "127.0.0.1"),
            ("AGENT_LOGSHIP_ES_PROXY_USERNAME_FILE", s(&missing)),
            ("AGENT_LOGSHIP_ES_PROXY_PASSWORD_FILE", s(&missing)),
        ],
    );
    stored_all(es, 0..10).await;
    direct.signal(Signal::SIGTERM);
    assert_eq!(direct.exit_code().await, 0, "{}", direct.stderr());
    exactly_once(es, 0..10);
}

/// es-sim checking AWS SigV4 signatures made with one key (region eu-west-1), and a scratch
/// directory whose `logs/app.json.log` a sidecar ships: the set-up of the AWS tests.
struct AwsScene {
    es: EsSim,
    key: calypso_testkit::es_sim::sigv4::SigV4Key,
    url: String,
    dir: tempfile::TempDir,
    glob: String,
    log: std::path::PathBuf,
}

/// The role the STS double lets the token assume.
const ROLE: &str = "arn:aws:iam::123456789012:role/calypso-log-writer";

impl AwsScene {
    /// `service` is `es` or `aoss`; `opts` says the rest of es-sim (its auth is the key's).
    async fn new(access_key_id: &str, secret: &str, service: &str, opts: EsOptions) -> AwsScene {
        use calypso_testkit::es_sim::{Auth, sigv4::SigV4Key};
        let key = SigV4Key {
            access_key_id: access_key_id.into(),
            secret_access_key: secret.into(),
            region: "eu-west-1".into(),
            service: service.into(),
        };
        let es =
            EsSim::start(EsOptions { auth: Some(Auth::SigV4(key.clone())), ..opts }).await.expect("es-sim");
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir(dir.path().join("logs")).expect("mkdir");
        let glob = format!("{}/logs/*.log", s(dir.path()));
        let log = dir.path().join("logs/app.json.log");
        AwsScene { url: es.url(), es, key, dir, glob, log }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// A sidecar signing for the key's service in eu-west-1, with `extra`.
    fn start(&self, extra: &[(&str, &str)]) -> Spawned {
        let mut env =
            vec![("AGENT_LOGSHIP_AWS_SIGV4", self.key.service.as_str()), ("AWS_REGION", "eu-west-1")];
        env.extend_from_slice(extra);
        agent(&sidecar(&self.path("data"), &self.glob, &self.url, &env))
    }

    /// A sidecar with the pod's role by IRSA: `role`, the token file, `sts` to exchange it at,
    /// and `extra`.
    fn start_irsa(
        &self,
        sts: &calypso_testkit::sts_sim::StsSim,
        role: &str,
        extra: &[(&str, &str)],
    ) -> Spawned {
        let (token_file, sts_url) = (self.path("token"), sts.url());
        let mut env = vec![
            ("AWS_ROLE_ARN", role),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", s(&token_file)),
            ("AGENT_LOGSHIP_AWS_STS_URL", &sts_url),
        ];
        env.extend_from_slice(extra);
        self.start(&env)
    }

    /// An STS and Pod Identity agent double handing out this scene's key as the credentials of
    /// [`ROLE`], living `lifetime`, for the token in the file `token` (written with `first`).
    async fn sts(&self, first: &str, lifetime: std::time::Duration) -> calypso_testkit::sts_sim::StsSim {
        use calypso_testkit::sts_sim::{StsConfig, StsSim};
        std::fs::write(self.path("token"), first).expect("token");
        StsSim::start(StsConfig {
            role_arn: ROLE.into(),
            token_file: self.path("token"),
            access_key_id: self.key.access_key_id.clone(),
            secret_access_key: self.key.secret_access_key.clone(),
            lifetime,
        })
        .await
    }
}

/// Amazon OpenSearch Service's SigV4, against es-sim checking signatures with its own
/// implementation: every request signed (over the gzip body as sent), the key read from files;
/// a wrong secret is refused (403) and the data waits until the file is fixed, no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_with_sigv4_and_a_wrong_secret_waits_until_the_file_is_fixed() {
    let scene =
        AwsScene::new("AKIDCALYPSO0001", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYCALYPSO", "es", EsOptions::default())
            .await;
    let es = &scene.es;
    let (id_file, secret_file) = (scene.path("aws-key-id"), scene.path("aws-secret"));
    std::fs::write(&id_file, &scene.key.access_key_id).expect("id");
    std::fs::write(&secret_file, "not-the-secret\n").expect("secret");
    append(&scene.log, 0..10);
    let mut agent = scene.start(&[
        ("AGENT_LOGSHIP_AWS_ACCESS_KEY_ID_FILE", s(&id_file)),
        ("AGENT_LOGSHIP_AWS_SECRET_ACCESS_KEY_FILE", s(&secret_file)),
    ]);
    agent.said("AWS refused the signed request").await;
    assert_eq!(es.count(), 0);
    assert!(es.stats().refused_requests.get(&403).is_some_and(|n| *n >= 1), "refused as AWS does");
    // AWS's explanation is said, only its first line: the canonical request after it is not.
    let said = agent.stderr();
    assert!(said.contains("The request signature we calculated does not match"), "{said}");
    assert!(!said.contains("Canonical String"), "{said}");
    std::fs::write(&secret_file, format!("{}\n", scene.key.secret_access_key)).expect("secret");
    append(&scene.log, 10..20);
    // A refused credential is tried again every 30 s.
    eventually("20 documents stored", std::time::Duration::from_secs(60), async || {
        (es.count() >= 20).then_some(())
    })
    .await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    assert!(!agent.stderr().contains("wJalrXUtnFEMI"), "{}", agent.stderr());
    exactly_once(es, 0..20);
}

/// An OpenSearch Serverless time-series collection makes the document ids itself and refuses
/// ours (400 per document). `setup` installs the templates there (no retention: Serverless has
/// no ISM, so `--retention-days` is refused). The agent holds the data back (no dead letter) and
/// names the setting; restarted with `AGENT_LOGSHIP_ES_DOCUMENT_IDS=server`, every record is stored
/// once, signed for `aoss` with the keys from the AWS SDKs' variables, each with its record's id in
/// `agent_logship.id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serverless_time_series_collection_gets_server_made_ids() {
    use calypso_testkit::es_sim::Flavour;
    let time_series = EsOptions { server_ids_only: true, ..EsOptions::flavour(Flavour::OpenSearch) };
    let scene = AwsScene::new("AKIDCALYPSOAOSS1", "aoss-secret-Zt4", "aoss", time_series).await;
    let es = &scene.es;
    append(&scene.log, 0..10);
    let keys = [
        ("AWS_ACCESS_KEY_ID", scene.key.access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", scene.key.secret_access_key.as_str()),
    ];
    let setup = async |args: &[&str]| {
        let out = Command::new(BIN)
            .args(args)
            .env_clear()
            .envs([("AGENT_LOGSHIP_ES_URL", scene.url.as_str()), ("AGENT_LOGSHIP_AWS_SIGV4", "aoss")])
            .envs([("AWS_REGION", "eu-west-1"), ("AGENT_LOGSHIP_COMPONENT", "engineserver")])
            .envs(keys)
            .output()
            .await
            .expect("runs");
        let text = [out.stdout, out.stderr].concat();
        (out.status.code(), String::from_utf8_lossy(&text).into_owned())
    };
    let (code, said) = setup(&["setup", "--retention-days", "30"]).await;
    assert_eq!(code, Some(64), "{said}");
    assert!(said.contains("--retention-days") && said.contains("data lifecycle policy"), "{said}");
    let (code, said) = setup(&["setup"]).await;
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("cluster: OpenSearch Serverless"), "{said}");
    assert!(said.contains("index template logs-calypso (logs-calypso.*-*, priority 200): created"), "{said}");

    let mut ours = scene.start(&keys);
    ours.said("AGENT_LOGSHIP_ES_DOCUMENT_IDS=server").await;
    assert!(es.stats().items_with(400) >= 10, "refused as Serverless does: {:?}", es.stats());
    assert_eq!(es.count(), 0);
    ours.signal(Signal::SIGTERM);
    assert_eq!(ours.exit_code().await, 0, "{}", ours.stderr());
    assert!(!scene.path("data/dead-letter.ndjson").exists(), "held back, not dead-lettered");

    let mut theirs = scene.start(&[keys[0], keys[1], ("AGENT_LOGSHIP_ES_DOCUMENT_IDS", "server")]);
    stored_all(es, 0..10).await;
    append(&scene.log, 10..20);
    // A line with an ECS event.id of its own and a forged agent_logship.id: stored (es-sim
    // refuses a key twice, as Elasticsearch does), its own event.id kept, ours in place.
    let forged = r#"{"@timestamp":"2026-12-08T10:00:00.000Z","message":"trade 20 booked","event":{"id":"app-evt-7"},"agent_logship.id":"forged","agent_logship":{"id":"forged"}}"#;
    std::fs::OpenOptions::new()
        .append(true)
        .open(&scene.log)
        .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{forged}\n").as_bytes()))
        .expect("append");
    stored_all(es, 0..21).await;
    theirs.signal(Signal::SIGTERM);
    assert_eq!(theirs.exit_code().await, 0, "{}", theirs.stderr());
    assert!(!theirs.stderr().contains("aoss-secret"), "{}", theirs.stderr());
    exactly_once(es, 0..21);
    let docs = es.docs("logs-*");
    let ids: std::collections::BTreeSet<&str> =
        docs.iter().filter_map(|d| d.pointer("/agent_logship.id").and_then(|v| v.as_str())).collect();
    assert_eq!(ids.len(), 21, "each record its own agent_logship.id: {docs:?}");
    let own = docs.iter().find(|d| d["message"] == "trade 20 booked").expect("the forged line");
    assert_eq!(own["event"]["id"], "app-evt-7");
    assert!(own.get("agent_logship").is_none(), "{own}");
    assert!(ids.iter().all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())), "{ids:?}");
    assert!(
        docs.iter().all(|d| d["_id"].as_str() != d["agent_logship.id"].as_str()),
        "the server named them"
    );
}

/// The pod's IAM role by IRSA: the projected service-account token exchanged with STS (a double)
/// for temporary credentials that live 4 s, so they are renewed mid-stream; the token rotated
/// by the kubelet meanwhile is read at the next exchange. Every request signed with the
/// credentials of the moment, checked by es-sim; every record exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irsa_credentials_are_renewed_mid_stream_and_nothing_is_lost() {
    role_credentials_renewed_mid_stream(false).await;
}

/// The same with EKS Pod Identity: the node's agent asked with the pod's token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_identity_credentials_are_renewed_mid_stream_and_nothing_is_lost() {
    role_credentials_renewed_mid_stream(true).await;
}

async fn role_credentials_renewed_mid_stream(pod_identity: bool) {
    let scene = AwsScene::new("ASIACALYPSOROLE1", "role-secret-Kq9", "es", EsOptions::default()).await;
    let es = &scene.es;
    let sts = scene.sts("token-1", std::time::Duration::from_secs(4)).await;
    append(&scene.log, 0..10);
    let token_file = scene.path("token");
    let agent_uri = format!("{}v1/credentials", sts.url());
    let mut agent = if pod_identity {
        scene.start(&[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", agent_uri.as_str()),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", s(&token_file)),
        ])
    } else {
        scene.start_irsa(&sts, ROLE, &[])
    };
    stored_all(es, 0..10).await;
    assert_eq!(sts.exchanges(), 1);
    std::fs::write(&token_file, "token-2").expect("the kubelet rotates the token");
    // Past half of the credentials' life: renewed at the next request, with the new token.
    let mut next = 10;
    until("credentials renewed", || {
        append(&scene.log, next..next + 1);
        next += 1;
        sts.exchanges() >= 2
    })
    .await;
    stored_all(es, 0..next).await;
    agent.said("AWS credentials of the pod's role renewed").await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    assert!(!agent.stderr().contains("role-secret"), "{}", agent.stderr());
    exactly_once(es, 0..next);
}

/// STS hanging when the credentials are due for renewal (credentials living 30 s, renewed
/// halfway): the renewal is waited for a few seconds, then the credentials held, still good,
/// sign the requests; the records appended meanwhile are stored, not held up until STS answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_sts_does_not_hold_shipping_up_while_the_credentials_are_good() {
    let scene = AwsScene::new("ASIACALYPSOROLE3", "role-secret-Hg3", "es", EsOptions::default()).await;
    let es = &scene.es;
    let sts = scene.sts("token-1", std::time::Duration::from_secs(30)).await;
    append(&scene.log, 0..5);
    // A request timeout longer than the credentials live: a renewal waited for that long would
    // outlast them.
    let mut agent = scene.start_irsa(&sts, ROLE, &[("AGENT_LOGSHIP_REQUEST_TIMEOUT", "60s")]);
    stored_all(es, 0..5).await;
    sts.hang();
    // Renewal is due 15 s after the first exchange: records until STS is asked again.
    let mut next = 5;
    until("the renewal to be asked for", || {
        append(&scene.log, next..next + 1);
        next += 1;
        sts.requests() >= 2
    })
    .await;
    append(&scene.log, next..next + 3);
    next += 3;
    stored_all(es, 0..next).await;
    assert_eq!(sts.exchanges(), 1, "STS never answered again");
    agent.said("cannot renew the AWS credentials; the ones held are used until they expire").await;
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    exactly_once(es, 0..next);
}

/// The role's session revoked (the cluster now refuses the credentials, an hour before they
/// expire): the refusal makes the agent renew them at its next try instead of holding them for
/// their whole life; the new ones sign, every record once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_the_cluster_refuses_are_renewed_at_the_next_try() {
    use calypso_testkit::es_sim::{Auth, sigv4::SigV4Key};
    let scene = AwsScene::new("ASIACALYPSOROLE4", "role-secret-Rv4", "es", EsOptions::default()).await;
    let es = &scene.es;
    let sts = scene.sts("token-1", std::time::Duration::from_secs(3600)).await;
    append(&scene.log, 0..5);
    let mut agent = scene.start_irsa(&sts, ROLE, &[]);
    stored_all(es, 0..5).await;
    let renewed = SigV4Key { access_key_id: "ASIACALYPSOROLE5".into(), ..scene.key.clone() };
    es.set_auth(Some(Auth::SigV4(renewed.clone())));
    sts.issue(&renewed.access_key_id, &renewed.secret_access_key);
    append(&scene.log, 5..10);
    agent.said("AWS refused the signed request").await;
    // A refusal is tried again after 30 s, with credentials asked for anew.
    eventually("10 documents stored", std::time::Duration::from_secs(60), async || {
        (es.count() >= 10).then_some(())
    })
    .await;
    assert_eq!(sts.exchanges(), 2, "renewed once, for the refusal");
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    exactly_once(es, 0..10);
}

/// STS refusing the exchange (a role the service account may not assume): the agent says what
/// STS said (its code and message, never the token), ships nothing and keeps the data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_sts_refuses_is_said_and_the_data_waits() {
    let scene = AwsScene::new("ASIACALYPSOROLE2", "role-secret-Pw2", "es", EsOptions::default()).await;
    let sts = scene.sts("token-secret-4711", std::time::Duration::from_secs(3600)).await;
    append(&scene.log, 0..5);
    let mut agent = scene.start_irsa(&sts, "arn:aws:iam::123456789012:role/someone-else", &[]);
    agent
        .said("STS answered HTTP 403: AccessDenied: Not authorized to perform sts:AssumeRoleWithWebIdentity")
        .await;
    assert_eq!((sts.exchanges(), scene.es.count(), scene.es.stats().bulk_requests), (0, 0, 0));
    agent.signal(Signal::SIGTERM);
    assert_eq!(agent.exit_code().await, 0, "{}", agent.stderr());
    assert!(!agent.stderr().contains("token-secret"), "{}", agent.stderr());
    assert!(!scene.path("data/dead-letter.ndjson").exists());
}
