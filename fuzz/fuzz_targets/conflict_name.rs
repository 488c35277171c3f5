//! Conflict names: parsing any path never panics, and whatever parses
//! renders back to a name that parses alike; names made by
//! `conflict_copy_path` from fuzzed originals, origins and times parse back
//! to what made them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sf_protocol::SyncPath;
use sf_protocol::conflict::{conflict_copy_path, is_conflict_copy_of, parse_conflict_copy};
use sf_protocol::path::MAX_SEGMENT_BYTES;
use time::OffsetDateTime;

/// Seconds from 1970 to the end of year 9999, the span a stamp can show.
const LAST_SECOND: u64 = 253_402_300_799;

fuzz_target!(|input: (&str, &str, u64, u8)| {
    let (raw, origin, seconds, counter) = input;
    let Ok(path) = SyncPath::parse(raw) else {
        return;
    };
    if let Some(parsed) = parse_conflict_copy(&path) {
        assert!(is_conflict_copy_of(&path, &parsed.original), "{path:?}");
        assert!(parsed.counter >= 1);
        let again = conflict_copy_path(&parsed.original, &parsed.origin, parsed.at, |c| {
            parse_conflict_copy(c).is_some_and(|c| c.counter < parsed.counter)
        })
        .unwrap();
        let reparsed = parse_conflict_copy(&again).unwrap();
        assert_eq!(reparsed.original, parsed.original, "{path:?} -> {again:?}");
        assert_eq!(reparsed.at, parsed.at);
        assert_eq!(reparsed.counter, parsed.counter);
    }

    let at = OffsetDateTime::from_unix_timestamp((seconds % (LAST_SECOND + 1)) as i64).unwrap();
    let counter = u64::from(counter % 8) + 1;
    let Ok(copy) = conflict_copy_path(&path, origin, at, |c| {
        parse_conflict_copy(c).is_some_and(|c| c.counter < counter)
    }) else {
        return; // The extension alone leaves no room for the stamp.
    };
    let parsed = parse_conflict_copy(&copy).unwrap_or_else(|| panic!("{copy:?} does not parse"));
    assert_eq!(parsed.at, at);
    assert_eq!(parsed.counter, counter);
    assert!(!parsed.origin.is_empty());
    if parsed.original != path {
        // Only a stem shortened to fit the name may differ.
        assert!(copy.file_name().len() > MAX_SEGMENT_BYTES - 4, "{path:?} -> {copy:?}");
        assert_eq!(parsed.original.parent(), path.parent());
    } else {
        assert!(is_conflict_copy_of(&copy, &path));
    }
});
