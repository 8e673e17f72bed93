package facturae_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer/facturae"
	"github.com/firma-cloud/firma/signer/xades"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/verify/testpki"
)

func TestMain(m *testing.M) {
	code := m.Run()
	softhsmtest.Cleanup()
	os.Exit(code)
}

// TestSign signs the sample FacturaE 3.2.2 invoice: XAdES-EPES enveloped
// as the last child of Facturae under the FacturaE policy 3.1, which
// firma's verifier, xmlsec1 and xadesjs (which reads the policy back)
// accept. Cost: one xmlsec1 and one node run.
func TestSign(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	key, chain := pki.User(t, keystore.RSA2048, "SUMINISTROS EJEMPLO SL")
	invoice, err := os.ReadFile("testdata/factura-3.2.2.xml")
	if err != nil {
		t.Fatal(err)
	}
	signed, err := facturae.Sign(ctx, invoice, key, chain, xades.Options{Level: xades.LevelT, Timestamper: pki.Timestamper(t)})
	if err != nil {
		t.Fatal(err)
	}
	end := bytes.LastIndex(invoice, []byte("</fe:Facturae>"))
	if !bytes.HasPrefix(signed, invoice[:end]) || !bytes.HasSuffix(signed, invoice[end:]) || !bytes.Contains(signed[end:], []byte("<ds:Signature")) {
		t.Fatalf("not the invoice with the signature as the root's last child")
	}
	vs, err := xades.Verify(signed, nil, xades.Limits{})
	if err != nil || len(vs) != 1 || vs[0].Err != nil {
		t.Fatalf("verify: %v %+v", err, vs)
	}
	if p := vs[0].Policy; p == nil || p.Identifier != xades.PolicyFacturae31.Identifier || !bytes.Equal(p.Digest, xades.PolicyFacturae31.Digest) {
		t.Errorf("policy %+v", vs[0].Policy)
	}
	if vs[0].Packaging != xades.Enveloped || vs[0].Level() != xades.LevelT {
		t.Errorf("packaging %s level %s", vs[0].Packaging, vs[0].Level())
	}
	if err := facturae.Check(signed, xades.Limits{}); !errors.Is(err, facturae.ErrInvalid) || !strings.Contains(err.Error(), "signed already") {
		t.Errorf("signing a signed invoice again: %v", err)
	}

	dir := t.TempDir()
	rootPEM := testpki.WritePEM(t, dir, "root.pem", pki.Root.Cert, pki.Issuing.Cert)
	path := filepath.Join(dir, "factura.xsig")
	if err := os.WriteFile(path, signed, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("xmlsec1", "--verify", "--trusted-pem", rootPEM, "--enabled-reference-uris", "empty,same-doc",
		"--id-attr:Id", "http://uri.etsi.org/01903/v1.3.2#:SignedProperties", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK") {
		t.Fatalf("xmlsec1: %v\n%s", err, out)
	}
	js, err := filepath.Abs("../xades/testdata/xadesjs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(js, "node_modules", "xadesjs")); err != nil {
		t.Fatalf("xadesjs is not installed (make deps-test runs npm ci in %s): %v", js, err)
	}
	out, err = exec.Command("node", filepath.Join(js, "check.js"), path).CombinedOutput()
	if err != nil {
		t.Fatalf("xadesjs: %v\n%s", err, out)
	}
	var rep struct {
		Policy *struct{ Identifier, Digest string } `json:"policy"`
	}
	if err := json.Unmarshal(out, &rep); err != nil || rep.Policy == nil || rep.Policy.Identifier != xades.PolicyFacturae31.Identifier ||
		rep.Policy.Digest != base64.StdEncoding.EncodeToString(xades.PolicyFacturae31.Digest) {
		t.Errorf("xadesjs read %s (%v)", out, err)
	}
}

// TestCheckRefuses: invoices the structural check refuses, each with the
// line it names, and unsafe XML refused by the safety walk first.
func TestCheckRefuses(t *testing.T) {
	good, err := os.ReadFile("testdata/factura-3.2.2.xml")
	if err != nil {
		t.Fatal(err)
	}
	if err := facturae.Check(good, xades.Limits{}); err != nil {
		t.Fatalf("the sample invoice: %v", err)
	}
	edit := func(old, new string) []byte {
		if !bytes.Contains(good, []byte(old)) {
			t.Fatalf("sample lacks %q", old)
		}
		return bytes.Replace(good, []byte(old), []byte(new), 1)
	}
	tests := []struct {
		name string
		doc  []byte
		want error
		msg  string
	}{
		{"another root", []byte(`<Factura xmlns="urn:x"/>`), facturae.ErrInvalid, "line 1: the root element"},
		{"FacturaE 3.1 namespace", edit("http://www.facturae.gob.es/formato/Versiones/Facturaev3_2_2.xml", "http://www.facturae.es/Facturae/2007/v3.1/Facturae"), facturae.ErrInvalid, "line 2"},
		{"SchemaVersion of another version", edit("<SchemaVersion>3.2.2<", "<SchemaVersion>3.2.1<"), facturae.ErrInvalid, "line 4: SchemaVersion"},
		{"bad Modality", edit("<Modality>I<", "<Modality>X<"), facturae.ErrInvalid, "line 5: Modality"},
		{"third party without ThirdParty", edit("<InvoiceIssuerType>EM<", "<InvoiceIssuerType>TE<"), facturae.ErrInvalid, "line 6: InvoiceIssuerType TE"},
		{"Batch lacks a total", edit("<TotalExecutableAmount><TotalAmount>121.00</TotalAmount></TotalExecutableAmount>\n", ""), facturae.ErrInvalid, "line 12: <InvoiceCurrencyCode> in Batch where TotalExecutableAmount is required"},
		{"no BuyerParty", bytes.ReplaceAll(good, []byte("BuyerParty>"), []byte("Buyer>")), facturae.ErrInvalid, "line 34: <Buyer> in Parties"},
		{"bad PersonTypeCode", edit("<PersonTypeCode>J<", "<PersonTypeCode>Q<"), facturae.ErrInvalid, "line 19: PersonTypeCode"},
		{"InvoicesCount does not match", edit("<InvoicesCount>1<", "<InvoicesCount>2<"), facturae.ErrInvalid, "line 9: InvoicesCount 2"},
		{"Items before InvoiceTotals", edit("<InvoiceTotals>", "<Items/><InvoiceTotals>"), facturae.ErrInvalid, "line 80: <Items> in Invoice where InvoiceTotals is required"},
		{"doctype", append([]byte(`<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>`), good[39:]...), xades.ErrDoctype, "DOCTYPE"},
		{"malformed", edit("</Parties>", "</Partes>"), xades.ErrMalformed, "line 57"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := facturae.Check(tc.doc, xades.Limits{})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("Check: %v, want %v naming %q", err, tc.want, tc.msg)
			}
		})
	}
}
