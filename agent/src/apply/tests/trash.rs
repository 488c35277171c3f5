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
