//! Grafana: the dashboards' JSON (panels, queries, datasource uids) and the
//! provisioning files (datasources, dashboard providers and the paths they
//! mount).

use super::*;

/// A datasource from `dashboards/provisioning/datasources/*.yaml`.
#[derive(Debug, Clone)]
pub struct Datasource {
    pub file: String,
    pub uid: String,
    pub kind: String,
    pub url: String,
    pub json_data: Value,
}

pub fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

pub fn load_datasources(root: &Path) -> Result<Vec<Datasource>, String> {
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
pub fn check_dashboards(root: &Path) -> Vec<String> {
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
pub fn check_grafana_provisioning(root: &Path) -> Vec<String> {
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
pub fn container_path(mounts: &[(PathBuf, String)], host: &Path) -> Option<String> {
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
