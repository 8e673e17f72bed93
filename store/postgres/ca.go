package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/firma-cloud/firma/store"
)

var _ store.CAStore = (*DB)(nil)

// CreateAuthority stores a new authority.
func (s *DB) CreateAuthority(ctx context.Context, a *store.Authority) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO ca_authorities (name, key_id, cert, external, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, a.Name, a.KeyID, a.Cert, a.External, a.CreatedAt.UnixNano(), a.UpdatedAt.UnixNano())
	if err != nil {
		return fmt.Errorf("create authority %s: %w", a.Name, conflict(err))
	}
	return nil
}

// ReplaceAuthority updates an existing authority's key and certificate.
func (s *DB) ReplaceAuthority(ctx context.Context, a *store.Authority) error {
	tag, err := s.pool.Exec(ctx, `UPDATE ca_authorities SET key_id = $1, cert = $2, external = $3, updated_at = $4 WHERE name = $5`,
		a.KeyID, a.Cert, a.External, a.UpdatedAt.UnixNano(), a.Name)
	if err != nil {
		return fmt.Errorf("replace authority %s: %w", a.Name, err)
	}
	if tag.RowsAffected() == 0 {
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
	err := s.pool.QueryRow(ctx, `SELECT name, key_id, cert, external, created_at, updated_at FROM ca_authorities WHERE name = $1`, name).
		Scan(&a.Name, &a.KeyID, &a.Cert, &a.External, &created, &updated)
	if err != nil {
		return nil, fmt.Errorf("authority %s: %w", name, notFound(err))
	}
	a.CreatedAt, a.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC()
	return &a, nil
}

const certColumns = `id, owner, key_id, serial, issuer, status, cert, csr, not_before, not_after, created_at, revoked_at, reason, superseded_by`

func scanCert(row scanner) (*store.Certificate, error) {
	var (
		c                            store.Certificate
		serial, superseded           *string
		notBefore, notAfter, revoked *int64
		reason                       *int32
		created                      int64
	)
	if err := row.Scan(&c.ID, &c.Owner, &c.KeyID, &serial, &c.Issuer, &c.Status, &c.Cert, &c.CSR,
		&notBefore, &notAfter, &created, &revoked, &reason, &superseded); err != nil {
		return nil, err
	}
	if serial != nil {
		c.Serial = *serial
	}
	if superseded != nil {
		c.SupersededBy = *superseded
	}
	if reason != nil {
		c.Reason = int(*reason)
	}
	c.NotBefore, c.NotAfter, c.RevokedAt = fromNanos(notBefore), fromNanos(notAfter), fromNanos(revoked)
	c.CreatedAt = time.Unix(0, created).UTC()
	return &c, nil
}

// execer is a pool or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

func insertCert(ctx context.Context, db execer, c *store.Certificate) error {
	var reason *int32
	if !c.RevokedAt.IsZero() {
		r := int32(c.Reason)
		reason = &r
	}
	_, err := db.Exec(ctx, `INSERT INTO ca_certificates (`+certColumns+`) VALUES (`+placeholders(1, 14)+`)`,
		c.ID, c.Owner, c.KeyID, nullString(c.Serial), c.Issuer, c.Status, c.Cert, c.CSR,
		nanos(c.NotBefore), nanos(c.NotAfter), c.CreatedAt.UnixNano(), nanos(c.RevokedAt), reason, nullString(c.SupersededBy))
	if err != nil {
		return fmt.Errorf("create certificate %s: %w", c.ID, conflict(err))
	}
	return nil
}

// CreateCertificate stores a certificate record.
func (s *DB) CreateCertificate(ctx context.Context, c *store.Certificate) error {
	return insertCert(ctx, s.pool, c)
}

// Certificate returns the certificate record with the given ID.
func (s *DB) Certificate(ctx context.Context, id string) (*store.Certificate, error) {
	c, err := scanCert(s.pool.QueryRow(ctx, "SELECT "+certColumns+" FROM ca_certificates WHERE id = $1", id))
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", id, notFound(err))
	}
	return c, nil
}

// CertificateBySerial returns the certificate an issuer issued with serial.
func (s *DB) CertificateBySerial(ctx context.Context, issuer, serial string) (*store.Certificate, error) {
	c, err := scanCert(s.pool.QueryRow(ctx, "SELECT "+certColumns+" FROM ca_certificates WHERE issuer = $1 AND serial = $2", issuer, serial))
	if err != nil {
		return nil, fmt.Errorf("certificate serial %s: %w", serial, notFound(err))
	}
	return c, nil
}

// Certificates lists certificate records ordered by ID.
func (s *DB) Certificates(ctx context.Context, f store.CertificateFilter) ([]*store.Certificate, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	q := "SELECT " + certColumns + " FROM ca_certificates WHERE id > $1"
	args := []any{f.After}
	if f.Owner != "" {
		args = append(args, f.Owner)
		q += fmt.Sprintf(" AND owner = $%d", len(args))
	}
	if f.Status != "" {
		args = append(args, f.Status)
		q += fmt.Sprintf(" AND status = $%d", len(args))
	}
	args = append(args, f.Limit)
	q += fmt.Sprintf(" ORDER BY id LIMIT $%d", len(args))
	return s.queryCerts(ctx, q, args...)
}

func (s *DB) queryCerts(ctx context.Context, q string, args ...any) ([]*store.Certificate, error) {
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	out, err := collect(rows, scanCert)
	if err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	return out, nil
}

func revoke(ctx context.Context, db execer, id string, at time.Time, reason int, supersededBy string) error {
	tag, err := db.Exec(ctx, `UPDATE ca_certificates SET status = 'revoked', revoked_at = $1, reason = $2, superseded_by = $3
		WHERE id = $4 AND status IN ('valid', 'pending')`, at.UnixNano(), reason, nullString(supersededBy), id)
	if err != nil {
		return fmt.Errorf("revoke certificate %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("revoke certificate %s: no live certificate: %w", id, store.ErrNotFound)
	}
	return nil
}

// ReplaceCertificate makes next the owner's valid certificate and revokes
// prev in one transaction. The revocation's row lock makes a concurrent
// replacement of the same certificate on another node wait and then find
// it no longer live.
func (s *DB) ReplaceCertificate(ctx context.Context, prev string, next *store.Certificate, at time.Time, reason int) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if prev != "" {
			if err := revoke(ctx, tx, prev, at, reason, next.ID); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, `UPDATE ca_certificates SET status = $1, serial = $2, issuer = $3, cert = $4, not_before = $5, not_after = $6
			WHERE id = $7 AND status = 'pending'`, next.Status, nullString(next.Serial), next.Issuer, next.Cert,
			nanos(next.NotBefore), nanos(next.NotAfter), next.ID)
		if err != nil {
			return fmt.Errorf("complete certificate %s: %w", next.ID, conflict(err))
		}
		if tag.RowsAffected() == 0 {
			return insertCert(ctx, tx, next)
		}
		return nil
	})
}

// RevokeCertificate marks a live certificate revoked.
func (s *DB) RevokeCertificate(ctx context.Context, id string, at time.Time, reason int) error {
	return revoke(ctx, s.pool, id, at, reason, "")
}

// ExpireCertificate marks a valid certificate expired.
func (s *DB) ExpireCertificate(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE ca_certificates SET status = 'expired' WHERE id = $1 AND status = 'valid'`, id)
	if err != nil {
		return fmt.Errorf("expire certificate %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("expire certificate %s: no valid certificate: %w", id, store.ErrNotFound)
	}
	return nil
}

// RevokedCertificates lists an issuer's revoked, not yet expired certificates.
func (s *DB) RevokedCertificates(ctx context.Context, issuer string, notAfter time.Time) ([]*store.Certificate, error) {
	return s.queryCerts(ctx, "SELECT "+certColumns+` FROM ca_certificates
		WHERE issuer = $1 AND status = 'revoked' AND serial IS NOT NULL AND not_after >= $2 ORDER BY revoked_at, id`,
		issuer, notAfter.UnixNano())
}

// NextCRLNumber allocates the next CRL number of an issuer: one upsert,
// whose row lock orders concurrent allocations on every node.
func (s *DB) NextCRLNumber(ctx context.Context, issuer string) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `INSERT INTO ca_crl_numbers (issuer, last) VALUES ($1, 1)
		ON CONFLICT (issuer) DO UPDATE SET last = ca_crl_numbers.last + 1 RETURNING last`, issuer).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("next crl number %s: %w", issuer, err)
	}
	return n, nil
}

// SaveCRL stores crl unless a higher-numbered one is already stored.
func (s *DB) SaveCRL(ctx context.Context, crl *store.CRL) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO ca_crls (issuer, number, this_update, next_update, der) VALUES ($1, $2, $3, $4, $5)
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
	err := s.pool.QueryRow(ctx, `SELECT issuer, number, this_update, next_update, der FROM ca_crls WHERE issuer = $1`, issuer).
		Scan(&c.Issuer, &c.Number, &this, &next, &c.DER)
	if err != nil {
		return nil, fmt.Errorf("crl %s: %w", issuer, notFound(err))
	}
	c.ThisUpdate, c.NextUpdate = time.Unix(0, this).UTC(), time.Unix(0, next).UTC()
	return &c, nil
}
