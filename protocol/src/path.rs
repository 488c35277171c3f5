//! The path rule: which strings name a file or directory in a synced folder.
//!
//! Every path that crosses the wire is a [`SyncPath`]; deserialising one checks
//! the rule, so no handler has to repeat it. Paths are compared byte for byte:
//! no Unicode normalisation and no case folding happen here (see the protocol
//! README for why and for what agents do about it). The one exception is the
//! reserved top-level name `.sf`, which is matched the way Windows and macOS
//! would match it (any case, trailing dots and spaces dropped), so no hub
//! entry can reach an agent's state folder on any platform. What a given
//! platform cannot hold beyond these rules is [`crate::platform`]'s business.

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
    /// The empty string.
    #[error("invalid path: it is empty")]
    Empty,
    /// A leading `/`: paths are relative to the synced folder's root.
    #[error("invalid path: it must be relative, without a leading '/'")]
    Absolute,
    /// `//` or a trailing `/`; the root itself is never named.
    #[error("invalid path: it has an empty segment ('//' or a trailing '/')")]
    EmptySegment,
    /// A segment that is exactly `.` or `..` (the segment is kept), which
    /// could step out of the folder. `..foo` and `...` are plain names.
    #[error("invalid path: segment {0:?} is not allowed: use plain names, not '.' or '..'")]
    DotSegment(String),
    /// A `\`, which Windows would take for a separator.
    #[error("invalid path: it contains a backslash: use '/' as the separator")]
    Backslash,
    /// A control character (Unicode category Cc: U+0000 to U+001F and U+007F
    /// to U+009F); the first one's code point is kept.
    #[error("invalid path: it contains a control character (U+{0:04X})")]
    ControlCharacter(u32),
    /// A segment longer than [`MAX_SEGMENT_BYTES`]; its length in bytes is
    /// kept.
    #[error("invalid path: a segment is {0} bytes long; at most {MAX_SEGMENT_BYTES} are allowed")]
    SegmentTooLong(usize),
    /// The whole path is longer than [`MAX_PATH_BYTES`]; its length in bytes
    /// is kept.
    #[error("invalid path: it is {0} bytes long; at most {MAX_PATH_BYTES} are allowed")]
    TooLong(usize),
    /// The first segment is [`RESERVED_TOP_LEVEL`] as Windows or macOS would
    /// see it ([`is_reserved_name`]).
    #[error(
        "invalid path: '{RESERVED_TOP_LEVEL}' at the top level, in any letter case and with or \
         without trailing dots or spaces, is reserved for the agent's own state: rename it"
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
        if raw.split('/').next().is_some_and(is_reserved_name) {
            return Err(PathError::Reserved);
        }
        Ok(Self(raw))
    }

    /// The path as sent on the wire.
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

/// Whether a top-level name is the reserved [`RESERVED_TOP_LEVEL`] as some
/// file system would see it: Windows drops trailing dots and spaces (`.sf.`,
/// `.sf `), and Windows and macOS ignore case (`.SF`), so each of these
/// would land in the agent's own state folder there.
pub fn is_reserved_name(segment: &str) -> bool {
    let trimmed = segment.trim_end_matches(['.', ' ']);
    // Simple case folding through upper then lower case also catches look-alikes
    // that fold to ASCII (U+017F LONG S folds to `s`).
    trimmed.chars().count() == RESERVED_TOP_LEVEL.len()
        && trimmed
            .chars()
            .flat_map(char::to_uppercase)
            .flat_map(char::to_lowercase)
            .eq(RESERVED_TOP_LEVEL.chars())
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
            "a/.SF",
            "a/.sf.",
            ".sfignore",
            ".sfx",
            ".SFX",
            ".s f",
            "sf",
            "..sf",
            "x.sf",
            " .sf",
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
    fn the_reserved_name_ignores_case_and_trailing_dots_and_spaces() {
        for raw in [
            ".SF",
            ".Sf",
            ".sF",
            ".sf.",
            ".sf ",
            ".sf. .",
            ".sf...",
            ".SF  /x",
            ".Sf./state.db",
            ".\u{17f}f",
            ".\u{17f}F .",
        ] {
            assert_eq!(SyncPath::parse(raw), Err(PathError::Reserved), "{raw:?}");
        }
    }

    #[test]
    fn reserved_name_check_alone() {
        let cases = [
            (".sf", true),
            (".SF. . ", true),
            (".sfx", false),
            (".s", false),
            ("", false),
            (".", false),
            ("...", false),
            (".sf\u{301}", false),
            (".ß", false),
        ];
        for (segment, reserved) in cases {
            assert_eq!(is_reserved_name(segment), reserved, "{segment:?}");
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
