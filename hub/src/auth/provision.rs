//! Tokens a hub makes for itself at start: the deployment's bootstrap token
//! (`SF_HUB_BOOTSTRAP_TOKEN`) and, on a hub with no token at all, a
//! `default` token written to `<data-dir>/agent-token` for the first agent.

use std::io::Write;
use std::path::{Path, PathBuf};

use sf_protocol::v1::Scope;

use super::token::Secret;
use crate::db::{AddTokenError, Database, DbError};

/// The file the first-start token is written to, inside the data dir.
pub const TOKEN_FILE_NAME: &str = "agent-token";
pub const BOOTSTRAP_NAME: &str = "bootstrap";
pub const DEFAULT_NAME: &str = "default";

/// Why the start-up token (`SF_HUB_BOOTSTRAP_TOKEN`, or the first token
/// the hub makes) could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error(
        "SF_HUB_BOOTSTRAP_TOKEN is not a synced-folder token: it must be sft_ followed by 43 \
         URL-safe base64 characters (256 random bits); generate one with `sf-hub token generate`"
    )]
    MalformedBootstrap,
    #[error("cannot write the first token to {path}: {source}")]
    TokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<AddTokenError> for ProvisionError {
    fn from(err: AddTokenError) -> Self {
        match err {
            AddTokenError::Db(db) => ProvisionError::Db(db),
            // Callers handle the benign cases before converting.
            other => ProvisionError::Db(DbError::Corrupt(other.to_string())),
        }
    }
}

/// Adds the bootstrap token if the hub does not know it. A different value
/// than before replaces the old `bootstrap` token: changing the variable
/// rotates the token.
pub async fn bootstrap(db: &Database, raw: &str) -> Result<(), ProvisionError> {
    let secret = Secret::parse(raw).ok_or(ProvisionError::MalformedBootstrap)?;
    let hash = secret.hash().to_hex();
    if let Some(known) = db.token_by_hash(&hash).await? {
        if known.revoked_ms.is_some() {
            tracing::warn!(
                token = %known.name,
                "SF_HUB_BOOTSTRAP_TOKEN holds a revoked token; it stays revoked: set a new value"
            );
        }
        return Ok(());
    }
    if db.revoke_token(BOOTSTRAP_NAME).await? {
        tracing::info!("SF_HUB_BOOTSTRAP_TOKEN changed: the previous bootstrap token is revoked");
    }
    match db.add_token(BOOTSTRAP_NAME, &hash, Scope::Write).await {
        Ok(_) => tracing::info!("added the bootstrap token from SF_HUB_BOOTSTRAP_TOKEN"),
        // Another hub on the same database got there first.
        Err(AddTokenError::AlreadyKnown | AddTokenError::NameTaken(_)) => {}
        Err(err) => return Err(err.into()),
    }
    Ok(())
}

/// On a hub that has never had a token, makes `default` (write scope) and
/// writes it to `<data_dir>/agent-token` (mode 0600). Returns the file's
/// path when it made one.
pub async fn first_token(
    db: &Database,
    data_dir: &Path,
) -> Result<Option<PathBuf>, ProvisionError> {
    if db.token_count().await? > 0 {
        return Ok(None);
    }
    let secret = Secret::generate();
    let path = data_dir.join(TOKEN_FILE_NAME);
    // The file first: a token in the database that nobody can read would
    // lock the operator out of the first start's convenience.
    write_private(&path, secret.expose()).map_err(|source| ProvisionError::TokenFile {
        path: path.clone(),
        source,
    })?;
    match db
        .add_token(DEFAULT_NAME, &secret.hash().to_hex(), Scope::Write)
        .await
    {
        Ok(_) => Ok(Some(path)),
        // Another hub on the same database made its own `default` meanwhile:
        // the file just written holds a token nobody knows; remove it.
        Err(AddTokenError::NameTaken(_) | AddTokenError::AlreadyKnown) => {
            let _ = std::fs::remove_file(&path);
            Ok(None)
        }
        Err(err) => Err(err.into()),
    }
}

/// Writes `secret` and a newline to `path`, readable by the owner only,
/// durably, replacing any older file atomically.
fn write_private(path: &Path, secret: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let temp = dir.join(format!(".{TOKEN_FILE_NAME}.tmp"));
    let _ = std::fs::remove_file(&temp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temp)?;
    file.write_all(secret.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temp, path)?;
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_file_is_private_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(TOKEN_FILE_NAME);
        write_private(&path, "sft_one").unwrap();
        write_private(&path, "sft_two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "sft_two\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
