package backend

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/store/postgres"
	"github.com/firma-cloud/firma/store/sqlite"
)

// Drivers, as store.driver names them.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// ErrDriver is returned for a driver this build does not have.
var ErrDriver = errors.New("unknown store driver")

// Open opens the store and applies pending migrations. source is the
// SQLite file (its directory is made if missing) or the PostgreSQL
// connection string; errors never repeat a connection string, which may
// hold a password.
func Open(ctx context.Context, driver, source string) (store.Store, error) {
	switch driver {
	case SQLite:
		if source == "" {
			return nil, errors.New("open store: no sqlite path")
		}
		if err := os.MkdirAll(filepath.Dir(source), 0o700); err != nil {
			return nil, fmt.Errorf("create store directory: %w", err)
		}
		return sqlite.Open(ctx, source)
	case Postgres:
		if source == "" {
			return nil, errors.New("open store: no postgres dsn")
		}
		return postgres.Open(ctx, source)
	}
	return nil, fmt.Errorf("open store: %q: %w (want sqlite or postgres)", driver, ErrDriver)
}
