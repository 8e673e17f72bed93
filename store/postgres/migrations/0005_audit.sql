-- The audit log (package audit): records are leaves of an RFC 6962 Merkle
-- tree whose stored hashes (golang.org/x/mod/sumdb/tlog) live in
-- audit_hashes; audit_checkpoints holds signed tree heads.
-- data is the exact leaf that was hashed; the other columns are copies for
-- queries, checked against it on verification.
CREATE TABLE audit_records (
	idx        BIGINT PRIMARY KEY,
	time       BIGINT NOT NULL,
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
	idx  BIGINT PRIMARY KEY,
	hash BYTEA NOT NULL
);

CREATE TABLE audit_checkpoints (
	size       BIGINT PRIMARY KEY,
	note       BYTEA NOT NULL,
	timestamp  BYTEA,
	created_at BIGINT NOT NULL
);

-- Append-only, in depth: the service never updates or deletes these rows,
-- and the triggers refuse it (TRUNCATE included) to any other client of
-- the database short of the table owner dropping them. Someone who does is
-- still caught by verification.
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION '% are append-only', replace(TG_TABLE_NAME, '_', ' ')
		USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
	FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_hashes_append_only BEFORE UPDATE OR DELETE ON audit_hashes
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_hashes_no_truncate BEFORE TRUNCATE ON audit_hashes
	FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
	FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- Where each consumer of the log (the signature notifier) has read up to:
-- the index of the next record it will look at.
CREATE TABLE audit_cursors (
	name       TEXT PRIMARY KEY,
	position   BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);
