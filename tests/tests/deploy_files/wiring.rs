//! How the services reach each other: the hub listens where the agent,
//! Prometheus and Grafana look for it, scrape targets and datasources name
//! compose services, Prometheus scrapes every hub, and (`scale.rs`) every
//! hub's database and store are compose services it waits for.

use super::*;

/// Every hub listens beyond loopback (other containers reach it); the
/// agent's SERVER_URL is the hub's API; Prometheus scrapes every hub on its
/// metrics port; scrape targets and Grafana's datasources name compose
/// services; Prometheus' scrape interval of the hubs is Grafana's
/// `timeInterval`; then [`check_scale`]: every hub's database and store,
/// and the load balancer.
pub fn check_wiring(root: &Path) -> Vec<String> {
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
    let (api, _) = hub_addresses(&hub_env, &hub.command);
    for each in compose.services().iter().filter(|s| s.is_hub()) {
        let (api, metrics) = hub_addresses(&full_environment(&compose, each), &each.command);
        for (what, addr) in [("API", &api), ("metrics", &metrics)] {
            let host = split_host_port(addr).0;
            if host == "localhost" || host == "::1" || host.starts_with("127.") {
                let whose = if each.name == "hub" {
                    "the hub's".to_owned()
                } else {
                    format!("{}'s", each.name)
                };
                problems.push(format!(
                    "{whose} {what} listens on {addr}, loopback inside its container: other \
                     containers cannot reach it"
                ));
            }
        }
    }
    let api_port = split_host_port(&api).1;

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

    // Every hub's metrics port, for Prometheus (each hub's database and
    // store: check_scale below).
    let hub_metrics: BTreeMap<String, String> = compose
        .services()
        .into_iter()
        .filter(Service::is_hub)
        .map(|h| {
            let (_, metrics) = hub_addresses(&full_environment(&compose, &h), &h.command);
            (h.name, split_host_port(&metrics).1)
        })
        .collect();

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
                let mut scraped = BTreeSet::new();
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
                        if let Some(metrics_port) = hub_metrics.get(&host) {
                            scraped.insert(host.clone());
                            if port != *metrics_port {
                                problems.push(format!(
                                    "prometheus.yml scrapes {target}, but {host} serves metrics \
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
                for hub in hub_metrics.keys().filter(|h| !scraped.contains(*h)) {
                    problems.push(format!(
                        "prometheus.yml scrapes no {hub}:<port> target: the dashboards would \
                         miss that hub"
                    ));
                }
            }
        },
    }

    // Several hubs: their databases, stores and load balancer.
    problems.extend(check_scale(root));

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
pub fn full_environment(compose: &Compose, service: &Service) -> BTreeMap<String, String> {
    let mut env = image_env(&compose.dir, &service.raw);
    env.extend(service.environment.clone());
    env
}

/// The hub's API and metrics addresses (`host:port`) in its container:
/// flags, then SF_LISTEN/SF_METRICS_LISTEN, then the original
/// SERVER_*/METRICS_* variables, then the hub's defaults.
pub fn hub_addresses(hub_env: &BTreeMap<String, String>, args: &[String]) -> (String, String) {
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

/// `host:port` → (host, port); `[::1]:80` too.
pub fn split_host_port(addr: &str) -> (String, String) {
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
pub fn url_host_port(url: &str) -> (String, Option<String>) {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    match authority.rsplit_once(':') {
        Some((host, port)) => (host.to_owned(), Some(port.to_owned())),
        None => (authority.to_owned(), None),
    }
}
