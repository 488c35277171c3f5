-- On a case-insensitive file system `Notes.txt` and `notes.txt` are one
-- file: the agent skips hub entries whose name meets another live one's.
-- `fold` is the path's case-folded key (sf_protocol::platform::fold_case),
-- computed by the agent when it stores an entry; rows stored before this
-- migration get theirs when the agent next opens the database.
ALTER TABLE remote ADD COLUMN fold TEXT;
CREATE INDEX remote_by_fold ON remote (fold);
