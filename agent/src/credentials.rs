//! What the agent presents to and trusts in the hub: its access token (from
//! `--token-file` or `SF_TOKEN`, never a command-line value, where `ps`
//! would show it) and extra CA certificates (`--ca-cert`). Both are read
//! once at start. The token's value never reaches a log or a `Debug`
//! output: [`Token`] prints only its prefix.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use reqwest::header::HeaderValue;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use sf_protocol::v1::TOKEN_PREFIX;

/// A token file larger than this is not a token file (a wrong path).
const MAX_TOKEN_FILE: u64 = 4096;
/// A CA bundle larger than this is not a CA bundle.
const MAX_CA_FILE: u64 = 16 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot read the token file {path}: {source}; pass --token-file with a readable file")]
    TokenFileUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the token file {path} is empty; put the token from `sf-hub token create NAME` in it \
         (or use the hub's <data-dir>/agent-token)"
    )]
    TokenFileEmpty { path: PathBuf },
    #[error(
        "{0} does not hold a token: a token is one line of printable ASCII without spaces \
         (as `sf-hub token create NAME` prints it)"
    )]
    NotAToken(TokenSource),
    #[error(
        "both a token file (--token-file or SF_TOKEN_FILE) and SF_TOKEN are set; \
         give the token one way only"
    )]
    TwoTokens,
    #[error("cannot read the CA certificate file {path}: {source}; check --ca-cert")]
    CaUnreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the CA certificate file {path} is not usable: {why}; --ca-cert takes a PEM file of \
         one or more certificates (-----BEGIN CERTIFICATE-----)"
    )]
    CaInvalid { path: PathBuf, why: String },
}

/// Where the agent's token came from: what a refusal names, so the user
/// knows which token to replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    File(PathBuf),
    /// The `SF_TOKEN` environment variable.
    Env,
    /// No token was given (a hub under `--no-auth` needs none).
    Missing,
}

impl fmt::Display for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenSource::File(path) => write!(f, "the token in {}", path.display()),
            TokenSource::Env => f.write_str("the token in SF_TOKEN"),
            TokenSource::Missing => f.write_str("no token given"),
        }
    }
}

/// The hub refused the agent's token (401, or its WebSocket closed because
/// the token was revoked). Its message says which token and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", refusal_message(.token, .detail))]
pub struct TokenRefused {
    pub token: TokenSource,
    /// What the hub said: `HTTP 401: …`, or the WebSocket close reason.
    pub detail: String,
}

fn refusal_message(token: &TokenSource, detail: &str) -> String {
    match token {
        TokenSource::Missing => format!(
            "the hub requires a token and none was given ({detail}): pass --token-file FILE \
             (or set SF_TOKEN_FILE) with a token from the hub's operator (`sf-hub token create \
             NAME` on the hub; a new hub also writes one to <data-dir>/agent-token)"
        ),
        source => format!(
            "the hub refused {source} ({detail}): ask the hub's operator for a token \
             (`sf-hub token create NAME` on the hub) and pass it with --token-file, or check \
             with `sf-hub token list` that this one was not revoked"
        ),
    }
}

/// The agent's access token. `Debug` shows `sft_…(redacted)` and where it
/// came from, never the value.
#[derive(Clone)]
pub struct Token {
    value: String,
    source: TokenSource,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = if self.value.starts_with(TOKEN_PREFIX) {
            TOKEN_PREFIX
        } else {
            ""
        };
        write!(f, "Token({prefix}…(redacted), {})", self.source)
    }
}

impl Token {
    /// Reads a token from `path`: its one line, surrounding whitespace
    /// trimmed. Warns when other users may read the file.
    pub fn from_file(path: &Path) -> Result<Self, CredentialsError> {
        let unreadable = |source| CredentialsError::TokenFileUnreadable {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::File::open(path).map_err(unreadable)?;
        warn_if_shared(path, &file);
        let mut raw = Vec::new();
        file.take(MAX_TOKEN_FILE + 1)
            .read_to_end(&mut raw)
            .map_err(unreadable)?;
        let source = TokenSource::File(path.to_owned());
        if raw.len() as u64 > MAX_TOKEN_FILE {
            return Err(CredentialsError::NotAToken(source));
        }
        let Ok(text) = String::from_utf8(raw) else {
            return Err(CredentialsError::NotAToken(source));
        };
        let value = text.trim();
        if value.is_empty() {
            return Err(CredentialsError::TokenFileEmpty {
                path: path.to_owned(),
            });
        }
        Self::new(value.to_owned(), source)
    }

    /// The token given in `SF_TOKEN` (surrounding whitespace trimmed).
    pub fn from_env_value(value: &str) -> Result<Self, CredentialsError> {
        Self::new(value.trim().to_owned(), TokenSource::Env)
    }

    fn new(value: String, source: TokenSource) -> Result<Self, CredentialsError> {
        // Exactly what an HTTP header value may hold, minus spaces: a
        // pasted second word or a binary file is a mistake, not a token.
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CredentialsError::NotAToken(source));
        }
        Ok(Self { value, source })
    }

    pub fn source(&self) -> &TokenSource {
        &self.source
    }

    /// `Bearer <token>`, marked sensitive so that HTTP libraries leave it
    /// out of their debug output.
    pub fn header_value(&self) -> HeaderValue {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", self.value))
            .expect("checked to be printable ASCII in Token::new");
        value.set_sensitive(true);
        value
    }
}

/// Warns when `file` (at `path`) may be read by other users: the token in
/// it then is theirs too.
#[cfg(unix)]
fn warn_if_shared(path: &Path, file: &std::fs::File) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = file.metadata() {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o044 != 0 {
            tracing::warn!(
                file = %path.display(),
                mode = format!("{mode:o}"),
                "the token file can be read by other users; restrict it with chmod 600"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_shared(_path: &Path, _file: &std::fs::File) {}

/// What the agent presents to the hub and trusts from it.
#[derive(Debug, Clone, Default)]
pub struct HubAccess {
    /// Sent as `Authorization: Bearer …` on every request and on the
    /// WebSocket upgrade; `None` for a hub under `--no-auth`.
    pub token: Option<Token>,
    /// CA certificates trusted in addition to the system's store.
    pub extra_roots: Vec<CertificateDer<'static>>,
}

impl HubAccess {
    /// Where the token came from, for messages.
    pub fn token_source(&self) -> TokenSource {
        self.token
            .as_ref()
            .map_or(TokenSource::Missing, |t| t.source.clone())
    }
}

/// Reads the CA certificates in the PEM file at `path`, each checked to be
/// usable as a trust anchor.
pub fn load_ca_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, CredentialsError> {
    let unreadable = |source| CredentialsError::CaUnreadable {
        path: path.to_owned(),
        source,
    };
    let invalid = |why: String| CredentialsError::CaInvalid {
        path: path.to_owned(),
        why,
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut pem = Vec::new();
    file.take(MAX_CA_FILE + 1)
        .read_to_end(&mut pem)
        .map_err(unreadable)?;
    if pem.len() as u64 > MAX_CA_FILE {
        return Err(invalid(format!("larger than {MAX_CA_FILE} bytes")));
    }
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| invalid(format!("not valid PEM ({err})")))?;
    if certs.is_empty() {
        return Err(invalid("it holds no certificate".to_owned()));
    }
    for (n, cert) in certs.iter().enumerate() {
        rustls::RootCertStore::empty()
            .add(cert.clone())
            .map_err(|err| invalid(format!("certificate {} cannot be a CA: {err}", n + 1)))?;
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    #[test]
    fn a_token_file_is_read_trimmed_and_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let secret = "sft_Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdo";
        let path = write(dir.path(), "token", format!("  {secret}\n\n").as_bytes());
        let token = Token::from_file(&path).unwrap();
        assert_eq!(token.source(), &TokenSource::File(path.clone()));
        let header = token.header_value();
        assert_eq!(header.to_str().unwrap(), format!("Bearer {secret}"));
        assert!(header.is_sensitive());

        let shown = format!(
            "{token:?} {:?} {header:?}",
            HubAccess {
                token: Some(token.clone()),
                extra_roots: Vec::new()
            }
        );
        assert!(!shown.contains(&secret[4..]), "{shown}");
        assert!(shown.contains("sft_…(redacted)"), "{shown}");
        assert!(shown.contains(&path.display().to_string()), "{shown}");
    }

    #[test]
    fn bad_token_files_say_which_file_and_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = Token::from_file(&missing).unwrap_err();
        assert!(matches!(err, CredentialsError::TokenFileUnreadable { .. }));
        assert!(err.to_string().contains(&missing.display().to_string()));

        let empty = write(dir.path(), "empty", b" \n\t\n");
        let err = Token::from_file(&empty).unwrap_err();
        assert!(
            matches!(err, CredentialsError::TokenFileEmpty { .. }),
            "{err}"
        );
        assert!(err.to_string().contains(&empty.display().to_string()));

        for (name, content) in [
            ("two-words", b"sft_abc sft_def\n".as_slice()),
            ("binary", b"\xff\xfe\x00token"),
            ("control", b"sft_abc\x07def"),
        ] {
            let path = write(dir.path(), name, content);
            let err = Token::from_file(&path).unwrap_err();
            assert!(
                matches!(err, CredentialsError::NotAToken(_)),
                "{name}: {err}"
            );
            let message = err.to_string();
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(!message.contains("sft_abc"), "{message}");
        }
        let big = write(dir.path(), "big", &vec![b'a'; 5000]);
        assert!(matches!(
            Token::from_file(&big),
            Err(CredentialsError::NotAToken(_))
        ));
        // A directory is not a token file either.
        assert!(Token::from_file(dir.path()).is_err());
    }

    #[test]
    fn env_tokens_name_their_source() {
        let token = Token::from_env_value(" sft_x \n").unwrap();
        assert_eq!(token.source(), &TokenSource::Env);
        assert_eq!(token.header_value().to_str().unwrap(), "Bearer sft_x");
        assert!(matches!(
            Token::from_env_value("a b"),
            Err(CredentialsError::NotAToken(TokenSource::Env))
        ));
    }

    #[test]
    fn refusals_name_the_token_and_what_to_do() {
        let path = PathBuf::from("/etc/sf/token");
        let refused = TokenRefused {
            token: TokenSource::File(path),
            detail: "HTTP 401: unknown or revoked token".into(),
        };
        let message = refused.to_string();
        assert!(message.contains("the token in /etc/sf/token"), "{message}");
        assert!(
            message.contains("HTTP 401: unknown or revoked token"),
            "{message}"
        );
        assert!(message.contains("sf-hub token create NAME"), "{message}");
        assert!(message.contains("sf-hub token list"), "{message}");

        let env = TokenRefused {
            token: TokenSource::Env,
            detail: "x".into(),
        };
        assert!(env.to_string().contains("the token in SF_TOKEN"));

        let none = TokenRefused {
            token: TokenSource::Missing,
            detail: "HTTP 401".into(),
        };
        let message = none.to_string();
        assert!(message.contains("none was given"), "{message}");
        assert!(message.contains("--token-file"), "{message}");
    }

    // The self-signed CA of `hub_client`'s TLS tests.
    use crate::hub_client::tests::TEST_CA_PEM as CA_PEM;

    #[test]
    fn ca_files_hold_one_or_more_pem_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let one = write(dir.path(), "ca.pem", CA_PEM.as_bytes());
        assert_eq!(load_ca_certs(&one).unwrap().len(), 1);
        let two = write(
            dir.path(),
            "two.pem",
            format!("{CA_PEM}\n{CA_PEM}").as_bytes(),
        );
        assert_eq!(load_ca_certs(&two).unwrap().len(), 2);

        let missing = dir.path().join("missing.pem");
        let err = load_ca_certs(&missing).unwrap_err();
        assert!(
            matches!(err, CredentialsError::CaUnreadable { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("missing.pem"), "{err}");

        for (name, content) in [
            ("empty.pem", String::new()),
            ("text.pem", "not a certificate\n".to_owned()),
            (
                "key.pem",
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".to_owned(),
            ),
            (
                "garbage.pem",
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".to_owned(),
            ),
            ("truncated.pem", CA_PEM[..200].to_owned()),
        ] {
            let path = write(dir.path(), name, content.as_bytes());
            let err = load_ca_certs(&path).unwrap_err();
            assert!(
                matches!(err, CredentialsError::CaInvalid { .. }),
                "{name}: {err}"
            );
            assert!(err.to_string().contains(name), "{err}");
        }
    }
}
