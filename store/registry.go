package store

import (
	"context"
	"time"
)

// Citizen is a registered Cl@ve user, identified by a normalised DNI or NIE.
type Citizen struct {
	ID        string // DNI or NIE, upper case, no separators
	GivenName string
	Surnames  string
	Mobile    string // E.164
	Email     string
	Level     string // "basic" or "advanced"
	Method    string // registration method that gave Level
	Status    string // "active", "locked" or "removed"
	CreatedAt time.Time
	UpdatedAt time.Time
	LevelAt   time.Time // when Level was last set
}

// Credential is a citizen's Cl@ve Permanente password hash and lockout state.
type Credential struct {
	CitizenID string
	Hash      string // encoded argon2id, parameters and salt included
	Failures  int
	LockedAt  time.Time // zero while not locked
	SetAt     time.Time
}

// Locked reports whether repeated failures have locked the credential.
func (c *Credential) Locked() bool { return !c.LockedAt.IsZero() }

// Code is a single-use secret of the registration flows (activation code,
// invitation-letter CSV, SMS confirmation code, certificate challenge). Only
// its hash is kept.
type Code struct {
	ID        string
	Kind      string
	CitizenID string
	Hash      []byte
	Data      string // flow state, JSON, never a secret
	Attempts  int
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero while unused
}

// FiscalRecord is what the tax administration holds for a DNI/NIE: the
// name and the fiscal address invitation letters are sent to.
type FiscalRecord struct {
	CitizenID string
	GivenName string
	Surnames  string
	Address   string
	UpdatedAt time.Time
}

// Letter is an invitation letter waiting in the letter outbox for the
// print-and-post service.
type Letter struct {
	ID        string
	CitizenID string
	Address   string
	Body      string
	CreatedAt time.Time
}

// SMS is a text message kept by the outbox SMS gateway.
type SMS struct {
	ID        string
	To        string
	Text      string
	CreatedAt time.Time
}

// CitizenQuery selects citizens for listing, ordered by ID.
type CitizenQuery struct {
	After  string // list IDs strictly after this one
	Limit  int
	Level  string // "" for any
	Status string // "" for any
}

// RegistryStore persists citizens, their credentials and the registration
// flows' codes and outboxes.
type RegistryStore interface {
	CreateCitizen(ctx context.Context, c *Citizen) error
	// ImportCitizens inserts citizens and fiscal records in one
	// transaction; created[i] is false where citizens[i] already existed
	// (it is left untouched).
	ImportCitizens(ctx context.Context, citizens []*Citizen, records []*FiscalRecord) ([]bool, error)
	Citizen(ctx context.Context, id string) (*Citizen, error)
	Citizens(ctx context.Context, q CitizenQuery) ([]*Citizen, error)
	UpdateCitizen(ctx context.Context, c *Citizen) error

	PutCredential(ctx context.Context, c *Credential) error
	Credential(ctx context.Context, citizenID string) (*Credential, error)
	// CredentialFailed counts a failed password check and locks the
	// credential once failures reach max, in one atomic step.
	CredentialFailed(ctx context.Context, citizenID string, max int, at time.Time) (*Credential, error)
	// CredentialSucceeded resets the failure count.
	CredentialSucceeded(ctx context.Context, citizenID string) error

	CreateCode(ctx context.Context, c *Code) error
	Code(ctx context.Context, id string) (*Code, error)
	// Codes lists a citizen's codes of one kind, newest first, used and
	// expired ones included so that a reused code can be told from a
	// wrong one; at most 100.
	Codes(ctx context.Context, citizenID, kind string) ([]*Code, error)
	// UseCode marks the code used; ErrConflict if it already was, so a
	// code is spent once even under concurrent redemption.
	UseCode(ctx context.Context, id string, at time.Time) error
	// CodeAttempt counts a wrong guess and returns the new count.
	CodeAttempt(ctx context.Context, id string) (int, error)
	// DeleteCodes deletes the codes of kind ("" for every kind) that
	// expired before the cutoff, and returns how many.
	DeleteCodes(ctx context.Context, kind string, expiredBefore time.Time) (int64, error)

	PutFiscalRecord(ctx context.Context, r *FiscalRecord) error
	FiscalRecord(ctx context.Context, citizenID string) (*FiscalRecord, error)

	PutLetter(ctx context.Context, l *Letter) error
	Letters(ctx context.Context, citizenID string, limit int) ([]*Letter, error)
	// DeleteLetters deletes letters created before the cutoff.
	DeleteLetters(ctx context.Context, before time.Time) (int64, error)
}

// SMSStore persists the SMS outbox.
type SMSStore interface {
	PutSMS(ctx context.Context, m *SMS) error
	// SMSes lists messages newest first, to one number if to is not empty.
	SMSes(ctx context.Context, to string, limit int) ([]*SMS, error)
	// DeleteSMS deletes messages created before the cutoff.
	DeleteSMS(ctx context.Context, before time.Time) (int64, error)
}
