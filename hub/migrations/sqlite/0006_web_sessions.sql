-- Sign-ins of the web page. Keep in step with ../postgres/0006_web_sessions.sql.

-- A browser holds a random session secret in an HttpOnly cookie; only its
-- SHA-256 is kept, with the token it was exchanged for (revoking the token
-- ends its sessions) and the secret the page sends back against cross-site
-- request forgery.
CREATE TABLE web_sessions (
    hash       TEXT    PRIMARY KEY,
    token_id   INTEGER NOT NULL REFERENCES tokens (id),
    csrf       TEXT    NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_ms);

-- The web page's "recently deleted" view: tombstones, newest first.
CREATE INDEX files_deleted_by_seq ON files (deleted, seq);
