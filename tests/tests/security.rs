//! Security through the real binaries: a hub that refuses `--no-auth` on
//! the network, the original client through `/t/<token>/`, slow clients cut
//! off while others are served, and a TLS hub with a private CA (and agents
//! that trust it or not). Agents refused a token: `token_refused.rs`.

use std::process::Command;
use std::time::{Duration, Instant};

use sf_e2e::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONVERGE: Duration = Duration::from_secs(60);
/// Bounds on waits for something that must happen; never a speed check.
const PATIENCE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_auth_is_refused_on_all_interfaces() {
    let sandbox = Sandbox::new("no_auth_network");
    let output = tokio::task::block_in_place(|| {
        clear_hub_env(&mut Command::new(binary("sf-hub")))
            .args([
                "--no-auth",
                "--listen",
                "0.0.0.0:0",
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(sandbox.dir("data"))
            .output()
            .expect("run sf-hub")
    });
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "sf-hub started:\n{stderr}");
    assert!(
        stderr.contains("--no-auth") && stderr.contains("loopback") && stderr.contains("0.0.0.0"),
        "{stderr}"
    );
}

/// The original Python client, reduced to its HTTP calls: `urlopen` on
/// `f"{SERVER_URL}/…"`, no headers of its own but `X-Meta-Length`.
const ORIGINAL_CLIENT: &str = r#"
import json, os, sys, urllib.error, urllib.request
SERVER_URL = os.environ["SERVER_URL"]
out = {}
try:
    urllib.request.urlopen(f"{SERVER_URL}/index")
    out["index"] = 200
except urllib.error.HTTPError as err:
    out["index"] = err.code
    print(json.dumps(out))
    sys.exit(0)
meta = json.dumps({"path": "notes/a.txt"}).encode()
data = b"written by the original client"
req = urllib.request.Request(f"{SERVER_URL}/upload", data=meta + data,
    headers={"X-Meta-Length": str(len(meta))}, method="POST")
out["upload"] = json.load(urllib.request.urlopen(req))
out["download"] = urllib.request.urlopen(f"{SERVER_URL}/download?path=notes/a.txt").read().decode()
out["files"] = sorted(json.load(urllib.request.urlopen(f"{SERVER_URL}/index"))["index"])
out["logs"] = len(json.load(urllib.request.urlopen(f"{SERVER_URL}/logs"))["logs"])
req = urllib.request.Request(f"{SERVER_URL}/delete", data=json.dumps({"path": "notes/a.txt"}).encode(),
    headers={"Content-Type": "application/json"}, method="POST")
out["delete"] = json.load(urllib.request.urlopen(req))
print(json.dumps(out))
"#;

fn run_original_client(server_url: &str) -> serde_json::Value {
    let output = tokio::task::block_in_place(|| {
        Command::new("python3")
            .args(["-c", ORIGINAL_CLIENT])
            .env("SERVER_URL", server_url)
            .output()
            .expect("run python3")
    });
    assert!(
        output.status.success(),
        "the original client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the client's JSON summary")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_original_client_works_through_the_token_prefix() {
    let sandbox = Sandbox::new("original_client");
    let hub = Hub::start(&sandbox.dir("hub")).await;
    let token = hub.token();

    sandbox.step("without a token the hub says 401");
    let refused = run_original_client(hub.url());
    assert_eq!(refused["index"], 401, "{refused}");

    sandbox.step("SERVER_URL=http://hub/t/<token>");
    let done = run_original_client(&format!("{}/t/{token}", hub.url()));
    assert_eq!(done["index"], 200, "{done}");
    assert_eq!(done["upload"]["ok"], true, "{done}");
    assert_eq!(done["download"], "written by the original client");
    assert_eq!(done["files"], serde_json::json!(["notes/a.txt"]));
    assert_eq!(done["delete"]["ok"], true, "{done}");
    assert!(hub_index(hub.url()).await.unwrap().is_empty());

    let log = hub.log();
    assert!(
        !log.contains(&token[4..]),
        "the hub's log shows the token:\n{log}"
    );
}

/// A client that sends a request's headers one line every 500 ms and
/// never finishes them. Returns when the hub closes the connection.
async fn slow_headers(port: u16) -> Duration {
    let started = Instant::now();
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    if tcp
        .write_all(b"GET /v1/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .is_err()
    {
        return started.elapsed();
    }
    wait_closed(&mut tcp, b"X-Slow: 1\r\n").await;
    started.elapsed()
}

/// A client that sends full headers of a chunk upload, then the body at
/// 50 bytes/s.
async fn slow_body(port: u16, token: &str) -> Duration {
    let started = Instant::now();
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let head = format!(
        "PUT /v1/chunks/{} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: 1000000\r\n\r\n",
        "ab".repeat(32)
    );
    if tcp.write_all(head.as_bytes()).await.is_err() {
        return started.elapsed();
    }
    wait_closed(&mut tcp, &[b'x'; 25]).await;
    started.elapsed()
}

/// Writes `drip` every 500 ms until the peer closes (or gives up after
/// [`PATIENCE`], which fails the test).
async fn wait_closed(tcp: &mut TcpStream, drip: &[u8]) {
    let deadline = Instant::now() + PATIENCE;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        tokio::select! {
            read = tcp.read(&mut buf) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {} // e.g. a 400 answer; the close follows
            },
            () = tokio::time::sleep(Duration::from_millis(500)) => {
                if tcp.write_all(drip).await.is_err() {
                    return;
                }
            }
        }
    }
    panic!("the hub kept a slow connection open for {PATIENCE:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_while_others_are_served() {
    const SLOW_HEADERS: usize = 400;
    const SLOW_BODIES: usize = 50;
    let sandbox = Sandbox::new("slow_clients");
    let hub = Hub::start_with(
        &sandbox.dir("hub"),
        HubOptions {
            // Every client here is 127.0.0.1: the per-address cap would
            // refuse most slow ones at once (and the normal client with
            // them); this test is about the timeouts.
            args: vec![
                "--header-timeout".into(),
                "2s".into(),
                "--min-body-rate".into(),
                "1KiB".into(),
                "--max-connections-per-ip".into(),
                "0".into(),
            ],
            ..HubOptions::default()
        },
    )
    .await;
    let token = hub.token();
    let port = hub.port();

    sandbox.step("open the slow connections");
    let mut slow = Vec::new();
    for _ in 0..SLOW_HEADERS {
        slow.push(tokio::spawn(slow_headers(port)));
    }
    for _ in 0..SLOW_BODIES {
        let token = token.clone();
        slow.push(tokio::spawn(async move { slow_body(port, &token).await }));
    }

    sandbox.step("a normal client is served meanwhile");
    let http = reqwest::Client::new();
    let mut served = 0;
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let resp = http
            .get(format!("{}/index", hub.url()))
            .bearer_auth(&token)
            .send()
            .await
            .expect("the normal client reaches the hub");
        assert_eq!(resp.status(), 200);
        served += 1;
    }

    sandbox.step("every slow connection is cut off");
    let mut held = Vec::new();
    for task in slow {
        held.push(task.await.expect("a slow client"));
    }
    held.sort();
    eprintln!(
        "held off {} slow connections ({SLOW_HEADERS} trickling headers, {SLOW_BODIES} \
         trickling bodies) while serving {served} requests of a normal client; slow \
         connections were closed after {:.1?} (median) to {:.1?} (max)",
        held.len(),
        held[held.len() / 2],
        held[held.len() - 1]
    );
    assert!(served > 0);

    sandbox.step("an idle keep-alive connection is closed too");
    let mut idle = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let request = format!(
        "GET /v1/whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    idle.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    let closed = tokio::time::timeout(PATIENCE, async {
        loop {
            match idle.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "an idle connection stayed open for {PATIENCE:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_answered_busy() {
    let sandbox = Sandbox::new("connection_cap");
    let hub = Hub::start_with(
        &sandbox.dir("hub"),
        HubOptions {
            args: vec!["--max-connections".into(), "4".into()],
            ..HubOptions::default()
        },
    )
    .await;
    // The readiness probe's pooled connection may hold a slot: fill the rest.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(("127.0.0.1", hub.port())).await.unwrap());
    }
    let mut extra = TcpStream::connect(("127.0.0.1", hub.port())).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(PATIENCE, extra.read_to_string(&mut answer))
        .await
        .expect("an answer to a connection over the cap")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains(r#""error":"busy""#), "{answer}");
    drop(held);
    // Slots free again once the held connections go.
    let until = Instant::now() + PATIENCE;
    loop {
        let resp = reqwest::Client::new()
            .get(format!("{}/healthz", hub.url()))
            .send()
            .await
            .unwrap();
        if resp.status() == 200 {
            break;
        }
        assert!(Instant::now() < until, "the hub stayed busy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_hub_with_a_private_ca() {
    let sandbox = Sandbox::new("tls_private_ca");
    let pki = TestPki::create(&sandbox.dir("pki"));
    let hub = Hub::start_with(
        &sandbox.dir("hub"),
        HubOptions {
            args: pki.hub_args(),
            tls_ca_pem: Some(pki.ca_pem.clone()),
            ..HubOptions::default()
        },
    )
    .await;
    assert!(hub.url().starts_with("https://localhost:"));

    sandbox.step("plain HTTP to the TLS port gets nothing");
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/index", hub.port()))
        .bearer_auth(hub.token())
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");

    sandbox.step("an agent trusting the CA syncs over https and wss");
    let a_dir = sandbox.dir("a");
    let b_dir = sandbox.dir("b");
    let ca = pki.ca_file.display().to_string();
    let mut a = Agent::start(hub.url(), &a_dir, "a", &["--ca-cert", &ca]).await;
    let mut b = Agent::start(hub.url(), &b_dir, "b", &["--ca-cert", &ca]).await;
    write_file(&a_dir.join("secret-plan.txt"), "over TLS\n");
    wait_converged(&[a_dir.as_path(), b_dir.as_path()], hub.url(), CONVERGE)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(read_file(&b_dir.join("secret-plan.txt")), b"over TLS\n");

    sandbox.step("an agent that does not trust the CA says why");
    let c_dir = sandbox.dir("c");
    let mut c = Agent::start(hub.url(), &c_dir, "c", &[]).await;
    let until = Instant::now() + PATIENCE;
    loop {
        let log = c.log_of_run();
        if log.contains("not trusted") && log.contains("--ca-cert") {
            break;
        }
        assert!(
            Instant::now() < until,
            "agent c never explained the untrusted certificate:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!c_dir.join("secret-plan.txt").exists());
    for agent in [&mut a, &mut b, &mut c] {
        agent.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_from_one_address_are_capped() {
    let sandbox = Sandbox::new("per_address_cap");
    let hub = Hub::start_with(
        &sandbox.dir("hub"),
        HubOptions {
            args: vec!["--max-connections-per-ip".into(), "3".into()],
            ..HubOptions::default()
        },
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(("127.0.0.1", hub.port())).await.unwrap());
    }
    // The harness's own pooled connection may hold one of the three: either
    // way a fourth from this address is over the cap.
    let mut extra = TcpStream::connect(("127.0.0.1", hub.port())).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(PATIENCE, extra.read_to_string(&mut answer))
        .await
        .expect("an answer to a connection over the per-address cap")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("your address"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_cut_off() {
    const SIZE: usize = 48 << 20;
    let sandbox = Sandbox::new("slow_reader");
    let hub = Hub::start_with(
        &sandbox.dir("hub"),
        HubOptions {
            args: vec!["--send-timeout".into(), "2s".into()],
            ..HubOptions::default()
        },
    )
    .await;
    let token = hub.token();
    let meta = r#"{"path":"big.bin"}"#;
    let mut body = meta.as_bytes().to_vec();
    body.extend_from_slice(&random_bytes(11, SIZE));
    let resp = reqwest::Client::new()
        .post(format!("{}/upload", hub.url()))
        .bearer_auth(&token)
        .header("X-Meta-Length", meta.len().to_string())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let mut tcp = TcpStream::connect(("127.0.0.1", hub.port())).await.unwrap();
    let request = format!(
        "GET /v1/file?path=big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    // Read nothing for a while: the socket buffers fill and the hub's
    // writes stall far beyond its send timeout.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let mut received = Vec::new();
    tokio::time::timeout(PATIENCE, tcp.read_to_end(&mut received))
        .await
        .expect("the connection ends")
        .ok();
    eprintln!(
        "received {} of {SIZE} bytes before the hub gave up",
        received.len()
    );
    assert!(received.starts_with(b"HTTP/1.1 200"));
    assert!(
        received.len() < SIZE,
        "the hub kept sending to a client that read nothing for 8 s"
    );
    // Others are still served.
    let index = hub_index(hub.url()).await.unwrap();
    assert!(index.contains_key("big.bin"));
}
