// Package store defines the records firmad keeps and the persistence
// interface that the SQLite (store/sqlite) and, later, PostgreSQL backends
// implement.
//
// Packages that persist state own a narrow interface of the methods they
// need (see keystore.Store); Store is the union of them that firmad wires.
package store
