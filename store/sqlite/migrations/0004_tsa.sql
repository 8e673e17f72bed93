CREATE TABLE tsa_units (
	name       TEXT PRIMARY KEY,
	key_id     TEXT NOT NULL,
	cert       BLOB NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);

-- One row per serial-number sequence; last is the highest number handed
-- out. Bumped with UPDATE ... RETURNING in one statement so that two
-- processes sharing the database never get the same number.
CREATE TABLE tsa_serials (
	sequence TEXT PRIMARY KEY,
	last     INTEGER NOT NULL CHECK (last >= 0)
);
