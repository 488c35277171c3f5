//! Headless Chromium driven through chromedriver (WebDriver, with the
//! `fantoccini` crate): one chromedriver per test on a free port, in a
//! process group of its own so that the browser it starts dies with it,
//! also when the test panics; a private profile and download folder.
//!
//! Binaries: `SF_CHROMEDRIVER_BIN` and `SF_CHROMIUM_BIN`, else
//! `chromedriver` on `PATH` and `/usr/bin/chromium` (Debian's
//! `chromium-driver` and `chromium`). Missing: a loud skip, a failure in CI.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};
use sf_test_support::{LogFile, Process, free_port};

/// How long a wait in these tests may take before it is a failure.
pub const WAIT: Duration = Duration::from_secs(20);

/// A headless Chromium session.
pub struct Browser {
    client: Option<Client>,
    driver: Option<Process>,
    group: u32,
    log: LogFile,
    downloads: PathBuf,
    _home: tempfile::TempDir,
}

fn find(env: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path));
    }
    for name in names {
        let candidate = Path::new(name);
        if candidate.is_absolute() {
            if candidate.exists() {
                return Some(candidate.to_path_buf());
            }
            continue;
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        for dir in std::env::split_paths(&path) {
            if dir.join(name).is_file() {
                return Some(dir.join(name));
            }
        }
    }
    None
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|status| {
        status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|rest| rest.split_whitespace().nth(1))
            == Some("0")
    })
}

/// A Chrome DevTools Protocol command through chromedriver's
/// `goog/cdp/execute` (downloads, a phone-sized screen, scripts that run
/// before the page's own).
#[derive(Debug)]
struct Cdp {
    cmd: String,
    params: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.expect("a CDP command needs a session");
        base_url.join(&format!("session/{session}/goog/cdp/execute"))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({"cmd": self.cmd, "params": self.params});
        (http::Method::POST, Some(body.to_string()))
    }
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a window of
    /// `width`×`height`; `None` (after a loud skip line) when they are not
    /// installed outside CI.
    pub async fn start(test: &str, width: u32, height: u32) -> Option<Browser> {
        let driver_bin = find("SF_CHROMEDRIVER_BIN", &["chromedriver"]);
        let chromium_bin = find(
            "SF_CHROMIUM_BIN",
            &["/usr/bin/chromium", "chromium", "chromium-browser"],
        );
        let (Some(driver_bin), Some(chromium_bin)) = (driver_bin, chromium_bin) else {
            sf_test_support::unavailable(
                test,
                "Chromium and chromedriver are not installed",
                "install them (Debian: `apt-get install chromium chromium-driver`), or set \
                 SF_CHROMIUM_BIN and SF_CHROMEDRIVER_BIN",
            );
            return None;
        };
        let home = tempfile::Builder::new()
            .prefix("sf-e2e-browser-")
            .tempdir()
            .expect("a folder for the browser");
        let downloads = home.path().join("downloads");
        let profile = home.path().join("profile");
        std::fs::create_dir_all(&downloads).expect("make the download folder");
        let log = LogFile::new(home.path().join("chromedriver.log"));

        let port = free_port();
        let (stdout, stderr) = log.stdio();
        let mut command = Command::new(&driver_bin);
        command
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        // Its own process group: the browser it starts is in it too, and
        // the whole group is killed on drop.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let driver = Process::spawn(&mut command)
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver_bin.display()));
        let group = driver.pid().expect("a running chromedriver");
        let mut browser = Browser {
            client: None,
            driver: Some(driver),
            group,
            log,
            downloads: downloads.clone(),
            _home: home,
        };
        let webdriver = format!("http://127.0.0.1:{port}");
        browser.wait_driver(&webdriver).await;

        let mut args = vec![
            "--headless=new".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.display()),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-gpu".to_owned(),
            "--no-first-run".to_owned(),
            "--no-default-browser-check".to_owned(),
            "--disable-extensions".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-sync".to_owned(),
            "--force-device-scale-factor=1".to_owned(),
            "--hide-scrollbars".to_owned(),
            "--lang=en-US".to_owned(),
            "--font-render-hinting=none".to_owned(),
        ];
        if running_as_root() {
            // Chromium's sandbox refuses to run as root.
            args.push("--no-sandbox".to_owned());
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium_bin,
                "args": args,
                "prefs": {
                    "download.default_directory": downloads,
                    "download.prompt_for_download": false,
                    "download.directory_upgrade": true,
                    "safebrowsing.enabled": false,
                    "intl.accept_languages": "en-US",
                },
            }),
        );
        let client = ClientBuilder::rustls()
            .expect("a WebDriver client")
            .capabilities(capabilities)
            .connect(&webdriver)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "chromedriver could not start Chromium ({}): {e}\n{}",
                    chromium_bin.display(),
                    browser.log.read()
                )
            });
        browser.client = Some(client);
        browser
            .cdp(
                "Browser.setDownloadBehavior",
                json!({"behavior": "allow", "downloadPath": downloads, "eventsEnabled": false}),
            )
            .await;
        Some(browser)
    }

    async fn wait_driver(&self, webdriver: &str) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(answer) = http.get(format!("{webdriver}/status")).send().await
                && answer.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer at {webdriver}:\n{}",
                self.log.read()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("a browser session")
    }

    /// Where downloads land.
    pub fn downloads(&self) -> &Path {
        &self.downloads
    }

    /// A Chrome DevTools Protocol command; panics when refused.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.client()
            .issue_cmd(Cdp {
                cmd: cmd.to_owned(),
                params,
            })
            .await
            .unwrap_or_else(|e| panic!("CDP {cmd}: {e}"))
    }

    /// Emulates a phone's screen (`width`×`height` CSS pixels, touch,
    /// mobile viewport), or the desktop again with `None`.
    pub async fn emulate_phone(&self, size: Option<(u32, u32)>) {
        match size {
            Some((width, height)) => {
                self.cdp(
                    "Emulation.setDeviceMetricsOverride",
                    json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": true}),
                )
                .await;
            }
            None => {
                self.cdp("Emulation.clearDeviceMetricsOverride", json!({}))
                    .await;
            }
        }
    }

    /// Gives the page a desktop viewport of exactly `width`×`height` CSS
    /// pixels (a headless window's viewport is smaller than the window).
    pub async fn emulate_desktop(&self, width: u32, height: u32) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await;
    }

    /// Runs `source` in every page before the page's own scripts (the
    /// page's CSP does not apply to it).
    pub async fn before_every_page(&self, source: &str) {
        self.cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": source}),
        )
        .await;
    }

    /// Ends the session (the browser quits) and chromedriver.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), client.close()).await;
        }
        self.kill();
    }

    fn kill(&mut self) {
        if let Some(mut driver) = self.driver.take() {
            // The whole group: chromedriver and every Chromium process.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.group)])
                .stderr(Stdio::null())
                .status();
            driver.kill_quietly();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.log.read();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!(
                "--- chromedriver log (last lines) ---\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        self.kill();
    }
}
