package signer_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signer/ltv"
	"github.com/firma-cloud/firma/signer/xades"
	"github.com/firma-cloud/firma/verify/testpki"
)

// TestSignDocumentXAdES: the xades format signs XML enveloped, other
// content and digests detached under the document's name, and each result
// verifies with xades.Verify (signer/xades's tests run the outside tools).
func TestSignDocumentXAdES(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	key, chain := pki.User(t, keystore.ECP256, "LUIS MARTIN")
	xml := []byte(`<Solicitud xmlns="urn:example"><Importe>10</Importe></Solicitud>`)
	txt := []byte("hello")
	d := sha256.Sum256(txt)
	tests := []struct {
		name      string
		doc       signer.Document
		level     signer.Level
		packaging xades.Packaging
		content   []byte // detached content given to the verifier
	}{
		{"xml enveloped B-T", signer.Document{Type: "application/xml", Content: xml, Name: "solicitud.xml"}, signer.LevelT, xades.Enveloped, nil},
		{"text detached", signer.Document{Type: "text/plain", Content: txt, Name: "carta.txt"}, signer.LevelB, xades.Detached, txt},
		{"digest detached", signer.Document{Digest: d[:], Name: "../../etc/carta.txt"}, signer.LevelB, xades.Detached, txt},
		{"xml enveloped B-LTA", signer.Document{Type: "application/xml", Content: xml, Name: "solicitud.xml"}, signer.LevelLTA, xades.Enveloped, nil},
		{"digest detached B-LT", signer.Document{Digest: d[:], Name: "carta.txt"}, signer.LevelLT, xades.Detached, txt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opt := signer.Options{Level: tc.level, Timestamper: pki.Timestamper(t), Validation: &ltv.Gatherer{}}
			out, err := signer.SignDocument(ctx, signer.FormatXAdES, signer.StandardFormats(), tc.doc, key, chain, opt, signer.PDFOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if tc.packaging == xades.Enveloped && !bytes.HasPrefix(out, []byte("<Solicitud")) {
				t.Errorf("not the document with the signature inside: %.60s", out)
			}
			vs, err := xades.Verify(out, func(uri string) ([]byte, bool) { return tc.content, tc.content != nil }, xades.Limits{})
			if err != nil || len(vs) != 1 || vs[0].Err != nil {
				t.Fatalf("verify: %v %+v", err, vs)
			}
			if vs[0].Packaging != tc.packaging || vs[0].Level() != xades.Level(tc.level) {
				t.Errorf("packaging %s level %s", vs[0].Packaging, vs[0].Level())
			}
			if tc.packaging == xades.Detached && !bytes.Contains(out, []byte(`URI="carta.txt"`)) {
				t.Errorf("detached reference not by the document's base name")
			}
		})
	}
	_, err := signer.SignDocument(ctx, signer.FormatXAdES, signer.StandardFormats(), signer.Document{Content: xml},
		key, chain, signer.Options{Level: signer.LevelT}, signer.PDFOptions{})
	if !errors.Is(err, signer.ErrTimestamp) {
		t.Errorf("B-T without a timestamper: %v, want ErrTimestamp", err)
	}
	if f, err := signer.ParseFormat("xades"); err != nil || f != signer.FormatXAdES {
		t.Errorf("ParseFormat(xades) = %q, %v", f, err)
	}
}
