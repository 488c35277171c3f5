//! A real Prometheus (`SF_PROMETHEUS_BIN`, or `prometheus` on `PATH`)
//! scraping given targets on a free port, killed when dropped: the
//! dashboards' PromQL is checked against what it really stores.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sf_test_support::{LogFile, PROCESS_DEADLINE, Process, free_port};

use crate::hub_queries::http_client;
use crate::services::find_on_path;

/// A real Prometheus (`SF_PROMETHEUS_BIN`, or `prometheus` on `PATH`)
/// scraping given targets, its data and log in a folder of the sandbox.
pub struct Prometheus {
    process: Process,
    log: LogFile,
    url: String,
    http: reqwest::Client,
}

impl Prometheus {
    /// Where the Prometheus binary is, if installed.
    pub fn binary() -> Option<PathBuf> {
        match std::env::var_os("SF_PROMETHEUS_BIN") {
            Some(path) => Some(PathBuf::from(path)),
            None => find_on_path("prometheus"),
        }
    }

    /// Starts Prometheus in `dir` scraping `/metrics` of every `(job,
    /// host:port)` every `interval`, on a free port of 127.0.0.1, and waits
    /// for `/-/ready`.
    pub async fn start(
        binary: &Path,
        dir: &Path,
        targets: &[(&str, SocketAddr)],
        interval: Duration,
    ) -> Prometheus {
        fs::create_dir_all(dir).expect("create the Prometheus folder");
        let interval_ms = interval.as_millis();
        let mut config = format!(
            "global:\n  scrape_interval: {interval_ms}ms\n  scrape_timeout: {interval_ms}ms\n  \
             evaluation_interval: {interval_ms}ms\n\
             scrape_configs:\n"
        );
        for (job, addr) in targets {
            config.push_str(&format!(
                "  - job_name: {job}\n    metrics_path: /metrics\n    static_configs:\n      \
                 - targets: ['{addr}']\n"
            ));
        }
        let config_path = dir.join("prometheus.yml");
        fs::write(&config_path, config).expect("write prometheus.yml");
        let log = LogFile::new(dir.join("prometheus.log"));
        let mut attempts = 0;
        loop {
            attempts += 1;
            let port = free_port();
            let (stdout, stderr) = log.stdio();
            let process = Process::spawn(
                Command::new(binary)
                    .arg(format!("--config.file={}", config_path.display()))
                    .arg(format!(
                        "--storage.tsdb.path={}",
                        dir.join("data").display()
                    ))
                    .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                    .current_dir(dir)
                    .stdin(Stdio::null())
                    .stdout(stdout)
                    .stderr(stderr),
            )
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
            eprintln!(
                "prometheus pid {} on 127.0.0.1:{port}",
                process.pid().expect("a child just spawned")
            );
            let mut prometheus = Prometheus {
                process,
                log: log.clone(),
                url: format!("http://127.0.0.1:{port}"),
                http: http_client(),
            };
            match prometheus.wait_ready().await {
                Ok(()) => return prometheus,
                // Another process took the port between our probe and its bind.
                Err(err) if err.contains("address already in use") && attempts < 5 => {
                    eprintln!("prometheus lost port {port}; retrying");
                }
                Err(err) => panic!("{err}"),
            }
        }
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            if let Ok(resp) = self.http.get(format!("{}/-/ready", self.url)).send().await
                && resp.status().is_success()
            {
                return Ok(());
            }
            if let Some(status) = self.process.exited() {
                return Err(format!(
                    "prometheus exited during start-up with {status}; log:\n{}",
                    self.log.read()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "prometheus not ready within {PROCESS_DEADLINE:?}; log:\n{}",
                    self.log.read()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Waits until the `job` target is up and Prometheus holds at least
    /// `samples` scrapes of it from the last minute.
    pub async fn wait_scraped(&self, job: &str, samples: u32, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let targets = self.get("/api/v1/targets", &[]).await;
            let up = targets.as_ref().is_ok_and(|t| {
                t["data"]["activeTargets"].as_array().is_some_and(|all| {
                    all.iter()
                        .any(|t| t["labels"]["job"] == job && t["health"] == "up")
                })
            });
            let last = if up {
                let count = self
                    .query(&format!("count_over_time(up{{job=\"{job}\"}}[1m])"))
                    .await
                    .ok()
                    .and_then(|r| {
                        r["data"]["result"][0]["value"][1]
                            .as_str()
                            .and_then(|v| v.parse::<f64>().ok())
                    })
                    .unwrap_or(0.0);
                if count >= f64::from(samples) {
                    eprintln!("prometheus holds {count} scrapes of {job}");
                    return;
                }
                format!("{job} is up, {count} scrapes so far")
            } else {
                format!("targets: {targets:?}")
            };
            assert!(
                Instant::now() < deadline,
                "prometheus did not scrape {job} {samples} times within {timeout:?}: {last}\nlog:\n{}",
                self.log.read()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// `GET /api/v1/query?query=expr` at the current time: the whole JSON
    /// answer (also for an error status, whose body says why).
    pub async fn query(&self, expr: &str) -> Result<serde_json::Value, String> {
        self.get("/api/v1/query", &[("query", expr)]).await
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<serde_json::Value, String> {
        let resp = self
            .http
            .get(format!("{}{path}", self.url))
            .query(query)
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| format!("GET {path}: {e}"))?;
        serde_json::from_str(&body).map_err(|e| format!("GET {path}: {status}: {e}: {body}"))
    }

    pub fn log(&self) -> String {
        self.log.read()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.process.kill_quietly();
        if std::thread::panicking() {
            self.log.print_tail("prometheus", 40);
        }
    }
}
