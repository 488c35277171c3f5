//! Unicode normalisation of names: a file and a folder named in NFD (as
//! macOS hands them out) in agent A's folder reach the hub and agent B in
//! NFC, and A's own copies are renamed to NFC; no NFD name is left anywhere
//! and the hub never saw one. Once for names that are there when A starts
//! (its first full scan) and once for names created while A runs (file
//! events).

use std::path::Path;
use std::time::Duration;

use sf_e2e::*;

const CONVERGE: Duration = Duration::from_secs(60);

const CAFE_NFD: &str = "cafe\u{301}.txt";
const CAFE_NFC: &str = "caf\u{e9}.txt";
const MUNICH_NFD: &str = "Mu\u{308}nchen";
const MUNICH_NFC: &str = "M\u{fc}nchen";
const GREETING_NFD: &str = "Gru\u{308}sse.txt";
const GREETING_NFC: &str = "Gr\u{fc}sse.txt";

/// Whether `path` holds one of the combining marks the NFD names here are
/// made with (the NFC names hold none).
fn has_nfd_marks(path: &str) -> bool {
    path.contains(['\u{301}', '\u{308}'])
}

/// The NFD names in A's folder. They are made next to it and moved in
/// whole, as a user drops in a folder: a running agent renames an NFD
/// folder to NFC as soon as it sees it, so a file written into it a moment
/// later could find it gone.
fn write_nfd_names(a_dir: &Path) {
    let staging = a_dir.with_extension("staging");
    write_file(&staging.join(CAFE_NFD), "latte\n");
    write_file(
        &staging.join(MUNICH_NFD).join(GREETING_NFD),
        "Servus aus M\u{fc}nchen\n",
    );
    for name in [CAFE_NFD, MUNICH_NFD] {
        std::fs::rename(staging.join(name), a_dir.join(name)).unwrap();
    }
    std::fs::remove_dir(&staging).unwrap();
}

/// After convergence: every folder and the hub hold the NFC names with
/// their content, and no NFD name is anywhere.
async fn assert_nfc_everywhere(dirs: &[&Path], hub_url: &str) {
    let greeting = format!("{MUNICH_NFC}/{GREETING_NFC}");
    for dir in dirs {
        assert_eq!(read_file(&dir.join(CAFE_NFC)), b"latte\n");
        assert_eq!(
            read_file(&dir.join(&greeting)),
            "Servus aus M\u{fc}nchen\n".as_bytes()
        );
        let files = folder_files(dir);
        let dirs_here = folder_dirs(dir);
        let nfd: Vec<&String> = files
            .keys()
            .chain(dirs_here.iter())
            .filter(|p| has_nfd_marks(p))
            .collect();
        assert!(nfd.is_empty(), "NFD names in {}: {nfd:?}", dir.display());
        assert!(dirs_here.contains(MUNICH_NFC), "{dirs_here:?}");
        assert!(!dir.join(CAFE_NFD).exists());
        assert!(!dir.join(MUNICH_NFD).exists());
    }
    let index = hub_index(hub_url).await.unwrap();
    assert_eq!(index.get(CAFE_NFC), Some(&sha256("latte\n")), "{index:?}");
    assert_eq!(
        index.get(&greeting),
        Some(&sha256("Servus aus M\u{fc}nchen\n")),
        "{index:?}"
    );
    let nfd: Vec<&String> = index.keys().filter(|p| has_nfd_marks(p)).collect();
    assert!(nfd.is_empty(), "NFD names on the hub: {nfd:?}");
    // Not even for a moment: the hub has no version of an NFD path.
    for path in [
        CAFE_NFD.to_owned(),
        MUNICH_NFD.to_owned(),
        format!("{MUNICH_NFD}/{GREETING_NFD}"),
        format!("{MUNICH_NFC}/{GREETING_NFD}"),
    ] {
        let history = hub_history(hub_url, &path).await.unwrap();
        assert!(history.is_empty(), "the hub saw {path:?}: {history:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nfd_names_found_at_start_are_synced_as_nfc() {
    let sandbox = Sandbox::new("unicode-names-at-start");
    let hub = Hub::start(&sandbox.dir("hub")).await;
    let a_dir = sandbox.dir("a");
    let b_dir = sandbox.dir("b");
    let both = [a_dir.as_path(), b_dir.as_path()];

    sandbox.step("NFD names in A, then start A and B");
    write_nfd_names(&a_dir);
    let mut a = Agent::start(hub.url(), &a_dir, "a", &[]).await;
    let mut b = Agent::start(hub.url(), &b_dir, "b", &[]).await;
    wait_converged(&both, hub.url(), CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_nfc_everywhere(&both, hub.url()).await;
    assert!(
        a.log().contains("Unicode NFC"),
        "A logs the renames:\n{}",
        a.log()
    );

    sandbox.step("stop both");
    assert!(a.stop().await.success());
    assert!(b.stop().await.success());
    sandbox.step("done");
}

// A file event for an NFD path makes the engine scan the whole folder, which
// renames it: the names must arrive well before the periodic scan (60 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nfd_names_created_while_running_are_synced_as_nfc() {
    let sandbox = Sandbox::new("unicode-names");
    let TwoAgents {
        hub,
        a_dir,
        b_dir,
        mut a,
        mut b,
    } = TwoAgents::start(&sandbox, &[]).await;
    let both = [a_dir.as_path(), b_dir.as_path()];

    sandbox.step("NFD names in A while it runs");
    write_nfd_names(&a_dir);
    wait_converged(&both, hub.url(), CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_nfc_everywhere(&both, hub.url()).await;

    sandbox.step("stop both");
    assert!(a.stop().await.success());
    assert!(b.stop().await.success());
    sandbox.step("done");
}
