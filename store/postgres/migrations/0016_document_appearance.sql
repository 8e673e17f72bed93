-- The visible PAdES signature asked for a document (page, rectangle,
-- text, image: JSON, opaque to the store), in a table of its own so that
-- replaying migrations stays idempotent; emptied with the document.
CREATE TABLE IF NOT EXISTS transaction_document_appearances (
	transaction_id TEXT NOT NULL,
	idx            INTEGER NOT NULL,
	appearance     BYTEA NOT NULL,
	PRIMARY KEY (transaction_id, idx)
);
