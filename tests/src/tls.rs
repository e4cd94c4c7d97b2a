//! A TLS server identity for the tests' HTTPS servers: a self-signed certificate for
//! `localhost`, made afresh for each server, so that trusting it is a choice each test makes.

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// An acceptor serving a new certificate for `localhost`, and that certificate (PEM) for the
/// client to trust.
pub fn localhost() -> (TlsAcceptor, String) {
    // rustls is built without a default crypto provider so that only ring is linked.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .expect("a server configuration for the certificate");
    (TlsAcceptor::from(Arc::new(config)), cert.cert.pem())
}
