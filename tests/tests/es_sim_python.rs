//! es-sim is conformant as far as the official clients can tell: `tests/python/es_sim_conformance.py`
//! drives it with PyPI's `elasticsearch` (8.x) and `opensearch-py` (2.x) — `info()`, index
//! templates with a data stream, `helpers.streaming_bulk` with `create` and our own `_id`s (201,
//! then 409 on a re-send, 400 on a mapping conflict, injected 429s and the helper's own retry of
//! them, 503s and the transport's retry of them), gzip, basic auth, `count()`, `search()`, and
//! `bulk(filter_path=...)` with the filter agent-logship sends
//! (`errors,items.*.status,items.*.error`). The clients live in the venv
//! `scripts/install-test-tools` makes; without it the test is skipped loudly, unless
//! `AGENT_TESTS_REQUIRE` names `pyclients`.

use calypso_testkit::es_sim::{Auth, EsOptions, EsSim, Flavour};
use calypso_testkit::tools::require_pyclients;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Runs `tests/python/<script> args` (two minutes at most) and returns its stdout, once it has
/// exited 0.
async fn run_script(python: &Path, script: &str, args: &[&str]) -> String {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python").join(script);
    let run = tokio::process::Command::new(python)
        .arg(&script)
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the script finishes")
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{} failed\nstdout:\n{stdout}\nstderr:\n{stderr}", script.display());
    stdout
}

async fn conformance(flavour: Flavour) {
    let Some(python) = require_pyclients() else { return };
    let opts = EsOptions {
        auth: Some(Auth::Basic { user: "elastic".into(), password: "changeme".into() }),
        ..EsOptions::flavour(flavour)
    };
    let es = EsSim::start(opts).await.expect("es-sim starts");
    let stdout = run_script(
        &python,
        "es_sim_conformance.py",
        &[&flavour.to_string(), &es.url(), "elastic", "changeme"],
    )
    .await;
    assert!(stdout.lines().any(|l| l.ends_with(" passed, 0 failed")), "{stdout}");
    // What the clients stored is what es-sim says it stored.
    let stream = "logs-conformance.app-test";
    let docs = es.docs(stream);
    assert_eq!(docs.len() as u64, es.count_in(stream));
    assert!(docs.iter().any(|d| d["_id"] == "id-0" && d["message"] == "record 0"));
    assert!(docs.iter().all(|d| d["log"].is_object()), "the mapping conflict was not stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_elasticsearch_client_finds_es_sim_conformant() {
    conformance(Flavour::Elasticsearch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_opensearch_client_finds_es_sim_conformant() {
    conformance(Flavour::OpenSearch).await;
}

/// es-sim's SigV4 check agrees with AWS's own signer (`tests/python/es_sim_sigv4.py`: botocore's
/// `SigV4Auth`, and opensearch-py's `AWSV4SignerAuth` on it): signed requests accepted, a gzip
/// `_bulk` with agent-logship's filter included; another secret, region or service, or a body
/// changed after signing, refused with 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn botocore_signatures_are_accepted_by_es_sim_and_wrong_ones_refused() {
    use calypso_testkit::es_sim::sigv4::SigV4Key;
    let Some(python) = require_pyclients() else { return };
    let key = SigV4Key {
        access_key_id: "AKIDBOTOCORE01".into(),
        secret_access_key: "botocore-secret/Kq9+x".into(),
        region: "eu-west-1".into(),
        service: "es".into(),
    };
    let opts = EsOptions { auth: Some(Auth::SigV4(key.clone())), ..EsOptions::flavour(Flavour::OpenSearch) };
    let es = EsSim::start(opts).await.expect("es-sim starts");
    let url = es.url();
    let args = [&url, &key.access_key_id, &key.secret_access_key, &key.region, &key.service];
    let stdout = run_script(&python, "es_sim_sigv4.py", &args.map(String::as_str)).await;
    assert!(stdout.lines().any(|l| l == "9 passed, 0 failed"), "{stdout}");
    let ids: Vec<String> =
        es.docs("logs-sigv4.app-test").iter().map(|d| d["_id"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(ids, ["sig-1", "sig-2"], "the signed bulks stored, the forged one not");
}
