package tsa

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/keystore"
)

// TestAudit checks every token is a key.used record in the audit log, and
// that no token leaves when the record cannot be written.
func TestAudit(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	p := e.newPKI("Firma")
	l, err := audit.Open(ctx, e.db, audit.Options{Node: "test"})
	if err != nil {
		t.Fatal(err)
	}
	srv := e.tsa(p, keystore.ECP256, func(c *ServerConfig) { c.Audit = AuditLog(l) })
	keyID := srv.cfg.Signer.(*keystore.Signer).Key().ID
	var serials []string
	for _, doc := range []string{"a", "b", "c"} {
		body, fail, err := srv.Respond(ctx, sha256Query(t, []byte(doc), true))
		if err != nil || fail >= 0 {
			t.Fatalf("respond: %v %v", fail, err)
		}
		ts, err := timestamp.ParseResponse(body)
		if err != nil {
			t.Fatal(err)
		}
		serials = append(serials, fmt.Sprintf("%#x", ts.SerialNumber))
	}
	page, err := l.Query(ctx, audit.Filter{KeyID: keyID, Events: []audit.Event{audit.KeyUsed}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 3 {
		t.Fatalf("%d key.used records, want 3", len(page.Records))
	}
	for i, r := range page.Records {
		d := sha256.Sum256([]byte{"abc"[i]})
		if r.Outcome != audit.Success || r.Details["tsa_serial"] != serials[i] || len(r.Documents) != 1 ||
			r.Documents[0].Digest != hex.EncodeToString(d[:]) || r.Documents[0].Hash != "sha-256" {
			t.Errorf("record %d: %+v", i, r)
		}
	}

	// Serials grow past the length the audit log would take for a phone
	// number; they must still be recorded.
	rec := AuditLog(l)
	for _, n := range []int64{1, 123456789, 12345678901234} {
		if err := rec(ctx, &Issued{KeyID: keyID, Serial: big.NewInt(n), Hash: crypto.SHA256, Digest: sha256Of("x"), Time: time.Now()}, nil); err != nil {
			t.Fatalf("serial %d: %v", n, err)
		}
	}

	// With the audit log closed the TSA must fail closed.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	resp, body := post(t, serve(t, srv), QueryContentType, sha256Query(t, []byte("d"), true))
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("HTTP %d with the audit log down, want 500", resp.StatusCode)
	}
	var re *RejectionError
	if _, err := ParseReply(body); !errors.As(err, &re) || re.FailInfo != FailSystemFailure {
		t.Fatalf("reply with the audit log down: %v", err)
	}
}
