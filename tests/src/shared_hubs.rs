//! Several `sf-hub` processes serving one set of files (issue 13, scale
//! out): one private PostgreSQL database ([`PgDatabase`]) and one private
//! S3 bucket on `moto_server` ([`TestBucket`]) shared by every hub, each
//! hub with a data dir of its own (its temp files). The hubs are [`Hub`]s,
//! so each can be SIGKILLed and restarted on its port; they all know one
//! token, given as `SF_HUB_BOOTSTRAP_TOKEN` (a hub on a database that
//! already has tokens makes no first-start token file).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use sf_test_support::PgDatabase;
use sf_test_support::s3::TestBucket;

use crate::bins::binary;
use crate::hub_queries::http_client;
use crate::{Hub, HubOptions, Sandbox, write_token_file};

/// Hubs on one PostgreSQL database and one bucket.
pub struct SharedHubs {
    /// First, so they are killed before the database is dropped.
    pub hubs: Vec<Hub>,
    pub bucket: TestBucket,
    pub pg: PgDatabase,
    token: String,
}

impl SharedHubs {
    /// Starts `count` hubs, one after the other, in `<sandbox>/hub1`,
    /// `hub2`, …, and checks that each serves PostgreSQL and S3. `None`,
    /// after a loud `skipped` line, when `SF_TEST_DATABASE_URL` or
    /// `moto_server` is missing (in CI that fails the test instead).
    pub async fn start(test: &str, sandbox: &Sandbox, count: usize) -> Option<SharedHubs> {
        let pg = PgDatabase::create(test).await?;
        let bucket = TestBucket::create(test).await?;
        let token = generate_token(sandbox.path());
        let mut env: Vec<(String, String)> = bucket
            .env()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        env.push(("SF_HUB_BOOTSTRAP_TOKEN".into(), token.clone()));
        let options = HubOptions {
            args: vec!["--database-url".into(), pg.url().to_owned()],
            env,
            ..HubOptions::default()
        };
        let mut hubs = Vec::with_capacity(count);
        for n in 1..=count {
            let hub = Hub::start_with(&sandbox.dir(&format!("hub{n}")), options.clone()).await;
            let ready = readyz(hub.url()).await;
            assert!(
                ready["database"] == "postgres" && ready["store"] == "s3",
                "hub {n} at {} does not serve PostgreSQL and S3: {ready}",
                hub.url()
            );
            hubs.push(hub);
        }
        sandbox.step(&format!(
            "{count} hubs on database {} and bucket {}: {}",
            pg.name(),
            bucket.store(),
            hubs.iter().map(Hub::url).collect::<Vec<_>>().join(", ")
        ));
        Some(SharedHubs {
            hubs,
            bucket,
            pg,
            token,
        })
    }

    /// The URL of hub `n`, counted from 1 as in the sandbox's folders.
    pub fn url(&self, n: usize) -> String {
        self.hubs[n - 1].url().to_owned()
    }

    /// The write token every hub knows.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The token in a private file `<dir>/token`, for `sf-agent
    /// --token-file` (an agent given several hubs gets no token from the
    /// harness's registry, which is by URL).
    pub fn token_file(&self, dir: &Path) -> PathBuf {
        write_token_file(dir, "token", &self.token)
    }
}

/// `/readyz` of the hub at `url`, as JSON.
async fn readyz(url: &str) -> serde_json::Value {
    http_client()
        .get(format!("{url}/readyz"))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .unwrap_or_else(|e| panic!("{url}/readyz: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("{url}/readyz: {e}"))
}

/// A fresh token from `sf-hub token generate`, as an operator makes one.
fn generate_token(cwd: &Path) -> String {
    let output = sf_test_support::hub_command(&binary("sf-hub"), cwd)
        .args(["token", "generate"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run sf-hub token generate");
    assert!(
        output.status.success(),
        "sf-hub token generate failed with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout)
        .expect("sf-hub token generate prints UTF-8")
        .trim()
        .to_owned();
    assert!(
        token.starts_with(sf_protocol::v1::TOKEN_PREFIX),
        "sf-hub token generate printed {token:?}"
    );
    token
}
