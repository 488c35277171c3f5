//! `sf-hub token create|list|revoke|generate`: token administration on the
//! same database as the server, safe to run while a hub serves it (the hub
//! picks up changes within `auth::REFRESH_INTERVAL`).

use std::fmt::Write as _;

use sf_protocol::v1::Scope;

use crate::auth::token::Secret;
use crate::config::{Settings, TokenCommand};
use crate::db::{AddTokenError, Database, DbError, TokenRow};

/// Why a token command failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenCliError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Add(#[from] AddTokenError),
    #[error("no live token is named {0:?}; `sf-hub token list` shows them")]
    NoSuchToken(String),
    #[error("a token name is 1 to 64 printable characters; {0:?} is not")]
    BadName(String),
}

/// Runs one token command; what it prints goes to stdout.
pub async fn run(settings: &Settings, command: TokenCommand) -> Result<String, TokenCliError> {
    if let TokenCommand::Generate = command {
        return Ok(format!("{}\n", Secret::generate().expose()));
    }
    let data_dir = settings.data_dir();
    std::fs::create_dir_all(&data_dir).map_err(|e| {
        DbError::Corrupt(format!(
            "cannot create the data directory {}: {e}",
            data_dir.display()
        ))
    })?;
    let db = Database::connect(&settings.database_url(), settings.database_timeout).await?;
    let result = match command {
        TokenCommand::Create { name, read_only } => create(&db, &name, read_only).await,
        TokenCommand::List => Ok(table(&db.list_tokens().await?)),
        TokenCommand::Revoke { name } => {
            if db.revoke_token(&name).await? {
                Ok(format!(
                    "revoked {name:?}; its connections close within a second\n"
                ))
            } else {
                Err(TokenCliError::NoSuchToken(name))
            }
        }
        TokenCommand::Generate => unreachable!("handled above"),
    };
    db.close().await;
    result
}

async fn create(db: &Database, name: &str, read_only: bool) -> Result<String, TokenCliError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err(TokenCliError::BadName(name.to_owned()));
    }
    let scope = if read_only { Scope::Read } else { Scope::Write };
    let secret = Secret::generate();
    db.add_token(name, &secret.hash().to_hex(), scope).await?;
    eprintln!(
        "created token {name:?} ({} scope); it is shown only this once, store it now \
         (e.g. in a file given to sf-agent --token-file)",
        scope.as_str()
    );
    Ok(format!("{}\n", secret.expose()))
}

/// The token list as an aligned table; never the secret (the hub has none).
fn table(rows: &[TokenRow]) -> String {
    if rows.is_empty() {
        return "no tokens\n".to_owned();
    }
    let when = |ms: Option<i64>| ms.map_or_else(|| "-".to_owned(), format_ms);
    let lines: Vec<[String; 5]> = rows
        .iter()
        .map(|row| {
            [
                row.name.clone(),
                row.scope.as_str().to_owned(),
                format_ms(row.created_ms),
                when(row.last_used_ms),
                row.revoked_ms.map_or_else(
                    || "active".to_owned(),
                    |ms| format!("revoked {}", format_ms(ms)),
                ),
            ]
        })
        .collect();
    let header = ["NAME", "SCOPE", "CREATED", "LAST USED", "STATUS"];
    let mut widths = header.map(str::len);
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in std::iter::once(header.map(str::to_owned)).chain(lines) {
        let cells: Vec<String> = line
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

fn format_ms(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|at| {
            at.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]Z"
            ))
            .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_aligns_and_shows_no_hash() {
        let rows = vec![
            TokenRow {
                id: 1,
                name: "laptop".into(),
                hash: "ab".repeat(32),
                scope: Scope::Write,
                created_ms: 0,
                last_used_ms: None,
                revoked_ms: None,
            },
            TokenRow {
                id: 2,
                name: "kiosk-display".into(),
                hash: "cd".repeat(32),
                scope: Scope::Read,
                created_ms: 86_400_000,
                last_used_ms: Some(86_400_000),
                revoked_ms: Some(90_000_000),
            },
        ];
        let text = table(&rows);
        assert!(!text.contains("abab") && !text.contains("cdcd"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("NAME           SCOPE"), "{text}");
        assert!(
            lines[1].starts_with("laptop         write  1970-01-01 00:00:00Z  -"),
            "{text}"
        );
        assert!(lines[2].ends_with("revoked 1970-01-02 01:00:00Z"), "{text}");
    }
}
