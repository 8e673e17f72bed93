package policy

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// OTPDigits is the length of a signature one-time password.
const OTPDigits = 6

// Rule names of the one-time password refusals.
const (
	RuleOTPResendLimit   = "otp_resend_limit"
	RuleOTPResendTooSoon = "otp_resend_too_soon"
)

// ErrOTPKey is a server OTP key too short to key the hash.
var ErrOTPKey = errors.New("otp key must be at least 32 bytes")

// OTPRules are the limits on signature one-time passwords. The zero value
// of a field means its default. Wrong codes are AttemptRules', counted on
// the citizen's channel (OTPScope).
type OTPRules struct {
	TTL        time.Duration // how long a code is valid; default 5 minutes
	MaxResends int           // new codes after the first; default 3
	ResendGap  time.Duration // least time between two sends; default 30 s
}

// DefaultOTPRules are the Cl@ve Firma limits.
func DefaultOTPRules() OTPRules {
	return OTPRules{TTL: 5 * time.Minute, MaxResends: 3, ResendGap: 30 * time.Second}
}

// WithDefaults fills unset fields with the defaults.
func (r OTPRules) WithDefaults() OTPRules {
	d := DefaultOTPRules()
	if r.TTL <= 0 {
		r.TTL = d.TTL
	}
	if r.MaxResends < 0 {
		r.MaxResends = 0
	} else if r.MaxResends == 0 {
		r.MaxResends = d.MaxResends
	}
	if r.ResendGap <= 0 {
		r.ResendGap = d.ResendGap
	}
	return r
}

// MaySend decides whether a code may be sent now, given how many were
// sent already and when the last one went. The first send is always
// allowed; later ones count as resends.
func (r OTPRules) MaySend(sent int, last, now time.Time) error {
	r = r.WithDefaults()
	if sent == 0 {
		return nil
	}
	if sent-1 >= r.MaxResends {
		return &Refusal{Rule: RuleOTPResendLimit, Reason: fmt.Sprintf(
			"the code has already been sent again %d times, the most allowed; start the signature again from the portal", r.MaxResends)}
	}
	if wait := last.Add(r.ResendGap).Sub(now); wait > 0 {
		secs := int((wait + time.Second - 1) / time.Second)
		return &Refusal{Rule: RuleOTPResendTooSoon, Reason: fmt.Sprintf(
			"a new code can be sent in %d seconds", secs)}
	}
	return nil
}

// ResendsLeft is how many more codes may be sent after sent ones.
func (r OTPRules) ResendsLeft(sent int) int {
	r = r.WithDefaults()
	if sent == 0 {
		return r.MaxResends
	}
	return max(0, r.MaxResends-(sent-1))
}

// NewOTP draws a one-time password of OTPDigits decimal digits, uniform,
// from crypto/rand.
func NewOTP() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", fmt.Errorf("otp: %w", err)
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

// CleanOTP drops the spaces and dashes people type into a code; it does
// not validate.
func CleanOTP(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '.', '\t':
			return -1
		}
		return r
	}, s)
}

// WellFormedOTP reports whether s (cleaned) has the shape of a code, so
// that typos are told apart from wrong codes without spending a try.
func WellFormedOTP(s string) bool {
	s = CleanOTP(s)
	if len(s) != OTPDigits {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// OTPHasher keys the stored hash of one-time passwords with a server
// secret: a stolen database then does not give the codes away, since six
// digits are otherwise found by trying all of them.
type OTPHasher struct {
	key []byte
}

// NewOTPHasher returns a hasher with key, which must be at least 32 bytes
// from a CSPRNG (config or HSM).
func NewOTPHasher(key []byte) (*OTPHasher, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("%w: got %d", ErrOTPKey, len(key))
	}
	return &OTPHasher{key: append([]byte(nil), key...)}, nil
}

// Hash is HMAC-SHA256 over the transaction ID, the approval digest and the
// code, each length-prefixed: a code approves exactly one transaction's
// exact documents.
func (h *OTPHasher) Hash(txID string, approval []byte, code string) []byte {
	m := hmac.New(sha256.New, h.key)
	writeField(m, []byte("firma-otp-v1"))
	writeField(m, []byte(txID))
	writeField(m, approval)
	writeField(m, []byte(CleanOTP(code)))
	return m.Sum(nil)
}

// Check reports, in constant time, whether code is the one whose hash is
// stored for the transaction and approval digest.
func (h *OTPHasher) Check(stored []byte, txID string, approval []byte, code string) bool {
	return hmac.Equal(stored, h.Hash(txID, approval, code))
}

func writeField(w interface{ Write([]byte) (int, error) }, b []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(b)))
	w.Write(n[:])
	w.Write(b)
}

// ApprovalItem is one document as the approval digest covers it.
type ApprovalItem struct {
	Hash   string // "sha256", "sha384" or "sha512"
	Digest []byte
}

// ApprovalDigest is the SHA-256 over every document's hash name and
// digest, in order: what the citizen approves with one code.
func ApprovalDigest(items []ApprovalItem) []byte {
	h := sha256.New()
	writeField(h, []byte("firma-approval-v1"))
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(items)))
	h.Write(n[:])
	for _, it := range items {
		writeField(h, []byte(it.Hash))
		writeField(h, it.Digest)
	}
	return h.Sum(nil)
}

// crockford is Crockford's base32 alphabet: no I, L, O or U, so that a
// code read off a phone and compared with a screen is not misread.
var crockford = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// ShortCode is an 8-character code, shown as XXXX-XXXX, derived from a
// digest: the SMS and the approval page both show it, so the citizen sees
// that the code approves what the page lists.
func ShortCode(digest []byte) string {
	sum := sha256.Sum256(digest)
	s := crockford.EncodeToString(sum[:5])
	return s[:4] + "-" + s[4:8]
}

// OTPMessage is the SMS text: it names the portal, the number of
// documents and the approval short code next to the one-time password.
func OTPMessage(portal string, documents int, shortCode, code string, ttl time.Duration) string {
	docs := "1 documento"
	if documents != 1 {
		docs = fmt.Sprintf("%d documentos", documents)
	}
	portal = strings.TrimSpace(portal)
	if n := []rune(portal); len(n) > 40 {
		portal = string(n[:40])
	}
	mins := int(ttl.Round(time.Minute) / time.Minute)
	if mins < 1 {
		mins = 1
	}
	return fmt.Sprintf("Cl@ve Firma: %s para firmar %s de %s (ref. %s). Caduca en %d min. No lo comparta. / Code to sign %d document(s) for %s.",
		code, docs, portal, shortCode, mins, documents, portal)
}
