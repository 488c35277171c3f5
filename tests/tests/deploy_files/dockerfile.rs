//! The little of a Dockerfile the checks need: its stages (`FROM … AS
//! name`) and each stage's `ENV`, so a compose service built from a target
//! is checked with the environment its image sets.

use super::*;

/// `ENV` of the Dockerfile stage a service is built from.
pub fn image_env(compose_dir: &Path, service: &Value) -> BTreeMap<String, String> {
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
pub struct Stage {
    pub name: Option<String>,
    pub env: BTreeMap<String, String>,
}

pub fn dockerfile_stages(text: &str) -> Vec<Stage> {
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
pub fn shell_words(text: &str) -> Vec<String> {
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
