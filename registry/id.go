package registry

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// ErrInvalid is wrapped by every *FieldError, for errors.Is.
var ErrInvalid = errors.New("invalid input")

// FieldError is bad input in one named field. Field is the API name of the
// field (e.g. "id", "mobile"); Reason says what is wrong with it.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *FieldError) Unwrap() error { return ErrInvalid }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// dniLetters is the official DNI/NIE check-letter table, indexed by the
// number mod 23.
const dniLetters = "TRWAGMYFPDXBNJZSQVHLCKE"

// NormalizeID validates a DNI or NIE and returns it upper case without
// separators ("12345678-z" -> "12345678Z"). field names the input in errors.
func NormalizeID(field, s string) (string, error) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '.' {
			return -1
		}
		return unicode.ToUpper(r)
	}, strings.TrimSpace(s))
	if s == "" {
		return "", fieldErr(field, "is required (a DNI or NIE)")
	}
	if len(s) != 9 || !utf8.ValidString(s) {
		return "", fieldErr(field, "must be a DNI (8 digits and a letter) or an NIE (X, Y or Z, 7 digits and a letter)")
	}
	digits := s[:8]
	kind := "DNI"
	switch s[0] {
	case 'X', 'Y', 'Z':
		kind = "NIE"
		digits = string('0'+s[0]-'X') + s[1:8]
	}
	n := 0
	for i := 0; i < 8; i++ {
		c := digits[i]
		if c < '0' || c > '9' {
			if kind == "NIE" {
				return "", fieldErr(field, "an NIE is X, Y or Z followed by 7 digits and a letter")
			}
			return "", fieldErr(field, "must be a DNI (8 digits and a letter) or an NIE (X, Y or Z, 7 digits and a letter)")
		}
		n = n*10 + int(c-'0')
	}
	letter := s[8]
	if letter < 'A' || letter > 'Z' {
		return "", fieldErr(field, "the %s must end in a check letter", kind)
	}
	if dniLetters[n%23] != letter {
		return "", fieldErr(field, "the check letter %c does not match the %s number", letter, kind)
	}
	return s, nil
}

// IDFromSerialNumber extracts the DNI/NIE from a certificate subject
// serialNumber: ETSI EN 319 412-1 semantics ("IDCES-12345678Z"), the DNIe
// form ("12345678Z") and the older "IDCES12345678Z" are accepted.
func IDFromSerialNumber(serial string) (string, error) {
	s := strings.ToUpper(strings.TrimSpace(serial))
	switch {
	case strings.HasPrefix(s, "IDCES-"):
		s = s[len("IDCES-"):]
	case strings.HasPrefix(s, "IDCES"):
		s = s[len("IDCES"):]
	case strings.HasPrefix(s, "PAS") || strings.HasPrefix(s, "IDC") || strings.HasPrefix(s, "PNO") || strings.HasPrefix(s, "TIN"):
		if len(s) > 5 && s[5] == '-' {
			return "", fieldErr("certificate", "subject serialNumber %q is not a Spanish DNI/NIE (type %s, country %s)", serial, s[:3], s[3:5])
		}
	}
	return NormalizeID("certificate", s)
}

// NormalizeMobile validates a mobile number and returns it in E.164.
// Numbers without a country code are Spanish; Spanish numbers must be
// mobiles (6xx or 7xx), foreign ones must be mobiles of their country.
func NormalizeMobile(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fieldErr(field, "is required (a mobile phone number)")
	}
	n, err := phonenumbers.Parse(s, "ES")
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return "", fieldErr(field, "%q is not a valid phone number (Spanish mobiles: 9 digits starting with 6 or 7, or +CC for other countries)", s)
	}
	switch phonenumbers.GetNumberType(n) {
	case phonenumbers.MOBILE, phonenumbers.FIXED_LINE_OR_MOBILE:
	default:
		return "", fieldErr(field, "%q is not a mobile number: codes are sent by SMS", s)
	}
	e164 := phonenumbers.Format(n, phonenumbers.E164)
	if strings.HasPrefix(e164, "+34") && !(e164[3] == '6' || e164[3] == '7') {
		return "", fieldErr(field, "%q is not a Spanish mobile number (they start with 6 or 7)", s)
	}
	return e164, nil
}

// NormalizeEmail validates a bare e-mail address and lower-cases its domain.
func NormalizeEmail(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fieldErr(field, "is required (an e-mail address)")
	}
	if len(s) > 254 {
		return "", fieldErr(field, "is longer than 254 characters")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "", fieldErr(field, "%q is not a plain e-mail address such as name@example.es", s)
	}
	at := strings.LastIndexByte(s, '@')
	if at < 1 || !strings.Contains(s[at+1:], ".") {
		return "", fieldErr(field, "%q has no domain with a dot", s)
	}
	return s[:at] + "@" + strings.ToLower(s[at+1:]), nil
}

// NormalizeName validates a person's name part: 1 to 100 characters, with
// a letter, no control characters; inner spaces are collapsed.
func NormalizeName(field, s string) (string, error) {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "", fieldErr(field, "is required")
	}
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > 100 {
		return "", fieldErr(field, "must be at most 100 characters of valid text")
	}
	letter := false
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", fieldErr(field, "contains a control character")
		}
		if unicode.IsLetter(r) {
			letter = true
		}
		if unicode.IsDigit(r) || strings.ContainsRune("<>{}[]@#$%^*=+|\\/;:\"_~`", r) {
			return "", fieldErr(field, "contains %q, which is not used in names", r)
		}
	}
	if !letter {
		return "", fieldErr(field, "must contain a letter")
	}
	return s, nil
}
