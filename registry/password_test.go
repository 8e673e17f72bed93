package registry_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/policy"
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

	// A success resets the count: four wrong ones (waiting out each
	// delay), the right one, and the next wrong one is answered at once.
	for i := 0; i < 4; i++ {
		e.clock.Add(time.Minute)
		if _, err := e.reg.Authenticate(ctx, "12345678Z", "Wrong1pass"); !errors.Is(err, registry.ErrBadCredentials) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	e.clock.Add(time.Minute)
	if _, err := e.reg.Authenticate(ctx, "12345678Z", pw); err != nil {
		t.Fatalf("success after 4 failures: %v", err)
	}
	if _, err := e.reg.Authenticate(ctx, "12345678Z", "Wrong1pass"); !errors.Is(err, registry.ErrBadCredentials) {
		t.Fatalf("failure after reset: %v", err)
	}

	// A credential locked for good (by the lock of earlier versions)
	// says so only to whoever gives the right password.
	e.clock.Add(time.Minute)
	if _, err := e.db.CredentialFailed(ctx, "12345678Z", 1, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Authenticate(ctx, "12345678Z", "Wrong1pass"); !errors.Is(err, registry.ErrBadCredentials) {
		t.Fatalf("wrong password on a locked credential: %v", err)
	}
	e.clock.Add(time.Minute)
	_, err = e.reg.Authenticate(ctx, "12345678Z", pw)
	if !errors.Is(err, registry.ErrLocked) || !strings.Contains(err.Error(), "new activation code") {
		t.Fatalf("right password on a locked credential: %v", err)
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
	if c, _ := e.db.Credential(ctx, "12345678Z"); c.Locked() {
		t.Fatal("a new password left the credential locked")
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

// TestPasswordThrottling guesses the password of a registered citizen
// and of an unregistered DNI side by side: each wrong one delays the
// next, 1 s doubling; the fifth locks for 15 minutes; while waiting, even
// the right password is answered "try again later"; the two DNIs get the
// same answers throughout; the citizen is told once, by SMS; the lock
// lifts by itself and nothing locks the citizen for good (NIST SP 800-63B
// 5.2.2).
func TestPasswordThrottling(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	conf, err := e.reg.RegisterInPerson(ctx, registrar, person("12345678Z"))
	if err != nil {
		t.Fatal(err)
	}
	const pw = "Correct7Horse"
	if err := e.reg.SetPassword(ctx, "12345678Z", conf.ActivationCode, pw); err != nil {
		t.Fatal(err)
	}
	before := smsCount(t, e, "+34612345678")
	answer := func(err error) string {
		switch {
		case err == nil:
			return "ok"
		case errors.Is(err, registry.ErrThrottled):
			return "throttled " + errs.As(err).RetryAfter.String() + " " + err.Error()
		case errors.Is(err, registry.ErrBadCredentials):
			return "bad " + err.Error()
		}
		return "other " + err.Error()
	}
	for i, step := range []struct {
		wait     time.Duration
		password string
		want     string // answer for both DNIs, prefix
	}{
		{0, "Wrong1pass", "bad"},
		{0, "Wrong1pass", "throttled 1s"},
		{time.Second, "Wrong1pass", "bad"},
		{time.Second, pw, "throttled 1s"},
		{time.Second, "Wrong1pass", "bad"},
		{4 * time.Second, "Wrong1pass", "bad"},
		{8 * time.Second, "Wrong1pass", "bad"}, // the fifth: locks
		{time.Minute, pw, "throttled 14m"},
		{14 * time.Minute, pw, "ok"},
	} {
		e.clock.Add(step.wait)
		known := answer(func() error { _, err := e.reg.Authenticate(ctx, "12345678Z", step.password); return err }())
		if !strings.HasPrefix(known, step.want) {
			t.Fatalf("step %d: registered DNI answered %q, want %q", i, known, step.want)
		}
		if step.want == "ok" {
			continue
		}
		unknown := answer(func() error { _, err := e.reg.Authenticate(ctx, "X1234567L", step.password); return err }())
		if unknown != known {
			t.Fatalf("step %d: unregistered DNI answered %q, registered %q", i, unknown, known)
		}
	}
	if c := e.citizen(t, "12345678Z"); c.Status != registry.StatusActive {
		t.Fatalf("citizen status %s after guessing, want active", c.Status)
	}
	e.reg.WaitNotices()
	if n := smsCount(t, e, "+34612345678") - before; n != 1 {
		t.Fatalf("%d lock notices sent, want 1", n)
	}
	msgs, _ := e.outbox.Messages(ctx, "+34612345678", 1)
	if !strings.Contains(msgs[0].Text, "bloqueado") || strings.Contains(msgs[0].Text, pw) {
		t.Errorf("notice %q", msgs[0].Text)
	}
}

// TestPasswordThrottlingPerClient sprays one wrong password on many
// DNIs/NIEs from one client: the client, not the citizens, is stopped;
// another client signs in.
func TestPasswordThrottlingPerClient(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	conf, err := e.reg.RegisterInPerson(ctx, registrar, person("12345678Z"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.reg.SetPassword(ctx, "12345678Z", conf.ActivationCode, "Correct7Horse"); err != nil {
		t.Fatal(err)
	}
	// Three wrong passwords lock a client, so a few DNIs show it.
	e.reg, err = registry.New(e.db, registry.Options{SMS: e.outbox, Clock: e.clock.Now, Argon2: registry.Argon2{Time: 1, Memory: 8 * 1024, Threads: 1},
		ClientAttempts: policy.NewAttempts(e.db, policy.AttemptRules{MaxFailures: 3, Window: time.Hour, Lockout: time.Hour})})
	if err != nil {
		t.Fatal(err)
	}
	spray := registry.WithClient(ctx, "192.0.2.7")
	for _, id := range []string{"00000001R", "00000002W", "00000003A"} {
		if _, err := e.reg.Authenticate(spray, id, "Summer2026"); !errors.Is(err, registry.ErrBadCredentials) {
			t.Fatalf("%s: %v", id, err)
		}
	}
	if _, err := e.reg.Authenticate(spray, "12345678Z", "Correct7Horse"); !errors.Is(err, registry.ErrThrottled) {
		t.Fatalf("locked client: %v", err)
	}
	if _, err := e.reg.Authenticate(registry.WithClient(ctx, "198.51.100.1"), "12345678Z", "Correct7Horse"); err != nil {
		t.Fatalf("another client: %v", err)
	}
}

func smsCount(t *testing.T, e *env, to string) int {
	t.Helper()
	msgs, err := e.outbox.Messages(context.Background(), to, 100)
	if err != nil {
		t.Fatal(err)
	}
	return len(msgs)
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
	for range 2 {
		e.clock.Add(time.Minute)
		e.reg.Authenticate(ctx, "12345678Z", "Wrong1pass")
	}
	e.clock.Add(time.Minute)
	if _, err := e.reg.Authenticate(ctx, "12345678Z", "Correct7Horse"); !errors.Is(err, registry.ErrThrottled) {
		t.Fatalf("right password after 2 failures with MaxFailures=2: %v", err)
	}
	e.clock.Add(15 * time.Minute)
	if _, err := e.reg.Authenticate(ctx, "12345678Z", "Correct7Horse"); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}
}
