-- Chunks the hub lost and asks agents for. Keep in step with
-- ../sqlite/0004_wanted_chunks.sql.

-- A chunk a version references whose stored bytes were found damaged (moved
-- to <data-dir>/damaged/) or that the store lacks. The row goes when a good
-- copy is stored again; until then the hub asks every connected agent.
CREATE TABLE wanted_chunks (
    hash       TEXT COLLATE "C" PRIMARY KEY,
    reason     TEXT   NOT NULL CHECK (reason IN ('damaged', 'missing')),
    noticed_ms BIGINT NOT NULL
);
