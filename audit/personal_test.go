package audit_test

import (
	"errors"
	"testing"

	"github.com/firma-cloud/firma/audit"
)

// The personal-data check refuses phone numbers (E.164 with "+", Spanish
// numbers) and emails, and lets through the identifiers records carry:
// serial numbers, OIDs, times, counters, key ids.
func TestPersonalDataHeuristic(t *testing.T) {
	tests := []struct {
		name, value string
		personal    bool
	}{
		{"e164 spaced", "+34 612 345 678", true},
		{"e164 compact", "+34612345678", true},
		{"e164 brackets", "+34 (612) 34 56 78", true},
		{"e164 other country", "+44 20 7946 0958", true},
		{"e164 dotted", "+33.6.12.34.56.78", true},
		{"e164 short", "+3461234567", true},
		{"spanish mobile", "612345678", true},
		{"spanish mobile 7", "712 34 56 78", true},
		{"spanish mobile hyphens", "612-345-678", true},
		{"spanish landline", "91 234 56 78", true},
		{"spanish 0034", "0034 612 345 678", true},
		{"spanish 0034 hyphen", "0034-612-345-678", true},
		{"email", "ana.garcia@example.es", true},

		{"tsa serial decimal", "1234567890123456789", false},
		{"tsa serial ten digits", "1700000000", false},
		{"serial starting 6, 12 digits", "612345678901", false},
		{"eight digits", "61234567", false},
		{"nine digits starting 1", "123456789", false},
		{"nine digits starting 5", "512345678", false},
		{"oid", "1.3.6.1.4.1.99999.2.1", false},
		{"oid etsi", "0.4.0.2042.1.1", false},
		{"dotted nine digits", "612.345.678", false},
		{"unix millis", "1764064800000", false},
		{"key id hex", "9f86d081884c7d659a2feaa0c55ad015", false},
		{"timestamp", "2026-11-25T09:41:36Z", false},
		{"plus without digits enough", "+1234567", false},
		{"plus zero country", "+0612345678", false},
		{"count", "3", false},
		{"dni", "12345678Z", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sample(0)
			r.Details["value"] = tt.value
			err := r.Validate()
			if got := errors.Is(err, audit.ErrPersonalData); got != tt.personal {
				t.Errorf("Validate with %q: %v; personal = %t, want %t", tt.value, err, got, tt.personal)
			}
			if !tt.personal && err != nil {
				t.Errorf("Validate with %q: %v", tt.value, err)
			}
			// In free text the same values are redacted, or kept.
			text := "see " + tt.value + " here"
			if redacted := audit.Redact(text) != text; redacted != tt.personal {
				t.Errorf("Redact(%q) = %q; want redacted %t", text, audit.Redact(text), tt.personal)
			}
		})
	}
}
