//! What happens around a measured run, read before and after it: the CPU
//! each process and the whole machine used (`/proc`), the hubs' own timing
//! of their requests and commits (their `/metrics`), and PostgreSQL's write
//! lock, sampled from `pg_stat_activity` while the run lasts.
//!
//! The write lock is the `hub_state` row every commit takes with `SELECT …
//! FOR UPDATE` and keeps until its transaction commits. Taking it gives the
//! transaction an id (`backend_xid`), so a sample in which a backend of the
//! database has one and does not wait on a lock is a sample in which the
//! lock is held; what that backend does then (executing, flushing WAL, or
//! `idle in transaction`: waiting for the hub's next statement) says where
//! the lock's time goes. Backends waiting on a lock are the commits queued
//! behind it in PostgreSQL (each hub queues its own commits in memory
//! first, so at most one per hub waits there).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use sf_test_support::procfs::{cpu_seconds, machine_cpu_seconds};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster::Cluster;

/// How often `pg_stat_activity` is read during a run.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);
/// The sampler's `application_name`, so its own backend is left out.
const SAMPLER_NAME: &str = "sf-bench-sampler";

/// The hub routes a small commit uses, in the order of the flow.
pub const ROUTES: [&str; 3] = ["/v1/chunks/missing", "/v1/chunks/{hash}", "/v1/commit"];

/// The hubs' own timings, summed over the hubs: per route of [`ROUTES`]
/// and for the commit itself (`sync_commit_duration`: waiting for the
/// hub's commit lock, then the database transaction), `(count, seconds)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct HubTimes {
    pub routes: [(f64, f64); 3],
    pub commit: (f64, f64),
}

impl HubTimes {
    fn parse(text: &str) -> Self {
        let mut times = Self::default();
        for (i, route) in ROUTES.iter().enumerate() {
            let label = format!("endpoint=\"{route}\"");
            times.routes[i] = (
                labelled(text, "sync_request_duration_seconds_count", &label),
                labelled(text, "sync_request_duration_seconds_sum", &label),
            );
        }
        times.commit = (
            sf_test_support::metric_value(text, "sync_commit_duration_seconds_count")
                .unwrap_or(0.0),
            sf_test_support::metric_value(text, "sync_commit_duration_seconds_sum").unwrap_or(0.0),
        );
        times
    }

    fn add(&mut self, other: &Self) {
        for (mine, theirs) in self.routes.iter_mut().zip(other.routes) {
            mine.0 += theirs.0;
            mine.1 += theirs.1;
        }
        self.commit.0 += other.commit.0;
        self.commit.1 += other.commit.1;
    }

    pub fn minus(&self, before: &Self) -> Self {
        let mut delta = *self;
        for (d, b) in delta.routes.iter_mut().zip(before.routes) {
            d.0 -= b.0;
            d.1 -= b.1;
        }
        delta.commit.0 -= before.commit.0;
        delta.commit.1 -= before.commit.1;
        delta
    }

    /// Mean milliseconds per request of route `i` of [`ROUTES`].
    pub fn route_ms(&self, i: usize) -> f64 {
        mean_ms(self.routes[i])
    }

    /// Mean milliseconds per commit: the hub's lock, then the transaction.
    pub fn commit_ms(&self) -> f64 {
        mean_ms(self.commit)
    }
}

fn mean_ms((count, seconds): (f64, f64)) -> f64 {
    if count > 0.0 {
        seconds / count * 1e3
    } else {
        f64::NAN
    }
}

/// The sum of the samples of `name` whose labels contain `label`.
fn labelled(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|line| line.starts_with(name) && line[name.len()..].starts_with('{'))
        .filter(|line| line.contains(label))
        .filter_map(|line| line.split_whitespace().last()?.parse::<f64>().ok())
        .sum()
}

/// What `pg_stat_activity` showed during a run.
#[derive(Debug, Clone, Copy, Default)]
pub struct LockSamples {
    pub samples: u64,
    /// Samples in which the write lock was held...
    pub held: u64,
    /// ... by a backend executing a statement (on CPU, or waiting for
    /// something other than WAL and the client),
    pub held_running: u64,
    /// ... flushing or writing WAL (the commit's fsync),
    pub held_wal: u64,
    /// ... `idle in transaction`: waiting for the hub's next statement.
    pub held_hub: u64,
    /// Sum over samples of backends waiting on a lock.
    pub waiters: u64,
}

impl LockSamples {
    fn fraction(&self, part: u64) -> f64 {
        if self.samples == 0 {
            return f64::NAN;
        }
        part as f64 / self.samples as f64
    }

    /// Share of the run's wall time the write lock was held.
    pub fn held_share(&self) -> f64 {
        self.fraction(self.held)
    }

    /// Shares of the wall time held while running, flushing WAL and
    /// waiting for the hub.
    pub fn parts(&self) -> (f64, f64, f64) {
        (
            self.fraction(self.held_running),
            self.fraction(self.held_wal),
            self.fraction(self.held_hub),
        )
    }

    /// Mean number of backends waiting for a lock.
    pub fn mean_waiters(&self) -> f64 {
        self.fraction(self.waiters)
    }
}

/// What one run cost, as the difference of two readings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// CPU seconds per second of wall time (1.0 = one core busy).
    pub hubs_cores: f64,
    pub moto_cores: Option<f64>,
    pub pg_cores: f64,
    pub bench_cores: f64,
    /// The whole machine's busy CPUs, and how many it has.
    pub machine_cores: f64,
    pub machine_count: f64,
    pub times: HubTimes,
    pub lock: LockSamples,
}

/// The readings before a run, and the sampler running during it.
pub struct Before {
    at: Instant,
    hub_pids: Vec<u32>,
    metrics_urls: Vec<String>,
    hub_cpu: f64,
    moto: Option<(u32, f64)>,
    bench_cpu: f64,
    machine: (f64, f64),
    pg_cpu: HashMap<u32, f64>,
    times: HubTimes,
    db_name: String,
    stop: watch::Sender<bool>,
    sampler: JoinHandle<Result<(PgConnection, LockSamples)>>,
}

/// Reads everything, then starts sampling `pg_stat_activity`.
pub async fn begin(cluster: &Cluster, moto: Option<u32>) -> Result<Before> {
    let options: PgConnectOptions = cluster
        .db
        .url()
        .parse::<PgConnectOptions>()?
        .application_name(SAMPLER_NAME);
    let mut conn = PgConnection::connect_with(&options)
        .await
        .context("connecting the pg_stat_activity sampler")?;
    let db_name = cluster.db.name().to_owned();
    let metrics_urls: Vec<String> = cluster.hubs.iter().map(|h| h.metrics_url()).collect();
    let times = scrape(&metrics_urls).await?;
    let hub_pids = cluster.hub_pids();
    let pg_cpu = backend_cpu(&mut conn, &db_name).await?;
    let hub_cpu = cpu_of(&hub_pids);
    let moto = moto.map(|pid| (pid, cpu_seconds(pid).unwrap_or(0.0)));
    let bench_cpu = cpu_seconds(std::process::id())?;
    let machine = machine_cpu_seconds()?;
    let stop = watch::Sender::new(false);
    let sampler = tokio::spawn(sample_locks(conn, db_name.clone(), stop.subscribe()));
    Ok(Before {
        at: Instant::now(),
        hub_pids,
        metrics_urls,
        hub_cpu,
        moto,
        bench_cpu,
        machine,
        pg_cpu,
        times,
        db_name,
        stop,
        sampler,
    })
}

/// Stops the sampler and reads everything again.
pub async fn end(before: Before) -> Result<Usage> {
    let wall = before.at.elapsed().as_secs_f64();
    let hub_cpu = cpu_of(&before.hub_pids);
    let moto = before
        .moto
        .map(|(pid, cpu)| cpu_seconds(pid).unwrap_or(cpu) - cpu);
    let bench_cpu = cpu_seconds(std::process::id())?;
    let machine = machine_cpu_seconds()?;
    before.stop.send_replace(true);
    let (mut conn, lock) = before.sampler.await??;
    let pg_after = backend_cpu(&mut conn, &before.db_name).await?;
    let _ = conn.close().await;
    let pg_cpu: f64 = pg_after
        .iter()
        .map(|(pid, after)| after - before.pg_cpu.get(pid).copied().unwrap_or(0.0))
        .sum();
    let times = scrape(&before.metrics_urls).await?.minus(&before.times);
    let machine_total = machine.1 - before.machine.1;
    Ok(Usage {
        hubs_cores: (hub_cpu - before.hub_cpu) / wall,
        moto_cores: moto.map(|cpu| cpu / wall),
        pg_cores: pg_cpu / wall,
        bench_cores: (bench_cpu - before.bench_cpu) / wall,
        machine_cores: (machine.0 - before.machine.0) / wall,
        machine_count: machine_total / wall,
        times,
        lock,
    })
}

fn cpu_of(pids: &[u32]) -> f64 {
    pids.iter()
        .map(|&pid| cpu_seconds(pid).unwrap_or(0.0))
        .sum()
}

/// CPU seconds of every backend of database `db_name` but the sampler's.
async fn backend_cpu(conn: &mut PgConnection, db_name: &str) -> Result<HashMap<u32, f64>> {
    let pids: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name <> $2",
    )
    .bind(db_name)
    .bind(SAMPLER_NAME)
    .fetch_all(&mut *conn)
    .await?;
    Ok(pids
        .into_iter()
        .filter_map(|pid| {
            let pid = u32::try_from(pid).ok()?;
            Some((pid, cpu_seconds(pid).ok()?))
        })
        .collect())
}

/// Every hub's timings, summed.
pub async fn scrape(urls: &[String]) -> Result<HubTimes> {
    let http = reqwest::Client::new();
    let mut total = HubTimes::default();
    for url in urls {
        let text = http
            .get(url)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        total.add(&HubTimes::parse(&text));
    }
    Ok(total)
}

/// Reads `pg_stat_activity` every [`SAMPLE_EVERY`] until `stop` flips.
async fn sample_locks(
    mut conn: PgConnection,
    db_name: String,
    mut stop: watch::Receiver<bool>,
) -> Result<(PgConnection, LockSamples)> {
    let mut samples = LockSamples::default();
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        let rows: Vec<(String, String, String, bool)> = sqlx::query_as(
            "SELECT coalesce(state, ''), coalesce(wait_event_type, ''), \
             coalesce(wait_event, ''), backend_xid IS NOT NULL \
             FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&db_name)
        .fetch_all(&mut conn)
        .await?;
        samples.samples += 1;
        let mut holder = None;
        for (state, wait_type, wait_event, has_xid) in &rows {
            if wait_type == "Lock" {
                samples.waiters += 1;
            } else if *has_xid && holder.is_none() {
                holder = Some((state.as_str(), wait_event.as_str()));
            }
        }
        if let Some((state, wait_event)) = holder {
            samples.held += 1;
            if state.starts_with("idle in transaction") {
                samples.held_hub += 1;
            } else if wait_event.starts_with("WAL") {
                // IO:WALSync, IO:WALWrite, LWLock:WALWrite.
                samples.held_wal += 1;
            } else {
                samples.held_running += 1;
            }
        }
    }
    Ok((conn, samples))
}
