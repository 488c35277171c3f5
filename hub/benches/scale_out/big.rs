//! Part 2, one large file through each store: the v1 upload and download
//! through a hub on PostgreSQL with the local store and with the S3 store,
//! each next to its store's own speed (`cp` + fsync; plain PUT and GET of
//! the same bytes to moto in 2 MiB objects). A fresh hub process per phase,
//! so each peak RSS belongs to one phase; a fresh database, data directory
//! and bucket per repetition, so no upload finds its chunks already there.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use futures_util::StreamExt;
use sf_protocol::Sha256Hex;
use sf_test_support::PgDatabase;
use sf_test_support::bench::LogNotes;
use sf_test_support::procfs::{cpu_seconds, rss_kib};
use sf_test_support::s3::TestBucket;
use sf_test_support::write_random_file;
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::api::{download, v1_upload};
use crate::cluster::empty_bucket;
use crate::hub::BenchHub;
use crate::sample::scrape;
use crate::{MIB, Setup};

/// The size of the baseline's objects on moto.
const RAW_OBJECT: u64 = 2 * MIB;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    CpFsync,
    LocalUpload,
    LocalDownload,
    RawPut,
    RawGet,
    S3Upload,
    S3Download,
}

impl Phase {
    pub const LOCAL: [Phase; 3] = [Phase::CpFsync, Phase::LocalUpload, Phase::LocalDownload];
    pub const S3: [Phase; 4] = [
        Phase::RawPut,
        Phase::RawGet,
        Phase::S3Upload,
        Phase::S3Download,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Phase::CpFsync => "cp + fsync (baseline)",
            Phase::LocalUpload => "v1 upload, local store",
            Phase::LocalDownload => "v1 download, local store",
            Phase::RawPut => "PUT 2 MiB objects to moto (baseline)",
            Phase::RawGet => "GET 2 MiB objects from moto (baseline)",
            Phase::S3Upload => "v1 upload, S3 store",
            Phase::S3Download => "v1 download, S3 store",
        }
    }

    pub fn uses_hub(self) -> bool {
        !matches!(self, Phase::CpFsync | Phase::RawPut | Phase::RawGet)
    }

    pub fn uses_moto(self) -> bool {
        matches!(
            self,
            Phase::RawPut | Phase::RawGet | Phase::S3Upload | Phase::S3Download
        )
    }
}

pub struct BigRow {
    pub phase: Phase,
    pub seconds: Vec<f64>,
    pub hub_peak_kib: Vec<u64>,
    pub hub_idle_kib: Vec<u64>,
    /// CPU seconds per second of the phase.
    pub hub_cores: Vec<f64>,
    /// Per repetition, the hub's own time in each route of
    /// [`crate::sample::ROUTES`] (missing, PUT chunk, commit), seconds.
    pub hub_route_seconds: Vec<[f64; 3]>,
    pub moto_cores: Vec<f64>,
    /// moto's resident memory at the phase's end.
    pub moto_rss_kib: Vec<u64>,
}

pub struct BigReport {
    pub bytes: u64,
    pub rows: Vec<BigRow>,
    pub logs: Vec<(String, LogNotes)>,
    pub skipped: Option<String>,
}

pub async fn bench_big(setup: &Setup<'_>) -> Result<BigReport> {
    let config = setup.config;
    let bytes = config.big_mib * MIB;
    let source = setup.work.join("source.bin");
    eprintln!(
        "large file: writing {} MiB to {}",
        config.big_mib,
        source.display()
    );
    let source_sha = {
        let path = source.clone();
        tokio::task::spawn_blocking(move || write_random_file(&path, 0x5ca1_ab1e, bytes)).await?
    };
    let mut phases = Phase::LOCAL.to_vec();
    let skipped = match setup.s3 {
        Some(_) => {
            phases.extend(Phase::S3);
            None
        }
        None => Some("skipped: the S3 store (moto_server is missing)".to_owned()),
    };
    let mut report = BigReport {
        bytes,
        rows: phases
            .iter()
            .map(|&phase| BigRow {
                phase,
                seconds: Vec::new(),
                hub_peak_kib: Vec::new(),
                hub_idle_kib: Vec::new(),
                hub_cores: Vec::new(),
                hub_route_seconds: Vec::new(),
                moto_cores: Vec::new(),
                moto_rss_kib: Vec::new(),
            })
            .collect(),
        logs: Vec::new(),
        skipped,
    };
    let file = BigFile {
        path: &source,
        bytes,
        sha: source_sha,
    };
    for rep in 0..config.reps {
        let local = Store::new(setup, false).await?;
        let s3 = match setup.s3 {
            Some(_) => Some(Store::new(setup, true).await?),
            None => None,
        };
        let remote_path = format!("bench/big-{rep}.bin");
        for row in &mut report.rows {
            let phase = row.phase;
            let store = if phase.uses_moto() {
                s3.as_ref().expect("S3 phases run with moto")
            } else {
                &local
            };
            let moto = setup.s3.and_then(|s3| s3.pid).filter(|_| phase.uses_moto());
            let (outcome, moto_cores) = if phase.uses_hub() {
                let log = setup.work.join(format!("hub-big-{rep}-{phase:?}.log"));
                let hub = store.start_hub(setup, &log).await?;
                let idle = hub.peak_rss_kib()?;
                let metrics = [hub.metrics_url()];
                let times_before = scrape(&metrics).await?;
                let hub_cpu = cpu_seconds(hub.pid())?;
                let moto_window = CpuWindow::start(moto);
                let started = Instant::now();
                let outcome = run_hub_phase(phase, &hub, &file, &remote_path).await;
                let elapsed = started.elapsed();
                let moto_cores = moto_window.cores(elapsed);
                let hub_cores = (cpu_seconds(hub.pid())? - hub_cpu) / elapsed.as_secs_f64();
                let peak = hub.peak_rss_kib()?;
                let times = scrape(&metrics).await?.minus(&times_before);
                let notes = hub.stop().await?;
                if notes.warnings + notes.errors > 0 {
                    report
                        .logs
                        .push((format!("rep {} {}", rep + 1, phase.label()), notes));
                }
                row.hub_peak_kib.push(peak);
                row.hub_idle_kib.push(idle);
                row.hub_cores.push(hub_cores);
                row.hub_route_seconds
                    .push(std::array::from_fn(|i| times.routes[i].1));
                (outcome.map(|()| (elapsed, Some((peak, idle)))), moto_cores)
            } else {
                let moto_window = CpuWindow::start(moto);
                let outcome = run_baseline(phase, store, &file, setup.work).await;
                let moto_cores = outcome
                    .as_ref()
                    .ok()
                    .and_then(|elapsed| moto_window.cores(*elapsed));
                (outcome.map(|elapsed| (elapsed, None)), moto_cores)
            };
            let (elapsed, hub_rss) =
                outcome.with_context(|| format!("{} (rep {})", phase.label(), rep + 1))?;
            let seconds = elapsed.as_secs_f64();
            let mut moto_note = String::new();
            if let (Some(pid), Some(cores)) = (moto, moto_cores) {
                let rss = rss_kib(pid).unwrap_or(0);
                row.moto_cores.push(cores);
                row.moto_rss_kib.push(rss);
                moto_note = format!(
                    ", moto {cores:.2} cores, RSS {:.0} MiB",
                    rss as f64 / 1024.0
                );
            }
            eprintln!(
                "  rep {}/{} {:<40} {seconds:>7.2} s {:>6.0} MiB/s{}{moto_note}",
                rep + 1,
                config.reps,
                phase.label(),
                bytes as f64 / MIB as f64 / seconds,
                hub_rss
                    .map(|(peak, idle)| format!(
                        ", hub peak RSS {:.1} MiB (idle {:.1})",
                        peak as f64 / 1024.0,
                        idle as f64 / 1024.0
                    ))
                    .unwrap_or_default(),
            );
            row.seconds.push(seconds);
        }
        local.finish().await?;
        if let Some(s3) = s3 {
            s3.finish().await?;
        }
    }
    std::fs::remove_file(&source)?;
    Ok(report)
}

/// A process's CPU seconds from a moment on.
struct CpuWindow(Option<(u32, f64)>);

impl CpuWindow {
    fn start(pid: Option<u32>) -> Self {
        Self(pid.map(|pid| (pid, cpu_seconds(pid).unwrap_or(0.0))))
    }

    /// Cores busy on average over `elapsed` since the start.
    fn cores(&self, elapsed: Duration) -> Option<f64> {
        let (pid, before) = self.0?;
        Some((cpu_seconds(pid).unwrap_or(before) - before) / elapsed.as_secs_f64())
    }
}

/// The source file and its sha256.
struct BigFile<'a> {
    path: &'a Path,
    bytes: u64,
    sha: Sha256Hex,
}

/// One repetition's store: a new database and a new data directory, and
/// for the S3 store a new bucket (its objects removed at the end, since
/// moto keeps them in memory).
struct Store {
    db: PgDatabase,
    data_dir: tempfile::TempDir,
    bucket: Option<TestBucket>,
    /// The baseline's objects: the same bucket, another prefix.
    raw: Option<TestBucket>,
}

impl Store {
    async fn new(setup: &Setup<'_>, s3: bool) -> Result<Self> {
        let bucket = match (s3, setup.s3) {
            (true, Some(s3)) => Some(
                TestBucket::create_on(&s3.endpoint)
                    .await
                    .map_err(anyhow::Error::msg)?,
            ),
            _ => None,
        };
        let raw = bucket.clone().map(|mut b| {
            b.prefix = "raw".into();
            b
        });
        Ok(Self {
            db: PgDatabase::create_on(setup.pg_admin_url, "sf_bench").await?,
            data_dir: tempfile::tempdir_in(setup.work)?,
            bucket,
            raw,
        })
    }

    async fn start_hub(&self, setup: &Setup<'_>, log: &Path) -> Result<BenchHub> {
        let env = self
            .bucket
            .as_ref()
            .map(TestBucket::env)
            .unwrap_or_default();
        BenchHub::start_with(
            setup.exe,
            self.data_dir.path(),
            self.db.url(),
            "postgres",
            log,
            &env,
            None,
        )
        .await
    }

    async fn finish(self) -> Result<()> {
        for bucket in self.bucket.iter().chain(&self.raw) {
            empty_bucket(bucket).await?;
        }
        self.db.drop_database().await?;
        self.data_dir.close()?;
        Ok(())
    }
}

async fn run_hub_phase(
    phase: Phase,
    hub: &BenchHub,
    file: &BigFile<'_>,
    remote_path: &str,
) -> Result<()> {
    let http = hub.client();
    match phase {
        Phase::LocalUpload | Phase::S3Upload => {
            v1_upload(&http, hub.base(), file.path, remote_path, file.sha).await
        }
        Phase::LocalDownload | Phase::S3Download => {
            download(
                &http,
                &hub.url("/v1/file"),
                remote_path,
                file.bytes,
                file.sha,
            )
            .await
        }
        _ => unreachable!("{phase:?} runs without a hub"),
    }
}

async fn run_baseline(
    phase: Phase,
    store: &Store,
    file: &BigFile<'_>,
    work: &Path,
) -> Result<Duration> {
    match phase {
        Phase::CpFsync => {
            let copy = work.join("copy.bin");
            let started = Instant::now();
            let status = Command::new("cp")
                .arg(file.path)
                .arg(&copy)
                .status()
                .await?;
            ensure!(status.success(), "cp failed: {status}");
            let synced = copy.clone();
            tokio::task::spawn_blocking(move || std::fs::File::open(synced)?.sync_all()).await??;
            let elapsed = started.elapsed();
            std::fs::remove_file(&copy)?;
            Ok(elapsed)
        }
        Phase::RawPut => raw_put(store.raw.as_ref().expect("an S3 store"), file).await,
        Phase::RawGet => raw_get(store.raw.as_ref().expect("an S3 store"), file).await,
        _ => unreachable!("{phase:?} runs through a hub"),
    }
}

fn raw_key(index: u64) -> String {
    format!("obj-{index:06}")
}

/// The file to moto in [`RAW_OBJECT`] pieces, one PUT at a time (as the
/// hub's client sends chunks); one piece in memory at once.
async fn raw_put(bucket: &TestBucket, file: &BigFile<'_>) -> Result<Duration> {
    let http = sf_test_support::s3::client();
    let mut source = tokio::fs::File::open(file.path).await?;
    let started = Instant::now();
    let mut index = 0;
    loop {
        let mut piece = Vec::with_capacity(RAW_OBJECT as usize);
        (&mut source)
            .take(RAW_OBJECT)
            .read_to_end(&mut piece)
            .await?;
        if piece.is_empty() {
            break;
        }
        let url = bucket.object_url(&raw_key(index));
        let answer = http.put(&url).body(piece).send().await?;
        ensure!(
            answer.status().is_success(),
            "PUT {url}: {}",
            answer.status()
        );
        index += 1;
    }
    Ok(started.elapsed())
}

/// The pieces back from moto, one GET at a time, hashed as they arrive and
/// checked against the source.
async fn raw_get(bucket: &TestBucket, file: &BigFile<'_>) -> Result<Duration> {
    let http = sf_test_support::s3::client();
    let started = Instant::now();
    let mut hasher = Sha256::new();
    let mut received = 0u64;
    for index in 0..file.bytes.div_ceil(RAW_OBJECT) {
        let url = bucket.object_url(&raw_key(index));
        let answer = http.get(&url).send().await?;
        ensure!(
            answer.status().is_success(),
            "GET {url}: {}",
            answer.status()
        );
        let mut body = answer.bytes_stream();
        while let Some(frame) = body.next().await {
            let frame = frame?;
            received += frame.len() as u64;
            hasher.update(&frame);
        }
    }
    let elapsed = started.elapsed();
    let actual = Sha256Hex::from(hasher);
    ensure!(
        received == file.bytes && actual == file.sha,
        "read back {received} bytes hashing to {actual} from moto, expected {} bytes, {}",
        file.bytes,
        file.sha
    );
    Ok(elapsed)
}
