//! Conflict-copy names: the one function the hub and every agent use, so a
//! conflict looks the same whoever detected it.
//!
//! `notes/todo.txt`, origin `laptop`, 2026-11-24 10:15:00 UTC becomes
//! `notes/todo (conflict laptop 2026-11-24 101500).txt`; when that name is
//! taken, `notes/todo (conflict laptop 2026-11-24 101500 2).txt`, then ` 3`…

use time::OffsetDateTime;
use time::macros::format_description;

use crate::path::MAX_SEGMENT_BYTES;
use crate::{PathError, SyncPath};

/// The longest origin name kept in a conflict name, in bytes.
const MAX_ORIGIN_BYTES: usize = 64;

/// Builds the conflict-copy path for `path`, written by `origin` at `at`.
///
/// `is_taken` says whether a candidate already names something; the first
/// free candidate is returned. The result is always a valid [`SyncPath`] in
/// the same folder: a long stem is shortened to keep the name within limits.
pub fn conflict_copy_path(
    path: &SyncPath,
    origin: &str,
    at: OffsetDateTime,
    mut is_taken: impl FnMut(&SyncPath) -> bool,
) -> Result<SyncPath, PathError> {
    let (stem, ext) = split_extension(path.file_name());
    let origin = sanitise_origin(origin);
    let stamp = at
        .to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year]-[month]-[day] [hour][minute][second]"
        ))
        .expect("a UTC date always formats");
    for n in 1u64.. {
        let counter = if n == 1 {
            String::new()
        } else {
            format!(" {n}")
        };
        let suffix = format!(" (conflict {origin} {stamp}{counter}){ext}");
        let room = MAX_SEGMENT_BYTES.saturating_sub(suffix.len());
        let name = format!("{}{suffix}", truncate_at_char(stem, room));
        let candidate = path.with_file_name(&name)?;
        if !is_taken(&candidate) {
            return Ok(candidate);
        }
    }
    unreachable!("u64 counter exhausted")
}

/// The start every conflict copy of `path` shares (`notes/todo (conflict `),
/// for finding existing copies by prefix.
pub fn conflict_copy_prefix(path: &SyncPath) -> String {
    let (stem, _) = split_extension(path.file_name());
    match path.parent() {
        Some(parent) => format!("{parent}/{stem} (conflict "),
        None => format!("{stem} (conflict "),
    }
}

/// Whether `candidate` is named as a conflict copy of `original`: same
/// folder, `<stem> (conflict <origin> <YYYY-MM-DD HHMMSS>[ N])<ext>`.
pub fn is_conflict_copy_of(candidate: &SyncPath, original: &SyncPath) -> bool {
    if candidate.parent() != original.parent() {
        return false;
    }
    let (stem, ext) = split_extension(original.file_name());
    let name = candidate.file_name();
    let Some(rest) = name.strip_prefix(stem) else {
        return false;
    };
    let Some(inner) = rest
        .strip_prefix(" (conflict ")
        .and_then(|r| r.strip_suffix(ext))
        .and_then(|r| r.strip_suffix(')'))
    else {
        return false;
    };
    let parts: Vec<&str> = inner.split(' ').collect();
    let all_digits = |s: &str, len: Option<usize>| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && len.is_none_or(|l| s.len() == l)
    };
    let is_date = |s: &str| {
        let bytes = s.as_bytes();
        bytes.len() == 10
            && bytes[4] == b'-'
            && bytes[7] == b'-'
            && [&s[..4], &s[5..7], &s[8..]]
                .iter()
                .all(|p| all_digits(p, None))
    };
    let stamp_ends_at =
        |end: usize| end >= 3 && is_date(parts[end - 2]) && all_digits(parts[end - 1], Some(6));
    let n = parts.len();
    stamp_ends_at(n) || (n >= 4 && all_digits(parts[n - 1], None) && stamp_ends_at(n - 1))
}

/// Splits a file name at its last extension: `a.tar.gz` → (`a.tar`, `.gz`).
/// Names without one (`Makefile`, `.bashrc`, `trailing.`) keep it all as stem.
fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(dot) if dot > 0 && dot + 1 < name.len() => name.split_at(dot),
        _ => (name, ""),
    }
}

/// Origins are chosen by users (host names, `--name`): keep them printable,
/// single-segment and short.
fn sanitise_origin(origin: &str) -> String {
    let cleaned: String = origin
        .trim()
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '/' | '\\' | '(' | ')') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned = truncate_at_char(&cleaned, MAX_ORIGIN_BYTES).to_owned();
    if cleaned.is_empty() {
        "unknown".to_owned()
    } else {
        cleaned
    }
}

fn truncate_at_char(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn name(path: &str, origin: &str, taken: &[&str]) -> String {
        conflict_copy_path(
            &SyncPath::parse(path).unwrap(),
            origin,
            datetime!(2026-11-24 10:15:00 UTC),
            |candidate| taken.contains(&candidate.as_str()),
        )
        .unwrap()
        .to_string()
    }

    #[test]
    fn follows_the_documented_pattern() {
        assert_eq!(
            name("notes/todo.txt", "laptop", &[]),
            "notes/todo (conflict laptop 2026-11-24 101500).txt"
        );
        assert_eq!(
            name("README", "legacy", &[]),
            "README (conflict legacy 2026-11-24 101500)"
        );
        assert_eq!(
            name("a.tar.gz", "x", &[]),
            "a.tar (conflict x 2026-11-24 101500).gz"
        );
        assert_eq!(
            name(".bashrc", "x", &[]),
            ".bashrc (conflict x 2026-11-24 101500)"
        );
    }

    #[test]
    fn copies_share_the_prefix() {
        let path = SyncPath::parse("notes/todo.txt").unwrap();
        let copy = name("notes/todo.txt", "laptop", &[]);
        assert!(copy.starts_with(&conflict_copy_prefix(&path)));
        assert_eq!(conflict_copy_prefix(&path), "notes/todo (conflict ");
    }

    #[test]
    fn recognises_its_own_copies_only() {
        let original = SyncPath::parse("notes/todo.txt").unwrap();
        let yes = |raw: &str| is_conflict_copy_of(&SyncPath::parse(raw).unwrap(), &original);
        assert!(yes(&name("notes/todo.txt", "laptop", &[])));
        assert!(yes("notes/todo (conflict my pc 2026-11-24 101500 12).txt"));
        assert!(
            !yes("notes/todo (conflict laptop 2026-11-24 101500).md"),
            "other extension"
        );
        assert!(
            !yes("todo (conflict laptop 2026-11-24 101500).txt"),
            "other folder"
        );
        assert!(!yes("notes/todo (conflict laptop).txt"), "no stamp");
        assert!(
            !yes("notes/todo (conflict 2026-11-24 101500).txt"),
            "no origin"
        );
        assert!(!yes("notes/todo.txt"));
        let bare = SyncPath::parse("README").unwrap();
        let copy =
            conflict_copy_path(&bare, "x", datetime!(2026-11-24 10:15:00 UTC), |_| false).unwrap();
        assert!(is_conflict_copy_of(&copy, &bare));
    }

    #[test]
    fn taken_names_get_a_counter_before_the_parenthesis() {
        let taken = [
            "todo (conflict pc 2026-11-24 101500).txt",
            "todo (conflict pc 2026-11-24 101500 2).txt",
        ];
        assert_eq!(
            name("todo.txt", "pc", &taken),
            "todo (conflict pc 2026-11-24 101500 3).txt"
        );
    }

    #[test]
    fn converts_other_offsets_to_utc() {
        let at = datetime!(2026-11-24 11:15:00 +01:00);
        let path = SyncPath::parse("a.txt").unwrap();
        let copy = conflict_copy_path(&path, "pc", at, |_| false).unwrap();
        assert_eq!(copy.as_str(), "a (conflict pc 2026-11-24 101500).txt");
    }

    #[test]
    fn hostile_origins_and_long_names_stay_valid() {
        let copy = name("dir/file.txt", "../evil/host\n", &[]);
        assert_eq!(
            copy,
            "dir/file (conflict .._evil_host 2026-11-24 101500).txt"
        );
        let long = format!("{}.txt", "é".repeat(125));
        let copy = name(&long, "laptop", &[]);
        assert!(copy.len() <= MAX_SEGMENT_BYTES, "{}", copy.len());
        assert!(copy.ends_with("(conflict laptop 2026-11-24 101500).txt"));
        assert_eq!(
            name("x", "   ", &[]),
            "x (conflict unknown 2026-11-24 101500)"
        );
    }
}
