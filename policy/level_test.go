package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestMaySign(t *testing.T) {
	tests := []struct {
		level  Level
		status string
		rule   string // "" when allowed
		says   []string
	}{
		{Advanced, "active", "", nil},
		{Basic, "active", RuleAdvancedRequired, []string{"advanced registration level", "in person", "electronic certificate or DNIe"}},
		{Advanced, "removed", RuleInactive, []string{"removed"}},
		{Advanced, "locked", RuleInactive, []string{"locked"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.level)+"/"+tt.status, func(t *testing.T) {
			err := MaySign(tt.level, tt.status)
			if tt.rule == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var r *Refusal
			if !errors.As(err, &r) || r.Rule != tt.rule || !errors.Is(err, ErrRefused) {
				t.Fatalf("got %v, want refusal %s", err, tt.rule)
			}
			for _, s := range tt.says {
				if !strings.Contains(r.Reason, s) {
					t.Errorf("reason %q lacks %q", r.Reason, s)
				}
			}
		})
	}
}

func TestMayRegister(t *testing.T) {
	tests := []struct {
		role Role
		m    Method
		ok   bool
	}{
		{Registrar, InPerson, true},
		{VideoAgent, VideoCall, true},
		{Administrator, InPerson, true},
		{Administrator, VideoCall, true},
		{VideoAgent, InPerson, false},
		{Registrar, VideoCall, false},
		{Registrar, InvitationLetter, false},
		{Administrator, ElectronicCertificate, false},
		{"", InPerson, false},
	}
	for _, tt := range tests {
		if err := MayRegister(tt.role, tt.m); (err == nil) != tt.ok {
			t.Errorf("MayRegister(%q, %s) = %v, want ok=%v", tt.role, tt.m, err, tt.ok)
		}
	}
}

func TestChangeLevel(t *testing.T) {
	tests := []struct {
		current Level
		m       Method
		want    Level
		refused bool
	}{
		{Basic, InPerson, Advanced, false},
		{Basic, ElectronicCertificate, Advanced, false},
		{Basic, VideoCall, Basic, false},
		{Advanced, InPerson, Advanced, false},
		{Advanced, VideoCall, Advanced, true},
		{Advanced, InvitationLetter, Advanced, true},
	}
	for _, tt := range tests {
		got, err := ChangeLevel(tt.current, tt.m)
		if got != tt.want || (err != nil) != tt.refused {
			t.Errorf("ChangeLevel(%s, %s) = %s, %v; want %s refused=%v", tt.current, tt.m, got, err, tt.want, tt.refused)
		}
	}
	for _, m := range Methods {
		if _, err := ParseMethod(string(m)); err != nil {
			t.Error(err)
		}
	}
	if _, err := ParseMethod("fax"); err == nil {
		t.Error("ParseMethod(fax) accepted")
	}
}
