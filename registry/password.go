package registry

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Argon2 are the argon2id cost parameters for new password hashes. Each
// hash records its own, so they can be raised without breaking old ones.
type Argon2 struct {
	Time    uint32 // passes
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultArgon2 follows RFC 9106's second recommended option (64 MiB, 3
// passes), which fits a server verifying many logins at once.
var DefaultArgon2 = Argon2{Time: 3, Memory: 64 * 1024, Threads: 4}

const (
	saltLen = 16
	keyLen  = 32
)

var errHashFormat = errors.New("malformed password hash")

// hashPassword returns the PHC string form
// $argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>. Written by hand: x/crypto
// has no encoder and the format is a few lines.
func hashPassword(p Argon2, password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// checkPassword compares password with an encoded hash in constant time.
func checkPassword(encoded, password string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errHashFormat
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, errHashFormat
	}
	var p Argon2
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil || p.Time == 0 || p.Threads == 0 {
		return false, errHashFormat
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return false, errHashFormat
	}
	want, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return false, errHashFormat
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// passwordSlot takes a place at the password gate, if there is one.
func (r *Service) passwordSlot(ctx context.Context) (release func(), err error) {
	if r.opt.PasswordGate == nil {
		return func() {}, nil
	}
	return r.opt.PasswordGate.Acquire(ctx, 1)
}

// checkPasswordRules applies the Cl@ve Permanente password rules: 8 to 64
// characters with upper case, lower case and digits. The reason never
// echoes the password.
func checkPasswordRules(password string) error {
	if !utf8.ValidString(password) {
		return fieldErr("password", "is not valid UTF-8 text")
	}
	n := utf8.RuneCountInString(password)
	if n < 8 || n > 64 {
		return fieldErr("password", "must be 8 to 64 characters long")
	}
	var upper, lower, digit bool
	for _, r := range password {
		switch {
		case unicode.IsControl(r):
			return fieldErr("password", "must not contain control characters")
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsLower(r):
			lower = true
		case unicode.IsDigit(r):
			digit = true
		}
	}
	if !upper || !lower || !digit {
		return fieldErr("password", "must mix upper-case letters, lower-case letters and digits")
	}
	return nil
}
