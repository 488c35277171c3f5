-- The hub's schema on PostgreSQL. Keep in step with ../sqlite/0001_init.sql:
-- the application issues the same SQL to both. Integers are BIGINT and flags
-- are 0/1 BIGINT so both back ends decode alike; paths use the "C" collation
-- so range scans follow byte order, as on SQLite.

CREATE TABLE hub_state (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    head_seq BIGINT NOT NULL
);
INSERT INTO hub_state (id, head_seq) VALUES (1, 0);

CREATE TABLE versions (
    seq          BIGINT PRIMARY KEY,
    path         TEXT COLLATE "C" NOT NULL,
    version      BIGINT NOT NULL,
    kind         TEXT   NOT NULL CHECK (kind IN ('file', 'dir')),
    sha256       TEXT,
    size         BIGINT NOT NULL,
    mtime_ns     BIGINT NOT NULL,
    executable   BIGINT NOT NULL,
    deleted      BIGINT NOT NULL,
    origin       TEXT   NOT NULL,
    committed_ms BIGINT NOT NULL,
    chunks       TEXT   NOT NULL,
    UNIQUE (path, version)
);
CREATE INDEX versions_by_sha256 ON versions (sha256);

CREATE TABLE files (
    path    TEXT COLLATE "C" PRIMARY KEY,
    seq     BIGINT NOT NULL REFERENCES versions (seq),
    version BIGINT NOT NULL,
    kind    TEXT   NOT NULL,
    deleted BIGINT NOT NULL
);

-- The audit log the dashboards read; `timestamp` is a real timestamptz so
-- Grafana's $__timeFilter and $__timeGroupAlias work on it.
CREATE TABLE files_log (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action    TEXT   NOT NULL CHECK (action IN ('upload', 'delete', 'conflict', 'restore')),
    path      TEXT   NOT NULL,
    version   BIGINT NOT NULL,
    sha       TEXT,
    ts_ms     BIGINT NOT NULL,
    timestamp TIMESTAMPTZ GENERATED ALWAYS AS (to_timestamp(ts_ms / 1000.0)) STORED,
    origin    TEXT   NOT NULL,
    size      BIGINT NOT NULL,
    seq       BIGINT NOT NULL
);
CREATE INDEX files_log_by_path ON files_log (path, id);
CREATE INDEX files_log_by_timestamp ON files_log (timestamp);
