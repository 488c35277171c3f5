//! What the client's tests share: a test CA and a certificate it issued
//! for 127.0.0.1, a TLS server set-up, and a client that trusts the CA;
//! with the base-URL tests. The WebSocket and TLS tests are in `ws`, the
//! token's in `auth`, moving between several hubs in `failover`.

use std::sync::Arc;
use std::time::Duration;

use super::tls::crypto_provider;
use super::{HubClient, HubError, is_loopback_url, normalize_base_url};
use crate::credentials::HubAccess;

mod failover;
mod pack;
mod ws;

/// Tokens on requests and the WebSocket, refusals, `/v1/whoami` and
/// `--ca-cert`, against stand-in hubs.
pub(crate) mod auth;

// A test CA and a leaf certificate it issued for 127.0.0.1 and localhost
// (ECDSA P-256, valid 2000-2125), made once with openssl:
//   openssl ca -selfsign … -extensions root   (CA:TRUE, keyCertSign)
//   openssl ca … -extensions leaf   (CA:FALSE, serverAuth,
//                                    subjectAltName=IP:127.0.0.1,DNS:localhost)
// The key is the leaf's, in PKCS#8. Nothing outside these tests trusts it.
pub(crate) const TEST_CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBajCCAQ+gAwIBAgIBATAKBggqhkjOPQQDAjAbMRkwFwYDVQQDDBBzZi1hZ2Vu
dCB0ZXN0IENBMCAXDTAwMDEwMTAwMDAwMFoYDzIxMjUwMTAxMDAwMDAwWjAbMRkw
FwYDVQQDDBBzZi1hZ2VudCB0ZXN0IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcD
QgAEkIuhk3Ttuiu5jLtc7uXlT3tnaiiwF2aOkfEKYOqsTMf8a9wesZ+8Ze/84rMm
oIzeyhoXyWZ8XQsDkYSE/nTDwqNCMEAwDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8B
Af8EBAMCAQYwHQYDVR0OBBYEFAVsj94D3QzN6Fb2IjUuf96cHczVMAoGCCqGSM49
BAMCA0kAMEYCIQCHCqObdim8SPvuwLPcvlPinIV6viYuNJ3RXuKdztsKVwIhAP5e
21ntEb90vt7n2TrMkVNIPe9M5ZLnIE924DoXeYk5
-----END CERTIFICATE-----
";

const TEST_LEAF_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBszCCAVmgAwIBAgIBAjAKBggqhkjOPQQDAjAbMRkwFwYDVQQDDBBzZi1hZ2Vu
dCB0ZXN0IENBMCAXDTAwMDEwMTAwMDAwMFoYDzIxMjUwMTAxMDAwMDAwWjAUMRIw
EAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATRxuWC
tXatj0xB5et9Hbcmjf71Pc4ID7kIgnhxbuZ9k9lzV1WmHNCAGmKF93N2L1YssI8O
cSUtVbnRoMylRTbEo4GSMIGPMAwGA1UdEwEB/wQCMAAwDgYDVR0PAQH/BAQDAgeA
MBMGA1UdJQQMMAoGCCsGAQUFBwMBMBoGA1UdEQQTMBGHBH8AAAGCCWxvY2FsaG9z
dDAdBgNVHQ4EFgQUzfiCIiMdy+/yYKU8t8EZlzEBCAQwHwYDVR0jBBgwFoAUBWyP
3gPdDM3oVvYiNS5/3pwdzNUwCgYIKoZIzj0EAwIDSAAwRQIgbh+BvaPDZ784CZq0
KzhDwfNrCSJzEjETG7bdA/JiYAECIQDbS7l892+Tx726rbE3vNSIFaciPEWzgE3d
wppAcv1bvA==
-----END CERTIFICATE-----
";

const TEST_LEAF_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgTteiXPhFOHL0czgH
E90PHAq+Yp4bgJgf0NWzEbLhHUuhRANCAATRxuWCtXatj0xB5et9Hbcmjf71Pc4I
D7kIgnhxbuZ9k9lzV1WmHNCAGmKF93N2L1YssI8OcSUtVbnRoMylRTbE
-----END PRIVATE KEY-----
";

/// How long a test server waits on a silent client before giving up.
const TEST_SERVER_PATIENCE: Duration = Duration::from_secs(10);

fn test_server_tls() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = vec![CertificateDer::from_pem_slice(TEST_LEAF_PEM.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(TEST_LEAF_KEY_PEM.as_bytes()).unwrap();
    Arc::new(
        rustls::ServerConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    )
}

/// A client for `base` that also trusts the test CA, as `--ca-cert`
/// gives it.
fn client_trusting_test_ca(base: &str) -> HubClient {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let ca = CertificateDer::from_pem_slice(TEST_CA_PEM.as_bytes()).unwrap();
    let access = HubAccess {
        token: None,
        extra_roots: vec![ca],
    };
    HubClient::with_access(&[base], &access).unwrap()
}

fn base(raw: &str) -> Result<String, HubError> {
    normalize_base_url(raw).map_err(HubError::from)
}

#[test]
fn base_urls_are_http_host_and_port_only() {
    assert_eq!(
        base("http://127.0.0.1:8080").unwrap(),
        "http://127.0.0.1:8080"
    );
    assert_eq!(
        base("http://127.0.0.1:8080/").unwrap(),
        "http://127.0.0.1:8080"
    );
    assert_eq!(
        base("https://hub.example.org").unwrap(),
        "https://hub.example.org"
    );
    assert_eq!(
        base("https://Hub.Example.org/").unwrap(),
        "https://hub.example.org"
    );
    assert_eq!(base(" http://[::1]:9000/ ").unwrap(), "http://[::1]:9000");
    // A default port is dropped by the URL parser; that is the same URL.
    assert_eq!(base("http://localhost:80").unwrap(), "http://localhost");

    for bad in [
        "",
        "localhost:8080",
        "127.0.0.1:8080",
        "ftp://hub.example.org",
        "ws://hub.example.org",
        "http://",
        "http://hub.example.org/sf",
        "http://hub.example.org/v1/",
        "http://hub.example.org//",
        "http://hub.example.org/?x=1",
        "http://hub.example.org/#top",
        "http://user:pw@hub.example.org",
        "http://hub.example.org:99999",
    ] {
        match base(bad) {
            Err(HubError::Config(_)) => {}
            other => panic!("{bad:?} gave {other:?}"),
        }
    }
}

#[test]
fn loopback_hub_urls() {
    for local in [
        "http://127.0.0.1:8080",
        "http://localhost",
        "http://[::1]:80",
    ] {
        assert!(is_loopback_url(local), "{local}");
    }
    for remote in ["http://hub.lan:8080", "http://10.0.0.2", "http://[fe80::1]"] {
        assert!(!is_loopback_url(remote), "{remote}");
    }
}
