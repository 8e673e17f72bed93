package audit

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/firma-cloud/firma/errs"
)

// Sentinel errors callers tell apart with errors.Is.
var (
	// ErrInvalid means a record is malformed; nothing was appended.
	ErrInvalid = errs.Sentinel(errs.Invalid, "invalid_audit_record", "invalid audit record")
	// ErrSecret means a record looked as if it carried a secret.
	ErrSecret = errs.Sentinel(errs.Invalid, "secret_in_audit_record", "secret in audit record")
	// ErrPersonalData means a record carried a phone number or email in
	// clear instead of its Pseudonym.
	ErrPersonalData = errs.Sentinel(errs.Invalid, "personal_data_in_audit_record", "personal data in audit record")
	// ErrClosed means the log was closed.
	ErrClosed = errs.Sentinel(errs.Unavailable, "audit_log_closed", "audit log closed")
	// ErrUnavailable means the record could not be committed: the audited
	// operation must be refused.
	ErrUnavailable = errs.Sentinel(errs.Unavailable, "audit_unavailable", "audit log unavailable")
)

// Event is what a record is about.
type Event string

// Events. Names are stable: they are hashed into the log.
const (
	KeyGenerated Event = "key.generated"
	KeyUsed      Event = "key.used" // one record per signing operation, with each document's digest
	// KeyActivated is the signature-activation record: the decision to use
	// a key (who, which key, which digests, on what evidence), appended
	// before the HSM is asked. Its key.used follows with the result and the
	// same DetailActivation; one without a key.used is a decision a crash
	// cut short, which verification reports.
	KeyActivated Event = "key.activated"
	KeyDestroyed Event = "key.destroyed"
	// KeyGenerateRequested and KeyDestroyRequested are the intent of a
	// key change (ChangeKey), appended before the HSM is asked; the
	// key.generated or key.destroyed record follows with the result and
	// the same DetailKeyChange.
	KeyGenerateRequested   Event = "key.generate_requested"
	KeyDestroyRequested    Event = "key.destroy_requested"
	CertificateIssued      Event = "certificate.issued"
	CertificateRenewed     Event = "certificate.renewed"
	CertificateRevoked     Event = "certificate.revoked"
	OTPSent                Event = "otp.sent"
	OTPChecked             Event = "otp.checked"
	OTPFailed              Event = "otp.failed"
	OTPLocked              Event = "otp.locked"
	TransactionCreated     Event = "transaction.created"
	TransactionStateChange Event = "transaction.state_changed"
	CitizenRegistered      Event = "citizen.registered"
	CitizenUpgraded        Event = "citizen.upgraded"
	CitizenLocked          Event = "citizen.locked"
	CitizenUnlocked        Event = "citizen.unlocked"
	PortalCreated          Event = "portal.created"
	PortalChanged          Event = "portal.changed"
	PortalDisabled         Event = "portal.disabled"
	StaffCreated           Event = "staff.created"
	StaffChanged           Event = "staff.changed"
	StaffDisabled          Event = "staff.disabled"
	AuthFailed             Event = "auth.failed"
	AuditRead              Event = "audit.read"     // reading the log is itself audited
	AuditExported          Event = "audit.exported" // and so is exporting it
	// SignatureRetimestamped is a new archive timestamp on a stored B-LTA
	// signature (no key is used), before the last one's TSA certificate
	// expires.
	SignatureRetimestamped Event = "signature.retimestamped"
)

// Events lists every event type.
var Events = []Event{
	KeyGenerated, KeyActivated, KeyUsed, KeyDestroyed, KeyGenerateRequested, KeyDestroyRequested,
	CertificateIssued, CertificateRenewed, CertificateRevoked,
	OTPSent, OTPChecked, OTPFailed, OTPLocked,
	TransactionCreated, TransactionStateChange,
	CitizenRegistered, CitizenUpgraded, CitizenLocked, CitizenUnlocked,
	PortalCreated, PortalChanged, PortalDisabled,
	StaffCreated, StaffChanged, StaffDisabled,
	AuthFailed, AuditRead, AuditExported, SignatureRetimestamped,
}

// ParseEvent parses an event name.
func ParseEvent(s string) (Event, error) {
	for _, e := range Events {
		if string(e) == s {
			return e, nil
		}
	}
	return "", fmt.Errorf("event %q: %w: unknown event type", s, ErrInvalid)
}

// Outcome is how the audited operation ended.
type Outcome string

// Outcomes.
const (
	Success Outcome = "success"
	Failure Outcome = "failure" // it failed (an error, a wrong OTP)
	Denied  Outcome = "denied"  // policy refused it (role, level, lock)
)

// Roles of actors. Staff roles match the service's credentials.
const (
	RoleCitizen    = "citizen"
	RolePortal     = "portal"
	RoleAdmin      = "admin"
	RoleRegistrar  = "registrar"
	RoleVideoAgent = "video_agent"
	RoleAuditor    = "auditor"
	RoleSystem     = "system" // the service itself (checkpoints, expiry jobs)
	RoleAnonymous  = "anonymous"
)

// Actor is who caused an event.
type Actor struct {
	Role string `json:"role"`
	ID   string `json:"id"`
}

// Document is the digest of one document a key signed.
type Document struct {
	Hash   string `json:"hash"`   // "sha-256", "sha-384" or "sha-512"
	Digest string `json:"digest"` // lower-case hex
	Name   string `json:"name,omitempty"`
}

// Digest describes a document by its digest under h.
func Digest(h crypto.Hash, digest []byte) Document {
	return Document{Hash: hashName(h), Digest: hex.EncodeToString(digest)}
}

func hashName(h crypto.Hash) string {
	switch h {
	case crypto.SHA256:
		return "sha-256"
	case crypto.SHA384:
		return "sha-384"
	case crypto.SHA512:
		return "sha-512"
	}
	return h.String()
}

var hashSizes = map[string]int{"sha-256": 32, "sha-384": 48, "sha-512": 64}

// Record is one audit event. Seq is assigned by the log; Time and Node are
// filled in by Append when empty.
//
// Citizen is the registry's citizen ID, never a DNI/NIE, phone number or
// email: put those, if needed at all, through Pseudonym.
type Record struct {
	Seq       int64             `json:"seq"` // must stay the first field: see encode
	Time      time.Time         `json:"time"`
	Node      string            `json:"node,omitempty"`
	Event     Event             `json:"event"`
	Outcome   Outcome           `json:"outcome"`
	Actor     Actor             `json:"actor"`
	Citizen   string            `json:"citizen,omitempty"`
	Portal    string            `json:"portal,omitempty"`
	KeyID     string            `json:"key_id,omitempty"`
	Documents []Document        `json:"documents,omitempty"`
	RequestID string            `json:"request_id,omitempty"`
	Reason    string            `json:"reason,omitempty"` // why it failed or was denied; no secrets
	Details   map[string]string `json:"details,omitempty"`
}

// Limits on a record, so that one caller cannot bloat the log.
const (
	maxField     = 256
	maxDetails   = 32
	maxDetailVal = 1024
	maxDocuments = 10000
)

var (
	detailKeyRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)
	roleRE      = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)
	emailRE     = regexp.MustCompile(`[^\s@]+@[^\s@]+\.[^\s@]+`)
	// Phone numbers, precisely enough that identifiers made of digits are
	// not taken for them: an E.164 number written with its "+" (8 to 15
	// digits, grouped with spaces, hyphens, dots or brackets), or a Spanish
	// number written nationally or after 0034: nine digits starting 6 or 7
	// (mobiles) or 8 or 9 (landlines), grouped with spaces or hyphens. A
	// digit run of any other length (serial numbers, times, counters) and a
	// dotted OID are not phones.
	phoneRE = regexp.MustCompile(`^(?:` + e164Pat + `|` + esPhonePat + `)$`)
	// phoneInText finds the same inside free text.
	phoneInText = regexp.MustCompile(`(?:` + e164Pat + `|\b` + esPhonePat + `)\b`)
	// Detail keys that name secrets. A record must never carry one, even
	// hashed: OTPs and PINs are short enough to brute-force from a hash.
	secretKeys = map[string]bool{"pin": true, "otp": true, "otp_code": true, "code": true, "password": true,
		"passwd": true, "secret": true, "token": true, "api_key": true, "apikey": true, "activation_code": true,
		"csv": true, "csv_code": true, "private_key": true, "key_material": true, "credential": true, "credentials": true}
	secretParts = []string{"password", "passwd", "secret", "api_key", "apikey", "private_key", "_token", "activation_code"}
)

func isSecretKey(k string) bool {
	if secretKeys[k] {
		return true
	}
	for _, w := range secretParts {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

const (
	// e164Pat: "+", a country code not starting with 0, 8 to 15 digits
	// in all, at most two separators between digits ("+34 (612) 34 56 78").
	e164Pat = `\+[1-9](?:[ ().-]{0,2}[0-9]){7,14}`
	// esPhonePat: an optional 0034 or +34, then 9 digits starting 6 to 9;
	// no dots, so that OIDs ("1.3.6.1.4.1...") never match.
	esPhonePat = `(?:(?:0034|\+34)[ -]?)?[6-9](?:[ -]?[0-9]){8}`
)

// looksPersonal reports whether v looks like an email or a phone number.
func looksPersonal(v string) bool {
	return (mayHoldEmail(v) && emailRE.MatchString(v)) || (mayHoldPhone(v) && phoneRE.MatchString(strings.TrimSpace(v)))
}

// mayHoldEmail and mayHoldPhone are necessary conditions for emailRE and
// the phone patterns (an "@"; at least 8 digits, the fewest either phone
// pattern has), checked first because nearly every value passes them and
// the regular expressions cost more than the rest of an append's checks.
func mayHoldEmail(v string) bool { return strings.IndexByte(v, '@') >= 0 }

func mayHoldPhone(v string) bool {
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] >= '0' && v[i] <= '9' {
			if n++; n >= 8 {
				return true
			}
		}
	}
	return false
}

func checkText(field, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%s: %w: longer than %d bytes", field, ErrInvalid, max)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s: %w: not valid UTF-8", field, ErrInvalid)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s: %w: control character", field, ErrInvalid)
		}
	}
	if looksPersonal(v) {
		return fmt.Errorf("%s: %w: use audit.Pseudonym for phone numbers and emails", field, ErrPersonalData)
	}
	return nil
}

// redacted replaces personal data found in free text.
const redacted = "[redacted]"

// Redact removes emails and phone numbers from free text (a reason taken
// from an error, a document's file name), which may quote them: such text
// is kept, minus the personal data, rather than refused.
func Redact(s string) string {
	if mayHoldEmail(s) {
		s = emailRE.ReplaceAllString(s, redacted)
	}
	if mayHoldPhone(s) {
		s = phoneInText.ReplaceAllString(s, redacted)
	}
	return s
}

// Validate checks a record before it is appended. Error messages name the
// field, never its value, since a rejected value may be the very secret or
// personal datum that must not reach a log.
func (r *Record) Validate() error {
	if _, err := ParseEvent(string(r.Event)); err != nil {
		return err
	}
	switch r.Outcome {
	case Success, Failure, Denied:
	default:
		return fmt.Errorf("outcome: %w: want success, failure or denied", ErrInvalid)
	}
	if !roleRE.MatchString(r.Actor.Role) {
		return fmt.Errorf("actor role: %w: want a lower-case role name", ErrInvalid)
	}
	if r.Actor.ID == "" {
		return fmt.Errorf("actor id: %w: empty", ErrInvalid)
	}
	for _, f := range []struct{ name, v string }{
		{"actor id", r.Actor.ID}, {"node", r.Node}, {"citizen", r.Citizen}, {"portal", r.Portal},
		{"key id", r.KeyID}, {"request id", r.RequestID},
	} {
		if err := checkText(f.name, f.v, maxField); err != nil {
			return err
		}
	}
	if err := checkText("reason", r.Reason, maxDetailVal); err != nil {
		return err
	}
	switch {
	case strings.HasPrefix(string(r.Event), "key.") && r.KeyID == "":
		return fmt.Errorf("%s: %w: key id is required", r.Event, ErrInvalid)
	case (strings.HasPrefix(string(r.Event), "otp.") || strings.HasPrefix(string(r.Event), "citizen.")) && r.Citizen == "":
		return fmt.Errorf("%s: %w: citizen is required", r.Event, ErrInvalid)
	}
	if len(r.Documents) > maxDocuments {
		return fmt.Errorf("documents: %w: more than %d", ErrInvalid, maxDocuments)
	}
	for i, d := range r.Documents {
		n, ok := hashSizes[d.Hash]
		if !ok {
			return fmt.Errorf("document %d: %w: hash %q, want sha-256, sha-384 or sha-512", i, ErrInvalid, d.Hash)
		}
		if b, err := hex.DecodeString(d.Digest); err != nil || len(b) != n || d.Digest != strings.ToLower(d.Digest) {
			return fmt.Errorf("document %d: %w: digest is not %d bytes of lower-case hex", i, ErrInvalid, n)
		}
		if err := checkText("document "+strconv.Itoa(i)+" name", d.Name, maxField); err != nil {
			return err
		}
	}
	if len(r.Details) > maxDetails {
		return fmt.Errorf("details: %w: more than %d", ErrInvalid, maxDetails)
	}
	for k, v := range r.Details {
		if !detailKeyRE.MatchString(k) {
			return fmt.Errorf("detail key: %w: want lower-case letters, digits, _ . -", ErrInvalid)
		}
		if isSecretKey(k) {
			return fmt.Errorf("detail %q: %w: secrets never go in the audit log", k, ErrSecret)
		}
		if err := checkText("detail "+k, v, maxDetailVal); err != nil {
			return err
		}
	}
	return nil
}

// seqPrefix is how every encoded record starts before its sequence number
// is known: encoding/json writes struct fields in order and Seq is first.
var seqPrefix = []byte(`{"seq":0,`)

// encode returns the record's canonical JSON with Seq 0, so the costly part
// of encoding runs in the caller's goroutine and the committer only splices
// in the sequence number (withSeq).
func (r *Record) encode() ([]byte, error) {
	c := *r
	c.Seq = 0
	c.Time = r.Time.UTC()
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("encode audit record: %w", err)
	}
	if !bytes.HasPrefix(b, seqPrefix) {
		return nil, fmt.Errorf("encode audit record: unexpected encoding")
	}
	return b, nil
}

// withSeq returns the canonical leaf of a record encoded by encode once it
// is given sequence number seq.
func withSeq(body []byte, seq int64) []byte {
	out := make([]byte, 0, len(body)+20)
	out = append(out, `{"seq":`...)
	out = strconv.AppendInt(out, seq, 10)
	return append(out, body[len(seqPrefix)-1:]...)
}

// Leaf returns the canonical JSON of the record, the bytes hashed into the
// log.
func (r *Record) Leaf() ([]byte, error) {
	b, err := r.encode()
	if err != nil {
		return nil, err
	}
	return withSeq(b, r.Seq), nil
}

// ParseRecord decodes a leaf.
func ParseRecord(leaf []byte) (*Record, error) {
	var r Record
	d := json.NewDecoder(bytes.NewReader(leaf))
	d.DisallowUnknownFields()
	if err := d.Decode(&r); err != nil {
		return nil, fmt.Errorf("parse audit record: %w", err)
	}
	return &r, nil
}
