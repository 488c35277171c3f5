//! History (every version listed, an old one downloaded and restored as a
//! new version) and Conflicts (keep the copy, keep the original).

use serde_json::{Value, json};

use super::page::{Ui, js_str};

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
