-- The agent's state for one synced folder, in <dir>/.sf/state.db.

-- What the folder and the hub last agreed on, per path.
CREATE TABLE synced (
    path       TEXT PRIMARY KEY,
    kind       TEXT    NOT NULL,
    sha256     TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    mtime_ns   INTEGER NOT NULL,
    inode      INTEGER NOT NULL,
    executable INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    -- JSON [{hash, len}]: lets a download reuse chunks already on disk.
    chunks     TEXT    NOT NULL
);

-- The hub's current entry per path, as last read from the change feed.
CREATE TABLE remote (
    path  TEXT PRIMARY KEY,
    seq   INTEGER NOT NULL,
    entry TEXT    NOT NULL
);

-- Small facts: the last applied seq, the hub URL.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- What `sf-agent status` reports: conflicts made, and paths that failed.
CREATE TABLE problems (
    path   TEXT PRIMARY KEY,
    kind   TEXT    NOT NULL CHECK (kind IN ('conflict', 'error')),
    detail TEXT    NOT NULL,
    at_ms  INTEGER NOT NULL
);
