package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"unicode"
)

// Kind is the kind of personal datum a pseudonym stands for. It is mixed
// into the HMAC so that the same string as a phone and as an email gives
// unrelated pseudonyms.
type Kind string

// Kinds of personal data.
const (
	Phone      Kind = "phone"
	Email      Kind = "email"
	NationalID Kind = "national-id" // DNI or NIE
)

// MinPseudonymKeySize is the least key size Pseudonym accepts, in bytes.
const MinPseudonymKeySize = 32

// Pseudonym returns a stable keyed pseudonym of a personal datum, for
// records: "phone:" followed by 128 bits of HMAC-SHA-256 under key, in
// unpadded base64url. The value is normalised first (emails lower-cased,
// phones reduced to + and digits) so the same person always gets the same
// pseudonym. Without the key nobody can test a guess, which is what makes
// it safe to keep in a log auditors export: phone numbers are few enough
// that a plain hash would be reversed by enumeration.
//
// The key comes from the service configuration (audit.pseudonym_key_file),
// not from the HSM: it must be the same on every node and outlive HSM key
// rotation, or old records could no longer be correlated with new ones.
func Pseudonym(key []byte, kind Kind, value string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(normalise(kind, value)))
	return string(kind) + ":" + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

func normalise(kind Kind, v string) string {
	v = strings.TrimSpace(v)
	switch kind {
	case Email:
		return strings.ToLower(v)
	case Phone:
		var b strings.Builder
		if strings.HasPrefix(v, "00") {
			b.WriteByte('+')
			v = v[2:]
		}
		for _, r := range v {
			if unicode.IsDigit(r) || (r == '+' && b.Len() == 0) {
				b.WriteRune(r)
			}
		}
		return b.String()
	case NationalID:
		return strings.ToUpper(strings.NewReplacer(" ", "", "-", "", ".", "").Replace(v))
	}
	return v
}

// LoadPseudonymKey reads the pseudonym key from a file holding at least
// MinPseudonymKeySize random bytes, raw or in standard base64.
func LoadPseudonymKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pseudonym key: %w", err)
	}
	if d, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b))); err == nil && len(d) >= MinPseudonymKeySize {
		return d, nil
	}
	if len(b) < MinPseudonymKeySize {
		return nil, fmt.Errorf("pseudonym key %s: %w: want at least %d bytes", path, ErrInvalid, MinPseudonymKeySize)
	}
	return b, nil
}
