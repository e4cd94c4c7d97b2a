//! The TLS of the connections to Elasticsearch, made from files that Kubernetes mounts and swaps:
//! a CA bundle trusted besides the system's roots, and a client certificate with its key (mutual
//! TLS: Elasticsearch's PKI realm, OpenSearch's client-certificate authentication, a pair that
//! cert-manager issues and renews into a Secret).
//!
//! The files are read before each request and what they hold is compared with what the
//! connection pool in use was made from ([`super::client`] makes a new pool when it changed).
//! Pure but for reading the files; nothing here shows what a file holds (the key is a secret).

use std::fmt;
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A client certificate (PEM: the certificate first, then any intermediates) and its private
/// key (PEM: PKCS#8, PKCS#1 or SEC1), each in a file of its own (`tls.crt`, `tls.key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// The files the TLS is made from, each optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca_file: Option<PathBuf>,
    pub client_cert: Option<ClientCert>,
}

/// What the files held when they were read. Compared, never shown.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Material {
    ca: Option<Vec<u8>>,
    /// The certificate chain and the key.
    client: Option<(Vec<u8>, Vec<u8>)>,
}

impl fmt::Debug for Material {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Material")
            .field("ca_bytes", &self.ca.as_ref().map(Vec::len))
            .field("client_cert_bytes", &self.client.as_ref().map(|(cert, _)| cert.len()))
            .finish_non_exhaustive()
    }
}

impl Material {
    /// What changed from `before`, in words for the log: "the CA file", "the client certificate".
    pub fn changes_from(&self, before: Option<&Material>) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if before.map(|b| &b.ca) != Some(&self.ca) && self.ca.is_some() {
            changed.push("the CA file");
        }
        if before.map(|b| &b.client) != Some(&self.client) && self.client.is_some() {
            changed.push("the client certificate");
        }
        changed
    }
}

/// Which file a problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Ca,
    ClientCert,
    ClientKey,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Ca => "the CA file",
            Part::ClientCert => "the client certificate file",
            Part::ClientKey => "the client key file",
        })
    }
}

/// A file that cannot be read, or that holds nothing usable. Names the file, never its content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{part} {}: {reason}", path.display())]
pub struct TlsError {
    pub part: Part,
    pub path: PathBuf,
    pub reason: String,
    /// The file does not exist (yet): a Secret mounted `optional: true` and not created.
    pub missing: bool,
}

impl TlsFiles {
    /// Whether there is any file to follow.
    pub fn any(&self) -> bool {
        self.ca_file.is_some() || self.client_cert.is_some()
    }

    /// Reads every file. The kubelet swaps all of a Secret's files at once, but a swap between
    /// reading the certificate and reading the key would pair an old certificate with a new key:
    /// the certificate is read again after the key, and everything again if it changed meanwhile.
    pub fn read(&self) -> Result<Material, TlsError> {
        let ca = self.ca_file.as_deref().map(|p| read(Part::Ca, p)).transpose()?;
        let Some(pair) = &self.client_cert else { return Ok(Material { ca, client: None }) };
        let mut tries = 0;
        loop {
            let cert = read(Part::ClientCert, &pair.cert_file)?;
            let key = read(Part::ClientKey, &pair.key_file)?;
            tries += 1;
            if read(Part::ClientCert, &pair.cert_file)? == cert || tries == 3 {
                return Ok(Material { ca, client: Some((cert, key)) });
            }
        }
    }

    /// The TLS configuration `material` makes: the system's roots and the CA file's
    /// certificates trusted, the client certificate presented when a server asks for one.
    pub fn config(&self, material: &Material) -> Result<rustls::ClientConfig, TlsError> {
        // reqwest and rustls are built without a default crypto provider so that only ring is linked.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let roots = roots(self.ca_file.as_deref().zip(material.ca.as_deref()))?;
        let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
        let (Some(pair), Some((cert, key))) = (&self.client_cert, &material.client) else {
            return Ok(builder.with_no_client_auth());
        };
        let bad = |part: Part, reason: String| {
            let path = if part == Part::ClientKey { &pair.key_file } else { &pair.cert_file };
            TlsError { part, path: path.clone(), reason, missing: false }
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
            .collect::<Result<_, _>>()
            .map_err(|e| bad(Part::ClientCert, pem_problem(&e)))?;
        if chain.is_empty() {
            return Err(bad(Part::ClientCert, "no certificate in it".into()));
        }
        // PKCS#8, PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`): the first one found.
        // Its parser's errors name no byte of it.
        let key =
            PrivateKeyDer::from_pem_slice(key).map_err(|e| bad(Part::ClientKey, key_problem(key, &e)))?;
        builder.with_client_auth_cert(chain, key).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => bad(
                Part::ClientKey,
                format!(
                    "does not belong to the first certificate in {} (the client's own certificate comes first, then its issuers)",
                    pair.cert_file.display()
                ),
            ),
            // The certificate could not be read (an X.509 v1 certificate, a malformed one).
            rustls::Error::InvalidCertificate(e) => {
                bad(Part::ClientCert, format!("not a usable X.509 v3 certificate: {e:?}"))
            }
            e => bad(Part::ClientKey, format!("not usable: {e}")),
        })
    }
}

/// A PEM parser's complaint in words. Its own message quotes the line it stumbled on, which in
/// a file holding a key is the key: never used.
fn pem_problem(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { .. } => "a PEM section without its END line (a PEM file on one line?)",
        Error::IllegalSectionStart { .. } => "a malformed PEM BEGIN line",
        Error::Base64Decode(_) => "a PEM section that is not valid base64",
        Error::NoItemsFound => "nothing in PEM form in it",
        _ => "not readable as PEM",
    }
    .to_string()
}

/// A key file's problem in words (`key`, the file's content, is looked at, never quoted).
fn key_problem(key: &[u8], e: &rustls::pki_types::pem::Error) -> String {
    let encrypted = |marker: &[u8]| key.windows(marker.len()).any(|w| w == marker);
    match e {
        _ if encrypted(b"ENCRYPTED PRIVATE KEY") || encrypted(b"Proc-Type: 4,ENCRYPTED") => {
            "an encrypted key (with a passphrase): give the key unencrypted, as cert-manager writes it".into()
        }
        rustls::pki_types::pem::Error::NoItemsFound => {
            "no private key in it (PEM: PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)".into()
        }
        e => format!("not a readable PEM private key: {}", pem_problem(e)),
    }
}

/// A file's content: a regular file of at most [`agent_core::mounted::MAX_BYTES`], read without
/// waiting on it.
fn read(part: Part, path: &Path) -> Result<Vec<u8>, TlsError> {
    agent_core::mounted::read(path, agent_core::mounted::MAX_BYTES).map_err(|e| TlsError {
        part,
        path: path.to_path_buf(),
        reason: e.to_string(),
        missing: e.kind() == std::io::ErrorKind::NotFound,
    })
}

/// The system's roots and the certificates of `ca` (the CA file's path and content).
fn roots(ca: Option<(&Path, &[u8])>) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = agent_core::http::system_roots();
    if let Some((path, pem)) = ca {
        let bad = |reason: &str| TlsError {
            part: Part::Ca,
            path: path.to_path_buf(),
            reason: reason.into(),
            missing: false,
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| bad(&pem_problem(&e)))?;
        if certs.is_empty() {
            return Err(bad("holds no certificate"));
        }
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(bad("no usable certificate in it"));
        }
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `openssl` with `args` in `dir`.
    fn openssl(openssl: &Path, dir: &Path, args: &[&str]) {
        let out =
            std::process::Command::new(openssl).args(args).current_dir(dir).output().expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn client(dir: &Path, cert: &str, key: &str) -> TlsFiles {
        TlsFiles {
            ca_file: None,
            client_cert: Some(ClientCert { cert_file: dir.join(cert), key_file: dir.join(key) }),
        }
    }

    fn configured(files: &TlsFiles) -> Result<rustls::ClientConfig, TlsError> {
        files.config(&files.read()?)
    }

    /// The three PEM forms of a private key people have (PKCS#8; PKCS#1 from `openssl rsa
    /// -traditional`; SEC1 from `openssl ec`), written by OpenSSL itself: each is taken with its
    /// certificate, and none with another's certificate.
    #[test]
    fn every_key_form_is_taken_and_a_key_of_another_certificate_is_named() {
        let Some(tool) = calypso_testkit::require_tool("openssl") else { return };
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path();
        let cert = |key: &str, out: &str| {
            openssl(
                &tool,
                d,
                &["req", "-x509", "-key", key, "-subj", "/CN=engineserver-0", "-days", "2", "-out", out],
            );
        };
        openssl(
            &tool,
            d,
            &["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ec.pk8"],
        );
        openssl(&tool, d, &["ec", "-in", "ec.pk8", "-out", "ec.sec1"]);
        cert("ec.pk8", "ec.crt");
        openssl(
            &tool,
            d,
            &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "rsa.pk8"],
        );
        openssl(&tool, d, &["rsa", "-in", "rsa.pk8", "-traditional", "-out", "rsa.pk1"]);
        cert("rsa.pk8", "rsa.crt");
        let head = |name: &str| {
            std::fs::read_to_string(d.join(name)).expect("key").lines().next().unwrap_or("").to_string()
        };
        assert_eq!(head("ec.pk8"), "-----BEGIN PRIVATE KEY-----");
        assert_eq!(head("ec.sec1"), "-----BEGIN EC PRIVATE KEY-----");
        assert_eq!(head("rsa.pk1"), "-----BEGIN RSA PRIVATE KEY-----");
        for (c, k) in
            [("ec.crt", "ec.pk8"), ("ec.crt", "ec.sec1"), ("rsa.crt", "rsa.pk8"), ("rsa.crt", "rsa.pk1")]
        {
            let config = configured(&client(d, c, k)).unwrap_or_else(|e| panic!("{c} with {k}: {e}"));
            assert!(config.client_auth_cert_resolver.has_certs(), "{c} with {k}");
        }
        openssl(
            &tool,
            d,
            &["pkey", "-in", "ec.pk8", "-aes256", "-passout", "pass:Calypso-1", "-out", "ec.enc"],
        );
        openssl(
            &tool,
            d,
            &["ec", "-in", "ec.pk8", "-aes256", "-passout", "pass:Calypso-1", "-out", "ec.sec1.enc"],
        );
        for k in ["ec.enc", "ec.sec1.enc"] {
            let e = configured(&client(d, "ec.crt", k)).expect_err("an encrypted key");
            assert!(e.to_string().contains("an encrypted key (with a passphrase)"), "{k}: {e}");
        }
        for (c, k) in [("ec.crt", "rsa.pk1"), ("rsa.crt", "ec.sec1")] {
            let e = configured(&client(d, c, k)).expect_err("a key of another certificate");
            assert_eq!((e.part, e.missing), (Part::ClientKey, false), "{e}");
            assert!(e.to_string().contains("does not belong to the first certificate in"), "{e}");
        }
    }

    /// What is wrong is said naming the file, never showing what it holds.
    #[test]
    fn a_file_without_its_certificate_or_key_is_named_and_not_shown() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path();
        let cert = rcgen::generate_simple_self_signed(vec!["x".into()]).expect("cert");
        std::fs::write(d.join("tls.crt"), cert.cert.pem()).expect("write");
        std::fs::write(d.join("tls.key"), cert.signing_key.serialize_pem()).expect("write");
        std::fs::write(d.join("secret.txt"), "hunter2-not-a-key\n").expect("write");
        assert!(configured(&client(d, "tls.crt", "tls.key")).is_ok());
        let e = configured(&client(d, "tls.crt", "secret.txt")).expect_err("no key");
        assert_eq!(e.part, Part::ClientKey);
        assert!(e.to_string().contains("no private key in it"), "{e}");
        let e = configured(&client(d, "secret.txt", "tls.key")).expect_err("no certificate");
        assert_eq!(e.part, Part::ClientCert);
        assert!(e.to_string().contains("secret.txt: no certificate in it"), "{e}");
        let e = configured(&client(d, "tls.crt", "missing.key")).expect_err("missing");
        assert!(e.missing && e.part == Part::ClientKey, "{e}");
        // A FIFO where the key should be: refused at once, not waited on.
        let fifo = d.join("fifo.key");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR)
            .expect("mkfifo");
        let e = configured(&client(d, "tls.crt", "fifo.key")).expect_err("a FIFO");
        assert!(!e.missing && e.to_string().ends_with("not a regular file"), "{e}");
        for e in
            [configured(&client(d, "tls.crt", "secret.txt")), configured(&client(d, "secret.txt", "tls.key"))]
        {
            let text = format!(
                "{:?} {}",
                e.as_ref().err(),
                e.as_ref().err().map(ToString::to_string).unwrap_or_default()
            );
            assert!(!text.contains("hunter2"), "{text}");
        }
        let material = client(d, "tls.crt", "tls.key").read().expect("read");
        assert!(!format!("{material:?}").contains("PRIVATE"), "{material:?}");
    }

    /// A key and its certificate in one file on one line (a YAML `>` scalar): the parser's
    /// complaint quotes the line, the key; what is said names the problem only.
    #[test]
    fn a_pem_file_on_one_line_is_refused_without_quoting_it() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path();
        let cert = rcgen::generate_simple_self_signed(vec!["x".into()]).expect("cert");
        let key = cert.signing_key.serialize_pem();
        let one_line = format!("{key}{}", cert.cert.pem()).replace('\n', " ");
        std::fs::write(d.join("both.pem"), &one_line).expect("write");
        for files in [
            client(d, "both.pem", "both.pem"),
            TlsFiles { ca_file: Some(d.join("both.pem")), client_cert: None },
        ] {
            let e = configured(&files).expect_err("one line");
            let body: String = key.lines().nth(1).expect("a body line").chars().take(20).collect();
            let bytes = format!("{:?}", &body.as_bytes()[..8]);
            let text = format!("{e} {e:?}");
            assert!(!text.contains(&body) && !text.contains(&bytes[1..bytes.len() - 1]), "{text}");
            assert!(text.contains("PEM"), "{text}");
        }
    }

    #[test]
    fn a_ca_file_without_a_usable_certificate_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let ca = dir.path().join("ca.crt");
        std::fs::write(&ca, "nothing here\n").expect("write");
        let files = TlsFiles { ca_file: Some(ca), client_cert: None };
        let e = configured(&files).expect_err("no certificate");
        assert_eq!(e.part, Part::Ca);
        assert!(e.to_string().contains("holds no certificate"), "{e}");
    }

    #[test]
    fn changes_name_what_changed() {
        let ca = Material { ca: Some(b"a".to_vec()), client: None };
        let both = Material { ca: Some(b"a".to_vec()), client: Some((b"c".to_vec(), b"k".to_vec())) };
        let renewed = Material { ca: Some(b"a".to_vec()), client: Some((b"c2".to_vec(), b"k2".to_vec())) };
        assert_eq!(ca.changes_from(None), ["the CA file"]);
        assert_eq!(both.changes_from(Some(&ca)), ["the client certificate"]);
        assert_eq!(renewed.changes_from(Some(&both)), ["the client certificate"]);
        assert!(renewed.changes_from(Some(&renewed)).is_empty());
    }
}
