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
            for (target, condition) in depends_on(service) {
                if !services.contains(&target) {
                    problems.push(format!("{at}: depends_on {target:?}, which is no service"));
                    continue;
                }
                problems.extend(check_dependency(&compose, file, name, &target, &condition));
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
            // The hub's and the agent's variables and flags, in every
            // service built from their targets (the scale profile's hubs
            // too).
            let target = service["build"]["target"].as_str().or(match name.as_str() {
                "hub" | "agent" => Some(name.as_str()),
                _ => None,
            });
            let help = match target {
                Some("hub") => Some(("sf-hub", &helps.hub)),
                Some("agent") => Some(("sf-agent", &helps.agent)),
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

/// One `depends_on` entry of `service` (in `file`) on `target`, a service:
/// what its condition needs of the target, and that a service of every
/// `docker compose up` does not wait for one that only starts with a
/// profile.
fn check_dependency(
    compose: &Compose,
    file: &str,
    service: &str,
    target: &str,
    condition: &str,
) -> Vec<String> {
    let mut problems = Vec::new();
    let at = format!("{file}, service {service}");
    // The main file's full definition (an overlay's may be partial).
    let raw = |name: &str| {
        compose
            .files
            .iter()
            .map(|(_, doc)| &doc["services"][name])
            .find(|s| !s.is_null())
            .cloned()
            .unwrap_or(Value::Null)
    };
    let (this, that) = (raw(service), raw(target));
    match condition {
        "service_healthy" => {
            let check = &that["healthcheck"];
            if check.is_null() || check["disable"].as_bool() == Some(true) {
                problems.push(format!(
                    "{at}: depends_on {target} with service_healthy, but {target} has no \
                     healthcheck: compose would never start {service}"
                ));
            }
        }
        "service_completed_successfully" => {
            let restart = that["restart"].as_str().unwrap_or("no");
            if restart != "no" && restart != "on-failure" {
                problems.push(format!(
                    "{at}: depends_on {target} with service_completed_successfully, but \
                     {target} is restarted ({restart}): a one-shot service must have \
                     `restart: \"no\"`"
                ));
            }
        }
        "service_started" => {}
        other => problems.push(format!(
            "{at}: depends_on {target}: unknown condition {other}"
        )),
    }
    let this_profiles = string_list(&this["profiles"]);
    let that_profiles = string_list(&that["profiles"]);
    if !that_profiles.is_empty() && !that_profiles.iter().any(|p| this_profiles.contains(p)) {
        let when = if this_profiles.is_empty() {
            "in every `docker compose up`".to_owned()
        } else {
            format!("with profile {}", this_profiles.join("/"))
        };
        problems.push(format!(
            "{at} runs {when} but depends_on {target}, which only starts with profile {}: \
             compose would refuse to start",
            that_profiles.join("/")
        ));
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
