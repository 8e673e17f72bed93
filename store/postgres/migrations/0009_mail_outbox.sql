-- The outbox mail gateway: e-mails kept instead of sent (sandbox, tests),
-- read by operators and purged by age.
CREATE TABLE mail_outbox (
	id         TEXT PRIMARY KEY,
	recipient  TEXT NOT NULL,
	subject    TEXT NOT NULL,
	body       TEXT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX mail_outbox_recipient ON mail_outbox (recipient, created_at);
CREATE INDEX mail_outbox_created ON mail_outbox (created_at);
