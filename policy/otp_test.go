package policy_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/policy"
)

func TestNewOTP(t *testing.T) {
	seen := map[string]bool{}
	counts := [10]int{}
	for range 2000 {
		c, err := policy.NewOTP()
		if err != nil {
			t.Fatal(err)
		}
		if !policy.WellFormedOTP(c) {
			t.Fatalf("code %q is not 6 digits", c)
		}
		seen[c] = true
		for _, d := range c {
			counts[d-'0']++
		}
	}
	// 2000 draws from a million: a repeat is rare, many would be a broken source.
	if len(seen) < 1990 {
		t.Errorf("only %d distinct codes in 2000", len(seen))
	}
	// 12000 digits, 1200 expected each; a fair source stays well within 900..1500.
	for d, n := range counts {
		if n < 900 || n > 1500 {
			t.Errorf("digit %d drawn %d times of 12000", d, n)
		}
	}
}

func TestWellFormedOTP(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{{"123456", true}, {"123 456", true}, {"123-456", true}, {"12345", false}, {"1234567", false}, {"12345a", false}, {"", false}, {"１２３４５６", false}} {
		if got := policy.WellFormedOTP(tc.in); got != tc.ok {
			t.Errorf("WellFormedOTP(%q) = %t", tc.in, got)
		}
	}
}

func TestOTPHasherBindsTransactionAndDocuments(t *testing.T) {
	if _, err := policy.NewOTPHasher(make([]byte, 31)); !errors.Is(err, policy.ErrOTPKey) {
		t.Fatalf("31-byte key: %v", err)
	}
	h, err := policy.NewOTPHasher(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := policy.NewOTPHasher(bytes.Repeat([]byte{8}, 32))
	approval := policy.ApprovalDigest([]policy.ApprovalItem{{Hash: "sha256", Digest: bytes.Repeat([]byte{1}, 32)}})
	approval2 := policy.ApprovalDigest([]policy.ApprovalItem{{Hash: "sha256", Digest: bytes.Repeat([]byte{2}, 32)}})
	stored := h.Hash("tx-a", approval, "123456")
	for _, tc := range []struct {
		name     string
		h        *policy.OTPHasher
		tx       string
		approval []byte
		code     string
		ok       bool
	}{
		{"right", h, "tx-a", approval, "123456", true},
		{"typed with a space", h, "tx-a", approval, "123 456", true},
		{"wrong code", h, "tx-a", approval, "123457", false},
		{"other transaction", h, "tx-b", approval, "123456", false},
		{"other documents", h, "tx-a", approval2, "123456", false},
		{"other server key", other, "tx-a", approval, "123456", false},
	} {
		if got := tc.h.Check(stored, tc.tx, tc.approval, tc.code); got != tc.ok {
			t.Errorf("%s: Check = %t", tc.name, got)
		}
	}
	if bytes.Contains(stored, []byte("123456")) {
		t.Error("the stored hash holds the code")
	}
}

func TestApprovalDigest(t *testing.T) {
	a := policy.ApprovalItem{Hash: "sha256", Digest: bytes.Repeat([]byte{1}, 32)}
	b := policy.ApprovalItem{Hash: "sha256", Digest: bytes.Repeat([]byte{2}, 32)}
	ab := policy.ApprovalDigest([]policy.ApprovalItem{a, b})
	for name, other := range map[string][]byte{
		"reordered":      policy.ApprovalDigest([]policy.ApprovalItem{b, a}),
		"one less":       policy.ApprovalDigest([]policy.ApprovalItem{a}),
		"other hash":     policy.ApprovalDigest([]policy.ApprovalItem{{Hash: "sha384", Digest: a.Digest}, b}),
		"boundary moved": policy.ApprovalDigest([]policy.ApprovalItem{{Hash: "sha256", Digest: append(a.Digest, 2)}, {Hash: "sha256", Digest: b.Digest[1:]}}),
	} {
		if bytes.Equal(ab, other) {
			t.Errorf("%s: same approval digest", name)
		}
	}
	code := policy.ShortCode(ab)
	if len(code) != 9 || code[4] != '-' || strings.ContainsAny(code, "ILOU") {
		t.Errorf("short code %q", code)
	}
	if policy.ShortCode(ab) != code {
		t.Error("short code not deterministic")
	}
}

func TestMaySend(t *testing.T) {
	r := policy.OTPRules{}
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		sent int
		last time.Time
		now  time.Time
		rule string
	}{
		{"first", 0, time.Time{}, t0, ""},
		{"resend too soon", 1, t0, t0.Add(29 * time.Second), policy.RuleOTPResendTooSoon},
		{"resend after 30 s", 1, t0, t0.Add(30 * time.Second), ""},
		{"third resend", 3, t0, t0.Add(time.Minute), ""},
		{"fourth resend", 4, t0, t0.Add(time.Minute), policy.RuleOTPResendLimit},
	} {
		err := r.MaySend(tc.sent, tc.last, tc.now)
		var ref *policy.Refusal
		switch {
		case tc.rule == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.rule != "" && (!errors.As(err, &ref) || ref.Rule != tc.rule):
			t.Errorf("%s: %v, want rule %s", tc.name, err, tc.rule)
		}
	}
	if err := r.MaySend(1, t0, t0.Add(20*time.Second)); err == nil || !strings.Contains(err.Error(), "10 seconds") {
		t.Errorf("too soon: %v does not say how long to wait", err)
	}
	if got := r.ResendsLeft(2); got != 2 {
		t.Errorf("ResendsLeft(2) = %d", got)
	}
}

func TestOTPMessage(t *testing.T) {
	m := policy.OTPMessage("Agencia Tributaria", 3, "ABCD-EFGH", "123456", 5*time.Minute)
	for _, want := range []string{"Agencia Tributaria", "3 documentos", "ABCD-EFGH", "123456", "5 min"} {
		if !strings.Contains(m, want) {
			t.Errorf("message %q lacks %q", m, want)
		}
	}
	if n := len([]rune(m)); n > 459 {
		t.Errorf("message is %d characters", n)
	}
	if m1 := policy.OTPMessage("P", 1, "X", "1", time.Minute); !strings.Contains(m1, "1 documento ") {
		t.Errorf("singular: %q", m1)
	}
}
