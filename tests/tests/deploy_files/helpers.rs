//! Small helpers of the checks: YAML as JSON, paths, env-file lines,
//! whole-word search, and the broken copies `checks_catch_broken_copies`
//! edits.

use super::*;

/// A YAML file as JSON, anchors and merge keys (`<<`) resolved.
pub fn load_yaml(path: &Path) -> Result<Value, String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text)
        .map_err(|e| format!("{} is not valid YAML: {e}", path.display()))?;
    yaml.apply_merge()
        .map_err(|e| format!("{}: merge keys: {e}", path.display()))?;
    serde_json::to_value(&yaml)
        .map_err(|e| format!("{}: not representable as JSON: {e}", path.display()))
}

pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `.` and `..` resolved without touching the file system.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

pub fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

/// A `NAME=value` line of an env file such as .env.example.
pub struct EnvLine {
    pub name: String,
    pub value: String,
    /// `# NAME=value`: documented, not set.
    pub commented: bool,
}

pub fn env_lines(text: &str) -> Vec<EnvLine> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let (commented, line) = match line.strip_prefix('#') {
            Some(rest) => (true, rest.trim()),
            None => (false, line),
        };
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let name = name.trim();
        if is_var_name(name) {
            out.push(EnvLine {
                name: name.to_owned(),
                value: unquote(value.trim()).to_owned(),
                commented,
            });
        }
    }
    out
}

/// Whether `word` occurs in `text` with no letter, digit or `_` right
/// before or after it.
pub fn mentions_word(text: &str, word: &str) -> bool {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(is_word)
            && !text[i + word.len()..].chars().next().is_some_and(is_word)
    })
}

pub type Edit = Box<dyn Fn(&Path) -> Result<(), String>>;

pub fn edit(f: impl Fn(&Path) -> Result<(), String> + 'static) -> Edit {
    Box::new(f)
}

/// A copy of the repository's `dashboards/` and `compose/` (what the checks
/// read) in a temp dir.
pub fn copy_of(root: &Path) -> tempfile::TempDir {
    fn copy_dir(from: &Path, to: &Path) {
        fs::create_dir_all(to).expect("create a folder of the copy");
        for entry in fs::read_dir(from).expect("list a folder to copy").flatten() {
            let path = entry.path();
            let dest = to.join(entry.file_name());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                copy_dir(&path, &dest);
            } else {
                fs::copy(&path, &dest).expect("copy a file");
            }
        }
    }
    let copy = tempfile::Builder::new()
        .prefix("sf-e2e-deploy-copy-")
        .tempdir()
        .expect("a temp dir");
    for dir in ["dashboards", "compose"] {
        copy_dir(&root.join(dir), &copy.path().join(dir));
    }
    copy
}

pub fn edit_json(path: &Path, edit: impl Fn(&mut Value)) -> Result<(), String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut doc: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    edit(&mut doc);
    fs::write(path, serde_json::to_string_pretty(&doc).unwrap()).map_err(|e| e.to_string())
}

pub fn replace_in(path: &Path, from: &str, to: &str) -> Result<(), String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !text.contains(from) {
        return Err(format!("{} does not contain {from:?}", path.display()));
    }
    fs::write(path, text.replacen(from, to, 1)).map_err(|e| e.to_string())
}
