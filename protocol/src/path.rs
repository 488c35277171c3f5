//! The path rule: which strings name a file or directory in a synced folder.
//!
//! Every path that crosses the wire is a [`SyncPath`]; deserialising one checks
//! the rule, so no handler has to repeat it. Paths are compared byte for byte:
//! no Unicode normalisation and no case folding happen here (see the protocol
//! README for why and for what agents do about it).

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest path, in bytes of UTF-8.
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest single segment (file or directory name), in bytes of UTF-8.
pub const MAX_SEGMENT_BYTES: usize = 255;
/// The top-level name an agent keeps its own state under; never synced.
pub const RESERVED_TOP_LEVEL: &str = ".sf";

/// Every [`PathError`] message starts with this, so a path failure can be
/// recognised inside a larger (e.g. JSON decoding) error message.
pub const PATH_ERROR_PREFIX: &str = "invalid path: ";

/// Why a string is not a valid [`SyncPath`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("invalid path: it is empty")]
    Empty,
    #[error("invalid path: it must be relative, without a leading '/'")]
    Absolute,
    #[error("invalid path: it has an empty segment ('//' or a trailing '/')")]
    EmptySegment,
    #[error("invalid path: segment {0:?} is not allowed: use plain names, not '.' or '..'")]
    DotSegment(String),
    #[error("invalid path: it contains a backslash: use '/' as the separator")]
    Backslash,
    #[error("invalid path: it contains a control character (U+{0:04X})")]
    ControlCharacter(u32),
    #[error("invalid path: a segment is {0} bytes long; at most {MAX_SEGMENT_BYTES} are allowed")]
    SegmentTooLong(usize),
    #[error("invalid path: it is {0} bytes long; at most {MAX_PATH_BYTES} are allowed")]
    TooLong(usize),
    #[error(
        "invalid path: '{RESERVED_TOP_LEVEL}' at the top level is reserved for the agent's own state"
    )]
    Reserved,
}

/// A relative, '/'-separated UTF-8 path inside a synced folder.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SyncPath(String);

impl SyncPath {
    /// Checks `raw` against the path rules.
    pub fn parse(raw: impl Into<String>) -> Result<Self, PathError> {
        let raw = raw.into();
        if raw.is_empty() {
            return Err(PathError::Empty);
        }
        if raw.starts_with('/') {
            return Err(PathError::Absolute);
        }
        if raw.len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong(raw.len()));
        }
        if let Some(c) = raw.chars().find(|c| c.is_control()) {
            return Err(PathError::ControlCharacter(c as u32));
        }
        if raw.contains('\\') {
            return Err(PathError::Backslash);
        }
        for segment in raw.split('/') {
            match segment {
                "" => return Err(PathError::EmptySegment),
                "." | ".." => return Err(PathError::DotSegment(segment.to_owned())),
                s if s.len() > MAX_SEGMENT_BYTES => {
                    return Err(PathError::SegmentTooLong(s.len()));
                }
                _ => {}
            }
        }
        if raw.split('/').next() == Some(RESERVED_TOP_LEVEL) {
            return Err(PathError::Reserved);
        }
        Ok(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The folder part, without a trailing '/', or `None` at the top level.
    pub fn parent(&self) -> Option<&str> {
        self.0.rsplit_once('/').map(|(parent, _)| parent)
    }

    /// Every proper ancestor folder, outermost first: `a/b/c` gives `a`, `a/b`.
    pub fn ancestors(&self) -> impl Iterator<Item = &str> {
        self.0
            .match_indices('/')
            .map(move |(index, _)| &self.0[..index])
    }

    /// The same folder with another last segment; `name` must be a valid segment.
    pub fn with_file_name(&self, name: &str) -> Result<Self, PathError> {
        match self.parent() {
            Some(parent) => Self::parse(format!("{parent}/{name}")),
            None => Self::parse(name),
        }
    }
}

impl TryFrom<String> for SyncPath {
    type Error = PathError;
    fn try_from(raw: String) -> Result<Self, PathError> {
        Self::parse(raw)
    }
}

impl std::str::FromStr for SyncPath {
    type Err = PathError;
    fn from_str(raw: &str) -> Result<Self, PathError> {
        Self::parse(raw)
    }
}

impl From<SyncPath> for String {
    fn from(path: SyncPath) -> String {
        path.0
    }
}

impl AsRef<str> for SyncPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SyncPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SyncPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_paths() {
        for ok in [
            "a",
            "notes/todo.txt",
            "日本語/ファイル.md",
            ".hidden",
            "a/.sf",
            ".sfignore",
            "..foo",
            "x/...",
            "with space/and-dash_",
        ] {
            assert!(SyncPath::parse(ok).is_ok(), "{ok:?} should be valid");
        }
    }

    #[test]
    fn rejects_each_rule() {
        let long_segment = "x".repeat(256);
        let long_path = vec!["y".repeat(200); 21].join("/");
        let cases: Vec<(&str, PathError)> = vec![
            ("", PathError::Empty),
            ("/etc/passwd", PathError::Absolute),
            ("a//b", PathError::EmptySegment),
            ("a/", PathError::EmptySegment),
            ("../up", PathError::DotSegment("..".into())),
            ("a/./b", PathError::DotSegment(".".into())),
            ("a\\b", PathError::Backslash),
            ("a\0b", PathError::ControlCharacter(0)),
            ("a\nb", PathError::ControlCharacter(10)),
            ("a\u{7f}", PathError::ControlCharacter(0x7f)),
            (&long_segment, PathError::SegmentTooLong(256)),
            (&long_path, PathError::TooLong(long_path.len())),
            (".sf", PathError::Reserved),
            (".sf/state.db", PathError::Reserved),
        ];
        for (raw, expected) in cases {
            assert_eq!(SyncPath::parse(raw), Err(expected), "{raw:?}");
        }
    }

    #[test]
    fn segment_of_exactly_255_bytes_is_allowed() {
        assert!(SyncPath::parse("é".repeat(127) + "x").is_ok());
    }

    #[test]
    fn deserialising_checks_the_rule() {
        let err = serde_json::from_str::<SyncPath>("\"../x\"").unwrap_err();
        assert!(err.to_string().contains("'..'"), "{err}");
        let ok: SyncPath = serde_json::from_str("\"a/b\"").unwrap();
        assert_eq!(ok.as_str(), "a/b");
    }

    #[test]
    fn parts() {
        let p = SyncPath::parse("a/b/c.txt").unwrap();
        assert_eq!(p.file_name(), "c.txt");
        assert_eq!(p.parent(), Some("a/b"));
        assert_eq!(p.ancestors().collect::<Vec<_>>(), vec!["a", "a/b"]);
        assert_eq!(p.with_file_name("d").unwrap().as_str(), "a/b/d");
        let top = SyncPath::parse("top").unwrap();
        assert_eq!(top.parent(), None);
        assert_eq!(top.ancestors().count(), 0);
    }
}
