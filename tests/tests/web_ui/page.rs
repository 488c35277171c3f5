//! One test's world: a real `sf-hub` (SQLite in the sandbox), a headless
//! browser, and helpers that act on the hub's page as a person does (open,
//! sign in, click, type, drop files) or check it (wait for what it shows),
//! plus the hub's API with the hub's write token, to set things up and to
//! check what the page did (in `hub_api.rs`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::{Value, json};
use sf_e2e::{Hub, Sandbox};

use super::browser::{Browser, WAIT};

#[path = "hub_api.rs"]
mod hub_api;

/// The sha256 of nothing: folders' and empty files' digest.
pub const EMPTY_SHA: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Helpers every condition given to [`Ui::wait`] may use.
const PRELUDE: &str = "const $ = (s) => document.querySelector(s); \
    const $$ = (s) => [...document.querySelectorAll(s)]; \
    const texts = (s) => $$(s).map((e) => e.textContent.trim()); \
    const shown = (s) => { const e = $(s); return !!e && !e.closest('[hidden]') && e.getClientRects().length > 0; }; \
    const names = () => texts('#listing tbody td.c-name .name');";

pub struct Ui {
    pub sandbox: Sandbox,
    pub hub: Hub,
    pub browser: Browser,
    http: reqwest::Client,
    test: String,
}

impl Ui {
    /// A hub and a desktop-sized browser; `None` when the browser is not
    /// installed (outside CI).
    pub async fn start(test: &str) -> Option<Ui> {
        Self::start_sized(test, 1280, 860).await
    }

    pub async fn start_sized(test: &str, width: u32, height: u32) -> Option<Ui> {
        let full_name = sf_test_support::skip::current_test();
        let browser = Browser::start(&full_name, width, height).await?;
        let sandbox = Sandbox::new(test);
        let hub = Hub::start(&sandbox.dir("hub")).await;
        let http = sf_test_support::bearer_client(&hub.token());
        Some(Ui {
            sandbox,
            hub,
            browser,
            http,
            test: test.to_owned(),
        })
    }

    pub fn client(&self) -> &fantoccini::Client {
        self.browser.client()
    }

    /// The page's address with `hash` (`#/browse/docs`, or "").
    pub fn page_url(&self, hash: &str) -> String {
        format!("{}/ui/{hash}", self.hub.url())
    }

    /// Loads the page at `hash` (a full load, as typing the address).
    pub async fn open(&self, hash: &str) {
        self.client()
            .goto(&self.page_url(hash))
            .await
            .unwrap_or_else(|e| panic!("load the page: {e}"));
    }

    /// Signs in on the sign-in form shown now.
    pub async fn sign_in(&self, token: &str) {
        self.wait("the sign-in form", "shown('#token')").await;
        let field = self.find("#token").await;
        field.clear().await.expect("clear the token field");
        field.send_keys(token).await.expect("type the token");
        self.click("#sign-in-form button[type=submit]").await;
    }

    /// Loads the page at `hash`, signs in with the hub's write token and
    /// waits for the view.
    pub async fn open_signed_in(&self, hash: &str) {
        self.open(hash).await;
        self.sign_in(&self.hub.token()).await;
        self.wait_view().await;
    }

    /// Waits until a view (not the sign-in form) has rendered its heading.
    pub async fn wait_view(&self) {
        self.wait(
            "a view of the signed-in page",
            "shown('#content h1') && !shown('#sign-in')",
        )
        .await;
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page,
    /// with [`PRELUDE`]'s helpers.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client()
            .execute(&format!("{PRELUDE}\n{script}"), args)
            .await
            .unwrap_or_else(|e| panic!("run a script in the page: {e}\n{script}"))
    }

    /// Polls the JavaScript expression `condition` (with [`PRELUDE`]'s
    /// helpers) until it is truthy; its value. On timeout, panics with
    /// what the page shows and saves a screenshot.
    pub async fn wait(&self, what: &str, condition: &str) -> Value {
        self.wait_for(what, condition, WAIT).await
    }

    pub async fn wait_for(&self, what: &str, condition: &str, timeout: Duration) -> Value {
        let script = format!("{PRELUDE} return ({condition});");
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.client().execute(&script, vec![]).await;
            match value {
                Ok(v) if is_truthy(&v) => return v,
                Ok(_) => {}
                // A page in the middle of loading has no context to run in.
                Err(e) if Instant::now() >= deadline => {
                    panic!("{}: waiting for {what}: {e}", self.test)
                }
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                let shot = self.sandbox.path().join("failure.png");
                if let Ok(png) = self.client().screenshot().await {
                    let _ = std::fs::write(&shot, png);
                }
                panic!(
                    "{}: gave up waiting for {what} ({condition}) after {timeout:?}\n\
                     the page shows:\n{}\n(screenshot: {})",
                    self.test,
                    self.describe().await,
                    shot.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The page's address, messages and visible text, for failures.
    pub async fn describe(&self) -> String {
        let script = "return [location.href, \
            'status: ' + document.getElementById('status').textContent, \
            'error: ' + (document.getElementById('error').hidden ? '' : document.getElementById('error-text').textContent), \
            document.body.innerText.slice(0, 3000)].join('\\n');";
        match self.client().execute(script, vec![]).await {
            Ok(Value::String(text)) => text,
            other => format!("(cannot read the page: {other:?})"),
        }
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.wait(
            &format!("the element {css}"),
            &format!("shown({})", js_str(css)),
        )
        .await;
        self.client()
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{}: find {css}: {e}", self.test))
    }

    /// Clicks the element `css` once it is shown.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("{}: click {css}: {e}", self.test));
    }

    /// The hub's session cookie in the browser (`sf_session_<hub id>`), if
    /// any.
    pub async fn session_cookie(&self) -> Option<fantoccini::cookies::Cookie<'static>> {
        let cookies = self
            .client()
            .get_all_cookies()
            .await
            .expect("read the browser's cookies");
        cookies
            .into_iter()
            .find(|c| c.name().starts_with("sf_session"))
    }

    /// Types into the element `css` (after clearing it).
    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        element.clear().await.expect("clear a field");
        element
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("{}: type into {css}: {e}", self.test));
    }

    /// The names in the folder listing shown now.
    pub async fn names(&self) -> Vec<String> {
        let v = self.js("return names();", vec![]).await;
        serde_json::from_value(v).expect("a list of names")
    }

    /// Waits until the listing shows `name`.
    pub async fn wait_row(&self, name: &str) {
        self.wait(
            &format!("the row {name}"),
            &format!("names().includes({})", js_str(name)),
        )
        .await;
    }

    /// Waits until the listing no longer shows `name`.
    pub async fn wait_no_row(&self, name: &str) {
        self.wait(
            &format!("no row {name}"),
            &format!("shown('#listing') && !names().includes({})", js_str(name)),
        )
        .await;
    }

    /// Drops files (name, bytes) onto the listing, as from a file
    /// manager: a `drop` event with a `DataTransfer` holding them.
    pub async fn drop_files(&self, files: &[(&str, &[u8])]) {
        let files: Vec<Value> = files
            .iter()
            .map(|(name, bytes)| json!({"name": name, "bytes": bytes}))
            .collect();
        self.find("#listing").await;
        self.js(
            "const files = arguments[0];
             const dt = new DataTransfer();
             for (const f of files) {
               dt.items.add(new File([new Uint8Array(f.bytes)], f.name, { lastModified: Date.now() }));
             }
             const zone = document.getElementById('listing');
             for (const type of ['dragenter', 'dragover', 'drop']) {
               zone.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
             }
             return true;",
            vec![Value::Array(files)],
        )
        .await;
    }

    /// Waits for a complete download named `name`; its bytes.
    pub async fn downloaded(&self, name: &str) -> Vec<u8> {
        let path = self.browser.downloads().join(name);
        let partial = self.browser.downloads().join(format!("{name}.crdownload"));
        let deadline = Instant::now() + WAIT;
        loop {
            if path.exists() && !partial.exists() {
                return std::fs::read(&path).expect("read a downloaded file");
            }
            assert!(
                Instant::now() < deadline,
                "{}: no download {name} in {} (has {:?})",
                self.test,
                self.browser.downloads().display(),
                std::fs::read_dir(self.browser.downloads())
                    .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
                    .unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A PNG of the browser's viewport, written to the sandbox as
    /// `<name>.png` (and, with `SF_UI_SCREENSHOTS=DIR`, to DIR); its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .client()
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("take a screenshot: {e}"));
        let path = self.sandbox.dir("screenshots").join(format!("{name}.png"));
        std::fs::write(&path, &png).expect("write a screenshot");
        if let Some(dir) = std::env::var_os("SF_UI_SCREENSHOTS") {
            let dir = PathBuf::from(dir);
            std::fs::create_dir_all(&dir).expect("make SF_UI_SCREENSHOTS");
            std::fs::write(dir.join(format!("{name}.png")), &png).expect("copy a screenshot");
        }
        eprintln!("screenshot {name}: {} bytes", png.len());
        path
    }

    /// Ends the browser session.
    pub async fn finish(self) {
        let Ui { browser, .. } = self;
        browser.close().await;
    }
}

/// `text` as a JavaScript string literal.
pub fn js_str(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

fn is_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}
