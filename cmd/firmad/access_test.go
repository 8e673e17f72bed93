package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/store/sqlite"
)

// recordAccess writes one record per difference from what the log says
// was applied, and nothing when nothing changed: a restart or a reload of
// the same file adds no records.
func TestRecordAccess(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "firma.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	l, err := audit.Open(ctx, db, audit.Options{Origin: "firma.test/audit"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	eva := access{kind: kindAuditor, name: "eva", role: audit.RoleAuditor, cred: credFingerprint("aa", "")}
	ruth := access{kind: kindStaff, name: "ruth", role: "registrar", cred: credFingerprint("bb", "")}
	ruthAgent := ruth
	ruthAgent.role = "video_agent"
	evaNewToken := eva
	evaNewToken.cred = credFingerprint("cc", "")
	steps := []struct {
		name string
		want []access
		n    int
		last audit.Event
	}{
		{"first start", []access{eva, ruth}, 2, audit.StaffCreated},
		{"same again", []access{eva, ruth}, 0, ""},
		{"role changed", []access{eva, ruthAgent}, 1, audit.StaffChanged},
		{"token changed", []access{evaNewToken, ruthAgent}, 1, audit.StaffChanged},
		{"ruth removed", []access{evaNewToken}, 1, audit.StaffDisabled},
		{"ruth back", []access{evaNewToken, ruth}, 1, audit.StaffCreated},
	}
	for _, s := range steps {
		before := l.Size()
		n, err := recordAccess(ctx, l, s.want, configActor)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if n != s.n || l.Size()-before != int64(s.n) {
			t.Fatalf("%s: %d records (log grew by %d), want %d", s.name, n, l.Size()-before, s.n)
		}
		if s.n == 0 {
			continue
		}
		p, err := l.Query(ctx, audit.Filter{Cursor: l.Size() - 1, Limit: 1})
		if err != nil || len(p.Records) != 1 {
			t.Fatalf("%s: %v", s.name, err)
		}
		if r := p.Records[0]; r.Event != s.last || r.Details[detailSource] != accessSource || r.Actor != configActor {
			t.Errorf("%s: last record %s %v by %v", s.name, r.Event, r.Details, r.Actor)
		}
	}
}
