-- Every chunk a version references, for garbage collection. Keep in step
-- with ../postgres/0003_chunk_refs.sql.

-- Versions are never deleted, so a chunk once referenced stays referenced:
-- one row per chunk, written in the commit transaction. Stored chunks absent
-- from this table (uploaded but never committed) are removed after a grace
-- period.
CREATE TABLE chunk_refs (
    hash TEXT PRIMARY KEY
) WITHOUT ROWID;

-- The chunks of versions committed before this table existed.
INSERT INTO chunk_refs (hash)
SELECT DISTINCT json_extract(c.value, '$.hash')
FROM versions v, json_each(v.chunks) c
WHERE true
ON CONFLICT DO NOTHING;
