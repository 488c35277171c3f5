//! Which paths in the folder are never synced.
//!
//! Three sources, in this order of precedence (later wins, as in git):
//! 1. built-in defaults for editor and OS temp files ([`DEFAULT_PATTERNS`]);
//! 2. the `.sfignore` file at the folder root, in gitignore syntax (so a
//!    `!pattern` line there can re-include a default);
//! 3. two fixed rules no pattern can change: the top-level `.sf` directory
//!    (the agent's own state) is always ignored, and the top-level
//!    `.sfignore` itself is never ignored (it syncs like any file).
//!
//! As in git, a path inside an ignored directory is ignored, whatever the
//! patterns say about the path itself.

use std::path::{Path, PathBuf};

use ::ignore::Match;
use ::ignore::gitignore::{Gitignore, GitignoreBuilder};
use sf_protocol::path::RESERVED_TOP_LEVEL;

/// Name of the ignore file at the folder root.
pub const IGNORE_FILE: &str = ".sfignore";

/// Editor and OS temp files that are never worth syncing.
pub const DEFAULT_PATTERNS: &[&str] = &[
    ".DS_Store",
    "Thumbs.db",
    "*.swp",
    "~$*",
    "*.tmp",
    ".~lock.*#",
    // vim creates and removes this to test whether a directory is writable.
    "4913",
];

/// Why the ignore rules could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}, line {line}: bad pattern {pattern:?}: {message}", path.display())]
    Pattern {
        path: PathBuf,
        /// 1-based line number in the file.
        line: usize,
        pattern: String,
        message: String,
    },
    #[error("cannot build the ignore rules from {}: {message}", path.display())]
    Build { path: PathBuf, message: String },
}

/// The compiled ignore rules of one folder.
#[derive(Debug, Clone)]
pub struct IgnoreRules {
    matcher: Gitignore,
}

impl IgnoreRules {
    /// Built-in defaults plus `root/.sfignore` when it exists.
    pub fn load(root: &Path) -> Result<IgnoreRules, IgnoreError> {
        let path = root.join(IGNORE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => Some(text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(IgnoreError::Read { path, source }),
        };
        Self::build(&path, text.as_deref())
    }

    /// Only the built-in defaults (and the fixed rules).
    pub fn defaults() -> IgnoreRules {
        Self::build(Path::new(IGNORE_FILE), None).expect("the built-in ignore patterns are valid")
    }

    fn build(file: &Path, text: Option<&str>) -> Result<IgnoreRules, IgnoreError> {
        // Candidates are always relative to the folder root, so the matcher
        // gets an empty root: a real root would make it strip a matching
        // prefix from relative candidates (root `sync`, candidate `sync/x`).
        let mut builder = GitignoreBuilder::new("");
        for pattern in DEFAULT_PATTERNS {
            builder
                .add_line(None, pattern)
                .map_err(|error| IgnoreError::Build {
                    path: file.to_path_buf(),
                    message: error.to_string(),
                })?;
        }
        if let Some(text) = text {
            let text = text.strip_prefix('\u{feff}').unwrap_or(text);
            for (index, line) in text.lines().enumerate() {
                builder
                    .add_line(Some(file.to_path_buf()), line)
                    .map_err(|error| IgnoreError::Pattern {
                        path: file.to_path_buf(),
                        line: index + 1,
                        pattern: line.to_owned(),
                        message: error.to_string(),
                    })?;
            }
        }
        let matcher = builder.build().map_err(|error| IgnoreError::Build {
            path: file.to_path_buf(),
            message: error.to_string(),
        })?;
        Ok(IgnoreRules { matcher })
    }

    /// Whether `relative` ('/'-separated, relative to the folder root) is
    /// ignored, either itself or because a parent directory is.
    pub fn is_ignored(&self, relative: &str, is_dir: bool) -> bool {
        let relative = relative.trim_matches('/');
        if relative.is_empty() {
            return false;
        }
        if is_reserved(relative) {
            return true;
        }
        let mut end = 0;
        while let Some(offset) = relative[end..].find('/') {
            end += offset;
            if self.is_ignored_entry(&relative[..end], true) {
                return true;
            }
            end += 1;
        }
        self.is_ignored_entry(relative, is_dir)
    }

    /// Whether the entry `relative` is ignored by itself, without looking at
    /// its parents: for walkers that never descend into ignored directories.
    pub fn is_ignored_entry(&self, relative: &str, is_dir: bool) -> bool {
        if relative == IGNORE_FILE {
            return false;
        }
        if is_reserved(relative) {
            return true;
        }
        matches!(
            self.matcher.matched(Path::new(relative), is_dir),
            Match::Ignore(_)
        )
    }
}

/// `.sf` at the top level, or anything under it.
fn is_reserved(relative: &str) -> bool {
    relative
        .strip_prefix(RESERVED_TOP_LEVEL)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_with(sfignore: Option<&str>) -> (tempfile::TempDir, IgnoreRules) {
        let dir = tempfile::tempdir().unwrap();
        if let Some(text) = sfignore {
            std::fs::write(dir.path().join(IGNORE_FILE), text).unwrap();
        }
        let rules = IgnoreRules::load(dir.path()).unwrap();
        (dir, rules)
    }

    #[test]
    fn missing_sfignore_gives_the_defaults() {
        let (_dir, rules) = rules_with(None);
        for ignored in [
            ".DS_Store",
            "sub/.DS_Store",
            "Thumbs.db",
            "a/b/.notes.txt.swp",
            "~$report.docx",
            "docs/~$report.docx",
            "download.tmp",
            ".~lock.budget.ods#",
            "deep/.~lock.x#",
            "4913",
            "src/4913",
        ] {
            assert!(
                rules.is_ignored(ignored, false),
                "{ignored} should be ignored"
            );
        }
        for kept in [
            "notes.txt",
            "a/b/c.md",
            "tmp",
            "x.tmpl",
            "49130",
            ".lock.x#",
            ".sfignore",
            "a/.sf",
            "a/.sf/x",
        ] {
            assert!(
                !rules.is_ignored(kept, false),
                "{kept} should not be ignored"
            );
        }
    }

    #[test]
    fn sf_directory_is_always_ignored() {
        let (_dir, rules) = rules_with(Some("!.sf\n!.sf/**\n"));
        assert!(rules.is_ignored(".sf", true));
        assert!(rules.is_ignored(".sf/state.db", false));
        assert!(rules.is_ignored(".sf/tmp/part", false));
        assert!(!rules.is_ignored(".sfx", false));
        assert!(!rules.is_ignored("sub/.sf", true));
    }

    #[test]
    fn sfignore_patterns_apply_to_files_and_everything_in_ignored_dirs() {
        let (_dir, rules) = rules_with(Some(
            "# build output\n\nbuild/\n*.log\n/top-only.txt\nnode_modules\n",
        ));
        assert!(rules.is_ignored("build", true));
        assert!(rules.is_ignored("build/out/app.bin", false));
        assert!(rules.is_ignored("sub/build/x", false));
        // `build/` matches directories only.
        assert!(!rules.is_ignored("build", false));
        assert!(rules.is_ignored("a/debug.log", false));
        assert!(rules.is_ignored("top-only.txt", false));
        assert!(!rules.is_ignored("sub/top-only.txt", false));
        assert!(rules.is_ignored("web/node_modules/pkg/index.js", false));
        assert!(!rules.is_ignored("src/main.rs", false));
        assert!(!rules.is_ignored("# build output", false));
    }

    #[test]
    fn entry_check_ignores_parents() {
        let (_dir, rules) = rules_with(Some("build/\n"));
        assert!(rules.is_ignored_entry("build", true));
        assert!(!rules.is_ignored_entry("build/app.bin", false));
        assert!(rules.is_ignored("build/app.bin", false));
    }

    #[test]
    fn a_negation_re_includes_a_default_but_not_inside_an_ignored_dir() {
        let (_dir, rules) = rules_with(Some("!keep.tmp\ncache/\n!cache/wanted\n"));
        assert!(!rules.is_ignored("keep.tmp", false));
        assert!(rules.is_ignored("other.tmp", false));
        assert!(rules.is_ignored("cache/wanted", false));
    }

    #[test]
    fn sfignore_itself_is_never_ignored() {
        let (_dir, rules) = rules_with(Some(".*\n.sfignore\n"));
        assert!(!rules.is_ignored(".sfignore", false));
        assert!(rules.is_ignored(".hidden", false));
        // Only the top-level one is special.
        assert!(rules.is_ignored("sub/.sfignore", false));
    }

    #[test]
    fn a_bad_pattern_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(IGNORE_FILE), "ok.txt\n# fine\nbad{one\n").unwrap();
        let error = IgnoreRules::load(dir.path()).unwrap_err();
        match &error {
            IgnoreError::Pattern { line, pattern, .. } => {
                assert_eq!(*line, 3);
                assert_eq!(pattern, "bad{one");
            }
            other => panic!("unexpected error {other:?}"),
        }
        let message = error.to_string();
        assert!(message.contains("line 3"), "{message}");
        assert!(message.contains("bad{one"), "{message}");
        assert!(message.contains(".sfignore"), "{message}");
    }

    #[test]
    fn an_unreadable_sfignore_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be cannot be read as text.
        std::fs::create_dir(dir.path().join(IGNORE_FILE)).unwrap();
        let error = IgnoreRules::load(dir.path()).unwrap_err();
        assert!(matches!(error, IgnoreError::Read { .. }), "{error:?}");
    }

    #[test]
    fn defaults_without_a_folder() {
        let rules = IgnoreRules::defaults();
        assert!(rules.is_ignored("x/y.swp", false));
        assert!(!rules.is_ignored("x/y.txt", false));
        assert!(rules.is_ignored(".sf", true));
    }
}
