package config

import (
	"net/url"
	"os"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// EnvStoreDSN is the environment variable that carries the PostgreSQL
// connection string, password included.
const EnvStoreDSN = "FIRMA_STORE_DSN"

// Store drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

func (s *Store) validate(bad func(field, format string, a ...any)) {
	switch s.Driver {
	case DriverSQLite:
		if s.Path == "" {
			bad("store.path", "must be set")
		}
	case DriverPostgres:
		if s.DSN == "" && s.DSNFile == "" {
			bad("store.dsn", "must be set for the postgres driver: store.dsn (no password), %s or store.dsn_file", EnvStoreDSN)
		}
	default:
		bad("store.driver", "%q: must be sqlite or postgres", s.Driver)
	}
	if s.AttemptSweepInterval <= 0 {
		bad("store.attempt_sweep_interval", "%s: must be positive", s.AttemptSweepInterval)
	}
}

// Source returns what the driver opens: the SQLite file or the PostgreSQL
// connection string. It may hold a password: pass it to the store, never
// to a log.
func (s Store) Source() string {
	if s.Driver == DriverPostgres {
		return s.DSN.Reveal()
	}
	return s.Path
}

// ReadDSN sets store.dsn from store.dsn_file unless the driver is not
// postgres or the DSN is already set (FIRMA_STORE_DSN wins over the file).
// Surrounding white space (a trailing newline) is dropped.
func (s *Store) ReadDSN() error {
	if s.Driver != DriverPostgres || s.DSN != "" || s.DSNFile == "" {
		return nil
	}
	b, err := os.ReadFile(s.DSNFile)
	if err != nil {
		// The error names the file, never its contents.
		return &FieldError{Field: "store.dsn_file", Msg: err.Error()}
	}
	dsn := strings.TrimSpace(string(b))
	if dsn == "" {
		return &FieldError{Field: "store.dsn_file", Msg: s.DSNFile + " is empty"}
	}
	s.DSN = Secret(dsn)
	return nil
}

var dsnPasswordRe = regexp.MustCompile(`(?i)(^|\s)password\s*=`)

// DSNHasPassword reports whether a PostgreSQL connection string, in either
// syntax, carries a password.
func DSNHasPassword(dsn string) bool {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			// Unparsable: refuse rather than risk keeping a password.
			return strings.Contains(dsn, "@")
		}
		if _, ok := u.User.Password(); ok {
			return true
		}
		return u.Query().Has("password")
	}
	return dsnPasswordRe.MatchString(dsn)
}

// refuseStorePassword fails if the document's store.dsn holds a password,
// with an error that does not repeat it: config files are read by more
// people than the secrets in them should be.
func refuseStorePassword(doc *yaml.Node) error {
	if len(doc.Content) == 0 {
		return nil
	}
	dsn := mapValue(mapValue(doc.Content[0], "store"), "dsn")
	if dsn == nil || !DSNHasPassword(dsn.Value) {
		return nil
	}
	return &FieldError{Field: "store.dsn", Msg: "the database password must not be in the config file; set " + EnvStoreDSN +
		", store.dsn_file or a PGPASSFILE"}
}
