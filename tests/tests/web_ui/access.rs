//! What the page may not do: a read-only token gets no write controls (and
//! the hub refuses its writes anyway), and a forged cross-site request (a
//! form POST and fetches with credentials, from a page on another port)
//! removes nothing.

use std::time::Duration;

use serde_json::{Value, json};
use sf_e2e::create_token;

use super::page::{Ui, js_str};
use super::views;

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
