package transaction_test

import (
	"testing"

	"github.com/firma-cloud/firma/sms"
	"github.com/firma-cloud/firma/store"
)

// freshCAStore is an empty database, on e's backend, for a CA that was
// never set up.
func freshCAStore(t *testing.T, e *env) store.Store {
	t.Helper()
	return e.tdb.Backend().Open(t)
}

func outboxOf(t *testing.T, e *env) *sms.Outbox {
	t.Helper()
	o, err := sms.NewOutbox(e.db, sms.OutboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return o
}
