-- FIRe applications (a portal under its FIRe appid, with the digests of
-- its client certificates, JSON array) and the FIRe side of transactions
-- (verbatim redirect URLs, a batch's docids as a JSON array in document
-- order, results handed out). Times are Unix nanoseconds.
CREATE TABLE IF NOT EXISTS fire_apps (
	app_id       TEXT PRIMARY KEY,
	portal_id    TEXT NOT NULL UNIQUE,
	cert_digests TEXT NOT NULL,
	created_at   BIGINT NOT NULL,
	updated_at   BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS fire_transactions (
	id           TEXT PRIMARY KEY,
	app_id       TEXT NOT NULL,
	subject      TEXT NOT NULL,
	batch        BOOLEAN NOT NULL,
	ok_url       TEXT NOT NULL,
	error_url    TEXT NOT NULL,
	upgrade      TEXT NOT NULL,
	format       TEXT NOT NULL,
	algorithm    TEXT NOT NULL,
	doc_ids      TEXT NOT NULL,
	recovered    TEXT NOT NULL,
	result_taken BOOLEAN NOT NULL,
	created_at   BIGINT NOT NULL,
	expires_at   BIGINT NOT NULL,
	version      BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS fire_transactions_expires ON fire_transactions (expires_at);
