// Package sqlite is the embedded store: a single SQLite file through the
// pure-Go modernc.org/sqlite driver, with versioned schema migrations.
package sqlite
