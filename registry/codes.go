package registry

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
)

// Code kinds kept in the store.
const (
	kindActivation = "activation"
	kindLetter     = "letter"
	kindSMS        = "sms"
	kindChallenge  = "challenge"
)

const (
	// csvAlphabet is what the letters' CSV is made of: digits and capital
	// letters, as printed on Cl@ve invitation letters.
	csvAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	// readableAlphabet leaves out 0/O and 1/I, which citizens misread when
	// typing a code from a screen, an SMS or paper.
	readableAlphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
	csvLength        = 16
	activationLength = 16
	smsCodeLength    = 4
)

// randomCode draws n characters uniformly from alphabet with crypto/rand.
func randomCode(alphabet string, n int) (string, error) {
	max := big.NewInt(int64(len(alphabet)))
	b := make([]byte, n)
	for i := range b {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("random code: %w", err)
		}
		b[i] = alphabet[v.Int64()]
	}
	return string(b), nil
}

func randomID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// cleanCode upper-cases typed input and drops the separators people add.
func cleanCode(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '.', '\t':
			return -1
		}
		if r >= 'a' && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, s)
}

// codeHash binds a code to its kind and owner, so a hash copied from one
// row cannot be replayed for another. The codes are long random strings
// (or, for 4-character SMS codes, short-lived and attempt-limited), so a
// fast hash is enough; passwords use argon2id instead.
func codeHash(kind, owner, code string) []byte {
	h := sha256.New()
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write([]byte(owner))
	h.Write([]byte{0})
	h.Write([]byte(cleanCode(code)))
	return h.Sum(nil)
}

func codeMatches(stored []byte, kind, owner, code string) bool {
	return subtle.ConstantTimeCompare(stored, codeHash(kind, owner, code)) == 1
}

// groupCode prints a code in groups of four for reading aloud or typing.
func groupCode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(s[i:min(i+4, len(s))])
	}
	return b.String()
}
