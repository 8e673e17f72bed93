package ca_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/crypto/ocsp"

	"github.com/firma-cloud/firma/api/rest/pkihttp"
)

// FuzzRespondOCSP feeds arbitrary bytes to the responder, as anyone on the
// network can: every input must get a well-formed OCSP response (a signed
// one or an error status), never a panic or a Go error.
func FuzzRespondOCSP(f *testing.F) {
	e := newEnv(f, nil)
	e.init()
	e.advanced("12345678Z", "Juan", "Español")
	c, err := e.ca.EnsureCertificate(e.ctx, "12345678Z")
	if err != nil {
		f.Fatal(err)
	}
	good, err := ocsp.CreateRequest(c.Cert, e.ca.Issuing(), nil)
	if err != nil {
		f.Fatal(err)
	}
	other, err := ocsp.CreateRequest(c.Cert, e.ca.Root(), nil) // wrong issuer
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(other)
	f.Add(good[:len(good)/2])
	f.Add([]byte{})
	f.Add([]byte{0x30, 0x80, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, req []byte) {
		res, err := e.ca.RespondOCSP(e.ctx, req)
		if err != nil {
			t.Fatalf("Go error for outside input: %v", err)
		}
		if _, err := ocsp.ParseResponse(res.DER, nil); err != nil {
			var re ocsp.ResponseError
			if !errorsAs(err, &re) {
				t.Fatalf("response does not parse: %v (status %s)", err, res.Status)
			}
		}
	})
}

// FuzzOCSPGet feeds arbitrary paths to the RFC 6960 GET form.
func FuzzOCSPGet(f *testing.F) {
	e := newEnv(f, nil)
	e.init()
	h := pkihttp.Handler(e.ca, nil)
	f.Add("MEMwQTA/MD0wOzAJBgUrDgMCGgUABBQ=")
	f.Add("%2F%2B%3D")
	f.Add("")
	f.Fuzz(func(t *testing.T, path string) {
		if strings.ContainsAny(path, "?# \t\r\n") {
			return
		}
		req, err := http.NewRequest("GET", "/ocsp/"+path, nil)
		if err != nil {
			return
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code == http.StatusOK && w.Header().Get("Content-Type") != "application/ocsp-response" {
			t.Fatalf("200 without an OCSP response: %q", w.Header().Get("Content-Type"))
		}
		if w.Code == http.StatusOK && bytes.Equal(w.Body.Bytes(), nil) {
			t.Fatalf("empty OCSP response")
		}
	})
}
