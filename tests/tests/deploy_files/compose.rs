//! The compose stack as the checks see it: `compose/docker-compose.yml`
//! and its overlays with `.env.example`, interpolated with a user's `.env`;
//! its services' images, environments (`env_file:` then `environment:`),
//! commands and bind mounts.

use super::*;

/// `compose/docker-compose.yml` and its overlays (`docker-compose.*.yml`),
/// with `compose/.env.example`.
pub struct Compose {
    pub dir: PathBuf,
    /// (file name, merged YAML as JSON, before interpolation); the main
    /// file first.
    pub files: Vec<(String, Value)>,
    /// The uncommented `NAME=value` lines of .env.example.
    pub env_example: BTreeMap<String, String>,
    /// Every name .env.example lists, commented-out ones (`# NAME=…`) too.
    pub listed: BTreeSet<String>,
    /// What the files are interpolated with: a user's `.env`, i.e.
    /// .env.example with the secrets it leaves empty filled in (freshly
    /// generated, as a user would).
    pub vars: BTreeMap<String, String>,
}

/// One service of the main compose file, interpolated.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub image: String,
    /// environment: and env_file:, interpolated.
    pub environment: BTreeMap<String, String>,
    /// command: as a list of arguments.
    pub command: Vec<String>,
    /// profiles: (none: the service is part of every `docker compose up`).
    pub profiles: Vec<String>,
    pub raw: Value,
}

impl Compose {
    pub fn load(root: &Path) -> Result<Compose, String> {
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
    pub fn set_var(&mut self, name: &str, value: &str) {
        self.vars.insert(name.to_owned(), value.to_owned());
    }

    pub fn main(&self) -> &Value {
        &self.files[0].1
    }

    /// Every service name in the main file and the overlays.
    pub fn service_names(&self) -> BTreeSet<String> {
        self.files
            .iter()
            .flat_map(|(_, doc)| doc["services"].as_object().into_iter().flatten())
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Every top-level name of `section` (volumes, networks, configs,
    /// secrets) in the main file and the overlays.
    pub fn declared(&self, section: &str) -> BTreeSet<String> {
        self.files
            .iter()
            .flat_map(|(_, doc)| doc[section].as_object().into_iter().flatten())
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// A document interpolated with a user's `.env` ([`Compose::vars`]).
    pub fn interpolated(&self, doc: &Value) -> Result<Value, String> {
        let mut used = BTreeSet::new();
        interpolate_value(doc, &self.vars, &mut used)
    }

    /// The services of the main file, interpolated (those that cannot be are
    /// left out: check_compose reports why).
    pub fn services(&self) -> Vec<Service> {
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
                profiles: string_list(&raw["profiles"]),
                raw: raw.clone(),
            })
            .collect()
    }

    pub fn service(&self, name: &str) -> Option<Service> {
        self.services().into_iter().find(|s| s.name == name)
    }
}

impl Service {
    /// The Dockerfile target it is built from (`hub`, `agent`), if built.
    pub fn build_target(&self) -> Option<&str> {
        self.raw["build"]["target"].as_str()
    }

    /// Whether it is the hub (built from the `hub` target).
    pub fn is_hub(&self) -> bool {
        self.build_target() == Some("hub")
    }

    /// entrypoint: then command:, as the container runs them (an empty
    /// list: the image's).
    pub fn argv(&self) -> Vec<String> {
        let mut argv = string_list(&self.raw["entrypoint"]);
        argv.extend(self.command.clone());
        argv
    }

    /// depends_on: service name → condition (`service_started` for the
    /// short syntax).
    pub fn depends_on(&self) -> BTreeMap<String, String> {
        depends_on(&self.raw)
    }

    /// (host source, container target) of every bind mount, sources made
    /// absolute against `compose_dir`.
    pub fn bind_mounts(&self, compose_dir: &Path) -> Vec<(PathBuf, String)> {
        volume_specs(&self.raw)
            .into_iter()
            .filter(|v| v.bind)
            .map(|v| (normalize(&compose_dir.join(&v.source)), v.target))
            .collect()
    }
}

/// A service's `volumes:` entry, short or long syntax.
#[derive(Debug)]
pub struct VolumeSpec {
    pub source: String,
    pub target: String,
    pub bind: bool,
}

pub fn volume_specs(service: &Value) -> Vec<VolumeSpec> {
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
pub fn service_environment(
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
pub fn env_files(service: &Value) -> Vec<(String, bool)> {
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

/// A service's depends_on: service name → condition (`service_started`
/// for the short syntax).
pub fn depends_on(service: &Value) -> BTreeMap<String, String> {
    match &service["depends_on"] {
        Value::Array(list) => list
            .iter()
            .filter_map(Value::as_str)
            .map(|name| (name.to_owned(), "service_started".to_owned()))
            .collect(),
        Value::Object(map) => map
            .iter()
            .map(|(name, v)| {
                let condition = v["condition"].as_str().unwrap_or("service_started");
                (name.clone(), condition.to_owned())
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// A string or a list of strings as a list (a string split at spaces).
pub fn string_list(value: &Value) -> Vec<String> {
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
pub fn override_flag(args: &mut [String], flag: &str, value: &str) {
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
