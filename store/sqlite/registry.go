package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/firma-cloud/firma/store"
)

var (
	_ store.RegistryStore = (*DB)(nil)
	_ store.SMSStore      = (*DB)(nil)
)

// regNano stores a time as Unix nanoseconds, NULL for the zero time.
func regNano(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixNano()
}

func regTime(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

func regUnique(err error) bool {
	return uniqueViolation(err)
}

const citizenColumns = "id, given_name, surnames, mobile, email, level, method, status, created_at, updated_at, level_at"

func citizenArgs(c *store.Citizen) []any {
	return []any{c.ID, c.GivenName, c.Surnames, c.Mobile, c.Email, c.Level, c.Method, c.Status,
		c.CreatedAt.UnixNano(), c.UpdatedAt.UnixNano(), c.LevelAt.UnixNano()}
}

func scanCitizen(row interface{ Scan(...any) error }) (*store.Citizen, error) {
	var (
		c                         store.Citizen
		created, updated, levelAt sql.NullInt64
	)
	if err := row.Scan(&c.ID, &c.GivenName, &c.Surnames, &c.Mobile, &c.Email, &c.Level, &c.Method, &c.Status,
		&created, &updated, &levelAt); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt, c.LevelAt = regTime(created), regTime(updated), regTime(levelAt)
	return &c, nil
}

// CreateCitizen inserts a citizen; ErrConflict if the DNI/NIE is taken.
func (s *DB) CreateCitizen(ctx context.Context, c *store.Citizen) error {
	_, err := s.write(ctx, "INSERT INTO citizens ("+citizenColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", citizenArgs(c)...)
	if regUnique(err) {
		return fmt.Errorf("create citizen %s: %w", c.ID, store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create citizen %s: %w", c.ID, err)
	}
	return nil
}

// ImportCitizens inserts many citizens in one transaction, skipping those
// that exist, so a bulk import of thousands of rows is one fsync.
func (s *DB) ImportCitizens(ctx context.Context, citizens []*store.Citizen, records []*store.FiscalRecord) ([]bool, error) {
	tx, done, err := s.begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("import citizens: %w", err)
	}
	defer done()
	ins, err := tx.PrepareContext(ctx, "INSERT INTO citizens ("+citizenColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING")
	if err != nil {
		return nil, fmt.Errorf("import citizens: %w", err)
	}
	defer ins.Close()
	created := make([]bool, len(citizens))
	for i, c := range citizens {
		res, err := ins.ExecContext(ctx, citizenArgs(c)...)
		if err != nil {
			return nil, fmt.Errorf("import citizen %s: %w", c.ID, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, fmt.Errorf("import citizen %s: %w", c.ID, err)
		}
		created[i] = n == 1
	}
	if len(records) > 0 {
		put, err := tx.PrepareContext(ctx, fiscalUpsert)
		if err != nil {
			return nil, fmt.Errorf("import fiscal records: %w", err)
		}
		defer put.Close()
		for _, r := range records {
			if _, err := put.ExecContext(ctx, r.CitizenID, r.GivenName, r.Surnames, r.Address, r.UpdatedAt.UnixNano()); err != nil {
				return nil, fmt.Errorf("import fiscal record %s: %w", r.CitizenID, err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("import citizens: %w", err)
	}
	return created, nil
}

// Citizen returns the citizen with the given DNI/NIE.
func (s *DB) Citizen(ctx context.Context, id string) (*store.Citizen, error) {
	c, err := scanCitizen(s.db.QueryRowContext(ctx, "SELECT "+citizenColumns+" FROM citizens WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("citizen %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("citizen %s: %w", id, err)
	}
	return c, nil
}

// Citizens lists citizens ordered by ID.
func (s *DB) Citizens(ctx context.Context, q store.CitizenQuery) ([]*store.Citizen, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	query := "SELECT " + citizenColumns + " FROM citizens WHERE id > ?"
	args := []any{q.After}
	if q.Level != "" {
		query += " AND level = ?"
		args = append(args, q.Level)
	}
	if q.Status != "" {
		query += " AND status = ?"
		args = append(args, q.Status)
	}
	query += " ORDER BY id LIMIT ?"
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list citizens: %w", err)
	}
	defer rows.Close()
	var out []*store.Citizen
	for rows.Next() {
		c, err := scanCitizen(rows)
		if err != nil {
			return nil, fmt.Errorf("list citizens: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list citizens: %w", err)
	}
	return out, nil
}

// UpdateCitizen overwrites every mutable field of an existing citizen.
func (s *DB) UpdateCitizen(ctx context.Context, c *store.Citizen) error {
	res, err := s.write(ctx, `UPDATE citizens SET given_name = ?, surnames = ?, mobile = ?, email = ?, level = ?,
		method = ?, status = ?, updated_at = ?, level_at = ? WHERE id = ?`,
		c.GivenName, c.Surnames, c.Mobile, c.Email, c.Level, c.Method, c.Status, c.UpdatedAt.UnixNano(), c.LevelAt.UnixNano(), c.ID)
	if err != nil {
		return fmt.Errorf("update citizen %s: %w", c.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("update citizen %s: %w", c.ID, err)
	} else if n == 0 {
		return fmt.Errorf("update citizen %s: %w", c.ID, store.ErrNotFound)
	}
	return nil
}

// PutCredential sets a citizen's password hash and clears any lockout.
func (s *DB) PutCredential(ctx context.Context, c *store.Credential) error {
	_, err := s.write(ctx, `INSERT INTO credentials (citizen_id, hash, failures, locked_at, set_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (citizen_id) DO UPDATE SET hash = excluded.hash, failures = excluded.failures,
		locked_at = excluded.locked_at, set_at = excluded.set_at`,
		c.CitizenID, c.Hash, c.Failures, regNano(c.LockedAt), c.SetAt.UnixNano())
	if err != nil {
		if foreignKeyViolation(err) {
			return fmt.Errorf("put credential %s: %w", c.CitizenID, store.ErrNotFound)
		}
		return fmt.Errorf("put credential %s: %w", c.CitizenID, err)
	}
	return nil
}

func scanCredential(row interface{ Scan(...any) error }) (*store.Credential, error) {
	var (
		c           store.Credential
		locked, set sql.NullInt64
	)
	if err := row.Scan(&c.CitizenID, &c.Hash, &c.Failures, &locked, &set); err != nil {
		return nil, err
	}
	c.LockedAt, c.SetAt = regTime(locked), regTime(set)
	return &c, nil
}

// Credential returns a citizen's credential.
func (s *DB) Credential(ctx context.Context, citizenID string) (*store.Credential, error) {
	c, err := scanCredential(s.db.QueryRowContext(ctx,
		"SELECT citizen_id, hash, failures, locked_at, set_at FROM credentials WHERE citizen_id = ?", citizenID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("credential %s: %w", citizenID, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("credential %s: %w", citizenID, err)
	}
	return c, nil
}

// CredentialFailed counts a failure and locks at max in one statement, so
// concurrent guesses cannot slip past the limit.
func (s *DB) CredentialFailed(ctx context.Context, citizenID string, max int, at time.Time) (*store.Credential, error) {
	c, err := scanCredential(s.writeRow(ctx, `UPDATE credentials SET failures = failures + 1,
		locked_at = CASE WHEN locked_at IS NULL AND failures + 1 >= ? THEN ? ELSE locked_at END
		WHERE citizen_id = ? RETURNING citizen_id, hash, failures, locked_at, set_at`, max, at.UnixNano(), citizenID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("credential %s: %w", citizenID, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("credential %s: %w", citizenID, err)
	}
	return c, nil
}

// CredentialSucceeded resets the failure count of an unlocked credential.
func (s *DB) CredentialSucceeded(ctx context.Context, citizenID string) error {
	if _, err := s.write(ctx, "UPDATE credentials SET failures = 0 WHERE citizen_id = ? AND locked_at IS NULL", citizenID); err != nil {
		return fmt.Errorf("credential %s: %w", citizenID, err)
	}
	return nil
}

const codeColumns = "id, kind, citizen_id, hash, data, attempts, created_at, expires_at, used_at"

func scanCode(row interface{ Scan(...any) error }) (*store.Code, error) {
	var (
		c                      store.Code
		created, expires, used sql.NullInt64
	)
	if err := row.Scan(&c.ID, &c.Kind, &c.CitizenID, &c.Hash, &c.Data, &c.Attempts, &created, &expires, &used); err != nil {
		return nil, err
	}
	c.CreatedAt, c.ExpiresAt, c.UsedAt = regTime(created), regTime(expires), regTime(used)
	return &c, nil
}

// CreateCode stores a new registration code.
func (s *DB) CreateCode(ctx context.Context, c *store.Code) error {
	_, err := s.write(ctx, "INSERT INTO registration_codes ("+codeColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
		c.ID, c.Kind, c.CitizenID, c.Hash, c.Data, c.Attempts, c.CreatedAt.UnixNano(), c.ExpiresAt.UnixNano(), regNano(c.UsedAt))
	if regUnique(err) {
		return fmt.Errorf("create code: %w", store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("create code: %w", err)
	}
	return nil
}

// Code returns a registration code by ID.
func (s *DB) Code(ctx context.Context, id string) (*store.Code, error) {
	c, err := scanCode(s.db.QueryRowContext(ctx, "SELECT "+codeColumns+" FROM registration_codes WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("code: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("code: %w", err)
	}
	return c, nil
}

// Codes lists a citizen's codes of one kind, newest first.
func (s *DB) Codes(ctx context.Context, citizenID, kind string) ([]*store.Code, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+codeColumns+` FROM registration_codes
		WHERE citizen_id = ? AND kind = ? ORDER BY created_at DESC, id LIMIT 100`, citizenID, kind)
	if err != nil {
		return nil, fmt.Errorf("list codes: %w", err)
	}
	defer rows.Close()
	var out []*store.Code
	for rows.Next() {
		c, err := scanCode(rows)
		if err != nil {
			return nil, fmt.Errorf("list codes: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list codes: %w", err)
	}
	return out, nil
}

// UseCode spends a code once.
func (s *DB) UseCode(ctx context.Context, id string, at time.Time) error {
	res, err := s.write(ctx, "UPDATE registration_codes SET used_at = ? WHERE id = ? AND used_at IS NULL", at.UnixNano(), id)
	if err != nil {
		return fmt.Errorf("use code: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("use code: %w", err)
	} else if n == 0 {
		if _, err := s.Code(ctx, id); err != nil {
			return err
		}
		return fmt.Errorf("use code: %w", store.ErrConflict)
	}
	return nil
}

// CodeAttempt counts one wrong guess at a code.
func (s *DB) CodeAttempt(ctx context.Context, id string) (int, error) {
	var n int
	err := s.writeRow(ctx, "UPDATE registration_codes SET attempts = attempts + 1 WHERE id = ? RETURNING attempts", id).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("code: %w", store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("code: %w", err)
	}
	return n, nil
}

// DeleteCodes deletes codes that expired before the cutoff.
func (s *DB) DeleteCodes(ctx context.Context, kind string, expiredBefore time.Time) (int64, error) {
	q, args := "DELETE FROM registration_codes WHERE expires_at < ?", []any{expiredBefore.UnixNano()}
	if kind != "" {
		q += " AND kind = ?"
		args = append(args, kind)
	}
	res, err := s.write(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("delete codes: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete codes: %w", err)
	}
	return n, nil
}

const fiscalUpsert = `INSERT INTO fiscal_records (citizen_id, given_name, surnames, address, updated_at) VALUES (?, ?, ?, ?, ?)
	ON CONFLICT (citizen_id) DO UPDATE SET given_name = excluded.given_name, surnames = excluded.surnames,
	address = excluded.address, updated_at = excluded.updated_at`

// PutFiscalRecord creates or replaces a fiscal record.
func (s *DB) PutFiscalRecord(ctx context.Context, r *store.FiscalRecord) error {
	if _, err := s.write(ctx, fiscalUpsert, r.CitizenID, r.GivenName, r.Surnames, r.Address, r.UpdatedAt.UnixNano()); err != nil {
		return fmt.Errorf("put fiscal record %s: %w", r.CitizenID, err)
	}
	return nil
}

// FiscalRecord returns the fiscal record of a DNI/NIE.
func (s *DB) FiscalRecord(ctx context.Context, citizenID string) (*store.FiscalRecord, error) {
	var (
		r       store.FiscalRecord
		updated sql.NullInt64
	)
	err := s.db.QueryRowContext(ctx, "SELECT citizen_id, given_name, surnames, address, updated_at FROM fiscal_records WHERE citizen_id = ?",
		citizenID).Scan(&r.CitizenID, &r.GivenName, &r.Surnames, &r.Address, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("fiscal record %s: %w", citizenID, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("fiscal record %s: %w", citizenID, err)
	}
	r.UpdatedAt = regTime(updated)
	return &r, nil
}

// PutLetter adds a letter to the letter outbox.
func (s *DB) PutLetter(ctx context.Context, l *store.Letter) error {
	_, err := s.write(ctx, "INSERT INTO letter_outbox (id, citizen_id, address, body, created_at) VALUES (?, ?, ?, ?, ?)",
		l.ID, l.CitizenID, l.Address, l.Body, l.CreatedAt.UnixNano())
	if err != nil {
		return fmt.Errorf("put letter: %w", err)
	}
	return nil
}

// Letters lists letters newest first, to one citizen if citizenID is set.
func (s *DB) Letters(ctx context.Context, citizenID string, limit int) ([]*store.Letter, error) {
	return listOutbox(ctx, s, letterOutbox, citizenID, limit, func(rows *sql.Rows) (*store.Letter, error) {
		var (
			l       store.Letter
			created sql.NullInt64
		)
		if err := rows.Scan(&l.ID, &l.CitizenID, &l.Address, &l.Body, &created); err != nil {
			return nil, err
		}
		l.CreatedAt = regTime(created)
		return &l, nil
	})
}

// DeleteLetters deletes letters created before the cutoff.
func (s *DB) DeleteLetters(ctx context.Context, before time.Time) (int64, error) {
	return s.purgeOutbox(ctx, letterOutbox, before)
}

// PutSMS adds a message to the SMS outbox.
func (s *DB) PutSMS(ctx context.Context, m *store.SMS) error {
	_, err := s.write(ctx, "INSERT INTO sms_outbox (id, recipient, body, created_at) VALUES (?, ?, ?, ?)",
		m.ID, m.To, m.Text, m.CreatedAt.UnixNano())
	if err != nil {
		return fmt.Errorf("put sms: %w", err)
	}
	return nil
}

// SMSes lists outbox messages newest first.
func (s *DB) SMSes(ctx context.Context, to string, limit int) ([]*store.SMS, error) {
	return listOutbox(ctx, s, smsOutbox, to, limit, func(rows *sql.Rows) (*store.SMS, error) {
		var (
			m       store.SMS
			created sql.NullInt64
		)
		if err := rows.Scan(&m.ID, &m.To, &m.Text, &created); err != nil {
			return nil, err
		}
		m.CreatedAt = regTime(created)
		return &m, nil
	})
}

// DeleteSMS deletes outbox messages created before the cutoff.
func (s *DB) DeleteSMS(ctx context.Context, before time.Time) (int64, error) {
	return s.purgeOutbox(ctx, smsOutbox, before)
}
