//! The deployment files, checked without Docker: the Grafana dashboards and
//! provisioning (`dashboards/`), the Compose stack (`compose/`) against the
//! Compose Specification's JSON schema and against the real binaries'
//! `--help`, how the services point at each other, its secrets and
//! published ports (`security`), and the hub and the agent started natively
//! with the compose `hub` and `agent` services' environments.
//!
//! The compose files are interpolated as Compose does, with a user's
//! `.env`: `.env.example` with the secrets it leaves empty filled in with
//! fresh random values (no secret is written in the repository).
//!
//! Layout: this file holds the tests; `deploy_files/` the checks they run —
//! `grafana.rs` (dashboards and provisioning), `compose.rs` (the stack as
//! loaded and interpolated) and `compose_checks.rs` (the files on their
//! own), `wiring.rs` (how the services reach each other), `security.rs`
//! (secrets and published ports), and what those use: `interpolate.rs`
//! (Compose's `${VAR}` rules), `dockerfile.rs` (stages and their `ENV`),
//! `helpers.rs`.
//!
//! Each check collects every problem and fails with the whole list.
//! The `scale` profile (two hubs behind a load balancer, on PostgreSQL and
//! S3) is checked by the same checks (`scale.rs`: each hub's database and
//! store, the balancer's upstreams; `lb.rs`: its HAProxy configuration),
//! and partly run natively: its secret guard (`sh`), the script that
//! creates the hubs' database (`psql`, `createdb`, on
//! `SF_TEST_DATABASE_URL`'s server), and the real `haproxy`
//! (`SF_HAPROXY_BIN`, or `haproxy` on `PATH` or in /usr/sbin) with the
//! compose configuration in front of two stand-in hubs. `promtool` (next to
//! Prometheus) checks `compose/prometheus.yml`.
//!
//! `SF_REPO_ROOT` points the checks at another copy of the repository;
//! `checks_catch_broken_copies` breaks copies on purpose and expects each
//! check to notice. `SF_COMPOSE_SCHEMA` is the path of the schema
//! (`compose/config/compose_spec.json` of the docker-compose 1.29.2 wheel;
//! `.ci/run` fetches it); `SF_TEST_DATABASE_URL` a PostgreSQL server. Without
//! them (or without `haproxy`, which `.ci/run` installs) those parts are
//! skipped loudly, except in CI, where they fail.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sf_e2e::binary;
use sf_e2e::services::{
    HubProcess, PgDatabase, dashboard_panels, load_dashboards, repo_root, unavailable,
};
use sf_protocol::v1::TOKEN_PREFIX;

// In a folder of their own, so cargo does not take them for test targets.
// Each opens with `use super::*`: the checks share one namespace.
#[path = "deploy_files/compose.rs"]
mod compose;
#[path = "deploy_files/compose_checks.rs"]
mod compose_checks;
#[path = "deploy_files/dockerfile.rs"]
mod dockerfile;
#[path = "deploy_files/grafana.rs"]
mod grafana;
#[path = "deploy_files/helpers.rs"]
mod helpers;
#[path = "deploy_files/interpolate.rs"]
mod interpolate;
#[path = "deploy_files/lb.rs"]
mod lb;
#[path = "deploy_files/scale.rs"]
mod scale;
#[path = "deploy_files/security.rs"]
mod security;
#[path = "deploy_files/wiring.rs"]
mod wiring;

use compose::*;
use compose_checks::*;
use dockerfile::*;
use grafana::*;
use helpers::*;
use interpolate::*;
use lb::*;
use scale::*;
use wiring::*;

// ----------------------------------------------------------------------
// The checks
// ----------------------------------------------------------------------

#[test]
fn dashboards_are_valid_grafana_json() {
    let root = repo_root();
    let mut problems = check_dashboards(&root);
    problems.extend(check_grafana_provisioning(&root));
    assert_no_problems("dashboards/", &problems);
}

#[test]
fn compose_file_follows_the_compose_spec() {
    let root = repo_root();
    let mut problems = check_compose(&root, &Helps::of_binaries());
    match compose_schema() {
        Some(schema) => problems.extend(check_compose_schema(&root, &schema)),
        None => unavailable(
            "compose_file_follows_the_compose_spec (schema part)",
            "SF_COMPOSE_SCHEMA is unset",
            "set SF_COMPOSE_SCHEMA to the Compose Specification schema, e.g.:\n  \
             pip download docker-compose==1.29.2 --no-deps -d /tmp/cs && python3 -c \
             \"import zipfile,glob; z=zipfile.ZipFile(glob.glob('/tmp/cs/*.whl')[0]); \
             open('/tmp/cs/compose_spec.json','wb').write(z.read('compose/config/compose_spec.json'))\"\n  \
             export SF_COMPOSE_SCHEMA=/tmp/cs/compose_spec.json",
        ),
    }
    assert_no_problems("compose/", &problems);
}

/// Compose refuses to start without the hub's token, the database's and
/// Grafana's passwords, and nothing in the repository is one.
#[test]
fn compose_secrets_come_only_from_the_env_file() {
    let root = repo_root();
    let mut problems = security::check_secrets(&root);
    problems.extend(security::check_required(&root));
    problems.extend(security::check_deferred(&root));
    assert_no_problems("compose/ (secrets)", &problems);
}

#[test]
fn compose_publishes_ports_on_loopback_unless_widened() {
    let root = repo_root();
    assert_no_problems("compose/ (ports)", &security::check_ports(&root));
}

/// The commands `.env.example` shows make a token the hub's format
/// requires and URL-safe passwords, different every time.
#[test]
fn env_example_shows_how_to_generate_its_secrets() {
    let commands = security::generators(&repo_root());
    let tokens = commands.iter().filter(|c| c.contains(TOKEN_PREFIX)).count();
    assert!(
        tokens > 0,
        "compose/.env.example shows no command that makes a token ({TOKEN_PREFIX}…): {commands:?}"
    );
    assert!(
        commands.len() > tokens,
        "compose/.env.example shows no command that makes a password: {commands:?}"
    );
    for command in &commands {
        let (first, second) = (
            security::run_generator(command),
            security::run_generator(command),
        );
        // Values are never printed, even made-up ones.
        assert_ne!(first.len(), 0, "`{command}` prints nothing");
        assert!(first != second, "`{command}` prints the same twice");
        if command.contains(TOKEN_PREFIX) {
            assert!(
                security::is_token(&first),
                "`{command}` prints {} characters that are not a token ({TOKEN_PREFIX} and 43 \
                 URL-safe base64 characters)",
                first.len()
            );
        } else {
            assert!(
                first.len() >= 24
                    && first
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "`{command}` prints a password of {} characters that is short or not URL-safe \
                 (the exporter's DATA_SOURCE_NAME is a URL)",
                first.len()
            );
        }
    }
}

#[test]
fn compose_services_are_wired_together() {
    let root = repo_root();
    assert_no_problems("compose/ and dashboards/", &check_wiring(&root));
}

/// Prometheus' own checker accepts the stack's prometheus.yml (the wiring
/// check reads only its targets).
#[test]
fn compose_prometheus_config_passes_promtool() {
    // promtool ships next to prometheus (Debian's package, which .ci/run
    // installs, has both).
    let promtool = sf_e2e::services::Prometheus::binary()
        .and_then(|p| p.parent().map(|dir| dir.join("promtool")))
        .filter(|p| p.is_file())
        .or_else(|| sf_e2e::services::find_on_path("promtool"));
    let Some(promtool) = promtool else {
        unavailable(
            "compose_prometheus_config_passes_promtool",
            "promtool is not installed",
            "install Prometheus (Debian: apt-get install prometheus; .ci/run does)",
        );
        return;
    };
    let config = repo_root().join("compose/prometheus.yml");
    let output = Command::new(&promtool)
        .args(["check", "config", "--syntax-only"])
        .arg(&config)
        .output()
        .expect("run promtool");
    assert!(
        output.status.success(),
        "promtool check config {}:\n{}{}",
        config.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_hub_environment_starts_a_hub() {
    const TEST: &str = "compose_hub_environment_starts_a_hub";
    let root = repo_root();
    let mut compose = Compose::load(&root).unwrap_or_else(|e| panic!("{e}"));
    // The token a user puts in .env, made the way .env.example shows.
    let token = security::generators(&root)
        .iter()
        .find(|c| c.contains(TOKEN_PREFIX))
        .map(|c| security::run_generator(c))
        .unwrap_or_else(|| panic!("compose/.env.example shows no command that makes a token"));
    compose.set_var("SF_HUB_BOOTSTRAP_TOKEN", &token);
    let service = compose
        .service("hub")
        .unwrap_or_else(|| panic!("compose/docker-compose.yml has no `hub` service"));
    let mut env = service.environment.clone();
    let mut args = service.command.clone();
    let Some(pg) = PgDatabase::create(TEST).await else {
        return;
    };
    let sandbox = tempfile::Builder::new()
        .prefix("sf-e2e-compose-hub-")
        .tempdir()
        .expect("a sandbox");

    // Only what must differ outside the containers: addresses, the data
    // directory, and which PostgreSQL server and database.
    let data_dir = sandbox.path().join("data").display().to_string();
    let mut overridden = Vec::new();
    let mut set = |env: &mut BTreeMap<String, String>, name: &str, value: Option<String>| {
        if env.contains_key(name) {
            overridden.push(name.to_owned());
            match value {
                Some(value) => env.insert(name.to_owned(), value),
                None => env.remove(name),
            };
        }
    };
    let parts = pg.parts();
    for (name, value) in [
        ("SF_LISTEN", Some("127.0.0.1:0".to_owned())),
        ("SF_METRICS_LISTEN", Some("127.0.0.1:0".to_owned())),
        ("SERVER_HOST", Some("127.0.0.1".to_owned())),
        ("SERVER_PORT", Some("0".to_owned())),
        ("METRICS_HOST", Some("127.0.0.1".to_owned())),
        ("METRICS_PORT", Some("0".to_owned())),
        ("SF_DATA_DIR", Some(data_dir.clone())),
        ("STORAGE_DIR", Some(data_dir.clone())),
        ("DATABASE_URL", Some(pg.url().to_owned())),
        ("POSTGRES_HOST", Some(parts.host.clone())),
        ("POSTGRES_PORT", Some(parts.port.to_string())),
        ("POSTGRES_DB", Some(parts.database.clone())),
        ("POSTGRES_USER", Some(parts.user.clone())),
        ("POSTGRES_PASSWORD", parts.password.clone()),
    ] {
        set(&mut env, name, value);
    }
    // Without any of them the hub would use its defaults (127.0.0.1:8080,
    // 127.0.0.1:8000, ./data): keep it off ports that may be taken.
    if !env.contains_key("SF_LISTEN") && !env.contains_key("SERVER_PORT") {
        args.extend(["--listen".to_owned(), "127.0.0.1:0".to_owned()]);
    }
    if !env.contains_key("SF_METRICS_LISTEN") && !env.contains_key("METRICS_PORT") {
        args.extend(["--metrics-listen".to_owned(), "127.0.0.1:0".to_owned()]);
    }
    for (flag, value) in [
        ("--listen", "127.0.0.1:0"),
        ("--metrics-listen", "127.0.0.1:0"),
        ("--data-dir", data_dir.as_str()),
        ("--database-url", pg.url()),
    ] {
        override_flag(&mut args, flag, value);
    }
    eprintln!(
        "the compose hub environment, {overridden:?} overridden: {:?}",
        env.keys()
    );
    let args: Vec<OsString> = args.into_iter().map(OsString::from).collect();
    let hub = HubProcess::start(&env, &args)
        .await
        .unwrap_or_else(|e| panic!("the hub does not start with the compose environment: {e}"));
    let ready = hub.ready();
    assert_eq!(ready["status"], "ready", "/readyz: {ready}");
    assert_eq!(
        ready["database"], "postgres",
        "with the compose environment the hub must run on PostgreSQL; /readyz: {ready}"
    );

    // The API asks for a token; the compose one is the write token
    // `bootstrap`; /healthz stays open for the healthcheck, and the metrics
    // listener for Prometheus, which sends no token.
    let http = reqwest::Client::new();
    let whoami = format!("{}/v1/whoami", hub.url());
    let refused = http.get(&whoami).send().await.expect("GET /v1/whoami");
    assert_eq!(
        refused.status(),
        401,
        "/v1/whoami without a token: the hub must ask for one"
    );
    let challenge = refused.headers().get("www-authenticate");
    assert!(
        challenge.is_some_and(|v| v.as_bytes().starts_with(b"Bearer")),
        "401 without `WWW-Authenticate: Bearer`: {challenge:?}"
    );
    let who = http
        .get(&whoami)
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET /v1/whoami with the compose token");
    assert_eq!(
        who.status(),
        200,
        "the hub refuses the token of SF_HUB_BOOTSTRAP_TOKEN; log:\n{}",
        hub.log()
    );
    let who: Value = who.json().await.expect("/v1/whoami is JSON");
    assert_eq!(
        (who["token"].as_str(), who["scope"].as_str()),
        (Some("bootstrap"), Some("write")),
        "SF_HUB_BOOTSTRAP_TOKEN must be the write token `bootstrap`: {who}"
    );
    for url in [
        format!("{}/healthz", hub.url()),
        format!("http://{}/metrics", hub.metrics_addr()),
    ] {
        let status = http.get(&url).send().await.map(|r| r.status());
        assert!(
            status.as_ref().is_ok_and(|s| s.is_success()),
            "{url} without a token: {status:?}"
        );
    }

    // The compose agent, with its environment: it reaches the hub with the
    // same token (SF_TOKEN) and sends a file.
    let mut agent = compose
        .service("agent")
        .unwrap_or_else(|| panic!("compose/docker-compose.yml has no `agent` service"));
    let folder = sandbox.path().join("sync");
    fs::create_dir_all(&folder).expect("the agent's folder");
    fs::write(folder.join("hello.txt"), b"from the compose agent").expect("a file to sync");
    for (name, value) in [
        ("SERVER_URL", hub.url().to_owned()),
        ("SYNC_DIR", folder.display().to_string()),
        (
            "SF_AGENT_HOME",
            sandbox.path().join("agent-home").display().to_string(),
        ),
    ] {
        agent.environment.insert(name.to_owned(), value);
    }
    let log_path = sandbox.path().join("sf-agent.log");
    let log = fs::File::create(&log_path).expect("the agent's log");
    let child = Command::new(binary("sf-agent"))
        .env_clear()
        .envs(&agent.environment)
        .args(&agent.command)
        .current_dir(sandbox.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("the agent's log"))
        .stderr(log)
        .spawn()
        .expect("spawn sf-agent");
    let mut agent_process = Killed(child);
    let agent_log = || fs::read_to_string(&log_path).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let index: Option<Value> = match http
            .get(format!("{}/index", hub.url()))
            .bearer_auth(&token)
            .send()
            .await
        {
            Ok(resp) if resp.status().is_success() => resp.json().await.ok(),
            _ => None,
        };
        if index.is_some_and(|i| !i["index"]["hello.txt"].is_null()) {
            break;
        }
        if let Ok(Some(status)) = agent_process.0.try_wait() {
            panic!(
                "the compose agent exited with {status} before sending hello.txt; log:\n{}",
                agent_log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "the compose agent did not send hello.txt to the hub within 60 s; log:\n{}",
            agent_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (who, log) in [("sf-hub", hub.log()), ("sf-agent", agent_log())] {
        assert!(!log.contains(&token), "{who} logs the token");
    }
}

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The checks on broken copies of the repository's files: each must report
/// the breakage it is there for.
#[test]
fn checks_catch_broken_copies() {
    let root = repo_root();
    let helps = Helps::of_binaries();
    let schema = compose_schema();
    let cases: Vec<(&str, &str, Edit)> = vec![
        (
            "a duplicated panel id",
            "panel id 1 twice",
            edit(|copy| {
                edit_json(&copy.join("dashboards/json/hub-metrics.json"), |d| {
                    d["panels"][1]["id"] = d["panels"][0]["id"].clone();
                })
            }),
        ),
        (
            "a target on an unknown datasource",
            "datasource uid \"no-such-uid\"",
            edit(|copy| {
                edit_json(&copy.join("dashboards/json/live-events.json"), |d| {
                    d["panels"][0]["targets"][0]["datasource"]["uid"] = json!("no-such-uid");
                })
            }),
        ),
        (
            "a dashboard uid used twice",
            "dashboard uid \"sf-hub-metrics\" is used by",
            edit(|copy| {
                edit_json(&copy.join("dashboards/json/live-events.json"), |d| {
                    d["uid"] = json!("sf-hub-metrics");
                })
            }),
        ),
        (
            "a provider path where compose mounts nothing",
            "/var/lib/grafana/elsewhere",
            edit(|copy| {
                replace_in(
                    &copy.join("dashboards/provisioning/dashboards/dashboards.yaml"),
                    "path: /var/lib/grafana/dashboards",
                    "path: /var/lib/grafana/elsewhere",
                )
            }),
        ),
        (
            "a hub variable the hub does not read",
            "SF_LISTEN_ADDRESS",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/docker-compose.yml"),
                    "      SF_LISTEN: 0.0.0.0:8080\n",
                    "      SF_LISTEN: 0.0.0.0:8080\n      SF_LISTEN_ADDRESS: 0.0.0.0:8080\n",
                )
            }),
        ),
        (
            "a missing bind-mount source",
            "./no-such-file.yml",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/docker-compose.yml"),
                    "./prometheus.yml:/etc/prometheus/prometheus.yml:ro",
                    "./no-such-file.yml:/etc/prometheus/prometheus.yml:ro",
                )
            }),
        ),
        (
            "a variable missing from .env.example",
            "NOT_IN_ENV_EXAMPLE",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/docker-compose.yml"),
                    "${SF_MAX_FILE_SIZE:-16GiB}",
                    "${NOT_IN_ENV_EXAMPLE:-16GiB}",
                )
            }),
        ),
        (
            "depends_on a service that does not exist",
            "no-such-service",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/docker-compose.yml"),
                    "    depends_on:\n      prometheus:\n",
                    "    depends_on:\n      no-such-service:\n        condition: service_started\n      prometheus:\n",
                )
            }),
        ),
        (
            "an undeclared named volume",
            "undeclared-volume",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/docker-compose.yml"),
                    "- hub-data:/data",
                    "- undeclared-volume:/data",
                )
            }),
        ),
        (
            "Prometheus scraping the hub on the wrong port",
            "hub:9999",
            edit(|copy| replace_in(&copy.join("compose/prometheus.yml"), "hub:8000", "hub:9999")),
        ),
        (
            "a hub listening on loopback inside its container",
            "loopback",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/docker-compose.yml"),
                    "SF_LISTEN: 0.0.0.0:8080",
                    "SF_LISTEN: 127.0.0.1:8080",
                )
            }),
        ),
        (
            "a secret with a default",
            "the secret GF_SECURITY_ADMIN_PASSWORD has a default",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/docker-compose.yml"),
                    GRAFANA_PASSWORD,
                    "${GF_SECURITY_ADMIN_PASSWORD:-admin}",
                )
            }),
        ),
        (
            "a required secret whose message does not say where to set it",
            "does not say to set GF_SECURITY_ADMIN_PASSWORD",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/docker-compose.yml"),
                    GRAFANA_PASSWORD,
                    "${GF_SECURITY_ADMIN_PASSWORD:?required}",
                )
            }),
        ),
        (
            "a password everybody knows in .env.example",
            "gives the secret POSTGRES_PASSWORD a value",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/.env.example"),
                    "\nPOSTGRES_PASSWORD=\n",
                    "\nPOSTGRES_PASSWORD=synced_folder\n",
                )
            }),
        ),
        (
            "a token committed in the compose file",
            "holds a usable token",
            {
                let token = security::random_token();
                edit(move |copy| {
                    replace_in(
                        &copy.join("compose/docker-compose.yml"),
                        &format!("SF_TOKEN: \"{AGENT_TOKEN}\""),
                        &format!("SF_TOKEN: \"{token}\""),
                    )
                })
            },
        ),
        (
            "an agent without the hub's token",
            "the agent's SF_TOKEN is not the hub's",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/docker-compose.yml"),
                    &format!("      SF_TOKEN: \"{AGENT_TOKEN}\"\n"),
                    "",
                )
            }),
        ),
        (
            "Prometheus published on every interface",
            "is published on every interface by default",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/docker-compose.yml"),
                    "\"127.0.0.1:9090:9090\"",
                    "\"9090:9090\"",
                )
            }),
        ),
        (
            "the hub's metrics widened with the API",
            "has no authentication, yet SF_BIND_ADDRESS=0.0.0.0 publishes it",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/docker-compose.yml"),
                    "\"127.0.0.1:8000:8000\"",
                    "\"${SF_BIND_ADDRESS:-127.0.0.1}:8000:8000\"",
                )
            }),
        ),
        (
            "the hub's API on every interface by default",
            "is published on 0.0.0.0 by default",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/docker-compose.yml"),
                    "${SF_BIND_ADDRESS:-127.0.0.1}:8080:8080",
                    "${SF_BIND_ADDRESS:-0.0.0.0}:8080:8080",
                )
            }),
        ),
        (
            "the hub's API not widened by SF_BIND_ADDRESS",
            "SF_BIND_ADDRESS=0.0.0.0 does not publish port",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/docker-compose.yml"),
                    "${SF_BIND_ADDRESS:-127.0.0.1}:8080:8080",
                    "127.0.0.1:8080:8080",
                )
            }),
        ),
        // The scale profile.
        (
            "a hub of the profile the balancer skips",
            "does not forward to hub-2",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/haproxy.cfg"),
                    "    server hub-2 hub-2:8080\n",
                    "",
                )
            }),
        ),
        (
            "a balancer forwarding to a port the hub does not serve",
            "hub-1:9999",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/haproxy.cfg"),
                    "server hub-1 hub-1:8080",
                    "server hub-1 hub-1:9999",
                )
            }),
        ),
        (
            "WebSockets cut after a minute of quiet",
            "`timeout tunnel` is Some(60s)",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/haproxy.cfg"),
                    "timeout tunnel 1h",
                    "timeout tunnel 1m",
                )
            }),
        ),
        (
            "uploads buffered in the balancer",
            "option http-buffer-request",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/haproxy.cfg"),
                    "    option forwardfor\n",
                    "    option forwardfor\n    option http-buffer-request\n",
                )
            }),
        ),
        (
            "the balancer logging request paths (tokens)",
            "log-format logs %HU",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/haproxy.cfg"),
                    "%[var(txn.logpath)]",
                    "%HU",
                )
            }),
        ),
        (
            "hubs checked without /readyz",
            "does not check the hubs' /readyz",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/haproxy.cfg"),
                    "uri /readyz",
                    "uri /healthz",
                )
            }),
        ),
        (
            "scale hubs on their local stores",
            "share the database synced_folder_scale",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/docker-compose.yml"),
                    "      SF_STORE: s3://${SF_S3_BUCKET:-synced-folder}\n",
                    "",
                )
            }),
        ),
        (
            "scale hubs on the demo hub's database",
            "share the database synced_folder on postgres",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/docker-compose.yml"),
                    "      POSTGRES_DB: ${SF_SCALE_POSTGRES_DB:-synced_folder_scale}\n",
                    "",
                )
            }),
        ),
        (
            "a bucket nobody creates",
            "which no service creates",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/docker-compose.yml"),
                    "mc mb --ignore-existing",
                    "mc ls",
                )
            }),
        ),
        (
            "hubs not waiting for their bucket",
            "does not wait for the bucket synced-folder",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/docker-compose.yml"),
                    "      minio-init:\n        condition: service_completed_successfully\n",
                    "",
                )
            }),
        ),
        (
            "Prometheus not scraping one of the hubs",
            "scrapes no hub-2:<port> target",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/prometheus.yml"),
                    "[\"hub-1:8000\", \"hub-2:8000\"]",
                    "[\"hub-1:8000\"]",
                )
            }),
        ),
        (
            "the scale profile's secret with a default",
            "the secret MINIO_ROOT_PASSWORD has a default",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/docker-compose.yml"),
                    "\"${MINIO_ROOT_PASSWORD:-}\"",
                    "\"${MINIO_ROOT_PASSWORD:-minio123}\"",
                )
            }),
        ),
        (
            "the scale profile's secret required of every `docker compose up`",
            "makes every `docker compose up` refuse to start without it",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/docker-compose.yml"),
                    "\"${MINIO_ROOT_PASSWORD:-}\"",
                    "\"${MINIO_ROOT_PASSWORD:?set MINIO_ROOT_PASSWORD in compose/.env}\"",
                )
            }),
        ),
        (
            "a scale service starting before its secret is checked",
            "service minio uses MINIO_ROOT_PASSWORD but does not wait for scale-env",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/docker-compose.yml"),
                    "    depends_on:\n      scale-env:\n        condition: \
                     service_completed_successfully\n",
                    "",
                )
            }),
        ),
        (
            "a guard whose message does not say where to set the secret",
            "the message for an unset MINIO_ROOT_PASSWORD does not say",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/docker-compose.yml"),
                    "$${MINIO_ROOT_PASSWORD:?set MINIO_ROOT_PASSWORD in compose/.env for the \
                     scale profile (see compose/.env.example)}",
                    "$${MINIO_ROOT_PASSWORD:?required}",
                )
            }),
        ),
        (
            "a service of every `docker compose up` waiting for a profile's",
            "depends_on lb, which only starts with profile scale",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/docker-compose.yml"),
                    "    depends_on:\n      hub:\n        condition: service_healthy\n",
                    "    depends_on:\n      hub:\n        condition: service_healthy\n      \
                     lb:\n        condition: service_started\n",
                )
            }),
        ),
        (
            "waiting for a service without a healthcheck to be healthy",
            "depends_on scale-db with service_healthy, but scale-db has no healthcheck",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/docker-compose.yml"),
                    "      scale-db:\n        condition: service_completed_successfully\n",
                    "      scale-db:\n        condition: service_healthy\n",
                )
            }),
        ),
        (
            "the balancer published on every interface",
            "port \"8081:8080\" is published on every interface by default",
            edit(|copy| {
                replace_in(
                    &copy.join("compose/docker-compose.yml"),
                    "\"${SF_BIND_ADDRESS:-127.0.0.1}:8081:8080\"",
                    "\"8081:8080\"",
                )
            }),
        ),
    ];
    let mut missed = Vec::new();
    for (what, expected, edit) in cases {
        let copy = copy_of(&root);
        if let Err(err) = edit(copy.path()) {
            // The file being edited has changed: the case no longer applies.
            missed.push(format!("{what}: cannot break the copy: {err}"));
            continue;
        }
        let mut problems = check_dashboards(copy.path());
        problems.extend(check_grafana_provisioning(copy.path()));
        problems.extend(check_compose(copy.path(), &helps));
        problems.extend(check_wiring(copy.path()));
        problems.extend(security::check_secrets(copy.path()));
        problems.extend(security::check_required(copy.path()));
        problems.extend(security::check_deferred(copy.path()));
        problems.extend(security::check_ports(copy.path()));
        if problems.iter().any(|p| p.contains(expected)) {
            eprintln!(
                "caught {what}: {}",
                problems.iter().find(|p| p.contains(expected)).unwrap()
            );
        } else {
            missed.push(format!(
                "{what}: no problem mentions {expected:?}; problems: {problems:#?}"
            ));
        }
    }
    if let Some(schema) = &schema {
        let copy = copy_of(&root);
        let broken = replace_in(
            &copy.path().join("compose/docker-compose.yml"),
            "    restart: unless-stopped\n",
            "    restart: unless-stopped\n    restart_policy_typo: always\n",
        );
        let problems = check_compose_schema(copy.path(), schema);
        match broken {
            Ok(()) if problems.iter().any(|p| p.contains("restart_policy_typo")) => {
                eprintln!("caught an unknown service key: {problems:?}");
            }
            _ => missed.push(format!(
                "an unknown service key: the schema check reports {problems:?}"
            )),
        }
    }
    assert!(
        missed.is_empty(),
        "checks that miss what they are for:\n{}",
        missed.join("\n")
    );
}

/// Grafana's admin password and the agent's token in docker-compose.yml, as
/// the broken copies find them.
const GRAFANA_PASSWORD: &str = "${GF_SECURITY_ADMIN_PASSWORD:?set GF_SECURITY_ADMIN_PASSWORD in \
                                compose/.env (see compose/.env.example)}";
const AGENT_TOKEN: &str = "${SF_HUB_BOOTSTRAP_TOKEN:?set SF_HUB_BOOTSTRAP_TOKEN in compose/.env \
                           (see compose/.env.example for how to generate one)}";

fn assert_no_problems(what: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{} problem(s) in {what} of {}:\n  - {}",
        problems.len(),
        repo_root().display(),
        problems.join("\n  - ")
    );
}

#[test]
fn compose_interpolation_follows_compose() {
    let vars: BTreeMap<String, String> = [("SET", "v"), ("EMPTY", "")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let mut used = BTreeSet::new();
    let mut run = |s: &str| interpolate_str(s, &vars, &mut used);
    assert_eq!(run("a ${SET} $SET $$SET").unwrap(), "a v v $SET");
    assert_eq!(run("${UNSET:-d} ${EMPTY:-d} ${EMPTY-d}").unwrap(), "d d ");
    assert_eq!(run("${UNSET:-${SET}x}").unwrap(), "vx");
    assert_eq!(run("${SET:+yes}${UNSET:+no}").unwrap(), "yes");
    assert!(run("${UNSET:?needed}").is_err());
    assert!(run("cost: 5$").is_err());
    assert_eq!(
        used,
        ["EMPTY", "SET", "UNSET"]
            .into_iter()
            .map(str::to_owned)
            .collect()
    );
    assert!(mentions_word("[env: SF_LISTEN=]", "SF_LISTEN"));
    assert!(!mentions_word("[env: SF_LISTEN_X=]", "SF_LISTEN"));
    assert!(mentions_word("$XDG_STATE_HOME/sf-agent", "XDG_STATE_HOME"));
}

// ----------------------------------------------------------------------
// The scale profile, run natively
// ----------------------------------------------------------------------

/// The scale profile's secret is checked when the profile starts, not by
/// compose: its guard service's script, run with `sh` as the container
/// runs it, refuses an unset, empty or unusable value with a message that
/// says to set it in compose/.env, and passes a generated one; the stack
/// without the profile starts without it.
#[test]
fn compose_scale_secret_is_checked_when_the_profile_starts() {
    let root = repo_root();
    let compose = Compose::load(&root).unwrap_or_else(|e| panic!("{e}"));
    let deferred = security::deferred_secrets(&compose.files);
    assert!(
        !deferred.is_empty(),
        "compose/docker-compose.yml has no secret only a profile needs (`${{NAME:-}}`)"
    );
    for name in deferred.keys() {
        // Without it, everything interpolates: `docker compose up` (no
        // profile) starts.
        let mut unset = compose.vars.clone();
        unset.remove(name);
        for (file, doc) in &compose.files {
            if let Err(err) = interpolate_value(doc, &unset, &mut BTreeSet::new()) {
                panic!("{file}: with {name} unset, compose refuses to start: {err}");
            }
        }
        let guard = security::guard_of(&compose, name)
            .unwrap_or_else(|| panic!("no service checks {name}: see check_deferred"));
        let argv = guard.argv();
        assert!(
            argv.first().is_some_and(|a| a == "/bin/sh" || a == "sh"),
            "{}: the guard must be a shell script to be run here: {argv:?}",
            guard.name
        );
        let run = |value: Option<&str>| {
            let mut env = guard.environment.clone();
            match value {
                Some(v) => env.insert(name.clone(), v.to_owned()),
                None => env.remove(name),
            };
            let output = Command::new("/bin/sh")
                .args(&argv[1..])
                .env_clear()
                .envs(&env)
                .output()
                .expect("run the guard with /bin/sh");
            (
                output.status.success(),
                String::from_utf8_lossy(&output.stdout).into_owned()
                    + &String::from_utf8_lossy(&output.stderr),
            )
        };
        let value = compose.vars[name].clone();
        let (ok, out) = run(Some(&value));
        assert!(ok, "{}: refuses a generated {name}: {out}", guard.name);
        assert!(!out.contains(&value), "{}: prints {name}", guard.name);
        let mut refused = vec![("unset", None), ("empty", Some(String::new()))];
        if name == "MINIO_ROOT_PASSWORD" {
            // MinIO's minimum, and a character minio-init's URL cannot hold.
            refused.push(("7 characters long", Some("abcdefg".to_owned())));
            refused.push(("with an @", Some(format!("{value}@x"))));
        }
        for (how, bad) in refused {
            let (ok, out) = run(bad.as_deref());
            assert!(!ok, "{}: starts with {name} {how}: {out}", guard.name);
            assert!(
                out.contains(name.as_str()) && out.contains("compose/.env"),
                "{}: with {name} {how} its message does not say to set {name} in compose/.env: \
                 {out}",
                guard.name
            );
            eprintln!("{name} {how}: {}", out.trim());
        }
    }
}

/// The service that creates the scale hubs' database, its script run on
/// `SF_TEST_DATABASE_URL`'s server with `psql` and `createdb` as in its
/// container: it creates the database the hubs use, and the second time
/// finds it there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_scale_database_is_created_once() {
    const TEST: &str = "compose_scale_database_is_created_once";
    let root = repo_root();
    let compose = Compose::load(&root).unwrap_or_else(|e| panic!("{e}"));
    let services = compose.services();
    let hub_dbs: BTreeSet<String> = services
        .iter()
        .filter(|s| s.is_hub() && !s.profiles.is_empty())
        .map(|s| hub_database(&full_environment(&compose, s)).1)
        .collect();
    assert_eq!(
        hub_dbs.len(),
        1,
        "the profile's hubs do not share one database: {hub_dbs:?}"
    );
    let hub_db = hub_dbs.into_iter().next().unwrap();
    let creator = services
        .iter()
        .find(|s| s.argv().join(" ").contains("createdb"))
        .unwrap_or_else(|| panic!("no service creates the hubs' database {hub_db}"));
    // The variable that names the database in its script.
    let db_var = creator
        .environment
        .iter()
        .find(|(_, v)| **v == hub_db)
        .map(|(k, _)| k.clone())
        .unwrap_or_else(|| {
            panic!(
                "{}: no variable of its environment names the hubs' database {hub_db}",
                creator.name
            )
        });
    let argv = creator.argv();
    assert!(
        argv.first().is_some_and(|a| a == "/bin/sh" || a == "sh"),
        "{}: not a shell script: {argv:?}",
        creator.name
    );
    let Some(tools) = ["psql", "createdb", "dropdb"]
        .iter()
        .map(|t| sf_e2e::services::find_on_path(t))
        .collect::<Option<Vec<_>>>()
    else {
        unavailable(
            TEST,
            "psql, createdb or dropdb is not on PATH",
            "install PostgreSQL's client (Debian: postgresql-client)",
        );
        return;
    };
    let Some(pg) = PgDatabase::create(TEST).await else {
        return;
    };
    let parts = pg.parts();
    let name = format!("{}_scale", pg.name());
    let mut env = creator.environment.clone();
    for (var, value) in [
        ("PGHOST", Some(parts.host.clone())),
        ("PGPORT", Some(parts.port.to_string())),
        ("PGUSER", Some(parts.user.clone())),
        ("PGPASSWORD", parts.password.clone()),
        (db_var.as_str(), Some(name.clone())),
    ] {
        match value {
            Some(v) => env.insert(var.to_owned(), v),
            None => env.remove(var),
        };
    }
    env.insert("PATH".to_owned(), std::env::var("PATH").unwrap_or_default());
    /// Drops the database the script made, whatever happens.
    struct DropDb(PathBuf, BTreeMap<String, String>, String);
    impl Drop for DropDb {
        fn drop(&mut self) {
            let _ = Command::new(&self.0)
                .args(["--if-exists", &self.2])
                .env_clear()
                .envs(&self.1)
                .status();
        }
    }
    let _cleanup = DropDb(tools[2].clone(), env.clone(), name.clone());
    let run = || {
        let output = Command::new("/bin/sh")
            .args(&argv[1..])
            .env_clear()
            .envs(&env)
            .output()
            .expect("run the script with /bin/sh");
        let out = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{}'s script fails ({}): {out}",
            creator.name,
            output.status
        );
        out
    };
    let first = run();
    let exists = || {
        Command::new(&tools[0])
            .args(["-d", &name, "-Atqc", "SELECT 1"])
            .env_clear()
            .envs(&env)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    assert!(exists(), "no database {name} after: {first}");
    let second = run();
    assert!(
        first != second && exists(),
        "the second run does not find the database the first made: {first} / {second}"
    );
    eprintln!("{}: {} / {}", creator.name, first.trim(), second.trim());
}

/// The balancer's configuration in the real HAProxy: `haproxy -c` accepts
/// it as it is; then, run with its binds on 127.0.0.1 and its servers at
/// stand-in hubs, it spreads requests over every hub, streams an upload to
/// a hub before it has all of it, passes WebSocket upgrades to every hub and
/// tunnels them, keeps the original client's path token out of its log, and
/// stops sending to a hub whose /readyz fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_lb_forwards_to_every_hub() {
    const TEST: &str = "compose_lb_forwards_to_every_hub";
    let root = repo_root();
    let compose = Compose::load(&root).unwrap_or_else(|e| panic!("{e}"));
    let lbs = balancers(&compose);
    assert!(
        !lbs.is_empty(),
        "compose/docker-compose.yml has no load balancer (a service mounting {HAPROXY_CONFIG})"
    );
    let Some(haproxy) = haproxy_binary() else {
        unavailable(
            TEST,
            "haproxy is not installed",
            "install it (Debian: apt-get install haproxy; .ci/run does) or set SF_HAPROXY_BIN",
        );
        return;
    };
    for (lb, path) in lbs {
        // As it is.
        let check = Command::new(&haproxy)
            .arg("-c")
            .arg("-f")
            .arg(&path)
            .output()
            .expect("haproxy -c");
        assert!(
            check.status.success(),
            "haproxy -c -f {} fails:\n{}{}",
            path.display(),
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        run_balancer(&haproxy, &lb, &path).await;
    }
}

async fn run_balancer(haproxy: &Path, lb: &Service, path: &Path) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;

    let text = fs::read_to_string(path).expect("the balancer's configuration");
    let sections = parse_haproxy(&text);
    // A stand-in for every server.
    let mut stand_ins = Vec::new();
    let mut servers_at = BTreeMap::new();
    for section in &sections {
        for server in servers(section) {
            let stand_in = StandIn::start(&server.name).await;
            servers_at.insert(server.address.clone(), stand_in.addr);
            stand_ins.push(stand_in);
        }
    }
    assert!(stand_ins.len() >= 2, "{}: fewer than two servers", lb.name);
    let mut binds = BTreeMap::new();
    for section in &sections {
        for bind in section.all("bind") {
            if let Some(port) = bind_port(bind) {
                binds.insert(port, sf_e2e::services::free_port());
            }
        }
    }
    let api_port = api_ports(&sections)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("{}: no frontend for the hubs", lb.name));
    let api = format!("http://127.0.0.1:{}", binds[&api_port]);
    let api_addr = format!("127.0.0.1:{}", binds[&api_port]);
    let health = sections
        .iter()
        .find_map(|s| {
            let uri = s.all("monitor-uri").next()?.first()?.clone();
            let port = s.all("bind").find_map(bind_port)?;
            Some(format!("http://127.0.0.1:{}{uri}", binds[&port]))
        })
        .unwrap_or_else(|| panic!("{}: no monitor-uri for its healthcheck", lb.name));

    let sandbox = tempfile::Builder::new()
        .prefix("sf-e2e-lb-")
        .tempdir()
        .expect("a sandbox");
    let config = localized(&text, &binds, &servers_at).unwrap_or_else(|e| panic!("{e}"));
    let config_path = sandbox.path().join("haproxy.cfg");
    fs::write(&config_path, &config).expect("write the local configuration");
    let log_path = sandbox.path().join("haproxy.log");
    let log = fs::File::create(&log_path).expect("the balancer's log");
    let child = Command::new(haproxy)
        .arg("-db")
        .arg("-f")
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("the log"))
        .stderr(log)
        .spawn()
        .expect("spawn haproxy");
    let mut process = Killed(child);
    let log = || fs::read_to_string(&log_path).unwrap_or_default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("an HTTP client");

    // Up, with a hub to send to.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = process.0.try_wait() {
            panic!("haproxy exited with {status}; log:\n{}", log());
        }
        let up = http.get(&health).send().await.map(|r| r.status());
        if up.as_ref().is_ok_and(|s| s.is_success()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{health} does not answer 200 within 20 s ({up:?}); log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Plain requests reach every hub, with the client's address.
    let names: Vec<String> = stand_ins.iter().map(|s| s.name.clone()).collect();
    let mut answered_by = BTreeSet::new();
    for _ in 0..40 {
        let response = http
            .get(format!("{api}/v1/whoami"))
            .bearer_auth("sft_not-checked-by-the-balancer")
            .send()
            .await
            .expect("GET /v1/whoami through the balancer");
        assert_eq!(response.status(), 200, "log:\n{}", log());
        let body = response.text().await.unwrap_or_default();
        answered_by.insert(body.split(' ').next().unwrap_or_default().to_owned());
        if answered_by.len() == names.len() {
            break;
        }
    }
    assert_eq!(
        answered_by,
        names.iter().cloned().collect::<BTreeSet<_>>(),
        "40 requests did not reach every hub"
    );
    for stand_in in &stand_ins {
        for seen in stand_in.requests() {
            assert!(
                seen.header("authorization").is_some(),
                "{}: the token did not reach the hub: {seen:?}",
                stand_in.name
            );
            assert!(
                seen.header("x-forwarded-for").is_some(),
                "{}: no X-Forwarded-For: {seen:?}",
                stand_in.name
            );
        }
    }

    // An upload is streamed: the hub gets the first part before the client
    // has sent the rest (nothing buffers the body), and all 8 MiB of it (no
    // size limit).
    const TOTAL: usize = 8 << 20;
    const FIRST: usize = 1 << 20;
    let before: u64 = stand_ins
        .iter()
        .map(|s| s.body_bytes.load(std::sync::atomic::Ordering::SeqCst))
        .sum();
    let mut stream = TcpStream::connect(&api_addr).await.expect("connect");
    let head = format!(
        "PUT /v1/chunks/streamed HTTP/1.1\r\nHost: lb\r\nAuthorization: Bearer x\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {TOTAL}\r\n\r\n"
    );
    stream
        .write_all(head.as_bytes())
        .await
        .expect("send the head");
    stream
        .write_all(&vec![7u8; FIRST])
        .await
        .expect("send the first part");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let arrived: u64 = stand_ins
            .iter()
            .map(|s| s.body_bytes.load(std::sync::atomic::Ordering::SeqCst))
            .sum::<u64>()
            - before;
        if arrived >= (FIRST / 2) as u64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the hub got {arrived} bytes of the first {FIRST} within 10 s: the balancer holds \
             the upload back; log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stream
        .write_all(&vec![7u8; TOTAL - FIRST])
        .await
        .expect("send the rest");
    let mut reader = BufReader::new(stream);
    let (status, body) = raw_response(&mut reader).await.expect("the response");
    assert_eq!(status, 200, "the upload: {body}; log:\n{}", log());
    assert!(
        body.ends_with(&format!(" {TOTAL}")),
        "the hub did not get all {TOTAL} bytes: {body}"
    );
    let uploads: Vec<Seen> = stand_ins
        .iter()
        .flat_map(StandIn::requests)
        .filter(|s| s.path == "/v1/chunks/streamed")
        .collect();
    assert!(
        uploads.len() == 1 && uploads[0].method == "PUT" && uploads[0].body == TOTAL as u64,
        "the upload arrived as {uploads:?}"
    );

    // WebSocket upgrades reach every hub and are tunnelled both ways; the
    // connections stay open, so leastconn spreads them.
    let mut sockets = Vec::new();
    let mut greeted = BTreeSet::new();
    for i in 0..(2 * names.len()) {
        let stream = TcpStream::connect(&api_addr).await.expect("connect");
        let mut socket = BufReader::new(stream);
        let upgrade = "GET /v1/ws HTTP/1.1\r\nHost: lb\r\nAuthorization: Bearer x\r\n\
                       Upgrade: websocket\r\nConnection: Upgrade\r\n\
                       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                       Sec-WebSocket-Version: 13\r\n\r\n";
        socket
            .get_mut()
            .write_all(upgrade.as_bytes())
            .await
            .expect("send the upgrade");
        let mut status = String::new();
        socket.read_line(&mut status).await.expect("the status");
        assert!(
            status.starts_with("HTTP/1.1 101"),
            "the upgrade through the balancer: {status:?}; log:\n{}",
            log()
        );
        loop {
            let mut line = String::new();
            socket.read_line(&mut line).await.expect("a header");
            if line.trim().is_empty() {
                break;
            }
        }
        let mut hello = String::new();
        socket.read_line(&mut hello).await.expect("the greeting");
        let from = hello.trim().trim_start_matches("hello from ").to_owned();
        let ping = format!("ping {i}\n");
        socket
            .get_mut()
            .write_all(ping.as_bytes())
            .await
            .expect("send through the tunnel");
        let mut echo = vec![0u8; ping.len()];
        socket
            .read_exact(&mut echo)
            .await
            .expect("the echo through the tunnel");
        assert_eq!(echo, ping.as_bytes(), "the tunnel to {from}");
        greeted.insert(from);
        sockets.push(socket);
        if greeted.len() == names.len() {
            break;
        }
    }
    assert_eq!(
        greeted,
        names.iter().cloned().collect::<BTreeSet<_>>(),
        "WebSocket upgrades did not reach every hub"
    );
    for stand_in in &stand_ins {
        for seen in stand_in.requests().iter().filter(|s| s.path == "/v1/ws") {
            let connection = seen.header("connection").unwrap_or_default();
            assert!(
                seen.header("upgrade") == Some("websocket")
                    && connection.to_ascii_lowercase().contains("upgrade"),
                "{}: the upgrade arrived without its headers: {seen:?}",
                stand_in.name
            );
        }
    }
    drop(sockets);

    // The original client's token, in the path, stays out of the log.
    let token = security::random_token();
    let legacy = http
        .get(format!("{api}/t/{token}/index"))
        .send()
        .await
        .expect("GET /t/<token>/index");
    assert_eq!(legacy.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log().contains("/t/<token>/index") {
        assert!(
            Instant::now() < deadline,
            "the balancer did not log GET /t/<token>/index (path redacted) within 10 s; log:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !log().contains(&token),
        "the balancer logs the original client's token"
    );

    // A hub whose /readyz fails is taken out (HAProxy's stats say DOWN)
    // and gets nothing more.
    let stats = sections
        .iter()
        .find_map(|s| {
            let uri = s
                .all("stats")
                .find(|w| w.first().is_some_and(|k| k == "uri"))?[1]
                .clone();
            let port = s.all("bind").find_map(bind_port)?;
            Some(format!("http://127.0.0.1:{}{uri};csv", binds[&port]))
        })
        .unwrap_or_else(|| panic!("{}: no stats page to read the hubs' state from", lb.name));
    let state = |csv: &str, server: &str| -> Option<String> {
        csv.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            (fields.len() > 17 && fields[1] == server).then(|| fields[17].to_owned())
        })
    };
    let down = &stand_ins[1];
    let csv = http.get(&stats).send().await.expect("the stats page");
    let csv = csv.text().await.unwrap_or_default();
    assert!(
        state(&csv, &down.name).is_some_and(|s| s.starts_with("UP")),
        "{} is not UP before the test: {csv}",
        down.name
    );
    down.ready.store(false, std::sync::atomic::Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let csv = http.get(&stats).send().await.expect("the stats page");
        let csv = csv.text().await.unwrap_or_default();
        if state(&csv, &down.name).is_some_and(|s| s.starts_with("DOWN")) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} is not DOWN 30 s after its /readyz failed: {csv}",
            down.name
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let before = down.requests().len();
    for _ in 0..(4 * names.len()) {
        let body = http
            .get(format!("{api}/v1/whoami"))
            .send()
            .await
            .expect("GET through the balancer")
            .text()
            .await
            .unwrap_or_default();
        assert!(
            !body.starts_with(&format!("{} ", down.name)),
            "{} is DOWN but still answers: {body}",
            down.name
        );
    }
    assert_eq!(
        down.requests().len(),
        before,
        "{} got requests while DOWN",
        down.name
    );
    down.ready.store(true, std::sync::atomic::Ordering::SeqCst);
    eprintln!(
        "{}: requests, an 8 MiB upload and WebSockets reached {names:?}; {} taken out when \
         unready",
        lb.name, down.name
    );
}
