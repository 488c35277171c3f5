//! Part 2, one large file: wall time and the hub's peak RSS for uploading
//! and downloading it through the legacy API and through v1, next to `cp`
//! (and `cp` + fsync) of the same file; a fresh hub for every phase.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use sf_protocol::Sha256Hex;
use sf_test_support::bench::LogNotes;
use sf_test_support::write_random_file;
use tokio::process::Command;

use crate::api::{download, legacy_upload, v1_upload};
use crate::hub::{BenchHub, sqlite_url};
use crate::{Config, KIB, MIB};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BigPhase {
    CpFsync,
    Cp,
    LegacyUpload,
    LegacyDownload,
    V1Upload,
    V1Download,
}

impl BigPhase {
    const ALL: [BigPhase; 6] = [
        BigPhase::CpFsync,
        BigPhase::Cp,
        BigPhase::LegacyUpload,
        BigPhase::LegacyDownload,
        BigPhase::V1Upload,
        BigPhase::V1Download,
    ];

    pub fn label(self) -> &'static str {
        match self {
            BigPhase::CpFsync => "cp + fsync (baseline)",
            BigPhase::Cp => "cp (baseline)",
            BigPhase::LegacyUpload => "legacy POST /upload",
            BigPhase::LegacyDownload => "legacy GET /download",
            BigPhase::V1Upload => "v1 chunk+missing+PUT+commit",
            BigPhase::V1Download => "v1 GET /v1/file",
        }
    }

    fn uses_hub(self) -> bool {
        !matches!(self, BigPhase::CpFsync | BigPhase::Cp)
    }
}

pub struct BigRow {
    pub phase: BigPhase,
    pub seconds: Vec<f64>,
    pub hub_peak_kib: Vec<u64>,
    pub hub_idle_kib: Vec<u64>,
}

pub struct BigReport {
    pub bytes: u64,
    pub rows: Vec<BigRow>,
    pub logs: Vec<(String, LogNotes)>,
}

pub async fn bench_big(config: &Config, exe: &Path, work: &Path) -> Result<BigReport> {
    let bytes = config.big_mib * MIB;
    let source = work.join("source.bin");
    eprintln!(
        "large file: writing {} MiB to {}",
        config.big_mib,
        source.display()
    );
    let source_sha = write_source(&source, bytes).await?;
    let mut report = BigReport {
        bytes,
        rows: BigPhase::ALL
            .iter()
            .map(|&phase| BigRow {
                phase,
                seconds: Vec::new(),
                hub_peak_kib: Vec::new(),
                hub_idle_kib: Vec::new(),
            })
            .collect(),
        logs: Vec::new(),
    };
    for rep in 0..config.reps {
        let legacy_dir = tempfile::tempdir_in(work)?;
        let v1_dir = tempfile::tempdir_in(work)?;
        let remote_path = format!("bench/big-{rep}.bin");
        for row in &mut report.rows {
            let phase = row.phase;
            if !phase.uses_hub() {
                let copy = work.join("copy.bin");
                let elapsed = copy_file(&source, &copy, phase == BigPhase::CpFsync).await?;
                std::fs::remove_file(&copy)?;
                eprintln!(
                    "  rep {}/{} {:<30} {:>7.2} s",
                    rep + 1,
                    config.reps,
                    phase.label(),
                    elapsed.as_secs_f64()
                );
                row.seconds.push(elapsed.as_secs_f64());
                continue;
            }
            let data_dir = match phase {
                BigPhase::LegacyUpload | BigPhase::LegacyDownload => legacy_dir.path(),
                _ => v1_dir.path(),
            };
            let log = work.join(format!("hub-big-{rep}-{phase:?}.log"));
            let hub = BenchHub::start(exe, data_dir, &sqlite_url(data_dir), "sqlite", &log).await?;
            let idle = hub.peak_rss_kib()?;
            let http = hub.client();
            let started = Instant::now();
            let outcome = match phase {
                BigPhase::LegacyUpload => {
                    legacy_upload(&http, hub.base(), &source, &remote_path, bytes, source_sha).await
                }
                BigPhase::V1Upload => {
                    v1_upload(&http, hub.base(), &source, &remote_path, source_sha).await
                }
                BigPhase::LegacyDownload => {
                    download(
                        &http,
                        &hub.url("/download"),
                        &remote_path,
                        bytes,
                        source_sha,
                    )
                    .await
                }
                BigPhase::V1Download => {
                    download(&http, &hub.url("/v1/file"), &remote_path, bytes, source_sha).await
                }
                BigPhase::CpFsync | BigPhase::Cp => unreachable!("baselines run without a hub"),
            };
            let elapsed = started.elapsed();
            let peak = hub.peak_rss_kib()?;
            let summary = hub.stop().await?;
            outcome.with_context(|| format!("{} (rep {})", phase.label(), rep + 1))?;
            eprintln!(
                "  rep {}/{} {:<30} {:>7.2} s, hub peak RSS {:.1} MiB (idle {:.1} MiB)",
                rep + 1,
                config.reps,
                phase.label(),
                elapsed.as_secs_f64(),
                peak as f64 / KIB as f64,
                idle as f64 / KIB as f64
            );
            row.seconds.push(elapsed.as_secs_f64());
            row.hub_peak_kib.push(peak);
            row.hub_idle_kib.push(idle);
            if summary.warnings + summary.errors > 0 {
                report
                    .logs
                    .push((format!("rep {} {}", rep + 1, phase.label()), summary));
            }
        }
        legacy_dir.close()?;
        v1_dir.close()?;
    }
    std::fs::remove_file(&source)?;
    Ok(report)
}

/// Writes `bytes` pseudo-random bytes to `path`; returns their sha256.
async fn write_source(path: &Path, bytes: u64) -> Result<Sha256Hex> {
    let path = path.to_owned();
    Ok(tokio::task::spawn_blocking(move || write_random_file(&path, 0x5eed_b16f, bytes)).await?)
}

/// `cp source dest`, optionally followed by an fsync of the copy.
async fn copy_file(source: &Path, dest: &Path, fsync: bool) -> Result<Duration> {
    let started = Instant::now();
    let status = Command::new("cp").arg(source).arg(dest).status().await?;
    ensure!(status.success(), "cp failed: {status}");
    if fsync {
        let dest = dest.to_owned();
        tokio::task::spawn_blocking(move || std::fs::File::open(dest)?.sync_all()).await??;
    }
    Ok(started.elapsed())
}
