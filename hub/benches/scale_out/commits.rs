//! Part 1, commits of small files on three setups: one hub with the local
//! store, one hub with the S3 store, two hubs on one database and one
//! bucket. The setups run side by side and take turns run by run
//! (repetitions outermost, then concurrency, then setup), so slow drift and
//! a busy neighbour spread over all of them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use sf_test_support::bench::LogNotes;
use sf_test_support::random_bytes;

use crate::api::commit_small;
use crate::cluster::{Cluster, Store};
use crate::sample::{self, Usage};
use crate::{SMALL_FILE_BYTES, Setup, WARMUP_COMMITS};

/// One measured run.
pub struct Run {
    pub commits: usize,
    pub elapsed: Duration,
    pub usage: Usage,
}

impl Run {
    pub fn rate(&self) -> f64 {
        self.commits as f64 / self.elapsed.as_secs_f64()
    }
}

/// Every run of one setup at one concurrency.
pub struct Row {
    pub setup: usize,
    pub clients: usize,
    pub runs: Vec<Run>,
    /// Client-side time of each commit (missing, PUT, commit), all runs.
    pub latencies: Vec<Duration>,
}

pub struct CommitReport {
    /// The setups' labels, in table order, with their hub count and store.
    pub setups: Vec<(String, usize, Store)>,
    /// Rows by setup, then concurrency (the probe's first).
    pub rows: Vec<Row>,
    pub logs: Vec<(String, LogNotes)>,
    pub skipped: Vec<String>,
    pub commits_per_run: usize,
    pub probe: usize,
}

impl CommitReport {
    pub fn row(&self, setup: usize, clients: usize) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.setup == setup && r.clients == clients)
    }
}

pub async fn bench_commits(setup: &Setup<'_>) -> Result<CommitReport> {
    let config = setup.config;
    let mut plans = vec![("1 hub, local store", "local", Store::Local, 1)];
    let mut skipped = Vec::new();
    if setup.s3.is_some() {
        plans.push(("1 hub, S3 store", "s3", Store::S3, 1));
        plans.push(("2 hubs, S3 store", "s3x2", Store::S3, 2));
    } else {
        skipped.push("skipped: the S3 setups (moto_server is missing)".to_owned());
    }
    let mut clusters = Vec::new();
    for (label, tag, store, hubs) in &plans {
        clusters.push(Cluster::start(setup, label, tag, *store, *hubs).await?);
    }
    let levels: Vec<usize> = (config.probe > 0)
        .then_some(1)
        .into_iter()
        .chain(config.clients.iter().copied())
        .collect();
    let mut rows: Vec<Row> = (0..clusters.len())
        .flat_map(|s| {
            levels.iter().map(move |&clients| Row {
                setup: s,
                clients,
                runs: Vec::new(),
                latencies: Vec::new(),
            })
        })
        .collect();
    let moto = setup.s3.and_then(|s3| s3.pid);
    let mut committed = vec![0usize; clusters.len()];
    let result = async {
        for (s, cluster) in clusters.iter().enumerate() {
            // One client per hub, so every hub is warm.
            let count = WARMUP_COMMITS * cluster.hubs.len();
            let work = prepare(cluster, cluster.hubs.len(), count, "warmup")?;
            committed[s] += run_work(work).await?.1.len();
        }
        for rep in 0..config.reps {
            for (level, &clients) in levels.iter().enumerate() {
                let total = if level == 0 && config.probe > 0 {
                    config.probe
                } else {
                    config.commits
                };
                for (s, cluster) in clusters.iter().enumerate() {
                    let work = prepare(cluster, clients, total, &format!("r{rep}c{clients}"))?;
                    let moto = moto.filter(|_| cluster.bucket.is_some());
                    let watch = sample::begin(cluster, moto).await?;
                    let (elapsed, latencies) = run_work(work).await?;
                    let usage = sample::end(watch).await?;
                    committed[s] += latencies.len();
                    let run = Run {
                        commits: latencies.len(),
                        elapsed,
                        usage,
                    };
                    eprintln!(
                        "  rep {}/{} {:<20} {clients:>3} clients: {:>7.1} commits/s (lock held \
                         {:.0}%, machine CPU {:.2} of {:.0} cores)",
                        rep + 1,
                        config.reps,
                        cluster.label,
                        run.rate(),
                        run.usage.lock.held_share() * 100.0,
                        run.usage.machine_cores,
                        run.usage.machine_count,
                    );
                    let row = rows
                        .iter_mut()
                        .find(|r| r.setup == s && r.clients == clients)
                        .expect("a row per setup and level");
                    row.runs.push(run);
                    row.latencies.extend(latencies);
                }
            }
        }
        for (s, cluster) in clusters.iter().enumerate() {
            cluster.check_head(committed[s] as u64).await?;
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    let mut logs = Vec::new();
    for cluster in clusters {
        let label = cluster.label.clone();
        logs.push((label, cluster.stop().await?));
    }
    result?;
    Ok(CommitReport {
        setups: plans
            .iter()
            .map(|(label, _, store, hubs)| ((*label).to_owned(), *hubs, *store))
            .collect(),
        rows,
        logs,
        skipped,
        commits_per_run: config.commits,
        probe: config.probe,
    })
}

/// One client's share of a run: its own connection pool, its hub, its
/// paths and content.
struct ClientWork {
    http: reqwest::Client,
    base: Arc<str>,
    prefix: String,
    seed: u64,
    count: usize,
}

/// `total` commits split over `clients` clients, client `i` on hub
/// `i % hubs`. Made before the clock starts: the run measures the hubs.
fn prepare(cluster: &Cluster, clients: usize, total: usize, tag: &str) -> Result<Vec<ClientWork>> {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64;
    Ok((0..clients)
        .map(|client| {
            let hub = &cluster.hubs[client % cluster.hubs.len()];
            ClientWork {
                http: hub.client(),
                base: hub.base().into(),
                prefix: format!("bench/{tag}/client{client}"),
                seed: nonce ^ ((client as u64) << 32),
                count: total / clients + usize::from(client < total % clients),
            }
        })
        .collect())
}

/// Runs the clients at once; timed from the first request to the last
/// answer. Returns that time and each commit's.
async fn run_work(work: Vec<ClientWork>) -> Result<(Duration, Vec<Duration>)> {
    let started = Instant::now();
    let handles: Vec<_> = work
        .into_iter()
        .map(|client| {
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(client.count);
                for i in 0..client.count {
                    let bytes = random_bytes(client.seed.wrapping_add(i as u64), SMALL_FILE_BYTES);
                    let path = format!("{}/file{i}.bin", client.prefix);
                    let op_started = Instant::now();
                    commit_small(&client.http, &client.base, &path, &bytes).await?;
                    latencies.push(op_started.elapsed());
                }
                Ok::<_, anyhow::Error>(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for handle in handles {
        latencies.extend(handle.await??);
    }
    Ok((started.elapsed(), latencies))
}
