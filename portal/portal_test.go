package portal_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/store/sqlite"
)

func newRegistry(t *testing.T) (*portal.Registry, *sqlite.DB) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "firma.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return portal.New(db, portal.Options{}), db
}

func TestCreateValidates(t *testing.T) {
	r, _ := newRegistry(t)
	ctx := context.Background()
	ok := []string{"https://sede.example.es/ok"}
	for _, tc := range []struct {
		name  string
		spec  portal.Spec
		field string
	}{
		{"no name", portal.Spec{RedirectURLs: ok, IssueAPIKey: true}, "name"},
		{"no redirect", portal.Spec{Name: "x", IssueAPIKey: true}, "redirect_urls"},
		{"relative redirect", portal.Spec{Name: "x", RedirectURLs: []string{"/ok"}, IssueAPIKey: true}, "redirect_urls[0]"},
		{"plain http off loopback", portal.Spec{Name: "x", RedirectURLs: []string{"http://sede.example.es/ok"}, IssueAPIKey: true}, "redirect_urls[0]"},
		{"javascript", portal.Spec{Name: "x", RedirectURLs: []string{"javascript:alert(1)"}, IssueAPIKey: true}, "redirect_urls[0]"},
		{"user info", portal.Spec{Name: "x", RedirectURLs: []string{"https://a@evil.example/ok"}, IssueAPIKey: true}, "redirect_urls[0]"},
		{"no credentials", portal.Spec{Name: "x", RedirectURLs: ok}, "credentials"},
		{"bad fingerprint", portal.Spec{Name: "x", RedirectURLs: ok, CertSHA256: "abcd"}, "cert_sha256"},
		{"bad callback", portal.Spec{Name: "x", RedirectURLs: ok, IssueAPIKey: true, CallbackURL: "ftp://x/"}, "callback_url"},
		{"negative limit", portal.Spec{Name: "x", RedirectURLs: ok, IssueAPIKey: true, Limits: portal.Limits{MaxDocuments: -1}}, "max_documents"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Create(ctx, tc.spec)
			var fe *portal.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, portal.ErrInvalid) {
				t.Fatalf("error %v, want a FieldError on %s", err, tc.field)
			}
		})
	}
}

func TestAPIKeyShownOnceAndStoredHashed(t *testing.T) {
	r, db := newRegistry(t)
	ctx := context.Background()
	c, err := r.Create(ctx, portal.Spec{Name: "Sede", RedirectURLs: []string{"https://sede.example.es/ok"}, IssueAPIKey: true,
		CallbackURL: "https://sede.example.es/aviso"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.APIKey, c.Portal.ID+".") || len(c.CallbackKey) != 64 {
		t.Fatalf("secrets %q / %q", c.APIKey, c.CallbackKey)
	}
	stored, err := db.Portal(ctx, c.Portal.ID)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(c.APIKey))
	if hex.EncodeToString(stored.APIKeyHash) != hex.EncodeToString(sum[:]) {
		t.Fatal("the stored API key is not its SHA-256")
	}
	p, err := r.AuthenticateAPIKey(ctx, c.APIKey)
	if err != nil || p.ID != c.Portal.ID {
		t.Fatalf("authenticate: %v", err)
	}
	for _, bad := range []string{"", c.Portal.ID, c.APIKey + "x", c.APIKey[:len(c.APIKey)-1], "000000000000." + strings.SplitN(c.APIKey, ".", 2)[1]} {
		if _, err := r.AuthenticateAPIKey(ctx, bad); !errors.Is(err, portal.ErrUnauthenticated) {
			t.Errorf("key %q: %v", bad, err)
		}
	}
	// Rotation voids the old key.
	key2, err := r.RotateAPIKey(ctx, c.Portal.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.AuthenticateAPIKey(ctx, c.APIKey); !errors.Is(err, portal.ErrUnauthenticated) {
		t.Errorf("old key after rotation: %v", err)
	}
	if _, err := r.AuthenticateAPIKey(ctx, key2); err != nil {
		t.Errorf("new key: %v", err)
	}
	// A disabled portal cannot authenticate.
	if _, err := r.SetStatus(ctx, c.Portal.ID, store.PortalDisabled); err != nil {
		t.Fatal(err)
	}
	if _, err := r.AuthenticateAPIKey(ctx, key2); !errors.Is(err, portal.ErrDisabled) {
		t.Errorf("disabled portal: %v", err)
	}
}

func TestCertificateFingerprint(t *testing.T) {
	r, _ := newRegistry(t)
	ctx := context.Background()
	sum := sha256.Sum256([]byte("a client certificate"))
	fp := strings.ToUpper(hex.EncodeToString(sum[:]))
	var colons []string
	for i := 0; i < len(fp); i += 2 {
		colons = append(colons, fp[i:i+2])
	}
	c, err := r.Create(ctx, portal.Spec{Name: "mTLS", RedirectURLs: []string{"https://a.example.es/ok"}, CertSHA256: strings.Join(colons, ":")})
	if err != nil {
		t.Fatal(err)
	}
	if c.APIKey != "" {
		t.Error("an API key was issued unasked")
	}
	p, err := r.AuthenticateCert(ctx, sum[:])
	if err != nil || p.ID != c.Portal.ID {
		t.Fatalf("authenticate by certificate: %v", err)
	}
	other := sha256.Sum256([]byte("another"))
	if _, err := r.AuthenticateCert(ctx, other[:]); !errors.Is(err, portal.ErrUnauthenticated) {
		t.Errorf("unknown certificate: %v", err)
	}
	// The same certificate cannot belong to two portals, nor a name twice.
	if _, err := r.Create(ctx, portal.Spec{Name: "mTLS 2", RedirectURLs: []string{"https://a.example.es/ok"}, CertSHA256: fp}); !errors.Is(err, portal.ErrConflict) {
		t.Errorf("second portal with the certificate: %v", err)
	}
	if _, err := r.Create(ctx, portal.Spec{Name: "mTLS", RedirectURLs: []string{"https://a.example.es/ok"}, IssueAPIKey: true}); !errors.Is(err, portal.ErrConflict) {
		t.Errorf("second portal with the name: %v", err)
	}
}

func TestRedirectAllowedIsExact(t *testing.T) {
	p := &store.Portal{RedirectURLs: []string{"https://sede.example.es/ok", "http://127.0.0.1:8080/back"}}
	for _, tc := range []struct {
		u  string
		ok bool
	}{
		{"https://sede.example.es/ok", true},
		{"http://127.0.0.1:8080/back", true},
		{"https://sede.example.es/ok/", false},
		{"https://sede.example.es/ok?x=1", false},
		{"https://sede.example.es/okx", false},
		{"https://SEDE.example.es/ok", false},
		{"https://sede.example.es.evil.com/ok", false},
		{"", false},
	} {
		if got := portal.RedirectAllowed(p, tc.u); got != tc.ok {
			t.Errorf("RedirectAllowed(%q) = %t", tc.u, got)
		}
	}
}

func TestUpdateKeepsKeys(t *testing.T) {
	r, _ := newRegistry(t)
	ctx := context.Background()
	c, err := r.Create(ctx, portal.Spec{Name: "Sede", RedirectURLs: []string{"https://sede.example.es/ok"}, IssueAPIKey: true})
	if err != nil {
		t.Fatal(err)
	}
	p, cbKey, err := r.Update(ctx, c.Portal.ID, portal.Spec{Name: "Sede nueva", RedirectURLs: []string{"https://sede.example.es/ok2"},
		CallbackURL: "https://sede.example.es/aviso", Limits: portal.Limits{MaxDocuments: 5}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "Sede nueva" || p.MaxDocuments != 5 || len(cbKey) != 64 {
		t.Fatalf("updated %+v key %q", p, cbKey)
	}
	if _, err := r.AuthenticateAPIKey(ctx, c.APIKey); err != nil {
		t.Errorf("API key after update: %v", err)
	}
	if _, _, err := r.Update(ctx, "ABCDEF123456", portal.Spec{Name: "x", RedirectURLs: []string{"https://a.es/"}}); !errors.Is(err, portal.ErrNotFound) {
		t.Errorf("update of a missing portal: %v", err)
	}
}
