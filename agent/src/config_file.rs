//! The agent's config file, `agent.toml`: the same settings as its flags,
//! so a service (`sf-agent install-service`) or a user runs `sf-agent`
//! with no flags at all.
//!
//! Where: `--config FILE` (or `SF_AGENT_CONFIG`), else
//! `$XDG_CONFIG_HOME/synced-folder/agent.toml`, else
//! `~/.config/synced-folder/agent.toml`. A missing default file is no
//! error (every setting then has its flag's default); a file named with
//! `--config` must exist.
//!
//! Keys are the flags' long names in snake_case (`token_file` for
//! `--token-file`); any other key is an error that names it and the file,
//! so a typo never goes unnoticed. The token itself is never a key (a
//! config file is easily shared or backed up): `token_file` names a file
//! holding it. Relative paths are taken from the config file's own folder,
//! and `~/` from `$HOME`.
//!
//! Precedence (applied by [`crate::config`]): a flag, then its environment
//! variable, then this file, then the flag's default.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Every key the file may hold, as written in it.
pub const KEYS: &[&str] = &[
    "hub",
    "dir",
    "name",
    "token_file",
    "ca_cert",
    "scan_interval",
    "poll",
    "debounce_ms",
    "state_home",
    "notify",
];

/// Why the config file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read the config file {path}: {source}; check --config (or SF_AGENT_CONFIG)")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error(
        "unknown key `{key}` in the config file {path}{hint}; the keys are: {}",
        KEYS.join(", ")
    )]
    UnknownKey {
        key: String,
        path: PathBuf,
        hint: String,
    },
    #[error(
        "the config file {path} holds the token itself (key `{key}`): put the token in a file \
         readable only by you and name that file with `token_file = \"…\"` instead"
    )]
    TokenInFile { key: String, path: PathBuf },
    #[error("the config file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// `hub = "URL"`, `hub = "URL,URL"` or `hub = ["URL", "URL"]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
enum Hubs {
    One(String),
    Many(Vec<String>),
}

/// The file as written, before paths and URLs are checked.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    hub: Option<Hubs>,
    dir: Option<PathBuf>,
    name: Option<String>,
    token_file: Option<PathBuf>,
    ca_cert: Option<PathBuf>,
    scan_interval: Option<u64>,
    poll: Option<bool>,
    debounce_ms: Option<u64>,
    state_home: Option<PathBuf>,
    notify: Option<bool>,
}

/// The settings a config file gives; `None` where it says nothing. Paths
/// are absolute (or as the user wrote them when no folder is known) and
/// hub URLs checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileConfig {
    /// The file these came from; `None` when there was none.
    pub path: Option<PathBuf>,
    pub hub: Option<Vec<String>>,
    pub dir: Option<PathBuf>,
    pub name: Option<String>,
    pub token_file: Option<PathBuf>,
    pub ca_cert: Option<PathBuf>,
    pub scan_interval: Option<u64>,
    pub poll: Option<bool>,
    pub debounce_ms: Option<u64>,
    pub state_home: Option<PathBuf>,
    pub notify: Option<bool>,
}

/// `$XDG_CONFIG_HOME/synced-folder/agent.toml`, else
/// `$HOME/.config/synced-folder/agent.toml`; `None` without either.
pub fn default_path() -> Option<PathBuf> {
    config_home().map(|dir| dir.join("synced-folder").join("agent.toml"))
}

/// `$XDG_CONFIG_HOME`, else `$HOME/.config`.
pub fn config_home() -> Option<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(xdg));
    }
    home().map(|home| home.join(".config"))
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

impl FileConfig {
    /// Reads the file at `explicit` (which must exist), or else the default
    /// file if there is one.
    pub fn load(explicit: Option<&Path>) -> Result<FileConfig, ConfigFileError> {
        let (path, required) = match explicit {
            Some(path) => (path.to_owned(), true),
            None => match default_path() {
                Some(path) => (path, false),
                None => return Ok(FileConfig::default()),
            },
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => FileConfig::parse(&text, &path),
            Err(err) if !required && err.kind() == std::io::ErrorKind::NotFound => {
                Ok(FileConfig::default())
            }
            Err(source) => Err(ConfigFileError::Unreadable { path, source }),
        }
    }

    /// Reads `text`, the contents of the file at `path`.
    pub fn parse(text: &str, path: &Path) -> Result<FileConfig, ConfigFileError> {
        let syntax = |err: toml::de::Error| ConfigFileError::Syntax {
            path: path.to_owned(),
            message: err.to_string().trim_end().to_owned(),
        };
        let table: toml::Table = toml::from_str(text).map_err(syntax)?;
        for key in table.keys() {
            check_key(key, path)?;
        }
        let raw: Raw = toml::from_str(text).map_err(|err| ConfigFileError::Invalid {
            path: path.to_owned(),
            message: err.to_string().trim_end().to_owned(),
        })?;
        let invalid = |message: String| ConfigFileError::Invalid {
            path: path.to_owned(),
            message,
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let base = std::path::absolute(base).unwrap_or_else(|_| base.to_owned());
        let hub = match raw.hub {
            None => None,
            Some(hubs) => {
                let listed = match hubs {
                    Hubs::One(one) => vec![one],
                    Hubs::Many(many) => many,
                };
                let mut urls = Vec::new();
                for url in listed.iter().flat_map(|l| l.split(',')) {
                    let url = crate::hub_client::normalize_hub_url(url)
                        .map_err(|err| invalid(format!("key `hub`: {err}")))?;
                    urls.push(url);
                }
                if urls.is_empty() {
                    return Err(invalid("key `hub` lists no hub".into()));
                }
                Some(urls)
            }
        };
        let name = match raw.name.map(|n| n.trim().to_owned()) {
            Some(name) if name.is_empty() => {
                return Err(invalid(
                    "key `name` is empty; remove it to use the host name".into(),
                ));
            }
            name => name,
        };
        let place = |p: Option<PathBuf>| p.map(|p| resolve(&p, &base));
        Ok(FileConfig {
            path: Some(path.to_owned()),
            hub,
            dir: place(raw.dir),
            name,
            token_file: place(raw.token_file),
            ca_cert: place(raw.ca_cert),
            scan_interval: raw.scan_interval,
            poll: raw.poll,
            debounce_ms: raw.debounce_ms,
            state_home: place(raw.state_home),
            notify: raw.notify,
        })
    }
}

/// An error for a key that is not one of [`KEYS`]: the token, a key in
/// kebab-case, or a typo.
fn check_key(key: &str, path: &Path) -> Result<(), ConfigFileError> {
    if KEYS.contains(&key) {
        return Ok(());
    }
    if matches!(key, "token" | "sf_token" | "SF_TOKEN") {
        return Err(ConfigFileError::TokenInFile {
            key: key.to_owned(),
            path: path.to_owned(),
        });
    }
    let snake = key.replace('-', "_").to_lowercase();
    let hint = if KEYS.contains(&snake.as_str()) {
        format!(" (keys are snake_case: did you mean `{snake}`?)")
    } else {
        String::new()
    };
    Err(ConfigFileError::UnknownKey {
        key: key.to_owned(),
        path: path.to_owned(),
        hint,
    })
}

/// `~/x` from `$HOME`; a relative path from `base` (the config file's folder).
fn resolve(path: &Path, base: &Path) -> PathBuf {
    if let Ok(rest) = path.strip_prefix("~")
        && let Some(home) = home()
    {
        return home.join(rest);
    }
    if path.is_absolute() {
        path.to_owned()
    } else {
        base.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<FileConfig, ConfigFileError> {
        FileConfig::parse(text, Path::new("/etc/sf/agent.toml"))
    }

    #[test]
    fn every_key_is_read_and_paths_are_taken_from_the_file_s_folder() {
        let config = parse(
            r#"
            hub = ["http://a:1", "https://b/"]
            dir = "Synced"
            name = " laptop "
            token_file = "/secret/token"
            ca_cert = "ca.pem"
            scan_interval = 30
            poll = true
            debounce_ms = 500
            state_home = "state"
            notify = false
            "#,
        )
        .unwrap();
        assert_eq!(
            config,
            FileConfig {
                path: Some("/etc/sf/agent.toml".into()),
                hub: Some(vec!["http://a:1".into(), "https://b".into()]),
                dir: Some("/etc/sf/Synced".into()),
                name: Some("laptop".into()),
                token_file: Some("/secret/token".into()),
                ca_cert: Some("/etc/sf/ca.pem".into()),
                scan_interval: Some(30),
                poll: Some(true),
                debounce_ms: Some(500),
                state_home: Some("/etc/sf/state".into()),
                notify: Some(false),
            }
        );
        let one = parse("hub = \"http://a:1, http://b:2\"").unwrap();
        assert_eq!(one.hub.unwrap(), ["http://a:1", "http://b:2"]);
        assert_eq!(parse("").unwrap().path, Some("/etc/sf/agent.toml".into()));
    }

    #[test]
    fn unknown_keys_are_named_with_the_file() {
        let err = parse("dir = \"/x\"\nscan_intervall = 3\n").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("`scan_intervall`"), "{message}");
        assert!(message.contains("/etc/sf/agent.toml"), "{message}");
        assert!(message.contains("token_file"), "lists the keys: {message}");

        let message = parse("token-file = \"/t\"").unwrap_err().to_string();
        assert!(message.contains("did you mean `token_file`"), "{message}");

        // A table is a key too.
        let message = parse("[agent]\ndir = \"/x\"").unwrap_err().to_string();
        assert!(message.contains("`agent`"), "{message}");
    }

    #[test]
    fn the_token_itself_is_refused() {
        let err = parse("token = \"sft_secret\"").unwrap_err();
        assert!(matches!(err, ConfigFileError::TokenInFile { .. }), "{err}");
        let message = err.to_string();
        assert!(message.contains("token_file"), "{message}");
        assert!(!message.contains("sft_secret"), "{message}");
    }

    #[test]
    fn wrong_values_say_what_is_wrong_and_where() {
        for (text, says) in [
            ("scan_interval = \"fast\"", "scan_interval"),
            ("hub = \"hub.lan:8080\"", "does not start with http://"),
            ("hub = []", "lists no hub"),
            ("name = \"  \"", "`name` is empty"),
            ("poll = 1", "poll"),
            ("dir = ", "not valid TOML"),
        ] {
            let message = parse(text).unwrap_err().to_string();
            assert!(message.contains(says), "{text}: {message}");
            assert!(message.contains("/etc/sf/agent.toml"), "{text}: {message}");
        }
    }

    #[test]
    fn a_missing_file_is_an_error_only_when_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("agent.toml");
        let err = FileConfig::load(Some(&missing)).unwrap_err();
        assert!(matches!(err, ConfigFileError::Unreadable { .. }), "{err}");
        assert!(err.to_string().contains("agent.toml"), "{err}");
        std::fs::write(&missing, "poll = true\n").unwrap();
        assert_eq!(FileConfig::load(Some(&missing)).unwrap().poll, Some(true));
    }
}
