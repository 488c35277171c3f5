//! Live updates from a real agent without a reload, the Activity view, and
//! a hub that goes away (a message, then reconnection and catching up).

use std::time::Duration;

use serde_json::json;
use sf_e2e::{Agent, write_file};

use super::page::Ui;

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
