-- Version 10 keeps the migration numbers of the two stores in step. The
-- SQLite store moved its audit query indexes to a table filled in bulk
-- behind the log's tail (its 0010), because on SQLite the five indexes made
-- each group commit write seven pages. PostgreSQL keeps the indexes on
-- audit_records: its appends are COPY into a heap, and index maintenance
-- there is not what bounds a commit.
SELECT 1;
