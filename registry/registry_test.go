package registry_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/registry"
)

func TestRegisterInPerson(t *testing.T) {
	tests := []struct {
		name    string
		staff   registry.Staff
		person  registry.Person
		field   string // FieldError expected on this field
		refused bool   // policy refusal expected
	}{
		{name: "registrar registers", staff: registrar, person: person("12345678Z")},
		{name: "NIE", staff: registrar, person: person("X1234567L")},
		{name: "invalid DNI letter", staff: registrar, person: person("12345678A"), field: "id"},
		{name: "landline", staff: registrar, person: func() registry.Person { p := person("12345678Z"); p.Mobile = "915551234"; return p }(), field: "mobile"},
		{name: "bad email", staff: registrar, person: func() registry.Person { p := person("12345678Z"); p.Email = "nope"; return p }(), field: "email"},
		{name: "missing surnames", staff: registrar, person: func() registry.Person { p := person("12345678Z"); p.Surnames = " "; return p }(), field: "surnames"},
		{name: "video agent may not", staff: videoAgent, person: person("12345678Z"), refused: true},
		{name: "unknown role", staff: registry.Staff{Name: "x", Role: "operator"}, person: person("12345678Z"), refused: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			conf, err := e.reg.RegisterInPerson(context.Background(), tt.staff, tt.person)
			var fe *registry.FieldError
			switch {
			case tt.field != "":
				if !errors.As(err, &fe) || fe.Field != tt.field {
					t.Fatalf("got %v, want field error on %s", err, tt.field)
				}
			case tt.refused:
				if !errors.Is(err, policy.ErrRefused) {
					t.Fatalf("got %v, want policy refusal", err)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				c := e.citizen(t, conf.Citizen.ID)
				if c.Level != "advanced" || c.Method != "in_person" || c.Status != "active" || c.Mobile != "+34612345678" {
					t.Fatalf("stored citizen %+v", c)
				}
				if len(strings.ReplaceAll(conf.ActivationCode, "-", "")) != 16 {
					t.Fatalf("activation code %q", conf.ActivationCode)
				}
				if err := e.reg.MaySign(context.Background(), c.ID); err != nil {
					t.Fatalf("advanced citizen may not sign: %v", err)
				}
				return
			}
			if conf != nil {
				t.Fatalf("refused registration returned %+v", conf)
			}
			if cs, _ := e.reg.Citizens(context.Background(), registryQuery()); len(cs) != 0 {
				t.Fatalf("refused registration stored %d citizens", len(cs))
			}
		})
	}
}

func TestRegisterVideoCall(t *testing.T) {
	at := func(day, hh, mm int) time.Time { return time.Date(2026, 11, day, hh, mm, 0, 0, madrid) }
	tests := []struct {
		name  string
		now   time.Time
		staff registry.Staff
		next  time.Time // zero: accepted
		role  bool      // refused for the role
	}{
		{name: "wednesday 10:00", now: at(25, 10, 0), staff: videoAgent},
		{name: "wednesday 16:30", now: at(25, 16, 30), staff: videoAgent},
		{name: "wednesday 20:00", now: at(25, 20, 0), staff: videoAgent, next: at(26, 9, 0)},
		{name: "friday evening", now: at(27, 18, 30), staff: videoAgent, next: at(30, 9, 0)},
		{name: "lunch break", now: at(25, 14, 30), staff: videoAgent, next: at(25, 15, 0)},
		{name: "registrar may not", now: at(25, 10, 0), staff: registrar, role: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.clock.Set(tt.now)
			conf, err := e.reg.RegisterVideoCall(context.Background(), tt.staff, person("12345678Z"))
			switch {
			case tt.role:
				if !errors.Is(err, policy.ErrRefused) {
					t.Fatalf("got %v, want role refusal", err)
				}
			case !tt.next.IsZero():
				var ce *registry.ClosedError
				if !errors.As(err, &ce) || !ce.Next.Equal(tt.next) {
					t.Fatalf("got %v, want closed with next opening %v", err, tt.next)
				}
				if want := tt.next.Format("Monday 2006-01-02 15:04"); !strings.Contains(err.Error(), want) {
					t.Fatalf("refusal %q does not name the next opening %q", err, want)
				}
				if _, err := e.db.Citizen(context.Background(), "12345678Z"); err == nil {
					t.Fatal("refused video call stored the citizen")
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if c := e.citizen(t, "12345678Z"); c.Level != "basic" || c.Method != "video_call" || conf.ActivationCode == "" {
					t.Fatalf("stored %+v", c)
				}
			}
		})
	}
}

func TestBasicCitizenMayNotSign(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	if _, err := e.reg.RegisterVideoCall(ctx, videoAgent, person("12345678Z")); err != nil {
		t.Fatal(err)
	}
	err := e.reg.MaySign(ctx, "12345678Z")
	var r *policy.Refusal
	if !errors.As(err, &r) || r.Rule != policy.RuleAdvancedRequired {
		t.Fatalf("basic citizen: got %v, want advanced-level refusal", err)
	}
	for _, want := range []string{"advanced registration level", "in person", "electronic certificate or DNIe"} {
		if !strings.Contains(r.Reason, want) {
			t.Errorf("reason %q does not say %q", r.Reason, want)
		}
	}
}

func TestLevelChanges(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	// basic by video call, then upgraded in person.
	if _, err := e.reg.RegisterVideoCall(ctx, videoAgent, person("12345678Z")); err != nil {
		t.Fatal(err)
	}
	conf, err := e.reg.RegisterInPerson(ctx, registrar, person("12345678Z"))
	if err != nil || !conf.Upgraded || conf.Citizen.Level != "advanced" {
		t.Fatalf("upgrade: %+v, %v", conf, err)
	}
	// a basic method never lowers an advanced citizen silently.
	_, err = e.reg.RegisterVideoCall(ctx, videoAgent, person("12345678Z"))
	var r *policy.Refusal
	if !errors.As(err, &r) || r.Rule != policy.RuleDowngrade {
		t.Fatalf("video call on advanced citizen: got %v, want no-downgrade refusal", err)
	}
	if c := e.citizen(t, "12345678Z"); c.Level != "advanced" {
		t.Fatalf("level changed to %s", c.Level)
	}
	// explicit downgrade needs a registrar and a reason, and revokes.
	if _, err := e.reg.Downgrade(ctx, videoAgent, "12345678Z", "dispute"); !errors.Is(err, policy.ErrRefused) {
		t.Fatalf("video agent downgrade: %v", err)
	}
	if _, err := e.reg.Downgrade(ctx, registrar, "12345678Z", ""); err == nil {
		t.Fatal("downgrade without reason accepted")
	}
	if _, err := e.reg.Downgrade(ctx, registrar, "12345678Z", "identity document reported stolen"); err != nil {
		t.Fatal(err)
	}
	if c := e.citizen(t, "12345678Z"); c.Level != "basic" {
		t.Fatalf("level after downgrade %s", c.Level)
	}
	if _, err := e.reg.Remove(ctx, registrar, "12345678Z", "deceased"); err != nil {
		t.Fatal(err)
	}
	if c := e.citizen(t, "12345678Z"); c.Status != "removed" {
		t.Fatalf("status after remove %s", c.Status)
	}
	want := []string{"12345678Z:privilegeWithdrawn", "12345678Z:cessationOfOperation"}
	if strings.Join(e.rev.calls, ",") != strings.Join(want, ",") {
		t.Fatalf("revocations %v, want %v", e.rev.calls, want)
	}
	if err := e.reg.MaySign(ctx, "12345678Z"); !errors.Is(err, policy.ErrRefused) {
		t.Fatalf("removed citizen may sign: %v", err)
	}
	// registering again reactivates.
	if _, err := e.reg.RegisterInPerson(ctx, registrar, person("12345678Z")); err != nil {
		t.Fatal(err)
	}
	if c := e.citizen(t, "12345678Z"); c.Status != "active" || c.Level != "advanced" {
		t.Fatalf("after re-registration %+v", c)
	}
}
