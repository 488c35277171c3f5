//! What a token is: `sft_` and 256 random bits in URL-safe base64, known to
//! the hub only by its SHA-256.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sf_protocol::v1::TOKEN_PREFIX;
use sha2::{Digest, Sha256};

/// Random bytes in a token: 256 bits, far beyond guessing, which is also
/// why a fast hash is enough to store it.
const TOKEN_BYTES: usize = 32;
/// Length of the base64 part: 32 bytes without padding.
const ENCODED_LEN: usize = 43;

/// A token's secret value. Its `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A new random token from the operating system's generator.
    pub fn generate() -> Self {
        let bytes: [u8; TOKEN_BYTES] = rand::random();
        Self(format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Accepts a string of the token format (surrounding whitespace, such as
    /// a file's trailing newline, is ignored); `None` for anything else.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let encoded = raw.strip_prefix(TOKEN_PREFIX)?;
        if encoded.len() != ENCODED_LEN
            || !encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return None;
        }
        let decoded = URL_SAFE_NO_PAD.decode(encoded).ok()?;
        (decoded.len() == TOKEN_BYTES).then(|| Self(raw.to_owned()))
    }

    /// The value, for printing once at creation and writing the token file.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{TOKEN_PREFIX}…(redacted)")
    }
}

/// SHA-256 of a token: what the database stores and the cache is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(raw: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(raw, &mut bytes).ok()?;
        Some(Self(bytes))
    }

    /// Compares without an early exit, so timing says nothing about how
    /// much of a guess matched.
    pub fn constant_time_eq(&self, other: &TokenHash) -> bool {
        let diff = self
            .0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(diff) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_have_the_format_and_differ() {
        let a = Secret::generate();
        let b = Secret::generate();
        assert_ne!(a, b);
        assert!(a.expose().starts_with("sft_"));
        assert_eq!(a.expose().len(), 4 + ENCODED_LEN);
        assert_eq!(Secret::parse(a.expose()), Some(a.clone()));
        assert_eq!(Secret::parse(&format!("{}\n", a.expose())), Some(a));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = Secret::generate();
        let body = &good.expose()[4..];
        for bad in [
            "",
            "sft_",
            body,
            &format!("sfx_{body}"),
            &format!("sft_{}", &body[1..]),
            &format!("sft_{body}A"),
            &format!("sft_{}+", &body[1..]),
            &format!("sft_{}=", &body[1..]),
            "sft_ä",
        ] {
            assert_eq!(Secret::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let token = Secret::generate();
        let shown = format!("{token:?}");
        assert!(!shown.contains(&token.expose()[4..]), "{shown}");
    }

    #[test]
    fn hashes_round_trip_and_compare() {
        let token = Secret::generate();
        let hash = token.hash();
        assert_eq!(TokenHash::from_hex(&hash.to_hex()), Some(hash));
        assert!(hash.constant_time_eq(&hash));
        assert!(!hash.constant_time_eq(&Secret::generate().hash()));
    }
}
