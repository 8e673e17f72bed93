// Package store defines the records firmad keeps and the persistence
// interface that the SQLite (store/sqlite) and PostgreSQL (store/postgres)
// backends implement, with the same behaviour: store/storetest holds the
// conformance suite both run, store/backend opens the one configured.
//
// Packages that persist state own a narrow interface of the methods they
// need (see keystore.Store); Store is the union of them that firmad wires.
package store
