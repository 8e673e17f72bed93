-- How a document is to be signed beyond its format (operation, the
-- existing signature for cosign and countersign, signature policy,
-- attached content), encoded by the transaction package; NULL for a
-- plain signature.
ALTER TABLE transaction_documents ADD COLUMN sign_options BLOB;
