//! The hub's web page (`/ui/`) in a real browser: headless Chromium driven
//! through chromedriver, against the real `sf-hub` binary (and a real
//! agent where an agent's commit is the point). Each test starts its own
//! hub, chromedriver and browser, so tests run in parallel.
//!
//! - Sign-in and sign-out: a bad token is refused with a message, a good
//!   one lands on the listing; the session cookie is `HttpOnly`; after
//!   sign-out the cookie is gone, the hub refuses it, and a reload asks for
//!   a token again; revoking the token sends the page back to sign-in.
//! - Browsing (breadcrumbs, long and non-Latin names that must not widen
//!   the page, at desktop and phone width), `/` to search, search, and a
//!   download whose bytes equal the hub's.
//! - Uploads by drag-and-drop and by the file picker; an upload over a
//!   file changed meanwhile becomes a conflict copy.
//! - New folder, rename, delete, and restore from Recently deleted.
//! - History: every version listed, an old version downloaded and
//!   restored as a new version.
//! - Conflicts: keep the copy, keep the original.
//! - Live updates from a real agent without reload, the Activity view,
//!   and a hub that goes away (message, reconnection).
//! - A read-only token gets no write controls (and the hub refuses its
//!   writes anyway).
//! - A forged cross-site request (a form POST and a fetch with
//!   credentials, from a page on another port) removes nothing.
//! - A 10,000-entry folder: time to the first rows and to the end, printed.
//! - Screenshots of every view (also at phone size); with
//!   `SF_UI_SCREENSHOTS=DIR` they are copied to DIR (the README's are made
//!   with `SF_UI_SCREENSHOTS=$PWD/docs/screenshots` from the repository root).
//!
//! Needs `chromium` and `chromium-driver` (Debian); without them each test
//! says `skipped` loudly, and fails in CI. Screenshots of the Japanese
//! name want a CJK font (Debian `fonts-ipafont-gothic`); the tests do not.

#[path = "web_ui/browser.rs"]
mod browser;
#[path = "web_ui/page.rs"]
mod page;
#[path = "web_ui/views.rs"]
mod views;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sf_e2e::{Agent, create_token, write_file};

use page::{Ui, js_str};

/// Bytes that are not text, so a download or upload that mangles them shows.
fn binary_bytes(len: usize, seed: u64) -> Vec<u8> {
    sf_e2e::random_bytes(seed, len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_refuses_a_bad_token_and_sign_out_forgets_the_session() {
    let Some(ui) = Ui::start("ui-sign-in").await else {
        return;
    };
    ui.put_file("hello.txt", b"hello\n", "laptop").await;

    ui.sandbox.step("no session: the page asks for a token");
    ui.open("").await;
    ui.wait("the sign-in form", "shown('#token') && !shown('#content')")
        .await;
    assert_eq!(
        ui.find("#token")
            .await
            .attr("type")
            .await
            .unwrap()
            .as_deref(),
        Some("password"),
        "the token field hides what is typed"
    );

    ui.sandbox
        .step("an empty form and a bad token are refused with a message");
    ui.click("#sign-in-form button[type=submit]").await;
    ui.wait(
        "a message asking for a token",
        "shown('#sign-in-error') && /token/i.test($('#sign-in-error').textContent)",
    )
    .await;
    ui.sign_in("sft_this-is-not-a-token").await;
    let message = ui
        .wait(
            "a refusal message",
            "shown('#sign-in-error') && !/Paste an access token/.test($('#sign-in-error').textContent) && $('#sign-in-error').textContent",
        )
        .await;
    eprintln!("bad token: {message}");
    // A well-formed token the hub does not know.
    let unknown = sf_e2e::hub_token_command(&ui.hub, &["generate"]);
    ui.sign_in(unknown.trim()).await;
    let message = ui
        .wait(
            "a refusal of an unknown token",
            &format!(
                "shown('#sign-in-error') && $('#sign-in-error').textContent !== {} && $('#sign-in-error').textContent",
                js_str(message.as_str().unwrap())
            ),
        )
        .await;
    eprintln!("unknown token: {message}");
    assert!(
        !ui.js("return document.getElementById('sign-in').hidden;", vec![])
            .await
            .as_bool()
            .unwrap()
    );
    assert!(
        ui.session_cookie().await.is_none(),
        "no session cookie for a bad token"
    );

    ui.sandbox.step("the good token lands on the listing");
    ui.sign_in(&ui.hub.token()).await;
    ui.wait_view().await;
    ui.wait_row("hello.txt").await;
    assert_eq!(
        ui.js("return document.getElementById('token').value;", vec![])
            .await,
        json!(""),
        "the token is not left in the form"
    );
    let cookie = ui
        .session_cookie()
        .await
        .expect("a session cookie after sign-in");
    assert_eq!(
        cookie.http_only(),
        Some(true),
        "scripts cannot read the cookie"
    );
    assert!(
        !ui.js("return document.cookie;", vec![])
            .await
            .as_str()
            .unwrap()
            .contains("sf_session"),
        "document.cookie does not show the session"
    );
    ui.wait("the token's name", "/default/.test($('#who').textContent)")
        .await;

    ui.sandbox.step("a reload keeps the session");
    ui.client().refresh().await.expect("reload");
    ui.wait_view().await;
    ui.wait_row("hello.txt").await;

    ui.sandbox
        .step("sign-out: the cookie is gone, the hub forgets the session");
    let old_cookie = format!("{}={}", cookie.name(), cookie.value());
    ui.click("#sign-out").await;
    ui.wait(
        "the sign-in form again",
        "shown('#token') && !shown('#content')",
    )
    .await;
    assert!(ui.session_cookie().await.is_none(), "the cookie is cleared");
    let answer = reqwest::Client::new()
        .get(format!("{}/ui/session", ui.hub.url()))
        .header("Cookie", &old_cookie)
        .send()
        .await
        .expect("GET /ui/session");
    assert_eq!(answer.status(), 401, "the old cookie no longer works");
    ui.client().refresh().await.expect("reload");
    ui.wait(
        "the sign-in form after a reload",
        "shown('#token') && !shown('#content')",
    )
    .await;

    ui.sandbox
        .step("a revoked token ends the page's session: it asks for a token again");
    let temp = create_token(&ui.hub, "temp", false);
    ui.sign_in(&temp).await;
    ui.wait_view().await;
    ui.wait("live updates on", "$('#live').classList.contains('up')")
        .await;
    sf_e2e::hub_token_command(&ui.hub, &["revoke", "temp"]);
    let message = ui
        .wait(
            "the sign-in form with a message",
            "shown('#token') && !shown('#content') && $('#sign-in-error').textContent",
        )
        .await;
    eprintln!("after revocation: {message}");
    ui.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_search_and_download() {
    let Some(ui) = Ui::start("ui-browse").await else {
        return;
    };
    let q1 = binary_bytes(70_000, 1);
    let long_name = format!("{}.txt", "long-name-".repeat(20).trim_end_matches('-'));
    assert!(long_name.len() > 190);
    ui.put_file("docs/reports/q1-report.bin", &q1, "laptop")
        .await;
    ui.put_file("docs/reports/q2-report.txt", b"q2\n", "desk")
        .await;
    ui.put_file("docs/readme.md", b"# docs\n", "laptop").await;
    ui.put_file(&format!("docs/{long_name}"), b"long\n", "laptop")
        .await;
    ui.put_file(
        "docs/会議の議事録と今後の予定について（二〇二六年十一月版）.txt",
        b"ja\n",
        "laptop",
    )
    .await;
    ui.put_file(
        "docs/تقرير المبيعات السنوي للفرع الرئيسي.txt",
        b"ar\n",
        "laptop",
    )
    .await;
    ui.put_file("notes.txt", b"notes\n", "phone").await;

    ui.open_signed_in("").await;
    ui.wait_row("docs").await;
    ui.wait_row("notes.txt").await;

    ui.sandbox
        .step("into a folder and back through the breadcrumbs");
    ui.click("#listing a[href='#/browse/docs']").await;
    ui.wait("the docs folder", "$('#content h1').textContent === 'docs'")
        .await;
    ui.wait_row(&long_name).await;
    ui.wait_row("reports").await;
    assert!(ui.names().await.iter().any(|n| n.starts_with("تقرير")));
    ui.click("#listing a[href='#/browse/docs/reports']").await;
    ui.wait_row("q1-report.bin").await;
    let crumbs = ui
        .js(
            "return [...document.querySelectorAll('.crumbs li')].map(l => l.textContent);",
            vec![],
        )
        .await;
    assert_eq!(crumbs, json!(["All files", "docs", "reports"]));
    ui.click(".crumbs a[href='#/browse/docs']").await;
    ui.wait_row("readme.md").await;

    ui.sandbox
        .step("long and non-Latin names wrap inside the page");
    let overflow = "document.documentElement.scrollWidth <= window.innerWidth + 1";
    assert_eq!(
        ui.js(&format!("return {overflow};"), vec![]).await,
        json!(true),
        "desktop width"
    );
    ui.browser.emulate_phone(Some((360, 740))).await;
    ui.wait("the page within 360 px", overflow).await;
    ui.browser.emulate_phone(None).await;

    ui.sandbox
        .step("`/` focuses the search box; a search finds paths");
    ui.client()
        .find(fantoccini::Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("/")
        .await
        .unwrap();
    ui.wait(
        "focus in the search box",
        "document.activeElement === $('#search-input')",
    )
    .await;
    ui.client()
        .active_element()
        .await
        .unwrap()
        .send_keys("REPORT\u{E007}")
        .await
        .unwrap();
    let found = ui
        .wait(
            "search results",
            "location.hash === '#/search/REPORT' && texts('table.search .name').length === 2 \
             && texts('table.search .name')",
        )
        .await;
    assert_eq!(
        found,
        json!(["docs/reports/q1-report.bin", "docs/reports/q2-report.txt"])
    );
    ui.type_into("#search-input", "no such thing\u{E007}").await;
    ui.wait(
        "no results",
        "/Nothing matches/.test($('#content').textContent)",
    )
    .await;

    ui.sandbox.step("download: the bytes equal the hub's");
    ui.open("#/browse/docs/reports").await;
    ui.wait_row("q1-report.bin").await;
    ui.click("#listing a[download='q1-report.bin']").await;
    let got = ui.downloaded("q1-report.bin").await;
    assert_eq!(
        got,
        ui.hub_bytes("docs/reports/q1-report.bin").await.unwrap()
    );
    assert_eq!(got, q1);
    ui.finish().await;
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_lists_every_version_and_restores_one() {
    let Some(ui) = Ui::start("ui-history").await else {
        return;
    };
    ui.put_file("essay.txt", b"first draft\n", "laptop").await;
    ui.put_file("essay.txt", b"second draft, longer\n", "desk")
        .await;
    ui.put_file("essay.txt", b"third\n", "phone").await;
    ui.open_signed_in("").await;
    ui.click("a[aria-label='History of essay.txt']").await;
    ui.wait(
        "three versions",
        "$$('table.history tbody tr').length === 3",
    )
    .await;
    let rows = ui.js("return [...document.querySelectorAll('table.history tbody tr')].map(r => r.innerText.replace(/\\s+/g, ' '));", vec![]).await;
    eprintln!("history rows: {rows}");
    let rows: Vec<String> = serde_json::from_value(rows).unwrap();
    assert!(
        rows[0].starts_with("3") && rows[0].contains("current") && rows[0].contains("phone"),
        "{rows:?}"
    );
    assert!(
        rows[1].contains("21 B") && rows[1].contains("desk"),
        "{rows:?}"
    );
    assert!(
        rows[2].starts_with("1")
            && rows[2].contains("12 B")
            && rows[2].contains("laptop")
            && rows[2].contains("Created"),
        "{rows:?}"
    );

    ui.sandbox.step("download an old version");
    ui.click("a[aria-label='Download version 1']").await;
    assert_eq!(ui.downloaded("essay.txt").await, b"first draft\n");

    ui.sandbox
        .step("restore version 1: a new version with the old bytes");
    ui.click("button[aria-label='Restore version 1']").await;
    ui.wait("four versions", "$$('table.history tbody tr').length === 4")
        .await;
    ui.wait_hub_bytes("essay.txt", Some(b"first draft\n")).await;
    assert_eq!(ui.version("essay.txt").await, 4);
    ui.wait("version 4 current", "$('table.history tbody tr').classList.contains('current') && $('table.history tbody tr td').textContent.startsWith('4')").await;
    ui.wait(
        "a status",
        "/Restored version 1/.test($('#status').textContent)",
    )
    .await;
    ui.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_keep_the_copy_or_the_original() {
    let Some(ui) = Ui::start("ui-conflicts").await else {
        return;
    };
    for (name, theirs) in [
        ("a.txt", "a from the laptop\n"),
        ("b.txt", "b from the laptop\n"),
    ] {
        ui.put_file(name, b"base\n", "laptop").await;
        ui.put_file(name, theirs.as_bytes(), "laptop").await;
        let answer = ui
            .upload(
                name,
                format!("{name}: the other copy, longer\n").as_bytes(),
                1,
            )
            .await;
        assert_eq!(answer["conflict"], json!(true), "{answer}");
    }
    let copy_of = |list: &Value, original: &str| -> String {
        list["conflicts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["original"]["path"] == original)
            .map(|c| c["copy"]["path"].as_str().unwrap().to_owned())
            .unwrap_or_else(|| panic!("no conflict for {original}: {list}"))
    };
    let list = ui.get("/v1/conflicts").await;
    let (copy_a, copy_b) = (copy_of(&list, "a.txt"), copy_of(&list, "b.txt"));

    ui.open_signed_in("#/conflicts").await;
    ui.wait("two conflicts", "$$('li.conflict').length === 2")
        .await;
    let first = ui
        .js(
            "return document.querySelector('li.conflict').innerText;",
            vec![],
        )
        .await;
    eprintln!("a conflict: {first}");
    let first = first.as_str().unwrap();
    assert!(
        first.contains("18 B") && first.contains("30 B"),
        "both sizes shown side by side: {first}"
    );

    ui.sandbox.step("keep the copy of a.txt");
    ui.click(&format!(
        "button[aria-label={}]",
        js_str(&format!("Keep the copy {copy_a}"))
    ))
    .await;
    ui.wait_hub_bytes("a.txt", Some(b"a.txt: the other copy, longer\n"))
        .await;
    ui.wait_hub_bytes(&copy_a, None).await;
    ui.wait("one conflict left", "$$('li.conflict').length === 1")
        .await;

    ui.sandbox.step("keep the original b.txt");
    ui.click("button[aria-label='Keep the original b.txt']")
        .await;
    ui.wait_hub_bytes(&copy_b, None).await;
    assert_eq!(
        ui.hub_bytes("b.txt").await.as_deref(),
        Some(&b"b from the laptop\n"[..])
    );
    ui.wait(
        "no conflicts",
        "/No conflicts/.test($('#content').textContent)",
    )
    .await;
    assert_eq!(ui.get("/v1/conflicts").await["conflicts"], json!([]));
    ui.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_updates_activity_and_a_hub_that_goes_away() {
    let Some(mut ui) = Ui::start("ui-live").await else {
        return;
    };
    let folder = ui.sandbox.dir("laptop");
    let agent = Agent::start(ui.hub.url(), &folder, "laptop", &[]).await;
    ui.open_signed_in("").await;
    ui.wait("live updates on", "$('#live').classList.contains('up')")
        .await;
    ui.js("window.__sfNoReload = 42; return true;", vec![])
        .await;

    ui.sandbox
        .step("an agent's commit appears without a reload");
    write_file(&folder.join("from-laptop.txt"), "made on the laptop\n");
    ui.wait_row("from-laptop.txt").await;
    let origin = ui.js("return [...document.querySelectorAll('#listing tbody tr')].find(r => r.innerText.includes('from-laptop.txt')).querySelector('.c-origin').textContent;", vec![]).await;
    assert_eq!(origin, json!("laptop"));
    write_file(&folder.join("sub/deeper.txt"), "deeper\n");
    ui.wait_row("sub").await;
    ui.sandbox
        .step("a direct API commit and an agent's delete too");
    ui.put_file("from-api.txt", b"api\n", "script").await;
    ui.wait_row("from-api.txt").await;
    std::fs::remove_file(folder.join("from-laptop.txt")).unwrap();
    ui.wait_no_row("from-laptop.txt").await;
    assert_eq!(
        ui.js("return window.__sfNoReload;", vec![]).await,
        json!(42),
        "the page was not reloaded"
    );

    ui.sandbox
        .step("Activity lists the agent and the recent changes");
    ui.click("nav a[href='#/activity']").await;
    // By the name it sends in `X-SF-Agent`.
    ui.wait(
        "the agent connected",
        "texts('table.agents td.c-name').includes('laptop')",
    )
    .await;
    ui.wait("recent changes", "texts('table.recent .name').includes('from-api.txt') && texts('table.recent .name').includes('sub/deeper.txt')").await;
    ui.put_file("later.txt", b"later\n", "script").await;
    ui.wait(
        "a new change in Activity",
        "texts('table.recent .name').includes('later.txt')",
    )
    .await;

    ui.sandbox
        .step("the hub goes away: live updates stop, actions say the hub cannot be reached");
    drop(agent);
    ui.hub.kill();
    ui.wait("live updates off", "!$('#live').classList.contains('up')")
        .await;
    ui.click("nav a[href='#/deleted']").await;
    let message = ui
        .wait(
            "an unreachable message",
            "shown('#error') && $('#error-text').textContent",
        )
        .await;
    assert!(
        message.as_str().unwrap().contains("cannot be reached"),
        "{message}"
    );

    ui.sandbox
        .step("the hub is back: the page reconnects and catches up");
    ui.hub.restart().await;
    ui.put_file("while-away.txt", b"x\n", "script").await;
    ui.wait_for(
        "live updates on again",
        "$('#live').classList.contains('up')",
        Duration::from_secs(45),
    )
    .await;
    ui.click("nav a[href='#/browse/']").await;
    ui.wait_row("while-away.txt").await;
    ui.put_file("after-reconnect.txt", b"y\n", "script").await;
    ui.wait_row("after-reconnect.txt").await;
    ui.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_token_gets_a_read_only_page() {
    let Some(ui) = Ui::start("ui-read-only").await else {
        return;
    };
    ui.put_file("shared/report.txt", b"v1\n", "laptop").await;
    ui.put_file("shared/report.txt", b"v2\n", "laptop").await;
    ui.put_file("gone.txt", b"gone\n", "laptop").await;
    ui.post("/v1/remove", json!({"path": "gone.txt"})).await;
    ui.upload("shared/report.txt", b"conflicting\n", 1).await;
    let viewer = create_token(&ui.hub, "viewer", true);

    ui.open("#/browse/shared").await;
    ui.sign_in(&viewer).await;
    ui.wait_view().await;
    ui.wait_row("report.txt").await;
    ui.wait(
        "the read-only badge",
        "/read-only/.test($('#who').textContent)",
    )
    .await;
    let write_controls = "$$('#upload-button, #mkdir-button, #file-input, button.danger, button[aria-label^=Rename], button[aria-label^=Restore], button[aria-label^=Keep]').length";
    assert_eq!(
        ui.js(&format!("return {write_controls};"), vec![]).await,
        json!(0),
        "listing"
    );
    assert!(
        ui.js(
            "return document.querySelectorAll('#listing a[download]').length;",
            vec![]
        )
        .await
        .as_u64()
            > Some(0),
        "downloads stay"
    );

    for (view, ready) in [
        (
            "#/history/shared/report.txt",
            "$$('table.history tbody tr').length === 2",
        ),
        (
            "#/deleted",
            "texts('table.deleted .name').includes('gone.txt')",
        ),
        ("#/conflicts", "$$('li.conflict').length === 1"),
    ] {
        ui.client().goto(&ui.page_url(view)).await.unwrap();
        ui.wait(view, ready).await;
        assert_eq!(
            ui.js(&format!("return {write_controls};"), vec![]).await,
            json!(0),
            "{view}"
        );
    }

    ui.sandbox
        .step("a drop uploads nothing; the hub refuses the session's writes anyway");
    ui.client()
        .goto(&ui.page_url("#/browse/shared"))
        .await
        .unwrap();
    ui.wait_row("report.txt").await;
    ui.drop_files(&[("sneaky.txt", b"no\n")]).await;
    let status = ui
        .client()
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch('/ui/session').then((r) => r.json()).then((s) =>
               fetch('/v1/remove', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-SF-CSRF': s.csrf },
                 body: JSON.stringify({ path: 'shared/report.txt' }) }))
               .then((r) => done(r.status), (e) => done(String(e)));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(status, json!(403), "a read-only session cannot remove");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ui.hub_bytes("shared/sneaky.txt").await, None);
    assert_eq!(
        ui.hub_bytes("shared/report.txt").await.as_deref(),
        Some(&b"v2\n"[..])
    );
    ui.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_cross_site_request_removes_nothing() {
    let Some(ui) = Ui::start("ui-csrf").await else {
        return;
    };
    ui.put_file("victim.txt", b"keep me\n", "laptop").await;
    ui.put_file("bait.txt", b"bait\n", "laptop").await;
    ui.open_signed_in("").await;
    ui.wait_row("victim.txt").await;

    ui.sandbox
        .step("a page on another port posts a form and a fetch to /v1/remove");
    let hub = ui.hub.url().to_owned();
    let attack = format!(
        r#"<!doctype html><html><head><title>win a prize</title></head><body>
<form id="f" method="POST" action="{hub}/v1/remove" enctype="text/plain">
<input type="hidden" name='{{"path":"victim.txt","x":"' value='"}}'>
</form>
<script>
const body = JSON.stringify({{ path: "victim.txt" }});
Promise.allSettled([
  fetch("{hub}/v1/remove", {{ method: "POST", credentials: "include", mode: "no-cors", headers: {{ "Content-Type": "text/plain" }}, body }}),
  fetch("{hub}/v1/remove", {{ method: "POST", credentials: "include", headers: {{ "Content-Type": "application/json" }}, body }}),
  fetch("{hub}/v1/move", {{ method: "POST", credentials: "include", mode: "no-cors", body: JSON.stringify({{ from: "victim.txt", to: "stolen.txt" }}) }}),
]).then(() => {{ document.title = "fetches sent"; setTimeout(() => document.getElementById("f").submit(), 200); }});
</script></body></html>"#
    );
    let attacker = views::serve_page(attack).await;
    eprintln!("attacker page at {attacker}");
    ui.client()
        .goto(&attacker)
        .await
        .expect("open the attacker's page");
    // The form's submission navigates to the hub's answer.
    let landed = ui
        .wait(
            "the forged form's answer",
            &format!(
                "location.href.startsWith({}) && document.body.innerText",
                js_str(&format!("{hub}/v1/remove"))
            ),
        )
        .await;
    eprintln!("the hub answered the forged form: {landed}");
    assert_eq!(
        ui.hub_bytes("victim.txt").await.as_deref(),
        Some(&b"keep me\n"[..])
    );
    assert_eq!(ui.hub_bytes("stolen.txt").await, None);

    ui.sandbox
        .step("the cookie alone is refused; with the page's secret it works");
    let cookie = ui.session_cookie().await.expect("still signed in");
    let cookie = format!("{}={}", cookie.name(), cookie.value());
    let http = reqwest::Client::new();
    let forged = http
        .post(format!("{hub}/v1/remove"))
        .header("Cookie", &cookie)
        .json(&json!({"path": "victim.txt"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "cookie without X-SF-CSRF");
    let session: Value = http
        .get(format!("{hub}/ui/session"))
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let allowed = http
        .post(format!("{hub}/v1/remove"))
        .header("Cookie", &cookie)
        .header("X-SF-CSRF", session["csrf"].as_str().unwrap())
        .json(&json!({"path": "bait.txt"}))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200, "the same session with its secret");
    assert_eq!(ui.hub_bytes("bait.txt").await, None);
    assert_eq!(
        ui.hub_bytes("victim.txt").await.as_deref(),
        Some(&b"keep me\n"[..])
    );
    ui.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_of_ten_thousand_entries() {
    let Some(ui) = Ui::start("ui-10k").await else {
        return;
    };
    const N: usize = 10_000;
    let started = Instant::now();
    for batch in 0..N / 1000 {
        let ops: Vec<Value> = (batch * 1000..(batch + 1) * 1000)
            .map(|i| {
                json!({"op": "commit", "path": format!("big/file-{i:05}.txt"), "kind": "file", "base_version": 0,
                       "sha256": page::EMPTY_SHA, "size": 0, "chunks": [], "origin": "seed"})
            })
            .collect();
        let answer = ui.post("/v1/batch", json!({"ops": ops})).await;
        assert!(
            answer["outcomes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|o| o["outcome"] == "done")
        );
    }
    ui.sandbox
        .step(&format!("{N} files committed in {:.1?}", started.elapsed()));
    ui.open_signed_in("").await;
    ui.wait_row("big").await;

    ui.sandbox
        .step("open the folder (a full page load, signed in): the first rows");
    ui.client().goto("about:blank").await.unwrap();
    let load = Instant::now();
    ui.client()
        .goto(&ui.page_url("#/browse/big"))
        .await
        .unwrap();
    ui.wait("the first rows", "names().includes('file-00000.txt')")
        .await;
    let first_rows = load.elapsed();
    let rows_at_first = ui.names().await.len();
    assert!(
        rows_at_first < 2_000,
        "{rows_at_first} rows loaded at first: not paged"
    );
    // The button does what scrolling does, for keyboards (and browsers
    // without IntersectionObserver).
    ui.wait(
        "the Load more button",
        "shown('#load-more') && !$('#load-more').disabled",
    )
    .await;
    let before_click = ui.names().await.len();
    // Pressed where it is (WebDriver's click would scroll it into view,
    // and the scroll alone loads the next page).
    ui.js("$('#load-more').click(); return true;", vec![]).await;
    ui.wait(
        "a page more after Load more",
        &format!("names().length >= {}", before_click + 200),
    )
    .await;

    ui.browser.cdp("Performance.enable", json!({})).await;
    let before = ui.browser.cdp("Performance.getMetrics", json!({})).await;
    ui.sandbox.step("scroll to the end");
    // In the page, as a reader holding End would: jump to the bottom each
    // time rows arrive (the observer, not a button, loads the pages).
    let scroll = Instant::now();
    let in_page = ui
        .client()
        .execute_async(
            "const [n, done] = [arguments[0], arguments[arguments.length - 1]];
             const t0 = performance.now();
             const rows = () => document.querySelectorAll('#listing tbody tr').length;
             const bottom = () => window.scrollTo(0, document.documentElement.scrollHeight);
             const check = () => { if (rows() >= n) { observer.disconnect(); clearInterval(timer); done(performance.now() - t0); } else bottom(); };
             const observer = new MutationObserver(check);
             observer.observe(document.querySelector('#listing tbody'), { childList: true });
             const timer = setInterval(check, 250);
             check();",
            vec![json!(N)],
        )
        .await
        .expect("scroll to the end");
    assert_eq!(
        ui.js(
            "return document.querySelectorAll('#listing tbody tr').length;",
            vec![]
        )
        .await,
        json!(N)
    );
    eprintln!("in the page: {in_page} ms to the end");
    let after = ui.browser.cdp("Performance.getMetrics", json!({})).await;
    let metric = |m: &Value, name: &str| -> f64 {
        m["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name)
            .and_then(|x| x["value"].as_f64())
            .unwrap_or(0.0)
    };
    let spent: Vec<String> = [
        "ScriptDuration",
        "LayoutDuration",
        "RecalcStyleDuration",
        "TaskDuration",
    ]
    .iter()
    .map(|k| {
        format!(
            "{k} {:.0} ms",
            (metric(&after, k) - metric(&before, k)) * 1e3
        )
    })
    .collect();
    eprintln!("browser time while scrolling: {}", spent.join(", "));
    let to_end = scroll.elapsed();
    ui.wait("no more pages", "!shown('#load-more')").await;
    let names = ui.names().await;
    assert_eq!(names.len(), N);
    assert_eq!(names.last().map(String::as_str), Some("file-09999.txt"));
    let sorted = names.windows(2).all(|w| w[0] < w[1]);
    assert!(sorted, "rows in order");

    ui.sandbox
        .step("the page stays usable: a live change lands, search answers");
    let live = Instant::now();
    ui.put_file("big/file-05000.txt", b"changed\n", "laptop")
        .await;
    ui.wait("the changed row", "[...document.querySelectorAll('#listing tbody tr')].some(r => r.innerText.includes('file-05000.txt') && r.querySelector('.c-version').textContent === '2')").await;
    let live_change = live.elapsed();
    // Timed in the page, from the search's submission to its results
    // drawn (typing through WebDriver is slow with 10,000 rows to repaint).
    ui.find("#search-input")
        .await
        .send_keys("file-0999")
        .await
        .unwrap();
    let search_ms = ui
        .client()
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const t0 = performance.now();
             const check = () => document.querySelectorAll('table.search .name').length === 10
               ? done(performance.now() - t0) : requestAnimationFrame(check);
             document.getElementById('search-form').requestSubmit();
             check();",
            vec![],
        )
        .await
        .expect("search");
    let search_time = Duration::from_secs_f64(search_ms.as_f64().unwrap() / 1e3);
    let nav = ui
        .js(
            "const n = performance.getEntriesByType('navigation')[0];
             const lists = performance.getEntriesByType('resource').filter((r) => r.name.includes('/v1/list?'));
             const ms = lists.map((r) => r.duration);
             return { dom_content_loaded_ms: Math.round(n.domContentLoadedEventEnd),
                      list_requests: ms.length,
                      list_request_ms_mean: Math.round(ms.reduce((a, b) => a + b, 0) / ms.length),
                      list_request_ms_max: Math.round(Math.max(...ms)),
                      search_request_ms: Math.round(performance.getEntriesByType('resource').filter((r) => r.name.includes('/v1/search?')).map((r) => r.duration).pop()),
                      js_heap_mib: performance.memory ? Math.round(performance.memory.usedJSHeapSize / 1048576) : null };",
            vec![],
        )
        .await;
    eprintln!(
        "\n==== 10,000-entry folder ====\n\
         navigation to first rows visible: {:.0} ms (rows loaded then: {rows_at_first})\n\
         scrolling to the end (all {N} rows): {:.0} ms\n\
         a live change reaching its row after that: {:.0} ms\n\
         a search from the box to its 10 results: {:.0} ms\n\
         page: {nav}\n",
        first_rows.as_secs_f64() * 1e3,
        to_end.as_secs_f64() * 1e3,
        live_change.as_secs_f64() * 1e3,
        search_time.as_secs_f64() * 1e3,
    );
    ui.finish().await;
}
