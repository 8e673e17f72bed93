package transaction_test

import (
	"path/filepath"
	"testing"

	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/sms"
	"github.com/firma-cloud/firma/store/sqlite"
)

// freshCAStore is an empty database for a CA that was never set up.
func freshCAStore(t *testing.T, e *env) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(e.ctx, filepath.Join(t.TempDir(), "empty-ca.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func coreOf(e *env) *signer.Core { return signer.New(e.ks, signer.Config{}) }

func outboxOf(t *testing.T, e *env) *sms.Outbox {
	t.Helper()
	o, err := sms.NewOutbox(e.db, sms.OutboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return o
}
