//! Unicode normalisation of names. Linux file systems keep NFC and NFD
//! names apart, so these tests can hold both forms side by side.

use super::*;

/// The names in `dir` exactly as the file system holds them, sorted.
fn disk_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn listed(result: &ScanResult) -> Vec<&str> {
    result.files.keys().map(|k| k.as_str()).collect()
}

const CAFE_NFD: &str = "cafe\u{301}.txt";
const CAFE_NFC: &str = "caf\u{e9}.txt";
const MUNICH_NFD: &str = "Mu\u{308}nchen";
const MUNICH_NFC: &str = "M\u{fc}nchen";

fn file_record(content: &[u8]) -> SyncedFile {
    SyncedFile {
        kind: EntryKind::File,
        sha256: Sha256Hex::of(content),
        size: content.len() as u64,
        mtime_ns: 0,
        inode: 0,
        executable: false,
        version: 3,
    }
}

#[test]
fn new_nfd_file_is_renamed_to_nfc_and_listed_so() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, CAFE_NFD, b"latte");
    write(root, "plain.txt", b"ascii");

    let result = scan_all(root);
    assert_eq!(listed(&result), vec![CAFE_NFC, "plain.txt"]);
    assert_eq!(result.files[&p(CAFE_NFC)].sha256, Sha256Hex::of(b"latte"));
    assert!(result.skipped.is_empty(), "{:?}", result.skipped);
    assert_eq!(disk_names(root), vec![CAFE_NFC, "plain.txt"]);
    assert_eq!(fs::read(root.join(CAFE_NFC)).unwrap(), b"latte");

    // Stable: the next scan finds the same and renames nothing.
    let again = scan_all(root);
    assert_eq!(again.files, result.files);
    assert_eq!(
        stat_entry(root, &p(CAFE_NFC), None).unwrap().as_ref(),
        Some(&result.files[&p(CAFE_NFC)])
    );
}

#[test]
fn known_nfd_names_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, CAFE_NFD, b"from a legacy client");
    write(root, &format!("{MUNICH_NFD}/plan.txt"), b"plan");
    // New in a kept folder: only the new name is normalised.
    write(root, &format!("{MUNICH_NFD}/Gru\u{308}sse.txt"), b"hi");
    let dir_record = SyncedFile {
        kind: EntryKind::Dir,
        sha256: Sha256Hex::empty(),
        size: 0,
        ..file_record(b"")
    };
    let file = file_record(b"from a legacy client");
    let known = |path: &SyncPath| match path.as_str() {
        CAFE_NFD => Some(file.clone()),
        MUNICH_NFD => Some(dir_record.clone()),
        _ => None,
    };
    let rules = IgnoreRules::load(root).unwrap();
    let result = scan(root, &rules, &known).unwrap();

    let plan = format!("{MUNICH_NFD}/plan.txt");
    let greeting = format!("{MUNICH_NFD}/Gr\u{fc}sse.txt");
    assert_eq!(
        listed(&result),
        vec![MUNICH_NFD, &greeting, &plan, CAFE_NFD]
    );
    assert!(result.skipped.is_empty(), "{:?}", result.skipped);
    assert_eq!(disk_names(root), vec![MUNICH_NFD, CAFE_NFD]);
    assert_eq!(
        disk_names(&root.join(MUNICH_NFD)),
        vec!["Gr\u{fc}sse.txt", "plan.txt"]
    );
    assert_eq!(
        result.files[&p(CAFE_NFD)].sha256,
        Sha256Hex::of(b"from a legacy client")
    );

    // The single-path stat: a known non-NFC path is looked at, an
    // unknown one sends the caller to a full scan, unless nothing is
    // there (e.g. the old name of an entry a scan renamed).
    assert_eq!(
        stat_entry(root, &p(CAFE_NFD), Some(&file))
            .unwrap()
            .unwrap()
            .sha256,
        Sha256Hex::of(b"from a legacy client")
    );
    let err = stat_entry(root, &p(CAFE_NFD), None).unwrap_err();
    assert!(
        matches!(&err, ScanError::NotNormalised { path } if path.as_str() == CAFE_NFD),
        "{err:?}"
    );
    assert!(err.to_string().contains("NFC"), "{err}");
    // A new NFC-named file inside a folder kept under its NFD name
    // is looked at like any other.
    assert!(stat_entry(root, &p(&plan), None).unwrap().is_some());
    assert_eq!(stat_entry(root, &p("gone\u{301}.txt"), None).unwrap(), None);
    assert_eq!(
        stat_entry(root, &p(&format!("{MUNICH_NFC}/plan.txt")), None).unwrap(),
        None
    );
}

#[test]
fn nfd_name_whose_nfc_twin_exists_is_skipped_and_both_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, CAFE_NFC, b"nfc");
    write(root, CAFE_NFD, b"nfd");
    write(root, &format!("{MUNICH_NFC}/a.txt"), b"a");
    write(root, &format!("{MUNICH_NFD}/b.txt"), b"b");

    let result = scan_all(root);
    let a = format!("{MUNICH_NFC}/a.txt");
    assert_eq!(listed(&result), vec![MUNICH_NFC, &a, CAFE_NFC]);
    assert_eq!(result.files[&p(CAFE_NFC)].sha256, Sha256Hex::of(b"nfc"));
    let skipped: Vec<&str> = result
        .skipped
        .iter()
        .map(|(path, _)| path.as_str())
        .collect();
    assert_eq!(skipped, vec![MUNICH_NFD, CAFE_NFD]);
    for (_, reason) in &result.skipped {
        assert!(
            reason.contains("Unicode normalisation") && reason.contains("rename one"),
            "{reason}"
        );
    }
    assert_eq!(
        disk_names(root),
        vec![MUNICH_NFD, MUNICH_NFC, CAFE_NFD, CAFE_NFC]
    );
    assert_eq!(fs::read(root.join(CAFE_NFC)).unwrap(), b"nfc");
    assert_eq!(fs::read(root.join(CAFE_NFD)).unwrap(), b"nfd");
    assert_eq!(disk_names(&root.join(MUNICH_NFD)), vec!["b.txt"]);
    assert_eq!(disk_names(&root.join(MUNICH_NFC)), vec!["a.txt"]);
}

#[test]
fn two_non_nfc_names_with_one_nfc_form_keep_one_and_skip_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Both are "e" with a dot below and an acute; only the first is in
    // canonical order (NFD), neither is NFC.
    write(root, "e\u{323}\u{301}", b"one");
    write(root, "e\u{301}\u{323}", b"two");
    let nfc = "\u{1eb9}\u{301}";

    let result = scan_all(root);
    assert_eq!(listed(&result), vec![nfc]);
    assert_eq!(result.skipped.len(), 1, "{:?}", result.skipped);
    let names = disk_names(root);
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().any(|n| n == nfc), "{names:?}");
    assert!(names.contains(&result.skipped[0].0), "{names:?}");
}

#[test]
fn nfd_directory_is_renamed_then_descended() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, &format!("{MUNICH_NFD}/plan.txt"), b"plan");
    write(
        root,
        &format!("{MUNICH_NFD}/Gru\u{308}sse/{CAFE_NFD}"),
        b"deep",
    );
    fs::create_dir(root.join(format!("{MUNICH_NFD}/leer-\u{212b}"))).unwrap();

    let result = scan_all(root);
    let expected = [
        MUNICH_NFC.to_owned(),
        format!("{MUNICH_NFC}/Gr\u{fc}sse"),
        format!("{MUNICH_NFC}/Gr\u{fc}sse/{CAFE_NFC}"),
        // U+212B ANGSTROM SIGN is a singleton: NFC makes it U+00C5.
        format!("{MUNICH_NFC}/leer-\u{c5}"),
        format!("{MUNICH_NFC}/plan.txt"),
    ];
    assert_eq!(
        listed(&result),
        expected.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(result.skipped.is_empty(), "{:?}", result.skipped);
    assert_eq!(disk_names(root), vec![MUNICH_NFC]);
    assert_eq!(
        fs::read(root.join(format!("{MUNICH_NFC}/Gr\u{fc}sse/{CAFE_NFC}"))).unwrap(),
        b"deep"
    );
    assert_eq!(
        result.files[&p(&format!("{MUNICH_NFC}/plan.txt"))].sha256,
        Sha256Hex::of(b"plan")
    );
    // Stable (directory mtimes moved with the renames inside them).
    let again = scan_all(root);
    assert_eq!(listed(&again), listed(&result));
    assert_eq!(disk_names(root), vec![MUNICH_NFC]);
}

#[test]
fn nfd_symlinks_are_skipped_not_renamed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "target.txt", b"x");
    std::os::unix::fs::symlink("target.txt", root.join(CAFE_NFD)).unwrap();

    let result = scan_all(root);
    assert_eq!(listed(&result), vec!["target.txt"]);
    assert_eq!(result.skipped.len(), 1, "{:?}", result.skipped);
    assert_eq!(result.skipped[0].0, CAFE_NFD);
    assert!(result.skipped[0].1.contains("symbolic link"));
    assert_eq!(disk_names(root), vec![CAFE_NFD, "target.txt"]);
}

#[test]
fn ignored_nfd_names_are_not_renamed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // The second rule matches the NFC form only.
    write(root, ".sfignore", "*.tmp\ncaf\u{e9}.log\n".as_bytes());
    write(root, "cafe\u{301}.tmp", b"x");
    write(root, "cafe\u{301}.log", b"x");

    let result = scan_all(root);
    assert_eq!(listed(&result), vec![".sfignore"]);
    assert!(result.skipped.is_empty(), "{:?}", result.skipped);
    assert_eq!(
        disk_names(root),
        vec![".sfignore", "cafe\u{301}.log", "cafe\u{301}.tmp"]
    );
}
