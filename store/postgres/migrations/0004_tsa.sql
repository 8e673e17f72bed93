CREATE TABLE tsa_units (
	name       TEXT PRIMARY KEY,
	key_id     TEXT NOT NULL,
	cert       BYTEA NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);

-- One row per serial-number sequence; last is the highest number handed
-- out. Bumped by one upsert ... RETURNING: the row lock it takes orders
-- every node's allocations.
CREATE TABLE tsa_serials (
	sequence TEXT PRIMARY KEY,
	last     BIGINT NOT NULL CHECK (last >= 0)
);
