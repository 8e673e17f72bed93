package e2e_test

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/json"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firma-cloud/firma/e2e/stack"
	"github.com/firma-cloud/firma/signer/ltv"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/transaction"
	"github.com/firma-cloud/firma/verify"
	"github.com/firma-cloud/firma/verify/testpki"
)

// TestFIReUpgradeGrace follows a FIRe client asking for long-term
// levels with transactions.upgrade_grace set (one hour), with the
// clients' request bodies byte for byte and no browser: op 2 answers
// with the grace id and date in FIRe's result shape (state 1); before
// the date op 70 answers the same and op 71 is error 52; after it (the
// clocks moved) op 70 raises the signature and op 71 hands it out once,
// at the level asked, which firma's verifier confirms. A PAdES asking
// LTA-LEVEL at op 1, once the grace has passed, gets it from op 2 and
// op 11 directly. Cost: two test PKIs' worth of tokens, two approvals,
// a handful of OCSP and TSA exchanges.
func TestFIReUpgradeGrace(t *testing.T) {
	tok := softhsmtest.New(t)
	pki := testpki.New(t)
	var skew atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	s := stack.New(t, stack.Options{Token: tok, Transaction: func(o *transaction.Options) {
		o.Timestamper = pki.Timestamper(t)
		o.Validation = &ltv.Gatherer{}
		o.UpgradeGrace = time.Hour
		o.Clock = clock
	}})
	e := newFire(t, s)
	citizen := s.Advanced(67890123, "Irene", "Plazo Largo")
	config := javaProps(map[string]string{"redirectOkUrl": e.okURL, "redirectErrorUrl": e.errURL})
	approve := func(id string) {
		t.Helper()
		sess, err := s.Tx.Authenticate(s.Ctx, id, citizen, stack.Password)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Tx.SendOTP(s.Ctx, id, sess.Token); err != nil {
			t.Fatal(err)
		}
		code, _ := s.LastOTP(citizen)
		if _, err := s.Tx.Approve(s.Ctx, id, sess.Token, code); err != nil {
			t.Fatal(err)
		}
		if err := s.Tx.Wait(s.Ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	start := func(body string) string {
		t.Helper()
		a := e.post(e.client, body)
		var st struct {
			ID string `json:"transactionid"`
		}
		if a.status != 200 || json.Unmarshal(a.body, &st) != nil || st.ID == "" {
			t.Fatalf("op 1: %v", a)
		}
		approve(st.ID)
		return st.ID
	}
	type resultJSON struct {
		Result struct {
			State   int    `json:"state"`
			Upgrade string `json:"upgrade"`
			Grace   *struct {
				ID   string `json:"id"`
				Date int64  `json:"date"`
			} `json:"grace"`
		} `json:"result"`
	}
	result := func(a answer) resultJSON {
		t.Helper()
		var r resultJSON
		if a.status != 200 || !bytes.HasPrefix(a.body, []byte(`{"result":{"state":`)) || json.Unmarshal(a.body, &r) != nil {
			t.Fatalf("want a FIRe result: %v", a)
		}
		return r
	}
	v, err := verify.New(verify.Config{Roots: testpki.Pool(s.CA.Root()), TSARoots: testpki.Pool(pki.TSARoot.Cert)})
	if err != nil {
		t.Fatal(err)
	}

	// CAdES, the upgrade asked at op 2 as the clients send it.
	doc := []byte("Resolución de archivo 2026/12.\n")
	id := start("op=1&appid=" + e.appID + "&subjectid=" + citizen + "&cop=sign&algorithm=SHA256withRSA&format=CAdES&properties=&dat=" +
		b64(doc) + "&config=" + config)
	r := result(e.post(e.client, "op=2&appid="+e.appID+"&subjectid="+citizen+"&transactionid="+id+"&upgrade=LT-LEVEL"))
	if r.Result.State != 1 || r.Result.Grace == nil || r.Result.Grace.ID != id {
		t.Fatalf("op 2 within the grace period: %+v, want state 1 with grace id %s", r.Result, id)
	}
	ready := time.UnixMilli(r.Result.Grace.Date)
	if d := time.Until(ready); d < 59*time.Minute || d > time.Hour {
		t.Errorf("grace date %s is %s away, want about an hour", ready, d)
	}
	r = result(e.post(e.client, "op=70&appid="+e.appID+"&docid="+id+"&upgrade=LT-LEVEL"))
	if r.Result.State != 1 || r.Result.Grace == nil || r.Result.Grace.Date != ready.UnixMilli() {
		t.Fatalf("op 70 within the grace period: %+v", r.Result)
	}
	wantError(t, e.post(e.client, "op=71&appid="+e.appID+"&docid="+id), 500, 52)
	wantError(t, e.post(e.client, "op=70&appid="+e.appID+"&docid=nada&upgrade=LT-LEVEL"), 403, 503)
	wantError(t, e.post(e.client, "op=70&appid="+e.appID+"&upgrade=LT-LEVEL"), 400, 34)

	skew.Store(int64(61 * time.Minute))
	e.now, e.clock = time.Now().Add(61*time.Minute), true
	r = result(e.post(e.client, "op=70&appid="+e.appID+"&docid="+id+"&upgrade=LT-LEVEL"))
	if r.Result.State != 0 || r.Result.Upgrade != "LT-LEVEL" || r.Result.Grace != nil {
		t.Fatalf("op 70 after the grace period: %+v", r.Result)
	}
	a := e.post(e.client, "op=71&appid="+e.appID+"&docid="+id)
	if a.status != 200 || a.ct != "" {
		t.Fatalf("op 71: %v", a)
	}
	sum := sha256.Sum256(doc)
	rep, err := v.CAdESDigest(s.Ctx, a.body, crypto.SHA256, sum[:])
	if err != nil || rep.Verdict != verify.Valid || rep.Signatures[0].Level != "B-LT" {
		t.Fatalf("op 71 signature: %v %+v", err, rep)
	}
	wantError(t, e.post(e.client, "op=71&appid="+e.appID+"&docid="+id), 403, 503)

	// PAdES, LTA-LEVEL asked at op 1; the grace period is over when op 2
	// comes (the service clock is an hour ahead of the TSA's).
	pdf, err := os.ReadFile("../signer/testdata/simple.pdf")
	if err != nil {
		t.Fatal(err)
	}
	id = start("op=1&appid=" + e.appID + "&subjectid=" + citizen + "&cop=sign&algorithm=SHA256withRSA&format=PAdES&properties=&upgrade=LTA-LEVEL&dat=" +
		b64(pdf) + "&config=" + config)
	r = result(e.post(e.client, "op=2&appid="+e.appID+"&subjectid="+citizen+"&transactionid="+id))
	if r.Result.State != 0 || r.Result.Upgrade != "LTA-LEVEL" {
		t.Fatalf("op 2 after the grace period: %+v", r.Result)
	}
	a = e.post(e.client, "appid="+e.appID+"&transactionid="+id+"&subjectid="+citizen+"&op=11")
	if a.status != 200 || !bytes.HasPrefix(a.body, pdf) {
		t.Fatalf("op 11: HTTP %d, %d bytes", a.status, len(a.body))
	}
	rep, err = v.PDF(s.Ctx, a.body)
	if err != nil || rep.Verdict != verify.Valid || rep.Signatures[0].Level != "B-LTA" {
		t.Fatalf("op 11 PDF: %v %+v", err, rep)
	}
	if !strings.Contains(string(a.body), "/DSS") {
		t.Error("the PDF has no document security store")
	}
}
