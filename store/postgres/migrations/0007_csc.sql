-- Cloud Signature Consortium API: OTP challenges, one per credential and
-- caller, and signature activation data (SAD) with the exact hashes each
-- one may sign.
CREATE TABLE csc_challenges (
	id            TEXT PRIMARY KEY,
	credential_id TEXT NOT NULL,
	caller        TEXT NOT NULL,
	citizen_id    TEXT NOT NULL,
	hash          BYTEA NOT NULL,
	sends         INTEGER NOT NULL CHECK (sends >= 1),
	attempts      INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
	sent_at       BIGINT NOT NULL,
	expires_at    BIGINT NOT NULL,
	used_at       BIGINT,
	locked_at     BIGINT,
	created_at    BIGINT NOT NULL
);

CREATE TABLE csc_sads (
	id             TEXT PRIMARY KEY,
	credential_id  TEXT NOT NULL,
	caller         TEXT NOT NULL,
	citizen_id     TEXT NOT NULL,
	key_id         TEXT NOT NULL,
	hash_algo      TEXT NOT NULL,
	num_signatures INTEGER NOT NULL CHECK (num_signatures >= 1),
	used           INTEGER NOT NULL DEFAULT 0 CHECK (used >= 0 AND used <= num_signatures),
	created_at     BIGINT NOT NULL,
	expires_at     BIGINT NOT NULL
);
CREATE INDEX csc_sads_expires ON csc_sads (expires_at);

-- A hash is spent by setting used_at where it is still NULL: the update
-- that wins is the only signature ever made over it with this SAD.
CREATE TABLE csc_sad_hashes (
	sad_id  TEXT NOT NULL REFERENCES csc_sads (id) ON DELETE CASCADE,
	idx     INTEGER NOT NULL,
	hash    BYTEA NOT NULL,
	used_at BIGINT,
	PRIMARY KEY (sad_id, hash)
);
