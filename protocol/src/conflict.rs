//! Conflict-copy names: the one function the hub and every agent use, so a
//! conflict looks the same whoever detected it.
//!
//! `notes/todo.txt`, origin `laptop`, 2026-11-24 10:15:00 UTC becomes
//! `notes/todo (conflict laptop 2026-11-24 101500).txt`; when that name is
//! taken, `notes/todo (conflict laptop 2026-11-24 101500 2).txt`, then ` 3`…
//! [`parse_conflict_copy`] takes such a name back apart.

use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::path::MAX_SEGMENT_BYTES;
use crate::{PathError, SyncPath};

/// The longest origin name kept in a conflict name, in bytes.
const MAX_ORIGIN_BYTES: usize = 64;
/// Of a stem, at least this much (or all of a shorter one) stays in a copy's
/// name; the marker (at most 115 bytes) and this leave over 100 bytes for
/// the extension.
const MIN_STEM_BYTES: usize = 32;

/// Builds the conflict-copy path for `path`, written by `origin` at `at`.
///
/// `is_taken` says whether a candidate already names something; the first
/// free candidate is returned. The result is always a valid [`SyncPath`] in
/// the same folder: a long stem (and an extension so long that it leaves no
/// room for the stem) is shortened to keep the name within limits.
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
        let marker = format!(" (conflict {origin} {stamp}{counter})");
        // A very long extension is shortened too, so that some of the stem
        // stays: without it the copy could not be told apart or read back.
        let kept_stem = truncate_at_char(stem, MIN_STEM_BYTES).len();
        let ext = truncate_at_char(
            ext,
            MAX_SEGMENT_BYTES.saturating_sub(marker.len() + kept_stem),
        );
        let room = MAX_SEGMENT_BYTES.saturating_sub(marker.len() + ext.len());
        let name = if ext.is_empty() && stem.ends_with('.') && stem.len() > room {
            // `a.b.` has no extension, but cut short (`a.b`) it would seem
            // to have one: keep the final dot, so the copy still reads back
            // as a copy of a name without an extension.
            let kept = truncate_at_char(stem, room.saturating_sub(1));
            format!("{kept}.{marker}")
        } else {
            format!("{}{marker}{ext}", truncate_at_char(stem, room))
        };
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

/// A conflict copy's name taken apart by [`parse_conflict_copy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConflictCopy {
    /// The path the copy was made from. When its stem had to be shortened to
    /// fit the name, this is the shortened stem with the extension.
    pub original: SyncPath,
    /// Who wrote the conflicting content, as kept in the name.
    pub origin: String,
    /// When the conflict copy was named, to the second, in UTC.
    pub at: OffsetDateTime,
    /// 1 for the first copy, then 2, 3… for the ` N` counter.
    pub counter: u64,
}

/// The marker between a copy's stem and its origin.
const CONFLICT_MARK: &str = " (conflict ";

/// Reads `path` as a conflict copy named exactly as [`conflict_copy_path`]
/// names them: `<stem> (conflict <origin> <YYYY-MM-DD HHMMSS>[ N])<ext>`,
/// with a real date and time, and `N` (when present) at least 2 without
/// leading zeros. `None` for any other name; never panics.
///
/// A copy of a copy (`a (conflict x …) (conflict y …).txt`) gives the latest
/// conflict, whose original is the first copy. A few names can be read two
/// ways, because an extension may itself look like a stamp (`a. (conflict o
/// 2026-01-01 000000)` has the extension `. (conflict o …)`); the reading
/// with the rightmost marker wins, and both readings name the same copy.
pub fn parse_conflict_copy(path: &SyncPath) -> Option<ConflictCopy> {
    let name = path.file_name();
    // Rightmost first: the last marker names the latest conflict, and an
    // earlier one may belong to the stem (a copy of a copy).
    for (index, _) in name.rmatch_indices(CONFLICT_MARK) {
        let stem = &name[..index];
        // An origin never holds ')', so the first one closes the stamp.
        let Some((inner, ext)) = name[index + CONFLICT_MARK.len()..].split_once(')') else {
            continue;
        };
        let original_name = format!("{stem}{ext}");
        // conflict_copy_path splits the original exactly here; any other
        // split (an extension of its own inside the stem) is not its name.
        if stem.is_empty() || split_extension(&original_name) != (stem, ext) {
            continue;
        }
        let Some((origin, at, counter)) = parse_stamp(inner) else {
            continue;
        };
        let Ok(original) = path.with_file_name(&original_name) else {
            continue;
        };
        return Some(ConflictCopy {
            original,
            origin: origin.to_owned(),
            at,
            counter,
        });
    }
    None
}

/// `<origin> <YYYY-MM-DD> <HHMMSS>[ N]` → (origin, time, counter).
fn parse_stamp(inner: &str) -> Option<(&str, OffsetDateTime, u64)> {
    fn split(s: &str, counter: u64) -> Option<(&str, OffsetDateTime, u64)> {
        let (rest, time) = s.rsplit_once(' ')?;
        let (origin, date) = rest.rsplit_once(' ')?;
        if origin.is_empty() {
            return None;
        }
        Some((origin, parse_utc(date, time)?, counter))
    }
    split(inner, 1).or_else(|| {
        let (rest, n) = inner.rsplit_once(' ')?;
        let canonical = !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit());
        let counter = n.parse::<u64>().ok().filter(|&n| canonical && n >= 2)?;
        split(rest, counter)
    })
}

fn parse_utc(date: &str, time: &str) -> Option<OffsetDateTime> {
    let shape = |s: &str, pattern: &[u8]| {
        s.len() == pattern.len()
            && s.bytes().zip(pattern).all(|(b, &p)| {
                if p == b'9' {
                    b.is_ascii_digit()
                } else {
                    b == p
                }
            })
    };
    if !shape(date, b"9999-99-99") || !shape(time, b"999999") {
        return None;
    }
    PrimitiveDateTime::parse(
        &format!("{date} {time}"),
        format_description!("[year]-[month]-[day] [hour][minute][second]"),
    )
    .ok()
    .map(PrimitiveDateTime::assume_utc)
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
    // Trimmed again after the cut, so a cleaned origin cleans to itself and
    // a name read back with `parse_conflict_copy` is made again unchanged.
    let cleaned = truncate_at_char(&cleaned, MAX_ORIGIN_BYTES)
        .trim_end()
        .to_owned();
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
    fn parses_its_own_names_back() {
        let at = datetime!(2026-11-24 10:15:00 UTC);
        let cases = [
            ("notes/todo.txt", "laptop", 1),
            ("README", "legacy", 1),
            ("a.tar.gz", "x", 3),
            (".bashrc", "my pc", 1),
            ("dir/x.y", "host.example.org", 12),
            ("a.b (conflict o 2026-01-01 000000)", "x", 1),
            ("weird (conflict ) name.txt", "2026-11-24 101500", 2),
            ("trailing.", "x", 1),
        ];
        for (original, origin, counter) in cases {
            let path = SyncPath::parse(original).unwrap();
            let mut calls = 0;
            let copy = conflict_copy_path(&path, origin, at, |_| {
                calls += 1;
                calls < counter
            })
            .unwrap();
            let parsed = parse_conflict_copy(&copy).unwrap_or_else(|| panic!("{copy}"));
            assert_eq!(
                parsed,
                ConflictCopy {
                    original: path,
                    origin: origin.to_owned(),
                    at,
                    counter
                },
                "{copy}"
            );
        }
    }

    #[test]
    fn a_copy_of_a_copy_names_the_first_copy() {
        let at = datetime!(2026-11-24 10:15:00 UTC);
        let first = name("todo.txt", "a", &[]);
        let second =
            conflict_copy_path(&SyncPath::parse(&first).unwrap(), "b", at, |_| false).unwrap();
        let parsed = parse_conflict_copy(&second).unwrap();
        assert_eq!(parsed.original.as_str(), first);
        assert_eq!(parsed.origin, "b");
    }

    #[test]
    fn an_extension_that_looks_like_a_stamp_reads_the_rightmost_way() {
        // Found by the conflict_name fuzz target: this copy of
        // `a. (conflict o 2026-01-01 000000)` (extension `. (conflict o …)`)
        // is also, name for name, a copy of `a (conflict x 2026-11-24 101500).`.
        let original = SyncPath::parse("a. (conflict o 2026-01-01 000000)").unwrap();
        let copy = conflict_copy_path(&original, "x", datetime!(2026-11-24 10:15:00 UTC), |_| {
            false
        })
        .unwrap();
        assert_eq!(
            copy.as_str(),
            "a (conflict x 2026-11-24 101500). (conflict o 2026-01-01 000000)"
        );
        let parsed = parse_conflict_copy(&copy).unwrap();
        assert_eq!(
            parsed.original.as_str(),
            "a (conflict x 2026-11-24 101500)."
        );
        assert_eq!(parsed.origin, "o");
        let again = conflict_copy_path(&parsed.original, &parsed.origin, parsed.at, |_| false);
        assert_eq!(again.unwrap(), copy, "both readings name the same copy");
    }

    #[test]
    fn other_names_are_not_copies() {
        for raw in [
            "todo.txt",
            "todo (conflict laptop).txt",
            "todo (conflict 2026-11-24 101500).txt",
            " (conflict x 2026-11-24 101500).txt",
            "todo (conflict x 2026-13-24 101500).txt",
            "todo (conflict x 2026-11-24 246000).txt",
            "todo (conflict x 2026-11-24 10150).txt",
            "todo (conflict x 2026-11-24 101500 1).txt",
            "todo (conflict x 2026-11-24 101500 02).txt",
            "todo (conflict x 2026-11-24 101500 99999999999999999999).txt",
            "todo (conflict x 2026-11-24 101500 +2).txt",
            "todo (conflict x +026-11-24 101500).txt",
            "todo (conflict x 2026-11-24 101500).tar.gz",
            "todo.txt (conflict x 2026-11-24 101500)",
            "todo (conflict x 2026-11-24 101500",
            "a/. (conflict x 2026-11-24 101500)",
            "(conflict x 2026-11-24 101500)",
        ] {
            let path = SyncPath::parse(raw).unwrap();
            assert_eq!(parse_conflict_copy(&path), None, "{raw:?}");
        }
    }

    #[test]
    fn a_huge_extension_is_shortened_and_the_stem_kept() {
        // Found by the conflict_name fuzz target: the stem was cut to nothing,
        // giving " (conflict …).xt OOO…", which named no original.
        let long_ext = format!("a.xt {}", "O".repeat(248));
        let copy = name(&long_ext, "", &[]);
        assert!(copy.len() <= MAX_SEGMENT_BYTES, "{}", copy.len());
        assert!(
            copy.starts_with("a (conflict unknown 2026-11-24 101500).xt OOO"),
            "{copy}"
        );
        let parsed = parse_conflict_copy(&SyncPath::parse(&copy).unwrap()).unwrap();
        assert!(long_ext.starts_with(parsed.original.as_str()));
        let stem = "s".repeat(100);
        let copy = name(&format!("{stem}.{}", "e".repeat(150)), "pc", &[]);
        assert!(
            copy.find(" (conflict pc").unwrap() >= MIN_STEM_BYTES,
            "{copy}"
        );
        assert!(copy.ends_with(&"e".repeat(100)), "{copy}");
        assert!(copy.len() <= MAX_SEGMENT_BYTES);
    }

    #[test]
    fn a_long_name_ending_in_a_dot_stays_without_an_extension() {
        // Found by the conflict_name fuzz target: `x.txt…OOO.` has no
        // extension, but cut to fit it became `x.txt…OOO`, which has one,
        // so the copy did not read back.
        for original in [
            format!("x.txt{}.", "O".repeat(240)),
            format!("..{}.", "x".repeat(250)),
        ] {
            let copy = name(&original, "pc", &[]);
            assert!(copy.len() <= MAX_SEGMENT_BYTES);
            assert!(
                copy.ends_with(". (conflict pc 2026-11-24 101500)"),
                "{copy}"
            );
            let parsed = parse_conflict_copy(&SyncPath::parse(&copy).unwrap()).unwrap();
            let kept = parsed.original.as_str();
            assert!(kept.ends_with('.') && kept.len() > 100, "{kept}");
            assert!(original.starts_with(&kept[..kept.len() - 1]), "{kept}");
        }
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
        // Found by the property tests: a cut at 64 bytes that ended in a
        // space left the origin untrimmed, so it did not clean to itself.
        let origin = format!("{} tail", "o".repeat(63));
        assert_eq!(
            name("x", &origin, &[]),
            format!("x (conflict {} 2026-11-24 101500)", "o".repeat(63))
        );
    }
}
