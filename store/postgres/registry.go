package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/firma-cloud/firma/store"
)

var (
	_ store.RegistryStore = (*DB)(nil)
	_ store.SMSStore      = (*DB)(nil)
)

const citizenColumns = "id, given_name, surnames, mobile, email, level, method, status, created_at, updated_at, level_at"

func citizenArgs(c *store.Citizen) []any {
	return []any{c.ID, c.GivenName, c.Surnames, c.Mobile, c.Email, c.Level, c.Method, c.Status,
		c.CreatedAt.UnixNano(), c.UpdatedAt.UnixNano(), c.LevelAt.UnixNano()}
}

func scanCitizen(row scanner) (*store.Citizen, error) {
	var (
		c                         store.Citizen
		created, updated, levelAt *int64
	)
	if err := row.Scan(&c.ID, &c.GivenName, &c.Surnames, &c.Mobile, &c.Email, &c.Level, &c.Method, &c.Status,
		&created, &updated, &levelAt); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt, c.LevelAt = fromNanos(created), fromNanos(updated), fromNanos(levelAt)
	return &c, nil
}

// CreateCitizen inserts a citizen; ErrConflict if the DNI/NIE is taken.
func (s *DB) CreateCitizen(ctx context.Context, c *store.Citizen) error {
	if _, err := s.pool.Exec(ctx, "INSERT INTO citizens ("+citizenColumns+") VALUES ("+placeholders(1, 11)+")", citizenArgs(c)...); err != nil {
		return fmt.Errorf("create citizen %s: %w", c.ID, conflict(err))
	}
	return nil
}

const fiscalUpsert = `INSERT INTO fiscal_records (citizen_id, given_name, surnames, address, updated_at) VALUES ($1, $2, $3, $4, $5)
	ON CONFLICT (citizen_id) DO UPDATE SET given_name = excluded.given_name, surnames = excluded.surnames,
	address = excluded.address, updated_at = excluded.updated_at`

// ImportCitizens inserts many citizens in one transaction, skipping those
// that exist. The statements go as one pipelined batch: a bulk import of
// thousands of rows is one round trip and one commit.
func (s *DB) ImportCitizens(ctx context.Context, citizens []*store.Citizen, records []*store.FiscalRecord) ([]bool, error) {
	created := make([]bool, len(citizens))
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var b pgx.Batch
		ins := "INSERT INTO citizens (" + citizenColumns + ") VALUES (" + placeholders(1, 11) + ") ON CONFLICT (id) DO NOTHING"
		for i, c := range citizens {
			b.Queue(ins, citizenArgs(c)...).Exec(func(tag pgconn.CommandTag) error {
				created[i] = tag.RowsAffected() == 1
				return nil
			})
		}
		for _, r := range records {
			b.Queue(fiscalUpsert, r.CitizenID, r.GivenName, r.Surnames, r.Address, r.UpdatedAt.UnixNano())
		}
		return tx.SendBatch(ctx, &b).Close()
	})
	if err != nil {
		return nil, fmt.Errorf("import citizens: %w", err)
	}
	return created, nil
}

// Citizen returns the citizen with the given DNI/NIE.
func (s *DB) Citizen(ctx context.Context, id string) (*store.Citizen, error) {
	c, err := scanCitizen(s.pool.QueryRow(ctx, "SELECT "+citizenColumns+" FROM citizens WHERE id = $1", id))
	if err != nil {
		return nil, fmt.Errorf("citizen %s: %w", id, notFound(err))
	}
	return c, nil
}

// Citizens lists citizens ordered by ID.
func (s *DB) Citizens(ctx context.Context, q store.CitizenQuery) ([]*store.Citizen, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	query := "SELECT " + citizenColumns + " FROM citizens WHERE id > $1"
	args := []any{q.After}
	if q.Level != "" {
		args = append(args, q.Level)
		query += fmt.Sprintf(" AND level = $%d", len(args))
	}
	if q.Status != "" {
		args = append(args, q.Status)
		query += fmt.Sprintf(" AND status = $%d", len(args))
	}
	args = append(args, limit)
	query += fmt.Sprintf(" ORDER BY id LIMIT $%d", len(args))
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list citizens: %w", err)
	}
	out, err := collect(rows, scanCitizen)
	if err != nil {
		return nil, fmt.Errorf("list citizens: %w", err)
	}
	return out, nil
}

// UpdateCitizen overwrites every mutable field of an existing citizen.
func (s *DB) UpdateCitizen(ctx context.Context, c *store.Citizen) error {
	tag, err := s.pool.Exec(ctx, `UPDATE citizens SET given_name = $1, surnames = $2, mobile = $3, email = $4, level = $5,
		method = $6, status = $7, updated_at = $8, level_at = $9 WHERE id = $10`,
		c.GivenName, c.Surnames, c.Mobile, c.Email, c.Level, c.Method, c.Status, c.UpdatedAt.UnixNano(), c.LevelAt.UnixNano(), c.ID)
	if err != nil {
		return fmt.Errorf("update citizen %s: %w", c.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("update citizen %s: %w", c.ID, store.ErrNotFound)
	}
	return nil
}

// PutCredential sets a citizen's password hash and clears any lockout.
func (s *DB) PutCredential(ctx context.Context, c *store.Credential) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO credentials (citizen_id, hash, failures, locked_at, set_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (citizen_id) DO UPDATE SET hash = excluded.hash, failures = excluded.failures,
		locked_at = excluded.locked_at, set_at = excluded.set_at`,
		c.CitizenID, c.Hash, c.Failures, nanos(c.LockedAt), c.SetAt.UnixNano())
	if err != nil {
		if pgCode(err) == codeForeignKeyViolation {
			return fmt.Errorf("put credential %s: %w", c.CitizenID, store.ErrNotFound)
		}
		return fmt.Errorf("put credential %s: %w", c.CitizenID, err)
	}
	return nil
}

const credentialColumns = "citizen_id, hash, failures, locked_at, set_at"

func scanCredential(row scanner) (*store.Credential, error) {
	var (
		c           store.Credential
		locked, set *int64
	)
	if err := row.Scan(&c.CitizenID, &c.Hash, &c.Failures, &locked, &set); err != nil {
		return nil, err
	}
	c.LockedAt, c.SetAt = fromNanos(locked), fromNanos(set)
	return &c, nil
}

// Credential returns a citizen's credential.
func (s *DB) Credential(ctx context.Context, citizenID string) (*store.Credential, error) {
	c, err := scanCredential(s.pool.QueryRow(ctx, "SELECT "+credentialColumns+" FROM credentials WHERE citizen_id = $1", citizenID))
	if err != nil {
		return nil, fmt.Errorf("credential %s: %w", citizenID, notFound(err))
	}
	return c, nil
}

// CredentialFailed counts a failure and locks at max in one statement.
// Under READ COMMITTED a concurrent UPDATE of the row waits for the first
// and re-reads failures, so guesses spread over nodes all count.
func (s *DB) CredentialFailed(ctx context.Context, citizenID string, max int, at time.Time) (*store.Credential, error) {
	c, err := scanCredential(s.pool.QueryRow(ctx, `UPDATE credentials SET failures = failures + 1,
		locked_at = CASE WHEN locked_at IS NULL AND failures + 1 >= $1 THEN $2 ELSE locked_at END
		WHERE citizen_id = $3 RETURNING `+credentialColumns, max, at.UnixNano(), citizenID))
	if err != nil {
		return nil, fmt.Errorf("credential %s: %w", citizenID, notFound(err))
	}
	return c, nil
}

// CredentialSucceeded resets the failure count of an unlocked credential.
func (s *DB) CredentialSucceeded(ctx context.Context, citizenID string) error {
	if _, err := s.pool.Exec(ctx, "UPDATE credentials SET failures = 0 WHERE citizen_id = $1 AND locked_at IS NULL", citizenID); err != nil {
		return fmt.Errorf("credential %s: %w", citizenID, err)
	}
	return nil
}

const codeColumns = "id, kind, citizen_id, hash, data, attempts, created_at, expires_at, used_at"

func scanCode(row scanner) (*store.Code, error) {
	var (
		c                      store.Code
		created, expires, used *int64
	)
	if err := row.Scan(&c.ID, &c.Kind, &c.CitizenID, &c.Hash, &c.Data, &c.Attempts, &created, &expires, &used); err != nil {
		return nil, err
	}
	c.CreatedAt, c.ExpiresAt, c.UsedAt = fromNanos(created), fromNanos(expires), fromNanos(used)
	return &c, nil
}

// CreateCode stores a new registration code.
func (s *DB) CreateCode(ctx context.Context, c *store.Code) error {
	hash := c.Hash
	if hash == nil {
		hash = []byte{}
	}
	_, err := s.pool.Exec(ctx, "INSERT INTO registration_codes ("+codeColumns+") VALUES ("+placeholders(1, 9)+")",
		c.ID, c.Kind, c.CitizenID, hash, c.Data, c.Attempts, c.CreatedAt.UnixNano(), c.ExpiresAt.UnixNano(), nanos(c.UsedAt))
	if err != nil {
		return fmt.Errorf("create code: %w", conflict(err))
	}
	return nil
}

// Code returns a registration code by ID.
func (s *DB) Code(ctx context.Context, id string) (*store.Code, error) {
	c, err := scanCode(s.pool.QueryRow(ctx, "SELECT "+codeColumns+" FROM registration_codes WHERE id = $1", id))
	if err != nil {
		return nil, fmt.Errorf("code: %w", notFound(err))
	}
	return c, nil
}

// Codes lists a citizen's codes of one kind, newest first.
func (s *DB) Codes(ctx context.Context, citizenID, kind string) ([]*store.Code, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+codeColumns+` FROM registration_codes
		WHERE citizen_id = $1 AND kind = $2 ORDER BY created_at DESC, id LIMIT 100`, citizenID, kind)
	if err != nil {
		return nil, fmt.Errorf("list codes: %w", err)
	}
	out, err := collect(rows, scanCode)
	if err != nil {
		return nil, fmt.Errorf("list codes: %w", err)
	}
	return out, nil
}

// UseCode spends a code once: of two concurrent calls on any nodes, the
// second waits for the first's row lock and then matches no row.
func (s *DB) UseCode(ctx context.Context, id string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, "UPDATE registration_codes SET used_at = $1 WHERE id = $2 AND used_at IS NULL", at.UnixNano(), id)
	if err != nil {
		return fmt.Errorf("use code: %w", err)
	}
	if tag.RowsAffected() == 0 {
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
	err := s.pool.QueryRow(ctx, "UPDATE registration_codes SET attempts = attempts + 1 WHERE id = $1 RETURNING attempts", id).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("code: %w", notFound(err))
	}
	return n, nil
}

// DeleteCodes deletes codes that expired before the cutoff.
func (s *DB) DeleteCodes(ctx context.Context, kind string, expiredBefore time.Time) (int64, error) {
	q, args := "DELETE FROM registration_codes WHERE expires_at < $1", []any{expiredBefore.UnixNano()}
	if kind != "" {
		q += " AND kind = $2"
		args = append(args, kind)
	}
	tag, err := s.pool.Exec(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("delete codes: %w", err)
	}
	return tag.RowsAffected(), nil
}

// PutFiscalRecord creates or replaces a fiscal record.
func (s *DB) PutFiscalRecord(ctx context.Context, r *store.FiscalRecord) error {
	if _, err := s.pool.Exec(ctx, fiscalUpsert, r.CitizenID, r.GivenName, r.Surnames, r.Address, r.UpdatedAt.UnixNano()); err != nil {
		return fmt.Errorf("put fiscal record %s: %w", r.CitizenID, err)
	}
	return nil
}

// FiscalRecord returns the fiscal record of a DNI/NIE.
func (s *DB) FiscalRecord(ctx context.Context, citizenID string) (*store.FiscalRecord, error) {
	var (
		r       store.FiscalRecord
		updated *int64
	)
	err := s.pool.QueryRow(ctx, "SELECT citizen_id, given_name, surnames, address, updated_at FROM fiscal_records WHERE citizen_id = $1",
		citizenID).Scan(&r.CitizenID, &r.GivenName, &r.Surnames, &r.Address, &updated)
	if err != nil {
		return nil, fmt.Errorf("fiscal record %s: %w", citizenID, notFound(err))
	}
	r.UpdatedAt = fromNanos(updated)
	return &r, nil
}

// PutLetter adds a letter to the letter outbox.
func (s *DB) PutLetter(ctx context.Context, l *store.Letter) error {
	_, err := s.pool.Exec(ctx, "INSERT INTO letter_outbox (id, citizen_id, address, body, created_at) VALUES ($1, $2, $3, $4, $5)",
		l.ID, l.CitizenID, l.Address, l.Body, l.CreatedAt.UnixNano())
	if err != nil {
		return fmt.Errorf("put letter: %w", err)
	}
	return nil
}

// Letters lists letters newest first, to one citizen if citizenID is set.
func (s *DB) Letters(ctx context.Context, citizenID string, limit int) ([]*store.Letter, error) {
	return listOutbox(ctx, s, letterOutbox, citizenID, limit, func(row scanner) (*store.Letter, error) {
		var (
			m       store.Letter
			created *int64
		)
		if err := row.Scan(&m.ID, &m.CitizenID, &m.Address, &m.Body, &created); err != nil {
			return nil, err
		}
		m.CreatedAt = fromNanos(created)
		return &m, nil
	})
}

// DeleteLetters deletes letters created before the cutoff.
func (s *DB) DeleteLetters(ctx context.Context, before time.Time) (int64, error) {
	return s.purgeOutbox(ctx, letterOutbox, before)
}

// PutSMS adds a message to the SMS outbox.
func (s *DB) PutSMS(ctx context.Context, m *store.SMS) error {
	_, err := s.pool.Exec(ctx, "INSERT INTO sms_outbox (id, recipient, body, created_at) VALUES ($1, $2, $3, $4)",
		m.ID, m.To, m.Text, m.CreatedAt.UnixNano())
	if err != nil {
		return fmt.Errorf("put sms: %w", err)
	}
	return nil
}

// SMSes lists outbox messages newest first.
func (s *DB) SMSes(ctx context.Context, to string, limit int) ([]*store.SMS, error) {
	return listOutbox(ctx, s, smsOutbox, to, limit, func(row scanner) (*store.SMS, error) {
		var (
			m       store.SMS
			created *int64
		)
		if err := row.Scan(&m.ID, &m.To, &m.Text, &created); err != nil {
			return nil, err
		}
		m.CreatedAt = fromNanos(created)
		return &m, nil
	})
}

// DeleteSMS deletes outbox messages created before the cutoff.
func (s *DB) DeleteSMS(ctx context.Context, before time.Time) (int64, error) {
	return s.purgeOutbox(ctx, smsOutbox, before)
}
