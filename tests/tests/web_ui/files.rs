//! Changing files from the page: uploads by drag-and-drop and by the file
//! picker (an upload over a file changed meanwhile becomes a conflict
//! copy), new folder, rename, delete, and restore from Recently deleted.

use serde_json::Value;
use sf_e2e::write_file;

use super::binary_bytes;
use super::page::Ui;

/// A script run before the page's own: WebSocket connections the page
/// opens can be cut, and new ones held, so the page misses changes as a
/// page on a bad network would.
const HOLD_LIVE: &str = "(() => {
  const Real = window.WebSocket;
  window.__sfSockets = [];
  const Held = function (...args) {
    if (window.__sfHold) return { close() {}, readyState: 0 };
    const ws = new Real(...args);
    window.__sfSockets.push(ws);
    return ws;
  };
  Held.OPEN = Real.OPEN;
  Held.CONNECTING = Real.CONNECTING;
  window.WebSocket = Held;
})();";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_by_drop_and_picker_and_a_conflict_copy() {
    let Some(ui) = Ui::start("ui-upload").await else {
        return;
    };
    ui.browser.before_every_page(HOLD_LIVE).await;
    ui.put_dir("inbox", "laptop").await;
    ui.open_signed_in("#/browse/inbox").await;
    ui.wait("the empty folder", "shown('#listing .empty')")
        .await;

    ui.sandbox.step("drag and drop two files");
    let dropped = binary_bytes(300_000, 2);
    ui.drop_files(&[
        ("dropped.bin", &dropped[..]),
        ("second file.txt", b"second\n"),
    ])
    .await;
    ui.wait(
        "two uploads done",
        "$$('#upload-list li.done').length === 2",
    )
    .await;
    ui.wait_hub_bytes("inbox/dropped.bin", Some(&dropped)).await;
    ui.wait_hub_bytes("inbox/second file.txt", Some(b"second\n"))
        .await;
    ui.wait_row("dropped.bin").await;
    ui.wait_row("second file.txt").await;

    ui.sandbox.step("the file picker");
    let picked = ui.sandbox.dir("local").join("picked.txt");
    write_file(&picked, "picked with the keyboard\n");
    let input = ui
        .client()
        .find(fantoccini::Locator::Css("#file-input"))
        .await
        .unwrap();
    input
        .send_keys(picked.to_str().unwrap())
        .await
        .expect("choose a file");
    ui.wait(
        "three uploads done",
        "$$('#upload-list li.done').length === 3",
    )
    .await;
    ui.wait_hub_bytes("inbox/picked.txt", Some(b"picked with the keyboard\n"))
        .await;
    ui.wait_row("picked.txt").await;
    // The upload button opens the picker: it is a real, focusable button.
    ui.wait(
        "the upload button",
        "$('#upload-button').tagName === 'BUTTON'",
    )
    .await;

    ui.sandbox
        .step("an upload over a file changed meanwhile becomes a conflict copy");
    ui.put_file("inbox/shared.txt", b"version one\n", "laptop")
        .await;
    ui.wait_row("shared.txt").await; // a live update: the page saw version 1
    ui.js(
        "window.__sfHold = true; window.__sfSockets.forEach((s) => s.close()); return true;",
        vec![],
    )
    .await;
    ui.wait(
        "the page offline",
        "/reconnecting/.test($('#live').textContent)",
    )
    .await;
    ui.put_file(
        "inbox/shared.txt",
        b"version two, from the laptop\n",
        "laptop",
    )
    .await;
    ui.drop_files(&[("shared.txt", b"my version from the page\n")])
        .await;
    let note = ui
        .wait(
            "a conflict outcome",
            "$('#upload-list li.conflict') && $('#upload-list li.conflict').textContent",
        )
        .await;
    eprintln!("conflict upload: {note}");
    assert!(note.as_str().unwrap().contains("Conflict"), "{note}");
    ui.wait_hub_bytes("inbox/shared.txt", Some(b"version two, from the laptop\n"))
        .await;
    let conflicts = ui.get("/v1/conflicts").await;
    let copies: Vec<&Value> = conflicts["conflicts"].as_array().unwrap().iter().collect();
    assert_eq!(copies.len(), 1, "{conflicts}");
    let copy = copies[0]["copy"]["path"].as_str().unwrap();
    assert!(copy.starts_with("inbox/shared (conflict"), "{copy}");
    assert_eq!(
        ui.hub_bytes(copy).await.as_deref(),
        Some(&b"my version from the page\n"[..])
    );
    assert!(
        note.as_str()
            .unwrap()
            .contains(copy.rsplit('/').next().unwrap()),
        "{note}"
    );
    ui.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_folder_rename_delete_and_restore() {
    let Some(ui) = Ui::start("ui-tree").await else {
        return;
    };
    ui.put_file("draft.txt", b"the draft\n", "laptop").await;
    ui.put_file("old/inside.txt", b"inside\n", "laptop").await;
    ui.open_signed_in("").await;
    ui.wait_row("draft.txt").await;

    ui.sandbox.step("new folder");
    ui.click("#mkdir-button").await;
    ui.type_into("#dialog-input", "Projects 2026\u{E007}").await;
    ui.wait_row("Projects 2026").await;
    let listed = ui.get("/v1/list?dir=").await;
    assert!(
        listed["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "Projects 2026"
                && e["kind"] == "dir"
                && e["version"].as_u64() > Some(0)),
        "{listed}"
    );

    ui.sandbox.step("rename a file");
    ui.click("button[aria-label='Rename draft.txt']").await;
    ui.type_into("#dialog-input", "final.txt").await;
    ui.click("#dialog-ok").await;
    ui.wait_row("final.txt").await;
    ui.wait_no_row("draft.txt").await;
    ui.wait_hub_bytes("final.txt", Some(b"the draft\n")).await;
    assert_eq!(ui.hub_bytes("draft.txt").await, None);

    ui.sandbox
        .step("a rename onto an existing name is refused with a message");
    ui.click("button[aria-label='Rename final.txt']").await;
    ui.type_into("#dialog-input", "Projects 2026\u{E007}").await;
    let refusal = ui
        .wait(
            "a refusal in the dialog",
            "shown('#dialog-error') && $('#dialog-error').textContent",
        )
        .await;
    eprintln!("rename refused: {refusal}");
    ui.click("#dialog-cancel").await;
    ui.wait("the dialog closed", "!$('#dialog').open").await;

    ui.sandbox
        .step("delete a file and a folder: both say they are restorable");
    ui.click("button[aria-label='Delete final.txt']").await;
    let text = ui
        .wait(
            "the delete dialog",
            "$('#dialog').open && $('#dialog-text').textContent",
        )
        .await;
    assert!(text.as_str().unwrap().contains("restore"), "{text}");
    ui.click("#dialog-ok").await;
    ui.wait_no_row("final.txt").await;
    ui.wait_hub_bytes("final.txt", None).await;
    ui.wait(
        "a status naming Recently deleted",
        "/Recently deleted/.test($('#status').textContent)",
    )
    .await;
    ui.click("button[aria-label='Delete old']").await;
    ui.wait(
        "the delete dialog",
        "$('#dialog').open && /everything in it/.test($('#dialog-text').textContent)",
    )
    .await;
    ui.click("#dialog-ok").await;
    ui.wait_no_row("old").await;
    ui.wait_hub_bytes("old/inside.txt", None).await;

    ui.sandbox.step("restore both from Recently deleted");
    ui.click("nav a[href='#/deleted']").await;
    ui.wait("the deleted files", "texts('table.deleted .name').includes('final.txt') && texts('table.deleted .name').includes('old/inside.txt')").await;
    ui.click("button[aria-label='Restore final.txt']").await;
    ui.wait_hub_bytes("final.txt", Some(b"the draft\n")).await;
    ui.wait(
        "final.txt gone from the list",
        "!texts('table.deleted .name').includes('final.txt')",
    )
    .await;
    ui.click("button[aria-label='Restore old/inside.txt']")
        .await;
    ui.wait_hub_bytes("old/inside.txt", Some(b"inside\n")).await;
    ui.click("nav a[href='#/browse/']").await;
    ui.wait_row("final.txt").await;
    ui.wait_row("old").await;
    ui.finish().await;
}
