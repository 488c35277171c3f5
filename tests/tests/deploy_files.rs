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
//! `SF_REPO_ROOT` points the checks at another copy of the repository;
//! `checks_catch_broken_copies` breaks copies on purpose and expects each
//! check to notice. `SF_COMPOSE_SCHEMA` is the path of the schema
//! (`compose/config/compose_spec.json` of the docker-compose 1.29.2 wheel;
//! `.ci/run` fetches it); `SF_TEST_DATABASE_URL` a PostgreSQL server. Without
//! them those parts are skipped loudly, except in CI, where they fail.

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
