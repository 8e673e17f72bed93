package storetest

import (
	"testing"

	"github.com/firma-cloud/firma/store"
)

// Open returns a store on a new, empty database and a function that opens
// another handle on the same database: a second node sharing it, or the
// same node after a restart. Both close when the test ends.
type Open func(t *testing.T) (store.Store, Reopen)

// Reopen opens another handle on the database Open made. Nil for a store
// with one appender to the audit log (sqlite.DB.JournalAudit): RunAudit
// then skips what takes a second one.
type Reopen func(t *testing.T) store.Store

// Run runs the whole suite, one subtest per area.
func Run(t *testing.T, open Open) {
	areas := []struct {
		name string
		run  func(*testing.T, Open)
	}{
		{"keys", testKeys},
		{"tsa", testTSA},
		{"ca", testCA},
		{"csc", testCSC},
		{"oauth", testOAuth},
		{"attempts", testAttempts},
		{"portals", testPortals},
		{"transactions", testTransactions},
		{"registry", testRegistry},
		{"sms", testSMS},
		{"mail", testMail},
		{"audit", testAudit},
		{"fire", testFire},
	}
	for _, a := range areas {
		t.Run(a.name, func(t *testing.T) { a.run(t, open) })
	}
}

// RunAudit runs the audit area alone, for a backend's other mode of
// keeping the log.
func RunAudit(t *testing.T, open Open) { testAudit(t, open) }

// test is one behaviour, checked on a store of its own.
type test struct {
	name string
	fn   func(t *testing.T, s store.Store, reopen Reopen)
}

// cases runs tests as subtests, each on a new database.
func cases(t *testing.T, open Open, tests []test) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, reopen := open(t)
			tc.fn(t, s, reopen)
		})
	}
}
