// Package postgres is the shared store for several firmad nodes: PostgreSQL
// through pgx (pgxpool), with the same versioned migrations as the SQLite
// store and the same semantics for every method of store.Store.
//
// Where SQLite relies on its single writer, this package takes row locks,
// conditional updates or transaction-scoped advisory locks, so that nodes
// sharing the database never both spend an OTP attempt, a rate-limit slot,
// a serial number, a SAD hash or an audit log index.
//
// Operating it: store.driver postgres and the DSN in FIRMA_STORE_DSN,
// store.dsn_file or store.dsn (without a password; PGPASSFILE works). The
// pool holds up to max(DefaultMaxConns, 4 per core) connections unless the
// DSN sets pool_max_conns: size PostgreSQL's max_connections for every
// node's pool. Behind PgBouncer in transaction mode, add
// default_query_exec_mode=exec to the DSN (no prepared statements across
// transactions); the advisory locks here are transaction-scoped, except
// migrations and Lease, which need a session: point those nodes at
// PostgreSQL directly or use session pooling. Migrations run at start
// under an advisory lock, so nodes may start together.
package postgres
