package audit_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/keystore"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/store/sqlite"
	"github.com/firma-cloud/firma/store/testdb"
)

func TestMain(m *testing.M) {
	code := m.Run()
	softhsmtest.Cleanup()
	testdb.Cleanup()
	os.Exit(code)
}

const origin = "firma.test/audit"

// env is a log on a fresh store (SQLite unless FIRMA_TEST_STORE says
// postgres, or the backend newEnvOn was given), signing checkpoints with an
// ECDSA P-256 key made on a fresh SoftHSM2 token.
type env struct {
	b      testdb.Backend
	db     store.Store
	ks     *keystore.HSM
	key    *keystore.Key
	signer note.Signer
	vkey   string
	keys   note.Verifiers
	log    *audit.Log
}

func openDB(t testing.TB) (*sqlite.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "firma.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// hsmKey makes the audit key as firmad does: a token-mode P-256 key owned
// by "system:audit".
func hsmKey(t testing.TB, db store.Store) (*keystore.HSM, *keystore.Key, *keystore.Signer) {
	t.Helper()
	tok := softhsmtest.New(t)
	ctx := context.Background()
	ks, err := keystore.Open(ctx, keystore.Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN}, db, nil)
	if err != nil {
		t.Fatalf("open keystore: %v", err)
	}
	t.Cleanup(func() { ks.Close() })
	k, err := ks.GenerateMode(ctx, "system:audit", keystore.ECP256, keystore.ModeToken)
	if err != nil {
		t.Fatalf("generate audit key: %v", err)
	}
	s, err := ks.Signer(ctx, k.ID)
	if err != nil {
		t.Fatalf("audit signer: %v", err)
	}
	return ks, k, s
}

func newEnv(t testing.TB, opt audit.Options) *env {
	t.Helper()
	return newEnvOn(t, testdb.Default(t), opt)
}

// newEnvOn is newEnv on the given store backend.
func newEnvOn(t testing.TB, b testdb.Backend, opt audit.Options) *env {
	t.Helper()
	e := &env{b: b, db: b.Open(t)}
	var s *keystore.Signer
	e.ks, e.key, s = hsmKey(t, e.db)
	var err error
	if e.signer, err = audit.NewNoteSigner(origin, s); err != nil {
		t.Fatal(err)
	}
	if e.vkey, err = audit.NoteVerifierKey(origin, s.Public()); err != nil {
		t.Fatal(err)
	}
	if e.keys, err = audit.NewNoteVerifiers(e.vkey); err != nil {
		t.Fatal(err)
	}
	opt.Origin, opt.Signer = origin, e.signer
	if opt.Node == "" {
		opt.Node = "node-1"
	}
	if e.log, err = audit.Open(context.Background(), e.db, opt); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.log.Close() })
	return e
}

// sample returns a varied, valid record number i.
func sample(i int) *audit.Record {
	citizen := fmt.Sprintf("cit-%d", i%4)
	portal := fmt.Sprintf("portal-%d", i%3)
	key := fmt.Sprintf("key-%d", i%4)
	switch i % 5 {
	case 0, 1:
		d1 := sha256.Sum256([]byte(fmt.Sprintf("doc %d a", i)))
		d2 := sha256.Sum256([]byte(fmt.Sprintf("doc %d b", i)))
		return &audit.Record{
			Event: audit.KeyUsed, Outcome: audit.Success,
			Actor:   audit.Actor{Role: audit.RoleCitizen, ID: citizen},
			Citizen: citizen, Portal: portal, KeyID: key, RequestID: fmt.Sprintf("req-%d", i),
			Documents: []audit.Document{audit.Digest(crypto.SHA256, d1[:]), {Hash: "sha-256", Digest: fmt.Sprintf("%x", d2), Name: "contrato.pdf"}},
			Details:   map[string]string{"algorithm": "ecdsa-p256", "format": "pades"},
		}
	case 2:
		return &audit.Record{Event: audit.OTPSent, Outcome: audit.Success,
			Actor: audit.Actor{Role: audit.RoleSystem, ID: "firmad"}, Citizen: citizen, Portal: portal,
			Details: map[string]string{"phone": audit.Pseudonym(bytes.Repeat([]byte{7}, 32), audit.Phone, "+34 600 000 00"+fmt.Sprint(i%10))}}
	case 3:
		return &audit.Record{Event: audit.OTPFailed, Outcome: audit.Failure,
			Actor: audit.Actor{Role: audit.RoleCitizen, ID: citizen}, Citizen: citizen, Portal: portal,
			Reason: "wrong code", Details: map[string]string{"attempts_left": "2"}}
	}
	return &audit.Record{Event: audit.TransactionStateChange, Outcome: audit.Success,
		Actor: audit.Actor{Role: audit.RolePortal, ID: portal}, Citizen: citizen, Portal: portal,
		Details: map[string]string{"transaction": fmt.Sprintf("tx-%d", i), "from": "pending", "to": "approved"}}
}

// fill appends records [from, to) in order.
func fill(t testing.TB, l *audit.Log, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		r := sample(i)
		r.Time = time.Date(2026, 11, 25, 9, 0, i, 0, time.UTC)
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if r.Seq != int64(i) {
			t.Fatalf("append %d got seq %d", i, r.Seq)
		}
	}
}

func checkpoint(t testing.TB, l *audit.Log) *audit.Checkpoint {
	t.Helper()
	c, err := l.Checkpoint(context.Background())
	if err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	return c
}

func exportOf(t testing.TB, db store.Store) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := audit.ExportStore(context.Background(), db, &b); err != nil {
		t.Fatalf("export: %v", err)
	}
	return b.Bytes()
}

// tamper runs SQL on the database as an attacker with direct access would,
// lifting the append-only triggers first.
func tamper(t testing.TB, e *env, stmts ...string) {
	t.Helper()
	e.b.Tamper(t, e.db, stmts...)
}
