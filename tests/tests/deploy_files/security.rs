//! The compose stack's secrets and published ports: the secrets have no
//! default and compose refuses to start without them; nothing in
//! `compose/` or `dashboards/` is a usable secret; `.env.example`'s commands
//! make well-formed ones; every port is published on loopback by default,
//! and `SF_BIND_ADDRESS` widens only the ports that ask for credentials.

use std::io::Read;

use sf_protocol::v1::TOKEN_PREFIX;

use super::*;

/// The secrets compose must refuse to start without, each with no default.
pub const REQUIRED: [&str; 3] = [
    "SF_HUB_BOOTSTRAP_TOKEN",
    "POSTGRES_PASSWORD",
    "GF_SECURITY_ADMIN_PASSWORD",
];

/// The `.env` variable that publishes the authenticated ports beyond
/// loopback.
pub const BIND_VAR: &str = "SF_BIND_ADDRESS";

/// Characters after the prefix in a token: 256 bits in URL-safe base64.
const TOKEN_CHARS: usize = 43;

// ----------------------------------------------------------------------
// Secrets
// ----------------------------------------------------------------------

/// `env` with every secret the compose files require (`${NAME:?…}`) and
/// `env` leaves empty filled in with a fresh random value: a user's `.env`.
pub fn filled_in(
    files: &[(String, Value)],
    env: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut vars = env.clone();
    let required = files
        .iter()
        .flat_map(|(_, doc)| strings_of(doc))
        .flat_map(|text| expressions(&text))
        .filter(|e| e.op.ends_with('?'))
        .map(|e| e.name);
    let deferred = deferred_secrets(files).into_keys();
    for name in required.chain(REQUIRED.map(str::to_owned)).chain(deferred) {
        if vars.get(&name).is_none_or(String::is_empty) {
            let value = if name.contains("TOKEN") {
                random_token()
            } else {
                random_password()
            };
            vars.insert(name, value);
        }
    }
    vars
}

/// A fresh token, as `sf-hub token generate` makes one.
pub fn random_token() -> String {
    format!("{TOKEN_PREFIX}{}", base64url(&random_bytes::<32>()))
}

fn random_password() -> String {
    base64url(&random_bytes::<24>())
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("read /dev/urandom");
    bytes
}

/// URL-safe base64 without padding.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

fn is_url_safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// `text` is a whole, usable token.
pub fn is_token(text: &str) -> bool {
    text.strip_prefix(TOKEN_PREFIX)
        .is_some_and(|rest| rest.len() == TOKEN_CHARS && rest.chars().all(is_url_safe))
}

/// `text` contains something a hub would take for a token.
fn contains_token(text: &str) -> bool {
    text.match_indices(TOKEN_PREFIX).any(|(i, _)| {
        text[i + TOKEN_PREFIX.len()..]
            .chars()
            .take_while(|c| is_url_safe(*c))
            .count()
            >= TOKEN_CHARS
    })
}

/// A variable whose value is a secret (a path to one, `*_FILE`, is not).
fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    !upper.ends_with("_FILE")
        && ["PASSWORD", "PASSWD", "TOKEN", "SECRET"]
            .iter()
            .any(|word| upper.contains(word))
}

/// One `$NAME` or `${NAME<op><word>}` of a compose string.
#[derive(Debug, PartialEq)]
pub struct Expr {
    pub name: String,
    /// `""`, `-`, `:-`, `?`, `:?`, `+` or `:+`.
    pub op: String,
    pub word: String,
}

/// Every variable expression in `text`, nested ones (in a default) too.
pub fn expressions(text: &str) -> Vec<Expr> {
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        let after = &rest[i + 1..];
        if let Some(after) = after.strip_prefix('$') {
            rest = after;
        } else if let Some(inner) = after.strip_prefix('{') {
            let Some(close) = closing_brace(inner) else {
                break;
            };
            let body = &inner[..close];
            let (name, tail) = body.split_at(body.find(|c| !is_word(c)).unwrap_or(body.len()));
            let op = [":-", ":?", ":+", "-", "?", "+"]
                .into_iter()
                .find(|op| tail.starts_with(op))
                .unwrap_or("");
            let word = &tail[op.len()..];
            out.push(Expr {
                name: name.to_owned(),
                op: op.to_owned(),
                word: word.to_owned(),
            });
            out.extend(expressions(word));
            rest = &inner[close + 1..];
        } else {
            let len = after.find(|c| !is_word(c)).unwrap_or(after.len());
            if len > 0 {
                out.push(Expr {
                    name: after[..len].to_owned(),
                    op: String::new(),
                    word: String::new(),
                });
            }
            rest = &after[len..];
        }
    }
    out
}

/// Every string value of a document (compose interpolates values, not
/// keys).
fn strings_of(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(list) => list.iter().flat_map(strings_of).collect(),
        Value::Object(map) => map.values().flat_map(strings_of).collect(),
        _ => Vec::new(),
    }
}

/// A service's `environment:` before interpolation: (name, value), `None`
/// for a bare name (taken from the shell).
fn raw_environment(service: &Value) -> Vec<(String, Option<String>)> {
    match &service["environment"] {
        Value::Object(map) => map
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                };
                (name.clone(), value)
            })
            .collect(),
        Value::Array(list) => list
            .iter()
            .filter_map(Value::as_str)
            .map(|item| match item.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => (item.to_owned(), None),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// No secret has a default or a literal value in the compose files; every
/// use of a secret variable is `${NAME:?…}`; .env.example sets no secret;
/// no file of `compose/` or `dashboards/` holds a usable token. Values
/// found are never printed.
pub fn check_secrets(root: &Path) -> Vec<String> {
    let compose = match Compose::load(root) {
        Ok(c) => c,
        Err(err) => return vec![err],
    };
    let mut problems = Vec::new();
    for (file, doc) in &compose.files {
        for e in strings_of(doc).iter().flat_map(|t| expressions(t)) {
            if !is_secret_name(&e.name) {
                continue;
            }
            match e.op.as_str() {
                ":?" | "?" => {}
                // `${NAME:-}`, no value: a profile's secret, checked by
                // check_deferred.
                "-" | ":-" if e.word.is_empty() => {}
                "-" | ":-" => problems.push(format!(
                    "{file}: the secret {} has a default (`${{{}{}…}}`): anyone could read it \
                     in the repository; write `${{{}:?set it in compose/.env}}`",
                    e.name, e.name, e.op, e.name
                )),
                _ => problems.push(format!(
                    "{file}: the secret {} is used without `:?` (`${{{}{}…}}`): compose would \
                     start with it empty; write `${{{}:?set it in compose/.env}}`",
                    e.name, e.name, e.op, e.name
                )),
            }
        }
        for (service, raw) in doc["services"].as_object().into_iter().flatten() {
            for (name, value) in raw_environment(raw) {
                if !is_secret_name(&name) {
                    continue;
                }
                let from_env = value.as_deref().is_some_and(|v| {
                    expressions(v)
                        .iter()
                        .any(|e| e.op.ends_with('?') || is_deferred(e))
                });
                if !from_env {
                    problems.push(format!(
                        "{file}, service {service}: {name} is not taken from compose/.env with \
                         `${{NAME:?…}}` (a literal, or a bare name compose fills with nothing)"
                    ));
                }
            }
        }
    }
    let example = compose.dir.join(".env.example");
    let text = fs::read_to_string(&example).unwrap_or_default();
    for line in env_lines(&text) {
        if is_secret_name(&line.name) && !line.value.is_empty() {
            problems.push(format!(
                "compose/.env.example gives the secret {} a value: a .env copied from it would \
                 run with a secret everyone knows; leave it empty and say how to generate one",
                line.name
            ));
        }
    }
    for name in REQUIRED {
        if !compose.listed.contains(name) {
            problems.push(format!("compose/.env.example does not document {name}"));
        }
    }
    for dir in ["compose", "dashboards"] {
        for path in text_files(&root.join(dir)) {
            if fs::read_to_string(&path).is_ok_and(|t| contains_token(&t)) {
                problems.push(format!(
                    "{} holds a usable token ({TOKEN_PREFIX} and {TOKEN_CHARS} characters): \
                     never commit one; revoke it",
                    path.display()
                ));
            }
        }
    }
    problems
}

/// `${NAME:-}` (or `${NAME-}`) of a secret: no value, only "may be unset".
fn is_deferred(e: &Expr) -> bool {
    is_secret_name(&e.name) && (e.op == ":-" || e.op == "-") && e.word.is_empty()
}

/// The secrets only a profile needs: passed as `${NAME:-}`, because compose
/// interpolates every service whichever profiles are active, and a `:?`
/// would stop `docker compose up` without the profile. Name → the services
/// (of any file) that use them.
pub fn deferred_secrets(files: &[(String, Value)]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, doc) in files {
        for (service, raw) in doc["services"].as_object().into_iter().flatten() {
            for e in strings_of(raw).iter().flat_map(|t| expressions(t)) {
                if is_deferred(&e) {
                    out.entry(e.name).or_default().insert(service.clone());
                }
            }
        }
    }
    out
}

/// The service that checks a deferred secret when its profile starts: its
/// command expands `${NAME:?message}` in the shell (`$${NAME:?…}` in the
/// compose file), with the secret in its environment under that name.
pub fn guard_of(compose: &Compose, name: &str) -> Option<Service> {
    compose.services().into_iter().find(|s| {
        s.argv().join("\n").contains(&format!("${{{name}:?")) && s.environment.contains_key(name)
    })
}

/// The message of the first `${NAME:?message}` in `script`.
pub fn guard_message(script: &str, name: &str) -> Option<String> {
    let start = script.find(&format!("${{{name}:?"))? + name.len() + 4;
    let end = start + closing_brace(&script[start..])?;
    Some(script[start..end].to_owned())
}

/// A secret only a profile needs (`${NAME:-}`, see [`deferred_secrets`]):
/// only services of a profile use it; a service of that profile (its
/// guard) refuses to start without it, with a message that says to set it
/// in compose/.env; every other service that uses it waits for the guard to
/// complete successfully; .env.example lists it, empty. With it unset, the
/// stack without the profile still starts.
pub fn check_deferred(root: &Path) -> Vec<String> {
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
    // A `:?` stops every `docker compose up` when the variable is unset,
    // profiles or not: only for what the stack without profiles needs.
    let mut required_by: BTreeMap<String, (bool, BTreeSet<String>)> = BTreeMap::new();
    for (_, doc) in &compose.files {
        for (service, raw) in doc["services"].as_object().into_iter().flatten() {
            let always = string_list(&raw["profiles"]).is_empty();
            for e in strings_of(raw).iter().flat_map(|t| expressions(t)) {
                if e.op.ends_with('?') {
                    let entry = required_by.entry(e.name).or_default();
                    entry.0 |= always;
                    entry.1.insert(service.clone());
                }
            }
        }
    }
    for (name, (always, users)) in required_by {
        if !always {
            problems.push(format!(
                "only {users:?} (services of a profile) use {name}, but `${{{name}:?…}}` makes \
                 every `docker compose up` refuse to start without it: write `${{{name}:-}}` \
                 and check it in the profile's guard service"
            ));
        }
    }
    for (name, users) in deferred_secrets(&compose.files) {
        for user in &users {
            if services.get(user).is_some_and(|s| s.profiles.is_empty()) {
                problems.push(format!(
                    "service {user} runs in every `docker compose up`, yet takes the secret \
                     {name} as `${{{name}:-}}` (may be empty): write `${{{name}:?set {name} in \
                     compose/.env …}}`"
                ));
            }
        }
        if !compose.listed.contains(&name) {
            problems.push(format!("compose/.env.example does not document {name}"));
        }
        let Some(guard) = guard_of(&compose, &name) else {
            problems.push(format!(
                "the secret {name} may be empty (`${{{name}:-}}`) and no service refuses to \
                 start without it: give a one-shot service of its profile the secret and a \
                 command that runs `: \"$${{{name}:?set {name} in compose/.env …}}\"`"
            ));
            continue;
        };
        let script = guard.argv().join("\n");
        let message = guard_message(&script, &name).unwrap_or_default();
        if !(message.contains(&name) && message.contains("compose/.env")) {
            problems.push(format!(
                "service {}: the message for an unset {name} does not say to set {name} in \
                 compose/.env: {message:?}",
                guard.name
            ));
        }
        for user in users.iter().filter(|u| **u != guard.name) {
            if !waits_for(&services, user, &guard.name) {
                problems.push(format!(
                    "service {user} uses {name} but does not wait for {} (depends_on, directly \
                     or through its dependencies, ending in service_completed_successfully): \
                     it could start with {name} empty",
                    guard.name
                ));
            }
        }
    }
    problems
}

/// Whether `service` starts only after `guard` completed successfully:
/// a chain of depends_on from it whose last step, onto `guard`, has the
/// condition service_completed_successfully.
fn waits_for(services: &BTreeMap<String, Service>, service: &str, guard: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut queue = vec![service.to_owned()];
    while let Some(next) = queue.pop() {
        if !seen.insert(next.clone()) {
            continue;
        }
        let Some(s) = services.get(&next) else {
            continue;
        };
        for (target, condition) in s.depends_on() {
            if target == guard {
                if condition == "service_completed_successfully" {
                    return true;
                }
            } else {
                queue.push(target);
            }
        }
    }
    false
}

fn text_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(text_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Compose refuses to start when a [`REQUIRED`] secret is unset or empty,
/// and says to set it in compose/.env; it refuses `.env.example` copied
/// unchanged; it starts once they are set.
pub fn check_required(root: &Path) -> Vec<String> {
    let compose = match Compose::load(root) {
        Ok(c) => c,
        Err(err) => return vec![err],
    };
    let mut problems = Vec::new();
    let interpolate = |vars: &BTreeMap<String, String>| {
        compose.files.iter().try_for_each(|(file, doc)| {
            interpolate_value(doc, vars, &mut BTreeSet::new())
                .map(drop)
                .map_err(|e| format!("{file}: {e}"))
        })
    };
    for name in REQUIRED {
        let mut unset = compose.vars.clone();
        unset.remove(name);
        let mut empty = compose.vars.clone();
        empty.insert(name.to_owned(), String::new());
        for (how, vars) in [("unset", unset), ("empty", empty)] {
            match interpolate(&vars) {
                Ok(()) => problems.push(format!(
                    "compose starts with {name} {how}: write `${{{name}:?set {name} in \
                     compose/.env …}}` where it is used"
                )),
                Err(err) if !(err.contains(name) && err.contains("compose/.env")) => {
                    problems.push(format!(
                        "with {name} {how} compose refuses, but its message does not say to \
                         set {name} in compose/.env: {err}"
                    ));
                }
                Err(_) => {}
            }
        }
    }
    if interpolate(&compose.env_example).is_ok() {
        problems.push(
            "compose starts with compose/.env.example copied unchanged: its secrets would be \
             empty or known to everyone"
                .to_owned(),
        );
    }
    if let Err(err) = interpolate(&compose.vars) {
        problems.push(format!(
            "with every secret set, compose still refuses to start: {err}"
        ));
    }
    problems
}

// ----------------------------------------------------------------------
// Published ports
// ----------------------------------------------------------------------

/// A `ports:` entry: the host address it is published on (`None`: every
/// interface) and the container port.
#[derive(Debug, PartialEq)]
pub struct Published {
    pub host_ip: Option<String>,
    pub container: String,
}

/// A `ports:` entry, short (`[IP:][HOST:]CONTAINER[/proto]`) or long syntax.
pub fn parse_port(entry: &Value) -> Published {
    if let Some(object) = entry.as_object() {
        let text = |key: &str| match &object.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        return Published {
            host_ip: text("host_ip").filter(|ip| !ip.is_empty()),
            container: text("target").unwrap_or_default(),
        };
    }
    let spec = entry
        .as_str()
        .map_or_else(|| entry.to_string(), str::to_owned);
    let spec = spec.split('/').next().unwrap_or_default();
    let (host_ip, ports) = match spec.strip_prefix('[') {
        Some(rest) => match rest.split_once("]:") {
            Some((ip, ports)) => (Some(ip.to_owned()), ports.to_owned()),
            None => (None, spec.to_owned()),
        },
        None => {
            let parts: Vec<&str> = spec.split(':').collect();
            if parts.len() > 2 {
                let ip = parts[..parts.len() - 2].join(":");
                (Some(ip), parts[parts.len() - 2..].join(":"))
            } else {
                (None, spec.to_owned())
            }
        }
    };
    Published {
        host_ip: host_ip.filter(|ip| !ip.is_empty()),
        container: ports.rsplit(':').next().unwrap_or_default().to_owned(),
    }
}

fn is_loopback(ip: &str) -> bool {
    ip == "localhost" || ip == "::1" || ip.starts_with("127.")
}

/// By default every published port is on loopback; with `SF_BIND_ADDRESS`
/// set to 0.0.0.0, the hub's API and Grafana (both ask for credentials)
/// are published there, and every other port (the hub's metrics,
/// Prometheus: no authentication) stays on loopback.
pub fn check_ports(root: &Path) -> Vec<String> {
    let compose = match Compose::load(root) {
        Ok(c) => c,
        Err(err) => return vec![err],
    };
    let mut problems = Vec::new();
    let Some(hub) = compose.service("hub") else {
        return vec!["docker-compose.yml has no `hub` service".to_owned()];
    };
    let (api, _) = hub_addresses(&full_environment(&compose, &hub), &hub.command);
    let api_port = split_host_port(&api).1;
    let grafana_port = compose
        .service("grafana")
        .and_then(|g| g.environment.get("GF_SERVER_HTTP_PORT").cloned())
        .unwrap_or_else(|| "3000".to_owned());
    // The hub's API, Grafana, and load balancers in front of hubs (the hubs
    // ask for the token).
    let mut authenticated = vec![
        ("hub".to_owned(), api_port.clone()),
        ("grafana".to_owned(), grafana_port.clone()),
    ];
    for (lb, path) in balancers(&compose) {
        let text = fs::read_to_string(&path).unwrap_or_default();
        for port in api_ports(&parse_haproxy(&text)) {
            authenticated.push((lb.name.clone(), port));
        }
    }
    let authenticated: Vec<(&str, &str)> = authenticated
        .iter()
        .map(|(s, p)| (s.as_str(), p.as_str()))
        .collect();
    let mut widened_vars = compose.vars.clone();
    widened_vars.insert(BIND_VAR.to_owned(), "0.0.0.0".to_owned());
    for (widened, vars) in [(false, &compose.vars), (true, &widened_vars)] {
        let mut published = BTreeSet::new();
        for (file, doc) in &compose.files {
            // A file that does not interpolate is reported by check_compose.
            let Ok(doc) = interpolate_value(doc, vars, &mut BTreeSet::new()) else {
                continue;
            };
            for (service, raw) in doc["services"].as_object().into_iter().flatten() {
                for entry in raw["ports"].as_array().into_iter().flatten() {
                    let port = parse_port(entry);
                    let on = port.host_ip.as_deref().unwrap_or("every interface");
                    let loopback = port.host_ip.as_deref().is_some_and(is_loopback);
                    let asks_credentials =
                        authenticated.contains(&(service.as_str(), port.container.as_str()));
                    published.insert((service.clone(), port.container.clone()));
                    if !widened && !loopback {
                        problems.push(format!(
                            "{file}, service {service}: port {entry} is published on {on} by \
                             default; publish it on 127.0.0.1 (`\"${{{BIND_VAR}:-127.0.0.1}}:…\"` \
                             if it asks for credentials)"
                        ));
                    } else if widened
                        && asks_credentials
                        && port.host_ip.as_deref() != Some("0.0.0.0")
                    {
                        problems.push(format!(
                            "{file}, service {service}: {BIND_VAR}=0.0.0.0 does not publish port \
                             {entry} on 0.0.0.0: write `\"${{{BIND_VAR}:-127.0.0.1}}:…\"`"
                        ));
                    } else if widened && !asks_credentials && !loopback {
                        problems.push(format!(
                            "{file}, service {service}: port {entry} has no authentication, yet \
                             {BIND_VAR}=0.0.0.0 publishes it on {on}: keep it on 127.0.0.1"
                        ));
                    }
                }
            }
        }
        if !widened {
            for &(service, port) in &authenticated {
                if !published.contains(&(service.to_owned(), port.to_owned())) {
                    problems.push(format!(
                        "the {service} service does not publish its port {port}: nobody outside \
                         the compose network reaches it"
                    ));
                }
            }
        }
    }
    problems
}

// ----------------------------------------------------------------------
// .env.example's generators
// ----------------------------------------------------------------------

/// The commands .env.example shows for generating secrets: commented lines
/// reading /dev/urandom.
pub fn generators(root: &Path) -> Vec<String> {
    let path = root.join("compose/.env.example");
    let text =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter_map(|l| l.trim().strip_prefix('#'))
        .map(str::trim)
        .filter(|l| l.contains("/dev/urandom"))
        .map(str::to_owned)
        .collect()
}

/// Runs a documented command with `sh`, as a user pastes it.
pub fn run_generator(command: &str) -> String {
    let output = Command::new("sh")
        .arg("-c")
        .arg(command)
        .output()
        .unwrap_or_else(|e| panic!("sh -c {command:?}: {e}"));
    assert!(
        output.status.success(),
        "the generator in compose/.env.example fails ({}): {command}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[test]
fn helpers_read_what_compose_reads() {
    assert_eq!(base64url(b"\xfb\xff\xbf"), "-_-_");
    assert_eq!(base64url(b"ab"), "YWI");
    let token = random_token();
    assert!(is_token(&token), "{}", token.len());
    assert!(contains_token(&format!("TOKEN={token}\n")));
    assert!(!contains_token("printf 'sft_%s\\n'"));
    assert!(!is_token(&token[..token.len() - 1]));
    assert!(is_secret_name("GF_SECURITY_ADMIN_PASSWORD") && is_secret_name("SF_TOKEN"));
    assert!(!is_secret_name("SF_TOKEN_FILE") && !is_secret_name("POSTGRES_USER"));
    assert_eq!(
        expressions("a ${X:-${Y:?m}} $Z $$W ${V}"),
        [
            ("X", ":-", "${Y:?m}"),
            ("Y", ":?", "m"),
            ("Z", "", ""),
            ("V", "", "")
        ]
        .map(|(name, op, word)| Expr {
            name: name.into(),
            op: op.into(),
            word: word.into()
        })
    );
    let port = |v: Value| {
        let p = parse_port(&v);
        (p.host_ip, p.container)
    };
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(port(json!("8080")), (None, "8080".into()));
    assert_eq!(port(json!(8080)), (None, "8080".into()));
    assert_eq!(port(json!("3030:3000")), (None, "3000".into()));
    assert_eq!(
        port(json!("127.0.0.1:8000:8000/tcp")),
        (some("127.0.0.1"), "8000".into())
    );
    assert_eq!(port(json!("[::1]:80:8080")), (some("::1"), "8080".into()));
    assert_eq!(port(json!("::1:80:8080")), (some("::1"), "8080".into()));
    assert_eq!(
        port(json!("127.0.0.1::8080")),
        (some("127.0.0.1"), "8080".into())
    );
    assert_eq!(
        port(json!({"target": 80, "published": "8080", "host_ip": "0.0.0.0"})),
        (some("0.0.0.0"), "80".into())
    );
}
