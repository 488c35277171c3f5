//! Several hubs (the `scale` profile): every hub has its database and its
//! store and waits for them; hubs that share a database share one S3
//! bucket, which a one-shot service creates; the load balancer forwards to
//! exactly the profile's hubs and publishes their API.

use super::*;

/// Where a hub keeps chunks: its data dir, or a bucket.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Store {
    Local,
    S3 { bucket: String, prefix: String },
}

/// The hub's store: `--store`, else SF_STORE, else its data dir.
pub fn hub_store(env: &BTreeMap<String, String>, args: &[String]) -> Store {
    let flag = args.iter().enumerate().find_map(|(i, a)| {
        if a == "--store" {
            args.get(i + 1).cloned()
        } else {
            a.strip_prefix("--store=").map(str::to_owned)
        }
    });
    match flag.or_else(|| env.get("SF_STORE").cloned()) {
        Some(url) if url.starts_with("s3://") => {
            let rest = &url["s3://".len()..];
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            Store::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            }
        }
        _ => Store::Local,
    }
}

/// The hub's database: (host, database name), from DATABASE_URL or
/// POSTGRES_HOST/POSTGRES_DB.
pub fn hub_database(env: &BTreeMap<String, String>) -> (String, String) {
    match env.get("DATABASE_URL") {
        Some(url) => {
            let (host, _) = url_host_port(url);
            let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
            let name = rest
                .split_once('/')
                .map(|(_, path)| path.split('?').next().unwrap_or_default())
                .unwrap_or_default();
            (host, name.to_owned())
        }
        None => (
            env.get("POSTGRES_HOST").cloned().unwrap_or_default(),
            env.get("POSTGRES_DB").cloned().unwrap_or_default(),
        ),
    }
}

/// `$NAME` and `${NAME}` of a shell word expanded from `env`; quotes
/// removed.
fn shell_expand(word: &str, env: &BTreeMap<String, String>) -> String {
    let word = word.trim_matches(|c| c == '"' || c == '\'');
    let mut out = String::new();
    let mut rest = word;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, tail) = match after.strip_prefix('{') {
            Some(inner) => match inner.split_once('}') {
                Some((name, tail)) => (name, tail),
                None => (inner, ""),
            },
            None => {
                let len = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                after.split_at(len)
            }
        };
        out.push_str(env.get(name).map_or("", String::as_str));
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// The buckets a service's script creates (`mc mb … ALIAS/BUCKET`).
pub fn buckets_created(service: &Service) -> Vec<String> {
    let script = service.argv().join("\n");
    script
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words.windows(2).position(|w| w == ["mc", "mb"])?;
            let target = words[at + 2..].iter().find(|w| !w.starts_with('-'))?;
            let target = shell_expand(target, &service.environment);
            let bucket = target.split_once('/').map_or(target.as_str(), |(_, b)| b);
            Some(bucket.trim_end_matches('/').to_owned())
        })
        .collect()
}

/// Every hub's database and store, and how hubs that share them relate;
/// the load balancers in front of them.
pub fn check_scale(root: &Path) -> Vec<String> {
    let compose = match Compose::load(root) {
        Ok(c) => c,
        Err(err) => return vec![err],
    };
    let mut problems = Vec::new();
    let services: BTreeMap<String, Service> = compose
        .services()
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let hubs: Vec<&Service> = services.values().filter(|s| s.is_hub()).collect();
    let mut by_database: BTreeMap<(String, String), Vec<(String, Store)>> = BTreeMap::new();
    let mut api_port = BTreeMap::new();
    for hub in &hubs {
        let at = format!("hub service {}", hub.name);
        let env = full_environment(&compose, hub);
        let (api, _) = hub_addresses(&env, &hub.command);
        api_port.insert(hub.name.clone(), split_host_port(&api).1);
        let depends = hub.depends_on();

        // Its database.
        let (db_host, db_name) = hub_database(&env);
        if !services.contains_key(&db_host) {
            problems.push(format!(
                "{at}: its database host {db_host:?} (POSTGRES_HOST or DATABASE_URL) is no \
                 compose service: the hub would fall back to SQLite or not connect"
            ));
        } else if depends.get(&db_host).map(String::as_str) != Some("service_healthy") {
            problems.push(format!(
                "{at}: does not wait for its database ({db_host}) to be healthy \
                 (depends_on {db_host}: condition: service_healthy)"
            ));
        }

        // Its store.
        let store = hub_store(&env, &hub.command);
        if let Store::S3 { bucket, .. } = &store {
            let endpoint = env.get("AWS_ENDPOINT_URL").cloned().unwrap_or_default();
            let (endpoint_host, _) = url_host_port(&endpoint);
            let store_service = services.get(&endpoint_host);
            if store_service.is_none() {
                problems.push(format!(
                    "{at}: keeps chunks in s3://{bucket}, but AWS_ENDPOINT_URL {endpoint:?} is \
                     no compose service"
                ));
            }
            for var in ["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
                if env.get(var).is_none_or(String::is_empty) {
                    problems.push(format!(
                        "{at}: keeps chunks in s3://{bucket}, but {var} is not set"
                    ));
                }
            }
            if let Some(store_service) = store_service {
                for (hub_var, store_var) in [
                    ("AWS_ACCESS_KEY_ID", "MINIO_ROOT_USER"),
                    ("AWS_SECRET_ACCESS_KEY", "MINIO_ROOT_PASSWORD"),
                ] {
                    if let Some(expected) = store_service.environment.get(store_var)
                        && env.get(hub_var) != Some(expected)
                    {
                        problems.push(format!(
                            "{at}: {hub_var} is not {endpoint_host}'s {store_var}: the store \
                             would refuse the hub"
                        ));
                    }
                }
            }
            let creators: Vec<&Service> = services
                .values()
                .filter(|s| buckets_created(s).contains(bucket))
                .collect();
            if creators.is_empty() {
                problems.push(format!(
                    "{at}: keeps chunks in s3://{bucket}, which no service creates (`mc mb \
                     --ignore-existing …/{bucket}`): the hub does not create its bucket"
                ));
            } else if !creators.iter().any(|c| {
                depends.get(&c.name).map(String::as_str) == Some("service_completed_successfully")
            }) {
                problems.push(format!(
                    "{at}: does not wait for the bucket {bucket} to be created (depends_on {}: \
                     condition: service_completed_successfully)",
                    creators[0].name
                ));
            }
        }
        by_database
            .entry((db_host, db_name))
            .or_default()
            .push((hub.name.clone(), store));
    }

    // Hubs on one database are one hub to their clients: one store, in a
    // bucket (a data dir belongs to one hub).
    for ((host, name), members) in &by_database {
        let stores: BTreeSet<&Store> = members.iter().map(|(_, s)| s).collect();
        let names: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
        if members.len() > 1 && (stores.len() > 1 || stores.contains(&Store::Local)) {
            problems.push(format!(
                "hubs {names:?} share the database {name} on {host} but not one S3 bucket \
                 ({stores:?}): each would list chunks the others cannot read"
            ));
        }
    }

    // The balancers.
    for (lb, path) in balancers(&compose) {
        let at = format!("lb service {}", lb.name);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("{at}: cannot read {}: {e}", path.display()));
                continue;
            }
        };
        let sections = parse_haproxy(&text);
        let expected: BTreeMap<String, String> = hubs
            .iter()
            .filter(|h| h.profiles.iter().any(|p| lb.profiles.contains(p)))
            .map(|h| (h.name.clone(), api_port[&h.name].clone()))
            .collect();
        if expected.len() < 2 {
            problems.push(format!(
                "{at}: its profile(s) {:?} have {} hub(s): a balancer needs at least two",
                lb.profiles,
                expected.len()
            ));
        }
        problems.extend(check_haproxy(&lb.name, &sections, &expected));
        let published: BTreeSet<String> = lb.raw["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| security::parse_port(p).container)
            .collect();
        let ports = api_ports(&sections);
        if ports.is_empty() {
            problems.push(format!("{at}: no frontend binds a port for the hubs' API"));
        }
        for port in ports {
            if !published.contains(&port) {
                problems.push(format!(
                    "{at}: serves the hubs' API on port {port}, which it does not publish"
                ));
            }
        }
        let depends = lb.depends_on();
        for hub in expected.keys() {
            if depends.get(hub).map(String::as_str) != Some("service_healthy") {
                problems.push(format!(
                    "{at}: does not wait for {hub} to be healthy (depends_on {hub}: condition: \
                     service_healthy)"
                ));
            }
        }
        if lb.raw["healthcheck"].is_null() {
            problems.push(format!("{at}: no healthcheck"));
        }
    }
    problems
}
