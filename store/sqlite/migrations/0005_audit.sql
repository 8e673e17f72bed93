-- The audit log (package audit): records are leaves of an RFC 6962 Merkle
-- tree whose stored hashes (golang.org/x/mod/sumdb/tlog) live in
-- audit_hashes; audit_checkpoints holds signed tree heads.
-- data is the exact leaf that was hashed; the other columns are copies for
-- queries, checked against it on verification.
CREATE TABLE audit_records (
	idx        INTEGER PRIMARY KEY,
	time       INTEGER NOT NULL,
	event      TEXT NOT NULL,
	outcome    TEXT NOT NULL,
	actor_role TEXT NOT NULL,
	actor_id   TEXT NOT NULL,
	citizen    TEXT NOT NULL DEFAULT '',
	portal     TEXT NOT NULL DEFAULT '',
	key_id     TEXT NOT NULL DEFAULT '',
	request_id TEXT NOT NULL DEFAULT '',
	documents  INTEGER NOT NULL DEFAULT 0,
	data       TEXT NOT NULL
);
CREATE INDEX audit_records_citizen ON audit_records (citizen, idx) WHERE citizen <> '';
CREATE INDEX audit_records_portal ON audit_records (portal, idx) WHERE portal <> '';
CREATE INDEX audit_records_key ON audit_records (key_id, idx) WHERE key_id <> '';
CREATE INDEX audit_records_event ON audit_records (event, idx);
CREATE INDEX audit_records_time ON audit_records (time);

CREATE TABLE audit_hashes (
	idx  INTEGER PRIMARY KEY,
	hash BLOB NOT NULL
);

CREATE TABLE audit_checkpoints (
	size       INTEGER PRIMARY KEY,
	note       BLOB NOT NULL,
	timestamp  BLOB,
	created_at INTEGER NOT NULL
);

-- Append-only, in depth: the service never updates or deletes these rows,
-- and the triggers refuse it to anyone else going through SQLite. Someone
-- who drops them is still caught by verification.
CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END;
CREATE TRIGGER audit_hashes_no_update BEFORE UPDATE ON audit_hashes
BEGIN SELECT RAISE(ABORT, 'audit hashes are append-only'); END;
CREATE TRIGGER audit_hashes_no_delete BEFORE DELETE ON audit_hashes
BEGIN SELECT RAISE(ABORT, 'audit hashes are append-only'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;

-- Where each consumer of the log (the signature notifier) has read up to:
-- the index of the next record it will look at.
CREATE TABLE IF NOT EXISTS audit_cursors (
	name       TEXT PRIMARY KEY,
	position   INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
