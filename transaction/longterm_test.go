package transaction_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/api/rest/portalhttp"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signer/ltv"
	"github.com/firma-cloud/firma/signer/xades"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/transaction"
	"github.com/firma-cloud/firma/verify/testpki"
)

// TestLongTermLevels asks for B-LT and B-LTA through the transaction
// service: PAdES ones get a DSS (pdfsig, qpdf check them), CAdES ones carry the validation material of the
// citizen's chain (the built-in CA's OCSP and CRL, asked in process) and
// of the TSA's, openssl verifies them, and the level is refused when no
// validation material can be gathered.
func TestLongTermLevels(t *testing.T) {
	xmlDoc := []byte("<Solicitud xmlns=\"urn:example:registro\"><Asunto>Licencia de obras</Asunto></Solicitud>")
	tok := softhsmtest.New(t)
	pki := testpki.New(t)
	var e *env
	e = newEnvOn(t, tok, func(o *transaction.Options) {
		o.Timestamper = pki.Timestamper(t)
		if e != nil {
			o.Validation = e.ca.Gatherer()
		}
	})
	e.restart() // now with e.ca to gather from
	p := e.portal("Portal", nil)
	citizen := e.advanced(12345678)
	for _, level := range []signer.Level{signer.LevelLT, signer.LevelLTA} {
		t.Run(string(level), func(t *testing.T) {
			txt, pdf := readFile(t, "resolucion.txt"), readFile(t, "simple.pdf")
			c, err := e.svc.Create(e.ctx, p, transaction.CreateRequest{CitizenID: citizen, Level: level, OKURL: okURL, ErrorURL: errURL,
				Documents: []transaction.DocumentInput{{Name: "resolucion.txt", MediaType: "text/plain", Content: txt, Format: signer.FormatCAdES},
					{Name: "solicitud.pdf", MediaType: "application/pdf", Content: pdf},
					{Name: "solicitud.xml", MediaType: "application/xml", Content: xmlDoc, Format: signer.FormatXAdES}}})
			if err != nil {
				t.Fatal(err)
			}
			sess, code := e.login(c.ID, citizen)
			if _, err := e.approve(c.ID, sess, code); err != nil {
				t.Fatal(err)
			}
			r, err := e.svc.Results(e.ctx, p.ID, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			verifyResults(t, e, r, [][]byte{txt, pdf, xmlDoc})
			// XAdES: the citizen's and the TSA's revocation data, and at
			// B-LTA an archive timestamp.
			vs, err := xades.Verify(r.Documents[2].Signature, nil, xades.Limits{})
			if err != nil || len(vs) != 1 || vs[0].Err != nil || string(vs[0].Level()) != string(level) || len(vs[0].OCSP) < 2 {
				t.Errorf("XAdES %s: %v %+v", level, err, vs)
			}
			if !bytes.Contains(r.Documents[1].Signature, []byte("/DSS")) {
				t.Errorf("%s PDF without a document security store", level)
			}
			d := r.Documents[0]
			if !d.Timestamped {
				t.Errorf("%s result not marked timestamped", level)
			}
			path := filepath.Join(t.TempDir(), "sig.p7s")
			os.WriteFile(path, d.Signature, 0o600)
			out, err := run(t, "openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", path)
			if err != nil {
				t.Fatal(err)
			}
			// Two OCSP responses (citizen from the built-in CA, TSA from
			// the test PKI) and a CRL (the issuing CA, from the root's).
			if n := strings.Count(out, "otherRevInfoFormat: id-pkix-ocsp-response") + strings.Count(out, "1.3.6.1.5.5.7.16.2"); n < 2 {
				t.Errorf("%d OCSP responses in crls, want 2:\n%s", n, out)
			}
			if !strings.Contains(out, "tbsCertList") && !strings.Contains(out, "crl:") {
				t.Errorf("no CRL in crls")
			}
			if level == signer.LevelLTA && !strings.Contains(out, "0.4.0.1733.2.4") {
				t.Errorf("no archive-time-stamp-v3 attribute")
			}
		})
	}
}

func TestLongTermWithoutValidationRefused(t *testing.T) {
	tok := softhsmtest.New(t)
	pki := testpki.New(t)
	e := newEnvOn(t, tok, func(o *transaction.Options) { o.Timestamper = pki.Timestamper(t) })
	p := e.portal("Portal", nil)
	citizen := e.advanced(12345678)
	_, err := e.svc.Create(e.ctx, p, transaction.CreateRequest{CitizenID: citizen, Level: signer.LevelLT, OKURL: okURL, ErrorURL: errURL,
		Documents: []transaction.DocumentInput{{Name: "b.txt", Content: []byte("b")}}})
	wantCode(t, err, transaction.CodeInvalidRequest)
}

// TestUpgrade raises a B-B signature made elsewhere (the test PKI's
// signer) to B-LTA through the service, which openssl then verifies, and
// refuses what it cannot upgrade.
func TestUpgrade(t *testing.T) {
	tok := softhsmtest.New(t)
	pki := testpki.New(t)
	e := newEnvOn(t, tok, func(o *transaction.Options) {
		o.Timestamper = pki.Timestamper(t)
		o.Validation = &ltv.Gatherer{}
	})
	key, chain := pki.User(t, keystore.ECP256, "FIRMANTE EXTERNO")
	doc := []byte("Contrato 2026/55.\n")
	sum := sha256.Sum256(doc)
	sig, err := signer.CAdES(e.ctx, sum[:], key, chain, signer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	up, err := e.svc.Upgrade(e.ctx, transaction.UpgradeRequest{Signature: sig, Digest: sum[:], Level: signer.LevelLTA})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "sig"), up, 0o600)
	os.WriteFile(filepath.Join(dir, "doc"), doc, 0o600)
	root := writePEM(t, filepath.Join(dir, "root.pem"), pki.Root.Cert.Raw)
	out, err := run(t, "openssl", "cms", "-verify", "-binary", "-content", filepath.Join(dir, "doc"), "-inform", "DER", "-in", filepath.Join(dir, "sig"),
		"-CAfile", root, "-purpose", "any", "-out", os.DevNull)
	if err != nil || !strings.Contains(out, "Verification successful") {
		t.Fatalf("openssl cms -verify of the upgraded signature: %v\n%s", err, out)
	}
	printed, _ := run(t, "openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", filepath.Join(dir, "sig"))
	for _, want := range []string{"id-smime-aa-timeStampToken", "0.4.0.1733.2.4"} {
		if !strings.Contains(printed, want) {
			t.Errorf("upgraded signature lacks %s", want)
		}
	}
	// The same through REST, behind the portal's API key.
	pt, err := e.portals.Create(e.ctx, portal.Spec{Name: "Sede", RedirectURLs: []string{okURL, errURL}, IssueAPIKey: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(portalhttp.NewHandler(e.svc, e.portals, nil, 0))
	defer srv.Close()
	in := portalhttp.UpgradeJSON{Signature: sig, Digest: sum[:], Level: "B-LT"}
	resp, body := (&restClient{t: t, url: srv.URL}).do("POST", "/api/v1/signatures/upgrade", in, nil)
	problem(t, resp, body, http.StatusUnauthorized, "unauthenticated")
	rc := &restClient{t: t, url: srv.URL, key: pt.APIKey}
	resp, body = rc.do("POST", "/api/v1/signatures/upgrade", in, nil)
	var got portalhttp.UpgradedJSON
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &got) != nil || got.Level != "B-LT" {
		t.Fatalf("REST upgrade: %d %s", resp.StatusCode, body)
	}
	os.WriteFile(filepath.Join(dir, "sig"), got.Signature, 0o600)
	if out, err := run(t, "openssl", "cms", "-verify", "-binary", "-content", filepath.Join(dir, "doc"), "-inform", "DER", "-in", filepath.Join(dir, "sig"),
		"-CAfile", root, "-purpose", "any", "-out", os.DevNull); err != nil || !strings.Contains(out, "Verification successful") {
		t.Fatalf("openssl cms -verify of the REST upgrade: %v\n%s", err, out)
	}
	in.Level = "B-XL"
	resp, body = rc.do("POST", "/api/v1/signatures/upgrade", in, nil)
	problem(t, resp, body, http.StatusBadRequest, transaction.CodeInvalidRequest)

	// A PDF signed elsewhere at B-T: B-LT through the service, then B-LTA
	// through REST, each an incremental update (signer's TestExtendPAdES
	// has pdfsig and qpdf on the same path).
	pdf, err := signer.PAdES(e.ctx, readFile(t, "simple.pdf"), key, chain, signer.Options{Level: signer.LevelT, Timestamper: pki.Timestamper(t)}, signer.PDFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ltPDF, err := e.svc.Upgrade(e.ctx, transaction.UpgradeRequest{Signature: pdf, Level: signer.LevelLT})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(ltPDF, pdf) || !bytes.Contains(ltPDF[len(pdf):], []byte("/DSS")) {
		t.Fatal("PAdES B-LT upgrade: not an incremental update adding a /DSS")
	}
	resp, body = rc.do("POST", "/api/v1/signatures/upgrade", portalhttp.UpgradeJSON{Signature: ltPDF, Level: "B-LTA", Format: "PAdES"}, nil)
	got = portalhttp.UpgradedJSON{}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &got) != nil || got.Level != "B-LTA" {
		t.Fatalf("REST PAdES upgrade: %d %s", resp.StatusCode, body)
	}
	if !bytes.HasPrefix(got.Signature, ltPDF) || !bytes.Contains(got.Signature[len(ltPDF):], []byte("/ETSI.RFC3161")) {
		t.Fatal("PAdES B-LTA upgrade: not an incremental update adding a document timestamp")
	}
	bbPDF, err := signer.PAdES(e.ctx, readFile(t, "simple.pdf"), key, chain, signer.Options{}, signer.PDFOptions{})
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		req  transaction.UpgradeRequest
	}{
		{"B-B asked", transaction.UpgradeRequest{Signature: sig, Digest: sum[:], Level: signer.LevelB}},
		{"short digest", transaction.UpgradeRequest{Signature: sig, Digest: sum[:5], Level: signer.LevelLT}},
		{"not a signature", transaction.UpgradeRequest{Signature: []byte("nada"), Digest: sum[:], Level: signer.LevelLT}},
		{"B-B PDF", transaction.UpgradeRequest{Signature: bbPDF, Level: signer.LevelLT}},
		{"unsigned PDF", transaction.UpgradeRequest{Signature: readFile(t, "simple.pdf"), Level: signer.LevelLT}},
		{"XAdES format", transaction.UpgradeRequest{Signature: sig, Level: signer.LevelLT, Format: signer.FormatXAdES}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Upgrade(e.ctx, tc.req)
			wantCode(t, err, transaction.CodeInvalidRequest)
		})
	}
}

// TestUpgradeGrace: B-LT is refused until the grace period after the
// signature timestamp has passed, and for a signature with none.
func TestUpgradeGrace(t *testing.T) {
	tok := softhsmtest.New(t)
	pki := testpki.New(t)
	e := newEnvOn(t, tok, func(o *transaction.Options) {
		o.Timestamper = pki.Timestamper(t)
		o.Validation = &ltv.Gatherer{}
		o.UpgradeGrace = time.Hour
	})
	key, chain := pki.User(t, keystore.ECP256, "FIRMANTE EXTERNO")
	sum := sha256.Sum256([]byte("Contrato 2026/56.\n"))
	bb, err := signer.CAdES(e.ctx, sum[:], key, chain, signer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Upgrade(e.ctx, transaction.UpgradeRequest{Signature: bb, Digest: sum[:], Level: signer.LevelLT})
	wantCode(t, err, transaction.CodeWrongState)
	bt, err := e.svc.Upgrade(e.ctx, transaction.UpgradeRequest{Signature: bb, Digest: sum[:], Level: signer.LevelT})
	if err != nil {
		t.Fatalf("B-T needs no grace: %v", err)
	}
	_, err = e.svc.Upgrade(e.ctx, transaction.UpgradeRequest{Signature: bt, Digest: sum[:], Level: signer.LevelLT})
	wantCode(t, err, transaction.CodeWrongState)
	pdf, err := signer.PAdES(e.ctx, readFile(t, "simple.pdf"), key, chain, signer.Options{Level: signer.LevelT, Timestamper: pki.Timestamper(t)}, signer.PDFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Upgrade(e.ctx, transaction.UpgradeRequest{Signature: pdf, Level: signer.LevelLTA})
	wantCode(t, err, transaction.CodeWrongState)
	e.clock.Add(time.Hour + time.Minute)
	if _, err := e.svc.Upgrade(e.ctx, transaction.UpgradeRequest{Signature: bt, Digest: sum[:], Level: signer.LevelLT}); err != nil {
		t.Fatalf("after the grace period: %v", err)
	}
	if _, err := e.svc.Upgrade(e.ctx, transaction.UpgradeRequest{Signature: pdf, Level: signer.LevelLTA}); err != nil {
		t.Fatalf("PDF after the grace period: %v", err)
	}
}

// TestUpgradeXAdES raises XAdES signatures made elsewhere through the
// same Upgrade as CAdES: an enveloped B-B to B-LTA, a detached B-T to
// B-LT with its document; a detached one without its document is refused
// for B-LTA, as is a signature over a changed document.
func TestUpgradeXAdES(t *testing.T) {
	tok := softhsmtest.New(t)
	pki := testpki.New(t)
	e := newEnvOn(t, tok, func(o *transaction.Options) {
		o.Timestamper = pki.Timestamper(t)
		o.Validation = &ltv.Gatherer{}
	})
	key, chain := pki.User(t, keystore.ECP256, "FIRMANTE EXTERNO")
	xml := []byte("<Contrato xmlns=\"urn:example\"><Numero>2026/57</Numero></Contrato>")
	bb, err := xades.Sign(e.ctx, xml, key, chain, xades.Options{})
	if err != nil {
		t.Fatal(err)
	}
	up, err := e.svc.Upgrade(e.ctx, transaction.UpgradeRequest{Signature: bb, Level: signer.LevelLTA})
	if err != nil {
		t.Fatal(err)
	}
	vs, err := xades.Verify(up, nil, xades.Limits{})
	if err != nil || vs[0].Err != nil || vs[0].Level() != xades.LevelLTA || !bytes.HasPrefix(up, bb[:bytes.LastIndex(bb, []byte("</xades:QualifyingProperties>"))]) {
		t.Fatalf("upgraded: %v %+v", err, vs)
	}
	doc := []byte("anexo separado\n")
	bt, err := xades.Sign(e.ctx, doc, key, chain, xades.Options{Packaging: xades.Detached, Name: "anexo.txt", Level: xades.LevelT, Timestamper: pki.Timestamper(t)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Upgrade(e.ctx, transaction.UpgradeRequest{Signature: bt, Level: signer.LevelLTA})
	wantCode(t, err, transaction.CodeInvalidRequest)
	lt, err := e.svc.Upgrade(e.ctx, transaction.UpgradeRequest{Signature: bt, Level: signer.LevelLT, Content: doc})
	if err != nil {
		t.Fatal(err)
	}
	vs, err = xades.Verify(lt, func(string) ([]byte, bool) { return doc, true }, xades.Limits{})
	if err != nil || vs[0].Err != nil || vs[0].Level() != xades.LevelLT {
		t.Fatalf("detached upgraded: %v %+v", err, vs)
	}
	_, err = e.svc.Upgrade(e.ctx, transaction.UpgradeRequest{Signature: bytes.Replace(bb, []byte("2026/57"), []byte("2026/58"), 1), Level: signer.LevelT})
	wantCode(t, err, transaction.CodeInvalidRequest)

	// The same through REST: the detached signature with its document.
	pt, err := e.portals.Create(e.ctx, portal.Spec{Name: "Sede", RedirectURLs: []string{okURL, errURL}, IssueAPIKey: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(portalhttp.NewHandler(e.svc, e.portals, nil, 0))
	defer srv.Close()
	rc := &restClient{t: t, url: srv.URL, key: pt.APIKey}
	resp, body := rc.do("POST", "/api/v1/signatures/upgrade", portalhttp.UpgradeJSON{Signature: bt, Content: doc, Level: "B-LT"}, nil)
	var got portalhttp.UpgradedJSON
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &got) != nil || got.Level != "B-LT" {
		t.Fatalf("REST upgrade: %d %s", resp.StatusCode, body)
	}
	if vs, err := xades.Verify(got.Signature, func(string) ([]byte, bool) { return doc, true }, xades.Limits{}); err != nil || vs[0].Err != nil || vs[0].Level() != xades.LevelLT {
		t.Fatalf("REST upgraded: %v %+v", err, vs)
	}
	resp, body = rc.do("POST", "/api/v1/signatures/upgrade", portalhttp.UpgradeJSON{Signature: bt, Level: "B-LTA"}, nil)
	problem(t, resp, body, http.StatusBadRequest, transaction.CodeInvalidRequest)
}
