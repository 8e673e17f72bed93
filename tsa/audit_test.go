package tsa

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/keystore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// keyRecords are the key.activated and key.used records of the key, in
// log order.
func keyRecords(t *testing.T, l *audit.Log, keyID string) []*audit.Record {
	t.Helper()
	page, err := l.Query(context.Background(), audit.Filter{KeyID: keyID, Events: []audit.Event{audit.KeyActivated, audit.KeyUsed}, Limit: audit.MaxPage})
	if err != nil {
		t.Fatal(err)
	}
	return page.Records
}

// TestAuditInterval checks the built-in TSA's key use is one key.activated
// record, written before the first token, and one key.used summary when
// the interval closes, whose count, serial range and root are those of
// the issuance log's rows; and that every token handed out has its row.
func TestAuditInterval(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	p := e.newPKI("Firma")
	srv := e.tsa(p, keystore.ECP256, nil)
	l := e.auditLog()
	keyID := srv.cfg.Signer.(*keystore.Signer).Key().ID
	if n := len(keyRecords(t, l, keyID)); n != 0 {
		t.Fatalf("%d records before any token", n)
	}
	tokens := map[int64][]byte{} // serial -> SHA-256 of the token
	for i, doc := range []string{"a", "b", "c"} {
		rctx := ctx
		if i == 1 {
			rctx = WithClient(ctx, "192.0.2.7")
		}
		body, fail, err := srv.Respond(rctx, sha256Query(t, []byte(doc), true))
		if err != nil || fail >= 0 {
			t.Fatalf("respond: %v %v", fail, err)
		}
		ts, err := timestamp.ParseResponse(body)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(ts.RawToken)
		tokens[ts.SerialNumber.Int64()] = sum[:]
		if i == 0 {
			recs := keyRecords(t, l, keyID)
			if len(recs) != 1 || recs[0].Event != audit.KeyActivated || recs[0].Details["evidence"] != "tsa-interval" {
				t.Fatalf("after the first token: %d records, want its interval's key.activated", len(recs))
			}
		}
	}
	// A signature's timestamp made in process counts in the same interval.
	tok, err := srv.Timestamp(ctx, tokenHash, sha256Of("signature value"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(tok.DER)
	tokens[tok.Serial.Int64()] = sum[:]

	recs := keyRecords(t, l, keyID)
	if len(recs) != 1 {
		t.Fatalf("%d records for 4 tokens while the interval is open, want 1", len(recs))
	}
	act := recs[0]
	interval := act.Details[audit.DetailActivation]
	rows, err := e.db.TSAIssuances(ctx, interval)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 {
		t.Fatalf("%d issuance rows, want 4", len(rows))
	}
	for _, r := range rows {
		if !bytes.Equal(tokens[r.Serial], r.TokenHash) || r.KeyID != keyID || r.ImprintHash != "sha-256" || r.Policy != testPolicy.String() {
			t.Errorf("row %+v does not match token %#x", r, r.Serial)
		}
	}
	if rows[1].Client != "192.0.2.7" || rows[0].Client != "" || rows[3].Client != "" {
		t.Errorf("clients %q %q %q, want the HTTP requester's only", rows[0].Client, rows[1].Client, rows[3].Client)
	}

	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	recs = keyRecords(t, l, keyID)
	if len(recs) != 2 || recs[1].Event != audit.KeyUsed || recs[1].Details[audit.DetailActivation] != interval {
		t.Fatalf("after Close: %d records, want the key.activated and its summary", len(recs))
	}
	got, ok, err := audit.ParseIssuanceSummary(recs[1].Details)
	if !ok || err != nil {
		t.Fatalf("summary details %v: %v", recs[1].Details, err)
	}
	if want := audit.SummariseIssuance(rows); got != want || want.Count != 4 || want.First != rows[0].Serial || want.Last != rows[3].Serial {
		t.Fatalf("summary %+v, issuance log %+v", got, want)
	}
	if recs[1].Details[audit.DetailFormat] != "rfc3161" || recs[1].Actor != Actor || recs[1].Outcome != audit.Success {
		t.Errorf("summary record %+v", recs[1])
	}
	// Closed: no more tokens, and no record.
	if _, fail, err := srv.Respond(ctx, sha256Query(t, []byte("d"), true)); fail != FailSystemFailure || !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v %v", fail, err)
	}
	if n := len(keyRecords(t, l, keyID)); n != 2 {
		t.Fatalf("%d records after a refused token, want 2", n)
	}
}

// TestAuditIntervalRotates: an interval closes on its own after
// AuditInterval, and the next token opens another.
func TestAuditIntervalRotates(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	srv := e.tsa(e.newPKI("Firma"), keystore.ECP256, func(c *ServerConfig) { c.AuditInterval = 20 * time.Millisecond })
	l := e.auditLog()
	keyID := srv.cfg.Signer.(*keystore.Signer).Key().ID
	for round := range 2 {
		if _, fail, err := srv.Respond(ctx, sha256Query(t, []byte("x"), false)); err != nil || fail >= 0 {
			t.Fatalf("respond: %v %v", fail, err)
		}
		want := 2 * (round + 1)
		deadline := time.Now().Add(10 * time.Second)
		for len(keyRecords(t, l, keyID)) < want && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		recs := keyRecords(t, l, keyID)
		if len(recs) != want || recs[want-1].Event != audit.KeyUsed || recs[want-1].Details[audit.DetailTSACount] != "1" ||
			recs[want-2].Details[audit.DetailActivation] != recs[want-1].Details[audit.DetailActivation] {
			t.Fatalf("round %d: %d records, want %d ending with a one-token summary", round, len(recs), want)
		}
	}
}

// TestAuditFlood: a few hundred anonymous requests grow the audit log by
// the records of their intervals (2 each), not by two per token; with
// intervals short enough to close while tokens are in flight, every
// summary still matches its interval's issuance rows. Cost: 2 x 300 P-256
// signatures in SoftHSM2, about a second of CPU.
func TestAuditFlood(t *testing.T) {
	const n, workers = 300, 6
	tests := []struct {
		name     string
		interval time.Duration
	}{
		{"one interval", time.Hour},
		{"intervals closing under load", 5 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t)
			reg := prometheus.NewRegistry()
			srv := e.tsa(e.newPKI("Firma"), keystore.ECP256, func(c *ServerConfig) { c.Registerer, c.AuditInterval = reg, tc.interval })
			l := e.auditLog()
			before, err := e.db.AuditSize(ctx)
			if err != nil {
				t.Fatal(err)
			}
			url := serve(t, srv)
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for w := range workers {
				wg.Go(func() {
					for i := w; i < n; i += workers {
						resp, err := http.Post(url, QueryContentType, bytes.NewReader(sha256Query(t, []byte(fmt.Sprint(i)), false)))
						if err != nil {
							errs <- err
							return
						}
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							errs <- fmt.Errorf("request %d: HTTP %d", i, resp.StatusCode)
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if err := srv.Close(ctx); err != nil {
				t.Fatal(err)
			}
			after, err := e.db.AuditSize(ctx)
			if err != nil {
				t.Fatal(err)
			}
			recs := keyRecords(t, l, srv.cfg.Signer.(*keystore.Signer).Key().ID)
			summaries := int(testutil.ToFloat64(srv.m.summaries.WithLabelValues("recorded")))
			if int(after-before) != 2*summaries || len(recs) != 2*summaries || summaries < 1 {
				t.Fatalf("%d requests added %d audit records, %d summaries: want two per interval", n, after-before, summaries)
			}
			if tc.interval == time.Hour && summaries != 1 {
				t.Fatalf("%d summaries, want one interval", summaries)
			}
			t.Logf("%d tokens: %d intervals, %d audit records", n, summaries, after-before)
			var total int64
			for _, r := range recs {
				if r.Event != audit.KeyUsed {
					continue
				}
				rows, err := e.db.TSAIssuances(ctx, r.Details[audit.DetailActivation])
				if err != nil {
					t.Fatal(err)
				}
				got, _, err := audit.ParseIssuanceSummary(r.Details)
				if want := audit.SummariseIssuance(rows); err != nil || got != want {
					t.Fatalf("summary %+v, its rows %+v (%v)", got, want, err)
				}
				total += got.Count
			}
			if total != n {
				t.Fatalf("summaries count %d tokens, want %d", total, n)
			}
			if got := testutil.ToFloat64(srv.m.rows.WithLabelValues("stored")); got != n {
				t.Errorf("firma_tsa_issuance_rows_total{stored} = %v, want %d", got, n)
			}
		})
	}
}

// TestAuditFailsClosed: no token leaves when its interval's key.activated
// cannot be written, nor when its issuance row cannot be stored; the
// summary then counts the token signed and withheld.
func TestAuditFailsClosed(t *testing.T) {
	ctx := context.Background()
	t.Run("audit log down", func(t *testing.T) {
		e := newEnv(t)
		srv := e.tsa(e.newPKI("Firma"), keystore.ECP256, nil)
		if err := e.auditLog().Close(); err != nil {
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
		if rows, _ := e.db.TSAIssuances(ctx, ""); len(rows) != 0 {
			t.Fatal("issuance row without an interval")
		}
	})
	t.Run("issuance log down", func(t *testing.T) {
		e := newEnv(t)
		srv := e.tsa(e.newPKI("Firma"), keystore.ECP256, nil)
		if _, err := e.db.SQL().ExecContext(ctx, "ALTER TABLE tsa_issuance RENAME TO tsa_issuance_away"); err != nil {
			t.Fatal(err)
		}
		if _, fail, err := srv.Respond(ctx, sha256Query(t, []byte("d"), true)); fail != FailSystemFailure || err == nil {
			t.Fatalf("with the issuance log down: %v %v, want systemFailure", fail, err)
		}
		if _, err := e.db.SQL().ExecContext(ctx, "ALTER TABLE tsa_issuance_away RENAME TO tsa_issuance"); err != nil {
			t.Fatal(err)
		}
		if _, fail, err := srv.Respond(ctx, sha256Query(t, []byte("e"), true)); fail >= 0 || err != nil {
			t.Fatalf("issuance log back: %v %v", fail, err)
		}
		if err := srv.Close(ctx); err != nil {
			t.Fatal(err)
		}
		recs := keyRecords(t, e.auditLog(), srv.cfg.Signer.(*keystore.Signer).Key().ID)
		if len(recs) != 2 {
			t.Fatalf("%d records, want one interval", len(recs))
		}
		s, ok, err := audit.ParseIssuanceSummary(recs[1].Details)
		if !ok || err != nil || s.Count != 1 || s.Withheld != 1 {
			t.Fatalf("summary %+v (%v): want 1 token issued and 1 withheld", s, err)
		}
	})
}

// TestAuditSummaryRetried: a summary the audit log refuses stays pending
// and is written once the log takes it, here by Close.
func TestAuditSummaryRetried(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	srv := e.tsa(e.newPKI("Firma"), keystore.ECP256, nil)
	if _, fail, err := srv.Respond(ctx, sha256Query(t, []byte("d"), true)); fail >= 0 || err != nil {
		t.Fatalf("respond: %v %v", fail, err)
	}
	// The audit table refuses writes, as a full disk or a locked
	// database would make it.
	if _, err := e.db.SQL().ExecContext(ctx, "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_records BEGIN SELECT RAISE(ABORT, 'refused'); END"); err != nil {
		t.Fatal(err)
	}
	srv.iv.rotate(srv.iv.cur)
	if got := testutil.ToFloat64(srv.m.pending); got != 1 {
		t.Fatalf("pending summaries = %v with the audit log refusing, want 1", got)
	}
	if _, err := e.db.SQL().ExecContext(ctx, "DROP TRIGGER refuse_audit"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	recs := keyRecords(t, e.auditLog(), srv.cfg.Signer.(*keystore.Signer).Key().ID)
	if len(recs) != 2 || recs[1].Event != audit.KeyUsed || recs[1].Details[audit.DetailTSACount] != "1" {
		t.Fatalf("%d records after the retry, want the interval's two", len(recs))
	}
}

// TestHSMKeyNeedsSigning: an HSM key is not served without the signing
// service that records its use, nor with it but without the issuance log
// its summaries are over.
func TestHSMKeyNeedsSigning(t *testing.T) {
	e := newEnv(t)
	p := e.newPKI("Firma")
	key := e.hsmKey(Owner, keystore.ECP256)
	cert, err := IssueCertificate(p.issuing, p.issuingKey, key.Public(), CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	base := ServerConfig{Signer: key, Cert: cert, Policy: testPolicy, Serials: NewSequence(e.db, "default", 1)}
	if _, err := NewServer(base); err == nil {
		t.Fatal("NewServer accepted an HSM key without the signing service")
	}
	base.Signing = e.signing()
	if _, err := NewServer(base); err == nil {
		t.Fatal("NewServer accepted the signing service without the issuance log")
	}
	base.Issuance, base.AuditInterval = e.db, -time.Second
	if _, err := NewServer(base); err == nil {
		t.Fatal("NewServer accepted a negative audit interval")
	}
}
