package oauth

import (
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/store"
)

// TestDetails: what a credential authorization_details entry and the
// plain scope=credential form must hold, each refusal with its code.
func TestDetails(t *testing.T) {
	h1, h2 := sha256.Sum256([]byte("uno")), sha256.Sum256([]byte("dos"))
	b1, b2 := base64.StdEncoding.EncodeToString(h1[:]), base64.RawURLEncoding.EncodeToString(h2[:])
	const sha = "2.16.840.1.101.3.4.2.1"
	entry := func(extra string) string {
		return `[{"type":"credential","credentialID":"crt-1","hashAlgorithmOID":"` + sha + `","documentDigests":[{"hash":"` + b1 +
			`","label":"Uno"},{"hash":"` + b2 + `"}]` + extra + `}]`
	}
	for _, c := range []struct {
		name, raw, code, detail string
	}{
		{"not JSON", `{`, CodeInvalidDetails, "JSON array"},
		{"two entries", `[{"type":"credential"},{"type":"credential"}]`, CodeInvalidDetails, "exactly one"},
		{"another type", `[{"type":"openid_credential"}]`, CodeInvalidDetails, "exactly one"},
		{"no credential", `[{"type":"credential","hashAlgorithmOID":"` + sha + `","documentDigests":[{"hash":"` + b1 + `"}]}]`, CodeInvalidDetails, "credentialID"},
		{"unknown hash", strings.Replace(entry(""), sha, "1.2.3", 1), CodeInvalidDetails, "hashAlgorithmOID"},
		{"no digests", `[{"type":"credential","credentialID":"c","hashAlgorithmOID":"` + sha + `"}]`, CodeInvalidDetails, "documentDigests"},
		{"count mismatch", entry(`,"numSignatures":3`), CodeInvalidDetails, "numSignatures 3"},
		{"short digest", strings.Replace(entry(""), b1, "AAAA", 1), CodeInvalidDetails, "documentDigests[0].hash"},
		{"repeated digest", strings.Replace(entry(""), b2, b1, 1), CodeInvalidDetails, "repeats"},
		{"long label", strings.Replace(entry(""), `"Uno"`, `"`+strings.Repeat("x", 201)+`"`, 1), CodeInvalidDetails, "label"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := (&Server{}).details(&store.OAuthRequest{}, c.raw)
			e := errs.As(err)
			if e == nil || e.Code != c.code || !strings.Contains(e.Detail, c.detail) {
				t.Fatalf("got %v, want %s %q", err, c.code, c.detail)
			}
		})
	}
	r := &store.OAuthRequest{}
	if err := (&Server{}).details(r, entry(`,"numSignatures":2`)); err != nil {
		t.Fatal(err)
	}
	if r.CredentialID != "crt-1" || r.NumSignatures != 2 || r.Digests[0].Label != "Uno" || r.Digests[1].Label != "Documento 2" ||
		string(r.Digests[1].Hash) != string(h2[:]) || r.Details == "" {
		t.Fatalf("parsed %+v", r)
	}

	// The plain form: the same rules.
	form := url.Values{"credentialID": {"crt-1"}, "hashAlgorithmOID": {sha}, "numSignatures": {"2"}, "hashes": {b1 + "," + b2}}
	r = &store.OAuthRequest{}
	if err := (&Server{}).scopeCredential(r, form); err != nil || r.NumSignatures != 2 || r.Details != "" {
		t.Fatalf("scope=credential: %v %+v", err, r)
	}
	for _, bad := range []url.Values{
		{"hashAlgorithmOID": {sha}, "numSignatures": {"1"}, "hashes": {b1}},
		{"credentialID": {"c"}, "numSignatures": {"1"}, "hashes": {b1}},
		{"credentialID": {"c"}, "hashAlgorithmOID": {sha}, "numSignatures": {"1"}},
		{"credentialID": {"c"}, "hashAlgorithmOID": {sha}, "numSignatures": {"x"}, "hashes": {b1}},
		{"credentialID": {"c"}, "hashAlgorithmOID": {sha}, "numSignatures": {"2"}, "hashes": {b1 + "," + b1}},
	} {
		if err := (&Server{}).scopeCredential(&store.OAuthRequest{}, bad); err == nil {
			t.Errorf("scope=credential accepted %v", bad)
		}
	}
}
