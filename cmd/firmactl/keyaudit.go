package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/store/sqlite"
)

// The offline commands that make keys on the HSM directly (firmactl init,
// kek init, clone, transport-key and import, ca init and issuing-csr)
// record them on the state's audit log under audit.ChangeKey, as firmad
// records its own: the intent before the HSM is asked, the command
// refused when the intent cannot be written, the result after. The log is
// opened as firmad opens it; it does not sign checkpoints (the next
// firmad does, over these records too).

// offlineActor is who asked, in the records: an operator at the console.
func offlineActor() audit.Actor {
	id := "firmactl"
	if u, err := user.Current(); err == nil && u.Username != "" {
		id += ":" + u.Username
	}
	return audit.Actor{Role: audit.RoleAdmin, ID: id}
}

// openAudit opens the audit log of the store db of cfg as firmad does:
// with the SQLite journal (audit.journal), taking it over and moving in
// what a crashed process left, so a running firmad, which holds it, makes
// the command fail before any key is touched; with the pseudonym key
// beside the store. close closes the log (its records committed) and
// must be called before db is closed.
func openAudit(ctx context.Context, cfg *config.Config, db store.Store) (l *audit.Log, close func() error, err error) {
	ac := audit.DefaultConfig()
	if c := config.SectionOf[audit.Config](cfg, audit.SectionName); c != nil {
		ac = *c
	}
	if sq, ok := db.(*sqlite.DB); ok && ac.Journal {
		if err := sq.JournalAudit(ctx); err != nil {
			return nil, nil, fmt.Errorf("audit log: %w (a running firmad holds it: key changes are refused until it stops, or made through it)", err)
		}
	}
	keyFile := ac.PseudonymKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(filepath.Dir(cfg.Store.Path), "audit-pseudonym.key")
	}
	pkey, err := audit.EnsurePseudonymKey(keyFile)
	if err != nil {
		return nil, nil, err
	}
	node := "firmactl"
	if h, err := os.Hostname(); err == nil {
		node += "@" + h
	}
	l, err = audit.Open(ctx, db, audit.Options{Node: node, Origin: ac.Origin, PseudonymKey: pkey, Flush: ac.Flush})
	if err != nil {
		return nil, nil, fmt.Errorf("audit log: %w", err)
	}
	return l, l.Close, nil
}

// errKeyExists is what a key change found already made (by another
// process between the check and the change): recorded as its failure.
var errKeyExists = errors.New("the key exists already; nothing made")
