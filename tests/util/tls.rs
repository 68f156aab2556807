//! A private certificate authority made for one test, and a server
//! certificate it issued for 127.0.0.1 and `localhost`, ready for
//! `Receiver::start_tls`.
//!
//! Serving the requests is left to `util::receiver`.

use std::path::Path;
use std::sync::Arc;

use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa};
use rustls::ServerConfig;

/// A CA of its own and the receiver certificate it signed.
pub struct TestCa {
    /// The CA's certificate, in PEM, as a `ca_file` holds it.
    pub pem: String,
    /// The receiver's side: its certificate and key.
    pub server: Arc<ServerConfig>,
}

impl TestCa {
    /// Makes a new CA and a receiver certificate for 127.0.0.1.
    pub fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new());
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "rbg-notify test CA");
        let ca = Certificate::from_params(params).expect("make the CA");

        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let leaf = Certificate::from_params(CertificateParams::new(names))
            .expect("make the receiver's certificate");
        let der = leaf
            .serialize_der_with_signer(&ca)
            .expect("the CA signs the receiver's certificate");
        let key = rustls::PrivateKey(leaf.serialize_private_key_der());
        let server = ServerConfig::builder()
            .with_safe_defaults()
            .with_no_client_auth()
            .with_single_cert(vec![rustls::Certificate(der)], key)
            .expect("rustls takes the certificate");
        TestCa {
            pem: ca.serialize_pem().expect("the CA in PEM"),
            server: Arc::new(server),
        }
    }

    /// Writes the CA's certificate to `path`.
    pub fn write(&self, path: &Path) {
        std::fs::write(path, &self.pem).expect("write the CA file");
    }
}

impl Default for TestCa {
    fn default() -> TestCa {
        TestCa::new()
    }
}
