//! The trash with real folders: whole trees in one batch.

use super::*;

/// A tree in one batch, as a folder deleted on the hub arrives: files
/// before their folders, a name trashed twice in one day kept twice, and
/// every byte found again in the trash under its path.
#[test]
fn a_tree_goes_to_the_trash_in_one_batch() {
    let (_dir, root) = folder();
    let mut paths = Vec::new();
    for d in ["top/a", "top/b"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
        for f in 0..3 {
            let path = format!("{d}/f{f}");
            std::fs::write(root.join(&path), &path).unwrap();
            paths.push(path);
        }
    }
    paths.extend(["top/a", "top/b", "top"].map(String::from));
    // Trashed earlier today under the same name: both are kept.
    std::fs::create_dir_all(root.join(".sf/trash")).unwrap();
    let today = time::OffsetDateTime::now_utc().date().to_string();
    std::fs::create_dir_all(root.join(".sf/trash").join(&today).join("top/a")).unwrap();
    std::fs::write(
        root.join(".sf/trash").join(&today).join("top/a/f0"),
        "older",
    )
    .unwrap();

    let synced: Vec<(SyncPath, LocalFile)> = paths
        .iter()
        .map(|raw| (p(raw), seen(&root.join(raw))))
        .collect();
    let items: Vec<(&SyncPath, &LocalFile)> = synced.iter().map(|(p, l)| (p, l)).collect();
    let results = trash_many(&root, &items, &IgnoreRules::defaults()).unwrap();

    for ((path, _), result) in synced.iter().zip(&results) {
        let kept = result.as_ref().unwrap().as_ref().unwrap();
        assert!(
            kept.starts_with(root.join(".sf/trash").join(&today)),
            "{}",
            kept.display()
        );
        assert!(
            kept.ends_with(path.as_str()),
            "{path} went to {}",
            kept.display()
        );
        if !path.as_str().ends_with(['a', 'b', 'p']) {
            assert_eq!(std::fs::read(kept).unwrap(), path.as_str().as_bytes());
        }
    }
    assert!(!root.join("top").exists());
    let mut kept = trash_files(&root);
    kept.sort();
    let mut expected: Vec<Vec<u8>> = paths[..6].iter().map(|p| p.as_bytes().to_vec()).collect();
    expected.push(b"older".to_vec());
    expected.sort();
    assert_eq!(kept, expected);
}

/// The batch trashes three folders with their files: `whole` holds nothing
/// else but an ignored file, and moves in one rename (the folder in the
/// trash is the same inode); `extra` also holds a new file that is not
/// going, and `edited` a file written after the decision. Those two are
/// trashed file by file: the new file, the edited one and both folders
/// stay, and no byte is lost.
#[test]
fn a_folder_going_with_all_it_holds_moves_in_one_rename() {
    use std::os::unix::fs::MetadataExt;
    let (_dir, root) = folder();
    let mut paths = Vec::new();
    for d in ["whole", "extra", "edited"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
        for f in 0..3 {
            let path = format!("{d}/f{f}");
            std::fs::write(root.join(&path), &path).unwrap();
            paths.push(path);
        }
        paths.push(d.to_owned());
    }
    // Decision order: what is inside a folder before it.
    paths.sort_by(|a, b| b.cmp(a));
    let synced: Vec<(SyncPath, LocalFile)> = paths
        .iter()
        .map(|raw| (p(raw), seen(&root.join(raw))))
        .collect();
    std::fs::write(root.join("whole/.DS_Store"), "ignored").unwrap();
    std::fs::write(root.join("extra/new.txt"), "new").unwrap();
    std::fs::write(root.join("edited/f1"), "edited after the decision").unwrap();
    let whole_inode = std::fs::metadata(root.join("whole")).unwrap().ino();

    let items: Vec<(&SyncPath, &LocalFile)> = synced.iter().map(|(p, l)| (p, l)).collect();
    let results = trash_many(&root, &items, &IgnoreRules::defaults()).unwrap();
    let result_of = |raw: &str| {
        let at = paths.iter().position(|p| p == raw).unwrap();
        results[at].as_ref().map(|kept| kept.clone())
    };

    let moved = result_of("whole").unwrap().expect("whole moved");
    assert_eq!(std::fs::metadata(&moved).unwrap().ino(), whole_inode);
    for f in 0..3 {
        let kept = result_of(&format!("whole/f{f}")).unwrap().unwrap();
        assert_eq!(kept, moved.join(format!("f{f}")));
        assert_eq!(
            std::fs::read(kept).unwrap(),
            format!("whole/f{f}").as_bytes()
        );
    }
    assert_eq!(std::fs::read(moved.join(".DS_Store")).unwrap(), b"ignored");
    assert!(!root.join("whole").exists());

    assert_eq!(result_of("extra").unwrap(), None, "extra stays");
    assert_eq!(std::fs::read(root.join("extra/new.txt")).unwrap(), b"new");
    assert!(!root.join("extra/f0").exists());
    assert!(matches!(
        result_of("edited/f1"),
        Err(ApplyError::ChangedMeanwhile { .. })
    ));
    assert_eq!(
        std::fs::read(root.join("edited/f1")).unwrap(),
        b"edited after the decision"
    );
    assert_eq!(result_of("edited").unwrap(), None, "edited stays");
    let mut kept = trash_files(&root);
    kept.sort();
    let mut expected: Vec<Vec<u8>> = ["whole/f0", "whole/f1", "whole/f2", "extra/f0", "extra/f1"]
        .iter()
        .chain(&["extra/f2", "edited/f0", "edited/f2", "ignored"])
        .map(|s| s.as_bytes().to_vec())
        .collect();
    expected.sort();
    assert_eq!(kept, expected);
}

/// A folder whose first files an earlier batch trashed today: the rest
/// moves with the folder, in one rename, to a place of its own next to
/// them, and every file is kept under its path.
#[test]
fn a_folder_partly_trashed_by_an_earlier_batch_still_moves_whole() {
    use std::os::unix::fs::MetadataExt;
    let (_dir, root) = folder();
    std::fs::create_dir_all(root.join("part")).unwrap();
    let paths = ["part/f2", "part/f1", "part/f0", "part"];
    for path in &paths[..3] {
        std::fs::write(root.join(path), path).unwrap();
    }
    let synced: Vec<(SyncPath, LocalFile)> = paths
        .iter()
        .map(|raw| (p(raw), seen(&root.join(raw))))
        .collect();
    let inode = std::fs::metadata(root.join("part")).unwrap().ino();
    let items: Vec<(&SyncPath, &LocalFile)> = synced.iter().map(|(p, l)| (p, l)).collect();
    let rules = IgnoreRules::defaults();
    let first = trash_many(&root, &items[..2], &rules).unwrap();
    let second = trash_many(&root, &items[2..], &rules).unwrap();

    let today = root
        .join(".sf/trash")
        .join(time::OffsetDateTime::now_utc().date().to_string());
    for (raw, result) in paths[..3].iter().zip(first.iter().chain(&second)) {
        let kept = result.as_ref().unwrap().as_ref().unwrap();
        assert!(
            kept.starts_with(&today) && kept.ends_with(raw),
            "{}",
            kept.display()
        );
        assert_eq!(std::fs::read(kept).unwrap(), raw.as_bytes());
    }
    let moved = second[1].as_ref().unwrap().as_ref().unwrap();
    assert_eq!(
        std::fs::metadata(moved).unwrap().ino(),
        inode,
        "moved whole"
    );
    assert_ne!(moved, &today.join("part"), "next to the first files");
    assert!(!root.join("part").exists());
}
