package tsa

import (
	"context"
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

// TestAudit checks every token is a key.activated and a key.used record
// in the audit log, linked, and that no token leaves when the records
// cannot be written.
func TestAudit(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	p := e.newPKI("Firma")
	srv := e.tsa(p, keystore.ECP256, nil)
	l := e.auditLog()
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
	page, err := l.Query(ctx, audit.Filter{KeyID: keyID, Events: []audit.Event{audit.KeyActivated, audit.KeyUsed}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 6 {
		t.Fatalf("%d records, want a key.activated and a key.used per token", len(page.Records))
	}
	for i := range 3 {
		act, used := page.Records[2*i], page.Records[2*i+1]
		d := sha256.Sum256([]byte{"abc"[i]})
		for _, r := range []*audit.Record{act, used} {
			if r.Outcome != audit.Success || r.Details["tsa_serial"] != serials[i] || r.Details["purpose"] != "rfc3161-timestamp" ||
				len(r.Documents) != 1 || r.Documents[0].Digest != hex.EncodeToString(d[:]) || r.Documents[0].Hash != "sha-256" || r.Actor != Actor {
				t.Errorf("token %d: %+v", i, r)
			}
		}
		if act.Event != audit.KeyActivated || used.Event != audit.KeyUsed || act.Details["evidence"] != "rfc3161-request" ||
			act.Details[audit.DetailActivation] == "" || act.Details[audit.DetailActivation] != used.Details[audit.DetailActivation] {
			t.Errorf("token %d: %s %v / %s %v", i, act.Event, act.Details, used.Event, used.Details)
		}
	}

	// Serials grow past the length the audit log would take for a phone
	// number; they must still be recorded.
	for _, n := range []int64{1, 123456789, 12345678901234} {
		rec := &audit.Record{Event: audit.KeyUsed, Outcome: audit.Success, Actor: Actor, KeyID: keyID,
			Documents: []audit.Document{{Hash: "sha-256", Digest: hex.EncodeToString(sha256Of("x"))}}, Details: Details(big.NewInt(n), time.Now())}
		if err := l.Append(ctx, rec); err != nil {
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

// TestHSMKeyNeedsSigning: an HSM key is not served without the signing
// service that records its use.
func TestHSMKeyNeedsSigning(t *testing.T) {
	e := newEnv(t)
	p := e.newPKI("Firma")
	key := e.hsmKey(Owner, keystore.ECP256)
	cert, err := IssueCertificate(p.issuing, p.issuingKey, key.Public(), CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewServer(ServerConfig{Signer: key, Cert: cert, Policy: testPolicy, Serials: NewSequence(e.db, "default", 1)}); err == nil {
		t.Fatal("NewServer accepted an HSM key without the signing service")
	}
}
