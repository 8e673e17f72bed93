package csc_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/firma-cloud/firma/csc"
	"github.com/firma-cloud/firma/e2e/stack"
)

// The CSC v2.2 response schemas in testdata/cscv2 are written from the
// specification's tables, not from this server's types, so that a field
// the specification requires and firma drops fails here.
const schemaBase = "https://firma.test/cscv2/"

var (
	schemaOnce sync.Once
	schemas    map[string]*jsonschema.Schema
	schemaErr  error
)

func loadSchemas() (map[string]*jsonschema.Schema, error) {
	schemaOnce.Do(func() {
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		files, err := filepath.Glob("testdata/cscv2/*.json")
		if err != nil || len(files) == 0 {
			schemaErr = fmt.Errorf("no schemas: %v", err)
			return
		}
		for _, p := range files {
			fh, err := os.Open(p)
			if err != nil {
				schemaErr = err
				return
			}
			doc, err := jsonschema.UnmarshalJSON(fh)
			fh.Close()
			if err != nil {
				schemaErr = fmt.Errorf("%s: %w", p, err)
				return
			}
			if err := c.AddResource(schemaBase+filepath.Base(p), doc); err != nil {
				schemaErr = err
				return
			}
		}
		schemas = map[string]*jsonschema.Schema{}
		for _, p := range files {
			name := strings.TrimSuffix(filepath.Base(p), ".json")
			if name == "defs" {
				continue
			}
			if schemas[name], schemaErr = c.Compile(schemaBase + filepath.Base(p)); schemaErr != nil {
				return
			}
		}
	})
	return schemas, schemaErr
}

// conforms fails unless raw is valid against the named schema.
func conforms(t testing.TB, schema, raw string) {
	t.Helper()
	all, err := loadSchemas()
	if err != nil {
		t.Fatal(err)
	}
	s, ok := all[schema]
	if !ok {
		t.Fatalf("no schema %s", schema)
	}
	doc, err := jsonschema.UnmarshalJSON(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", schema, err, raw)
	}
	if err := s.Validate(doc); err != nil {
		t.Fatalf("%s: %v\n%s", schema, err, raw)
	}
}

// TestSchemasCatchOmissions: the schemas are not vacuous; an answer
// without what the specification requires fails them.
func TestSchemasCatchOmissions(t *testing.T) {
	all, err := loadSchemas()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ schema, raw string }{
		{"info", `{"specs":"2.2.0.0","name":"x","logo":"","region":"ES","lang":"es","description":"","authType":["external"],"methods":["info"],"signature_formats":{"formats":[]}}`},
		{"info", `{"specs":"2.2.0.0","name":"x","logo":"","region":"ES","lang":"es","description":"","authType":["oauth2code"],"methods":["info"],"signAlgorithms":{"algos":["1.2.840.10045.4.3.2"]},"signature_formats":{"formats":[]}}`},
		{"credentials_info", `{"key":{"status":"enabled","algo":[],"len":256},"cert":{},"multisign":1}`},
		{"credentials_info", `{"key":{"status":"enabled","algo":[],"len":256},"cert":{},"auth":{"mode":"explicit","objects":[{"type":"OTP","id":"otp"}]},"multisign":1}`},
		{"credentials_list", `{"credentialIDs":["a"],"credentialInfos":[{"key":{"status":"enabled","algo":[],"len":256},"cert":{},"auth":{"mode":"oauth2code"},"multisign":1}]}`},
		{"signatures_signHash", `{"signatures":["a-b_"]}`},
		{"error", `{"error_description":"x"}`},
	} {
		doc, _ := jsonschema.UnmarshalJSON(strings.NewReader(c.raw))
		if all[c.schema].Validate(doc) == nil {
			t.Errorf("%s accepts %s", c.schema, c.raw)
		}
	}
}

// TestWireConformance: every answer of the explicit flow, and the CSC error
// form of each kind of refusal an HTTP client meets, against the v2.2
// schemas.
func TestWireConformance(t *testing.T) {
	f := newFixture(t)
	get := func(method string) string {
		req, _ := http.NewRequest(method, f.Server.URL+"/csc/v2/info", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s info: %d %s", method, resp.StatusCode, raw)
		}
		return string(raw)
	}
	conforms(t, "info", get(http.MethodGet))
	conforms(t, "info", get(http.MethodPost))

	ok := func(a answer, schema string) {
		t.Helper()
		if a.status != http.StatusOK {
			t.Fatalf("%s: %d %s", schema, a.status, a.raw)
		}
		conforms(t, schema, a.raw)
	}
	// v2 names and v1 names of credentials/list ask the same.
	for _, flag := range []string{"credentialInfo", "credInfo"} {
		a := f.call(t, f.key, "credentials/list", map[string]any{"userID": f.citizen, flag: true, "certInfo": true, "lang": "en"})
		ok(a, "credentials_list")
		if infos, _ := a.body["credentialInfos"].([]any); len(infos) != 1 {
			t.Fatalf("%s: no credentialInfos: %s", flag, a.raw)
		}
	}
	for _, body := range []map[string]any{
		{"credentialID": f.cred},
		{"credentialID": f.cred, "certificates": "chain", "certInfo": true, "authInfo": true, "lang": "en-US"},
		{"credentialID": f.cred, "certificates": "none"},
	} {
		a := f.call(t, f.key, "credentials/info", body)
		ok(a, "credentials_info")
		auth, _ := a.body["auth"].(map[string]any)
		if auth == nil || auth["mode"] != "explicit" {
			t.Fatalf("auth missing or not explicit without authInfo: %s", a.raw)
		}
	}
	_, b64 := hashes("wire document")
	code := f.otp(t, f.key)
	a := f.call(t, f.key, "credentials/authorize", map[string]any{"credentialID": f.cred, "numSignatures": 1, "hashes": b64,
		"hashAlgorithmOID": oidSHA256, "authData": []map[string]string{{"id": "otp", "value": code}}})
	ok(a, "credentials_authorize")
	ok(f.signHash(t, f.key, a.body["SAD"].(string), b64), "signatures_signHash")

	// Refusals: each in the CSC error form, whatever refused it.
	post := func(path, ctype, key string, body io.Reader) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, f.Server.URL+"/csc/v2/"+path, body)
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	big := bytes.Repeat([]byte(" "), 1<<20+1)
	for _, c := range []struct {
		name, path, ctype, key string
		body                   func() io.Reader
		status                 int
		retryAfter             bool
	}{
		{"no credentials", "credentials/list", "application/json", "", func() io.Reader { return strings.NewReader("{}") }, 401, false},
		{"bad JSON", "credentials/info", "application/json", f.key, func() io.Reader { return strings.NewReader("{") }, 400, false},
		{"wrong content type", "credentials/info", "text/plain", f.key, func() io.Reader { return strings.NewReader("{}") }, 415, false},
		{"unknown method", "credentials/create", "application/json", f.key, func() io.Reader { return strings.NewReader("{}") }, 404, false},
		// Declared over the bound: refused before the body is read.
		{"body too large", "signatures/signHash", "application/json", f.key, func() io.Reader { return bytes.NewReader(big) }, 413, false},
		// Length not declared (chunked): refused when the read passes it.
		{"chunked body too large", "signatures/signHash", "application/json", f.key, func() io.Reader { return io.MultiReader(bytes.NewReader(big)) }, 413, false},
		{"resend too soon", "credentials/sendOTP", "application/json", f.key, func() io.Reader { return strings.NewReader(`{"credentialID":"` + f.cred + `"}`) }, 429, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.retryAfter {
				// A first code, so that the request is a resend.
				f.clock.Add(time.Hour)
				f.otp(t, f.key)
			}
			resp := post(c.path, c.ctype, c.key, c.body())
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, raw)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			conforms(t, "error", string(raw))
			ra := resp.Header.Get("Retry-After")
			if !c.retryAfter {
				return
			}
			// The resend gap is 30 s and the code was just sent.
			if n, err := strconv.Atoi(ra); err != nil || n < 1 || n > 30 {
				t.Fatalf("Retry-After %q, want 1 to 30 seconds", ra)
			}
		})
	}
}

// TestBase64Forms: hashes are read the same in the standard and URL-safe
// alphabets, padded or not, in credentials/authorize and in signHash, in
// any mix (one decoder serves both); bad padding is refused.
func TestBase64Forms(t *testing.T) {
	f := newFixture(t)
	// A digest whose standard form has both '+' and '/' and whose length
	// needs padding, so that the four forms all differ.
	var digest [32]byte
	for i := 0; ; i++ {
		digest = sha256.Sum256([]byte(fmt.Sprint("b64 ", i)))
		s := base64.StdEncoding.EncodeToString(digest[:])
		if strings.Contains(s, "+") && strings.Contains(s, "/") {
			break
		}
	}
	forms := map[string]string{
		"std padded": base64.StdEncoding.EncodeToString(digest[:]),
		"std raw":    base64.RawStdEncoding.EncodeToString(digest[:]),
		"url padded": base64.URLEncoding.EncodeToString(digest[:]),
		"url raw":    base64.RawURLEncoding.EncodeToString(digest[:]),
	}
	pairs := [][2]string{{"std padded", "url raw"}, {"url raw", "std raw"}, {"url padded", "std padded"}, {"std raw", "url padded"}}
	for _, p := range pairs {
		f.clock.Add(time.Hour) // a fresh code each time, past the resend gap
		code := f.otp(t, f.key)
		a := f.call(t, f.key, "credentials/authorize", map[string]any{"credentialID": f.cred, "numSignatures": 1,
			"hashes": []string{forms[p[0]]}, "hashAlgorithmOID": oidSHA256, "authData": []map[string]string{{"id": "otp", "value": code}}})
		if a.status != http.StatusOK {
			t.Fatalf("authorize with %s: %s", p[0], a.raw)
		}
		sigs := signatures(t, f.signHash(t, f.key, a.body["SAD"].(string), []string{forms[p[1]]}))
		f.verify(t, [][]byte{digest[:]}, sigs)
	}
	bad := strings.TrimSuffix(forms["std padded"], "=") + "=="
	want(t, f.call(t, f.key, "credentials/authorize", map[string]any{"credentialID": f.cred, "numSignatures": 1, "hashes": []string{bad},
		"hashAlgorithmOID": oidSHA256, "OTP": "123456"}), http.StatusBadRequest, csc.CodeInvalidRequest, "not base64")
}

// TestExplicitPathOff: with csc.explicit_authorize off and the OAuth
// server on, credentials say SCAL 2 and oauth2code, info no longer lists
// the explicit methods, and they refuse.
func TestExplicitPathOff(t *testing.T) {
	s := stack.New(t, stack.Options{CSC: func(o *csc.Options) { o.ExplicitOff, o.OAuth2URL = true, "https://firma.example.es/csc/v2" }})
	f := &fixture{Stack: s, clock: &clock{}, citizen: s.Advanced(11223344, "Carmen", "Ruiz Vidal")}
	f.cred = s.Certificate(f.citizen).ID
	_, f.key = s.Portal("Portal A", "https://a.example.es/ok")

	a := f.call(t, f.key, "credentials/info", map[string]any{"credentialID": f.cred})
	conforms(t, "credentials_info", a.raw)
	auth, _ := a.body["auth"].(map[string]any)
	if a.body["SCAL"] != "2" || auth["mode"] != "oauth2code" || a.body["authMode"] != "oauth2code" || a.body["OTP"] != nil {
		t.Fatalf("credentials/info: %s", a.raw)
	}
	info := s.CSC.Info()
	raw, _ := json.Marshal(info)
	conforms(t, "info", string(raw))
	if slices.Contains(info.Methods, "credentials/authorize") || slices.Contains(info.Methods, "credentials/sendOTP") ||
		!slices.Contains(info.AuthType, "oauth2code") {
		t.Fatalf("info: %s", raw)
	}
	want(t, f.call(t, f.key, "credentials/sendOTP", map[string]any{"credentialID": f.cred}), http.StatusBadRequest, csc.CodeInvalidRequest, "turned off")
	_, b64 := hashes("x")
	want(t, f.call(t, f.key, "credentials/authorize", map[string]any{"credentialID": f.cred, "numSignatures": 1, "hashes": b64,
		"hashAlgorithmOID": oidSHA256, "OTP": "123456"}), http.StatusBadRequest, csc.CodeInvalidRequest, "turned off")
	if n := s.SMSCount(f.citizen); n != 0 {
		t.Fatalf("%d SMS sent", n)
	}
}
