package xades_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer/ltv"
	"github.com/firma-cloud/firma/signer/xades"
	"github.com/firma-cloud/firma/tsa"
	"github.com/firma-cloud/firma/verify/testpki"
)

// TestXAdESLongTerm makes B-LT and B-LTA signatures (enveloped, enveloping
// and detached) and raises B-B and B-T ones with Extend, gathering OCSP
// responses from the test PKI's responder over HTTP. Each result carries
// the signer's and the TSA's revocation data, every timestamp verifies
// with openssl ts -verify over what the XAdES structure says it covers,
// the signature is unchanged for xmlsec1 and xadesjs, and a changed byte
// of the validation data breaks the archive timestamp's imprint. Cost:
// about 30 timestamps and 10 xmlsec1/node runs, a few seconds.
func TestXAdESLongTerm(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	dir := t.TempDir()
	rootPEM := testpki.WritePEM(t, dir, "root.pem", pki.Root.Cert, pki.Issuing.Cert)
	tsaRootPEM := testpki.WritePEM(t, dir, "tsaroot.pem", pki.TSARoot.Cert)
	ts := locked(pki.Timestamper(t))
	binary := []byte("contenido binario \x00\x01 de un documento separado\n")
	tests := []struct {
		name      string
		packaging xades.Packaging
		doc       []byte
		level     xades.Level
		from      xades.Level // "": signed at level at once; else signed at from, then Extend
	}{
		{"enveloped B-LT", xades.Enveloped, []byte(plain), xades.LevelLT, ""},
		{"enveloped B-LTA", xades.Enveloped, []byte(plain), xades.LevelLTA, ""},
		{"enveloping B-LTA", xades.Enveloping, []byte(plain), xades.LevelLTA, ""},
		{"detached B-LTA", xades.Detached, binary, xades.LevelLTA, ""},
		{"enveloped B-B extended to B-LTA", xades.Enveloped, []byte(plain), xades.LevelLTA, xades.LevelB},
		{"detached B-T extended to B-LT", xades.Detached, binary, xades.LevelLT, xades.LevelT},
		{"enveloped B-LTA renewed (second archive timestamp)", xades.Enveloped, []byte(plain), xades.LevelLTA, xades.LevelLTA},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key, chain := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
			opt := xades.Options{Level: tc.level, Packaging: tc.packaging, Timestamper: ts, Validation: &ltv.Gatherer{}, Name: "doc.bin"}
			var content []byte
			if tc.packaging == xades.Detached {
				content = tc.doc
			}
			resolve := func(uri string) ([]byte, bool) { return content, uri == "doc.bin" && content != nil }
			var signed []byte
			var err error
			if tc.from == "" {
				signed, err = xades.Sign(ctx, tc.doc, key, chain, opt)
			} else {
				first := opt
				first.Level = tc.from
				if signed, err = xades.Sign(ctx, tc.doc, key, chain, first); err == nil {
					signed, err = xades.Extend(ctx, signed, resolve, opt)
				}
			}
			if err != nil {
				t.Fatalf("sign: %v", err)
			}
			vs, err := xades.Verify(signed, resolve, xades.Limits{})
			if err != nil || len(vs) != 1 || vs[0].Err != nil {
				t.Fatalf("verify: %v %+v", err, vs)
			}
			v := vs[0]
			if v.Level() != tc.level {
				t.Errorf("level %s, want %s", v.Level(), tc.level)
			}
			// The signer's certificates and the TSA's each have an OCSP
			// response: user and issuing CA, TSA (the roots are not asked).
			if n := len(v.OCSP); n < 2 {
				t.Errorf("%d OCSP responses, want the signer chain's and the TSA's", n)
			}
			good := 0
			for _, der := range v.OCSP {
				for _, c := range append(append(v.Certs, v.ValidationCerts...), pki.TSARoot.Cert, pki.Root.Cert) {
					for _, iss := range append(append(v.Certs, v.ValidationCerts...), pki.TSARoot.Cert, pki.Root.Cert) {
						if r, err := ocsp.ParseResponseForCert(der, c, iss); err == nil && r.Status == ocsp.Good {
							good++
						}
					}
				}
			}
			if good < len(v.OCSP) {
				t.Errorf("only %d of %d OCSP responses are good answers about a certificate of the chains", good, len(v.OCSP))
			}
			wantATS := map[xades.Level]int{xades.LevelLT: 0, xades.LevelLTA: 1}[tc.level]
			if tc.from == xades.LevelLTA {
				wantATS = 2
			}
			if len(v.Archive) != wantATS {
				t.Fatalf("%d archive timestamps, want %d", len(v.Archive), wantATS)
			}
			// openssl ts -verify on every timestamp over its data.
			tokens := []xades.ArchiveTimestamp{{Token: v.Timestamp, Data: v.TimestampData}}
			tokens = append(tokens, v.Archive...)
			for i, tok := range tokens {
				tokPath := filepath.Join(t.TempDir(), "token.der")
				if err := os.WriteFile(tokPath, tok.Token, 0o600); err != nil {
					t.Fatal(err)
				}
				d := sha256.Sum256(tok.Data)
				out, err := tool(t, ".", "openssl", "ts", "-verify", "-token_in", "-in", tokPath, "-digest", hex.EncodeToString(d[:]), "-CAfile", tsaRootPEM)
				if err != nil || !strings.Contains(out, "Verification: OK") {
					t.Fatalf("openssl ts -verify rejected timestamp %d: %v\n%s", i, err, out)
				}
				verifyMu.Lock()
				_, err = tsa.VerifyToken(tok.Token, tsa.VerifyOptions{Roots: testpki.Pool(pki.TSARoot.Cert), Data: tok.Data})
				verifyMu.Unlock()
				if err != nil {
					t.Errorf("tsa.VerifyToken %d: %v", i, err)
				}
			}
			// The outside tools still verify the signature (xadesjs only
			// without an archive timestamp: see noATS).
			if _, err := outside(t, signed, content, "doc.bin", rootPEM, false, wantATS > 0); err != nil {
				t.Fatalf("an outside tool rejected the long-term signature: %v", err)
			}
			if wantATS == 0 {
				return
			}
			t.Logf("xadesjs not run: %s", noATS)
			// A changed byte of the validation data: the signature still
			// verifies, the archive timestamp's imprint no longer matches.
			i := bytes.Index(signed, []byte("EncapsulatedOCSPValue>"))
			if i < 0 {
				t.Fatal("no EncapsulatedOCSPValue")
			}
			tampered := bytes.Clone(signed)
			j := i + len("EncapsulatedOCSPValue>") + 20
			tampered[j] = map[bool]byte{true: 'B', false: 'A'}[tampered[j] == 'A']
			tv, err := xades.Verify(tampered, resolve, xades.Limits{})
			if err != nil || tv[0].Err != nil {
				t.Fatalf("tampered verify: %v", err)
			}
			verifyMu.Lock()
			_, err = tsa.VerifyToken(tv[0].Archive[0].Token, tsa.VerifyOptions{Roots: testpki.Pool(pki.TSARoot.Cert), Data: tv[0].Archive[0].Data})
			verifyMu.Unlock()
			if err == nil {
				t.Error("the archive timestamp still verifies over changed validation data")
			}
		})
	}

	t.Run("refusals", func(t *testing.T) {
		key, chain := pki.User(t, keystore.ECP256, "JUAN PEREZ")
		digest := sha256.Sum256(binary)
		if _, err := xades.SignDigest(ctx, digest[:], key, chain, xades.Options{Level: xades.LevelLTA, Timestamper: ts, Validation: &ltv.Gatherer{}}); !errors.Is(err, xades.ErrNoContent) {
			t.Errorf("B-LTA from a digest: %v, want ErrNoContent", err)
		}
		if _, err := xades.Sign(ctx, []byte(plain), key, chain, xades.Options{Level: xades.LevelLT, Timestamper: ts}); !errors.Is(err, xades.ErrValidation) {
			t.Errorf("B-LT without a validation source: %v, want ErrValidation", err)
		}
		bb, err := xades.Sign(ctx, []byte(plain), key, chain, xades.Options{})
		if err != nil {
			t.Fatal(err)
		}
		broken := bytes.Replace(bb, []byte("2026/000123"), []byte("2026/000124"), 1)
		if _, err := xades.Extend(ctx, broken, nil, xades.Options{Level: xades.LevelT, Timestamper: ts}); !errors.Is(err, xades.ErrBroken) {
			t.Errorf("extending a changed document: %v, want ErrBroken", err)
		}
		revKey, revChain := pki.User(t, keystore.ECP256, "REVOCADO")
		rs, err := xades.Sign(ctx, []byte(plain), revKey, revChain, xades.Options{Level: xades.LevelT, Timestamper: ts})
		if err != nil {
			t.Fatal(err)
		}
		pki.Revoke(revChain[0], time.Now().Add(-time.Minute))
		if _, err := xades.Extend(ctx, rs, nil, xades.Options{Level: xades.LevelLT, Timestamper: ts, Validation: &ltv.Gatherer{}}); !errors.Is(err, ltv.ErrRevoked) {
			t.Errorf("B-LT of a revoked signer: %v, want ltv.ErrRevoked", err)
		}
	})
}
