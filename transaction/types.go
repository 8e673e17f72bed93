package transaction

import (
	"context"
	"crypto/x509"
	"time"

	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/store"
)

// State is where a transaction is in its life.
type State string

// States. created, authenticated, otp_sent, approved and signing are
// live; the rest are final.
const (
	// StateDraft is a batch a portal is still adding documents to (FIRe's
	// createBatch, then addDocumentToBatch); SignBatch makes it created.
	StateDraft         State = "draft"
	StateCreated       State = "created"
	StateAuthenticated State = "authenticated"
	StateOTPSent       State = "otp_sent"
	StateApproved      State = "approved"
	StateSigning       State = "signing"
	StateDone          State = "done"
	StateRejected      State = "rejected"
	StateFailed        State = "failed"
	StateExpired       State = "expired"
	StateCancelled     State = "cancelled"
)

// Final reports whether no further step applies.
func (s State) Final() bool {
	switch s {
	case StateDone, StateRejected, StateFailed, StateExpired, StateCancelled:
		return true
	}
	return false
}

// DocStatus is the outcome of one document.
type DocStatus string

// Document outcomes.
const (
	DocPending      DocStatus = "pending"       // not signed yet
	DocSigned       DocStatus = "signed"        // Signature holds the result
	DocNotProcessed DocStatus = "not_processed" // the transaction ended before signing
	DocAborted      DocStatus = "aborted"       // an earlier document failed and the batch stops on the first error
	DocFailed       DocStatus = "failed"        // ErrorCode and Error say why
	// DocRecording is a document signed and stored before its key.used
	// record is known to be written: the signature is kept but never
	// handed out (views show the document pending) until it becomes
	// DocSigned. A resume confirms or writes its record, never signs it
	// again (see Service.confirmRecorded).
	DocRecording DocStatus = "recording"
)

// Summary is the outcome of a whole batch.
type Summary string

// Batch summaries, set once signing ends.
const (
	SummaryAllSigned  Summary = "all_signed"
	SummarySomeFailed Summary = "some_failed"
	SummaryAllFailed  Summary = "all_failed"
)

// Hash names accepted for documents.
const (
	HashSHA256 = "sha256"
	HashSHA384 = "sha384"
	HashSHA512 = "sha512"
)

// DocumentInput is one document a portal asks to have signed: either the
// whole Content, or the Digest of it under Hash.
type DocumentInput struct {
	Name      string // shown to the citizen; required
	MediaType string // e.g. application/pdf; chooses the default format
	Content   []byte
	Digest    []byte
	Hash      string        // sha256 (default), sha384, sha512
	Format    signer.Format // raw, cades, pades; "" picks by media type
	// Operation is sign ("" too), cosign (another signer of the same
	// content: a new SignerInfo in Signature, or a new field in the
	// signed PDF given as Content) or countersign (of every SignerInfo
	// at the top of Signature); CAdES, and cosign on PAdES too.
	Operation signer.Operation
	// Signature is the existing CAdES signature to cosign or
	// countersign; the document (Content or Digest) must be the one it
	// signs.
	Signature []byte
	// Policy names the signature policy: "" the portal's default
	// (Options.PortalPolicies), "none", "FirmaAGE", or one of
	// Options.Policies.
	Policy string
	// Attached puts the content inside the CAdES signature (FIRe mode
	// implicit); it needs Content.
	Attached bool
	// Appearance makes a PAdES signature visible; nil keeps it invisible.
	Appearance *Appearance
}

// CreateRequest asks a citizen to sign documents.
type CreateRequest struct {
	CitizenID string // DNI or NIE
	Documents []DocumentInput
	OKURL     string // where the citizen returns after signing; on the allow-list
	ErrorURL  string // where the citizen returns otherwise; on the allow-list
	// StopOnError stops at the first document that fails; the rest are
	// aborted. Otherwise every document is tried (best effort).
	StopOnError bool
	// Level is the CAdES/PAdES baseline level, B-B, B-T, B-LT or B-LTA
	// (the last two need Options.Validation); "" means B-T
	// when a timestamper is configured, B-B otherwise.
	Level signer.Level
	// IdempotencyKey makes a retried request return the first one's
	// transaction instead of making another.
	IdempotencyKey string

	draft bool // set by CreateDraft
}

// Created is what Create returns: where to send the citizen.
type Created struct {
	ID          string
	RedirectURL string // the approval page, BaseURL + "/sign/" + ID; "" for a draft
	State       State
	ExpiresAt   time.Time
	// Replayed is true when an idempotency key matched an earlier request.
	Replayed bool
}

// DocumentState is one document's status as the portal sees it.
type DocumentState struct {
	Index     int
	Name      string
	MediaType string
	Size      int64
	Hash      string
	Digest    []byte
	Format    signer.Format
	Status    DocStatus
	ErrorCode Code
	Error     string
}

// Transaction is a transaction's status as the portal sees it.
type Transaction struct {
	ID           string
	PortalID     string
	CitizenID    string
	State        State
	StopOnError  bool
	Summary      Summary
	ErrorCode    Code
	ErrorMessage string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// ExpiresAt is the approval deadline; once approved, the end of the
	// signing lease.
	ExpiresAt time.Time
	EndedAt   time.Time
	Documents []DocumentState
	// Processed is how many documents have their outcome (signed, failed,
	// aborted) stored: while the transaction is approved or signing, the
	// workers' progress out of len(Documents).
	Processed int
}

// DocumentResult is one processed document: its signature (raw), CMS
// (cades) or signed PDF (pades) when signed.
type DocumentResult struct {
	DocumentState
	Signature   []byte
	Timestamped bool // a signature timestamp is inside (B-T)
	// TimestampToken is that RFC 3161 token (DER) and TimestampTime its
	// genTime, for portals that keep them apart from the CMS.
	TimestampToken []byte
	TimestampTime  time.Time
	SignedAt       time.Time
}

// Results is what the portal collects once the transaction is done.
type Results struct {
	Transaction *Transaction
	Documents   []DocumentResult
	// Chain is the signer's certificate first, then its issuers (DER).
	Chain [][]byte
}

// CertificateView describes the certificate that signs, for the page.
type CertificateView struct {
	Subject   string
	Serial    string
	Issuer    string
	NotAfter  time.Time
	WillIssue bool // none yet: issued on approval
}

// ViewDocument is one document as the citizen sees it.
type ViewDocument struct {
	Index     int
	Name      string
	MediaType string
	Size      int64 // 0 when only a digest was sent
	Format    signer.Format
	ShortCode string // derived from the digest
	Status    DocStatus
}

// View is what the citizen's approval page shows.
type View struct {
	ID            string
	PortalName    string
	CitizenMasked string // e.g. ****5678Z
	State         State
	Documents     []ViewDocument
	// ApprovalCode is the short code over all documents; the SMS quotes it.
	ApprovalCode string
	Certificate  *CertificateView // nil if none can be shown
	ExpiresAt    time.Time
	OTP          *OTPStatus // nil until a code was sent
	Summary      Summary
	ErrorCode    Code
	ErrorMessage string
	// ReturnURL is where to send the citizen now that the transaction is
	// final: the OK URL (with the transaction id) when done, the error URL
	// otherwise; "" while live.
	ReturnURL string
	// ErrorURL is where a citizen who gives up goes (with the id).
	ErrorURL string
	// SignedIn is set by SessionView for the transaction's signed-in
	// citizen; only then are Certificate and OTP filled in.
	SignedIn bool
	// EndedAt is when the transaction reached its final state; zero
	// while live.
	EndedAt time.Time
}

// DocumentContent is one document as sent, for its citizen to open
// before approving.
type DocumentContent struct {
	Name      string
	MediaType string
	Content   []byte
}

// OTPStatus tells the page about the one-time password.
type OTPStatus struct {
	SentTo      string // masked mobile number
	ExpiresAt   time.Time
	TriesLeft   int
	ResendsLeft int
	ResendAt    time.Time // earliest next send
}

// Session is a citizen's sign-in to one transaction. Token goes in the
// page's cookie and back into SendOTP, Resend, Approve and Reject; only
// its keyed hash is stored.
type Session struct {
	Token string
	View  *View
}

// Citizens is the part of the registry the service uses;
// *registry.Service implements it.
type Citizens interface {
	Citizen(ctx context.Context, id string) (*store.Citizen, error)
	Authenticate(ctx context.Context, id, password string) (*store.Citizen, error)
}

// Certificates is the part of the CA the service uses; *ca.Authority
// implements it.
type Certificates interface {
	EnsureCertificate(ctx context.Context, citizenID string) (*ca.Certificate, error)
	Certificate(ctx context.Context, ref string) (*ca.Certificate, error)
	Certificates(ctx context.Context, o ca.ListOptions) ([]*ca.Certificate, error)
	Mode() string
	Issuing() *x509.Certificate
	Root() *x509.Certificate
}

// Portals looks portals up; *portal.Registry implements it.
type Portals interface {
	Get(ctx context.Context, id string) (*store.Portal, error)
}
