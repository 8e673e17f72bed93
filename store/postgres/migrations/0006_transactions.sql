CREATE TABLE portals (
	id            TEXT PRIMARY KEY,
	name          TEXT NOT NULL UNIQUE,
	redirect_urls TEXT NOT NULL, -- JSON array
	api_key_hash  BYTEA,
	cert_sha256   BYTEA UNIQUE,
	max_documents INTEGER NOT NULL DEFAULT 0,
	max_doc_bytes BIGINT NOT NULL DEFAULT 0,
	rate_per_min  INTEGER NOT NULL DEFAULT 0,
	callback_url  TEXT NOT NULL DEFAULT '',
	callback_key  BYTEA,
	status        TEXT NOT NULL,
	created_at    BIGINT NOT NULL,
	updated_at    BIGINT NOT NULL
);

CREATE TABLE transactions (
	id                TEXT PRIMARY KEY,
	portal_id         TEXT NOT NULL REFERENCES portals (id),
	citizen_id        TEXT NOT NULL,
	state             TEXT NOT NULL,
	stop_on_error     BOOLEAN NOT NULL,
	level             TEXT NOT NULL DEFAULT '',
	ok_url            TEXT NOT NULL,
	error_url         TEXT NOT NULL,
	idempotency_key   TEXT NOT NULL DEFAULT '',
	request_hash      BYTEA,
	approval_digest   BYTEA NOT NULL,
	session_hash      BYTEA,
	otp_hash          BYTEA,
	otp_expires_at    BIGINT,
	otp_sends         INTEGER NOT NULL DEFAULT 0,
	otp_sent_at       BIGINT,
	otp_tries         INTEGER NOT NULL DEFAULT 0,
	certificate_id    TEXT NOT NULL DEFAULT '',
	key_id            TEXT NOT NULL DEFAULT '',
	summary           TEXT NOT NULL DEFAULT '',
	error_code        TEXT NOT NULL DEFAULT '',
	error_message     TEXT NOT NULL DEFAULT '',
	created_at        BIGINT NOT NULL,
	updated_at        BIGINT NOT NULL,
	expires_at        BIGINT NOT NULL,
	authenticated_at  BIGINT,
	approved_at       BIGINT,
	ended_at          BIGINT,
	callback_state    TEXT NOT NULL DEFAULT '',
	callback_attempts INTEGER NOT NULL DEFAULT 0,
	callback_next_at  BIGINT,
	callback_error    TEXT NOT NULL DEFAULT '',
	version           BIGINT NOT NULL DEFAULT 1
);
-- The rate limit counts a portal's transactions of the last minute.
CREATE INDEX transactions_portal_created ON transactions (portal_id, created_at);
CREATE INDEX transactions_portal_id ON transactions (portal_id, id);
CREATE INDEX transactions_citizen ON transactions (citizen_id, id);
CREATE INDEX transactions_state_expires ON transactions (state, expires_at);
CREATE INDEX transactions_callback ON transactions (callback_state, callback_next_at);
CREATE UNIQUE INDEX transactions_idempotency ON transactions (portal_id, idempotency_key) WHERE idempotency_key <> '';

CREATE TABLE transaction_documents (
	transaction_id TEXT NOT NULL REFERENCES transactions (id) ON DELETE CASCADE,
	idx            INTEGER NOT NULL,
	name           TEXT NOT NULL,
	media_type     TEXT NOT NULL DEFAULT '',
	format         TEXT NOT NULL,
	hash           TEXT NOT NULL,
	digest         BYTEA NOT NULL,
	content        BYTEA,
	size           BIGINT NOT NULL DEFAULT 0,
	status         TEXT NOT NULL,
	error_code     TEXT NOT NULL DEFAULT '',
	error          TEXT NOT NULL DEFAULT '',
	result         BYTEA,
	timestamped    BOOLEAN NOT NULL DEFAULT FALSE,
	signed_at      BIGINT,
	PRIMARY KEY (transaction_id, idx)
);
