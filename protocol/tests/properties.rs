//! Property tests: the properties the `fuzz/` targets check, on stable and
//! inside `cargo test`, so CI holds every change to them. Each property
//! runs on arbitrary input (never panics) and on generated well-formed
//! input (the documented answer).

use proptest::prelude::*;
use sf_protocol::chunking::{ChunkRef, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, check_chunk_list};
use sf_protocol::conflict::{conflict_copy_path, is_conflict_copy_of, parse_conflict_copy};
use sf_protocol::legacy::{
    MAX_META_LENGTH, UploadFramingError, decode_upload_meta, parse_meta_length,
};
use sf_protocol::path::{MAX_SEGMENT_BYTES, is_reserved_name};
use sf_protocol::platform::{
    Collisions, NameRule, Platform, collision_key, fold_case, name_problem, path_problem,
};
use sf_protocol::range::{RangeRequest, parse_range};
use sf_protocol::v1::{Entry, EntryKind, FrameError, WsFrame, decode_changes, decode_ws_frame};
use sf_protocol::{PathError, Sha256Hex, SyncPath};
use time::OffsetDateTime;

const PLATFORMS: [Platform; 3] = [Platform::Unix, Platform::Windows, Platform::MacOs];

/// Path-like strings: mostly plausible names, with the characters the rules
/// and the platforms care about mixed in.
fn path_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ._/-]{0,40}",
        "(\\.[sSſ][fF][. ]{0,3})(/[a-z]{1,5}){0,2}",
        "[a-zA-Z.:*?<>|\" /\\\\ſK\u{e9}\u{301}ß\u{b9}]{1,24}",
        any::<String>(),
    ]
}

fn valid_path() -> impl Strategy<Value = SyncPath> {
    "[a-zA-Z0-9_][a-zA-Z0-9 ._-]{0,30}(/[a-zA-Z0-9_][a-zA-Z0-9 ._-]{0,30}){0,3}"
        .prop_filter_map("not a valid path", |raw| SyncPath::parse(raw).ok())
}

proptest! {
    #[test]
    fn parsed_paths_reparse_to_themselves(raw in path_like()) {
        if let Ok(path) = SyncPath::parse(raw.clone()) {
            prop_assert_eq!(path.as_str(), raw.as_str());
            prop_assert_eq!(SyncPath::parse(path.as_str()), Ok(path.clone()));
            let json = serde_json::to_string(&path).unwrap();
            prop_assert_eq!(serde_json::from_str::<SyncPath>(&json).unwrap(), path.clone());
            prop_assert!(!is_reserved_name(path.as_str().split('/').next().unwrap()));
            for ancestor in path.ancestors() {
                prop_assert!(SyncPath::parse(ancestor).is_ok());
            }
        }
    }

    #[test]
    fn the_reserved_name_is_reserved_in_every_spelling(
        upper in any::<[bool; 2]>(),
        tail in "[. ]{0,4}",
        below in "(/[a-z]{1,8}){0,2}",
    ) {
        let s = if upper[0] { 'S' } else { 's' };
        let f = if upper[1] { 'F' } else { 'f' };
        let raw = format!(".{s}{f}{tail}{below}");
        prop_assert_eq!(SyncPath::parse(raw.clone()), Err(PathError::Reserved));
        // Only at the top level.
        let nested = format!("a/{raw}");
        prop_assert!(SyncPath::parse(nested).is_ok());
    }

    #[test]
    fn platform_rules_never_panic_and_name_the_segment(raw in path_like()) {
        for platform in PLATFORMS {
            if let Some(problem) = name_problem(&raw, platform) {
                prop_assert_eq!(&problem.name, &raw);
                prop_assert!(problem.to_string().contains("rename it on another device"));
            }
        }
        prop_assert_eq!(fold_case(&fold_case(&raw)), fold_case(&raw));
        if let Ok(path) = SyncPath::parse(raw) {
            prop_assert_eq!(path_problem(&path, Platform::Unix), None);
            prop_assert_eq!(path_problem(&path, Platform::MacOs), None);
            if let Some(problem) = path_problem(&path, Platform::Windows) {
                prop_assert!(path.as_str().split('/').any(|s| s == problem.name));
            }
        }
    }

    #[test]
    fn windows_device_names_are_refused_in_any_case_and_with_any_extension(
        device in prop::sample::select(vec!["con", "prn", "aux", "nul", "com1", "com9", "lpt1", "lpt9", "com\u{b9}", "lpt\u{b3}"]),
        upper in prop::collection::vec(any::<bool>(), 4),
        ext in "(\\.[a-z0-9]{1,4}){0,2}",
    ) {
        let name: String = device
            .chars()
            .zip(upper.iter().cycle())
            .map(|(c, &up)| if up { c.to_ascii_uppercase() } else { c })
            .collect();
        let name = format!("{name}{ext}");
        prop_assert!(
            matches!(name_problem(&name, Platform::Windows).map(|p| p.rule), Some(NameRule::ReservedDeviceName(_))),
            "{:?}", name
        );
        prop_assert_eq!(name_problem(&name, Platform::Unix), None);
    }

    #[test]
    fn windows_refuses_each_forbidden_character(
        before in "[a-z]{0,5}",
        bad in prop::sample::select(vec![':', '*', '?', '"', '<', '>', '|', '\\', '\u{1}', '\u{1f}']),
        after in "[a-z]{0,5}",
    ) {
        let name = format!("{before}{bad}{after}");
        prop_assert_eq!(
            name_problem(&name, Platform::Windows).map(|p| p.rule),
            Some(NameRule::ForbiddenCharacter(bad))
        );
    }

    #[test]
    fn case_variants_collide_only_where_case_is_ignored(path in valid_path(), flips in any::<u64>()) {
        let flipped: String = path
            .as_str()
            .chars()
            .enumerate()
            .map(|(i, c)| if flips >> (i % 64) & 1 == 1 { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
            .collect();
        let Ok(other) = SyncPath::parse(flipped) else { return Ok(()); };
        let both = [path.clone(), other.clone()];
        for platform in PLATFORMS {
            let found = Collisions::find(&both, platform);
            let differ = path != other;
            let should = differ && platform.is_case_insensitive();
            prop_assert_eq!(found.problem(&path).is_some(), should, "{:?} {:?} on {}", path, other, platform);
            prop_assert_eq!(found.problem(&other).is_some(), should);
            prop_assert_eq!(
                collision_key(path.as_str(), platform) == collision_key(other.as_str(), platform),
                !differ || platform.is_case_insensitive()
            );
        }
    }

    #[test]
    fn ranges_stay_inside_the_content(raw in "[bBytesY]{0,6}=?[0-9 ,+-]{0,30}|\\PC{0,20}", size in any::<u64>()) {
        for size in [size, size % 1000, u64::MAX] {
            if let RangeRequest::Bytes(start, end) = parse_range(&raw, size) {
                prop_assert!(start < end && end <= size, "{:?} on {}", raw, size);
            }
        }
    }

    #[test]
    fn well_formed_ranges_answer_as_rfc_9110_says(first in any::<u64>(), last in any::<u64>(), size in 0u64..2000, big in any::<bool>()) {
        let size = if big { u64::MAX - size } else { size };
        let (first, last) = (first % (size.saturating_add(10)), if big { last } else { last % 3000 });
        let got = parse_range(&format!("bytes={first}-{last}"), size);
        let expected = if last < first {
            RangeRequest::Ignored
        } else if first >= size {
            RangeRequest::Unsatisfiable
        } else {
            RangeRequest::Bytes(first, (u128::from(last) + 1).min(u128::from(size)) as u64)
        };
        prop_assert_eq!(got, expected);
        let suffix = parse_range(&format!("bytes=-{last}"), size);
        let expected = if last == 0 || size == 0 {
            RangeRequest::Unsatisfiable
        } else {
            RangeRequest::Bytes(size - last.min(size), size)
        };
        prop_assert_eq!(suffix, expected);
        prop_assert_eq!(parse_range(&format!("bytes={first}-"), size),
            if first >= size { RangeRequest::Unsatisfiable } else { RangeRequest::Bytes(first, size) });
    }

    #[test]
    fn conflict_names_parse_back(
        path in prop_oneof![
            valid_path(),
            // Long names, cut to fit; some end in a dot (no extension).
            "\\.{0,2}[a-z][a-z. ]{150,250}\\.?".prop_filter_map("not a valid path", |raw| SyncPath::parse(raw).ok()),
        ],
        origin in any::<String>(),
        seconds in 0i64..=253_402_300_799,
        counter in 1u64..5,
    ) {
        let at = OffsetDateTime::from_unix_timestamp(seconds).unwrap();
        let nth = |n: u64| {
            let mut calls = 0;
            move |_: &SyncPath| {
                calls += 1;
                calls < n
            }
        };
        let Ok(copy) = conflict_copy_path(&path, &origin, at, nth(counter)) else {
            return Ok(());
        };
        let parsed = parse_conflict_copy(&copy).expect("a conflict copy's name parses");
        // The parts make this very name again.
        let again = conflict_copy_path(&parsed.original, &parsed.origin, parsed.at, nth(parsed.counter));
        prop_assert_eq!(again.as_ref(), Ok(&copy));
        if parsed.original == path {
            prop_assert_eq!((parsed.at, parsed.counter), (at, counter));
            prop_assert!(is_conflict_copy_of(&copy, &path));
        } else {
            // Only a name shortened to fit may come back different here
            // (valid_path() has no " (conflict " in it to read two ways).
            let marker = copy.file_name().len() - parsed.original.file_name().len();
            prop_assert!(path.file_name().len() + marker > MAX_SEGMENT_BYTES, "{:?}", copy);
        }
    }

    #[test]
    fn conflict_parsing_never_panics(raw in "[a-z]{0,4}( \\(conflict [a-z ]{0,6} [0-9-]{0,10} [0-9]{0,7}( [0-9]{0,3})?\\))?[.a-z]{0,5}|\\PC{0,40}") {
        if let Ok(path) = SyncPath::parse(raw)
            && let Some(parsed) = parse_conflict_copy(&path)
        {
            prop_assert!(is_conflict_copy_of(&path, &parsed.original));
        }
    }

    #[test]
    fn chunk_lists_accepted_only_when_they_sum_to_the_size(
        lens in prop::collection::vec(prop_oneof![0u64..10, 131_000u64..140_000, 2_097_000u64..2_098_000, any::<u64>()], 0..6),
        size in prop_oneof![any::<u64>(), 0u64..5_000_000],
    ) {
        let chunks: Vec<ChunkRef> = lens.iter().map(|&len| ChunkRef { hash: Sha256Hex::empty(), len }).collect();
        if check_chunk_list(&chunks, size).is_ok() {
            prop_assert_eq!(lens.iter().map(|&l| u128::from(l)).sum::<u128>(), u128::from(size));
        }
        if let [only] = lens[..] {
            // A single chunk is the whole file: any length from 1 to the maximum.
            let fits = (1..=MAX_CHUNK_SIZE as u64).contains(&only);
            prop_assert_eq!(check_chunk_list(&chunks, only).is_ok(), fits);
        }
    }

    #[test]
    fn chunkings_within_bounds_are_accepted(
        lens in prop::collection::vec(MIN_CHUNK_SIZE as u64..=MAX_CHUNK_SIZE as u64, 0..8),
        last in 1u64..=MAX_CHUNK_SIZE as u64,
    ) {
        let mut chunks: Vec<ChunkRef> = lens.iter().map(|&len| ChunkRef { hash: Sha256Hex::empty(), len }).collect();
        chunks.push(ChunkRef { hash: Sha256Hex::empty(), len: last });
        let size = lens.iter().sum::<u64>() + last;
        prop_assert_eq!(check_chunk_list(&chunks, size), Ok(()));
        prop_assert!(check_chunk_list(&chunks, size + 1).is_err());
    }

    #[test]
    fn meta_length_accepts_exactly_1_to_the_maximum(raw in "[0-9 +-]{0,8}|\\PC{0,8}", n in any::<u64>()) {
        if let Ok(len) = parse_meta_length(Some(raw.as_bytes())) {
            prop_assert!((1..=MAX_META_LENGTH).contains(&len));
        }
        let expected = if (1..=MAX_META_LENGTH).contains(&n) { Ok(n) } else { Err(UploadFramingError::BadMetaLength) };
        prop_assert_eq!(parse_meta_length(Some(n.to_string().as_bytes())), expected);
    }

    #[test]
    fn upload_metadata_decodes_or_says_why(path in path_like(), junk in any::<Vec<u8>>()) {
        let json = serde_json::json!({ "path": path, "base_sha": null }).to_string();
        match (decode_upload_meta(json.as_bytes()), SyncPath::parse(path)) {
            (Ok(meta), Ok(expected)) => prop_assert_eq!(meta.path, expected),
            (Err(UploadFramingError::InvalidPath(err)), Err(expected)) => prop_assert_eq!(err, expected),
            (got, expected) => prop_assert!(false, "{:?} vs {:?}", got, expected),
        }
        if let Err(UploadFramingError::InvalidPath(_)) = decode_upload_meta(&junk) {
            prop_assert!(serde_json::from_slice::<serde_json::Value>(&junk).is_ok());
        }
    }

    #[test]
    fn frame_decoding_never_panics_and_accepts_only_valid_entries(raw in "\\PC{0,64}", bytes in any::<Vec<u8>>()) {
        if let Ok(WsFrame::Change(entry)) = decode_ws_frame(&raw) {
            prop_assert!(entry.validate().is_ok());
        }
        if let Ok(page) = decode_changes(&bytes) {
            for entry in &page.changes {
                let _ = entry.validate();
            }
        }
    }

    #[test]
    fn generated_entries_decode_as_their_validity_says(
        path in valid_path(),
        kind in prop::sample::select(vec![EntryKind::File, EntryKind::Dir]),
        deleted in any::<bool>(),
        has_sha in any::<bool>(),
        size in prop_oneof![Just(0u64), 1u64..300_000],
        version in 0u64..3,
        seq in 0u64..3,
        chunked in any::<bool>(),
    ) {
        let chunks = chunked.then(|| if size == 0 { vec![] } else { vec![ChunkRef { hash: Sha256Hex::empty(), len: size }] });
        let entry = Entry {
            path, kind, version, seq, deleted, size, chunks,
            sha256: has_sha.then(Sha256Hex::empty),
            mtime_ns: 0, executable: false, origin: "o".into(), committed_ms: 0,
        };
        let frame = serde_json::to_string(&WsFrame::Change(entry.clone())).unwrap();
        let page = serde_json::json!({ "changes": [entry.clone()], "head": 9 }).to_string();
        match entry.validate() {
            Ok(()) => {
                prop_assert_eq!(decode_ws_frame(&frame).unwrap(), WsFrame::Change(entry.clone()));
                prop_assert_eq!(decode_changes(page.as_bytes()).unwrap().changes, vec![entry]);
            }
            Err(err) => {
                prop_assert!(matches!(decode_ws_frame(&frame), Err(FrameError::Entry(e)) if e == err));
                // The page decodes; the entry is refused on its own.
                let decoded = decode_changes(page.as_bytes()).unwrap().changes;
                prop_assert_eq!(decoded[0].validate(), Err(err));
            }
        }
    }
}
