//! Signing in and out: a bad or unknown token is refused with a message, a
//! good one lands on the listing with an `HttpOnly` cookie; after sign-out
//! the hub refuses the old cookie; a revoked token ends the page's session.

use serde_json::json;
use sf_e2e::create_token;

use super::page::{Ui, js_str};

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
