//! Browsing: folders and breadcrumbs, long and non-Latin names that must
//! not widen the page (desktop and phone width), `/` to search, search, and
//! a download whose bytes equal the hub's.

use serde_json::json;

use super::binary_bytes;
use super::page::Ui;

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
