// Package sqlite is the embedded store: a single SQLite file through the
// pure-Go modernc.org/sqlite driver, with versioned schema migrations.
//
// The audit log's appends can go through a journal (DB.JournalAudit, what
// firmad does by default): a commit is one write to a segment file beside
// the database, and a mover copies the records into the tables in bulk, so
// a busy node pays a SQLite transaction per few hundred records instead of
// one per signature.
package sqlite
