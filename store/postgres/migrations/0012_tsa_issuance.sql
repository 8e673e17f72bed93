-- The built-in TSA's issuance log: one row per token, written before the
-- token is handed out. The audit log holds one key.used summary per
-- interval (count, serial range, Merkle root over these rows), so that
-- anonymous requests do not grow it one record per token; verification
-- checks each summary against its interval's rows. Times are Unix
-- nanoseconds. IF NOT EXISTS: a store rolled back to an older schema
-- version takes it again without harm.
CREATE TABLE IF NOT EXISTS tsa_issuance (
	interval_id  TEXT    NOT NULL,
	serial       BIGINT  NOT NULL,
	key_id       TEXT    NOT NULL,
	issued_at    BIGINT  NOT NULL,
	token_hash   BYTEA   NOT NULL,
	imprint_hash TEXT    NOT NULL,
	policy       TEXT    NOT NULL,
	client       TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (interval_id, serial)
);
