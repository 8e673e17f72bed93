package csc_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/firma-cloud/firma/api/rest/cschttp"
	"github.com/firma-cloud/firma/api/rest/openapi/openapitest"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/csc"
	"github.com/firma-cloud/firma/csc/oauth"
	"github.com/firma-cloud/firma/e2e/stack"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/portal"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
)

func TestMain(m *testing.M) {
	code := m.Run()
	softhsmtest.Cleanup()
	os.Exit(code)
}

const oidSHA256 = "2.16.840.1.101.3.4.2.1"

// clock is the CSC service's time, moved by the tests.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return time.Now().Add(c.off) }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.off += d; c.mu.Unlock() }

type fixture struct {
	*stack.Stack
	clock   *clock
	citizen string
	cred    string
	cert    *x509.Certificate
	key     string // portal A's API key
	keyB    string // portal B's
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	c := &clock{}
	s := stack.New(t, stack.Options{CSC: func(o *csc.Options) { o.Clock = c.Now }})
	f := &fixture{Stack: s, clock: c, citizen: s.Advanced(11223344, "Carmen", "Ruiz Vidal")}
	crt := s.Certificate(f.citizen)
	f.cred, f.cert = crt.ID, crt.Cert
	_, f.key = s.Portal("Portal A", "https://a.example.es/ok")
	_, f.keyB = s.Portal("Portal B", "https://b.example.es/ok")
	return f
}

type answer struct {
	status int
	body   map[string]any
	raw    string
}

func (a answer) code() string { s, _ := a.body["error"].(string); return s }

func (a answer) desc() string { s, _ := a.body["error_description"].(string); return s }

// call posts a CSC method with the portal's API key as bearer token.
func (f *fixture) call(t testing.TB, key, method string, body any) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(http.MethodPost, f.Server.URL+"/csc/v2/"+method, rd)
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			t.Fatalf("%s: not JSON: %q", method, raw)
		}
	}
	return a
}

// want fails unless the answer has the status and, for errors, the CSC
// code and a description holding desc.
func want(t *testing.T, a answer, status int, code, desc string) {
	t.Helper()
	if a.status != status || a.code() != code || !strings.Contains(a.desc(), desc) {
		t.Fatalf("got %d %s %q, want %d %s %q\n%s", a.status, a.code(), a.desc(), status, code, desc, a.raw)
	}
}

func hashes(docs ...string) ([][]byte, []string) {
	var raw [][]byte
	var b64 []string
	for _, d := range docs {
		h := sha256.Sum256([]byte(d))
		raw = append(raw, h[:])
		b64 = append(b64, base64.StdEncoding.EncodeToString(h[:]))
	}
	return raw, b64
}

// otp sends a code and reads it from the SMS outbox.
func (f *fixture) otp(t testing.TB, key string) string {
	t.Helper()
	a := f.call(t, key, "credentials/sendOTP", map[string]any{"credentialID": f.cred})
	if a.status != http.StatusNoContent {
		t.Fatalf("sendOTP: %d %s", a.status, a.raw)
	}
	code, text := f.LastOTP(f.citizen)
	if !strings.Contains(text, "Portal") {
		t.Fatalf("SMS %q does not name the portal", text)
	}
	return code
}

// authorize returns a SAD for the hashes.
func (f *fixture) authorize(t testing.TB, key string, b64 []string) string {
	t.Helper()
	code := f.otp(t, key)
	a := f.call(t, key, "credentials/authorize", map[string]any{"credentialID": f.cred, "numSignatures": len(b64), "hashes": b64,
		"hashAlgorithmOID": oidSHA256, "authData": []map[string]string{{"id": "otp", "value": code}}})
	if a.status != http.StatusOK {
		t.Fatalf("authorize: %d %s", a.status, a.raw)
	}
	sad, _ := a.body["SAD"].(string)
	if sad == "" || a.body["expiresIn"].(float64) <= 0 {
		t.Fatalf("authorize answer %s", a.raw)
	}
	return sad
}

func (f *fixture) signHash(t *testing.T, key, sad string, b64 []string) answer {
	t.Helper()
	return f.call(t, key, "signatures/signHash", map[string]any{"credentialID": f.cred, "SAD": sad, "hashes": b64,
		"hashAlgorithmOID": oidSHA256, "signAlgo": "1.2.840.10045.4.3.2"})
}

// signatures decodes signHash's answer.
func signatures(t *testing.T, a answer) [][]byte {
	t.Helper()
	if a.status != http.StatusOK {
		t.Fatalf("signHash: %d %s", a.status, a.raw)
	}
	list, _ := a.body["signatures"].([]any)
	var out [][]byte
	for _, s := range list {
		b, err := base64.StdEncoding.DecodeString(s.(string))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// verify checks each signature over its hash with Go and with openssl.
func (f *fixture) verify(t *testing.T, raw, sigs [][]byte) {
	t.Helper()
	if len(sigs) != len(raw) {
		t.Fatalf("%d signatures for %d hashes", len(sigs), len(raw))
	}
	dir := t.TempDir()
	certPEM := filepath.Join(dir, "cert.pem")
	os.WriteFile(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.cert.Raw}), 0o600)
	pub := filepath.Join(dir, "pub.pem")
	if out, err := exec.Command("openssl", "x509", "-in", certPEM, "-pubkey", "-noout", "-out", pub).CombinedOutput(); err != nil {
		t.Fatalf("openssl x509: %v\n%s", err, out)
	}
	for i := range raw {
		if !ecdsa.VerifyASN1(f.cert.PublicKey.(*ecdsa.PublicKey), raw[i], sigs[i]) {
			t.Fatalf("signature %d does not verify with Go", i)
		}
		h, s := filepath.Join(dir, fmt.Sprint("h", i)), filepath.Join(dir, fmt.Sprint("s", i))
		os.WriteFile(h, raw[i], 0o600)
		os.WriteFile(s, sigs[i], 0o600)
		out, err := exec.Command("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-in", h, "-sigfile", s).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Signature Verified Successfully") {
			t.Fatalf("signature %d: openssl pkeyutl -verify: %v\n%s", i, err, out)
		}
	}
}

func TestInfo(t *testing.T) {
	f := newFixture(t)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		req, _ := http.NewRequest(method, f.Server.URL+"/csc/v2/info", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var info csc.InfoResponse
		json.NewDecoder(resp.Body).Decode(&info)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || info.Specs != csc.Spec || len(info.Methods) != 10 || info.Region != "ES" {
			t.Fatalf("%s info: %d %+v", method, resp.StatusCode, info)
		}
	}
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name, header string
		status       int
		code         string
	}{
		{"none", "", http.StatusUnauthorized, csc.CodeInvalidToken},
		{"wrong key", "Bearer not-a-key", http.StatusUnauthorized, csc.CodeInvalidToken},
		{"basic", "Basic dXNlcjpwYXNz", http.StatusUnauthorized, csc.CodeInvalidToken},
		{"empty bearer", "Bearer ", http.StatusUnauthorized, csc.CodeInvalidToken},
		{"good", "Bearer " + f.key, http.StatusOK, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, f.Server.URL+"/csc/v2/credentials/list", strings.NewReader(`{"userID":"`+f.citizen+`"}`))
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]any
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != c.status || (c.code != "" && body["error"] != c.code) {
				t.Fatalf("%d %v", resp.StatusCode, body)
			}
			if c.status == http.StatusUnauthorized && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatal("no WWW-Authenticate: Bearer")
			}
		})
	}
}

func TestCredentialsListAndInfo(t *testing.T) {
	f := newFixture(t)
	a := f.call(t, f.key, "credentials/list", map[string]any{"userID": f.citizen, "credInfo": true, "certificates": "chain", "certInfo": true, "authInfo": true})
	if a.status != http.StatusOK {
		t.Fatalf("list: %s", a.raw)
	}
	ids, _ := a.body["credentialIDs"].([]any)
	if len(ids) != 1 || ids[0] != f.cred {
		t.Fatalf("list: %v, want [%s]", ids, f.cred)
	}
	for _, c := range []struct {
		name string
		body map[string]any
	}{
		{"unknown citizen", map[string]any{"userID": stack.DNI(99999999)}},
		{"citizen without certificate", map[string]any{"userID": f.Advanced(22334455, "Ana", "Gil")}},
	} {
		if a := f.call(t, f.key, "credentials/list", c.body); a.status != http.StatusOK || len(a.body["credentialIDs"].([]any)) != 0 {
			t.Fatalf("%s: %s", c.name, a.raw)
		}
	}
	want(t, f.call(t, f.key, "credentials/list", map[string]any{}), http.StatusBadRequest, csc.CodeInvalidRequest, "userID")
	want(t, f.call(t, f.key, "credentials/list", map[string]any{"userID": "12"}), http.StatusBadRequest, csc.CodeInvalidRequest, "userID")

	info := f.call(t, f.key, "credentials/info", map[string]any{"credentialID": f.cred, "certificates": "chain", "certInfo": true, "authInfo": true})
	if info.status != http.StatusOK {
		t.Fatalf("info: %s", info.raw)
	}
	var ci csc.CredentialInfo
	json.Unmarshal([]byte(info.raw), &ci)
	// SCAL 1: the explicit path relays the code through the portal.
	if ci.SCAL != "1" || ci.AuthMode != "explicit" || ci.Auth == nil || ci.Auth.Mode != "explicit" || ci.OTP == nil || ci.OTP.Type != "online" ||
		ci.Key.Status != "enabled" || ci.Key.Len != 256 || ci.Cert == nil || ci.Cert.Status != "valid" || len(ci.Cert.Certificates) != 3 {
		t.Fatalf("info: %s", info.raw)
	}
	// The chain it returns verifies up to the root it names.
	var certs []*x509.Certificate
	for _, b := range ci.Cert.Certificates {
		der, _ := base64.StdEncoding.DecodeString(b)
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(certs[2])
	inter.AddCert(certs[1])
	if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Fatalf("chain: %v", err)
	}
	if !bytes.Equal(certs[0].Raw, f.cert.Raw) || ci.Cert.SerialNumber == "" || !strings.Contains(ci.Cert.SubjectDN, "RUIZ VIDAL") {
		t.Fatalf("cert info %+v", ci.Cert)
	}
	want(t, f.call(t, f.key, "credentials/info", map[string]any{"credentialID": "crt-nope"}), http.StatusBadRequest, csc.CodeInvalidRequest, "credentialID")

	// After a renewal the old credential is listed unless onlyValid, page
	// by page, and says it can no longer sign.
	renewed, err := f.CA.Renew(context.Background(), f.citizen)
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	token := ""
	for range 3 {
		a := f.call(t, f.key, "credentials/list", map[string]any{"userID": f.citizen, "maxResults": 1, "pageToken": token})
		for _, id := range a.body["credentialIDs"].([]any) {
			all = append(all, id.(string))
		}
		token, _ = a.body["nextPageToken"].(string)
		if token == "" {
			break
		}
	}
	if len(all) != 2 || !slices.Contains(all, f.cred) || !slices.Contains(all, renewed.ID) {
		t.Fatalf("all credentials: %v", all)
	}
	a = f.call(t, f.key, "credentials/list", map[string]any{"userID": f.citizen, "onlyValid": true})
	if ids := a.body["credentialIDs"].([]any); len(ids) != 1 || ids[0] != renewed.ID {
		t.Fatalf("valid credentials: %s", a.raw)
	}
	old := f.call(t, f.key, "credentials/info", map[string]any{"credentialID": f.cred})
	json.Unmarshal([]byte(old.raw), &ci)
	if ci.Key.Status != "disabled" || ci.Cert.Status != "revoked" {
		t.Fatalf("old credential: %s", old.raw)
	}
	want(t, f.call(t, f.key, "credentials/sendOTP", map[string]any{"credentialID": f.cred}), http.StatusForbidden, csc.CodeAccessDenied, "revoked")
	want(t, f.call(t, f.key, "credentials/info", map[string]any{"credentialID": f.cred, "certificates": "all"}), http.StatusBadRequest, csc.CodeInvalidRequest, "certificates")
}

// TestSADBoundToHashes drives authorize + signHash and every refusal the
// SCAL2 binding calls for.
func TestSADBoundToHashes(t *testing.T) {
	f := newFixture(t)
	raw, b64 := hashes("doc-1", "doc-2", "doc-3")
	sad := f.authorize(t, f.key, b64)

	// Two of the three: signed and verified.
	f.verify(t, raw[:2], signatures(t, f.signHash(t, f.key, sad, b64[:2])))

	_, other := hashes("not authorised")
	cases := []struct {
		name   string
		key    string
		sad    string
		hashes []string
		status int
		code   string
		desc   string
	}{
		{"same hash again", f.key, sad, b64[:1], http.StatusBadRequest, csc.CodeInvalidRequest, "Hash is not authorized by the SAD: hashes[0] was already signed"},
		{"hash not in the SAD", f.key, sad, other, http.StatusBadRequest, csc.CodeInvalidRequest, "Hash is not authorized by the SAD: hashes[0] is not one it lists"},
		{"more than numSignatures", f.key, sad, []string{b64[2], other[0]}, http.StatusBadRequest, csc.CodeInvalidRequest, "it allows 1 more"},
		{"another portal", f.keyB, sad, b64[2:], http.StatusBadRequest, csc.CodeInvalidRequest, "SAD"},
		{"forged SAD", f.key, "AAAA" + sad[4:], b64[2:], http.StatusBadRequest, csc.CodeInvalidRequest, "SAD"},
		{"hash listed twice", f.key, sad, []string{b64[2], b64[2]}, http.StatusBadRequest, csc.CodeInvalidRequest, "repeats"},
		{"short hash", f.key, sad, []string{base64.StdEncoding.EncodeToString([]byte("short"))}, http.StatusBadRequest, csc.CodeInvalidRequest, "bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want(t, f.signHash(t, c.key, c.sad, c.hashes), c.status, c.code, c.desc)
		})
	}
	// Nothing above spent the third hash: the all-or-nothing reservation
	// left it for its own request.
	f.verify(t, raw[2:], signatures(t, f.signHash(t, f.key, sad, b64[2:])))
	want(t, f.signHash(t, f.key, sad, b64[2:]), http.StatusBadRequest, csc.CodeInvalidRequest, "allows 0 more")

	// Security officers see every key use: one record per signing,
	// naming each hash.
	page, err := f.Audit.Query(context.Background(), audit.Filter{KeyID: f.cert2key(t), Events: []audit.Event{audit.KeyUsed}})
	if err != nil {
		t.Fatal(err)
	}
	var signed int
	for _, r := range page.Records {
		if r.Details["api"] != "csc" || r.Portal == "" || r.Citizen != f.citizen {
			t.Fatalf("audit record %+v", r)
		}
		if r.Outcome == audit.Success && r.Details[audit.DetailAlgorithm] == "ecdsa-p256" {
			signed += len(r.Documents)
		}
	}
	if len(page.Records) != 2 || signed != 3 {
		t.Fatalf("%d key.used records covering %d signed hashes, want 2 and 3", len(page.Records), signed)
	}
	otps, err := f.Audit.Query(context.Background(), audit.Filter{Citizen: f.citizen, Events: []audit.Event{audit.OTPSent, audit.OTPChecked}})
	if err != nil {
		t.Fatal(err)
	}
	if len(otps.Records) != 2 || otps.Records[0].Event != audit.OTPSent || otps.Records[1].Event != audit.OTPChecked ||
		len(otps.Records[1].Documents) != 3 {
		t.Fatalf("otp records %+v", otps.Records)
	}

	// A signature algorithm that does not fit the key.
	sad2 := f.authorize(t, f.key, b64[:1])
	a := f.call(t, f.key, "signatures/signHash", map[string]any{"credentialID": f.cred, "SAD": sad2, "hashes": b64[:1],
		"hashAlgorithmOID": oidSHA256, "signAlgo": "1.2.840.113549.1.1.11"})
	want(t, a, http.StatusBadRequest, csc.CodeInvalidRequest, "does not fit")
	// The SAD expires.
	f.clock.Add(6 * time.Minute)
	want(t, f.signHash(t, f.key, sad2, b64[:1]), http.StatusBadRequest, csc.CodeInvalidRequest, "SAD expired")
	// An hour later it is purged, and then unknown.
	if n, err := f.CSC.Purge(context.Background()); err != nil || n != 0 {
		t.Fatalf("purge before the hour: %d %v", n, err)
	}
	f.clock.Add(time.Hour)
	if n, err := f.CSC.Purge(context.Background()); err != nil || n != 2 {
		t.Fatalf("purge: %d %v, want 2", n, err)
	}
	want(t, f.signHash(t, f.key, sad2, b64[:1]), http.StatusBadRequest, csc.CodeInvalidRequest, "invalid parameter SAD")
}

func TestAuthorizeRefusals(t *testing.T) {
	f := newFixture(t)
	_, b64 := hashes("a", "b")
	body := func(mut func(map[string]any)) map[string]any {
		m := map[string]any{"credentialID": f.cred, "numSignatures": 2, "hashes": b64, "hashAlgorithmOID": oidSHA256,
			"authData": []map[string]string{{"id": "otp", "value": "123456"}}}
		mut(m)
		return m
	}
	cases := []struct {
		name string
		mut  func(map[string]any)
		desc string
	}{
		{"count mismatch", func(m map[string]any) { m["numSignatures"] = 3 }, "must match"},
		{"no numSignatures", func(m map[string]any) { delete(m, "numSignatures") }, "numSignatures"},
		{"no hashes", func(m map[string]any) { delete(m, "hashes"); m["numSignatures"] = 1 }, "SCAL2"},
		{"unknown hash algorithm", func(m map[string]any) { m["hashAlgorithmOID"] = "1.2.3" }, "hashAlgorithmOID"},
		{"duplicate hashes", func(m map[string]any) { m["hashes"] = []string{b64[0], b64[0]} }, "repeats"},
		{"over multisign", func(m map[string]any) { m["numSignatures"] = 1000 }, "multisign"},
		{"unknown credential", func(m map[string]any) { m["credentialID"] = "crt-0000" }, "credentialID"},
		{"a PIN", func(m map[string]any) { m["PIN"] = "1234" }, "PIN"},
		{"bad JSON type", func(m map[string]any) { m["numSignatures"] = "two" }, "numSignatures"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want(t, f.call(t, f.key, "credentials/authorize", body(c.mut)), http.StatusBadRequest, csc.CodeInvalidRequest, c.desc)
		})
	}
	// No OTP sent yet.
	want(t, f.call(t, f.key, "credentials/authorize", body(func(map[string]any) {})), http.StatusBadRequest, csc.CodeInvalidOTP, "sendOTP first")
	want(t, f.call(t, f.key, "credentials/authorize", body(func(m map[string]any) { m["authData"] = []map[string]string{{"id": "otp", "value": "12x"}} })),
		http.StatusBadRequest, csc.CodeInvalidOTP, "6 digits")
}

func TestOTPRules(t *testing.T) {
	f := newFixture(t)
	_, b64 := hashes("x")
	auth := func(key, otp string) answer {
		return f.call(t, key, "credentials/authorize", map[string]any{"credentialID": f.cred, "numSignatures": 1, "hashes": b64,
			"hashAlgorithmOID": oidSHA256, "OTP": otp})
	}
	code := f.otp(t, f.key)
	wrong := "000000"
	if code == wrong {
		wrong = "999999"
	}
	// Resend at once: too soon; the code in hand still works.
	want(t, f.call(t, f.key, "credentials/sendOTP", map[string]any{"credentialID": f.cred}), http.StatusTooManyRequests, csc.CodeInvalidRequest, "seconds")
	// Portal B cannot use the code sent for portal A.
	want(t, auth(f.keyB, code), http.StatusBadRequest, csc.CodeInvalidOTP, "sendOTP first")
	want(t, auth(f.key, wrong), http.StatusBadRequest, csc.CodeInvalidOTP, "2 tries left")
	if a := auth(f.key, code); a.status != http.StatusOK {
		t.Fatalf("right code: %s", a.raw)
	}
	want(t, auth(f.key, code), http.StatusBadRequest, csc.CodeInvalidOTP, "already used")

	// Three wrong codes lock it, and sendOTP waits out the lockout.
	f.clock.Add(time.Minute)
	f.otp(t, f.key)
	want(t, auth(f.key, wrong), http.StatusBadRequest, csc.CodeInvalidOTP, "2 tries left")
	want(t, auth(f.key, wrong), http.StatusBadRequest, csc.CodeInvalidOTP, "1 try left")
	want(t, auth(f.key, wrong), http.StatusForbidden, csc.CodeAccessDenied, "locked")
	want(t, f.call(t, f.key, "credentials/sendOTP", map[string]any{"credentialID": f.cred}), http.StatusForbidden, csc.CodeAccessDenied, "locked")
	f.clock.Add(16 * time.Minute)
	f.otp(t, f.key)

	// An expired code.
	f.clock.Add(6 * time.Minute)
	want(t, auth(f.key, f.mustLastOTP(t)), http.StatusBadRequest, csc.CodeInvalidOTP, "expired")

	// Resends: three more after the first, 30 s apart.
	f.otp(t, f.key)
	for i := range 3 {
		f.clock.Add(31 * time.Second)
		if a := f.call(t, f.key, "credentials/sendOTP", map[string]any{"credentialID": f.cred}); a.status != http.StatusNoContent {
			t.Fatalf("resend %d: %s", i+1, a.raw)
		}
	}
	f.clock.Add(31 * time.Second)
	want(t, f.call(t, f.key, "credentials/sendOTP", map[string]any{"credentialID": f.cred}), http.StatusTooManyRequests, csc.CodeInvalidRequest, "most allowed")
	// Only the newest code works.
	if a := auth(f.key, f.mustLastOTP(t)); a.status != http.StatusOK {
		t.Fatalf("newest code: %s", a.raw)
	}
}

func (f *fixture) cert2key(t testing.TB) string {
	t.Helper()
	c, err := f.CA.Certificate(context.Background(), f.cred)
	if err != nil {
		t.Fatal(err)
	}
	return c.KeyID
}

func (f *fixture) mustLastOTP(t *testing.T) string {
	code, _ := f.LastOTP(f.citizen)
	return code
}

// TestSADSpentOnceAcrossNodes races signHash calls on two CSC services
// sharing the store, as two firmad nodes do: each hash is signed once.
func TestSADSpentOnceAcrossNodes(t *testing.T) {
	f := newFixture(t)
	other, err := csc.New(csc.Options{Store: f.DB, Certificates: f.CA, Keys: f.Keys, Signing: f.Signing, Citizens: f.Registry, SMS: f.Outbox,
		OTP: mustHasher(t, f.OTPKey)})
	if err != nil {
		t.Fatal(err)
	}
	node2 := httptestServer(t, other, f)
	raw, b64 := hashes("race-1", "race-2", "race-3", "race-4")
	sad := f.authorize(t, f.key, b64)
	var (
		mu   sync.Mutex
		wins = map[int]int{}
		wg   sync.WaitGroup
	)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := f.Server.URL
			if i%2 == 1 {
				base = node2
			}
			h := i % 4
			body, _ := json.Marshal(map[string]any{"credentialID": f.cred, "SAD": sad, "hashes": b64[h : h+1], "hashAlgorithmOID": oidSHA256,
				"signAlgo": "1.2.840.10045.4.3.2"})
			req, _ := http.NewRequest(http.MethodPost, base+"/csc/v2/signatures/signHash", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+f.key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			var out map[string]any
			json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				sig, _ := base64.StdEncoding.DecodeString(out["signatures"].([]any)[0].(string))
				if !ecdsa.VerifyASN1(f.cert.PublicKey.(*ecdsa.PublicKey), raw[h], sig) {
					t.Errorf("hash %d: bad signature", h)
				}
				mu.Lock()
				wins[h]++
				mu.Unlock()
			} else if resp.StatusCode != http.StatusBadRequest || !strings.Contains(out["error_description"].(string), "Hash is not authorized by the SAD") {
				t.Errorf("hash %d: %d %v", h, resp.StatusCode, out)
			}
		}()
	}
	wg.Wait()
	for h := range 4 {
		if wins[h] != 1 {
			t.Fatalf("hash %d signed %d times, want once", h, wins[h])
		}
	}
}

func TestErrorsAreCSCJSON(t *testing.T) {
	f := newFixture(t)
	for _, c := range []struct {
		name, path, body, ctype string
		status                  int
	}{
		{"not JSON", "credentials/info", "{", "application/json", http.StatusBadRequest},
		{"empty body", "credentials/info", "", "application/json", http.StatusBadRequest},
		{"wrong content type", "credentials/info", "{}", "text/plain", http.StatusUnsupportedMediaType},
		{"unknown method", "signatures/signPolling", "{}", "application/json", http.StatusNotFound},
		{"async signing", "signatures/signHash", `{"credentialID":"x","SAD":"y","hashes":["z"],"signAlgo":"1","operationMode":"A"}`, "application/json", http.StatusBadRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, f.Server.URL+"/csc/v2/"+c.path, strings.NewReader(c.body))
			req.Header.Set("Content-Type", c.ctype)
			req.Header.Set("Authorization", "Bearer "+f.key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]string
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			if resp.StatusCode != c.status || body["error"] == "" || body["error_description"] == "" {
				t.Fatalf("%d %v", resp.StatusCode, body)
			}
		})
	}
}

func mustHasher(t *testing.T, key []byte) *policy.OTPHasher {
	t.Helper()
	h, err := policy.NewOTPHasher(key)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// httptestServer serves svc as a second node and returns its URL.
func httptestServer(t *testing.T, svc *csc.Service, f *fixture) string {
	t.Helper()
	mux := http.NewServeMux()
	cschttp.Register(mux, svc, f.Portals, nil)
	srv := httptest.NewServer(openapitest.Handler(t, mux))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestRSASchemes signs with an RSA credential in each scheme a CSC client
// can name, and checks every signature with Go and openssl.
func TestRSASchemes(t *testing.T) {
	clk := &clock{}
	s := stack.New(t, stack.Options{CA: func(c *ca.Config) { c.CitizenKeyType = keystore.RSA2048 }, CSC: func(o *csc.Options) { o.Clock = clk.Now }})
	f := &fixture{Stack: s, clock: clk, citizen: s.Advanced(55667788, "Pedro", "Sanz Gil")}
	crt := s.Certificate(f.citizen)
	f.cred, f.cert = crt.ID, crt.Cert
	_, f.key = s.Portal("Portal RSA", "https://rsa.example.es/ok")
	pub := f.cert.PublicKey.(*rsa.PublicKey)

	info := f.call(t, f.key, "credentials/info", map[string]any{"credentialID": f.cred})
	var ci csc.CredentialInfo
	json.Unmarshal([]byte(info.raw), &ci)
	if ci.Key.Len != 2048 || ci.Key.Curve != "" || !slices.Contains(ci.Key.Algo, "1.2.840.113549.1.1.10") {
		t.Fatalf("key info %+v", ci.Key)
	}
	pssParams := func(saltLen int) string {
		sha256ID := pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}, Parameters: asn1.NullRawValue}
		mgfParams, _ := asn1.Marshal(sha256ID)
		der, err := asn1.Marshal(struct {
			Hash pkix.AlgorithmIdentifier `asn1:"explicit,tag:0"`
			MGF  pkix.AlgorithmIdentifier `asn1:"explicit,tag:1"`
			Salt int                      `asn1:"explicit,tag:2"`
		}{sha256ID, pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}, Parameters: asn1.RawValue{FullBytes: mgfParams}}, saltLen})
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(der)
	}
	cases := []struct {
		name, algo, params string
		pss                bool
		pkeyopt            []string
	}{
		{"sha256WithRSAEncryption", "1.2.840.113549.1.1.11", "", false, []string{"digest:sha256"}},
		{"rsaEncryption", "1.2.840.113549.1.1.1", "", false, []string{"digest:sha256"}},
		{"RSASSA-PSS", "1.2.840.113549.1.1.10", pssParams(32), true, []string{"digest:sha256", "rsa_padding_mode:pss", "rsa_pss_saltlen:32"}},
	}
	dir := t.TempDir()
	certPEM := filepath.Join(dir, "cert.pem")
	os.WriteFile(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.cert.Raw}), 0o600)
	pubPEM := filepath.Join(dir, "pub.pem")
	if out, err := exec.Command("openssl", "x509", "-in", certPEM, "-pubkey", "-noout", "-out", pubPEM).CombinedOutput(); err != nil {
		t.Fatalf("openssl x509: %v\n%s", err, out)
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.clock.Add(time.Minute) // past the resend gap
			raw, b64 := hashes(fmt.Sprint("rsa document ", i))
			sad := f.authorize(t, f.key, b64)
			a := f.call(t, f.key, "signatures/signHash", map[string]any{"credentialID": f.cred, "SAD": sad, "hashes": b64,
				"hashAlgorithmOID": oidSHA256, "signAlgo": c.algo, "signAlgoParams": c.params})
			sig := signatures(t, a)[0]
			var err error
			if c.pss {
				err = rsa.VerifyPSS(pub, crypto.SHA256, raw[0], sig, &rsa.PSSOptions{SaltLength: 32})
			} else {
				err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, raw[0], sig)
			}
			if err != nil {
				t.Fatalf("Go: %v", err)
			}
			h, sg := filepath.Join(dir, fmt.Sprint("h", i)), filepath.Join(dir, fmt.Sprint("s", i))
			os.WriteFile(h, raw[0], 0o600)
			os.WriteFile(sg, sig, 0o600)
			args := []string{"pkeyutl", "-verify", "-pubin", "-inkey", pubPEM, "-in", h, "-sigfile", sg}
			for _, o := range c.pkeyopt {
				args = append(args, "-pkeyopt", o)
			}
			if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil || !strings.Contains(string(out), "Signature Verified Successfully") {
				t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
	t.Run("PSS with a salt the key cannot use", func(t *testing.T) {
		f.clock.Add(time.Minute)
		_, b64 := hashes("rsa salt")
		sad := f.authorize(t, f.key, b64)
		a := f.call(t, f.key, "signatures/signHash", map[string]any{"credentialID": f.cred, "SAD": sad, "hashes": b64,
			"hashAlgorithmOID": oidSHA256, "signAlgo": "1.2.840.113549.1.1.10", "signAlgoParams": pssParams(20)})
		want(t, a, http.StatusBadRequest, csc.CodeInvalidRequest, "salt length")
		// No parameters at all: the specification requires them for PSS.
		a = f.call(t, f.key, "signatures/signHash", map[string]any{"credentialID": f.cred, "SAD": sad, "hashes": b64,
			"hashAlgorithmOID": oidSHA256, "signAlgo": "1.2.840.113549.1.1.10"})
		want(t, a, http.StatusBadRequest, csc.CodeInvalidRequest, "missing parameter signAlgoParams")
		// Refused before anything was reserved: the SAD still signs.
		a = f.call(t, f.key, "signatures/signHash", map[string]any{"credentialID": f.cred, "SAD": sad, "hashes": b64,
			"hashAlgorithmOID": oidSHA256, "signAlgo": "1.2.840.113549.1.1.10", "signAlgoParams": pssParams(32)})
		signatures(t, a)
	})
	t.Run("ECDSA on an RSA key", func(t *testing.T) {
		f.clock.Add(time.Minute)
		_, b64 := hashes("rsa ecdsa")
		sad := f.authorize(t, f.key, b64)
		want(t, f.signHash(t, f.key, sad, b64), http.StatusBadRequest, csc.CodeInvalidRequest, "does not fit")
	})
}

// TestMutualTLSPortal: a portal registered with its client certificate's
// fingerprint is the caller when it presents that certificate; an
// unregistered certificate is refused.
func TestMutualTLSPortal(t *testing.T) {
	f := newFixture(t)
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Portal client CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	caCert, _ := x509.ParseCertificate(caDER)
	client := func(cn string) tls.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	registered, stranger := client("portal-mtls"), client("stranger")
	sum := sha256.Sum256(registered.Certificate[0])
	created, err := f.Portals.Create(context.Background(), portal.Spec{Name: "Portal mTLS", RedirectURLs: []string{"https://m.example.es/ok"},
		CertSHA256: fmt.Sprintf("%x", sum)})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	cschttp.Register(mux, f.CSC, f.Portals, nil)
	// The OAuth token endpoint authenticates the same client by the same
	// certificate (tls_client_auth).
	osrv, err := oauth.New(oauth.Options{Store: f.DB, Clients: f.DB, Passwords: f.Registry, CSC: f.CSC, ConsentURL: "https://firma.example.es/sign/consent/"})
	if err != nil {
		t.Fatal(err)
	}
	cschttp.RegisterOAuth(mux, f.CSC, osrv, nil)
	srv := httptest.NewUnstartedServer(openapitest.Handler(t, mux))
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	srv.TLS = &tls.Config{ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven}
	srv.StartTLS()
	defer srv.Close()

	for _, c := range []struct {
		name   string
		cert   *tls.Certificate
		status int
	}{
		{"registered certificate", &registered, http.StatusOK},
		{"unregistered certificate", &stranger, http.StatusUnauthorized},
		{"no certificate", nil, http.StatusUnauthorized},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr := srv.Client().Transport.(*http.Transport).Clone()
			if c.cert != nil {
				tr.TLSClientConfig.Certificates = []tls.Certificate{*c.cert}
			}
			resp, err := (&http.Client{Transport: tr}).Post(srv.URL+"/csc/v2/credentials/list", "application/json",
				strings.NewReader(`{"userID":"`+f.citizen+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if c.status == http.StatusOK && !strings.Contains(string(body), f.cred) {
				t.Fatalf("list: %s", body)
			}
			resp, err = (&http.Client{Transport: tr}).PostForm(srv.URL+"/csc/v2/oauth2/token",
				url.Values{"grant_type": {"client_credentials"}, "client_id": {created.Portal.ID}})
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status || (c.status == http.StatusOK) != strings.Contains(string(body), "access_token") {
				t.Fatalf("token by certificate: %d %s", resp.StatusCode, body)
			}
		})
	}
}

// TestSignHashAuditRefused checks that with the audit store refusing
// appends signHash releases nothing and spends nothing: the same SAD signs
// the same hash once the log is back, and then never again.
func TestSignHashAuditRefused(t *testing.T) {
	f := newFixture(t)
	raw, b64 := hashes("acta-1")
	sad := f.authorize(t, f.key, b64)
	repair := f.RefuseAudit(t)
	a := f.signHash(t, f.key, sad, b64)
	want(t, a, http.StatusServiceUnavailable, a.code(), "audit log is unavailable")
	if _, ok := a.body["signatures"]; ok {
		t.Fatalf("signatures left with the audit store down: %s", a.raw)
	}
	repair()
	f.verify(t, raw, signatures(t, f.signHash(t, f.key, sad, b64)))
	// Replayed: the SAD's hash is spent.
	want(t, f.signHash(t, f.key, sad, b64), http.StatusBadRequest, csc.CodeInvalidRequest, "Hash is not authorized by the SAD")

	page, err := f.Audit.Query(context.Background(), audit.Filter{KeyID: f.cert2key(t), Events: []audit.Event{audit.KeyActivated, audit.KeyUsed}})
	if err != nil {
		t.Fatal(err)
	}
	// The refused try left no record (the log was down); the signature
	// left its two, linked.
	var act, used *audit.Record
	for _, r := range page.Records {
		switch {
		case r.Event == audit.KeyActivated && r.Outcome == audit.Success:
			act = r
		case r.Event == audit.KeyUsed && r.Outcome == audit.Success:
			used = r
		}
	}
	if act == nil || used == nil || act.Details[audit.DetailActivation] != used.Details[audit.DetailActivation] ||
		act.Details["evidence"] != "csc-sad" || used.Details[audit.DetailAlgorithm] != "ecdsa-p256" || used.Details[audit.DetailFormat] != "raw" ||
		used.Details["api"] != "csc" || act.Seq > used.Seq {
		t.Fatalf("records %+v", page.Records)
	}
}

func TestNewNeedsSigning(t *testing.T) {
	f := newFixture(t)
	if _, err := csc.New(csc.Options{Store: f.DB, Certificates: f.CA, Keys: f.Keys, Citizens: f.Registry, SMS: f.Outbox,
		OTP: mustHasher(t, f.OTPKey)}); err == nil {
		t.Fatal("csc.New accepted no signing service")
	}
}
