// Package pgtest runs a throwaway PostgreSQL server for tests.
//
// One server per test binary, started on first use: initdb into a
// temporary directory, then postgres listening on 127.0.0.1 on a free port
// with its unix socket in that directory, as the postgres user when the
// tests run as root (the server refuses root). Every test gets a fresh
// database of its own on it, dropped when the test ends, so no test touches
// a server or a database it did not make.
//
// The server dies with the test binary (parent-death signal) even if
// Cleanup is never called; the next run removes the directories such
// servers left behind.
package pgtest
