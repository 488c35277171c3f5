//! A 10,000-entry folder: paged loading (scrolling and the Load more
//! button), a live change and a search once it is all loaded; the times to
//! the first rows, to the end and for each are printed.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::page::{self, Ui};

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
