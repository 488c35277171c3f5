//! Screenshots of every view of the page on a hub with a little of
//! everything (the README's come from here), and the tiny web server the
//! cross-site test serves its forged page from.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sf_e2e::Agent;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::page::Ui;

/// Serves `html` to every request on a free port of 127.0.0.1 (another
/// origin than the hub's) until the test ends; its URL.
pub async fn serve_page(html: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the attacker's server");
    let url = format!(
        "http://127.0.0.1:{}/",
        listener.local_addr().unwrap().port()
    );
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let html = html.clone();
            tokio::spawn(async move {
                // Read the request head; the body (if any) does not matter.
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{html}",
                    html.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    url
}

fn ms_ago(minutes: i64) -> i64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    now - minutes * 60_000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots_of_every_view() {
    let Some(ui) = Ui::start_sized("ui-screenshots", 1280, 800).await else {
        return;
    };
    let long_name = format!(
        "{}.pdf",
        "quarterly-report-with-a-very-long-descriptive-name-".repeat(4)
    );
    let files: &[(&str, usize, &str, i64)] = &[
        ("Documents/contract.pdf", 182_311, "laptop", 3000),
        (
            "Documents/letters/cover letter.docx",
            24_113,
            "laptop",
            9000,
        ),
        ("Photos/2026/beach.jpg", 2_431_112, "phone", 40_000),
        ("Projects/website/index.html", 3_120, "desk-pc", 200),
        ("budget 2026.xlsx", 48_211, "desk-pc", 95),
        ("notes.md", 1_204, "laptop", 12),
        ("会議の議事録 2026年11月.txt", 5_320, "tokyo-office", 600),
        ("تقرير المبيعات السنوي.pdf", 310_004, "dubai-laptop", 1400),
        ("old-invoice.pdf", 80_000, "laptop", 30_000),
        ("scratch.txt", 90, "phone", 20_000),
    ];
    for (path, len, origin, ago) in files {
        // Large sizes as real files would have them, without the bytes:
        // put_file takes small files, so big ones are capped.
        let bytes = sf_e2e::random_bytes(*len as u64, (*len).min(900_000));
        ui.put_file_at(path, &bytes, origin, ms_ago(*ago)).await;
    }
    ui.put_file_at(&long_name, b"long\n", "laptop", ms_ago(300))
        .await;
    ui.put_dir("Music", "laptop").await;
    for (i, (origin, text)) in [
        ("laptop", "# Notes\n\nfirst\n"),
        ("phone", "# Notes\n\nfirst\nsecond\n"),
        ("desk-pc", "# Notes\n\nfirst\nsecond\nthird line, longer\n"),
    ]
    .iter()
    .enumerate()
    {
        ui.put_file_at(
            "notes.md",
            text.as_bytes(),
            origin,
            ms_ago(10 - i as i64 * 3),
        )
        .await;
    }
    ui.post("/v1/remove", serde_json::json!({"path": "old-invoice.pdf"}))
        .await;
    ui.post("/v1/remove", serde_json::json!({"path": "scratch.txt"}))
        .await;
    ui.post(
        "/v1/remove",
        serde_json::json!({"path": "Photos/2026/beach.jpg"}),
    )
    .await;
    let budget = ui.version("budget 2026.xlsx").await;
    ui.put_file_at(
        "budget 2026.xlsx",
        &sf_e2e::random_bytes(7, 51_002),
        "desk-pc",
        ms_ago(4),
    )
    .await;
    ui.upload("budget 2026.xlsx", &sf_e2e::random_bytes(8, 49_877), budget)
        .await;
    let notes = ui.version("notes.md").await;
    ui.put_file_at(
        "notes.md",
        b"# Notes\n\nfrom the desk\n",
        "desk-pc",
        ms_ago(2),
    )
    .await;
    ui.upload("notes.md", b"# Notes\n\nfrom the web page\n", notes)
        .await;
    let folder = ui.sandbox.dir("laptop");
    let _laptop = Agent::start(ui.hub.url(), &folder, "laptop", &[]).await;
    ui.browser.emulate_desktop(1280, 800).await;

    ui.sandbox.step("sign-in");
    ui.open("").await;
    ui.wait("the sign-in form", "shown('#token')").await;
    ui.screenshot("sign-in").await;

    ui.sandbox.step("listing");
    ui.sign_in(&ui.hub.token()).await;
    ui.wait_view().await;
    ui.wait_row("budget 2026.xlsx").await;
    ui.wait("live updates on", "$('#live').classList.contains('up')")
        .await;
    // Let the rows' "changed" highlight of live updates fade.
    tokio::time::sleep(Duration::from_millis(2800)).await;
    ui.screenshot("listing").await;

    ui.sandbox.step("history");
    ui.client()
        .goto(&ui.page_url("#/history/notes.md"))
        .await
        .unwrap();
    ui.wait("the versions", "$$('table.history tbody tr').length >= 4")
        .await;
    ui.screenshot("history").await;

    ui.sandbox.step("recently deleted");
    ui.client().goto(&ui.page_url("#/deleted")).await.unwrap();
    ui.wait(
        "the deleted files",
        "$$('table.deleted tbody tr').length >= 3",
    )
    .await;
    ui.screenshot("deleted").await;

    ui.sandbox.step("conflicts");
    ui.client().goto(&ui.page_url("#/conflicts")).await.unwrap();
    ui.wait("the conflicts", "$$('li.conflict').length === 2")
        .await;
    ui.screenshot("conflicts").await;

    ui.sandbox.step("activity");
    ui.client().goto(&ui.page_url("#/activity")).await.unwrap();
    ui.wait(
        "the agent",
        "texts('table.agents td.c-name').includes('laptop')",
    )
    .await;
    ui.screenshot("activity").await;

    ui.sandbox.step("upload progress and outcome");
    ui.client()
        .goto(&ui.page_url("#/browse/Documents"))
        .await
        .unwrap();
    ui.wait_row("contract.pdf").await;
    ui.drop_files(&[
        ("minutes.txt", b"minutes\n"),
        ("scan 0042.png", &sf_e2e::random_bytes(3, 70_000)),
    ])
    .await;
    ui.wait("uploads done", "$$('#upload-list li.done').length === 2")
        .await;
    ui.screenshot("upload").await;

    ui.sandbox.step("phone width");
    ui.click("#uploads-close").await;
    ui.browser.emulate_phone(Some((390, 844))).await;
    ui.client().goto(&ui.page_url("#/browse/")).await.unwrap();
    ui.wait_row("budget 2026.xlsx").await;
    ui.wait(
        "the page within the phone's width",
        "document.documentElement.scrollWidth <= window.innerWidth + 1",
    )
    .await;
    ui.screenshot("listing-phone").await;
    ui.finish().await;
}
