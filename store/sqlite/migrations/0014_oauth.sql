-- OAuth 2.0 authorisation requests of the CSC API's authorisation server:
-- what the client asked (fixed) and the citizen's ceremony (changed by
-- conditional updates on version).
CREATE TABLE IF NOT EXISTS oauth_requests (
	id             TEXT PRIMARY KEY,
	client_id      TEXT NOT NULL,
	redirect_uri   TEXT NOT NULL,
	state          TEXT NOT NULL,
	code_challenge TEXT NOT NULL,
	scope          TEXT NOT NULL,
	credential_id  TEXT NOT NULL,
	hash_algo      TEXT NOT NULL,
	num_signatures INTEGER NOT NULL CHECK (num_signatures >= 0),
	digests        TEXT NOT NULL,
	details        TEXT NOT NULL,
	status         TEXT NOT NULL,
	citizen_id     TEXT NOT NULL,
	session_hash   BLOB,
	code_hash      BLOB,
	version        INTEGER NOT NULL CHECK (version >= 1),
	created_at     BIGINT NOT NULL,
	expires_at     BIGINT NOT NULL,
	updated_at     BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS oauth_requests_expires ON oauth_requests (expires_at);
