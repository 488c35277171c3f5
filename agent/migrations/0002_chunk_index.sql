-- Which synced file holds which chunk, and where: a download looks up each
-- chunk it needs here to copy it from disk instead of fetching it. Replaces
-- the JSON list in synced.chunks, which could only be searched with LIKE
-- over every row.
CREATE TABLE chunk_index (
    path  TEXT    NOT NULL,
    -- Byte offset of the chunk in the file.
    start INTEGER NOT NULL,
    hash  TEXT    NOT NULL,
    PRIMARY KEY (path, start)
) WITHOUT ROWID;

CREATE INDEX chunk_index_by_hash ON chunk_index (hash);

INSERT INTO chunk_index (path, start, hash)
SELECT s.path,
       COALESCE(SUM(json_extract(c.value, '$.len')) OVER (
           PARTITION BY s.path ORDER BY c.key
           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0),
       json_extract(c.value, '$.hash')
FROM synced s, json_each(s.chunks) c;

-- Rebuilt rather than ALTER TABLE ... DROP COLUMN: SQLite's column drop
-- edits the stored CREATE statement and trips over its comments.
CREATE TABLE synced_without_chunks (
    path       TEXT PRIMARY KEY,
    kind       TEXT    NOT NULL,
    sha256     TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    mtime_ns   INTEGER NOT NULL,
    inode      INTEGER NOT NULL,
    executable INTEGER NOT NULL,
    version    INTEGER NOT NULL
);
INSERT INTO synced_without_chunks
SELECT path, kind, sha256, size, mtime_ns, inode, executable, version FROM synced;
DROP TABLE synced;
ALTER TABLE synced_without_chunks RENAME TO synced;
