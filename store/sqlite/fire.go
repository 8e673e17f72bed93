package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/firma-cloud/firma/store"
)

var _ store.FireStore = (*DB)(nil)

// PutFireApp creates or replaces the application.
func (s *DB) PutFireApp(ctx context.Context, a *store.FireApp) error {
	d, err := json.Marshal(a.CertDigests)
	if err != nil {
		return fmt.Errorf("put fire app: %w", err)
	}
	_, err = s.write(ctx, `INSERT INTO fire_apps (app_id, portal_id, cert_digests, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (app_id) DO UPDATE SET portal_id = excluded.portal_id, cert_digests = excluded.cert_digests, updated_at = excluded.updated_at`,
		a.AppID, a.PortalID, string(d), a.CreatedAt.UnixNano(), a.UpdatedAt.UnixNano())
	if txUnique(err) {
		return fmt.Errorf("put fire app %s: %w", a.AppID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("put fire app %s: %w", a.AppID, err)
	}
	return nil
}

// FireApp returns an application by appid.
func (s *DB) FireApp(ctx context.Context, appID string) (*store.FireApp, error) {
	var (
		a                store.FireApp
		d                string
		created, updated int64
	)
	err := s.db.QueryRowContext(ctx, "SELECT app_id, portal_id, cert_digests, created_at, updated_at FROM fire_apps WHERE app_id = ?", appID).
		Scan(&a.AppID, &a.PortalID, &d, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("fire app %s: %w", appID, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("fire app %s: %w", appID, err)
	}
	if err := json.Unmarshal([]byte(d), &a.CertDigests); err != nil {
		return nil, fmt.Errorf("fire app %s: digests: %w", appID, err)
	}
	a.CreatedAt, a.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return &a, nil
}

// fireAppPortalQuery joins the application to its portal; the portal's
// columns come last, in portalColumns' order, for scanPortal.
var fireAppPortalQuery = "SELECT a.app_id, a.portal_id, a.cert_digests, a.created_at, a.updated_at, p." +
	strings.ReplaceAll(portalColumns, ", ", ", p.") + " FROM fire_apps a JOIN portals p ON p.id = a.portal_id WHERE a.app_id = ?"

// FireAppPortal returns an application and its portal.
func (s *DB) FireAppPortal(ctx context.Context, appID string) (*store.FireApp, *store.Portal, error) {
	var (
		a                store.FireApp
		d                string
		created, updated int64
	)
	p, err := scanPortal(scanAfter{s.queryRow(ctx, fireAppPortalQuery, appID), []any{&a.AppID, &a.PortalID, &d, &created, &updated}})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, fmt.Errorf("fire app %s: %w", appID, store.ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("fire app %s: %w", appID, err)
	}
	if err := json.Unmarshal([]byte(d), &a.CertDigests); err != nil {
		return nil, nil, fmt.Errorf("fire app %s: digests: %w", appID, err)
	}
	a.CreatedAt, a.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return &a, p, nil
}

// scanAfter scans a row whose first columns go to pre, the rest to what
// Scan is given.
type scanAfter struct {
	row interface{ Scan(...any) error }
	pre []any
}

func (p scanAfter) Scan(dst ...any) error { return p.row.Scan(append(p.pre, dst...)...) }

const fireTxColumns = "id, app_id, subject, batch, ok_url, error_url, upgrade, format, algorithm, doc_ids, recovered, result_taken, created_at, expires_at, version"

func fireTxArgs(t *store.FireTransaction) ([]any, error) {
	docs, err := json.Marshal(nonNil(t.DocIDs))
	if err != nil {
		return nil, err
	}
	rec, err := json.Marshal(nonNil(t.Recovered))
	if err != nil {
		return nil, err
	}
	return []any{t.ID, t.AppID, t.Subject, t.Batch, t.OKURL, t.ErrorURL, t.Upgrade, t.Format, t.Algorithm, string(docs), string(rec), t.ResultTaken,
		t.CreatedAt.UnixNano(), t.ExpiresAt.UnixNano(), t.Version}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// CreateFireTransaction inserts t; ErrConflict if its id is taken.
func (s *DB) CreateFireTransaction(ctx context.Context, t *store.FireTransaction) error {
	args, err := fireTxArgs(t)
	if err != nil {
		return fmt.Errorf("create fire transaction: %w", err)
	}
	_, err = s.write(ctx, "INSERT INTO fire_transactions ("+fireTxColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", args...)
	if txUnique(err) {
		return fmt.Errorf("create fire transaction %s: %w", t.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create fire transaction %s: %w", t.ID, err)
	}
	return nil
}

// FireTransaction returns the FIRe side of transaction id.
func (s *DB) FireTransaction(ctx context.Context, id string) (*store.FireTransaction, error) {
	var (
		t                store.FireTransaction
		docs, rec        string
		created, expires int64
	)
	err := s.queryRow(ctx, "SELECT "+fireTxColumns+" FROM fire_transactions WHERE id = ?", id).Scan(&t.ID, &t.AppID, &t.Subject, &t.Batch,
		&t.OKURL, &t.ErrorURL, &t.Upgrade, &t.Format, &t.Algorithm, &docs, &rec, &t.ResultTaken, &created, &expires, &t.Version)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("fire transaction %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("fire transaction %s: %w", id, err)
	}
	if err := errors.Join(json.Unmarshal([]byte(docs), &t.DocIDs), json.Unmarshal([]byte(rec), &t.Recovered)); err != nil {
		return nil, fmt.Errorf("fire transaction %s: %w", id, err)
	}
	t.CreatedAt, t.ExpiresAt = time.Unix(0, created).UTC(), time.Unix(0, expires).UTC()
	return &t, nil
}

// UpdateFireTransaction stores t against the version read.
func (s *DB) UpdateFireTransaction(ctx context.Context, t *store.FireTransaction) error {
	args, err := fireTxArgs(t)
	if err != nil {
		return fmt.Errorf("update fire transaction: %w", err)
	}
	res, err := s.exec(ctx, `UPDATE fire_transactions SET app_id = ?, subject = ?, batch = ?, ok_url = ?, error_url = ?, upgrade = ?, format = ?, algorithm = ?,
		doc_ids = ?, recovered = ?, result_taken = ?, created_at = ?, expires_at = ?, version = version + 1 WHERE id = ? AND version = ?`,
		append(args[1:14:14], t.ID, t.Version)...)
	if err != nil {
		return fmt.Errorf("update fire transaction %s: %w", t.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("update fire transaction %s: %w", t.ID, err)
	} else if n == 0 {
		if _, err := s.FireTransaction(ctx, t.ID); err != nil {
			return err
		}
		return fmt.Errorf("update fire transaction %s: %w", t.ID, store.ErrConflict)
	}
	t.Version++
	return nil
}

// AddFireDocument adds d to the draft t and stores ft's docids, in one
// write transaction.
func (s *DB) AddFireDocument(ctx context.Context, t *store.Transaction, d *store.Document, ft *store.FireTransaction) error {
	ids, err := json.Marshal(nonNil(ft.DocIDs))
	if err != nil {
		return fmt.Errorf("add fire document: %w", err)
	}
	tx, done, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("add fire document: %w", err)
	}
	defer done()
	if err := s.addDocument(ctx, tx, t, d); err != nil {
		return err
	}
	res, err := s.txExec(ctx, tx, "UPDATE fire_transactions SET doc_ids = ?, version = version + 1 WHERE id = ? AND version = ?", string(ids), ft.ID, ft.Version)
	if err != nil {
		return fmt.Errorf("add fire document to %s: %w", ft.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("add fire document to %s: %w", ft.ID, err)
	} else if n == 0 {
		return fmt.Errorf("add fire document to %s: version %d is stale or gone: %w", ft.ID, ft.Version, store.ErrConflict)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("add fire document to %s: %w", ft.ID, err)
	}
	t.Version++
	ft.Version++
	return nil
}

// MarkFireRecovered adds docID to ft's handed-out docids.
func (s *DB) MarkFireRecovered(ctx context.Context, ft *store.FireTransaction, docID string) error {
	rec, err := json.Marshal(append(slices.Clip(nonNil(ft.Recovered)), docID))
	if err != nil {
		return fmt.Errorf("mark fire recovered: %w", err)
	}
	res, err := s.exec(ctx, "UPDATE fire_transactions SET recovered = ?, version = version + 1 WHERE id = ? AND version = ?", string(rec), ft.ID, ft.Version)
	if err != nil {
		return fmt.Errorf("mark fire recovered %s: %w", ft.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("mark fire recovered %s: %w", ft.ID, err)
	} else if n == 0 {
		if _, err := s.FireTransaction(ctx, ft.ID); err != nil {
			return err
		}
		return fmt.Errorf("mark fire recovered %s: %w", ft.ID, store.ErrConflict)
	}
	ft.Recovered = append(ft.Recovered, docID)
	ft.Version++
	return nil
}

// DeleteFireTransaction deletes the FIRe side of transaction id.
func (s *DB) DeleteFireTransaction(ctx context.Context, id string) error {
	if _, err := s.write(ctx, "DELETE FROM fire_transactions WHERE id = ?", id); err != nil {
		return fmt.Errorf("delete fire transaction %s: %w", id, err)
	}
	return nil
}

// PurgeFireTransactions deletes those that expired before t.
func (s *DB) PurgeFireTransactions(ctx context.Context, before time.Time) (int, error) {
	res, err := s.write(ctx, "DELETE FROM fire_transactions WHERE expires_at < ?", before.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("purge fire transactions: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}
