CREATE TABLE ca_authorities (
	name       TEXT PRIMARY KEY,
	key_id     TEXT NOT NULL,
	cert       BYTEA NOT NULL,
	external   BOOLEAN NOT NULL DEFAULT FALSE,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL
);

CREATE TABLE ca_certificates (
	id            TEXT PRIMARY KEY,
	owner         TEXT NOT NULL,
	key_id        TEXT NOT NULL,
	serial        TEXT,
	issuer        TEXT NOT NULL,
	status        TEXT NOT NULL CHECK (status IN ('pending', 'valid', 'revoked', 'expired')),
	cert          BYTEA,
	csr           BYTEA,
	not_before    BIGINT,
	not_after     BIGINT,
	created_at    BIGINT NOT NULL,
	revoked_at    BIGINT,
	reason        INTEGER,
	superseded_by TEXT
);
CREATE UNIQUE INDEX ca_certificates_serial ON ca_certificates (issuer, serial);
-- One valid and one pending certificate per citizen at most, enforced here
-- so that two firmad nodes cannot both issue on first use.
CREATE UNIQUE INDEX ca_certificates_one_valid ON ca_certificates (owner) WHERE status = 'valid';
CREATE UNIQUE INDEX ca_certificates_one_pending ON ca_certificates (owner) WHERE status = 'pending';
CREATE INDEX ca_certificates_owner ON ca_certificates (owner, id);
CREATE INDEX ca_certificates_revoked ON ca_certificates (issuer, status, not_after);

CREATE TABLE ca_crl_numbers (
	issuer TEXT PRIMARY KEY,
	last   BIGINT NOT NULL
);

CREATE TABLE ca_crls (
	issuer      TEXT PRIMARY KEY,
	number      BIGINT NOT NULL,
	this_update BIGINT NOT NULL,
	next_update BIGINT NOT NULL,
	der         BYTEA NOT NULL
);
