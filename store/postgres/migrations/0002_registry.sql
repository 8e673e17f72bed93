CREATE TABLE citizens (
	id         TEXT PRIMARY KEY,
	given_name TEXT NOT NULL,
	surnames   TEXT NOT NULL,
	mobile     TEXT NOT NULL,
	email      TEXT NOT NULL,
	level      TEXT NOT NULL,
	method     TEXT NOT NULL,
	status     TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	level_at   BIGINT NOT NULL
);
CREATE INDEX citizens_level ON citizens (level, id);
CREATE INDEX citizens_status ON citizens (status, id);

CREATE TABLE credentials (
	citizen_id TEXT PRIMARY KEY REFERENCES citizens (id),
	hash       TEXT NOT NULL,
	failures   INTEGER NOT NULL DEFAULT 0,
	locked_at  BIGINT,
	set_at     BIGINT NOT NULL
);

CREATE TABLE registration_codes (
	id         TEXT PRIMARY KEY,
	kind       TEXT NOT NULL,
	citizen_id TEXT NOT NULL,
	hash       BYTEA NOT NULL,
	data       TEXT NOT NULL DEFAULT '',
	attempts   INTEGER NOT NULL DEFAULT 0,
	created_at BIGINT NOT NULL,
	expires_at BIGINT NOT NULL,
	used_at    BIGINT
);
CREATE INDEX registration_codes_citizen ON registration_codes (citizen_id, kind, created_at);
-- DeleteCodes sweeps by expiry; SQLite scans, PostgreSQL with millions of
-- citizens should not.
CREATE INDEX registration_codes_expires ON registration_codes (expires_at);

CREATE TABLE fiscal_records (
	citizen_id TEXT PRIMARY KEY,
	given_name TEXT NOT NULL,
	surnames   TEXT NOT NULL,
	address    TEXT NOT NULL,
	updated_at BIGINT NOT NULL
);

CREATE TABLE letter_outbox (
	id         TEXT PRIMARY KEY,
	citizen_id TEXT NOT NULL,
	address    TEXT NOT NULL,
	body       TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX letter_outbox_citizen ON letter_outbox (citizen_id, created_at);
CREATE INDEX letter_outbox_created ON letter_outbox (created_at);

CREATE TABLE sms_outbox (
	id         TEXT PRIMARY KEY,
	recipient  TEXT NOT NULL,
	body       TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX sms_outbox_recipient ON sms_outbox (recipient, created_at);
CREATE INDEX sms_outbox_created ON sms_outbox (created_at);
