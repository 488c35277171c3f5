//! A private CA made at run time, and a certificate it issues for the hub
//! (`localhost` and 127.0.0.1), written as PEM files for `sf-hub --tls-cert`
//! / `--tls-key` and `sf-agent --ca-cert`.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// The files of one test PKI.
pub struct TestPki {
    pub ca_pem: String,
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl TestPki {
    /// Makes a CA and a hub certificate in `dir`.
    pub fn create(dir: &Path) -> TestPki {
        std::fs::create_dir_all(dir).expect("a folder for the test PKI");
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "synced-folder test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("a self-signed CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let hub_key = KeyPair::generate().expect("a hub key");
        let hub_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("hub params");
        let hub_cert = hub_params
            .signed_by(&hub_key, &issuer)
            .expect("a hub certificate");

        let pki = TestPki {
            ca_pem: ca_cert.pem(),
            ca_file: dir.join("ca.pem"),
            cert_file: dir.join("hub.pem"),
            key_file: dir.join("hub-key.pem"),
        };
        std::fs::write(&pki.ca_file, &pki.ca_pem).expect("write ca.pem");
        std::fs::write(&pki.cert_file, hub_cert.pem()).expect("write hub.pem");
        std::fs::write(&pki.key_file, hub_key.serialize_pem()).expect("write hub-key.pem");
        pki
    }

    /// `sf-hub` arguments serving this PKI's certificate.
    pub fn hub_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert_file.display().to_string(),
            "--tls-key".into(),
            self.key_file.display().to_string(),
        ]
    }
}
