// Package cluster holds the tests of several firmad processes sharing one
// PostgreSQL database and one SoftHSM2 token directory, as nodes of a
// cluster share a database and a network HSM: a transaction may be
// created, approved and collected on different nodes, OTP attempts count
// across nodes, and the audit log stays one verifiable sequence.
//
// It also holds the 5-minute load of 'make bench-load' (TestLoad, run only
// when FIRMA_BENCH_LOAD is set), which drives both nodes with
// 'firmactl bench'.
package cluster
