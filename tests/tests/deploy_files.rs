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

// In a folder of its own, so cargo does not take it for a test target.
#[path = "deploy_files/security.rs"]
mod security;

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

// ----------------------------------------------------------------------
// Grafana: dashboards and provisioning
// ----------------------------------------------------------------------

/// A datasource from `dashboards/provisioning/datasources/*.yaml`.
#[derive(Debug, Clone)]
struct Datasource {
    file: String,
    uid: String,
    kind: String,
    url: String,
    json_data: Value,
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

fn load_datasources(root: &Path) -> Result<Vec<Datasource>, String> {
    let dir = root.join("dashboards/provisioning/datasources");
    let files = yaml_files(&dir)?;
    if files.is_empty() {
        return Err(format!(
            "no datasource provisioning (*.yaml) in {}",
            dir.display()
        ));
    }
    let mut out = Vec::new();
    for path in files {
        let doc = load_yaml(&path)?;
        for ds in doc["datasources"].as_array().into_iter().flatten() {
            out.push(Datasource {
                file: file_name(&path),
                uid: ds["uid"].as_str().unwrap_or_default().to_owned(),
                kind: ds["type"].as_str().unwrap_or_default().to_owned(),
                url: ds["url"].as_str().unwrap_or_default().to_owned(),
                json_data: ds["jsonData"].clone(),
            });
        }
    }
    Ok(out)
}

/// Every dashboard parses; uids are unique; panel ids are unique per
/// dashboard; every panel and target names a provisioned datasource by uid
/// (with its type), and every query is there in the field its datasource
/// reads.
fn check_dashboards(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let datasources = match load_datasources(root) {
        Ok(list) => list,
        Err(err) => {
            problems.push(err);
            Vec::new()
        }
    };
    let mut by_uid: BTreeMap<&str, &Datasource> = BTreeMap::new();
    for ds in &datasources {
        if ds.uid.is_empty() || ds.kind.is_empty() {
            problems.push(format!(
                "{}: every datasource needs a uid and a type: {ds:?}",
                ds.file
            ));
        } else if by_uid.insert(&ds.uid, ds).is_some() {
            problems.push(format!("datasource uid {:?} is provisioned twice", ds.uid));
        }
    }
    let dashboards = match load_dashboards(root) {
        Ok(list) => list,
        Err(err) => {
            problems.push(err);
            return problems;
        }
    };
    // A datasource reference: an object naming a provisioned uid, with the
    // same type if it gives one.
    let check_ref = |problems: &mut Vec<String>, at: &str, ds: &Value| -> Option<String> {
        let Some(uid) = ds["uid"].as_str().filter(|_| ds.is_object()) else {
            problems.push(format!(
                "{at}: datasource must be an object with a uid, not {ds}"
            ));
            return None;
        };
        match by_uid.get(uid) {
            None => problems.push(format!(
                "{at}: datasource uid {uid:?} is not provisioned (known: {:?})",
                by_uid.keys().collect::<Vec<_>>()
            )),
            Some(known) => {
                if let Some(kind) = ds["type"].as_str()
                    && kind != known.kind
                {
                    problems.push(format!(
                        "{at}: datasource {uid:?} has type {:?}, not {kind:?}",
                        known.kind
                    ));
                }
            }
        }
        Some(uid.to_owned())
    };
    let mut uids: BTreeMap<String, String> = BTreeMap::new();
    for (file, dashboard) in &dashboards {
        match dashboard["uid"].as_str().filter(|u| !u.is_empty()) {
            Some(uid) => {
                if let Some(other) = uids.insert(uid.to_owned(), file.clone()) {
                    problems.push(format!(
                        "dashboard uid {uid:?} is used by {other} and {file}"
                    ));
                }
            }
            None => problems.push(format!("{file}: no dashboard uid")),
        }
        if dashboard["title"].as_str().is_none_or(str::is_empty) {
            problems.push(format!("{file}: no title"));
        }
        let mut ids = BTreeSet::new();
        for panel in dashboard_panels(dashboard) {
            let title = panel["title"].as_str().unwrap_or_default();
            let at = format!("{file}, panel {} {title:?}", panel["id"]);
            match panel["id"].as_i64() {
                Some(id) => {
                    if !ids.insert(id) {
                        problems.push(format!("{file}: panel id {id} twice"));
                    }
                }
                None => problems.push(format!("{at}: no numeric id")),
            }
            let targets = panel["targets"].as_array().cloned().unwrap_or_default();
            let panel_uid = if panel["datasource"].is_null() {
                if !targets.is_empty() {
                    problems.push(format!("{at}: has queries but no datasource"));
                }
                None
            } else {
                check_ref(&mut problems, &at, &panel["datasource"])
            };
            let mut ref_ids = BTreeSet::new();
            for target in &targets {
                let ref_id = target["refId"].as_str().unwrap_or_default();
                let at = format!("{at}, target {ref_id}");
                if ref_id.is_empty() || !ref_ids.insert(ref_id) {
                    problems.push(format!("{at}: refId missing or repeated"));
                }
                let Some(uid) = check_ref(&mut problems, &at, &target["datasource"]) else {
                    continue;
                };
                if let Some(panel_uid) = &panel_uid
                    && *panel_uid != uid
                    && panel_uid != "-- Mixed --"
                {
                    problems.push(format!(
                        "{at}: datasource {uid:?} differs from its panel's {panel_uid:?}"
                    ));
                }
                let kind = by_uid.get(uid.as_str()).map_or("", |d| d.kind.as_str());
                match kind {
                    "prometheus" if target["expr"].as_str().is_none_or(|e| e.trim().is_empty()) => {
                        problems.push(format!("{at}: a Prometheus query without `expr`"));
                    }
                    "grafana-postgresql-datasource" | "postgres" => {
                        if target["rawSql"]
                            .as_str()
                            .is_none_or(|e| e.trim().is_empty())
                        {
                            problems.push(format!("{at}: an SQL query without `rawSql`"));
                        }
                        if target["editorMode"] == "builder" || target["rawQuery"] == false {
                            problems.push(format!(
                                "{at}: the SQL is not in code mode (editorMode builder or \
                                 rawQuery false): Grafana would rebuild rawSql"
                            ));
                        }
                    }
                    _ => {}
                }
            }
        }
        for (list, what) in [("annotations", "annotation"), ("templating", "variable")] {
            for item in dashboard[list]["list"].as_array().into_iter().flatten() {
                let ds = &item["datasource"];
                let builtin = ds["uid"] == "-- Grafana --" || *ds == "-- Grafana --";
                if !ds.is_null() && !builtin {
                    check_ref(
                        &mut problems,
                        &format!("{file}, {what} {}", item["name"]),
                        ds,
                    );
                }
            }
        }
    }
    problems
}

/// The provisioning files are where Grafana reads them in its container,
/// and the dashboard provider's path is where compose mounts
/// `dashboards/json`.
fn check_grafana_provisioning(root: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let compose = match Compose::load(root) {
        Ok(c) => c,
        Err(err) => return vec![err],
    };
    let Some(grafana) = compose
        .services()
        .into_iter()
        .find(|s| s.name == "grafana" || s.image.starts_with("grafana/"))
    else {
        return vec!["compose/docker-compose.yml has no Grafana service".to_owned()];
    };
    let provisioning = grafana
        .environment
        .get("GF_PATHS_PROVISIONING")
        .cloned()
        .unwrap_or_else(|| "/etc/grafana/provisioning".to_owned());
    let provisioning = provisioning.trim_end_matches('/');
    let mounts = grafana.bind_mounts(&compose.dir);
    let json_dir = normalize(&root.join("dashboards/json"));
    let dashboards_in_container = container_path(&mounts, &json_dir);
    if dashboards_in_container.is_none() {
        problems.push(format!(
            "the {} service mounts dashboards/json nowhere (bind mounts: {mounts:?})",
            grafana.name
        ));
    }
    for kind in ["datasources", "dashboards"] {
        let host_dir = root.join("dashboards/provisioning").join(kind);
        let files = match yaml_files(&host_dir) {
            Ok(files) => files,
            Err(err) => {
                problems.push(err);
                continue;
            }
        };
        for file in files {
            let expected = format!("{provisioning}/{kind}/{}", file_name(&file));
            match container_path(&mounts, &normalize(&file)) {
                Some(path) if path == expected => {}
                other => problems.push(format!(
                    "Grafana reads {kind} provisioning from {expected}, but {} is at {other:?} \
                     in the {} container",
                    file.display(),
                    grafana.name
                )),
            }
            if kind != "dashboards" {
                continue;
            }
            let doc = match load_yaml(&file) {
                Ok(doc) => doc,
                Err(err) => {
                    problems.push(err);
                    continue;
                }
            };
            let providers = doc["providers"].as_array().cloned().unwrap_or_default();
            if providers.is_empty() {
                problems.push(format!("{}: no providers", file.display()));
            }
            for provider in providers {
                let path = provider["options"]["path"]
                    .as_str()
                    .unwrap_or_default()
                    .trim_end_matches('/');
                if dashboards_in_container
                    .as_deref()
                    .is_some_and(|mounted| mounted != path)
                {
                    problems.push(format!(
                        "{}: provider {} reads {path:?}, but compose mounts dashboards/json at \
                         {:?}",
                        file.display(),
                        provider["name"],
                        dashboards_in_container.as_deref().unwrap_or_default()
                    ));
                }
            }
        }
    }
    problems
}

/// Where `host` appears in a container with these bind mounts (source on
/// the host, target in the container), through the most specific mount.
fn container_path(mounts: &[(PathBuf, String)], host: &Path) -> Option<String> {
    mounts
        .iter()
        .filter_map(|(source, target)| {
            let rest = host.strip_prefix(source).ok()?;
            let mut path = target.trim_end_matches('/').to_owned();
            for part in rest.components() {
                path.push('/');
                path.push_str(&part.as_os_str().to_string_lossy());
            }
            Some((source.components().count(), path))
        })
        .max_by_key(|(depth, _)| *depth)
        .map(|(_, path)| path)
}

// ----------------------------------------------------------------------
// Compose
// ----------------------------------------------------------------------

/// `compose/docker-compose.yml` and its overlays (`docker-compose.*.yml`),
/// with `compose/.env.example`.
struct Compose {
    dir: PathBuf,
    /// (file name, merged YAML as JSON, before interpolation); the main
    /// file first.
    files: Vec<(String, Value)>,
    /// The uncommented `NAME=value` lines of .env.example.
    env_example: BTreeMap<String, String>,
    /// Every name .env.example lists, commented-out ones (`# NAME=…`) too.
    listed: BTreeSet<String>,
    /// What the files are interpolated with: a user's `.env`, i.e.
    /// .env.example with the secrets it leaves empty filled in (freshly
    /// generated, as a user would).
    vars: BTreeMap<String, String>,
}

/// One service of the main compose file, interpolated.
#[derive(Debug, Clone)]
struct Service {
    name: String,
    image: String,
    /// environment: and env_file:, interpolated.
    environment: BTreeMap<String, String>,
    /// command: as a list of arguments.
    command: Vec<String>,
    raw: Value,
}

impl Compose {
    fn load(root: &Path) -> Result<Compose, String> {
        let dir = root.join("compose");
        let main = dir.join("docker-compose.yml");
        let mut paths = vec![main.clone()];
        let mut overlays: Vec<PathBuf> = fs::read_dir(&dir)
            .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                let name = file_name(p);
                name.starts_with("docker-compose.")
                    && (name.ends_with(".yml") || name.ends_with(".yaml"))
                    && *p != main
            })
            .collect();
        overlays.sort();
        paths.extend(overlays);
        let files = paths
            .iter()
            .map(|p| Ok((file_name(p), load_yaml(p)?)))
            .collect::<Result<Vec<_>, String>>()?;
        let example = dir.join(".env.example");
        let text = fs::read_to_string(&example)
            .map_err(|e| format!("cannot read {}: {e}", example.display()))?;
        let mut env_example = BTreeMap::new();
        let mut listed = BTreeSet::new();
        for line in env_lines(&text) {
            listed.insert(line.name.clone());
            if !line.commented {
                env_example.insert(line.name, line.value);
            }
        }
        let vars = security::filled_in(&files, &env_example);
        Ok(Compose {
            dir,
            files,
            env_example,
            listed,
            vars,
        })
    }

    /// Sets a variable as if in `.env`.
    fn set_var(&mut self, name: &str, value: &str) {
        self.vars.insert(name.to_owned(), value.to_owned());
    }

    fn main(&self) -> &Value {
        &self.files[0].1
    }

    /// Every service name in the main file and the overlays.
    fn service_names(&self) -> BTreeSet<String> {
        self.files
            .iter()
            .flat_map(|(_, doc)| doc["services"].as_object().into_iter().flatten())
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Every top-level name of `section` (volumes, networks, configs,
    /// secrets) in the main file and the overlays.
    fn declared(&self, section: &str) -> BTreeSet<String> {
        self.files
            .iter()
            .flat_map(|(_, doc)| doc[section].as_object().into_iter().flatten())
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// A document interpolated with a user's `.env` ([`Compose::vars`]).
    fn interpolated(&self, doc: &Value) -> Result<Value, String> {
        let mut used = BTreeSet::new();
        interpolate_value(doc, &self.vars, &mut used)
    }

    /// The services of the main file, interpolated (those that cannot be are
    /// left out: check_compose reports why).
    fn services(&self) -> Vec<Service> {
        let Ok(doc) = self.interpolated(self.main()) else {
            return Vec::new();
        };
        doc["services"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, raw)| Service {
                name: name.clone(),
                image: raw["image"].as_str().unwrap_or_default().to_owned(),
                environment: service_environment(&self.dir, raw, &self.vars).unwrap_or_default(),
                command: string_list(&raw["command"]),
                raw: raw.clone(),
            })
            .collect()
    }

    fn service(&self, name: &str) -> Option<Service> {
        self.services().into_iter().find(|s| s.name == name)
    }
}

impl Service {
    /// (host source, container target) of every bind mount, sources made
    /// absolute against `compose_dir`.
    fn bind_mounts(&self, compose_dir: &Path) -> Vec<(PathBuf, String)> {
        volume_specs(&self.raw)
            .into_iter()
            .filter(|v| v.bind)
            .map(|v| (normalize(&compose_dir.join(&v.source)), v.target))
            .collect()
    }
}

/// A service's `volumes:` entry, short or long syntax.
#[derive(Debug)]
struct VolumeSpec {
    source: String,
    target: String,
    bind: bool,
}

fn volume_specs(service: &Value) -> Vec<VolumeSpec> {
    let mut out = Vec::new();
    for volume in service["volumes"].as_array().into_iter().flatten() {
        if let Some(short) = volume.as_str() {
            let parts: Vec<&str> = short.split(':').collect();
            if parts.len() < 2 {
                continue; // an anonymous volume: a container path only
            }
            let source = parts[0];
            out.push(VolumeSpec {
                source: source.to_owned(),
                target: parts[1].to_owned(),
                bind: source.starts_with(['.', '/', '~']),
            });
        } else {
            let kind = volume["type"].as_str().unwrap_or("volume");
            if kind != "bind" && kind != "volume" {
                continue;
            }
            let Some(source) = volume["source"].as_str() else {
                continue;
            };
            out.push(VolumeSpec {
                source: source.to_owned(),
                target: volume["target"].as_str().unwrap_or_default().to_owned(),
                bind: kind == "bind",
            });
        }
    }
    out
}

/// A service's environment: env_file: first, then environment:, both
/// interpolated with `vars`. A bare `NAME` takes its value from `vars`.
fn service_environment(
    compose_dir: &Path,
    service: &Value,
    vars: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut env = BTreeMap::new();
    for (path, _) in env_files(service) {
        let path = compose_dir.join(path);
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        for line in text.lines().map(str::trim) {
            if line.starts_with('#') {
                continue;
            }
            if let Some((name, value)) = line.split_once('=') {
                env.insert(name.trim().to_owned(), unquote(value.trim()).to_owned());
            }
        }
    }
    let mut used = BTreeSet::new();
    match &service["environment"] {
        Value::Object(map) => {
            for (name, value) in map {
                let value = match value {
                    Value::Null => vars.get(name).cloned().unwrap_or_default(),
                    Value::String(s) => interpolate_str(s, vars, &mut used)?,
                    other => other.to_string(),
                };
                env.insert(name.clone(), value);
            }
        }
        Value::Array(list) => {
            for item in list.iter().filter_map(Value::as_str) {
                match item.split_once('=') {
                    Some((name, value)) => {
                        env.insert(name.to_owned(), interpolate_str(value, vars, &mut used)?)
                    }
                    None => {
                        env.insert(item.to_owned(), vars.get(item).cloned().unwrap_or_default())
                    }
                };
            }
        }
        _ => {}
    }
    Ok(env)
}

/// The env_file: entries of a service: (path, required).
fn env_files(service: &Value) -> Vec<(String, bool)> {
    let list = match &service["env_file"] {
        Value::String(s) => vec![Value::String(s.clone())],
        Value::Array(list) => list.clone(),
        _ => Vec::new(),
    };
    list.iter()
        .filter_map(|item| match item {
            Value::String(s) => Some((s.clone(), true)),
            Value::Object(_) => Some((
                item["path"].as_str()?.to_owned(),
                item["required"].as_bool().unwrap_or(true),
            )),
            _ => None,
        })
        .collect()
}

/// A string or a list of strings as a list (a string split at spaces).
fn string_list(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        Value::Array(list) => list
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// Sets `--flag value` (or `--flag=value`) where `args` has the flag.
fn override_flag(args: &mut [String], flag: &str, value: &str) {
    let mut i = 0;
    while i < args.len() {
        if args[i] == flag && i + 1 < args.len() {
            args[i + 1] = value.to_owned();
            i += 1;
        } else if args[i].starts_with(&format!("{flag}=")) {
            args[i] = format!("{flag}={value}");
        }
        i += 1;
    }
}

/// Compose's interpolation of one string: `$$` is a `$`; `$NAME`,
/// `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?error}`,
/// `${NAME?error}`, `${NAME:+other}`, `${NAME+other}` (nested in the
/// default too). Records every name used in `used`.
fn interpolate_str(
    text: &str,
    vars: &BTreeMap<String, String>,
    used: &mut BTreeSet<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(after) = after.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(inner) = after.strip_prefix('{') {
            let close = closing_brace(inner).ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
            let body = &inner[..close];
            let len = body
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(body.len());
            let (name, op) = body.split_at(len);
            if !is_var_name(name) {
                return Err(format!("bad variable name in ${{{body}}} of {text:?}"));
            }
            used.insert(name.to_owned());
            let value = vars.get(name);
            let set = value.is_some();
            let nonempty = value.is_some_and(|v| !v.is_empty());
            let mut word = |w: &str| interpolate_str(w, vars, used);
            let result = if op.is_empty() {
                value.cloned().unwrap_or_default()
            } else if let Some(default) = op.strip_prefix(":-") {
                if nonempty {
                    value.cloned().unwrap_or_default()
                } else {
                    word(default)?
                }
            } else if let Some(default) = op.strip_prefix('-') {
                if set {
                    value.cloned().unwrap_or_default()
                } else {
                    word(default)?
                }
            } else if let Some(message) = op.strip_prefix(":?") {
                if !nonempty {
                    return Err(format!("{name} is required: {message}"));
                }
                value.cloned().unwrap_or_default()
            } else if let Some(message) = op.strip_prefix('?') {
                if !set {
                    return Err(format!("{name} is required: {message}"));
                }
                value.cloned().unwrap_or_default()
            } else if let Some(other) = op.strip_prefix(":+") {
                if nonempty {
                    word(other)?
                } else {
                    String::new()
                }
            } else if let Some(other) = op.strip_prefix('+') {
                if set { word(other)? } else { String::new() }
            } else {
                return Err(format!("bad interpolation ${{{body}}} in {text:?}"));
            };
            out.push_str(&result);
            rest = &inner[close + 1..];
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            let name = &after[..len];
            if is_var_name(name) {
                used.insert(name.to_owned());
                out.push_str(vars.get(name).map_or("", String::as_str));
                rest = &after[len..];
            } else {
                return Err(format!(
                    "a lone `$` in {text:?}: write `$$` for a literal dollar"
                ));
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The `}` closing a `${` whose body starts `text`, nested `${…}` skipped.
fn closing_brace(text: &str) -> Option<usize> {
    let mut depth = 1;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Interpolates every string value (not keys) of a document.
fn interpolate_value(
    value: &Value,
    vars: &BTreeMap<String, String>,
    used: &mut BTreeSet<String>,
) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => Value::String(interpolate_str(s, vars, used)?),
        Value::Array(list) => Value::Array(
            list.iter()
                .map(|v| interpolate_value(v, vars, used))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), interpolate_value(v, vars, used)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// The `sf-hub --help` and `sf-agent --help` texts.
struct Helps {
    hub: String,
    agent: String,
}

impl Helps {
    fn of_binaries() -> Helps {
        let help = |name: &str| {
            let output = Command::new(binary(name))
                .arg("--help")
                .env_clear()
                .output()
                .unwrap_or_else(|e| panic!("{name} --help: {e}"));
            assert!(output.status.success(), "{name} --help: {}", output.status);
            String::from_utf8_lossy(&output.stdout).into_owned()
        };
        Helps {
            hub: help("sf-hub"),
            agent: help("sf-agent"),
        }
    }
}

/// Every file parses; every `${VAR}` is in .env.example; build contexts,
/// Dockerfiles and their targets, bind-mount sources, env files and config
/// files exist; named volumes, networks, configs and secrets are declared;
/// depends_on names services; the hub's and the agent's variables and flags
/// are in their `--help`.
fn check_compose(root: &Path, helps: &Helps) -> Vec<String> {
    let compose = match Compose::load(root) {
        Ok(c) => c,
        Err(err) => return vec![err],
    };
    let mut problems = Vec::new();
    let services = compose.service_names();
    let volumes = compose.declared("volumes");
    let networks = compose.declared("networks");
    let exists = |relative: &str, base: &Path| -> bool {
        let path = Path::new(relative);
        relative.starts_with('~') || path.is_absolute() || base.join(path).exists()
    };
    for (file, doc) in &compose.files {
        let mut used = BTreeSet::new();
        let doc = match interpolate_value(doc, &compose.vars, &mut used) {
            Ok(doc) => doc,
            Err(err) => {
                problems.push(format!("{file}: {err}"));
                continue;
            }
        };
        for name in used.difference(&compose.listed) {
            problems.push(format!(
                "{file} uses ${{{name}}}, which compose/.env.example does not list"
            ));
        }
        if doc["services"].as_object().is_none_or(|s| s.is_empty()) {
            problems.push(format!("{file}: no services"));
        }
        for (name, service) in doc["services"].as_object().into_iter().flatten() {
            let at = format!("{file}, service {name}");
            // build:
            let build = &service["build"];
            if !build.is_null() {
                let context = build
                    .as_str()
                    .or_else(|| build["context"].as_str())
                    .unwrap_or(".");
                if !context.contains("://") && !context.starts_with("git@") {
                    let context_dir = normalize(&compose.dir.join(context));
                    if !context_dir.is_dir() {
                        problems.push(format!(
                            "{at}: build context {context:?} is not a folder ({})",
                            context_dir.display()
                        ));
                    }
                    let dockerfile = build["dockerfile"].as_str().unwrap_or("Dockerfile");
                    let dockerfile_path = context_dir.join(dockerfile);
                    match fs::read_to_string(&dockerfile_path) {
                        Err(_) => problems.push(format!(
                            "{at}: dockerfile {dockerfile:?} not found in the build context ({})",
                            dockerfile_path.display()
                        )),
                        Ok(text) => {
                            if let Some(target) = build["target"].as_str()
                                && !dockerfile_stages(&text)
                                    .iter()
                                    .any(|s| s.name.as_deref() == Some(target))
                            {
                                problems.push(format!(
                                    "{at}: build target {target:?} is no stage of {dockerfile}"
                                ));
                            }
                        }
                    }
                }
            }
            // volumes:
            for volume in volume_specs(service) {
                if volume.bind {
                    if !exists(&volume.source, &compose.dir) {
                        problems.push(format!(
                            "{at}: bind-mount source {} does not exist (relative to compose/)",
                            volume.source
                        ));
                    }
                } else if !volumes.contains(&volume.source) {
                    problems.push(format!(
                        "{at}: named volume {:?} is not declared under the top-level volumes:",
                        volume.source
                    ));
                }
            }
            // env_file:
            for (path, required) in env_files(service) {
                if required && !exists(&path, &compose.dir) {
                    problems.push(format!("{at}: env_file {path} does not exist"));
                }
            }
            // configs:, secrets:
            for section in ["configs", "secrets"] {
                let declared = compose.declared(section);
                for item in service[section].as_array().into_iter().flatten() {
                    let source = item.as_str().or_else(|| item["source"].as_str());
                    if let Some(source) = source
                        && !declared.contains(source)
                    {
                        problems.push(format!(
                            "{at}: {section} {source:?} is not declared at the top level"
                        ));
                    }
                }
            }
            // depends_on:
            let depends: Vec<String> = match &service["depends_on"] {
                Value::Array(list) => list
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                Value::Object(map) => map.keys().cloned().collect(),
                _ => Vec::new(),
            };
            for target in depends {
                if !services.contains(&target) {
                    problems.push(format!("{at}: depends_on {target:?}, which is no service"));
                }
            }
            // networks:
            let nets: Vec<String> = match &service["networks"] {
                Value::Array(list) => list
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
                Value::Object(map) => map.keys().cloned().collect(),
                _ => Vec::new(),
            };
            for net in nets {
                if net != "default" && !networks.contains(&net) {
                    problems.push(format!("{at}: network {net:?} is not declared"));
                }
            }
            // The hub's and the agent's variables and flags.
            let help = match name.as_str() {
                "hub" => Some(("sf-hub", &helps.hub)),
                "agent" => Some(("sf-agent", &helps.agent)),
                _ => None,
            };
            if let Some((binary, help)) = help {
                let env = match service_environment(&compose.dir, service, &compose.vars) {
                    Ok(env) => env,
                    Err(err) => {
                        problems.push(format!("{at}: {err}"));
                        BTreeMap::new()
                    }
                };
                for var in env.keys() {
                    if var != "RUST_LOG" && !mentions_word(help, var) {
                        problems.push(format!(
                            "{at}: {var} is not a variable `{binary} --help` mentions"
                        ));
                    }
                }
                for arg in string_list(&service["command"]) {
                    if arg.starts_with("--") {
                        let flag = arg.split('=').next().unwrap_or_default();
                        if !mentions_word(help, flag) {
                            problems.push(format!(
                                "{at}: command flag {flag} is not in `{binary} --help`"
                            ));
                        }
                    }
                }
            }
        }
        for section in ["configs", "secrets"] {
            for (name, item) in doc[section].as_object().into_iter().flatten() {
                if let Some(path) = item["file"].as_str()
                    && !exists(path, &compose.dir)
                {
                    problems.push(format!(
                        "{file}: {section} {name}: file {path} does not exist"
                    ));
                }
            }
        }
    }
    if compose.main()["services"]["hub"].is_null() {
        problems.push("docker-compose.yml has no `hub` service".to_owned());
    }
    if compose.main()["services"]["agent"].is_null() {
        problems.push("docker-compose.yml has no `agent` service".to_owned());
    }
    problems
}

/// The compose files, interpolated (as Compose does before it validates),
/// against the Compose Specification's JSON schema (Draft 2019-09).
fn check_compose_schema(root: &Path, schema: &Value) -> Vec<String> {
    let compose = match Compose::load(root) {
        Ok(c) => c,
        Err(err) => return vec![err],
    };
    let validator = match jsonschema::draft201909::new(schema) {
        Ok(v) => v,
        Err(err) => return vec![format!("the Compose schema does not compile: {err}")],
    };
    let mut problems = Vec::new();
    for (file, doc) in &compose.files {
        match compose.interpolated(doc) {
            Ok(doc) => problems.extend(validator.iter_errors(&doc).map(|e| {
                format!(
                    "{file} breaks the Compose Specification at {}: {e}",
                    e.instance_path()
                )
            })),
            Err(err) => problems.push(format!("{file}: {err}")),
        }
    }
    problems
}

/// The schema from `SF_COMPOSE_SCHEMA`, if set.
fn compose_schema() -> Option<Value> {
    let path = std::env::var_os("SF_COMPOSE_SCHEMA")?;
    let text = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("SF_COMPOSE_SCHEMA={}: {e}", path.to_string_lossy()));
    Some(serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "SF_COMPOSE_SCHEMA={} is not JSON: {e}",
            path.to_string_lossy()
        )
    }))
}

// ----------------------------------------------------------------------
// How the services reach each other
// ----------------------------------------------------------------------

/// The hub listens beyond loopback (other containers reach it); the agent's
/// SERVER_URL and Prometheus' scrape target are the hub's ports; scrape
/// targets and Grafana's datasources name compose services; Prometheus'
/// scrape interval of the hub is Grafana's `timeInterval`; the hub's
/// database host is the compose PostgreSQL.
fn check_wiring(root: &Path) -> Vec<String> {
    let compose = match Compose::load(root) {
        Ok(c) => c,
        Err(err) => return vec![err],
    };
    let mut problems = Vec::new();
    let services = compose.service_names();
    let Some(hub) = compose.service("hub") else {
        return vec!["docker-compose.yml has no `hub` service".to_owned()];
    };
    let hub_env = full_environment(&compose, &hub);
    let (api, metrics) = hub_addresses(&hub_env, &hub.command);
    for (what, addr) in [("API", &api), ("metrics", &metrics)] {
        let host = split_host_port(addr).0;
        if host == "localhost" || host == "::1" || host.starts_with("127.") {
            problems.push(format!(
                "the hub's {what} listens on {addr}, loopback inside its container: other \
                 containers cannot reach it"
            ));
        }
    }
    let api_port = split_host_port(&api).1;
    let metrics_port = split_host_port(&metrics).1;

    // The agent's hub, and its token: the one compose provisions in the hub
    // (values are never printed).
    let hub_token = hub_env
        .get("SF_HUB_BOOTSTRAP_TOKEN")
        .filter(|t| !t.is_empty());
    if hub_token.is_none() {
        problems.push(
            "the hub service has no SF_HUB_BOOTSTRAP_TOKEN: compose provisions no token, so \
             the stack's agents have none the hub knows"
                .to_owned(),
        );
    }
    if let Some(agent) = compose.service("agent") {
        let agent_env = full_environment(&compose, &agent);
        let url = agent_env.get("SERVER_URL").cloned().unwrap_or_default();
        let (host, port) = url_host_port(&url);
        if host != "hub" || port.as_deref() != Some(api_port.as_str()) {
            problems.push(format!(
                "the agent's SERVER_URL is {url:?}, not the hub's API http://hub:{api_port}"
            ));
        }
        if hub_token.is_some() && agent_env.get("SF_TOKEN") != hub_token {
            problems.push(
                "the agent's SF_TOKEN is not the hub's SF_HUB_BOOTSTRAP_TOKEN (give both \
                 ${SF_HUB_BOOTSTRAP_TOKEN:?…}): the hub would refuse the agent with 401"
                    .to_owned(),
            );
        }
    }

    // The hub's database.
    let db_host = match hub_env.get("DATABASE_URL") {
        Some(url) => url_host_port(url).0,
        None => hub_env.get("POSTGRES_HOST").cloned().unwrap_or_default(),
    };
    if !services.contains(&db_host) {
        problems.push(format!(
            "the hub's database host {db_host:?} (POSTGRES_HOST or DATABASE_URL) is no compose \
             service: the hub would fall back to SQLite or not connect"
        ));
    }

    // Prometheus' configuration, as mounted into the prometheus service.
    let datasources = load_datasources(root).unwrap_or_else(|e| {
        problems.push(e);
        Vec::new()
    });
    let prometheus_service = compose
        .services()
        .into_iter()
        .find(|s| s.name == "prometheus" || s.image.contains("prom/prometheus"));
    let config = prometheus_service.as_ref().and_then(|s| {
        s.bind_mounts(&compose.dir)
            .into_iter()
            .find(|(_, target)| target == "/etc/prometheus/prometheus.yml")
            .map(|(source, _)| source)
    });
    match (prometheus_service, config) {
        (None, _) => problems.push("docker-compose.yml has no Prometheus service".to_owned()),
        (Some(s), None) => problems.push(format!(
            "the {} service mounts no prometheus.yml at /etc/prometheus/prometheus.yml",
            s.name
        )),
        (Some(_), Some(path)) => match load_yaml(&path) {
            Err(err) => problems.push(err),
            Ok(config) => {
                let global = config["global"]["scrape_interval"]
                    .as_str()
                    .unwrap_or("1m")
                    .to_owned();
                let mut hub_scraped = false;
                for job in config["scrape_configs"].as_array().into_iter().flatten() {
                    let interval = job["scrape_interval"].as_str().unwrap_or(&global);
                    let targets = job["static_configs"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .flat_map(|c| c["targets"].as_array().cloned().unwrap_or_default());
                    for target in targets {
                        let target = target.as_str().unwrap_or_default();
                        let (host, port) = split_host_port(target);
                        if host != "localhost" && !services.contains(&host) {
                            problems.push(format!(
                                "prometheus.yml job {}: target {target} is no compose service",
                                job["job_name"]
                            ));
                        }
                        if host == "hub" {
                            hub_scraped = true;
                            if port != metrics_port {
                                problems.push(format!(
                                    "prometheus.yml scrapes {target}, but the hub serves metrics \
                                     on port {metrics_port}"
                                ));
                            }
                            for ds in datasources.iter().filter(|d| d.kind == "prometheus") {
                                let time_interval =
                                    ds.json_data["timeInterval"].as_str().unwrap_or("(unset)");
                                if time_interval != interval {
                                    problems.push(format!(
                                        "Prometheus scrapes the hub every {interval}, but \
                                         datasource {:?} has timeInterval {time_interval}: \
                                         $__rate_interval is computed from it, so they must \
                                         be equal",
                                        ds.uid
                                    ));
                                }
                            }
                        }
                    }
                }
                if !hub_scraped {
                    problems.push("prometheus.yml scrapes no hub:<port> target".to_owned());
                }
            }
        },
    }

    // Grafana's datasources reach compose services.
    for ds in &datasources {
        let (host, _) = url_host_port(&ds.url);
        if !services.contains(&host) {
            problems.push(format!(
                "datasource {:?} points at {:?}, which is no compose service",
                ds.uid, ds.url
            ));
        }
    }
    problems
}

/// A service's environment as its process sees it: the image's `ENV`, then
/// the compose environment.
fn full_environment(compose: &Compose, service: &Service) -> BTreeMap<String, String> {
    let mut env = image_env(&compose.dir, &service.raw);
    env.extend(service.environment.clone());
    env
}

/// The hub's API and metrics addresses (`host:port`) in its container:
/// flags, then SF_LISTEN/SF_METRICS_LISTEN, then the original
/// SERVER_*/METRICS_* variables, then the hub's defaults.
fn hub_addresses(hub_env: &BTreeMap<String, String>, args: &[String]) -> (String, String) {
    let flag = |name: &str| -> Option<String> {
        args.iter().enumerate().find_map(|(i, a)| {
            if a == name {
                args.get(i + 1).cloned()
            } else {
                a.strip_prefix(&format!("{name}=")).map(str::to_owned)
            }
        })
    };
    let address = |flag_value: Option<String>, var: &str, host: &str, port: &str, default: u16| {
        flag_value
            .or_else(|| hub_env.get(var).cloned())
            .unwrap_or_else(|| {
                format!(
                    "{}:{}",
                    hub_env.get(host).map_or("127.0.0.1", String::as_str),
                    hub_env
                        .get(port)
                        .cloned()
                        .unwrap_or_else(|| default.to_string())
                )
            })
    };
    let api = address(
        flag("--listen"),
        "SF_LISTEN",
        "SERVER_HOST",
        "SERVER_PORT",
        8080,
    );
    let metrics = address(
        flag("--metrics-listen"),
        "SF_METRICS_LISTEN",
        "METRICS_HOST",
        "METRICS_PORT",
        8000,
    );
    (api, metrics)
}

/// `ENV` of the Dockerfile stage a service is built from.
fn image_env(compose_dir: &Path, service: &Value) -> BTreeMap<String, String> {
    let build = &service["build"];
    let (Some(context), Some(target)) = (
        build.as_str().or_else(|| build["context"].as_str()),
        build["target"].as_str(),
    ) else {
        return BTreeMap::new();
    };
    let dockerfile = build["dockerfile"].as_str().unwrap_or("Dockerfile");
    let path = compose_dir.join(context).join(dockerfile);
    fs::read_to_string(path)
        .ok()
        .and_then(|text| {
            dockerfile_stages(&text)
                .into_iter()
                .find(|s| s.name.as_deref() == Some(target))
        })
        .map(|s| s.env)
        .unwrap_or_default()
}

/// A stage of a Dockerfile: its `AS` name and its `ENV`.
struct Stage {
    name: Option<String>,
    env: BTreeMap<String, String>,
}

fn dockerfile_stages(text: &str) -> Vec<Stage> {
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (current.is_empty() && trimmed.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                instructions.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        instructions.push(current);
    }
    let mut stages: Vec<Stage> = Vec::new();
    for instruction in instructions {
        let words = shell_words(&instruction);
        let Some(keyword) = words.first() else {
            continue;
        };
        if keyword.eq_ignore_ascii_case("FROM") {
            let name = words
                .iter()
                .position(|w| w.eq_ignore_ascii_case("AS"))
                .and_then(|i| words.get(i + 1).cloned());
            stages.push(Stage {
                name,
                env: BTreeMap::new(),
            });
        } else if keyword.eq_ignore_ascii_case("ENV")
            && let Some(stage) = stages.last_mut()
        {
            let rest = &words[1..];
            if rest.first().is_some_and(|w| !w.contains('=')) {
                // The legacy form: ENV NAME value…
                stage.env.insert(rest[0].clone(), rest[1..].join(" "));
            } else {
                for word in rest {
                    if let Some((name, value)) = word.split_once('=') {
                        stage.env.insert(name.to_owned(), value.to_owned());
                    }
                }
            }
        }
    }
    stages
}

/// Splits at whitespace, keeping double-quoted text together (quotes
/// removed).
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                    any = false;
                }
            }
            c => {
                word.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(word);
    }
    words
}

/// `host:port` → (host, port); `[::1]:80` too.
fn split_host_port(addr: &str) -> (String, String) {
    match addr.rsplit_once(':') {
        Some((host, port)) => (
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port.to_owned(),
        ),
        None => (addr.to_owned(), String::new()),
    }
}

/// A URL's host and port: `http://hub:8080/x` → (hub, Some(8080));
/// `postgres:5432` → (postgres, Some(5432)); user info is skipped.
fn url_host_port(url: &str) -> (String, Option<String>) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    match authority.rsplit_once(':') {
        Some((host, port)) => (host.to_owned(), Some(port.to_owned())),
        None => (authority.to_owned(), None),
    }
}

// ----------------------------------------------------------------------
// Helpers
// ----------------------------------------------------------------------

/// A YAML file as JSON, anchors and merge keys (`<<`) resolved.
fn load_yaml(path: &Path) -> Result<Value, String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text)
        .map_err(|e| format!("{} is not valid YAML: {e}", path.display()))?;
    yaml.apply_merge()
        .map_err(|e| format!("{}: merge keys: {e}", path.display()))?;
    serde_json::to_value(&yaml)
        .map_err(|e| format!("{}: not representable as JSON: {e}", path.display()))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `.` and `..` resolved without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn is_var_name(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

/// A `NAME=value` line of an env file such as .env.example.
struct EnvLine {
    name: String,
    value: String,
    /// `# NAME=value`: documented, not set.
    commented: bool,
}

fn env_lines(text: &str) -> Vec<EnvLine> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let (commented, line) = match line.strip_prefix('#') {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let name = name.trim();
        if is_var_name(name) {
            out.push(EnvLine {
                name: name.to_owned(),
                value: unquote(value.trim()).to_owned(),
                commented,
            });
        }
    }
    out
}

/// Whether `word` occurs in `text` with no letter, digit or `_` right
/// before or after it.
fn mentions_word(text: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(is_word)
            && !text[i + word.len()..].chars().next().is_some_and(is_word)
    })
}

type Edit = Box<dyn Fn(&Path) -> Result<(), String>>;

fn edit(f: impl Fn(&Path) -> Result<(), String> + 'static) -> Edit {
    Box::new(f)
}

/// A copy of the repository's `dashboards/` and `compose/` (what the checks
/// read) in a temp dir.
fn copy_of(root: &Path) -> tempfile::TempDir {
    fn copy_dir(from: &Path, to: &Path) {
        fs::create_dir_all(to).expect("create a folder of the copy");
        for entry in fs::read_dir(from).expect("list a folder to copy").flatten() {
            let path = entry.path();
            let dest = to.join(entry.file_name());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                copy_dir(&path, &dest);
            } else {
                fs::copy(&path, &dest).expect("copy a file");
            }
        }
    }
    let copy = tempfile::Builder::new()
        .prefix("sf-e2e-deploy-copy-")
        .tempdir()
        .expect("a temp dir");
    for dir in ["dashboards", "compose"] {
        copy_dir(&root.join(dir), &copy.path().join(dir));
    }
    copy
}

fn edit_json(path: &Path, edit: impl Fn(&mut Value)) -> Result<(), String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut doc: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    edit(&mut doc);
    fs::write(path, serde_json::to_string_pretty(&doc).unwrap()).map_err(|e| e.to_string())
}

fn replace_in(path: &Path, from: &str, to: &str) -> Result<(), String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !text.contains(from) {
        return Err(format!("{} does not contain {from:?}", path.display()));
    }
    fs::write(path, text.replacen(from, to, 1)).map_err(|e| e.to_string())
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
