package registry_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/registry"
)

func TestNormalizeID(t *testing.T) {
	tests := []struct {
		in, want string
		reason   string // substring of the FieldError reason when invalid
	}{
		{in: "12345678Z", want: "12345678Z"},
		{in: "12345678z", want: "12345678Z"},
		{in: " 12.345.678-Z ", want: "12345678Z"},
		{in: "00000000T", want: "00000000T"},
		{in: "X1234567L", want: "X1234567L"},
		{in: "y1234567x", want: "Y1234567X"},
		{in: "Z1234567R", want: "Z1234567R"},
		{in: "12345678A", reason: "check letter A does not match the DNI"},
		{in: "X1234567T", reason: "check letter T does not match the NIE"},
		{in: "Y12345678", reason: "the NIE must end in a check letter"},
		{in: "XA234567L", reason: "NIE is X, Y or Z followed by 7 digits"},
		{in: "1234567Z", reason: "must be a DNI"},
		{in: "123456789", reason: "must end in a check letter"},
		{in: "A1234567L", reason: "must be a DNI"},
		{in: "", reason: "is required"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := registry.NormalizeID("id", tt.in)
			if tt.reason == "" {
				if err != nil || got != tt.want {
					t.Fatalf("NormalizeID(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
				}
				return
			}
			var fe *registry.FieldError
			if !errors.As(err, &fe) || fe.Field != "id" || !strings.Contains(fe.Reason, tt.reason) {
				t.Fatalf("NormalizeID(%q) = %q, %v; want field error on id containing %q", tt.in, got, err, tt.reason)
			}
			if !errors.Is(err, registry.ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid")
			}
		})
	}
}

func TestIDFromSerialNumber(t *testing.T) {
	tests := []struct{ in, want, reason string }{
		{in: "IDCES-12345678Z", want: "12345678Z"},
		{in: "IDCES12345678Z", want: "12345678Z"},
		{in: "12345678Z", want: "12345678Z"},
		{in: "IDCES-X1234567L", want: "X1234567L"},
		{in: "IDCES-12345678A", reason: "check letter"},
		{in: "PASFR-12AB34567", reason: "not a Spanish DNI/NIE"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := registry.IDFromSerialNumber(tt.in)
			if tt.reason == "" {
				if err != nil || got != tt.want {
					t.Fatalf("got %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("got %q, %v; want error containing %q", got, err, tt.reason)
			}
		})
	}
}

func TestNormalizeContact(t *testing.T) {
	tests := []struct {
		field, in, want, reason string
	}{
		{field: "mobile", in: "612345678", want: "+34612345678"},
		{field: "mobile", in: "+34 712 34 56 78", want: "+34712345678"},
		{field: "mobile", in: "0034612345678", want: "+34612345678"},
		{field: "mobile", in: "+33 6 12 34 56 78", want: "+33612345678"},
		{field: "mobile", in: "912345678", reason: "not a mobile number"},
		{field: "mobile", in: "61234", reason: "not a valid phone number"},
		{field: "mobile", in: "call me", reason: "not a valid phone number"},
		{field: "email", in: "Ana@Example.ES", want: "Ana@example.es"},
		{field: "email", in: "Ana <ana@example.es>", reason: "not a plain e-mail address"},
		{field: "email", in: "ana@localhost", reason: "no domain with a dot"},
		{field: "email", in: "", reason: "is required"},
		{field: "given_name", in: "  María   José ", want: "María José"},
		{field: "given_name", in: "R2D2", reason: "not used in names"},
		{field: "given_name", in: "---", reason: "must contain a letter"},
	}
	for _, tt := range tests {
		t.Run(tt.field+"/"+tt.in, func(t *testing.T) {
			var got string
			var err error
			switch tt.field {
			case "mobile":
				got, err = registry.NormalizeMobile(tt.field, tt.in)
			case "email":
				got, err = registry.NormalizeEmail(tt.field, tt.in)
			default:
				got, err = registry.NormalizeName(tt.field, tt.in)
			}
			if tt.reason == "" {
				if err != nil || got != tt.want {
					t.Fatalf("got %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			var fe *registry.FieldError
			if !errors.As(err, &fe) || fe.Field != tt.field || !strings.Contains(fe.Reason, tt.reason) {
				t.Fatalf("got %q, %v; want field error on %s containing %q", got, err, tt.field, tt.reason)
			}
		})
	}
}
