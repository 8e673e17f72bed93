// Package postgres is the shared store for several firmad nodes: PostgreSQL
// through pgx (pgxpool), with the same versioned migrations as the SQLite
// store and the same semantics for every method of store.Store.
//
// Where SQLite relies on its single writer, this package takes row locks,
// conditional updates or transaction-scoped advisory locks, so that nodes
// sharing the database never both spend an OTP attempt, a rate-limit slot,
// a serial number, a SAD hash or an audit log index.
package postgres
