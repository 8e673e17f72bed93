package fire

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/signer"
)

// TestResolveOperationsPolicies: cop, expPolicy, the explicit AGE policy
// and mode map onto firma's document options, and what firma cannot make
// is refused by name.
func TestResolveOperationsPolicies(t *testing.T) {
	age := map[string]string{"policyIdentifier": "urn:oid:2.16.724.1.3.1.1.2.1.9", "policyIdentifierHash": "G7roucf600+f03r/o0bAOQ6WAs0=",
		"policyIdentifierHashAlgorithm": "http://www.w3.org/2000/09/xmldsig#sha1", "policyQualifier": "https://sede.060.gob.es/politica_de_firma_anexo_1.pdf"}
	for _, tc := range []struct {
		name, cop, format string
		props             map[string]string
		op                signer.Operation
		policy            string
		attached          bool
		refused           string // "" accepted; else a word of the refusal
	}{
		{"sign", "sign", "CAdES", nil, signer.OpSign, "", false, ""},
		{"cosign cades", "cosign", "CAdES", nil, signer.OpCoSign, "", false, ""},
		{"countersign cades", "COUNTERSIGN", "CAdES", nil, signer.OpCounterSign, "", false, ""},
		{"cosign pades", "cosign", "PAdES", nil, signer.OpCoSign, "", false, ""},
		{"countersign pades", "countersign", "PAdES", nil, "", "", false, "countersign"},
		{"cosign xades", "cosign", "XAdES", nil, "", "", false, "cosign"},
		{"unknown cop", "multisign", "CAdES", nil, "", "", false, "multisign"},
		{"expPolicy", "sign", "PAdES", map[string]string{"expPolicy": "FirmaAGE"}, signer.OpSign, "FirmaAGE", false, ""},
		{"another expPolicy", "sign", "PAdES", map[string]string{"expPolicy": "FirmaOtra"}, "", "", false, "FirmaAGE"},
		{"explicit AGE policy", "sign", "CAdES", age, signer.OpSign, "FirmaAGE", false, ""},
		{"explicit other policy", "sign", "CAdES", map[string]string{"policyIdentifier": "1.2.3.4"}, "", "", false, "AGE"},
		{"AGE with another hash", "sign", "CAdES", map[string]string{"policyIdentifier": "2.16.724.1.3.1.1.2.1.9", "policyIdentifierHash": "AAAA"}, "", "", false, "hash"},
		{"implicit", "sign", "CAdES", map[string]string{"mode": "implicit"}, signer.OpSign, "", true, ""},
		{"explicit", "sign", "CAdES", map[string]string{"mode": "explicit"}, signer.OpSign, "", false, ""},
		{"implicit cosign keeps the packaging", "cosign", "CAdES", map[string]string{"mode": "implicit"}, signer.OpCoSign, "", false, ""},
		{"bad mode", "sign", "CAdES", map[string]string{"mode": "embedded"}, "", "", false, "embedded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, err := resolve(tc.cop, tc.format, "SHA256withRSA", "", tc.props)
			if tc.refused != "" {
				if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tc.refused) {
					t.Fatalf("err %v, want a refusal naming %q", err, tc.refused)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if set.op != tc.op || set.policy != tc.policy || set.attached != tc.attached {
				t.Errorf("op %q policy %q attached %v; want %q %q %v", set.op, set.policy, set.attached, tc.op, tc.policy, tc.attached)
			}
		})
	}
}

// TestDocumentFromSignature: FIRe sends only the signature to cosign or
// countersign; the document is what it signs.
func TestDocumentFromSignature(t *testing.T) {
	ctx := context.Background()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "FIRMANTE"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	doc := []byte("documento")
	detached, err := signer.CAdESDocument(ctx, bytes.NewReader(doc), key, []*x509.Certificate{cert}, signer.Options{})
	if err != nil {
		t.Fatal(err)
	}
	attached, err := signer.CAdESDocument(ctx, bytes.NewReader(doc), key, []*x509.Certificate{cert}, signer.Options{Attached: true})
	if err != nil {
		t.Fatal(err)
	}
	set, err := resolve("cosign", "CAdES", "SHA256withRSA", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(doc)
	d, err := set.document("d", detached)
	if err != nil || !bytes.Equal(d.Digest, sum[:]) || d.Content != nil || !bytes.Equal(d.Signature, detached) {
		t.Fatalf("detached: %v %+v", err, d)
	}
	d, err = set.document("d", attached)
	if err != nil || !bytes.Equal(d.Content, doc) || d.Digest != nil {
		t.Fatalf("attached: %v %+v", err, d)
	}
	if _, err := set.document("d", doc); !errors.Is(err, ErrUnsupported) {
		t.Errorf("data that is not a signature: %v", err)
	}
	if set, _ = resolve("cosign", "CAdES", "SHA512withRSA", "", nil); set != nil {
		if _, err := set.document("d", detached); !errors.Is(err, ErrUnsupported) {
			t.Errorf("a SHA-512 cosignature of a SHA-256 signature given only the signature: %v", err)
		}
	}
}
