//! Section 5, a new file over a slow link: A reaches the hub through a
//! rate-limited loopback relay (`SF_BENCH_LINK_MBIT`, 100 Mbit/s by
//! default), B directly; seconds until B has a new `SF_BENCH_LINK_MIB` file
//! (100 MiB) written into A's folder. Baseline: the same bytes pushed
//! through the same relay by a plain TCP copy into a sink, in this run. A
//! transfer that keeps the link busy comes within a few percent of it; one
//! that stalls on round trips does not.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sf_e2e::*;
use sf_test_support::bench::spread;
use sf_test_support::relay::Relay;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::big::wait_file;
use crate::procs::stop_agent;
use crate::report::{Table, cell, log_notes, ratio, render_notes, secs};
use crate::{Config, MIB, Section};

/// Seconds to push `bytes` through a fresh relay of `rate` into a sink.
async fn baseline(bytes: u64, rate: u64) -> f64 {
    let sink = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink_addr = sink.local_addr().unwrap();
    let drained = tokio::spawn(async move {
        let (mut socket, _) = sink.accept().await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        while total < bytes {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "the relay closed early");
            total += n as u64;
        }
        socket.write_all(b"k").await.unwrap();
    });
    let relay = Relay::start(sink_addr, rate).await.unwrap();
    let target: SocketAddr = relay.url().trim_start_matches("http://").parse().unwrap();
    let started = Instant::now();
    let mut socket = tokio::net::TcpStream::connect(target).await.unwrap();
    let block = vec![7u8; 256 * 1024];
    let mut sent = 0u64;
    while sent < bytes {
        let n = block.len().min((bytes - sent) as usize);
        socket.write_all(&block[..n]).await.unwrap();
        sent += n as u64;
    }
    let mut ack = [0u8; 1];
    socket.read_exact(&mut ack).await.unwrap();
    drained.await.unwrap();
    secs(started.elapsed())
}

pub async fn bench_link(config: &Config) -> String {
    let rate = config.link_mbit * 1_000_000 / 8;
    let bytes = config.link_bytes;
    let mut base = Vec::new();
    let mut synced = Vec::new();
    let mut notes = log_notes();
    for rep in 0..config.reps {
        base.push(baseline(bytes, rate).await);

        let sandbox = Sandbox::new("bench-link");
        let hub = Hub::start(&sandbox.dir("hub")).await;
        let hub_addr: SocketAddr = hub.url().trim_start_matches("http://").parse().unwrap();
        let relay = Relay::start(hub_addr, rate).await.unwrap();
        let (a_dir, b_dir) = (sandbox.dir("a"), sandbox.dir("b"));
        // The harness knows the token by the hub's URL; A reaches it through the relay's.
        let token_arg = format!("--token-file={}", hub.token_file().display());
        let mut a = Agent::start(&relay.url(), &a_dir, "a", &[token_arg.as_str()]).await;
        let mut b = Agent::start(hub.url(), &b_dir, "b", &[]).await;
        let staging = sandbox.dir("staging");
        std::fs::create_dir_all(&staging).unwrap();
        let source = staging.join("big.bin");
        let sha = tokio::task::block_in_place(|| {
            sf_test_support::write_random_file(&source, 500 + rep as u64, bytes)
        });
        sandbox.step(&format!(
            "rep {}/{}: {} MiB into A behind {} Mbit/s",
            rep + 1,
            config.reps,
            bytes / MIB,
            config.link_mbit
        ));
        let started = Instant::now();
        std::fs::rename(&source, a_dir.join("big.bin")).unwrap();
        let timeout =
            Duration::from_secs(60) + Duration::from_secs_f64(bytes as f64 / rate as f64 * 4.0);
        let target = b_dir.join("big.bin");
        let seen = tokio::task::block_in_place(|| wait_file(&target, bytes, sha, timeout));
        synced.push(secs(seen - started));
        stop_agent(&mut a, &mut notes).await;
        stop_agent(&mut b, &mut notes).await;
        notes.add(Some("hub"), &hub.log());
    }
    let link_seconds = bytes as f64 / rate as f64;
    let mut out = format!(
        "\n## {}\n\nA {} MiB file of random bytes is renamed into A's folder; A reaches the hub \
         through a loopback relay limited to {} Mbit/s in each direction, B directly. Baseline: \
         the same number of bytes through the same kind of relay by a plain TCP copy (the link's \
         own time; in theory {link_seconds:.2} s). {} rep(s).\n\n",
        Section::Link.title(),
        bytes / MIB,
        config.link_mbit,
        config.reps
    );
    let median = spread(&base).median;
    let mut table = Table::new(&["measurement", "value", "unit", "vs baseline"]);
    table.row(&[
        "baseline: the bytes through the relay (plain TCP)".to_owned(),
        cell(&base, 2),
        "s".to_owned(),
        "1.0×".to_owned(),
    ]);
    table.row(&[
        "**new file: written into A → B has it**".to_owned(),
        format!("**{}**", cell(&synced, 2)),
        "s".to_owned(),
        ratio(spread(&synced).median, median),
    ]);
    out.push_str(&table.text);
    let _ = writeln!(out, "\nTarget: within 10 % of the baseline.");
    out.push_str(&render_notes(&notes));
    out
}
