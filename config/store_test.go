package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// withStore returns testdata/good.yaml with its store section replaced.
func withStore(t *testing.T, section string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	from := strings.Index(s, "store:\n")
	to := strings.Index(s, "auth:\n")
	path := filepath.Join(t.TempDir(), "firmad.yaml")
	if err := os.WriteFile(path, []byte(s[:from]+section+s[to:]), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestStoreSources(t *testing.T) {
	dir := t.TempDir()
	dsnFile := filepath.Join(dir, "dsn")
	if err := os.WriteFile(dsnFile, []byte("host=db.internal user=firma password=from-file dbname=firma\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	tests := []struct {
		name    string
		section string
		env     map[string]string
		driver  string
		source  string
		field   string // of the error, "" for none
	}{
		{"sqlite", "store:\n  driver: sqlite\n  path: /var/lib/firma/firma.db\n", nil, "sqlite", "/var/lib/firma/firma.db", ""},
		{"postgres dsn without password", "store:\n  driver: postgres\n  dsn: host=db.internal user=firma dbname=firma\n", nil,
			"postgres", "host=db.internal user=firma dbname=firma", ""},
		{"postgres dsn from env", "store:\n  driver: postgres\n", map[string]string{EnvStoreDSN: "postgres://firma:from-env@db/firma"},
			"postgres", "postgres://firma:from-env@db/firma", ""},
		{"driver from env", "store:\n  driver: sqlite\n  path: x.db\n",
			map[string]string{"FIRMA_STORE_DRIVER": "postgres", EnvStoreDSN: "host=db"}, "postgres", "host=db", ""},
		{"postgres dsn file", "store:\n  driver: postgres\n  dsn_file: " + dsnFile + "\n", nil,
			"postgres", "host=db.internal user=firma password=from-file dbname=firma", ""},
		{"env wins over the file", "store:\n  driver: postgres\n  dsn_file: " + dsnFile + "\n", map[string]string{EnvStoreDSN: "host=env"},
			"postgres", "host=env", ""},
		{"password in the file (keywords)", "store:\n  driver: postgres\n  dsn: host=db password=hunter2\n", nil, "", "", "store.dsn"},
		{"password in the file (URL)", "store:\n  driver: postgres\n  dsn: postgres://firma:hunter2@db/firma\n", nil, "", "", "store.dsn"},
		{"password in the file (URL query)", "store:\n  driver: postgres\n  dsn: postgres://db/firma?password=hunter2\n", nil, "", "", "store.dsn"},
		{"postgres without dsn", "store:\n  driver: postgres\n", nil, "", "", "store.dsn"},
		{"missing dsn file", "store:\n  driver: postgres\n  dsn_file: " + filepath.Join(dir, "none") + "\n", nil, "", "", "store.dsn_file"},
		{"empty dsn file", "store:\n  driver: postgres\n  dsn_file: " + empty + "\n", nil, "", "", "store.dsn_file"},
		{"unknown driver", "store:\n  driver: mysql\n", nil, "", "", "store.driver"},
		{"sqlite without path", "store:\n  driver: sqlite\n  path: \"\"\n", nil, "", "", "store.path"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(withStore(t, tc.section), envMap(tc.env), nil)
			if tc.field != "" {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != tc.field {
					t.Fatalf("Load = %v, want an error on %s", err, tc.field)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("the error repeats the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Store.Driver != tc.driver || c.Store.Source() != tc.source {
				t.Fatalf("driver %q source %q, want %q %q", c.Store.Driver, c.Store.Source(), tc.driver, tc.source)
			}
			// The DSN never prints.
			out, err := yaml.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			if s := string(out); strings.Contains(s, "from-env") || strings.Contains(s, "from-file") || !strings.Contains(s, "driver: "+tc.driver) {
				t.Fatalf("marshalled config shows the DSN: %s", s)
			}
		})
	}
}

func TestDSNHasPassword(t *testing.T) {
	tests := []struct {
		dsn  string
		want bool
	}{
		{"host=db user=firma dbname=firma", false},
		{"host=db user=firma password=x", true},
		{"host=db PASSWORD = x", true},
		{"password=x host=db", true},
		{"host=db passfile=/run/secrets/pgpass", false},
		{"postgres://firma@db/firma", false},
		{"postgres://firma:x@db/firma", true},
		{"postgresql://db/firma?sslmode=require&password=x", true},
		{"postgres://db/firma?sslmode=require", false},
	}
	for _, tc := range tests {
		if got := DSNHasPassword(tc.dsn); got != tc.want {
			t.Errorf("DSNHasPassword(%q) = %v, want %v", tc.dsn, got, tc.want)
		}
	}
}
