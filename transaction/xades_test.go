package transaction_test

import (
	"bytes"
	"crypto/sha256"
	"os"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signer/xades"
	"github.com/firma-cloud/firma/transaction"
)

// TestApproveSignsXAdES: a transaction with an XML document and a text
// document in format xades signs the first enveloped and the second
// detached, and two more in ASiC-S (CAdES) and ASiC-E (XAdES) containers,
// through the one signing path; xmlsec1, openssl and unzip check them.
func TestApproveSignsXAdES(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Registro electrónico", nil)
	citizen := e.advanced(12345678)
	xml := []byte("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Solicitud xmlns=\"urn:example:registro\">\n  <Asunto>Alta en el padrón</Asunto>\n</Solicitud>\n")
	txt := []byte("carta de presentación\n")
	c := e.create(p, citizen,
		transaction.DocumentInput{Name: "solicitud.xml", MediaType: "application/xml", Content: xml, Format: signer.FormatXAdES},
		transaction.DocumentInput{Name: "carta.txt", MediaType: "text/plain", Content: txt, Format: signer.FormatXAdES},
		transaction.DocumentInput{Name: "anexo.txt", MediaType: "text/plain", Content: []byte("anexo I"), Format: signer.FormatASiCSCAdES},
		transaction.DocumentInput{Name: "anexo2.txt", MediaType: "text/plain", Content: []byte("anexo II"), Format: signer.FormatASiCEXAdES})
	sess, code := e.login(c.ID, citizen)
	done, err := e.approve(c.ID, sess, code)
	if err != nil || done.State != transaction.StateDone || done.Summary != transaction.SummaryAllSigned {
		t.Fatalf("approve: %v %+v", err, done)
	}
	r, err := e.svc.Results(e.ctx, p.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	verifyResults(t, e, r, [][]byte{xml, txt, []byte("anexo I"), []byte("anexo II")})
	vs, err := xades.Verify(r.Documents[0].Signature, nil, xades.Limits{})
	if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Packaging != xades.Enveloped || vs[0].MimeType != "application/xml" {
		t.Fatalf("enveloped: %v %+v", err, vs)
	}
	vs, err = xades.Verify(r.Documents[1].Signature, func(uri string) ([]byte, bool) { return txt, uri == "carta.txt" }, xades.Limits{})
	if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Packaging != xades.Detached {
		t.Fatalf("detached: %v %+v", err, vs)
	}
}

// TestCreateRefusesBadXML: XML to be signed XAdES that is unsafe or
// malformed is refused at creation with the line, and nothing is stored.
func TestCreateRefusesBadXML(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Sede", nil)
	adv := e.advanced(11111111)
	for _, tc := range []struct {
		name, xml, msg string
	}{
		{"doctype with an external entity", "<?xml version=\"1.0\"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>\n<r>&x;</r>", "DOCTYPE"},
		{"billion laughs", "<!DOCTYPE l [<!ENTITY a \"aaaa\"><!ENTITY b \"&a;&a;&a;&a;\">]><l>&b;</l>", "DOCTYPE"},
		{"malformed", "<r>\n<a>\n</r>", "line 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := e.svc.Create(e.ctx, p, transaction.CreateRequest{CitizenID: adv, OKURL: okURL, ErrorURL: errURL,
				Documents: []transaction.DocumentInput{{Name: "x.xml", MediaType: "application/xml", Content: []byte(tc.xml), Format: signer.FormatXAdES}}})
			if c != nil {
				t.Fatalf("created %s", c.ID)
			}
			wantCode(t, err, transaction.CodeInvalidDocument)
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q does not mention %q", err, tc.msg)
			}
		})
	}
	if ts, err := e.svc.List(e.ctx, p.ID, "", "", 100); err != nil || len(ts) != 0 {
		t.Fatalf("after refusals: %d transactions stored (%v)", len(ts), err)
	}
}

// TestCreateRefusesASiCOfDigest: a container holds the document, so a
// digest alone is refused at creation.
func TestCreateRefusesASiCOfDigest(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Sede", nil)
	d := make([]byte, 32)
	_, err := e.svc.Create(e.ctx, p, transaction.CreateRequest{CitizenID: e.advanced(11111111), OKURL: okURL, ErrorURL: errURL,
		Documents: []transaction.DocumentInput{{Name: "x", Digest: d, Format: signer.FormatASiCSXAdES}}})
	wantCode(t, err, transaction.CodeUnsupportedFormat)
}

// TestFacturae: an invoice in format facturae is checked at creation (a
// broken one refused with its line, nothing stored) and, approved, comes
// back signed XAdES-EPES under the FacturaE policy 3.1.
func TestFacturae(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Facturación", nil)
	citizen := e.advanced(12345678)
	invoice, err := os.ReadFile("../signer/facturae/testdata/factura-3.2.2.xml")
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(invoice, []byte("<Modality>I<"), []byte("<Modality>X<"), 1)
	_, err = e.svc.Create(e.ctx, p, transaction.CreateRequest{CitizenID: citizen, OKURL: okURL, ErrorURL: errURL,
		Documents: []transaction.DocumentInput{{Name: "factura.xml", MediaType: "application/xml", Content: bad, Format: signer.FormatFacturae}}})
	wantCode(t, err, transaction.CodeInvalidDocument)
	if !strings.Contains(err.Error(), "line 5") {
		t.Errorf("refusal %q does not name line 5", err)
	}
	sum := sha256.Sum256(invoice)
	_, err = e.svc.Create(e.ctx, p, transaction.CreateRequest{CitizenID: citizen, OKURL: okURL, ErrorURL: errURL,
		Documents: []transaction.DocumentInput{{Name: "factura.xml", Digest: sum[:], Format: signer.FormatFacturae}}})
	wantCode(t, err, transaction.CodeUnsupportedFormat)
	if ts, err := e.svc.List(e.ctx, p.ID, "", "", 100); err != nil || len(ts) != 0 {
		t.Fatalf("after refusals: %d transactions stored (%v)", len(ts), err)
	}

	c := e.create(p, citizen, transaction.DocumentInput{Name: "factura.xml", MediaType: "application/xml", Content: invoice, Format: signer.FormatFacturae})
	sess, code := e.login(c.ID, citizen)
	if done, err := e.approve(c.ID, sess, code); err != nil || done.Summary != transaction.SummaryAllSigned {
		t.Fatalf("approve: %v %+v", err, done)
	}
	r, err := e.svc.Results(e.ctx, p.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := xades.Verify(r.Documents[0].Signature, nil, xades.Limits{})
	if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Policy == nil || vs[0].Policy.Identifier != xades.PolicyFacturae31.Identifier {
		t.Fatalf("facturae: %v %+v", err, vs)
	}
}
