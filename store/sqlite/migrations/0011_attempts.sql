-- Wrong-secret counters of the attempt policy (policy.Attempts), one row
-- per scope (e.g. "otp:<citizen>", the citizen's SMS-code channel shared
-- by every portal and way of signing). Times are Unix nanoseconds, NULL
-- for none. The row is deleted when the right code resets it. IF NOT
-- EXISTS: a store rolled back to an older schema version (as the tests
-- of earlier migrations do) takes it again without harm.
CREATE TABLE IF NOT EXISTS attempts (
	scope        TEXT PRIMARY KEY,
	failures     INTEGER NOT NULL DEFAULT 0 CHECK (failures >= 0),
	last_failure BIGINT,
	locked_until BIGINT
);
