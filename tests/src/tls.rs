//! TLS for the tests' HTTPS servers: a self-signed certificate for `localhost`, made afresh for
//! each server, so that trusting it is a choice each test makes; and certificate authorities that
//! issue server and client certificates, for mutual TLS (a server that asks every client for a
//! certificate its CA issued, as Elasticsearch's PKI realm does), with a front that records which
//! client certificate each connection presented.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

/// An acceptor serving a new certificate for `localhost`, and that certificate (PEM) for the
/// client to trust.
pub fn localhost() -> (TlsAcceptor, String) {
    ring_provider();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .expect("a server configuration for the certificate");
    (TlsAcceptor::from(Arc::new(config)), cert.cert.pem())
}

/// rustls is built without a default crypto provider so that only ring is linked.
fn ring_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A certificate authority: it issues certificates as an organisation's issuer (cert-manager's)
/// does.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate a [`TestCa`] issued and its key, both PEM (the key PKCS#8).
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    /// The certificate's DER, as a server sees it presented.
    pub der: Vec<u8>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("a key");
        TestCa { issuer: CertifiedIssuer::self_signed(params, key).expect("a CA certificate") }
    }

    /// The CA's certificate, PEM: what a client or server trusts.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A client certificate for `name` with a new key.
    pub fn client(&self, name: &str) -> Issued {
        self.client_for(name, &KeyPair::generate().expect("a key"))
    }

    /// A client certificate for `name` with `key` (any key rcgen signs with: load one with
    /// [`KeyPair::from_pem`]).
    pub fn client_for(&self, name: &str, key: &KeyPair) -> Issued {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("parameters");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(&params, key)
    }

    /// An acceptor serving a certificate for `localhost` this CA issued, which asks every client
    /// for a certificate `clients` issued and refuses the handshake without one.
    pub fn server_requiring(&self, clients: &TestCa) -> TlsAcceptor {
        ring_provider();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("parameters");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("a key");
        let server = self.issue(&params, &key);
        let mut roots = RootCertStore::empty();
        roots.add(clients.issuer.der().clone()).expect("the clients' CA");
        let verifier = WebPkiClientVerifier::builder(Arc::new(roots)).build().expect("a client verifier");
        let config = ServerConfig::builder()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![CertificateDer::from(server.der)],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .expect("a server configuration");
        TlsAcceptor::from(Arc::new(config))
    }

    fn issue(&self, params: &CertificateParams, key: &KeyPair) -> Issued {
        let cert = params.signed_by(key, &self.issuer).expect("a certificate");
        Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().to_vec() }
    }
}

/// What a [`front`] saw: the first certificate each accepted connection presented (`None`: none),
/// and how many handshakes it refused.
#[derive(Debug, Default)]
pub struct Seen {
    pub presented: Vec<Option<Vec<u8>>>,
    pub refused: u64,
}

/// A TLS front on `127.0.0.1` for a plain-HTTP server at `target` (es-sim): every connection it
/// accepts is forwarded there. Returns its port and what it sees.
pub async fn front(acceptor: TlsAcceptor, target: SocketAddr) -> (u16, Arc<Mutex<Seen>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, seen) = (acceptor.clone(), record.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    seen.lock().expect("seen").refused += 1;
                    return;
                };
                let presented =
                    tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec());
                seen.lock().expect("seen").presented.push(presented);
                let Ok(mut plain) = tokio::net::TcpStream::connect(target).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (port, seen)
}
