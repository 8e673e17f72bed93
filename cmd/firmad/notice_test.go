package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/sms"
	"github.com/firma-cloud/firma/store/sqlite"
)

// Notices name the portal as citizens know it, and the longest name a
// portal may have still leaves the notice one valid SMS.
func TestPortalNamedNotices(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "firma.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	portals := portal.New(db, portal.Options{})
	long := string([]rune(strings.Repeat("Consejería de Hacienda y Administración Pública, ", 3))[:portal.MaxName])
	ids := map[string]string{}
	for _, name := range []string{"Sede de Pruebas", long} {
		c, err := portals.Create(ctx, portal.Spec{Name: name, RedirectURLs: []string{"https://sede.example.es/ok"}, IssueAPIKey: true})
		if err != nil {
			t.Fatal(err)
		}
		ids[name] = c.Portal.ID
	}
	rec := func(portal string) *audit.Record {
		return &audit.Record{Event: audit.KeyUsed, Portal: portal, Time: time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC),
			Documents: []audit.Document{{Hash: "sha256", Digest: strings.Repeat("ab", 32)}}}
	}
	tests := []struct {
		name, portal string
		want         string // the text says "a petición de " + want + "."
	}{
		{"a short name", ids["Sede de Pruebas"], "Sede de Pruebas"},
		{"the longest name", ids[long], long},
		{"an unknown portal: its ID", "p-gone", "p-gone"},
		{"no portal", "", "un servicio"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := portalNamed(db)(rec(tc.portal))
			if !strings.Contains(text, "a petición de "+tc.want+".") {
				t.Errorf("notice %q does not name %q", text, tc.want)
			}
			if err := sms.Check("+34600000002", text); err != nil {
				t.Errorf("SMS notice of %d runes: %v", utf8.RuneCountInString(text), err)
			}
		})
	}
}
