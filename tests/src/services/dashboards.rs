//! The Grafana dashboards in `dashboards/json/`: loaded, their panels
//! (nested rows included) and every query target with its datasource.

use std::fs;
use std::path::{Path, PathBuf};

/// One query of a Grafana dashboard in `dashboards/json/`.
#[derive(Debug, Clone)]
pub struct DashboardTarget {
    /// The file's name, e.g. `hub-metrics.json`.
    pub file: String,
    pub panel_id: Option<i64>,
    pub panel_title: String,
    pub ref_id: String,
    /// The target's datasource uid, else its panel's.
    pub datasource_uid: Option<String>,
    /// The whole target object.
    pub target: serde_json::Value,
}

impl DashboardTarget {
    /// `hub-metrics.json, panel 3 "Uploads (range)", target A`.
    pub fn label(&self) -> String {
        format!(
            "{}, panel {} {:?}, target {}",
            self.file,
            self.panel_id.map_or("?".to_owned(), |id| id.to_string()),
            self.panel_title,
            self.ref_id
        )
    }

    /// The PromQL (`expr`), if this is a Prometheus query.
    pub fn expr(&self) -> Option<&str> {
        self.target["expr"].as_str()
    }

    /// The SQL (`rawSql`), if this is an SQL query.
    pub fn raw_sql(&self) -> Option<&str> {
        self.target["rawSql"].as_str()
    }

    /// The target's `format` (`time_series`, `table`), if set.
    pub fn format(&self) -> Option<&str> {
        self.target["format"].as_str()
    }
}

/// Every `dashboards/json/*.json` under `root`, sorted, parsed.
pub fn load_dashboards(root: &Path) -> Result<Vec<(String, serde_json::Value)>, String> {
    let dir = root.join("dashboards/json");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no dashboards (*.json) in {}", dir.display()));
    }
    files
        .into_iter()
        .map(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let json = serde_json::from_str(&text)
                .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
            Ok((name, json))
        })
        .collect()
}

/// Every panel of a dashboard, rows' nested panels (collapsed rows, and the
/// old `rows[].panels` layout) included.
pub fn dashboard_panels(dashboard: &serde_json::Value) -> Vec<&serde_json::Value> {
    fn walk<'a>(panels: &'a serde_json::Value, out: &mut Vec<&'a serde_json::Value>) {
        for panel in panels.as_array().into_iter().flatten() {
            out.push(panel);
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    for row in dashboard["rows"].as_array().into_iter().flatten() {
        walk(&row["panels"], &mut out);
    }
    out
}

/// Every target of every panel of every dashboard under `root`.
pub fn dashboard_targets(root: &Path) -> Result<Vec<DashboardTarget>, String> {
    let mut out = Vec::new();
    for (file, dashboard) in load_dashboards(root)? {
        for panel in dashboard_panels(&dashboard) {
            let panel_uid = panel["datasource"]["uid"].as_str();
            for target in panel["targets"].as_array().into_iter().flatten() {
                out.push(DashboardTarget {
                    file: file.clone(),
                    panel_id: panel["id"].as_i64(),
                    panel_title: panel["title"].as_str().unwrap_or_default().to_owned(),
                    ref_id: target["refId"].as_str().unwrap_or("?").to_owned(),
                    datasource_uid: target["datasource"]["uid"]
                        .as_str()
                        .or(panel_uid)
                        .map(str::to_owned),
                    target: target.clone(),
                });
            }
        }
    }
    Ok(out)
}
