package e2e_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/firma-cloud/firma/e2e/stack"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/verify"
)

// TestFIReCoSignCounterSignPolicy: a FIRe batch whose documents are a
// cosignature (with expPolicy=FirmaAGE) and a countersignature of CAdES
// signatures made elsewhere, an attached CAdES (mode=implicit) and a
// cosigned PDF, approved once in the browser; openssl, pdfsig and firma's
// verifier check every signer. Cost: one Chromium, one approval, a few
// seconds.
func TestFIReCoSignCounterSignPolicy(t *testing.T) {
	s := stack.New(t, stack.Options{})
	citizen := s.Advanced(67890124, "Irene", "Solís Vega")
	e := newFire(t, s)
	ctx := browser(t, chromedp.IgnoreCertErrors)
	dir := t.TempDir()
	// The earlier signer: a key and self-signed certificate of their own,
	// outside firma.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "FIRMANTE PREVIO"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageCertSign,
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	earlier, _ := x509.ParseCertificate(der)
	chain := []*x509.Certificate{earlier}
	roots := writePEM(t, filepath.Join(dir, "roots.pem"), s.CA.Root().Raw, der)
	coDoc, counterDoc, implicitDoc := []byte("Convenio 2026-5.\n"), []byte("Informe 2026-6.\n"), []byte("Resolución 2026-7.\n")
	coSig, err := signer.CAdESDocument(s.Ctx, bytes.NewReader(coDoc), key, chain, signer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	counterSig, err := signer.CAdESDocument(s.Ctx, bytes.NewReader(counterDoc), key, chain, signer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pdf, err := os.ReadFile("../signer/testdata/simple.pdf")
	if err != nil {
		t.Fatal(err)
	}
	signedPDF, err := signer.PAdES(s.Ctx, pdf, key, chain, signer.Options{}, signer.PDFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	config := javaProps(map[string]string{"redirectOkUrl": e.okURL, "redirectErrorUrl": e.errURL})
	a := e.post(e.client, "op=5&appid="+e.appID+"&subjectid="+citizen+"&cop=sign&algorithm=SHA256withRSA&format=CAdES&properties=&upgrade=&config="+config)
	var started map[string]string
	if a.status != 200 || json.Unmarshal(a.body, &started) != nil {
		t.Fatalf("op 5: %v", a)
	}
	batch := started["transactionid"]
	for _, d := range []struct {
		id, cop, format, props string
		dat                    []byte
	}{
		{"cofirma", "cosign", "CAdES", javaProps(map[string]string{"expPolicy": "FirmaAGE"}), coSig},
		{"contrafirma", "countersign", "CAdES", "", counterSig},
		{"implicita", "sign", "CAdES", javaProps(map[string]string{"mode": "implicit"}), implicitDoc},
		{"cofirma.pdf", "cosign", "PAdES", "", signedPDF},
	} {
		a = e.post(e.client, "op=6&appid="+e.appID+"&subjectid="+citizen+"&transactionid="+batch+"&docid="+d.id+"&config=&dat="+b64(d.dat)+
			"&cop="+d.cop+"&format="+d.format+"&properties="+d.props+"&upgrade=")
		if a.status != 200 || string(a.body) != "true" {
			t.Fatalf("op 6 %s: %v", d.id, a)
		}
	}
	a = e.post(e.client, "op=7&appid="+e.appID+"&subjectid="+citizen+"&transactionid="+batch)
	if a.status != 200 || json.Unmarshal(a.body, &started) != nil {
		t.Fatalf("op 7: %v", a)
	}
	if loc := e.approveIn(t, ctx, started["redirecturl"], citizen, true); loc != e.okURL {
		t.Fatalf("browser back at %s, want %s", loc, e.okURL)
	}
	if a = e.post(e.client, "op=8&appid="+e.appID+"&subjectid="+citizen+"&transactionid="+batch); a.status != 200 || strings.Contains(string(a.body), `"ok":false`) {
		t.Fatalf("op 8: %v", a)
	}
	get10 := func(id string) []byte {
		a := e.post(e.client, "op=10&appid="+e.appID+"&subjectid="+citizen+"&transactionid="+batch+"&docid="+id)
		if a.status != 200 || len(a.body) == 0 {
			t.Fatalf("op 10 %s: %v", id, a)
		}
		return a.body
	}
	// Cosign: both signers in openssl, the citizen's under the AGE policy.
	co := write(t, filepath.Join(dir, "co.p7s"), get10("cofirma"))
	openssl(t, "Verification successful", "cms", "-verify", "-binary", "-inform", "DER", "-in", co, "-content", write(t, filepath.Join(dir, "co.txt"), coDoc),
		"-CAfile", roots, "-purpose", "any", "-out", os.DevNull)
	if out, _ := exec.Command("openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", co).CombinedOutput(); !strings.Contains(string(out), "2.16.724.1.3.1.1.2.1.9") {
		t.Error("the cosignature lacks the AGE policy")
	}
	// Countersign: firma's verifier reports the citizen countersigning.
	pool := x509.NewCertPool()
	pool.AddCert(s.CA.Root())
	pool.AddCert(earlier)
	v, err := verify.New(verify.Config{Roots: pool})
	if err != nil {
		t.Fatal(err)
	}
	r, err := v.CAdES(s.Ctx, get10("contrafirma"), bytes.NewReader(counterDoc))
	if err != nil || len(r.Signatures) != 2 || r.Signatures[1].CounterSignatureOf != 1 || !strings.Contains(r.Signatures[1].Signer, "SOLÍS") &&
		!strings.Contains(r.Signatures[1].Signer, "Solís") {
		t.Fatalf("countersignature: %v %+v", err, r)
	}
	for _, sg := range r.Signatures {
		if sg.Checks[0].Name != verify.CheckIntegrity || sg.Checks[0].Status != verify.Passed {
			t.Errorf("%s: %+v", sg.Signer, sg.Checks)
		}
	}
	// Attached: verified with no -content, the document comes out.
	out := filepath.Join(dir, "implicit.out")
	openssl(t, "Verification successful", "cms", "-verify", "-binary", "-inform", "DER", "-in", write(t, filepath.Join(dir, "implicit.p7s"), get10("implicita")),
		"-CAfile", roots, "-purpose", "any", "-out", out)
	if got, _ := os.ReadFile(out); !bytes.Equal(got, implicitDoc) {
		t.Errorf("attached content %q", got)
	}
	// The PDF: both signatures valid in pdfsig.
	pout, _ := exec.Command("pdfsig", write(t, filepath.Join(dir, "co.pdf"), get10("cofirma.pdf"))).CombinedOutput()
	if n := strings.Count(string(pout), "Signature Validation: Signature is Valid."); n != 2 {
		t.Fatalf("pdfsig: %d valid signatures, want 2\n%s", n, pout)
	}
}
