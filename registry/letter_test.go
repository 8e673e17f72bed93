package registry_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/registry"
)

func TestInvitationLetter(t *testing.T) {
	ctx := context.Background()
	redeem := func(id, csv string) registry.Redemption {
		return registry.Redemption{ID: id, CSV: csv, Mobile: "+34 612345678", Email: "maria@example.es", AcceptConditions: true}
	}
	tests := []struct {
		name string
		// run redeems (after one letter was requested for 12345678Z) and
		// returns the error of the step under test.
		run  func(t *testing.T, e *env, csv string) error
		want error
	}{
		{name: "redeemed", run: func(t *testing.T, e *env, csv string) error {
			conf, err := e.reg.RedeemLetter(ctx, redeem("12345678Z", csv))
			if err == nil && (conf.Citizen.Level != "basic" || conf.Citizen.Method != "invitation_letter" || conf.Citizen.GivenName != "María") {
				t.Fatalf("registered %+v", conf.Citizen)
			}
			return err
		}},
		{name: "reused CSV", want: registry.ErrCodeUsed, run: func(t *testing.T, e *env, csv string) error {
			if _, err := e.reg.RedeemLetter(ctx, redeem("12345678Z", csv)); err != nil {
				t.Fatal(err)
			}
			_, err := e.reg.RedeemLetter(ctx, redeem("12345678Z", csv))
			return err
		}},
		{name: "wrong CSV", want: registry.ErrCodeInvalid, run: func(t *testing.T, e *env, csv string) error {
			_, err := e.reg.RedeemLetter(ctx, redeem("12345678Z", "ABCDEFGH12345678"))
			return err
		}},
		{name: "CSV of another DNI", want: registry.ErrCodeInvalid, run: func(t *testing.T, e *env, csv string) error {
			_, err := e.reg.RedeemLetter(ctx, redeem("X1234567L", csv))
			return err
		}},
		{name: "expired CSV", want: registry.ErrCodeExpired, run: func(t *testing.T, e *env, csv string) error {
			e.clock.Add(91 * 24 * time.Hour)
			_, err := e.reg.RedeemLetter(ctx, redeem("12345678Z", csv))
			return err
		}},
		{name: "wrong guesses do not void the letter", run: func(t *testing.T, e *env, csv string) error {
			// Anyone who knows the DNI can guess; voiding would let them
			// cancel the citizen's letter.
			for i := 0; i < 10; i++ {
				if _, err := e.reg.RedeemLetter(ctx, redeem("12345678Z", fmt.Sprintf("ZZZZZZZZZZZZZZ%02d", i))); !errors.Is(err, registry.ErrCodeInvalid) {
					t.Fatalf("guess %d: %v", i, err)
				}
			}
			_, err := e.reg.RedeemLetter(ctx, redeem("12345678Z", csv))
			return err
		}},
		{name: "conditions not accepted", want: registry.ErrConditions, run: func(t *testing.T, e *env, csv string) error {
			r := redeem("12345678Z", csv)
			r.AcceptConditions = false
			_, err := e.reg.RedeemLetter(ctx, r)
			return err
		}},
		{name: "malformed CSV", want: registry.ErrInvalid, run: func(t *testing.T, e *env, csv string) error {
			_, err := e.reg.RedeemLetter(ctx, redeem("12345678Z", "abc"))
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			if err := e.reg.PutFiscalRecord(ctx, "12345678Z", "María", "López Pérez", "Calle Mayor 1, 28013 Madrid"); err != nil {
				t.Fatal(err)
			}
			req, err := e.reg.RequestLetter(ctx, "12345678z")
			if err != nil {
				t.Fatal(err)
			}
			csv := e.lastLetterCSV(t, "12345678Z")
			if !regexp.MustCompile(`^[0-9A-Z]{16}$`).MatchString(csv) {
				t.Fatalf("CSV %q", csv)
			}
			// Only a hash is stored: the CSV is nowhere in the codes table.
			var n int
			if err := e.db.SQL().QueryRow("SELECT COUNT(*) FROM registration_codes WHERE id = ? AND hash != ? AND INSTR(data, ?) = 0",
				req.ID, []byte(csv), csv).Scan(&n); err != nil || n != 1 {
				t.Fatalf("code row: n=%d err=%v", n, err)
			}
			err = tt.run(t, e, csv)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if _, err := e.db.Citizen(ctx, "12345678Z"); err == nil && tt.name != "reused CSV" {
				t.Fatal("refused redemption registered the citizen")
			}
		})
	}
}

func TestRequestLetterRefusals(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	if _, err := e.reg.RequestLetter(ctx, "12345678Z"); !errors.Is(err, registry.ErrNoFiscalAddress) {
		t.Fatalf("no fiscal record: %v", err)
	}
	if _, err := e.reg.RequestLetter(ctx, "12345678B"); !errors.Is(err, registry.ErrInvalid) {
		t.Fatalf("bad DNI: %v", err)
	}
	if err := e.reg.PutFiscalRecord(ctx, "12345678Z", "María", "López", "Calle Mayor 1, Madrid"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := e.reg.RequestLetter(ctx, "12345678Z"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.reg.RequestLetter(ctx, "12345678Z"); !errors.Is(err, registry.ErrLettersPending) {
		t.Fatalf("fourth letter: %v", err)
	}
	// An advanced citizen cannot be lowered through a letter.
	if _, err := e.reg.RegisterInPerson(ctx, registrar, person("12345678Z")); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(100 * 24 * time.Hour)
	if _, err := e.reg.RequestLetter(ctx, "12345678Z"); !errors.Is(err, policy.ErrRefused) {
		t.Fatalf("letter for advanced citizen: %v", err)
	}
}

func TestPurge(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	if err := e.reg.PutFiscalRecord(ctx, "12345678Z", "María", "López", "Calle Mayor 1, Madrid"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.RequestLetter(ctx, "12345678Z"); err != nil {
		t.Fatal(err)
	}
	csv := e.lastLetterCSV(t, "12345678Z")
	for i := 0; i < 3; i++ {
		if _, err := e.reg.NewChallenge(ctx); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		var n int
		if err := e.db.SQL().QueryRow("SELECT COUNT(*) FROM registration_codes").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	steps := []struct {
		advance time.Duration
		purged  int64
		left    int
	}{
		{0, 0, 4},                   // nothing expired
		{10 * time.Minute, 3, 1},    // challenges go once expired
		{91 * 24 * time.Hour, 1, 1}, // the CSV expired: the letter leaves the outbox, its code is kept to say so
		{31 * 24 * time.Hour, 1, 0}, // and the code goes after the retention
	}
	for i, s := range steps {
		e.clock.Add(s.advance)
		if i == 2 {
			if _, err := e.reg.RedeemLetter(ctx, registry.Redemption{ID: "12345678Z", CSV: csv, Mobile: "612345678",
				Email: "m@example.es", AcceptConditions: true}); !errors.Is(err, registry.ErrCodeExpired) {
				t.Fatalf("expired letter before purge: %v", err)
			}
		}
		if i == 2 {
			if ls, _ := e.reg.Letters(ctx, "12345678Z", 10); len(ls) != 1 {
				t.Fatalf("letters before purge: %d", len(ls))
			}
		}
		n, err := e.reg.Purge(ctx)
		if err != nil || n != s.purged || count() != s.left {
			t.Fatalf("step %d: purged %d (%v), %d left; want %d, %d", i, n, err, count(), s.purged, s.left)
		}
	}
}
