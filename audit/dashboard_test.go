package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/audit"
)

// The Grafana dashboard only charts metrics the code exports: every
// firma_* name in its queries is declared in the module's Go source, and
// the audit ones are registered by a running Log.
func TestDashboardMetricsExist(t *testing.T) {
	b, err := os.ReadFile("../deploy/grafana/firma.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			ID      int    `json:"id"`
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard is not JSON: %v", err)
	}
	declared := map[string]bool{}
	decl := regexp.MustCompile(`"(firma_[a-z0-9_]+)"`)
	err = filepath.WalkDir("..", func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // another build removed it meanwhile
		}
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, m := range decl.FindAllStringSubmatch(string(src), -1) {
			declared[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	db, _ := openDB(t)
	reg := prometheus.NewRegistry()
	l, err := audit.Open(context.Background(), db, audit.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Append(context.Background(), sample(0)); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for _, mf := range mfs {
		registered[mf.GetName()] = true
	}
	used := regexp.MustCompile(`firma_[a-z0-9_]+`)
	ids := map[int]bool{}
	queries := 0
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		for _, tg := range p.Targets {
			queries++
			for _, name := range used.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
				if !declared[base] {
					t.Errorf("panel %q charts %s, which no Go source declares", p.Title, base)
				}
				// The signature notifier registers its own counter when it
				// starts (NotifySignatures), not the log.
				if strings.HasPrefix(base, "firma_audit_") && !registered[base] && base != "firma_audit_notifications_total" {
					t.Errorf("panel %q charts %s, which the audit log does not register", p.Title, base)
				}
			}
		}
	}
	if queries < 20 {
		t.Errorf("only %d queries in the dashboard", queries)
	}
}
