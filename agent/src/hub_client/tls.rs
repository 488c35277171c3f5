//! TLS to the hub: the rustls set-up the `wss://` socket shares with
//! reqwest (same provider, the platform verifier plus `--ca-cert`), and
//! turning a failed handshake into a message that says what to do.

use std::sync::Arc;

use tokio_tungstenite::tungstenite;

use super::HubError;

/// The rustls set-up for `wss://`, the same as reqwest's `rustls` feature
/// builds for HTTP: the same crypto provider and rustls-platform-verifier
/// over the system's CA certificates, so requests and the WebSocket trust
/// the same hubs. `extra_roots` (from `--ca-cert`) are trusted besides the
/// system's CAs.
pub(super) fn ws_tls_config(
    extra_roots: &[rustls::pki_types::CertificateDer<'static>],
) -> Result<Arc<rustls::ClientConfig>, HubError> {
    let provider = crypto_provider();
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
        extra_roots.iter().cloned(),
        Arc::clone(&provider),
    )
    .map_err(|err| {
        HubError::Config(format!(
            "cannot load this machine's CA certificates for TLS to the hub ({err}): \
             install them (the ca-certificates package on Debian and Ubuntu), or pass \
             the hub's CA with --ca-cert"
        ))
    })?;
    ws_tls_config_with(provider, verifier)
}

fn ws_tls_config_with(
    provider: Arc<rustls::crypto::CryptoProvider>,
    verifier: rustls_platform_verifier::Verifier,
) -> Result<Arc<rustls::ClientConfig>, HubError> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| HubError::Config(format!("cannot set up TLS for the hub: {err}")))?
        // "Dangerous" only because the verifier is not rustls' own: the
        // platform verifier checks the chain, validity and host name.
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    // The WebSocket upgrade is HTTP/1.1, even where a proxy also offers h2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The provider reqwest picks: the process default if the program installed
/// one, else aws-lc-rs. Passing it explicitly means rustls never has to
/// choose, which panics when more than one provider is compiled in.
pub(super) fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// The rustls error somewhere in `err`'s chain of causes, if any.
pub(super) fn rustls_error_in<'a>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut cause = Some(err);
    while let Some(err) = cause {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // `io::Error::source` skips the error it wraps: look at that one too.
        cause = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// The TLS failure behind `err`, raised while opening `url`, as an error
/// that says what to do; `None` when `err` is not about TLS.
pub(super) fn tls_failure(err: &tungstenite::Error, url: &str) -> Option<HubError> {
    use tungstenite::error::TlsError;

    let tls: &rustls::Error = match err {
        // tokio-tungstenite hands rustls' handshake errors over as I/O errors.
        tungstenite::Error::Io(io) => match rustls_error_in(io) {
            Some(tls) => tls,
            None if io.kind() == std::io::ErrorKind::UnexpectedEof && url.starts_with("wss://") => {
                return Some(HubError::Tls(format!(
                    "{url}: the connection was closed during the TLS handshake ({io}); \
                     check that the hub (or its proxy) serves TLS on this port, \
                     or use http:// for a hub without TLS"
                )));
            }
            None => return None,
        },
        tungstenite::Error::Tls(TlsError::Rustls(tls)) => tls,
        tungstenite::Error::Tls(other) => {
            return Some(HubError::Tls(format!("{url}: {other}")));
        }
        _ => return None,
    };
    Some(HubError::Tls(tls_message(url, tls)))
}

/// What failed in the TLS handshake with `url`, and what to do about it.
pub(super) fn tls_message(url: &str, tls: &rustls::Error) -> String {
    use rustls::CertificateError as Cert;
    let advice = match tls {
        rustls::Error::InvalidCertificate(Cert::UnknownIssuer) => {
            "the hub's certificate is not trusted by this machine: if the hub uses a \
             private or self-signed CA, pass that CA certificate with --ca-cert FILE \
             (or SF_CA_CERT), or install it in the system trust store (on Debian and \
             Ubuntu: copy it into /usr/local/share/ca-certificates/ and run \
             update-ca-certificates), then restart the agent"
        }
        rustls::Error::InvalidCertificate(
            Cert::NotValidForName | Cert::NotValidForNameContext { .. },
        ) => {
            "the hub's certificate is not issued for the host name in --hub: use the \
             name the certificate was issued for, or reissue the certificate with \
             this name"
        }
        rustls::Error::InvalidCertificate(
            Cert::Expired
            | Cert::ExpiredContext { .. }
            | Cert::NotValidYet
            | Cert::NotValidYetContext { .. },
        ) => {
            "the hub's certificate is outside its validity period: renew it on the \
             hub, or correct this machine's clock"
        }
        rustls::Error::InvalidCertificate(_) => {
            "the hub's certificate was rejected: give the hub a valid certificate"
        }
        rustls::Error::InvalidMessage(_)
        | rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. } => {
            "the other side does not speak TLS: use http:// for a hub without TLS, \
             or check the port"
        }
        rustls::Error::AlertReceived(_) => {
            "the hub (or its proxy) aborted the TLS handshake: check its TLS set-up"
        }
        rustls::Error::PeerIncompatible(_) => {
            "the hub offers no TLS version or cipher suite in common with the agent \
             (TLS 1.2 or 1.3 is needed)"
        }
        _ => "the TLS handshake failed",
    };
    format!("{url}: {tls}; {advice}")
}
