-- Times are Unix nanoseconds in BIGINT columns, as in the SQLite schema, so
-- that both backends round-trip the same values.
CREATE TABLE keys (
	id           TEXT PRIMARY KEY,
	owner        TEXT NOT NULL,
	type         TEXT NOT NULL,
	mode         TEXT NOT NULL,
	public_key   BYTEA NOT NULL,
	wrapped      BYTEA,
	created_at   BIGINT NOT NULL,
	destroyed_at BIGINT
);
CREATE INDEX keys_owner ON keys (owner, id);
