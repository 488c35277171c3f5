//! Path rules and platform name rules: never panic on any string; a parsed
//! path re-parses (and round-trips through JSON) to itself; the reserved
//! name never parses; platform problems name a real segment; collisions are
//! symmetric. Newline-separated inputs also exercise collision detection.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sf_protocol::SyncPath;
use sf_protocol::path::is_reserved_name;
use sf_protocol::platform::{
    Collisions, Platform, collision_key, fold_case, name_problem, path_problem,
};

const PLATFORMS: [Platform; 3] = [Platform::Unix, Platform::Windows, Platform::MacOs];

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let _ = is_reserved_name(raw);
    for platform in PLATFORMS {
        if let Some(problem) = name_problem(raw, platform) {
            assert_eq!(problem.name, raw);
            assert!(problem.to_string().contains("rename it"));
        }
    }
    let key = fold_case(raw);
    assert_eq!(
        fold_case(&key),
        key,
        "fold_case is not idempotent on {raw:?}"
    );

    // Each line is a candidate path; newlines never occur inside a SyncPath.
    let paths: Vec<SyncPath> = raw
        .split('\n')
        .filter_map(|l| SyncPath::parse(l).ok())
        .collect();
    for path in &paths {
        assert_eq!(SyncPath::parse(path.as_str()).as_ref(), Ok(path));
        let json = serde_json::to_string(path).unwrap();
        assert_eq!(&serde_json::from_str::<SyncPath>(&json).unwrap(), path);
        let top = path.as_str().split('/').next().unwrap();
        assert!(
            !is_reserved_name(top),
            "{path:?} parsed with a reserved top level"
        );
        for ancestor in path.ancestors() {
            assert!(
                SyncPath::parse(ancestor).is_ok(),
                "ancestor {ancestor:?} of {path:?}"
            );
        }
        assert!(path.with_file_name(path.file_name()).as_ref() == Ok(path));
        for platform in PLATFORMS {
            if let Some(problem) = path_problem(path, platform) {
                assert!(path.as_str().split('/').any(|s| s == problem.name));
                assert_eq!(
                    platform,
                    Platform::Windows,
                    "only Windows refuses a SyncPath name"
                );
            }
        }
    }
    for platform in PLATFORMS {
        let found = Collisions::find(&paths, platform);
        for a in &paths {
            for b in &paths {
                if a != b
                    && collision_key(a.as_str(), platform) == collision_key(b.as_str(), platform)
                {
                    assert!(found.problem(a).is_some(), "{a:?} / {b:?} on {platform}");
                }
            }
            if let Some(problem) = found.problem(a) {
                let other = match &problem.rule {
                    sf_protocol::platform::NameRule::Collision { other } => other,
                    rule => panic!("unexpected rule {rule:?}"),
                };
                assert_ne!(other, &problem.name);
                assert_eq!(
                    collision_key(other, platform),
                    collision_key(&problem.name, platform)
                );
            }
        }
    }
});
