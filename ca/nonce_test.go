package ca_test

import (
	"bytes"
	"crypto"
	"crypto/x509/pkix"
	"encoding/asn1"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ocsp"

	"github.com/firma-cloud/firma/ca"
)

var oidNonce = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}

// withNonce returns req with a nonce extension of n octets (RFC 8954
// encoding: an OCTET STRING inside extnValue).
func withNonce(t *testing.T, req []byte, n int) ([]byte, []byte) {
	t.Helper()
	var r struct {
		TBS struct {
			List asn1.RawValue
		}
	}
	if _, err := asn1.Unmarshal(req, &r); err != nil {
		t.Fatal(err)
	}
	value, err := asn1.Marshal(bytes.Repeat([]byte{0xa5}, n))
	if err != nil {
		t.Fatal(err)
	}
	out, err := asn1.Marshal(struct {
		TBS struct {
			List asn1.RawValue
			Ext  []pkix.Extension `asn1:"explicit,tag:2"`
		}
	}{TBS: struct {
		List asn1.RawValue
		Ext  []pkix.Extension `asn1:"explicit,tag:2"`
	}{r.TBS.List, []pkix.Extension{{Id: oidNonce, Value: value}}}})
	if err != nil {
		t.Fatal(err)
	}
	return out, value
}

// responseNonce returns the nonce response extension's extnValue, or nil;
// x/crypto/ocsp does not read responseExtensions.
func responseNonce(t *testing.T, der []byte) []byte {
	t.Helper()
	var resp struct {
		Status asn1.Enumerated
		Bytes  struct {
			Type     asn1.ObjectIdentifier
			Response []byte
		} `asn1:"explicit,tag:0"`
	}
	var basic struct{ TBS asn1.RawValue }
	var tbs struct {
		Responder  asn1.RawValue
		ProducedAt asn1.RawValue
		Responses  asn1.RawValue
		Ext        []pkix.Extension `asn1:"explicit,tag:1,optional"`
	}
	if _, err := asn1.Unmarshal(der, &resp); err != nil {
		t.Fatal(err)
	}
	if _, err := asn1.Unmarshal(resp.Bytes.Response, &basic); err != nil {
		t.Fatal(err)
	}
	if _, err := asn1.Unmarshal(basic.TBS.FullBytes, &tbs); err != nil {
		t.Fatal(err)
	}
	for _, e := range tbs.Ext {
		if e.Id.Equal(oidNonce) {
			return e.Value
		}
	}
	return nil
}

// TestOCSPNonce checks a request's nonce is echoed in the response
// (openssl ocsp, which sends one by default, no longer warns), that
// RFC 8954's length limits are kept, that producedAt is the signing
// second and so never before thisUpdate, and that past the nonce rate
// the cached, nonce-less answer is sent.
func TestOCSPNonce(t *testing.T) {
	e := newEnv(t, func(c *ca.Config) { c.OCSPNonceRate = 1 })
	e.init()
	e.advanced("12345678Z", "Juan", "Español")
	c, err := e.ca.EnsureCertificate(e.ctx, "12345678Z")
	if err != nil {
		t.Fatal(err)
	}
	root, issuing := e.chain()
	leaf := e.file("citizen.pem", "CERTIFICATE", c.DER)

	t.Run("openssl", func(t *testing.T) {
		out := openssl(t, e.dir, "ocsp", "-issuer", issuing, "-cert", leaf, "-url", e.srv.URL+"/ocsp", "-CAfile", root, "-resp_text")
		mustContain(t, "openssl ocsp", out, "Response verify OK", "citizen.pem: good", "OCSP Nonce")
		if strings.Contains(out, "WARNING") {
			t.Errorf("openssl ocsp warns:\n%s", out)
		}
	})

	plain, err := ocsp.CreateRequest(c.Cert, e.ca.Issuing(), &ocsp.RequestOptions{Hash: crypto.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	post := func(t *testing.T, req []byte) []byte {
		t.Helper()
		resp, err := http.Post(e.srv.URL+"/ocsp", "application/ocsp-request", bytes.NewReader(req))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return body
	}
	tests := []struct {
		name      string
		length    int // -1: no nonce
		malformed bool
	}{
		{"no nonce", -1, false},
		{"1 octet", 1, false},
		{"32 octets", 32, false},
		{"empty", 0, true},
		{"33 octets", 33, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The nonce limiter (1/s, burst 2) must not drop a nonce here.
			e.ca.ResetOCSPNonceLimit()
			req, nonce := plain, []byte(nil)
			if tc.length >= 0 {
				req, nonce = withNonce(t, plain, tc.length)
			}
			der := post(t, req)
			resp, err := ocsp.ParseResponseForCert(der, c.Cert, e.ca.Issuing())
			if tc.malformed {
				if re, ok := err.(ocsp.ResponseError); !ok || re.Status != ocsp.Malformed {
					t.Fatalf("response %v, want malformedRequest", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := responseNonce(t, der); !bytes.Equal(got, nonce) {
				t.Errorf("nonce %x, want %x", got, nonce)
			}
			if resp.ProducedAt.Before(resp.ThisUpdate) {
				t.Errorf("producedAt %v before thisUpdate %v", resp.ProducedAt, resp.ThisUpdate)
			}
			if tc.length >= 0 && !resp.ProducedAt.Equal(resp.ThisUpdate) {
				t.Errorf("freshly signed: producedAt %v, thisUpdate %v", resp.ProducedAt, resp.ThisUpdate)
			}
			// openssl checks the echoed nonce against the request (with
			// -cert it would build a request of its own, so not here).
			reqFile, respFile := filepath.Join(e.dir, "q.der"), filepath.Join(e.dir, "r.der")
			os.WriteFile(reqFile, req, 0o600)
			os.WriteFile(respFile, der, 0o600)
			out := openssl(t, e.dir, "ocsp", "-reqin", reqFile, "-respin", respFile, "-CAfile", root, "-verify_other", issuing)
			mustContain(t, "openssl ocsp -respin", out, "Response verify OK")
			if tc.length > 0 && strings.Contains(out, "WARNING") {
				t.Errorf("openssl warns:\n%s", out)
			}
			if tc.length > 0 {
				// ... and tells another request's nonce apart.
				other, _ := withNonce(t, plain, tc.length+1)
				os.WriteFile(reqFile, other, 0o600)
				cmd := exec.Command("openssl", "ocsp", "-reqin", reqFile, "-respin", respFile, "-CAfile", root, "-verify_other", issuing)
				if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "Nonce Verify error") {
					t.Errorf("openssl accepted another request's nonce: %v\n%s", err, out)
				}
			}
		})
	}

	t.Run("past the nonce rate", func(t *testing.T) {
		e.ca.ResetOCSPNonceLimit()
		var echoed, dropped int
		for range 4 {
			req, _ := withNonce(t, plain, 16)
			der := post(t, req)
			if _, err := ocsp.ParseResponseForCert(der, c.Cert, e.ca.Issuing()); err != nil {
				t.Fatal(err)
			}
			if responseNonce(t, der) != nil {
				echoed++
			} else {
				dropped++
			}
		}
		// Burst 2 at 1/s: two or three echoed in a fast loop, the rest
		// answered from the cache.
		if echoed < 2 || dropped < 1 {
			t.Errorf("echoed %d, dropped %d", echoed, dropped)
		}
	})
}
