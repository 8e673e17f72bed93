package registry_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/audit"
)

func TestAuditRecords(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	steps := []func() error{
		func() error { _, err := e.reg.RegisterVideoCall(ctx, videoAgent, person("12345678Z")); return err },
		func() error { _, err := e.reg.RegisterVideoCall(ctx, registrar, person("12345678Z")); return err },  // denied: role
		func() error { _, err := e.reg.RegisterVideoCall(ctx, videoAgent, person("12345678A")); return err }, // typo: not audited
		func() error {
			c, err := e.reg.RegisterInPerson(ctx, registrar, person("12345678Z"))
			if err == nil {
				err = e.reg.SetPassword(ctx, "12345678Z", c.ActivationCode, "Correct7Horse")
			}
			return err
		},
		func() error { _, err := e.reg.RegisterVideoCall(ctx, videoAgent, person("12345678Z")); return err }, // denied: no downgrade
		func() error {
			for i := 0; i < 5; i++ {
				e.clock.Add(time.Minute) // past each delay
				e.reg.Authenticate(ctx, "12345678Z", "Wrong1pass")
			}
			c, err := e.reg.ReissueActivation(ctx, registrar, "12345678Z")
			if err == nil {
				err = e.reg.SetPassword(ctx, "12345678Z", c.ActivationCode, "Fresh9Start")
			}
			return err
		},
	}
	for _, s := range steps {
		s()
	}
	if err := e.audit.Close(); err != nil { // flushes the queue
		t.Fatal(err)
	}
	page, err := audit.Query(ctx, e.db, audit.Filter{Citizen: "12345678Z"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range page.Records {
		got = append(got, strings.Join([]string{string(r.Event), string(r.Outcome), r.Actor.Role, r.Reason, r.Details["method"]}, "/"))
		for k, v := range r.Details {
			if strings.Contains(v, "612345678") || strings.Contains(v, "@") {
				t.Errorf("personal data in detail %s=%q", k, v)
			}
		}
	}
	want := []string{
		"citizen.registered/success/video_agent//video_call",
		"citizen.registered/denied/registrar/staff_role/video_call",
		"citizen.upgraded/success/registrar//in_person",
		"citizen.registered/denied/video_agent/no_silent_downgrade/video_call",
		"citizen.locked/success/citizen/repeated wrong passwords (lifts by itself)/",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
