//! A real S3 protocol server for tests: `moto_server` (PyPI `moto`), one per
//! test process, started on first use on a free loopback port, with a
//! private bucket per test. The server runs under a shell that kills it
//! once the test process's end of its stdin closes, so no server outlives
//! the tests that started it, however they end. Without `moto_server` a
//! test is skipped loudly ([`crate::skip::unavailable`]), or fails in CI.
//!
//! moto checks no signatures (it only wants to see who asks), so tests can
//! also read and damage objects with plain HTTP ([`client`]).

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Names the `moto_server` program when it is not on `PATH`.
pub const MOTO_VAR: &str = "SF_MOTO_SERVER";

const HOW: &str =
    "install it with `pip install 'moto[server]'` (or set SF_MOTO_SERVER to its path)";

/// The access key every test hub is given (moto accepts any).
pub const ACCESS_KEY_ID: &str = "sf-test-key";
pub const SECRET_ACCESS_KEY: &str = "sf-test-secret";
pub const REGION: &str = "us-east-1";

/// The shared server of this test process.
pub struct S3Server {
    endpoint: String,
    /// The watchdog shell; its stdin is held open for the process's life.
    _watchdog: Mutex<(Child, std::process::ChildStdin)>,
}

impl S3Server {
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

fn moto_program() -> String {
    std::env::var(MOTO_VAR)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "moto_server".into())
}

/// Whether `moto_server` can be run here.
pub fn available() -> bool {
    Command::new(moto_program())
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The process's server, started on first use; an error says why it could
/// not start.
pub fn server() -> Result<&'static S3Server, String> {
    static SERVER: OnceLock<Result<S3Server, String>> = OnceLock::new();
    SERVER.get_or_init(start).as_ref().map_err(Clone::clone)
}

fn start() -> Result<S3Server, String> {
    let port = crate::ports::free_port();
    let log = std::env::temp_dir().join(format!("sf-moto-{}-{port}.log", std::process::id()));
    // `cat` returns when our end of its stdin closes: the test process is
    // gone (or done), and so must the server be.
    let script = format!(
        "\"$0\" -H 127.0.0.1 -p {port} >\"$1\" 2>&1 & server=$!; cat >/dev/null; kill $server"
    );
    let mut child = Command::new("sh")
        .args(["-c", &script, &moto_program(), &log.display().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start moto_server: {e}"))?;
    let stdin = child.stdin.take().expect("piped stdin");
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "moto_server exited ({status}) before it listened; its log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(format!(
                "moto_server did not listen on {endpoint} within 60 s; its log: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "S3 protocol server (moto_server) at {endpoint}, log {}",
        log.display()
    );
    Ok(S3Server {
        endpoint,
        _watchdog: Mutex::new((child, stdin)),
    })
}

/// A client for plain HTTP requests to moto: an `Authorization` header
/// naming the test key (moto refuses anonymous reads of private objects,
/// and checks no signature).
pub fn client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!(
            "AWS4-HMAC-SHA256 Credential={ACCESS_KEY_ID}/20260101/{REGION}/s3/aws4_request, \
             SignedHeaders=host, Signature=00"
        ))
        .expect("a valid header"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("an HTTP client")
}

/// A bucket made for one test on the shared server.
#[derive(Debug, Clone)]
pub struct TestBucket {
    pub endpoint: String,
    pub bucket: String,
    /// The key prefix the hub is given (`--store s3://bucket/prefix`).
    pub prefix: String,
}

impl TestBucket {
    /// A new bucket for `test`: `None`, after [`crate::skip::unavailable`],
    /// when `moto_server` is not installed; panics when it fails to start.
    pub async fn create(test: &str) -> Option<Self> {
        if !available() {
            crate::skip::unavailable(test, "moto_server (an S3 protocol server) is missing", HOW);
            return None;
        }
        let server = tokio::task::spawn_blocking(server)
            .await
            .expect("starting moto_server")
            .unwrap_or_else(|e| panic!("{test}: {e}"));
        Some(
            Self::create_on(server.endpoint())
                .await
                .unwrap_or_else(|e| panic!("{test}: {e}")),
        )
    }

    /// A new bucket on the S3 server at `endpoint`.
    pub async fn create_on(endpoint: &str) -> Result<Self, String> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let bucket = format!(
            "sf-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let answer = client()
            .put(format!("{endpoint}/{bucket}"))
            .send()
            .await
            .map_err(|e| format!("cannot create bucket {bucket}: {e}"))?;
        if !answer.status().is_success() {
            return Err(format!(
                "creating bucket {bucket} was answered {}",
                answer.status()
            ));
        }
        Ok(Self {
            endpoint: endpoint.to_owned(),
            bucket,
            prefix: "hub".into(),
        })
    }

    /// The hub's `--store` value.
    pub fn store(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    /// The variables a hub child process needs besides `--store`.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SF_STORE", self.store()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", REGION.into()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.into()),
        ]
    }

    /// The plain-HTTP URL of the object at `key` (under the prefix).
    pub fn object_url(&self, key: &str) -> String {
        format!("{}/{}/{}/{key}", self.endpoint, self.bucket, self.prefix)
    }

    /// The key of chunk `hash` (hex), as the hub names it.
    pub fn chunk_key(hash_hex: &str) -> String {
        format!("chunks/{}/{hash_hex}", &hash_hex[..2])
    }

    /// The keys under `prefix` (below the hub's prefix), sorted.
    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = format!(
                "{}/{}?list-type=2&prefix={}/{prefix}",
                self.endpoint, self.bucket, self.prefix
            );
            if let Some(token) = &token {
                url.push_str(&format!("&continuation-token={token}"));
            }
            let text = client()
                .get(&url)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .expect("list the bucket")
                .text()
                .await
                .expect("list body");
            let strip = format!("{}/", self.prefix);
            keys.extend(
                xml_values(&text, "Key")
                    .into_iter()
                    .map(|key| key.strip_prefix(&strip).unwrap_or(&key).to_owned()),
            );
            token = xml_values(&text, "NextContinuationToken")
                .into_iter()
                .next();
            if token.is_none() {
                break;
            }
        }
        keys.sort();
        keys
    }

    /// Replaces the object at `key` with `bytes` (damage, for a test).
    pub async fn put_object(&self, key: &str, bytes: Vec<u8>) {
        client()
            .put(self.object_url(key))
            .body(bytes)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .unwrap_or_else(|e| panic!("cannot write {key}: {e}"));
    }

    /// The object at `key`, or `None` when absent.
    pub async fn get_object(&self, key: &str) -> Option<Vec<u8>> {
        let answer = client()
            .get(self.object_url(key))
            .send()
            .await
            .expect("GET object");
        if answer.status() == reqwest::StatusCode::NOT_FOUND {
            return None;
        }
        let answer = answer.error_for_status().expect("GET object status");
        Some(answer.bytes().await.expect("object body").to_vec())
    }
}

/// The text of every `<tag>…</tag>` in `xml` (S3 listings are simple).
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split(&close).next())
        .map(|value| value.replace("&amp;", "&"))
        .collect()
}
