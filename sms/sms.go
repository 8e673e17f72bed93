package sms

import (
	"context"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// Gateway delivers a text message to an E.164 mobile number.
type Gateway interface {
	Send(ctx context.Context, to, text string) error
}

// Sentinel errors callers tell apart with errors.Is.
var (
	ErrRecipient = errors.New("invalid recipient number")
	ErrText      = errors.New("invalid message text")
)

// MaxText is the longest text accepted: three concatenated GSM segments.
const MaxText = 459

// Check validates a message before any backend sends it, so every gateway
// refuses the same bad input with the same error.
func Check(to, text string) error {
	n, err := phonenumbers.Parse(to, "")
	if err != nil || !phonenumbers.IsValidNumber(n) || phonenumbers.Format(n, phonenumbers.E164) != to {
		return fmt.Errorf("sms to %q: %w: want an E.164 number such as +34612345678", to, ErrRecipient)
	}
	if text == "" || !utf8.ValidString(text) || utf8.RuneCountInString(text) > MaxText {
		return fmt.Errorf("sms: %w: want 1 to %d characters of UTF-8", ErrText, MaxText)
	}
	return nil
}
