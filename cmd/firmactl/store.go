package main

import (
	"context"

	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/store/backend"
)

// openStore opens the store of a firmad configuration, as firmad does: the
// SQLite file, or the PostgreSQL database with its DSN from store.dsn,
// FIRMA_STORE_DSN or store.dsn_file (a configuration read without Load
// has not resolved those yet).
func openStore(ctx context.Context, e *env, cfg *config.Config) (store.Store, error) {
	s := cfg.Store
	if s.Driver == config.DriverPostgres {
		if dsn := e.getenv(config.EnvStoreDSN); dsn != "" {
			s.DSN = config.Secret(dsn)
		}
		if err := s.ReadDSN(); err != nil {
			return nil, err
		}
	}
	return backend.Open(ctx, s.Driver, s.Source())
}
