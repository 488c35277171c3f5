//! The dashboards' queries against the real thing. Two real agents sync
//! through a real hub (create, modify, delete, a conflict between the
//! agents, a conflict copy from an original client, a restore); then
//!
//! - every PromQL expression in `dashboards/json/*.json` runs on a real
//!   Prometheus scraping that hub, and
//! - every SQL query runs on that hub's PostgreSQL database, with Grafana's
//!   macros expanded as Grafana expands them,
//!
//! and each must succeed and return data: a query that errors or comes back
//! empty is a panel that shows "No data" after real use.
//!
//! Needs `prometheus` on `PATH` (or `SF_PROMETHEUS_BIN`) and
//! `SF_TEST_DATABASE_URL`; without them the checks are skipped with a loud
//! line, except in CI (`CI` set), where they fail. `SF_REPO_ROOT` points
//! them at another copy of `dashboards/`.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use sf_e2e::services::{
    DashboardTarget, HubProcess, PgDatabase, Prometheus, dashboard_targets, repo_root, unavailable,
};
use sf_e2e::*;
use sqlx::{Column, Executor, SqlSafeStr, Statement};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const CONVERGE: Duration = Duration::from_secs(60);
/// Prometheus' scrape interval here (the compose stack's is longer).
const SCRAPE: Duration = Duration::from_secs(1);
/// What Grafana's `$__interval` is taken to be for PromQL.
const PROMQL_INTERVAL: Duration = Duration::from_secs(5);
/// What `$__range` is taken to be for PromQL.
const PROMQL_RANGE: Duration = Duration::from_secs(300);
/// What `$__interval` is taken to be for SQL (Grafana writes 60 s as `1m`).
const SQL_INTERVAL: &str = "1m";
/// The SQL time range: the narrowest of the dashboards' defaults (live
/// events, 15 minutes), ending now; the syncs happened inside it.
const SQL_RANGE: Duration = Duration::from_secs(15 * 60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promql_of_every_dashboard_returns_series() {
    const TEST: &str = "promql_of_every_dashboard_returns_series";
    let root = repo_root();
    let queries = queries_of(&root, "PromQL", DashboardTarget::expr);
    let expanded: Vec<(DashboardTarget, String)> = queries
        .into_iter()
        .map(|(target, expr)| {
            let expanded = expand_promql(&expr, SCRAPE)
                .unwrap_or_else(|e| panic!("{}: {e}\n    {expr}", target.label()));
            (target, expanded)
        })
        .collect();
    let Some(prometheus_bin) = Prometheus::binary() else {
        unavailable(
            TEST,
            "prometheus is not installed",
            "install it (Debian/Ubuntu: `apt-get install -y --no-install-recommends prometheus`; \
             or a release from https://prometheus.io/download/) or set SF_PROMETHEUS_BIN to its \
             binary",
        );
        return;
    };

    let sandbox = Sandbox::new("promql");
    // On PostgreSQL when there is one (as deployed), else on SQLite: the
    // metrics are the same.
    let pg = match std::env::var_os("SF_TEST_DATABASE_URL") {
        Some(_) => PgDatabase::create(TEST).await,
        None => None,
    };
    let hub = start_hub(&sandbox, pg.as_ref()).await;
    sandbox.step(&format!(
        "prometheus scraping {} every {SCRAPE:?}",
        hub.metrics_addr()
    ));
    let prometheus = Prometheus::start(
        &prometheus_bin,
        &sandbox.dir("prometheus"),
        &[("sf-hub", hub.metrics_addr())],
        SCRAPE,
    )
    .await;
    // Scraped before the syncs, so that increase() sees them.
    prometheus.wait_scraped("sf-hub", 3, CONVERGE).await;
    let (a, _b) = real_syncs(&sandbox, hub.url()).await;

    sandbox.step("keep syncing while Prometheus scrapes, so rates are not zero");
    let activity = Activity::start(a.dir().to_path_buf());
    prometheus.wait_scraped("sf-hub", 10, CONVERGE).await;
    tokio::time::sleep(grafana_rate_interval(SCRAPE) + 2 * SCRAPE).await;

    sandbox.step("Prometheus saw the syncs move the hub's counters");
    let mut failures = Vec::new();
    for counter in [
        "sync_uploads_total",
        "sync_deletes_total",
        "sync_conflicts_total",
        "sync_restores_total",
        "sync_dedup_saved_bytes_total",
    ] {
        let expr = format!(
            "sum(increase({counter}[{}]))",
            prometheus_duration(PROMQL_RANGE)
        );
        let answer = prometheus.query(&expr).await;
        let value = answer.as_ref().ok().and_then(first_value);
        if !value.is_some_and(|v| v > 0.0) {
            failures.push(format!(
                "{expr} should be above 0 after the syncs: {answer:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "the scenario did not do what the dashboards need:\n{}",
        failures.join("\n")
    );

    sandbox.step(&format!("{} dashboard expressions", expanded.len()));
    for (target, expr) in &expanded {
        let answer = prometheus.query(expr).await;
        match &answer {
            Ok(body) if body["status"] == "success" && has_data(&body["data"]) => {
                eprintln!(
                    "ok  {}: {} series, first {:?}",
                    target.label(),
                    body["data"]["result"].as_array().map_or(1, Vec::len),
                    first_value(body)
                );
            }
            _ => failures.push(format!(
                "{}:\n    {}\n    as run: {expr}\n    answer: {}",
                target.label(),
                target.expr().unwrap_or_default().replace('\n', " "),
                match &answer {
                    Ok(body) => body.to_string(),
                    Err(err) => err.clone(),
                }
            )),
        }
    }
    let ticks = activity.finish().await;
    eprintln!("{ticks} background changes while querying");
    assert!(
        failures.is_empty(),
        "{} of {} dashboard PromQL expressions fail or return no series \
         (the panel would show \"No data\"):\n{}",
        failures.len(),
        expanded.len(),
        failures.join("\n")
    );
    sandbox.step("done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_of_every_dashboard_runs_on_postgres() {
    const TEST: &str = "sql_of_every_dashboard_runs_on_postgres";
    let root = repo_root();
    let queries = queries_of(&root, "SQL", DashboardTarget::raw_sql);
    // Macros and variables need no database: check them first.
    let now = OffsetDateTime::now_utc();
    for (target, raw) in &queries {
        if let Err(err) = expand_sql(raw, now - SQL_RANGE, now) {
            panic!("{}: {err}\n    {raw}", target.label());
        }
    }
    let Some(pg) = PgDatabase::create(TEST).await else {
        return;
    };
    let sandbox = Sandbox::new("sql");
    let hub = start_hub(&sandbox, Some(&pg)).await;
    let (_a, _b) = real_syncs(&sandbox, hub.url()).await;

    let mut conn = pg.connect().await;
    let actions: Vec<(String, i64)> =
        sqlx::query_as("SELECT action, count(*) FROM files_log GROUP BY action ORDER BY action")
            .fetch_all(&mut conn)
            .await
            .expect("count files_log by action");
    eprintln!("files_log: {actions:?}");
    for wanted in ["upload", "delete", "conflict", "restore"] {
        assert!(
            actions.iter().any(|(action, _)| action == wanted),
            "the syncs left no `{wanted}` row in files_log: {actions:?}"
        );
    }

    let to = OffsetDateTime::now_utc();
    let from = to - SQL_RANGE;
    sandbox.step(&format!(
        "{} dashboard SQL queries, time range {} .. {}",
        queries.len(),
        rfc3339(from),
        rfc3339(to)
    ));
    let mut failures = Vec::new();
    for (target, raw) in &queries {
        let sql = match expand_sql(raw, from, to) {
            Ok(sql) => sql,
            Err(err) => {
                failures.push(format!("{}: {err}", target.label()));
                continue;
            }
        };
        let problem = run_sql(&mut conn, target, &sql).await;
        match problem {
            Ok(rows) => eprintln!(
                "ok  {}: {} rows, first {}",
                target.label(),
                rows.len(),
                rows[0]
            ),
            Err(err) => failures.push(format!(
                "{}: {err}\n    as run: {}",
                target.label(),
                sql.replace('\n', " ")
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} dashboard SQL queries fail on PostgreSQL or return nothing after real \
         syncs inside their time range:\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n")
    );
    sandbox.step("done");
}

/// Every target with a query of the given kind (`expr`, `rawSql`); a
/// dashboard set without any fails.
fn queries_of(
    root: &std::path::Path,
    kind: &str,
    query: impl Fn(&DashboardTarget) -> Option<&str>,
) -> Vec<(DashboardTarget, String)> {
    let targets = dashboard_targets(root).unwrap_or_else(|e| panic!("{e}"));
    let found: Vec<(DashboardTarget, String)> = targets
        .iter()
        .filter_map(|t| query(t).map(|q| (t.clone(), q.to_owned())))
        .collect();
    assert!(
        !found.is_empty(),
        "no {kind} query in {}/dashboards/json/*.json",
        root.display()
    );
    found
}

/// Prepares and runs one expanded query: it must succeed; a `time_series`
/// query's first column must be `time`; and it must return rows holding
/// something besides the time: a value that is not NULL and not 0 (after
/// syncs of every kind inside the range, a count of 0 is a filter that
/// matches nothing, e.g. a misspelt action). The rows, as JSON objects.
async fn run_sql(
    conn: &mut sqlx::PgConnection,
    target: &DashboardTarget,
    sql: &str,
) -> Result<Vec<Value>, String> {
    let statement = (&mut *conn)
        .prepare(sqlx::AssertSqlSafe(sql.to_owned()).into_sql_str())
        .await
        .map_err(|e| format!("PostgreSQL refuses it: {e}"))?;
    let columns: Vec<String> = statement
        .columns()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    // Each row as JSON, so that any column type can be looked at.
    let as_json = format!(
        "SELECT row_to_json(q)::text FROM (\n{}\n) AS q",
        sql.trim().trim_end_matches(';')
    );
    let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(as_json))
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| format!("PostgreSQL fails running it: {e}"))?;
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| serde_json::from_str(r).unwrap_or(Value::String(r.clone())))
        .collect();
    let mut problems = Vec::new();
    if target.format() == Some("time_series") && columns.first().map(String::as_str) != Some("time")
    {
        problems.push(format!(
            "format time_series needs `time` as the first column; columns: {columns:?}"
        ));
    }
    let meaningful = |value: &Value| match value {
        Value::Null => false,
        Value::Number(n) => n.as_f64() != Some(0.0),
        _ => true,
    };
    if rows.is_empty() {
        problems.push(format!(
            "no rows, although the syncs happened inside the time range (columns {columns:?})"
        ));
    } else if !rows.iter().any(|row| {
        row.as_object().is_none_or(|fields| {
            fields
                .iter()
                .any(|(name, value)| name != "time" && meaningful(value))
        })
    }) {
        problems.push(format!(
            "only zeros and NULLs, although the syncs (uploads, deletes, conflicts, a restore) \
             happened inside the time range: {}",
            Value::from(rows.clone())
        ));
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(problems.join("; "))
    }
}

/// A hub on `pg` (or on SQLite in its data dir), API and metrics on free
/// ports.
async fn start_hub(sandbox: &Sandbox, pg: Option<&PgDatabase>) -> HubProcess {
    let mut env = BTreeMap::new();
    if let Some(pg) = pg {
        env.insert("DATABASE_URL".to_owned(), pg.url().to_owned());
    }
    let args: Vec<OsString> = vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--metrics-listen".into(),
        "127.0.0.1:0".into(),
        "--data-dir".into(),
        sandbox.dir("hub").into(),
    ];
    let hub = HubProcess::start(&env, &args)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let backend = if pg.is_some() { "postgres" } else { "sqlite" };
    assert_eq!(
        hub.ready()["database"],
        backend,
        "the hub runs on the wrong database: {}",
        hub.ready()
    );
    hub
}

/// Two agents, `a` and `b`, sync every kind of change the audit log and
/// the metrics know: uploads (one file twice, so dedup saves bytes),
/// modifications on both sides, a delete, a conflict between the agents
/// (refused commit, conflict copy), a conflict copy made for an original
/// client's upload (`conflict` in files_log), and a restore.
async fn real_syncs(sandbox: &Sandbox, hub_url: &str) -> (Agent, Agent) {
    let a_dir = sandbox.dir("a");
    let b_dir = sandbox.dir("b");
    let a = Agent::start(hub_url, &a_dir, "a", &[]).await;
    let mut b = Agent::start(hub_url, &b_dir, "b", &[]).await;
    let both = [a_dir.as_path(), b_dir.as_path()];
    let converge = async || {
        wait_converged(&both, hub_url, CONVERGE)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    };

    sandbox.step("create in A");
    let readme_v1 = "# readme\n";
    write_file(&a_dir.join("docs/readme.md"), readme_v1);
    write_file(&a_dir.join("docs/notes.txt"), "notes\n");
    let big = random_bytes(11, 2 << 20);
    write_file(&a_dir.join("data/big.bin"), &big);
    converge().await;

    // After the original is on the hub: two copies written together go up
    // in one batch, whose chunks the agent sends once without asking.
    sandbox.step("copy in A: the hub already holds its chunks");
    write_file(&a_dir.join("data/copy-of-big.bin"), &big);
    converge().await;

    sandbox.step("modify in A and in B");
    write_file(&a_dir.join("docs/readme.md"), "# readme\nedited on a\n");
    write_file(&b_dir.join("docs/notes.txt"), "notes\nedited on b\n");
    converge().await;

    sandbox.step("delete in B");
    fs::remove_file(b_dir.join("data/copy-of-big.bin")).expect("delete in B");
    converge().await;

    sandbox.step("conflict: stop B, edit the same file in A and in B, start B");
    assert!(b.stop().await.success());
    let from_a = "notes\nedited on a while b was down\n";
    write_file(&a_dir.join("docs/notes.txt"), from_a);
    wait_hub(hub_url, CONVERGE, "A's edit on the hub", |index| {
        index.get("docs/notes.txt") == Some(&sha256(from_a))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    write_file(
        &b_dir.join("docs/notes.txt"),
        "notes\nedited on b while down\n",
    );
    b.restart().await;
    converge().await;

    sandbox.step("an original client uploads over an old version: a conflict copy");
    legacy_upload_conflict(
        hub_url,
        "docs/readme.md",
        readme_v1,
        "# readme\nfrom the original client\n",
    )
    .await;
    converge().await;

    sandbox.step("restore version 1 of docs/readme.md");
    restore(hub_url, "docs/readme.md", 1).await;
    converge().await;
    assert_eq!(
        read_file(&a_dir.join("docs/readme.md")),
        readme_v1.as_bytes()
    );
    (a, b)
}

/// `POST /upload` as the original client does, based on `base` while the
/// hub holds something newer: the hub keeps it as a conflict copy.
async fn legacy_upload_conflict(hub_url: &str, path: &str, base: &str, content: &str) {
    let meta = json!({ "path": path, "base_sha": sha256(base).to_hex() }).to_string();
    let mut body = meta.clone().into_bytes();
    body.extend_from_slice(content.as_bytes());
    let url = format!("{hub_url}/upload");
    let resp = tokens::authorize(reqwest::Client::new().post(&url), &url)
        .header("X-Meta-Length", meta.len().to_string())
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST /upload: {e}"));
    let status = resp.status();
    let answer: Value = resp.json().await.unwrap_or_default();
    assert!(
        status.is_success() && answer["conflict"].is_string(),
        "POST /upload {meta} should make a conflict copy: {status} {answer}"
    );
}

/// `POST /v1/restore`.
async fn restore(hub_url: &str, path: &str, version: u64) {
    let url = format!("{hub_url}/v1/restore");
    let resp = tokens::authorize(reqwest::Client::new().post(&url), &url)
        .json(&json!({ "path": path, "version": version, "origin": "e2e" }))
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST /v1/restore: {e}"));
    let status = resp.status();
    let answer = resp.text().await.unwrap_or_default();
    assert!(
        status.is_success(),
        "POST /v1/restore {path} v{version}: {status} {answer}"
    );
}

/// A change every 400 ms in a synced folder (new files, old ones deleted),
/// until [`Activity::finish`].
struct Activity {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<u64>,
}

impl Activity {
    fn start(dir: PathBuf) -> Activity {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let mut n = 0u64;
            while !flag.load(Ordering::Relaxed) {
                write_file(
                    &dir.join(format!("activity/tick-{n}.txt")),
                    format!("tick {n}\n"),
                );
                if n >= 3 {
                    let _ = fs::remove_file(dir.join(format!("activity/tick-{}.txt", n - 3)));
                }
                n += 1;
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
            n
        });
        Activity { stop, task }
    }

    async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the activity task")
    }
}

/// Whether a query answer's `data` holds something: a non-empty vector or
/// matrix, or a scalar.
fn has_data(data: &Value) -> bool {
    match data["resultType"].as_str() {
        Some("vector" | "matrix") => data["result"].as_array().is_some_and(|r| !r.is_empty()),
        Some("scalar" | "string") => data["result"].is_array(),
        _ => false,
    }
}

/// The first sample value of a query answer.
fn first_value(body: &Value) -> Option<f64> {
    let result = &body["data"]["result"];
    let value = if result[0].is_object() {
        &result[0]["value"][1]
    } else {
        &result[1]
    };
    value.as_str()?.parse().ok()
}

/// Grafana's `$__rate_interval`: max(`$__interval` + scrape interval,
/// 4 × scrape interval).
fn grafana_rate_interval(scrape: Duration) -> Duration {
    (PROMQL_INTERVAL + scrape).max(4 * scrape)
}

/// `90s`, `1500ms`: a Prometheus duration.
fn prometheus_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A dashboard's PromQL with Grafana's global variables replaced as Grafana
/// would for a Prometheus scraping every `scrape`; any other variable is an
/// error (no dashboard defines template variables).
fn expand_promql(expr: &str, scrape: Duration) -> Result<String, String> {
    substitute_variables(expr, |name| {
        Some(match name {
            "__rate_interval" => prometheus_duration(grafana_rate_interval(scrape)),
            "__interval" => prometheus_duration(PROMQL_INTERVAL),
            "__interval_ms" => PROMQL_INTERVAL.as_millis().to_string(),
            "__range" => prometheus_duration(PROMQL_RANGE),
            "__range_s" => PROMQL_RANGE.as_secs().to_string(),
            "__range_ms" => PROMQL_RANGE.as_millis().to_string(),
            _ => return None,
        })
    })
}

/// Replaces Grafana variables (`$name`, `${name}`, `${name:format}`,
/// `[[name]]`) by `value(name)`; `None` from `value` is an error naming the
/// variable. A `$` not followed by a name (PromQL's `$1` in
/// `label_replace`, SQL's `$$`) stays.
fn substitute_variables(
    text: &str,
    value: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut unknown = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['$', '[']) {
        out.push_str(&rest[..i]);
        let marker = &rest[i..];
        let (name, consumed) = if marker.starts_with("$$") {
            (None, 2)
        } else if let Some(inner) = marker.strip_prefix("[[") {
            match inner.find("]]") {
                Some(end) if is_name(&inner[..end]) => (Some(&inner[..end]), 2 + end + 2),
                _ => (None, 1),
            }
        } else if let Some(inner) = marker.strip_prefix("${") {
            match inner.find('}') {
                Some(end) => {
                    let name = inner[..end].split(':').next().unwrap_or_default();
                    (Some(name), 2 + end + 1)
                }
                None => (None, 1),
            }
        } else if let Some(after) = marker.strip_prefix('$') {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if is_name(&after[..len]) {
                (Some(&after[..len]), 1 + len)
            } else {
                (None, 1)
            }
        } else {
            (None, 1)
        };
        match name {
            Some(name) => match value(name) {
                Some(v) => out.push_str(&v),
                None => {
                    unknown.push(format!("`{}`", &marker[..consumed]));
                    out.push_str(&marker[..consumed]);
                }
            },
            None => out.push_str(&marker[..consumed]),
        }
        rest = &marker[consumed..];
    }
    out.push_str(rest);
    if unknown.is_empty() {
        Ok(out)
    } else {
        Err(format!(
            "unknown Grafana variable(s) or macro(s) {} (the dashboards define no template variables)",
            unknown.join(", ")
        ))
    }
}

fn is_name(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// RFC 3339 in milliseconds, as Grafana sends its time range.
fn rfc3339(t: OffsetDateTime) -> String {
    let t = t
        .replace_millisecond(t.millisecond())
        .expect("a valid millisecond");
    t.format(&Rfc3339).expect("an RFC 3339 time")
}

/// A dashboard's SQL as Grafana's PostgreSQL data source runs it for the
/// range `from..to`: the global variables first (`$__interval` → `1m`,
/// `$__interval_ms`), then the macros `$__timeFilter(col)`,
/// `$__timeGroup(col, interval[, fill])`, `$__timeGroupAlias(…)`,
/// `$__timeFrom()`, `$__timeTo()`. Anything else starting with `$__`, or a
/// template variable, is an error.
fn expand_sql(sql: &str, from: OffsetDateTime, to: OffsetDateTime) -> Result<String, String> {
    const MACROS: &[&str] = &[
        "__timeFilter",
        "__timeGroup",
        "__timeGroupAlias",
        "__timeFrom",
        "__timeTo",
    ];
    // The front end replaces variables; macros are left to the back end.
    let sql = substitute_variables(sql, |name| match name {
        "__interval" => Some(SQL_INTERVAL.to_owned()),
        "__interval_ms" => grafana_interval_secs(SQL_INTERVAL).map(|s| (s * 1000).to_string()),
        name if MACROS.contains(&name) => Some(format!("${name}")),
        _ => None,
    })?;
    let (from, to) = (rfc3339(from), rfc3339(to));
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql.as_str();
    while let Some(i) = rest.find("$__") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..len];
        let Some(call) = after[len..].strip_prefix('(') else {
            return Err(format!("`${name}` is not a macro call"));
        };
        let close = matching_paren(call).ok_or_else(|| format!("`${name}(` is not closed"))?;
        let args = split_args(&call[..close]);
        let arity = |min: usize, max: usize| -> Result<(), String> {
            if (min..=max).contains(&args.len()) && args.iter().take(min).all(|a| !a.is_empty()) {
                Ok(())
            } else {
                Err(format!("`${name}({})`: wrong arguments", &call[..close]))
            }
        };
        let expansion = match name {
            "__timeFilter" => {
                arity(1, 1)?;
                format!("{} BETWEEN '{from}' AND '{to}'", args[0])
            }
            "__timeFrom" | "__timeTo" => {
                if !call[..close].trim().is_empty() {
                    return Err(format!("`${name}()` takes no arguments"));
                }
                format!("'{}'", if name == "__timeFrom" { &from } else { &to })
            }
            "__timeGroup" | "__timeGroupAlias" => {
                arity(2, 3)?;
                let secs = grafana_interval_secs(&args[1])
                    .ok_or_else(|| format!("`${name}`: bad interval {:?}", args[1]))?;
                let group = format!("floor(extract(epoch from {})/{secs})*{secs}", args[0]);
                if name == "__timeGroupAlias" {
                    format!("{group} AS \"time\"")
                } else {
                    group
                }
            }
            _ => return Err(format!("unknown Grafana macro `${name}`")),
        };
        out.push_str(&expansion);
        rest = &call[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Where the `)` closing an already opened `(` is, skipping quoted text.
fn matching_paren(text: &str) -> Option<usize> {
    let mut depth = 1;
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// A macro's arguments: split at top-level commas, trimmed.
fn split_args(text: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut depth = 0;
    let mut quoted = false;
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                args.push(current.trim().to_owned());
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() || !args.is_empty() {
        args.push(current.trim().to_owned());
    }
    args
}

/// Seconds of a Grafana interval: `60s`, `'1m'`, `"1h"`, `1d`, `1w`.
fn grafana_interval_secs(raw: &str) -> Option<u64> {
    let raw = raw.trim().trim_matches(['\'', '"']);
    let split = raw.find(|c: char| !c.is_ascii_digit())?;
    let number: u64 = raw[..split].parse().ok()?;
    let unit = match &raw[split..] {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    Some(number * unit).filter(|s| *s > 0)
}

#[test]
fn promql_variables_are_expanded_and_unknown_ones_refused() {
    let scrape = Duration::from_secs(15);
    assert_eq!(
        expand_promql(
            "sum(rate(x_total[$__rate_interval])) + increase(y[${__range}])",
            scrape
        )
        .unwrap(),
        "sum(rate(x_total[60s])) + increase(y[300s])"
    );
    assert_eq!(
        expand_promql(r#"label_replace(up, "a", "$1", "job", "(.*)")"#, scrape).unwrap(),
        r#"label_replace(up, "a", "$1", "job", "(.*)")"#
    );
    let err = expand_promql("rate(x[$__rate_interval]) * $agent", scrape).unwrap_err();
    assert!(err.contains("`$agent`"), "{err}");
    assert!(expand_promql("x{a=\"[[host]]\"}", scrape).is_err());
}

#[test]
fn sql_macros_are_expanded_as_grafana_does() {
    let to = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let from = to - Duration::from_secs(3600);
    let sql = "SELECT $__timeGroupAlias(timestamp, $__interval), count(*) FROM t \
               WHERE $__timeFilter(timestamp) AND x > $__timeFrom() \
               GROUP BY $__timeGroup(timestamp, '1h', 0)";
    assert_eq!(
        expand_sql(sql, from, to).unwrap(),
        "SELECT floor(extract(epoch from timestamp)/60)*60 AS \"time\", count(*) FROM t \
         WHERE timestamp BETWEEN '2023-11-14T21:13:20Z' AND '2023-11-14T22:13:20Z' \
         AND x > '2023-11-14T21:13:20Z' GROUP BY floor(extract(epoch from timestamp)/3600)*3600"
    );
    assert_eq!(
        expand_sql("SELECT $__timeGroupAlias(ts, '1d')", from, to).unwrap(),
        "SELECT floor(extract(epoch from ts)/86400)*86400 AS \"time\""
    );
    for bad in [
        "SELECT $__unixEpochFilter(ts)",
        "SELECT $__timeFilter",
        "SELECT $__timeFilter(ts",
        "SELECT $__timeGroup(ts, '1 minute')",
        "SELECT * FROM t WHERE origin = '$agent'",
    ] {
        assert!(
            expand_sql(bad, from, to).is_err(),
            "{bad} should be refused"
        );
    }
    assert_eq!(
        expand_sql("SELECT $$a$$, $1", from, to).unwrap(),
        "SELECT $$a$$, $1"
    );
}
