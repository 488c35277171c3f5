//! TLS for the API listener: a PEM certificate chain and private key,
//! served with rustls (aws-lc-rs, TLS 1.2 and 1.3).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Why `--tls-cert` and `--tls-key` cannot serve TLS.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate {path}: {detail}; give a PEM file (--tls-cert)")]
    Certificate { path: PathBuf, detail: String },
    #[error("cannot read the TLS key {path}: {detail}; give a PEM private key (--tls-key)")]
    Key { path: PathBuf, detail: String },
    #[error("the TLS certificate and key do not go together: {0}")]
    Mismatch(String),
}

/// A TLS acceptor for `cert` (the chain, leaf first) and `key`.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|err| TlsError::Certificate {
            path: cert.to_owned(),
            detail: err.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::Certificate {
            path: cert.to_owned(),
            detail: "it holds no CERTIFICATE block".into(),
        });
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|err| TlsError::Key {
        path: key.to_owned(),
        detail: err.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| TlsError::Mismatch(err.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|err| TlsError::Mismatch(err.to_string()))?;
    // HTTP/1.1 only: agents' WebSockets upgrade over it, and the listener's
    // slow-client limits are written for it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
