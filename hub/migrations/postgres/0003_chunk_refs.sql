-- Every chunk a version references, for garbage collection. Keep in step
-- with ../sqlite/0003_chunk_refs.sql.

-- Versions are never deleted, so a chunk once referenced stays referenced:
-- one row per chunk, written in the commit transaction. Stored chunks absent
-- from this table (uploaded but never committed) are removed after a grace
-- period.
CREATE TABLE chunk_refs (
    hash TEXT COLLATE "C" PRIMARY KEY
);

-- The chunks of versions committed before this table existed.
INSERT INTO chunk_refs (hash)
SELECT DISTINCT c->>'hash'
FROM versions v CROSS JOIN LATERAL jsonb_array_elements(v.chunks::jsonb) c
ON CONFLICT DO NOTHING;
