// Package testdb gives the higher-level test suites (keystore, transaction,
// audit, ...) their store on either backend: a SQLite file in a temporary
// directory, or a fresh database on the test binary's throwaway PostgreSQL
// server (store/postgres/pgtest).
//
// Each runs a test once per backend; Default picks the one
// FIRMA_TEST_STORE names (sqlite, the default, or postgres), so a whole
// package can be run on PostgreSQL with FIRMA_TEST_STORE=postgres go test.
// A test binary that may use PostgreSQL calls Cleanup from TestMain.
package testdb
