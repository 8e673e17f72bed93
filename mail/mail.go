package mail

import (
	"context"
	"errors"
	"fmt"
	netmail "net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Gateway delivers a plain-text e-mail to one address.
type Gateway interface {
	Send(ctx context.Context, to, subject, text string) error
}

// Sentinel errors callers tell apart with errors.Is.
var (
	// ErrRecipient is an address that is not a bare e-mail address.
	ErrRecipient = errors.New("invalid recipient address")
	// ErrSubject is an empty, too long or multi-line subject.
	ErrSubject = errors.New("invalid subject")
	// ErrText is an empty, too long or non-UTF-8 body.
	ErrText = errors.New("invalid message text")
)

// Limits of what Check accepts.
const (
	// MaxAddress is RFC 5321's longest forward path.
	MaxAddress = 254
	// MaxSubject keeps the encoded Subject header to a few folded lines.
	MaxSubject = 200
	// MaxText bounds a notice's body; they are a few hundred bytes.
	MaxText = 64 << 10
)

// Check validates a message before any backend sends or stores it.
// The recipient must be a bare address (no display name, no comments) with
// a domain containing a dot, as registry.NormalizeEmail stores them.
func Check(to, subject, text string) error {
	if err := checkAddress(to); err != nil {
		return err
	}
	if subject == "" || !utf8.ValidString(subject) || utf8.RuneCountInString(subject) > MaxSubject {
		return fmt.Errorf("mail: %w: want 1 to %d characters of UTF-8", ErrSubject, MaxSubject)
	}
	// A control character in a header could end it and start another.
	if strings.IndexFunc(subject, unicode.IsControl) >= 0 {
		return fmt.Errorf("mail: %w: control characters (line breaks) are not allowed", ErrSubject)
	}
	if strings.TrimSpace(text) == "" || !utf8.ValidString(text) || len(text) > MaxText {
		return fmt.Errorf("mail: %w: want 1 to %d bytes of UTF-8", ErrText, MaxText)
	}
	if strings.ContainsRune(text, 0) {
		return fmt.Errorf("mail: %w: NUL characters are not allowed", ErrText)
	}
	return nil
}

// checkAddress names the problem, not the address: the error may be
// logged, and the address is personal data.
func checkAddress(to string) error {
	if to == "" || len(to) > MaxAddress {
		return fmt.Errorf("mail: %w: want an address of 1 to %d characters", ErrRecipient, MaxAddress)
	}
	a, err := netmail.ParseAddress(to)
	if err != nil || a.Name != "" || a.Address != to {
		return fmt.Errorf("mail: %w: want a bare address such as name@example.es", ErrRecipient)
	}
	at := strings.LastIndexByte(to, '@')
	if at < 1 || !strings.Contains(to[at+1:], ".") {
		return fmt.Errorf("mail: %w: the domain has no dot", ErrRecipient)
	}
	return nil
}

// Mask hides an address but for its first character and its domain, for
// logs and for telling a citizen where a message went: "a***@example.es".
func Mask(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 1 {
		return "***"
	}
	r, _ := utf8.DecodeRuneInString(addr)
	return string(r) + "***" + addr[at:]
}
