//! SHA-256 digests as they travel: 64 lowercase hex characters.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Why a string is not a SHA-256 hex digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a sha256: expected 64 hexadecimal characters")]
pub struct HashError(pub String);

/// A SHA-256 digest, written as 64 lowercase hex characters.
///
/// Upper-case input is accepted and normalised, so two spellings of one digest
/// compare equal.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Hex([u8; 32]);

impl Sha256Hex {
    /// Reads 64 hex characters, either case. The error keeps at most 80
    /// characters of the input, so a huge bad value is not echoed whole.
    pub fn parse(raw: &str) -> Result<Self, HashError> {
        let mut bytes = [0u8; 32];
        if raw.len() != 64 || hex::decode_to_slice(raw, &mut bytes).is_err() {
            return Err(HashError(raw.chars().take(80).collect()));
        }
        Ok(Self(bytes))
    }

    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self(Sha256::digest(data).into())
    }

    /// The digest of the empty string: what a 0-byte file hashes to.
    pub fn empty() -> Self {
        Self::of(b"")
    }

    /// A digest already computed elsewhere (e.g. a `Sha256` hasher's
    /// output), taken as is.
    pub fn from_digest(digest: [u8; 32]) -> Self {
        Self(digest)
    }

    /// The 32 raw digest bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The wire form: 64 lower-case hex characters (also what `Display`
    /// writes).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl From<Sha256> for Sha256Hex {
    fn from(hasher: Sha256) -> Self {
        Self(hasher.finalize().into())
    }
}

impl TryFrom<String> for Sha256Hex {
    type Error = HashError;
    fn try_from(raw: String) -> Result<Self, HashError> {
        Self::parse(&raw)
    }
}

impl std::str::FromStr for Sha256Hex {
    type Err = HashError;
    fn from_str(raw: &str) -> Result<Self, HashError> {
        Self::parse(raw)
    }
}

impl From<Sha256Hex> for String {
    fn from(hash: Sha256Hex) -> String {
        hash.to_hex()
    }
}

impl fmt::Display for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Sha256Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Hex({})", &self.to_hex()[..12])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_normalises_case() {
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(Sha256Hex::empty().to_hex(), empty);
        assert_eq!(
            Sha256Hex::parse(&empty.to_uppercase()).unwrap(),
            Sha256Hex::empty()
        );
    }

    #[test]
    fn rejects_wrong_length_and_non_hex() {
        assert!(Sha256Hex::parse("abc").is_err());
        assert!(Sha256Hex::parse(&"g".repeat(64)).is_err());
        assert!(Sha256Hex::parse(&"a".repeat(65)).is_err());
    }
}
