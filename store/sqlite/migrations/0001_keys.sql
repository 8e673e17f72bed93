CREATE TABLE keys (
	id           TEXT PRIMARY KEY,
	owner        TEXT NOT NULL,
	type         TEXT NOT NULL,
	mode         TEXT NOT NULL,
	public_key   BLOB NOT NULL,
	wrapped      BLOB,
	created_at   INTEGER NOT NULL,
	destroyed_at INTEGER
);
CREATE INDEX keys_owner ON keys (owner, id);
