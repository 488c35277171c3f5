-- The hub's schema on SQLite. Keep in step with ../postgres/0001_init.sql:
-- the application issues the same SQL to both.

-- One row: the last seq handed out. Bumping it is the first write of every
-- commit transaction, which serialises commits and keeps seq free of gaps.
CREATE TABLE hub_state (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    head_seq INTEGER NOT NULL
);
INSERT INTO hub_state (id, head_seq) VALUES (1, 0);

-- Every version of every path, tombstones included: the history and the
-- change feed (ordered by seq).
CREATE TABLE versions (
    seq          INTEGER PRIMARY KEY,
    path         TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('file', 'dir')),
    sha256       TEXT,
    size         INTEGER NOT NULL,
    mtime_ns     INTEGER NOT NULL,
    executable   INTEGER NOT NULL,
    deleted      INTEGER NOT NULL,
    origin       TEXT    NOT NULL,
    committed_ms INTEGER NOT NULL,
    -- JSON array of {"hash", "len"}: the chunks that concatenate to the content.
    chunks       TEXT    NOT NULL,
    UNIQUE (path, version)
);
CREATE INDEX versions_by_sha256 ON versions (sha256);

-- The current version of each path (a pointer into versions).
CREATE TABLE files (
    path    TEXT PRIMARY KEY,
    seq     INTEGER NOT NULL REFERENCES versions (seq),
    version INTEGER NOT NULL,
    kind    TEXT    NOT NULL,
    deleted INTEGER NOT NULL
);

-- The audit log the dashboards read. `timestamp` is derived from ts_ms.
CREATE TABLE files_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    action    TEXT    NOT NULL CHECK (action IN ('upload', 'delete', 'conflict', 'restore')),
    path      TEXT    NOT NULL,
    version   INTEGER NOT NULL,
    sha       TEXT,
    ts_ms     INTEGER NOT NULL,
    timestamp TEXT GENERATED ALWAYS AS (strftime('%Y-%m-%dT%H:%M:%fZ', ts_ms / 1000.0, 'unixepoch')) STORED,
    origin    TEXT    NOT NULL,
    size      INTEGER NOT NULL,
    seq       INTEGER NOT NULL
);
CREATE INDEX files_log_by_path ON files_log (path, id);
