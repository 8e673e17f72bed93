// Package storetest is the conformance suite every store.Store backend
// runs: the behaviour callers rely on (sentinel errors, conditional
// updates, all-or-nothing writes, counters and sequences that hold under
// concurrency from several handles, which stand for several firmad nodes
// sharing one database).
//
// A backend's tests call Run with a function that opens a store on a new,
// empty database; see store/sqlite and store/postgres.
package storetest
