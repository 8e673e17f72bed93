-- Audit queries read a copy of the records' query columns, audit_index,
-- which the store fills in bulk behind the log's tail (store/sqlite/audit.go:
-- at least auditIndexLag records at a time, in the transaction of the
-- append that reaches it) and queries complete with a scan of that short
-- unindexed tail. Five secondary indexes on audit_records made every
-- group commit write seven pages, most of the cost of a small batch; the
-- commit of a signature's record now writes the record and its hashes.
CREATE TABLE audit_index (
	idx       INTEGER PRIMARY KEY,
	time      INTEGER NOT NULL,
	event     TEXT NOT NULL,
	outcome   TEXT NOT NULL,
	citizen   TEXT NOT NULL DEFAULT '',
	portal    TEXT NOT NULL DEFAULT '',
	key_id    TEXT NOT NULL DEFAULT '',
	documents INTEGER NOT NULL DEFAULT 0
);
INSERT INTO audit_index (idx, time, event, outcome, citizen, portal, key_id, documents)
	SELECT idx, time, event, outcome, citizen, portal, key_id, documents FROM audit_records;

DROP INDEX audit_records_citizen;
DROP INDEX audit_records_portal;
DROP INDEX audit_records_key;
DROP INDEX audit_records_event;
DROP INDEX audit_records_time;

CREATE INDEX audit_index_citizen ON audit_index (citizen, idx) WHERE citizen <> '';
CREATE INDEX audit_index_portal ON audit_index (portal, idx) WHERE portal <> '';
CREATE INDEX audit_index_key ON audit_index (key_id, idx) WHERE key_id <> '';
CREATE INDEX audit_index_event ON audit_index (event, idx);
CREATE INDEX audit_index_time ON audit_index (time);

CREATE TRIGGER audit_index_no_update BEFORE UPDATE ON audit_index
BEGIN SELECT RAISE(ABORT, 'the audit index is append-only'); END;
CREATE TRIGGER audit_index_no_delete BEFORE DELETE ON audit_index
BEGIN SELECT RAISE(ABORT, 'the audit index is append-only'); END;
