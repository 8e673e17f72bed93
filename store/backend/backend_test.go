package backend_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/store/backend"
	"github.com/firma-cloud/firma/store/postgres/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Cleanup()
	os.Exit(code)
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		driver  string
		source  func(t *testing.T) string
		wantErr string
	}{
		{"sqlite in a new directory", backend.SQLite, func(t *testing.T) string { return filepath.Join(t.TempDir(), "a", "b", "firma.db") }, ""},
		{"postgres", backend.Postgres, func(t *testing.T) string { return pgtest.New(t) }, ""},
		{"unknown driver", "mysql", func(*testing.T) string { return "x" }, "unknown store driver"},
		{"postgres without dsn", backend.Postgres, func(*testing.T) string { return "" }, "no postgres dsn"},
		{"sqlite without path", backend.SQLite, func(*testing.T) string { return "" }, "no sqlite path"},
		// A DSN that cannot be parsed: the error must not repeat it.
		{"bad dsn", backend.Postgres, func(*testing.T) string { return "host=db password=hunter2 port=notaport" }, "bad dsn"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := backend.Open(ctx, tc.driver, tc.source(t))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Open = %v, want an error with %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("the error repeats the password: %v", err)
				}
				if tc.driver == "mysql" && !errors.Is(err, backend.ErrDriver) {
					t.Fatalf("unknown driver error %v is not ErrDriver", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if err := st.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			// Migrated: a table of the last migration answers.
			if n, err := st.AuditSize(ctx); err != nil || n != 0 {
				t.Fatalf("audit size %d, %v", n, err)
			}
		})
	}
}
