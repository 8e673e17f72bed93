package registry_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/limit"
	"github.com/firma-cloud/firma/registry"
)

// TestPasswordGate checks argon2id checks wait for the gate: with it
// full, sign-ins (known and unknown DNIs alike) and password changes fail
// as busy with a Retry-After, without counting as wrong passwords; with
// room, many at once all finish.
func TestPasswordGate(t *testing.T) {
	ctx := context.Background()
	gate := limit.NewGate(2, time.Second)
	e := newEnv(t, func(o *registry.Options) { o.PasswordGate = gate })
	// Four citizens signing in at once: more checks than the gate holds,
	// each waits its turn. (One citizen's own tries are throttled among
	// themselves by the attempt policy, which counts a try before it is
	// checked.)
	dnis := []string{"12345678Z", "11111111H", "22222222J", "33333333P"}
	for _, dni := range dnis {
		conf, err := e.reg.RegisterInPerson(ctx, registrar, person(dni))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.reg.SetPassword(ctx, dni, conf.ActivationCode, "Correct7Horse"); err != nil {
			t.Fatal(err)
		}
	}

	var wg sync.WaitGroup
	for _, dni := range dnis {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.reg.Authenticate(ctx, dni, "Correct7Horse"); err != nil {
				t.Errorf("with room: %s: %v", dni, err)
			}
		}()
	}
	wg.Wait()

	release, err := gate.Acquire(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, id, password string }{
		{"known", "12345678Z", "Wrong1pass"},
		{"unknown", "87654321X", "Wrong1pass"},
	} {
		_, err := e.reg.Authenticate(ctx, tt.id, tt.password)
		if ee := errs.As(err); ee == nil || ee.Kind != errs.Unavailable || ee.RetryAfter <= 0 || errors.Is(err, registry.ErrBadCredentials) {
			t.Errorf("%s DNI with the gate full: %v", tt.name, err)
		}
	}
	release()
	// The busy refusals did not count towards the lockout.
	if _, err := e.reg.Authenticate(ctx, "12345678Z", "Correct7Horse"); err != nil {
		t.Fatalf("after the gate emptied: %v", err)
	}
}
