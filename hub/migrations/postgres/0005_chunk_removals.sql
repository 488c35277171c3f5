-- Garbage collection's removals, counted where every hub sharing this
-- database sees them. Keep in step with ../sqlite/0005_chunk_removals.sql.

-- Bumped (in the transaction that holds the write lock) before chunks are
-- removed from the store. A commit that found its chunks present before the
-- count moved looks again once it holds the write lock, so a chunk another
-- hub removed meanwhile is never referenced.
ALTER TABLE hub_state ADD COLUMN chunk_removals BIGINT NOT NULL DEFAULT 0;
