//! The compose files checked on their own: they parse, every `${VAR}` is
//! in `.env.example`, what they point at exists, what they name is
//! declared, the binaries' flags and variables they use are in `--help`,
//! and (with `SF_COMPOSE_SCHEMA`) they follow the Compose Specification.

use super::*;

/// The `sf-hub --help` and `sf-agent --help` texts.
pub struct Helps {
    pub hub: String,
    pub agent: String,
}

impl Helps {
    pub fn of_binaries() -> Helps {
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
pub fn check_compose(root: &Path, helps: &Helps) -> Vec<String> {
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
pub fn check_compose_schema(root: &Path, schema: &Value) -> Vec<String> {
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
pub fn compose_schema() -> Option<Value> {
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
