package transaction_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/api/rest/portalhttp"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/signer"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/transaction"
	"github.com/firma-cloud/firma/verify"
	"github.com/firma-cloud/firma/verify/testpki"
)

// TestPolicyAttachedCoSign signs, in one transaction approved once by the
// citizen, an attached CAdES under the portal's default policy (AGE), a
// cosignature and a countersignature of signatures made elsewhere, and a
// cosignature of a signed PDF; then refuses what cannot be made.
// Cost: one HSM token, one test PKI, one transaction of four documents.
func TestPolicyAttachedCoSign(t *testing.T) {
	tok := softhsmtest.New(t)
	pki := testpki.New(t)
	mine, err := signer.ParsePolicy("1.3.6.1.4.1.99999.7", "sha256", "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "https://example.org/p.pdf")
	if err != nil {
		t.Fatal(err)
	}
	defaults := map[string]string{}
	e := newEnvOn(t, tok, func(o *transaction.Options) {
		o.Timestamper = pki.Timestamper(t)
		o.Policies = map[string]*signer.Policy{"mine": mine}
		o.PortalPolicies = defaults
	})
	p := e.portal("Portal", nil)
	defaults[p.ID] = signer.PolicyNameAGE
	citizen := e.advanced(12345678)

	key, chain := pki.User(t, keystore.ECP256, "FIRMANTE EXTERNO")
	attachedDoc := []byte("Resolución con el contenido dentro.\n")
	coDoc, counterDoc := []byte("Convenio entre administraciones.\n"), []byte("Informe del servicio jurídico.\n")
	coSig, err := signer.CAdESDocument(e.ctx, bytes.NewReader(coDoc), key, chain, signer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	counterSig, err := signer.CAdESDocument(e.ctx, bytes.NewReader(counterDoc), key, chain, signer.Options{Level: signer.LevelT, Timestamper: pki.Timestamper(t)})
	if err != nil {
		t.Fatal(err)
	}
	signedPDF, err := signer.PAdES(e.ctx, readFile(t, "simple.pdf"), key, chain, signer.Options{}, signer.PDFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.svc.Create(e.ctx, p, transaction.CreateRequest{CitizenID: citizen, OKURL: okURL, ErrorURL: errURL,
		Documents: []transaction.DocumentInput{
			{Name: "resolucion.txt", MediaType: "text/plain", Content: attachedDoc, Format: signer.FormatCAdES, Attached: true},
			{Name: "convenio.txt", MediaType: "text/plain", Content: coDoc, Format: signer.FormatCAdES, Operation: signer.OpCoSign, Signature: coSig, Policy: "none"},
			{Name: "informe.txt", MediaType: "text/plain", Content: counterDoc, Format: signer.FormatCAdES, Operation: signer.OpCounterSign, Signature: counterSig, Policy: "mine"},
			{Name: "firmado.pdf", MediaType: "application/pdf", Content: signedPDF, Operation: signer.OpCoSign},
		}})
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
	for i, d := range r.Documents {
		if d.Status != transaction.DocSigned {
			t.Fatalf("document %d: %s (%s %s)", i, d.Status, d.ErrorCode, d.Error)
		}
	}
	// The key.used records say which documents were co-signed or
	// counter-signed.
	page, err := e.audit.Query(e.ctx, audit.Filter{Portal: p.ID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for _, rec := range page.Records {
		if rec.Event == audit.KeyUsed && rec.Outcome == audit.Success {
			ops[rec.Details[audit.DetailFormat]+" "+rec.Details[transaction.DetailOperation]] += len(rec.Documents)
		}
	}
	if want := map[string]int{"cades ": 1, "cades cosign": 1, "cades countersign": 1, "pades cosign": 1}; !maps.Equal(ops, want) {
		t.Errorf("key.used documents by format and operation %v, want %v", ops, want)
	}
	dir := t.TempDir()
	roots := writePEM(t, filepath.Join(dir, "roots.pem"), e.ca.Root().Raw, pki.Root.Cert.Raw)
	cmsVerify := func(sig, content []byte) string {
		t.Helper()
		sp := filepath.Join(dir, "sig")
		os.WriteFile(sp, sig, 0o600)
		args := []string{"cms", "-verify", "-binary", "-inform", "DER", "-in", sp, "-CAfile", roots, "-purpose", "any", "-out", filepath.Join(dir, "out")}
		if content != nil {
			os.WriteFile(filepath.Join(dir, "doc"), content, 0o600)
			args = append(args, "-content", filepath.Join(dir, "doc"))
		}
		out, err := run(t, "openssl", args...)
		if err != nil || !strings.Contains(out, "Verification successful") {
			t.Fatalf("openssl cms -verify: %v\n%s", err, out)
		}
		printed, _ := run(t, "openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", sp)
		return printed
	}
	// Attached, with the portal's default policy: no -content.
	if printed := cmsVerify(r.Documents[0].Signature, nil); !strings.Contains(printed, "2.16.724.1.3.1.1.2.1.9") {
		t.Error("the attached signature lacks the portal's default policy (AGE)")
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "out")); !bytes.Equal(got, attachedDoc) {
		t.Errorf("openssl wrote out %q from the attached signature", got)
	}
	// Cosign, with no policy asked: both signers verify in openssl.
	if printed := cmsVerify(r.Documents[1].Signature, coDoc); strings.Contains(printed, "sigPolicyId") {
		t.Error("policy none still put a policy in the cosignature")
	}
	v, err := verify.New(verify.Config{Roots: testpki.Pool(e.ca.Root(), pki.Root.Cert), TSARoots: testpki.Pool(pki.TSARoot.Cert)})
	if err != nil {
		t.Fatal(err)
	}
	citizenCert, err := x509.ParseCertificate(r.Chain[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		sig     []byte
		content []byte
		pdf     bool
		counter int // position the citizen's countersignature countersigns
		policy  string
	}{
		{"cosign", r.Documents[1].Signature, coDoc, false, 0, ""},
		{"countersign", r.Documents[2].Signature, counterDoc, false, 1, "1.3.6.1.4.1.99999.7"},
		{"pdf cosign", r.Documents[3].Signature, nil, true, 0, "2.16.724.1.3.1.1.2.1.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rep *verify.Report
			var err error
			if tc.pdf {
				rep, err = v.PDF(e.ctx, tc.sig)
			} else {
				rep, err = v.CAdES(e.ctx, tc.sig, bytes.NewReader(tc.content))
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Signatures) != 2 {
				t.Fatalf("%d signatures reported, want 2", len(rep.Signatures))
			}
			var found bool
			for _, s := range rep.Signatures {
				var integrity verify.Status
				for _, ck := range s.Checks {
					if ck.Name == verify.CheckIntegrity {
						integrity = ck.Status
					}
				}
				if integrity != verify.Passed {
					t.Errorf("%s: integrity %s: %+v", s.Signer, integrity, s.Checks)
				}
				if s.Signer == citizenCert.Subject.String() {
					found = true
					pol := ""
					if s.Policy != nil {
						pol = s.Policy.OID
					}
					if s.CounterSignatureOf != tc.counter || pol != tc.policy {
						t.Errorf("citizen's signature: countersigns %d, policy %q; want %d, %q", s.CounterSignatureOf, pol, tc.counter, tc.policy)
					}
				}
			}
			if !found {
				t.Error("the citizen's signature is not reported")
			}
		})
	}

	// An attached signature made elsewhere is upgraded without a digest:
	// its content gives it.
	att, err := signer.CAdESDocument(e.ctx, bytes.NewReader(attachedDoc), key, chain, signer.Options{Attached: true})
	if err != nil {
		t.Fatal(err)
	}
	up, err := e.svc.Upgrade(e.ctx, transaction.UpgradeRequest{Signature: att, Level: signer.LevelT})
	if err != nil {
		t.Fatal(err)
	}
	if printed := cmsVerify(up, nil); !strings.Contains(printed, "id-smime-aa-timeStampToken") {
		t.Error("the upgraded attached signature has no signature timestamp")
	}
	_, err = e.svc.Upgrade(e.ctx, transaction.UpgradeRequest{Signature: coSig, Level: signer.LevelT})
	wantCode(t, err, transaction.CodeInvalidRequest) // detached: the digest is needed

	// Refused at creation, before any citizen sees them.
	other := sha256.Sum256([]byte("otro"))
	for _, tc := range []struct {
		name string
		doc  transaction.DocumentInput
		code transaction.Code
	}{
		{"cosign of another document", transaction.DocumentInput{Name: "a", Content: []byte("otro"), Format: signer.FormatCAdES, Operation: signer.OpCoSign, Signature: coSig}, transaction.CodeInvalidRequest},
		{"countersign without the signature", transaction.DocumentInput{Name: "a", Content: coDoc, Format: signer.FormatCAdES, Operation: signer.OpCounterSign}, transaction.CodeInvalidRequest},
		{"countersign raw", transaction.DocumentInput{Name: "a", Digest: other[:], Format: signer.FormatRaw, Operation: signer.OpCounterSign, Signature: coSig}, transaction.CodeUnsupportedFormat},
		{"countersign a PDF", transaction.DocumentInput{Name: "a.pdf", MediaType: "application/pdf", Content: signedPDF, Operation: signer.OpCounterSign}, transaction.CodeUnsupportedFormat},
		{"unknown operation", transaction.DocumentInput{Name: "a", Content: coDoc, Operation: "multisign"}, transaction.CodeInvalidRequest},
		{"unknown policy", transaction.DocumentInput{Name: "a", Content: coDoc, Policy: "other"}, transaction.CodeInvalidRequest},
		{"attached from a digest", transaction.DocumentInput{Name: "a", Digest: other[:], Format: signer.FormatCAdES, Attached: true}, transaction.CodeUnsupportedFormat},
		{"policy on raw", transaction.DocumentInput{Name: "a", Digest: other[:], Format: signer.FormatRaw, Policy: "FirmaAGE"}, transaction.CodeUnsupportedFormat},
		{"signature given to sign", transaction.DocumentInput{Name: "a", Content: coDoc, Signature: coSig}, transaction.CodeInvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Create(e.ctx, p, transaction.CreateRequest{CitizenID: citizen, OKURL: okURL, ErrorURL: errURL, Documents: []transaction.DocumentInput{tc.doc}})
			wantCode(t, err, tc.code)
		})
	}
}

// TestRESTCoSignAttached: the /api/v1 document fields operation,
// signature, policy and attached reach the signature, and their errors
// come back as problems naming the field.
// Cost: one HSM token, one test PKI, one transaction of two documents.
func TestRESTCoSignAttached(t *testing.T) {
	tok := softhsmtest.New(t)
	pki := testpki.New(t)
	e := newEnvOn(t, tok, func(o *transaction.Options) { o.Timestamper = pki.Timestamper(t) })
	pt, err := e.portals.Create(e.ctx, portal.Spec{Name: "Sede", RedirectURLs: []string{okURL, errURL}, IssueAPIKey: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(portalhttp.NewHandler(e.svc, e.portals, nil, 0))
	defer srv.Close()
	rc := &restClient{t: t, url: srv.URL, key: pt.APIKey}
	citizen := e.advanced(12345678)
	key, chain := pki.User(t, keystore.ECP256, "FIRMANTE EXTERNO")
	doc := []byte("Convenio 2026/12.\n")
	first, err := signer.CAdESDocument(e.ctx, bytes.NewReader(doc), key, chain, signer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := portalhttp.CreateJSON{SubjectID: citizen, OKURL: okURL, ErrorURL: errURL, Documents: []portalhttp.DocumentJSON{
		{Name: "convenio.txt", Content: doc, Format: "cades", Operation: "cosign", Signature: first, Policy: "FirmaAGE"},
		{Name: "anexo.txt", Content: []byte("Anexo.\n"), Format: "cades", Attached: true},
	}}
	resp, body := rc.do("POST", "/api/v1/transactions", in, nil)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	var created portalhttp.CreatedJSON
	json.Unmarshal(body, &created)
	sess, code := e.login(created.TransactionID, citizen)
	if _, err := e.approve(created.TransactionID, sess, code); err != nil {
		t.Fatal(err)
	}
	resp, body = rc.do("GET", "/api/v1/transactions/"+created.TransactionID+"/result", nil, nil)
	var res portalhttp.ResultJSON
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &res) != nil || len(res.Documents) != 2 {
		t.Fatalf("result: %d %s", resp.StatusCode, body)
	}
	dir := t.TempDir()
	roots := writePEM(t, filepath.Join(dir, "roots.pem"), e.ca.Root().Raw, pki.Root.Cert.Raw)
	os.WriteFile(filepath.Join(dir, "doc"), doc, 0o600)
	os.WriteFile(filepath.Join(dir, "co"), res.Documents[0].Signature, 0o600)
	os.WriteFile(filepath.Join(dir, "att"), res.Documents[1].Signature, 0o600)
	for _, args := range [][]string{
		{"-content", filepath.Join(dir, "doc"), "-in", filepath.Join(dir, "co")},
		{"-in", filepath.Join(dir, "att")},
	} {
		out, err := run(t, "openssl", append([]string{"cms", "-verify", "-binary", "-inform", "DER", "-CAfile", roots, "-purpose", "any", "-out", os.DevNull}, args...)...)
		if err != nil || !strings.Contains(out, "Verification successful") {
			t.Fatalf("openssl cms -verify %v: %v\n%s", args, err, out)
		}
	}
	v, err := verify.New(verify.Config{Roots: testpki.Pool(e.ca.Root(), pki.Root.Cert), TSARoots: testpki.Pool(pki.TSARoot.Cert)})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := v.CAdES(e.ctx, res.Documents[0].Signature, bytes.NewReader(doc))
	if err != nil || len(rep.Signatures) != 2 {
		t.Fatalf("cosigned CMS: %v, %+v", err, rep)
	}
	policies := 0
	for _, s := range rep.Signatures {
		if s.Policy != nil && s.Policy.Name == signer.PolicyNameAGE {
			policies++
		}
	}
	if policies != 1 {
		t.Errorf("%d signers under the AGE policy, want the citizen's alone", policies)
	}

	for _, tc := range []struct {
		doc   portalhttp.DocumentJSON
		code  transaction.Code
		field string
	}{
		{portalhttp.DocumentJSON{Name: "a", Content: []byte("otro"), Format: "cades", Operation: "cosign", Signature: first}, transaction.CodeInvalidRequest, "documents[0].signature"},
		{portalhttp.DocumentJSON{Name: "a", Content: doc, Operation: "sign-twice"}, transaction.CodeInvalidRequest, "documents[0].operation"},
		{portalhttp.DocumentJSON{Name: "a", Content: doc, Policy: "nope"}, transaction.CodeInvalidRequest, "documents[0].policy"},
	} {
		bad := in
		bad.Documents = []portalhttp.DocumentJSON{tc.doc}
		resp, body := rc.do("POST", "/api/v1/transactions", bad, nil)
		if p := problem(t, resp, body, http.StatusBadRequest, tc.code); p.Field != tc.field {
			t.Errorf("field %q, want %q", p.Field, tc.field)
		}
	}
}
