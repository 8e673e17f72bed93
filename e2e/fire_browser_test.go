package e2e_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/firma-cloud/firma/e2e/stack"
	"github.com/firma-cloud/firma/fire"
)

// approveIn walks the browser from a FIRe redirect URL through sign-in and
// the SMS code (approve) or the reject button, and returns where the
// browser ends: the application's page.
func (e *fireEnv) approveIn(t *testing.T, ctx context.Context, redirect, citizen string, approve bool) string {
	t.Helper()
	do(t, ctx, "open the approval page", chromedp.Navigate(redirect), chromedp.WaitVisible(chromedp.CSS("#citizen")))
	do(t, ctx, "sign in",
		chromedp.SendKeys(chromedp.CSS("#citizen"), citizen),
		chromedp.SendKeys(chromedp.CSS("#password"), stack.Password),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#otp")))
	if approve {
		code, _ := e.s.LastOTP(citizen)
		do(t, ctx, "approve", chromedp.SendKeys(chromedp.CSS("#otp"), code), chromedp.Click(chromedp.CSS("#approve")),
			chromedp.WaitVisible(chromedp.CSS("#app-ok")))
	} else {
		do(t, ctx, "reject", chromedp.Click(chromedp.CSS("#reject")), chromedp.WaitVisible(chromedp.CSS("#app-ko")))
	}
	return get(t, ctx, "location", chromedp.Location())
}

// TestFIReClientsInBrowser drives every FIRe operation as the Java, PHP
// and .NET clients build their bodies, through an HTTPS listener that
// verifies the application's client certificate, with a citizen
// approving (and once rejecting) in headless Chromium; the signatures are
// checked with openssl cms -verify and pdfsig. Cost: one Chromium, three
// approvals, a few seconds.
func TestFIReClientsInBrowser(t *testing.T) {
	s := stack.New(t, stack.Options{})
	citizen := s.Advanced(67890123, "Inés", "Romero Gil")
	e := newFire(t, s)
	ctx := browser(t, chromedp.IgnoreCertErrors)
	dir := t.TempDir()
	root := writePEM(t, filepath.Join(dir, "root.pem"), s.CA.Root().Raw)
	config := javaProps(map[string]string{"redirectOkUrl": e.okURL, "redirectErrorUrl": e.errURL, "docName": "Solicitud de ayuda.txt"})
	doc := []byte("Solicitud de ayuda 2026-77: firmada con FIRe sobre firma.\n")

	// One CAdES signature. op 1 as the Java client builds it.
	a := e.post(e.client, "op=1&appid="+e.appID+"&subjectid="+citizen+"&cop=SIGN&algorithm=SHA256withRSA&format=CAdES"+
		"&properties="+javaProps(map[string]string{"mode": "explicit", "filters": "keyusage.nonrepudiation:true;nonexpired:"})+
		"&dat="+b64(doc)+"&config="+config)
	var started map[string]string
	if a.status != 200 || a.ct != "application/json; charset=UTF-8" || json.Unmarshal(a.body, &started) != nil || len(started) != 2 {
		t.Fatalf("op 1: %v", a)
	}
	id := started["transactionid"]
	if started["redirecturl"] != s.Server.URL+"/sign/"+id {
		t.Fatalf("op 1 redirect %q, want firma's approval page", started["redirecturl"])
	}
	if loc := e.approveIn(t, ctx, started["redirecturl"], citizen, true); loc != e.okURL {
		t.Fatalf("browser back at %s, want %s exactly", loc, e.okURL)
	}
	// op 2 as the PHP client builds it.
	a = e.post(e.client, "op=2&appid="+e.appID+"&subjectid="+citizen+"&transactionid="+id)
	var r2 struct {
		Result struct {
			State int    `json:"state"`
			Prov  string `json:"prov"`
			Cert  []byte `json:"cert"`
		} `json:"result"`
	}
	if a.status != 200 || !strings.HasPrefix(string(a.body), `{"result":{"state":0,`) || json.Unmarshal(a.body, &r2) != nil ||
		r2.Result.Prov != "clavefirma" || len(r2.Result.Cert) == 0 {
		t.Fatalf("op 2: %v", a)
	}
	// op 11 as the .NET client builds it.
	a = e.post(e.client, "appid="+e.appID+"&transactionid="+id+"&subjectid="+citizen+"&op=11")
	if a.status != 200 || a.ct != "" || len(a.body) == 0 {
		t.Fatalf("op 11: HTTP %d %q, %d bytes", a.status, a.ct, len(a.body))
	}
	openssl(t, "Verification successful", "cms", "-verify", "-binary", "-inform", "DER", "-in", write(t, filepath.Join(dir, "one.p7s"), a.body),
		"-content", write(t, filepath.Join(dir, "one.txt"), doc), "-CAfile", root, "-purpose", "any", "-out", os.DevNull)
	wantError(t, e.post(e.client, "appid="+e.appID+"&transactionid="+id+"&subjectid="+citizen+"&op=11"), 403, 503)

	// A batch: CAdES by default, one PAdES document.
	pdf, err := os.ReadFile("../signer/testdata/simple.pdf")
	if err != nil {
		t.Fatal(err)
	}
	docs := []struct {
		id      string
		content []byte
	}{{"solicitud-1", doc}, {"anexo.pdf", pdf}, {"resguardo", []byte("Resguardo 2026-77\n")},
		{"registro.xml", []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<registro><asiento n="2026-77">Alta</asiento></registro>`)}}
	// op 5 as the .NET client builds it.
	a = e.post(e.client, "appid="+e.appID+"&subjectid="+citizen+"&cop=sign&op=5&algorithm=SHA256withRSA&format=CAdES&properties=&upgrade=&config="+config)
	if a.status != 200 || json.Unmarshal(a.body, &started) != nil || started["transactionid"] == "" {
		t.Fatalf("op 5: %v", a)
	}
	batch := started["transactionid"]
	// op 6 as the PHP client builds it, then its custom form as Java does.
	a = e.post(e.client, "op=6&appid="+e.appID+"&subjectid="+citizen+"&transactionid="+batch+"&docid=solicitud-1&dat="+b64(doc)+
		"&config="+phpProps(map[string]string{"docName": "Solicitud"}))
	if a.status != 200 || string(a.body) != "true" {
		t.Fatalf("op 6: %v", a)
	}
	a = e.post(e.client, "op=6&appid="+e.appID+"&subjectid="+citizen+"&transactionid="+batch+"&docid=anexo.pdf&config=&dat="+b64(pdf)+
		"&cop=sign&format=PAdES&properties=&upgrade=")
	if a.status != 200 || string(a.body) != "true" {
		t.Fatalf("op 6 (custom): %v", a)
	}
	// FIRe's NONE: a bare PKCS#1 (or ECDSA) signature of the data.
	a = e.post(e.client, "op=6&appid="+e.appID+"&subjectid="+citizen+"&transactionid="+batch+"&docid=resguardo&config=&dat="+b64(docs[2].content)+
		"&cop=sign&format=NONE&properties=&upgrade=")
	if a.status != 200 || string(a.body) != "true" {
		t.Fatalf("op 6 (NONE): %v", a)
	}
	// XAdES (enveloped in the XML document), at LT-LEVEL.
	a = e.post(e.client, "op=6&appid="+e.appID+"&subjectid="+citizen+"&transactionid="+batch+"&docid=registro.xml&config=&dat="+b64(docs[3].content)+
		"&cop=sign&format=XAdES&properties=&upgrade=")
	if a.status != 200 || string(a.body) != "true" {
		t.Fatalf("op 6 (XAdES): %v", a)
	}
	// op 10 before the batch is signed and recovered.
	wantError(t, e.post(e.client, "appid="+e.appID+"&subjectid="+citizen+"&transactionid="+batch+"&docid=anexo.pdf&op=10"), 500, 49)
	// op 7 as the .NET client builds it.
	a = e.post(e.client, "appid="+e.appID+"&subjectid="+citizen+"&transactionid="+batch+"&op=7&stoponerror=False")
	if a.status != 200 || json.Unmarshal(a.body, &started) != nil || started["redirecturl"] != s.Server.URL+"/sign/"+batch {
		t.Fatalf("op 7: %v", a)
	}
	if loc := e.approveIn(t, ctx, started["redirecturl"], citizen, true); loc != e.okURL {
		t.Fatalf("browser back at %s, want %s exactly", loc, e.okURL)
	}
	// op 9 as Java builds it: Java's Float.toString.
	if a = e.post(e.client, "op=9&appid="+e.appID+"&subjectid="+citizen+"&transactionid="+batch); a.status != 200 || string(a.body) != "1.0" {
		t.Fatalf("op 9: %v", a)
	}
	// op 8 as the .NET client builds it, op repeated.
	a = e.post(e.client, "appid="+e.appID+"&subjectid="+citizen+"&transactionid="+batch+"&op=8&op=8")
	var r8 struct {
		Prov  string `json:"prov"`
		Cert  string `json:"cert"`
		Batch []struct {
			ID     string `json:"id"`
			OK     bool   `json:"ok"`
			Dt     string `json:"dt"`
			Errorm string `json:"errorm"`
		} `json:"batch"`
	}
	if a.status != 200 || json.Unmarshal(a.body, &r8) != nil || r8.Prov != "clavefirma" || r8.Cert == "" || len(r8.Batch) != len(docs) ||
		r8.Batch[0].ID != "solicitud-1" || !r8.Batch[0].OK || r8.Batch[1].ID != "anexo.pdf" || !r8.Batch[1].OK || r8.Batch[1].Dt != "" {
		t.Fatalf("op 8: %v", a)
	}
	if _, err := base64.StdEncoding.DecodeString(r8.Cert); err != nil {
		t.Fatalf("op 8 cert: %v", err)
	}
	wantError(t, e.post(e.client, "op=8&appid="+e.appID+"&subjectid="+citizen+"&transactionid="+batch), 500, 54)
	wantError(t, e.post(e.client, "op=10&appid="+e.appID+"&subjectid="+citizen+"&transactionid="+batch+"&docid=nope"), 500, 53)
	for i, d := range docs {
		docID, content := d.id, d.content
		if i == 1 {
			// Another node, whose results cache op 8 did not fill, reads
			// them from the store; the hand-out is this node's too.
			other, err := fire.New(fire.Options{Store: e.s.DB, Transactions: e.s.Tx, Portals: e.s.Portals, ReturnBase: e.srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			app, err := other.Authenticate(e.s.Ctx, e.appID, e.cert)
			if err != nil {
				t.Fatal(err)
			}
			sig, err := other.RecoverBatchSign(e.s.Ctx, app, citizen, batch, docID)
			if err != nil || len(sig) == 0 {
				t.Fatalf("op 10 %s on another node: %v", docID, err)
			}
			wantError(t, e.post(e.client, "op=10&appid="+e.appID+"&subjectid="+citizen+"&transactionid="+batch+"&docid="+docID), 500, 51)
			a = answer{status: 200, body: sig}
		} else {
			a = e.post(e.client, "op=10&appid="+e.appID+"&subjectid="+citizen+"&transactionid="+batch+"&docid="+docID)
		}
		if a.status != 200 || len(a.body) == 0 {
			t.Fatalf("op 10 %s: HTTP %d %q", docID, a.status, a.ct)
		}
		if i == 0 {
			// Handed out once.
			wantError(t, e.post(e.client, "op=10&appid="+e.appID+"&subjectid="+citizen+"&transactionid="+batch+"&docid="+docID), 500, 51)
		}
		if docID == "resguardo" {
			cert, _ := base64.StdEncoding.DecodeString(r8.Cert)
			leaf := writePEM(t, filepath.Join(dir, "leaf.pem"), cert)
			pub := filepath.Join(dir, "pub.pem")
			openssl(t, "", "x509", "-in", leaf, "-pubkey", "-noout", "-out", pub)
			openssl(t, "Verified OK", "dgst", "-sha256", "-verify", pub, "-signature", write(t, filepath.Join(dir, "raw.sig"), a.body),
				write(t, filepath.Join(dir, "raw.txt"), content))
			continue
		}
		if strings.HasSuffix(docID, ".xml") {
			chain := writePEM(t, filepath.Join(dir, "issuing.pem"), s.CA.Issuing().Raw)
			cmd := exec.Command("xmlsec1", "--verify", "--trusted-pem", root, "--untrusted-pem", chain,
				"--enabled-reference-uris", "empty,same-doc", "--id-attr:Id", "http://uri.etsi.org/01903/v1.3.2#:SignedProperties",
				write(t, filepath.Join(dir, docID), a.body))
			if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "OK") {
				t.Fatalf("xmlsec1 on the FIRe XAdES: %v\n%s", err, out)
			}
			continue
		}
		if strings.HasSuffix(docID, ".pdf") {
			out, err := exec.Command("pdfsig", write(t, filepath.Join(dir, "signed.pdf"), a.body)).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "Signature #1") || !strings.Contains(string(out), "Signature Validation: Signature is Valid.") {
				t.Fatalf("pdfsig: %v\n%s", err, out)
			}
			continue
		}
		openssl(t, "Verification successful", "cms", "-verify", "-binary", "-inform", "DER", "-in", write(t, filepath.Join(dir, docID+".p7s"), a.body),
			"-content", write(t, filepath.Join(dir, docID), content), "-CAfile", root, "-purpose", "any", "-out", os.DevNull)
	}
	// Every document handed out: the FIRe transaction is gone.
	wantError(t, e.post(e.client, "op=10&appid="+e.appID+"&subjectid="+citizen+"&transactionid="+batch+"&docid=solicitud-1"), 403, 503)

	// The citizen rejects. op 1 as the .NET client builds it: leading &.
	a = e.post(e.client, "&op=1&appid="+e.appID+"&subjectid="+citizen+"&cop=sign&algorithm=SHA512withRSA&format=CAdES&properties=&dat="+
		b64(doc)+"&config="+config)
	if a.status != 200 || json.Unmarshal(a.body, &started) != nil {
		t.Fatalf(".NET op 1: %v", a)
	}
	id = started["transactionid"]
	if loc := e.approveIn(t, ctx, started["redirecturl"], citizen, false); loc != e.errURL {
		t.Fatalf("browser back at %s, want %s exactly", loc, e.errURL)
	}
	// op 99 as the .NET client builds it: HTTP 200, the error inside.
	a = e.post(e.client, "op=99&appid="+e.appID+"&subjectid="+citizen+"&transactionid="+id)
	if a.status != 200 || !strings.HasPrefix(string(a.body), `{"result":{"state":-1,"ermsg":"`) ||
		!strings.HasSuffix(string(a.body), `,"ercod":507,"prov":"clavefirma"}}`) {
		t.Fatalf("op 99: %v", a)
	}
	// The same audit records as any transaction: a recorded key use for
	// each of the five documents signed (one alone, four in the batch).
	usage, err := s.Audit.KeyUsage(s.Ctx, citizen, "", time.Time{}, time.Time{})
	var sigs, ndocs int64
	for _, u := range usage {
		sigs, ndocs = sigs+u.Signatures, ndocs+u.Documents
	}
	if err != nil || sigs != 5 || ndocs != 5 {
		t.Fatalf("audit key usage: %d signatures of %d documents (%v), want 5 of 5", sigs, ndocs, err)
	}
	// And it is gone after op 99.
	if a = e.post(e.client, "op=99&appid="+e.appID+"&subjectid="+citizen+"&transactionid="+id); !strings.Contains(string(a.body), `"ercod":503`) {
		t.Fatalf("op 99 again: %v", a)
	}
}
