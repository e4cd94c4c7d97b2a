//! What `scripts/build-images` produces, read back from podman: every image is FROM scratch (one
//! layer), runs as 65532, carries the OCI labels (title, version, revision, created, source), and
//! holds nothing but its static binaries and their CycloneDX SBOMs under /sbom/ — and every binary
//! carries its dependency list (cargo auditable's `.dep-v0` section), which is what Trivy and
//! Grype read in an image without a package database. The all-in-one `calypso-agents` image holds
//! the four agents.
//!
//! Needs podman (skipped loudly without it; `scripts/install-test-tools` installs it) and
//! objcopy (binutils, there with gcc).

use calypso_testkit::podman::{self, text, workspace_root as root};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Each image and the binaries it must hold (as scripts/build-images declares them).
const IMAGES: [(&str, &[&str]); 7] = [
    ("agent-init", &["agent-init"]),
    ("agent-wait", &["agent-wait"]),
    ("agent-health", &["agent-health"]),
    ("agent-logship", &["agent-logship"]),
    ("calypso-agents", &["agent-init", "agent-wait", "agent-health", "agent-logship"]),
    ("calypso-sim", &["calypso-sim"]),
    ("es-sim", &["es-sim"]),
];
const SOURCE: &str = "https://git.example.test/calypso-agents.git";

/// `podman <args>`, which must succeed.
fn podman(args: &[&str]) -> Output {
    let out = podman::run(args);
    assert!(out.status.success(), "podman {args:?}:\n{}", text(&out));
    out
}

/// The image's filesystem, unpacked into `dir` (`podman create` + `podman export`).
fn unpack(image: &str, dir: &Path) {
    let id = String::from_utf8(podman(&["create", image, "/none"]).stdout).expect("an id");
    let id = id.trim();
    let tar = podman(&["export", id]).stdout;
    podman(&["rm", id]);
    let out = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut tar_x| {
            use std::io::Write;
            tar_x.stdin.take().expect("stdin").write_all(&tar)?;
            tar_x.wait_with_output()
        })
        .expect("tar runs");
    assert!(out.status.success(), "tar -x:\n{}", text(&out));
}

/// Every file under `dir`, as paths relative to it.
fn files(dir: &Path) -> BTreeSet<String> {
    fn walk(dir: &Path, base: &Path, into: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, base, into);
            } else {
                into.insert(path.strip_prefix(base).expect("under base").display().to_string());
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(dir, dir, &mut found);
    found
}

/// The dependency list cargo auditable embedded in `binary`: the zlib-compressed JSON of its
/// `.dep-v0` section.
fn dependency_list(binary: &Path) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let section = dir.path().join("dep-v0");
    let out = Command::new("objcopy")
        .arg(format!("--dump-section=.dep-v0={}", section.display()))
        .arg(binary)
        .arg(dir.path().join("copy"))
        .output()
        .expect("objcopy runs");
    assert!(
        out.status.success(),
        "{}: no .dep-v0 section (cargo auditable)?\n{}",
        binary.display(),
        text(&out)
    );
    let mut json = String::new();
    flate2::read::ZlibDecoder::new(std::fs::File::open(&section).expect("the section"))
        .read_to_string(&mut json)
        .expect("zlib-compressed JSON");
    serde_json::from_str(&json).expect("the dependency list is JSON")
}

#[test]
fn images_are_scratch_non_root_labelled_and_carry_their_dependency_lists_and_sboms() {
    if calypso_testkit::require_tool("podman").is_none() {
        return;
    }
    let build = Command::new(root().join("scripts/build-images"))
        .current_dir(root())
        .env("IMAGE_SOURCE", SOURCE)
        .output()
        .expect("scripts/build-images runs");
    assert!(build.status.success(), "scripts/build-images failed:\n{}", text(&build));
    eprintln!("{}", String::from_utf8_lossy(&build.stdout));
    let revision = Command::new("git").args(["rev-parse", "HEAD"]).current_dir(root()).output();
    let revision = revision.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default();

    for (image, binaries) in IMAGES {
        let reference = format!("localhost/{image}:dev");
        let inspect = podman(&["image", "inspect", &reference]);
        let inspect: Value = serde_json::from_slice(&inspect.stdout).expect("inspect JSON");
        let config = &inspect[0]["Config"];
        assert_eq!(config["User"], "65532:65532", "{image}: non-root");
        assert_eq!(inspect[0]["RootFS"]["Layers"].as_array().map(Vec::len), Some(1), "{image}: one layer");
        let labels = &config["Labels"];
        assert_eq!(labels["org.opencontainers.image.title"], image, "{labels}");
        assert_eq!(labels["org.opencontainers.image.source"], SOURCE, "{labels}");
        assert_eq!(labels["org.opencontainers.image.version"], env!("CARGO_PKG_VERSION"), "{labels}");
        let image_revision = labels["org.opencontainers.image.revision"].as_str().unwrap_or_default();
        if !revision.is_empty() {
            assert!(
                image_revision.starts_with(&revision),
                "{image}: revision {image_revision}, HEAD {revision}"
            );
        }
        assert!(
            labels["org.opencontainers.image.created"].as_str().is_some_and(|c| c.len() >= 20),
            "{labels}"
        );
        let entrypoint = &config["Entrypoint"];
        match binaries {
            [only] => assert_eq!(entrypoint[0].as_str(), Some(format!("/{only}").as_str()), "{image}"),
            _ => assert!(entrypoint.is_null(), "{image}: the all-in-one image names no entrypoint"),
        }

        let dir = tempfile::tempdir().expect("tempdir");
        unpack(&reference, dir.path());
        let expected: BTreeSet<String> =
            binaries.iter().flat_map(|b| [b.to_string(), format!("sbom/{b}.cdx.json")]).collect();
        assert_eq!(files(dir.path()), expected, "{image}: nothing but the binaries and their SBOMs");
        for binary in binaries {
            let deps = dependency_list(&dir.path().join(binary));
            let packages = deps["packages"].as_array().expect("packages");
            let root_package = packages.iter().find(|p| p["root"] == true).expect("a root package");
            let expected_root = if binary.ends_with("-sim") { "calypso-testkit" } else { binary };
            assert_eq!(root_package["name"], expected_root, "{image}/{binary}");
            assert!(packages.iter().any(|p| p["name"] == "tokio"), "{image}/{binary}: tokio listed");

            let sbom: Value = serde_json::from_str(
                &std::fs::read_to_string(dir.path().join(format!("sbom/{binary}.cdx.json")))
                    .expect("the SBOM"),
            )
            .expect("SBOM JSON");
            assert_eq!(sbom["bomFormat"], "CycloneDX", "{image}/{binary}");
            assert_eq!(sbom["specVersion"], "1.5", "{image}/{binary}");
            assert_eq!(
                sbom["metadata"]["component"]["name"], *binary,
                "{image}: the SBOM describes {binary}"
            );
            let components = sbom["components"].as_array().expect("components");
            assert!(
                components.iter().any(|c| c["name"] == "tokio"
                    && c["purl"].as_str().is_some_and(|p| p.starts_with("pkg:cargo/tokio@"))),
                "{image}/{binary}: tokio with its purl in the SBOM"
            );
        }
    }
}
