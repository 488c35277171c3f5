-- Access tokens and the hub's identity. Keep in step with ../postgres/0002_tokens.sql.

-- Only a SHA-256 of each token is kept: a leaked database gives no usable
-- secret. A revoked token keeps its row (for `sf-hub token list`); names are
-- unique among the tokens that are not revoked, so a name can be reused.
CREATE TABLE tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL,
    hash         TEXT    NOT NULL UNIQUE,
    scope        TEXT    NOT NULL CHECK (scope IN ('read', 'write')),
    created_ms   INTEGER NOT NULL,
    last_used_ms INTEGER,
    revoked_ms   INTEGER
);
CREATE UNIQUE INDEX tokens_live_name ON tokens (name) WHERE revoked_ms IS NULL;

-- Small facts about this hub, e.g. its random identity (`hub_id`).
CREATE TABLE hub_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
