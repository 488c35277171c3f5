-- A full scan walks the folder one directory at a time and reads only the
-- records directly inside the directory it is at, so that its memory does
-- not grow with the number of files. These indexes find those records: the
-- key is the parent folder of the path, up to and including its last '/'
-- ('' at the top level): rtrim strips every character but '/' from the
-- right. Queries must spell the expression exactly like this for SQLite to
-- use the index.
CREATE INDEX synced_by_parent ON synced (rtrim(path, replace(path, '/', '')), path);
CREATE INDEX remote_by_parent ON remote (rtrim(path, replace(path, '/', '')), path);
