-- The RFC 3161 token inside each B-T signature, and its time, so that
-- portals get them with the results without parsing the CMS.
ALTER TABLE transaction_documents ADD COLUMN timestamp_token BYTEA;
ALTER TABLE transaction_documents ADD COLUMN timestamped_at BIGINT;
-- The retention purge finds ended transactions by when they ended.
CREATE INDEX transactions_ended ON transactions (ended_at);
