//! Conflict names: parsing any path never panics, and a name that parses
//! (with an origin as `conflict_copy_path` writes origins) is exactly what
//! `conflict_copy_path` makes from the parts; names made from fuzzed
//! originals, origins and times parse back to parts that make them again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sf_protocol::SyncPath;
use sf_protocol::conflict::{
    ConflictCopy, conflict_copy_path, is_conflict_copy_of, parse_conflict_copy,
};
use sf_protocol::path::MAX_SEGMENT_BYTES;
use time::OffsetDateTime;

/// Seconds from 1970 to the end of year 9999, the span a stamp can show.
const LAST_SECOND: u64 = 253_402_300_799;

/// The name `conflict_copy_path` gives `parts` (the `counter`-th candidate).
fn render(parts: &ConflictCopy) -> SyncPath {
    let mut calls = 0;
    conflict_copy_path(&parts.original, &parts.origin, parts.at, |_| {
        calls += 1;
        calls < parts.counter
    })
    .unwrap()
}

/// Whether `conflict_copy_path` keeps `origin` as it is.
fn canonical_origin(origin: &str) -> bool {
    !origin.is_empty()
        && origin.len() <= 64
        && origin.trim() == origin
        && !origin
            .chars()
            .any(|c| c.is_control() || "/\\()".contains(c))
}

fuzz_target!(|input: (&str, &str, u64, u8)| {
    let (raw, origin, seconds, counter) = input;
    let Ok(path) = SyncPath::parse(raw) else {
        return;
    };
    if let Some(parsed) = parse_conflict_copy(&path) {
        assert!(is_conflict_copy_of(&path, &parsed.original), "{path:?}");
        assert!(parsed.counter >= 1);
        if canonical_origin(&parsed.origin) && parsed.counter < 10_000 {
            assert_eq!(render(&parsed), path, "{parsed:?}");
        }
    }

    let at = OffsetDateTime::from_unix_timestamp((seconds % (LAST_SECOND + 1)) as i64).unwrap();
    let counter = u64::from(counter % 8) + 1;
    let mut calls = 0;
    let Ok(copy) = conflict_copy_path(&path, origin, at, |_| {
        calls += 1;
        calls < counter
    }) else {
        return; // The name cannot hold a stamp at all.
    };
    let parsed = parse_conflict_copy(&copy).unwrap_or_else(|| panic!("{copy:?} does not parse"));
    assert!(!parsed.origin.is_empty());
    // (A reading with a huge counter would take that many candidates.)
    if canonical_origin(&parsed.origin) && parsed.counter < 10_000 {
        // Some names read two ways (an extension that itself looks like a
        // stamp); either reading names this same copy.
        assert_eq!(render(&parsed), copy, "{parsed:?}");
    }
    if parsed.original == path {
        assert_eq!((parsed.at, parsed.counter), (at, counter));
        assert!(is_conflict_copy_of(&copy, &path));
    } else {
        assert_eq!(parsed.original.parent(), path.parent());
        // The copy's name is the kept stem, the marker and the kept extension.
        let marker = copy.file_name().len() - parsed.original.file_name().len();
        let shortened = path.file_name().len() + marker > MAX_SEGMENT_BYTES;
        let ambiguous = path.file_name().contains(" (conflict ");
        assert!(shortened || ambiguous, "{path:?} -> {copy:?} -> {parsed:?}");
    }
});
