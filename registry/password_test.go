package registry_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/registry"
)

func TestPermanentPassword(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	conf, err := e.reg.RegisterInPerson(ctx, registrar, person("12345678Z"))
	if err != nil {
		t.Fatal(err)
	}
	const pw = "Correct7Horse"

	// Bad inputs first: nothing is spent by them.
	for _, tt := range []struct {
		name, id, code, password string
		want                     error
		field                    string
	}{
		{"weak password", "12345678Z", conf.ActivationCode, "alllowercase9", registry.ErrInvalid, "password"},
		{"short password", "12345678Z", conf.ActivationCode, "Ab1", registry.ErrInvalid, "password"},
		{"bad DNI", "12345678A", conf.ActivationCode, pw, registry.ErrInvalid, "id"},
		{"no code", "12345678Z", "", pw, registry.ErrInvalid, "activation_code"},
		{"wrong code", "12345678Z", "AAAA-BBBB-CCCC-DDDD", pw, registry.ErrCodeInvalid, ""},
		{"unknown citizen", "X1234567L", conf.ActivationCode, pw, registry.ErrCodeInvalid, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := e.reg.SetPassword(ctx, tt.id, tt.code, tt.password)
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			var fe *registry.FieldError
			if tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field) {
				t.Fatalf("got %v, want field %s", err, tt.field)
			}
			if strings.Contains(err.Error(), tt.password) && tt.password != "" {
				t.Fatalf("error %q echoes the password", err)
			}
		})
	}

	// Typed in lower case without dashes still works, once.
	if err := e.reg.SetPassword(ctx, "12345678z", strings.ToLower(strings.ReplaceAll(conf.ActivationCode, "-", "")), pw); err != nil {
		t.Fatal(err)
	}
	if err := e.reg.SetPassword(ctx, "12345678Z", conf.ActivationCode, "Another8Pass"); !errors.Is(err, registry.ErrCodeUsed) {
		t.Fatalf("reused activation code: %v", err)
	}
	cred, err := e.db.Credential(ctx, "12345678Z")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cred.Hash, "$argon2id$v=19$m=8192,t=1,p=1$") || strings.Contains(cred.Hash, pw) {
		t.Fatalf("stored hash %q", cred.Hash)
	}
	if c, err := e.reg.Authenticate(ctx, "12345678Z", pw); err != nil || c.ID != "12345678Z" {
		t.Fatalf("authenticate: %v", err)
	}
	if _, err := e.reg.Authenticate(ctx, "X1234567L", pw); !errors.Is(err, registry.ErrBadCredentials) {
		t.Fatalf("unknown DNI: %v", err)
	}

	// Lockout after 5 failures; a success before that resets the count.
	for i := 0; i < 4; i++ {
		if _, err := e.reg.Authenticate(ctx, "12345678Z", "Wrong1pass"); !errors.Is(err, registry.ErrBadCredentials) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	if _, err := e.reg.Authenticate(ctx, "12345678Z", pw); err != nil {
		t.Fatalf("success after 4 failures: %v", err)
	}
	for i := 0; i < 4; i++ {
		if _, err := e.reg.Authenticate(ctx, "12345678Z", "Wrong1pass"); !errors.Is(err, registry.ErrBadCredentials) {
			t.Fatalf("failure %d after reset: %v", i+1, err)
		}
	}
	_, err = e.reg.Authenticate(ctx, "12345678Z", "Wrong1pass")
	if !errors.Is(err, registry.ErrLocked) || !strings.Contains(err.Error(), "new activation code") {
		t.Fatalf("fifth failure: %v", err)
	}
	if _, err := e.reg.Authenticate(ctx, "12345678Z", pw); !errors.Is(err, registry.ErrLocked) {
		t.Fatalf("right password while locked: %v", err)
	}
	if c := e.citizen(t, "12345678Z"); c.Status != "locked" {
		t.Fatalf("citizen status %s, want locked", c.Status)
	}

	// A registrar reissues a code; the old one is void; setting a new
	// password unlocks.
	re, err := e.reg.ReissueActivation(ctx, registrar, "12345678Z")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.reg.SetPassword(ctx, "12345678Z", re.ActivationCode, "Fresh9Start"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Authenticate(ctx, "12345678Z", "Fresh9Start"); err != nil {
		t.Fatalf("after reset: %v", err)
	}
	if c := e.citizen(t, "12345678Z"); c.Status != "active" {
		t.Fatalf("citizen status %s, want active", c.Status)
	}

	// Activation codes expire.
	re, err = e.reg.ReissueActivation(ctx, registrar, "12345678Z")
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Add(31 * 24 * time.Hour)
	if err := e.reg.SetPassword(ctx, "12345678Z", re.ActivationCode, "Later9Pass"); !errors.Is(err, registry.ErrCodeExpired) {
		t.Fatalf("expired activation code: %v", err)
	}
}

func TestLockoutConfigurable(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(o *registry.Options) { o.MaxFailures = 2 })
	conf, err := e.reg.RegisterInPerson(ctx, registrar, person("12345678Z"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.reg.SetPassword(ctx, "12345678Z", conf.ActivationCode, "Correct7Horse"); err != nil {
		t.Fatal(err)
	}
	e.reg.Authenticate(ctx, "12345678Z", "Wrong1pass")
	if _, err := e.reg.Authenticate(ctx, "12345678Z", "Wrong1pass"); !errors.Is(err, registry.ErrLocked) {
		t.Fatalf("second failure with MaxFailures=2: %v", err)
	}
}
