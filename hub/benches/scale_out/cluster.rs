//! One setup under measurement: a fresh PostgreSQL database, with the
//! local store or a fresh bucket on moto, and one or more `sf-hub`
//! processes on them. The first hub makes the write token; the others find
//! it in the database and are given it.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use sf_protocol::v1::ChangesResponse;
use sf_test_support::PgDatabase;
use sf_test_support::bench::LogNotes;
use sf_test_support::s3::TestBucket;
use tempfile::TempDir;

use crate::Setup;
use crate::hub::BenchHub;

/// Where a setup keeps its chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Local,
    S3,
}

pub struct Cluster {
    pub label: String,
    pub hubs: Vec<BenchHub>,
    pub db: PgDatabase,
    pub bucket: Option<TestBucket>,
    /// The hubs' data directories, kept until the cluster is dropped.
    _data_dirs: Vec<TempDir>,
}

impl Cluster {
    /// `hubs` hubs on a new database and, for [`Store::S3`], a new bucket
    /// on moto; logs go to `<work>/hub-<tag>-<n>.log`.
    pub async fn start(
        setup: &Setup<'_>,
        label: &str,
        tag: &str,
        store: Store,
        hubs: usize,
    ) -> Result<Self> {
        let db = PgDatabase::create_on(setup.pg_admin_url, "sf_bench").await?;
        let bucket = match store {
            Store::Local => None,
            Store::S3 => {
                let s3 = setup.s3.context("the S3 store needs moto_server")?;
                Some(
                    TestBucket::create_on(&s3.endpoint)
                        .await
                        .map_err(anyhow::Error::msg)?,
                )
            }
        };
        let env = bucket.as_ref().map(TestBucket::env).unwrap_or_default();
        let mut cluster = Self {
            label: label.to_owned(),
            hubs: Vec::new(),
            db,
            bucket,
            _data_dirs: Vec::new(),
        };
        for n in 0..hubs {
            cluster.add_hub(setup.exe, setup.work, tag, n, &env).await?;
        }
        eprintln!(
            "{label}: hub pid(s) {:?}, database {}{}",
            cluster.hubs.iter().map(BenchHub::pid).collect::<Vec<_>>(),
            cluster.db.name(),
            cluster
                .bucket
                .as_ref()
                .map(|b| format!(", bucket {}", b.bucket))
                .unwrap_or_default()
        );
        Ok(cluster)
    }

    async fn add_hub(
        &mut self,
        exe: &Path,
        work: &Path,
        tag: &str,
        n: usize,
        env: &[(&str, String)],
    ) -> Result<()> {
        let data_dir = tempfile::tempdir_in(work)?;
        let log = work.join(format!("hub-{tag}-{n}.log"));
        let token = self.hubs.first().map(|first| first.token().to_owned());
        let hub = BenchHub::start_with(
            exe,
            data_dir.path(),
            self.db.url(),
            "postgres",
            &log,
            env,
            token,
        )
        .await?;
        self.hubs.push(hub);
        self._data_dirs.push(data_dir);
        Ok(())
    }

    pub fn hub_pids(&self) -> Vec<u32> {
        self.hubs.iter().map(BenchHub::pid).collect()
    }

    /// Checks that every hub's feed head is `expected`: every commit landed,
    /// and every hub knows of every other hub's.
    pub async fn check_head(&self, expected: u64) -> Result<()> {
        for (n, hub) in self.hubs.iter().enumerate() {
            // A hub learns of another's commits through NOTIFY: give it a
            // moment.
            let mut head = 0;
            for _ in 0..50 {
                let feed: ChangesResponse = hub
                    .client()
                    .get(hub.url("/v1/changes?since=0&limit=1"))
                    .send()
                    .await?
                    .json()
                    .await?;
                head = feed.head;
                if head == expected {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            ensure!(
                head == expected,
                "{}: hub {} reports head {head} after {expected} commits",
                self.label,
                n + 1
            );
        }
        Ok(())
    }

    /// Stops every hub gracefully and drops the database; what the hubs'
    /// logs said. The bucket's objects stay until moto stops.
    pub async fn stop(self) -> Result<LogNotes> {
        let mut notes = LogNotes::new(3, 300);
        let mut failure = None;
        for (n, hub) in self.hubs.into_iter().enumerate() {
            match hub.stop().await {
                Ok(hub_notes) => {
                    notes.warnings += hub_notes.warnings;
                    notes.errors += hub_notes.errors;
                    for sample in hub_notes.samples {
                        if notes.samples.len() < 3 {
                            notes.samples.push(format!("hub {}: {sample}", n + 1));
                        }
                    }
                }
                Err(err) => failure = Some(err),
            }
        }
        self.db.drop_database().await?;
        match failure {
            Some(err) => Err(err),
            None => Ok(notes),
        }
    }
}

/// The pid of the `moto_server` serving `endpoint` (`http://127.0.0.1:PORT`):
/// the process whose arguments hold `-p PORT` as two words (the watchdog
/// shell around it holds them in one).
pub fn moto_pid(endpoint: &str) -> Option<u32> {
    let port = endpoint.rsplit(':').next()?.trim_end_matches('/');
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        let names_moto = args
            .iter()
            .any(|a| String::from_utf8_lossy(a).contains("moto_server"));
        let on_port = args
            .windows(2)
            .any(|w| w[0] == b"-p" && w[1] == port.as_bytes());
        if names_moto && on_port {
            return Some(pid);
        }
    }
    None
}

/// Removes every object under `bucket`'s prefix (a few at a time), so moto
/// (which keeps objects in memory) gives the memory back.
pub async fn empty_bucket(bucket: &TestBucket) -> Result<usize> {
    use futures_util::{StreamExt, TryStreamExt, stream};
    let keys = bucket.keys("").await;
    let http = sf_test_support::s3::client();
    let count = keys.len();
    stream::iter(keys)
        .map(|key| {
            let http = http.clone();
            let url = bucket.object_url(&key);
            async move {
                let answer = http.delete(&url).send().await?;
                ensure!(
                    answer.status().is_success(),
                    "DELETE {url}: {}",
                    answer.status()
                );
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(8)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(count)
}
