package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/firma-cloud/firma/store"
)

var _ store.CAStore = (*DB)(nil)

func isUnique(err error) bool {
	return uniqueViolation(err)
}

func nullTime(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

func fromNull(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

func nullString(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}

// CreateAuthority stores a new authority.
func (s *DB) CreateAuthority(ctx context.Context, a *store.Authority) error {
	_, err := s.write(ctx, `INSERT INTO ca_authorities (name, key_id, cert, external, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?)`, a.Name, a.KeyID, a.Cert, a.External, a.CreatedAt.UnixNano(), a.UpdatedAt.UnixNano())
	if isUnique(err) {
		return fmt.Errorf("create authority %s: %w", a.Name, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create authority %s: %w", a.Name, err)
	}
	return nil
}

// ReplaceAuthority updates an existing authority's key and certificate.
func (s *DB) ReplaceAuthority(ctx context.Context, a *store.Authority) error {
	res, err := s.write(ctx, `UPDATE ca_authorities SET key_id = ?, cert = ?, external = ?, updated_at = ? WHERE name = ?`,
		a.KeyID, a.Cert, a.External, a.UpdatedAt.UnixNano(), a.Name)
	if err != nil {
		return fmt.Errorf("replace authority %s: %w", a.Name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("replace authority %s: %w", a.Name, store.ErrNotFound)
	}
	return nil
}

// Authority returns the authority with the given name.
func (s *DB) Authority(ctx context.Context, name string) (*store.Authority, error) {
	var (
		a                store.Authority
		created, updated int64
	)
	err := s.db.QueryRowContext(ctx, `SELECT name, key_id, cert, external, created_at, updated_at FROM ca_authorities WHERE name = ?`, name).
		Scan(&a.Name, &a.KeyID, &a.Cert, &a.External, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("authority %s: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("authority %s: %w", name, err)
	}
	a.CreatedAt, a.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return &a, nil
}

const certColumns = `id, owner, key_id, serial, issuer, status, cert, csr, not_before, not_after, created_at, revoked_at, reason, superseded_by`

func scanCert(row interface{ Scan(...any) error }) (*store.Certificate, error) {
	var (
		c                                    store.Certificate
		serial, superseded                   sql.NullString
		notBefore, notAfter, revoked, reason sql.NullInt64
		created                              int64
	)
	if err := row.Scan(&c.ID, &c.Owner, &c.KeyID, &serial, &c.Issuer, &c.Status, &c.Cert, &c.CSR,
		&notBefore, &notAfter, &created, &revoked, &reason, &superseded); err != nil {
		return nil, err
	}
	c.Serial, c.SupersededBy = serial.String, superseded.String
	c.NotBefore, c.NotAfter, c.RevokedAt = fromNull(notBefore), fromNull(notAfter), fromNull(revoked)
	c.CreatedAt = time.Unix(0, created).UTC()
	c.Reason = int(reason.Int64)
	return &c, nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func insertCert(ctx context.Context, db execer, c *store.Certificate) error {
	_, err := db.ExecContext(ctx, `INSERT INTO ca_certificates (`+certColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Owner, c.KeyID, nullString(c.Serial), c.Issuer, c.Status, c.Cert, c.CSR,
		nullTime(c.NotBefore), nullTime(c.NotAfter), c.CreatedAt.UnixNano(), nullTime(c.RevokedAt),
		sql.NullInt64{Int64: int64(c.Reason), Valid: !c.RevokedAt.IsZero()}, nullString(c.SupersededBy))
	if isUnique(err) {
		return fmt.Errorf("create certificate %s: %w", c.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create certificate %s: %w", c.ID, err)
	}
	return nil
}

// CreateCertificate stores a certificate record.
func (s *DB) CreateCertificate(ctx context.Context, c *store.Certificate) error {
	return insertCert(ctx, gated{s}, c)
}

// Certificate returns the certificate record with the given ID.
func (s *DB) Certificate(ctx context.Context, id string) (*store.Certificate, error) {
	c, err := scanCert(s.db.QueryRowContext(ctx, "SELECT "+certColumns+" FROM ca_certificates WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("certificate %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", id, err)
	}
	return c, nil
}

// CertificateBySerial returns the certificate an issuer issued with serial.
func (s *DB) CertificateBySerial(ctx context.Context, issuer, serial string) (*store.Certificate, error) {
	c, err := scanCert(s.db.QueryRowContext(ctx, "SELECT "+certColumns+" FROM ca_certificates WHERE issuer = ? AND serial = ?", issuer, serial))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("certificate serial %s: %w", serial, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("certificate serial %s: %w", serial, err)
	}
	return c, nil
}

// Certificates lists certificate records ordered by ID.
func (s *DB) Certificates(ctx context.Context, f store.CertificateFilter) ([]*store.Certificate, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	q := "SELECT " + certColumns + " FROM ca_certificates WHERE id > ?"
	args := []any{f.After}
	if f.Owner != "" {
		q += " AND owner = ?"
		args = append(args, f.Owner)
	}
	if f.Status != "" {
		q += " AND status = ?"
		args = append(args, f.Status)
	}
	q += " ORDER BY id LIMIT ?"
	args = append(args, f.Limit)
	return s.queryCerts(ctx, q, args...)
}

func (s *DB) queryCerts(ctx context.Context, q string, args ...any) ([]*store.Certificate, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	defer rows.Close()
	var out []*store.Certificate
	for rows.Next() {
		c, err := scanCert(rows)
		if err != nil {
			return nil, fmt.Errorf("list certificates: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	return out, nil
}

func revoke(ctx context.Context, db execer, id string, at time.Time, reason int, supersededBy string) error {
	res, err := db.ExecContext(ctx, `UPDATE ca_certificates SET status = 'revoked', revoked_at = ?, reason = ?, superseded_by = ?
		WHERE id = ? AND status IN ('valid', 'pending')`, at.UnixNano(), reason, nullString(supersededBy), id)
	if err != nil {
		return fmt.Errorf("revoke certificate %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("revoke certificate %s: no live certificate: %w", id, store.ErrNotFound)
	}
	return nil
}

// ReplaceCertificate makes next the owner's valid certificate and revokes prev.
func (s *DB) ReplaceCertificate(ctx context.Context, prev string, next *store.Certificate, at time.Time, reason int) error {
	tx, done, err := s.begin(ctx)
	if err != nil {
		return fmt.Errorf("replace certificate: %w", err)
	}
	defer done()
	if prev != "" {
		if err := revoke(ctx, tx, prev, at, reason, next.ID); err != nil {
			return err
		}
	}
	res, err := tx.ExecContext(ctx, `UPDATE ca_certificates SET status = ?, serial = ?, issuer = ?, cert = ?, not_before = ?, not_after = ?
		WHERE id = ? AND status = 'pending'`, next.Status, nullString(next.Serial), next.Issuer, next.Cert,
		nullTime(next.NotBefore), nullTime(next.NotAfter), next.ID)
	if isUnique(err) {
		return fmt.Errorf("complete certificate %s: %w", next.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("complete certificate %s: %w", next.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if err := insertCert(ctx, tx, next); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("replace certificate: %w", err)
	}
	return nil
}

// RevokeCertificate marks a live certificate revoked.
func (s *DB) RevokeCertificate(ctx context.Context, id string, at time.Time, reason int) error {
	return revoke(ctx, gated{s}, id, at, reason, "")
}

// ExpireCertificate marks a valid certificate expired.
func (s *DB) ExpireCertificate(ctx context.Context, id string) error {
	res, err := s.write(ctx, `UPDATE ca_certificates SET status = 'expired' WHERE id = ? AND status = 'valid'`, id)
	if err != nil {
		return fmt.Errorf("expire certificate %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("expire certificate %s: no valid certificate: %w", id, store.ErrNotFound)
	}
	return nil
}

// RevokedCertificates lists an issuer's revoked, not yet expired certificates.
func (s *DB) RevokedCertificates(ctx context.Context, issuer string, notAfter time.Time) ([]*store.Certificate, error) {
	return s.queryCerts(ctx, "SELECT "+certColumns+` FROM ca_certificates
		WHERE issuer = ? AND status = 'revoked' AND serial IS NOT NULL AND not_after >= ? ORDER BY revoked_at, id`,
		issuer, notAfter.UnixNano())
}

// NextCRLNumber allocates the next CRL number of an issuer.
func (s *DB) NextCRLNumber(ctx context.Context, issuer string) (int64, error) {
	var n int64
	// An upsert with RETURNING is one statement in both SQLite and
	// PostgreSQL, so two replicas never get the same number.
	err := s.writeRow(ctx, `INSERT INTO ca_crl_numbers (issuer, last) VALUES (?, 1)
		ON CONFLICT (issuer) DO UPDATE SET last = ca_crl_numbers.last + 1 RETURNING last`, issuer).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("next crl number %s: %w", issuer, err)
	}
	return n, nil
}

// SaveCRL stores crl unless a higher-numbered one is already stored.
func (s *DB) SaveCRL(ctx context.Context, crl *store.CRL) error {
	_, err := s.write(ctx, `INSERT INTO ca_crls (issuer, number, this_update, next_update, der) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (issuer) DO UPDATE SET number = excluded.number, this_update = excluded.this_update,
			next_update = excluded.next_update, der = excluded.der
		WHERE excluded.number > ca_crls.number`,
		crl.Issuer, crl.Number, crl.ThisUpdate.UnixNano(), crl.NextUpdate.UnixNano(), crl.DER)
	if err != nil {
		return fmt.Errorf("save crl %s: %w", crl.Issuer, err)
	}
	return nil
}

// LatestCRL returns the highest-numbered stored CRL of an issuer.
func (s *DB) LatestCRL(ctx context.Context, issuer string) (*store.CRL, error) {
	var (
		c          store.CRL
		this, next int64
	)
	err := s.db.QueryRowContext(ctx, `SELECT issuer, number, this_update, next_update, der FROM ca_crls WHERE issuer = ?`, issuer).
		Scan(&c.Issuer, &c.Number, &this, &next, &c.DER)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("crl %s: %w", issuer, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("crl %s: %w", issuer, err)
	}
	c.ThisUpdate, c.NextUpdate = time.Unix(0, this).UTC(), time.Unix(0, next).UTC()
	return &c, nil
}
