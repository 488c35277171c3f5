//! Names a platform's file system cannot hold, beyond the path rules every
//! [`SyncPath`] already meets.
//!
//! The hub stores any valid `SyncPath` byte for byte, so it can hold names
//! that some agent's disk cannot: `a:b.txt` or `con.txt` on Windows, or both
//! `Notes.txt` and `notes.txt` on a case-insensitive file system. An agent
//! skips such entries (it never writes, renames or deletes through them) and
//! reports them in `status` with the [`NameProblem`]'s message, which says to
//! rename the file on a device that can hold it.
//!
//! The rules take the platform as a parameter so every platform's rules are
//! unit-tested everywhere; an agent passes [`Platform::current`].
//!
//! - **Windows**: no `< > : " / \ | ? *` and no control characters
//!   (U+0000–U+001F); no trailing dot or space (Windows drops them, so the
//!   name would change); no reserved device name (`CON`, `PRN`, `AUX`,
//!   `NUL`, `COM0`–`COM9`, `LPT0`–`LPT9`, `COM¹²³`, `LPT¹²³`, `CONIN$`,
//!   `CONOUT$`), in any letter case, with or without an extension
//!   (`con.txt`, `Nul.tar.gz`) and with spaces before the extension.
//! - **macOS** and **Unix**: only `/` and NUL are impossible, and a
//!   `SyncPath` never holds them.
//! - **Collisions** ([`Collisions`]): agents normalise names to NFC, so two
//!   hub paths that are equal after NFC meet at one local name on every
//!   platform; on Windows and macOS, whose default file systems ignore case,
//!   so do paths equal after case folding ([`fold_case`]). A collision in a
//!   folder name (`A/x` and `a/y`) counts for everything below it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use unicode_normalization::UnicodeNormalization;

use crate::SyncPath;

/// The kind of file system an agent writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    /// Linux and other Unix systems: case-sensitive, only `/` and NUL forbidden.
    Unix,
    /// NTFS rules: forbidden characters, device names, case-insensitive.
    Windows,
    /// APFS and HFS+ defaults: case-insensitive, otherwise as Unix.
    MacOs,
}

impl Platform {
    /// The platform this program was built for.
    pub const fn current() -> Self {
        if cfg!(windows) {
            Platform::Windows
        } else if cfg!(target_vendor = "apple") {
            Platform::MacOs
        } else {
            Platform::Unix
        }
    }

    /// Whether names that differ only in letter case name one file there
    /// (true for the default file systems of Windows and macOS).
    pub const fn is_case_insensitive(self) -> bool {
        matches!(self, Platform::Windows | Platform::MacOs)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Platform::Unix => "this system",
            Platform::Windows => "Windows",
            Platform::MacOs => "macOS",
        })
    }
}

/// Which rule a name breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameRule {
    /// The name holds this character, which the platform forbids in names
    /// (on Windows `< > : " / \ | ? *` and U+0000 to U+001F).
    #[error("the character {0:?} is not allowed in a name there")]
    ForbiddenCharacter(char),
    /// Windows drops a trailing dot or space, so the name would change.
    #[error("a name cannot end with a dot or a space there")]
    TrailingDotOrSpace,
    /// The part before the first dot is this Windows device name (as
    /// Microsoft spells it, e.g. `NUL` for `nul.txt`), which opens the
    /// device instead of a file.
    #[error("{0} is a reserved device name there, with or without an extension")]
    ReservedDeviceName(String),
    /// The path, or a folder above it, meets another spelling at one local
    /// name (see [`Collisions`]).
    #[error(
        "the file system there cannot tell it apart from {other:?} (letter case or Unicode form)"
    )]
    Collision {
        /// One of the other spellings it meets (the path or folder as the
        /// hub has it).
        other: String,
    },
    /// A top-level `SF~1`-style name: on an NTFS volume with 8.3 names,
    /// Windows may resolve it to the agent's own `.sf` folder.
    #[error("at the top of a folder it may be the 8.3 short name of the agent's own `.sf` folder")]
    ShortNameOfReserved,
}

/// A name (a segment, or for a collision the colliding path) that cannot
/// exist on a platform. The message says what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?} cannot be stored on {platform}: {rule}; rename it on another device")]
pub struct NameProblem {
    /// The offending segment, or for a collision the path or folder that
    /// collides, as the hub spells it.
    pub name: String,
    /// The platform that cannot hold it.
    pub platform: Platform,
    /// Which rule it breaks.
    pub rule: NameRule,
}

/// Windows device names, matched before the first dot and ignoring case.
/// COM0/LPT0 and the superscript digits are in Microsoft's list too.
const WINDOWS_DEVICES: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "COM0", "COM1", "COM2", "COM3", "COM4",
    "COM5", "COM6", "COM7", "COM8", "COM9", "COM¹", "COM²", "COM³", "LPT0", "LPT1", "LPT2", "LPT3",
    "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9", "LPT¹", "LPT²", "LPT³",
];

/// Why `segment` (one file or folder name) cannot exist on `platform`, or
/// `None` when it can.
pub fn name_problem(segment: &str, platform: Platform) -> Option<NameProblem> {
    let problem = |rule| {
        Some(NameProblem {
            name: segment.to_owned(),
            platform,
            rule,
        })
    };
    let forbidden = |c: char| match platform {
        Platform::Unix | Platform::MacOs => matches!(c, '/' | '\0'),
        Platform::Windows => {
            matches!(c, '<' | '>' | ':' | '"' | '/' | '\\' | '|' | '?' | '*') || c < ' '
        }
    };
    if let Some(c) = segment.chars().find(|&c| forbidden(c)) {
        return problem(NameRule::ForbiddenCharacter(c));
    }
    if platform != Platform::Windows {
        return None;
    }
    if segment.ends_with(['.', ' ']) {
        return problem(NameRule::TrailingDotOrSpace);
    }
    // `con.txt` and `con .txt` open the console too.
    let base = segment
        .split('.')
        .next()
        .unwrap_or(segment)
        .trim_end_matches(' ');
    if let Some(device) = WINDOWS_DEVICES
        .iter()
        .find(|device| device.eq_ignore_ascii_case(base))
    {
        return problem(NameRule::ReservedDeviceName((*device).to_owned()));
    }
    None
}

/// The first segment of `path` that cannot exist on `platform`, if any.
/// Collisions need the other paths: see [`Collisions`].
pub fn path_problem(path: &SyncPath, platform: Platform) -> Option<NameProblem> {
    let first = path.as_str().split('/').next().unwrap_or_default();
    if platform == Platform::Windows && is_short_name_of_reserved(first) {
        return Some(NameProblem {
            name: first.to_owned(),
            platform,
            rule: NameRule::ShortNameOfReserved,
        });
    }
    path.as_str()
        .split('/')
        .find_map(|segment| name_problem(segment, platform))
}

/// `SF~1`, `sf~12`…: on an NTFS volume with 8.3 names, Windows may resolve
/// such a name to `.sf`, the agent's state folder.
fn is_short_name_of_reserved(segment: &str) -> bool {
    let Some(rest) = segment
        .get(..3)
        .filter(|head| head.eq_ignore_ascii_case("sf~"))
        .map(|_| &segment[3..])
    else {
        return false;
    };
    !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())
}

/// A case-insensitive key: NFC, then per character the lower case of its
/// single-character upper case (so `ſ`, `s` and `S` meet), else its lower
/// case. A simple case folding: `ß` and `ss` stay apart, as on NTFS.
pub fn fold_case(path: &str) -> String {
    let folded: String = path
        .nfc()
        .flat_map(|c| {
            let mut upper = c.to_uppercase();
            let single = match (upper.next(), upper.next()) {
                (Some(u), None) => u,
                _ => c,
            };
            single.to_lowercase()
        })
        .collect();
    folded.nfc().collect()
}

/// The local name `path` ends up at on `platform`, as far as telling paths
/// apart goes: NFC everywhere (agents normalise names), case-folded where
/// the file system ignores case.
pub fn collision_key(path: &str, platform: Platform) -> String {
    if platform.is_case_insensitive() {
        fold_case(path)
    } else {
        path.nfc().collect()
    }
}

/// Which of a set of paths cannot coexist on a platform because they (or
/// folders above them) meet at one local name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collisions {
    platform: Platform,
    /// Collision key → the different spellings found for it (two or more).
    groups: BTreeMap<String, BTreeSet<String>>,
}

impl Collisions {
    /// Looks at every path and every folder above it.
    pub fn find<'a>(paths: impl IntoIterator<Item = &'a SyncPath>, platform: Platform) -> Self {
        let mut spellings: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for path in paths {
            for name in path.ancestors().chain([path.as_str()]) {
                spellings
                    .entry(collision_key(name, platform))
                    .or_default()
                    .insert(name.to_owned());
            }
        }
        spellings.retain(|_, names| names.len() > 1);
        Collisions {
            platform,
            groups: spellings,
        }
    }

    /// True when no two of the paths meet: every one can be written.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Each set of spellings that meet at one local name.
    pub fn groups(&self) -> impl Iterator<Item = &BTreeSet<String>> {
        self.groups.values()
    }

    /// Why `path` cannot be written: it, or a folder above it, meets
    /// another spelling. Every spelling in a group is refused alike, since
    /// none of them has a better claim to the one local name.
    pub fn problem(&self, path: &SyncPath) -> Option<NameProblem> {
        let platform = self.platform;
        path.ancestors().chain([path.as_str()]).find_map(|name| {
            let group = self.groups.get(&collision_key(name, platform))?;
            let other = group.iter().find(|other| *other != name)?;
            Some(NameProblem {
                name: name.to_owned(),
                platform,
                rule: NameRule::Collision {
                    other: other.clone(),
                },
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Platform::*;
    use super::*;

    fn rule(segment: &str, platform: Platform) -> Option<NameRule> {
        name_problem(segment, platform).map(|p| p.rule)
    }

    #[test]
    fn windows_rules() {
        use NameRule::*;
        let device = |d: &str| Some(ReservedDeviceName(d.to_owned()));
        let cases = [
            ("a:b", Some(ForbiddenCharacter(':'))),
            ("what?", Some(ForbiddenCharacter('?'))),
            ("*", Some(ForbiddenCharacter('*'))),
            ("say \"hi\"", Some(ForbiddenCharacter('"'))),
            ("<x>", Some(ForbiddenCharacter('<'))),
            ("a>b", Some(ForbiddenCharacter('>'))),
            ("a|b", Some(ForbiddenCharacter('|'))),
            ("a\\b", Some(ForbiddenCharacter('\\'))),
            ("tab\there", Some(ForbiddenCharacter('\t'))),
            ("\u{1f}", Some(ForbiddenCharacter('\u{1f}'))),
            ("end.", Some(TrailingDotOrSpace)),
            ("end ", Some(TrailingDotOrSpace)),
            ("...", Some(TrailingDotOrSpace)),
            ("CON", device("CON")),
            ("con", device("CON")),
            ("con.txt", device("CON")),
            ("Con.tar.gz", device("CON")),
            ("con .txt", device("CON")),
            ("PRN", device("PRN")),
            ("aux.c", device("AUX")),
            ("nul", device("NUL")),
            ("COM1", device("COM1")),
            ("com9.log", device("COM9")),
            ("LPT1", device("LPT1")),
            ("lpt5.txt", device("LPT5")),
            ("COM¹", device("COM¹")),
            ("com².txt", device("COM²")),
            ("LPT³", device("LPT³")),
            ("conout$", device("CONOUT$")),
            ("console", None),
            ("con_txt", None),
            ("xcon.txt", None),
            ("COM10", None),
            ("LPT", None),
            ("COM⁴", None),
            (".con", None),
            ("nul-file", None),
            ("ordinary name.txt", None),
            (".hidden", None),
            ("日本語.md", None),
        ];
        for (segment, expected) in cases {
            assert_eq!(rule(segment, Windows), expected, "{segment:?}");
        }
    }

    #[test]
    fn unix_and_macos_allow_what_a_sync_path_allows() {
        for platform in [Unix, MacOs] {
            for segment in ["a:b", "con", "con.txt", "end.", "end ", "what?", "<x>|*"] {
                assert_eq!(rule(segment, platform), None, "{segment:?} on {platform}");
            }
            assert_eq!(
                rule("a/b", platform),
                Some(NameRule::ForbiddenCharacter('/'))
            );
            assert_eq!(
                rule("a\0b", platform),
                Some(NameRule::ForbiddenCharacter('\0'))
            );
        }
    }

    #[test]
    fn path_problem_names_the_first_bad_segment() {
        let path = SyncPath::parse("ok/nul.txt/a:b").unwrap();
        let problem = path_problem(&path, Windows).unwrap();
        assert_eq!(problem.name, "nul.txt");
        assert_eq!(path_problem(&path, Unix), None);
        assert_eq!(path_problem(&path, MacOs), None);
        let message = problem.to_string();
        assert!(
            message.contains("\"nul.txt\" cannot be stored on Windows"),
            "{message}"
        );
        assert!(message.contains("rename it on another device"), "{message}");
        let trailing = SyncPath::parse("dir. /x").unwrap();
        assert_eq!(
            path_problem(&trailing, Windows).map(|p| p.rule),
            Some(NameRule::TrailingDotOrSpace)
        );
    }

    #[test]
    fn fold_case_keys() {
        assert_eq!(fold_case("Notes/README.md"), "notes/readme.md");
        assert_eq!(fold_case("ſ"), fold_case("S"));
        assert_eq!(fold_case("\u{212a}"), "k", "Kelvin sign");
        assert_eq!(fold_case("ÄÖÜ"), "äöü");
        assert_eq!(fold_case("Cafe\u{301}"), fold_case("café"), "NFD meets NFC");
        assert_ne!(fold_case("straße"), fold_case("strasse"));
        assert_eq!(fold_case("ΣΑΣ"), fold_case("σας"), "final sigma");
    }

    fn paths(raw: &[&str]) -> Vec<SyncPath> {
        raw.iter().map(|p| SyncPath::parse(*p).unwrap()).collect()
    }

    #[test]
    fn case_collisions_only_where_case_is_ignored() {
        let all = paths(&["Notes.txt", "notes.txt", "other.txt"]);
        let on_windows = Collisions::find(&all, Windows);
        let group: Vec<_> = on_windows.groups().collect();
        assert_eq!(group.len(), 1);
        assert_eq!(
            group[0].iter().collect::<Vec<_>>(),
            vec!["Notes.txt", "notes.txt"]
        );
        let problem = on_windows.problem(&all[1]).unwrap();
        assert_eq!(
            problem.rule,
            NameRule::Collision {
                other: "Notes.txt".into()
            }
        );
        assert!(on_windows.problem(&all[0]).is_some());
        assert_eq!(on_windows.problem(&all[2]), None);
        assert!(!Collisions::find(&all, MacOs).is_empty());
        let on_linux = Collisions::find(&all, Unix);
        assert!(on_linux.is_empty());
        assert_eq!(on_linux.problem(&all[0]), None);
    }

    #[test]
    fn folder_collisions_reach_everything_below() {
        let all = paths(&["Docs/a.txt", "docs/b.txt", "docs/sub/c.txt", "keep/d.txt"]);
        let found = Collisions::find(&all, Windows);
        for path in &all[..3] {
            let problem = found.problem(path).unwrap();
            assert!(problem.name.eq_ignore_ascii_case("docs"), "{problem}");
        }
        assert_eq!(found.problem(&all[3]), None);
    }

    #[test]
    fn unicode_forms_collide_everywhere() {
        let all = paths(&["caf\u{e9}.txt", "cafe\u{301}.txt"]);
        for platform in [Unix, Windows, MacOs] {
            let found = Collisions::find(&all, platform);
            assert!(found.problem(&all[0]).is_some(), "{platform}");
            assert!(found.problem(&all[1]).is_some(), "{platform}");
        }
    }

    #[test]
    fn a_path_listed_twice_does_not_collide_with_itself() {
        let all = paths(&["a/b", "a/b", "a"]);
        assert!(Collisions::find(&all, Windows).is_empty());
    }

    #[test]
    fn current_platform_is_one_of_them() {
        let current = Platform::current();
        assert_eq!(current == Windows, cfg!(windows));
        assert_eq!(
            current.is_case_insensitive(),
            cfg!(any(windows, target_vendor = "apple"))
        );
    }
}
