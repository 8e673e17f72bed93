package registry_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/firma-cloud/firma/registry"
)

func TestMetrics(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	e := newEnv(t, func(o *registry.Options) { o.Registerer = reg })
	e.reg.RegisterInPerson(ctx, registrar, person("12345678Z"))   // ok
	e.reg.RegisterInPerson(ctx, registrar, person("12345678A"))   // invalid
	e.reg.RegisterInPerson(ctx, videoAgent, person("12345678Z"))  // refused: role
	e.clock.Set(time.Date(2026, 11, 28, 12, 0, 0, 0, madrid))     // Saturday
	e.reg.RegisterVideoCall(ctx, videoAgent, person("X1234567L")) // refused: hours
	e.reg.Authenticate(ctx, "12345678Z", "Whatever1")             // bad: no password set
	want := `
# HELP firma_registry_registrations_total Registration attempts by method and result (ok, invalid, refused, rejected, error).
# TYPE firma_registry_registrations_total counter
firma_registry_registrations_total{method="in_person",result="invalid"} 1
firma_registry_registrations_total{method="in_person",result="ok"} 1
firma_registry_registrations_total{method="in_person",result="refused"} 1
firma_registry_registrations_total{method="video_call",result="refused"} 1
# HELP firma_registry_logins_total Cl@ve Permanente password checks by result (ok, bad, throttled, locked, error).
# TYPE firma_registry_logins_total counter
firma_registry_logins_total{result="bad"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "firma_registry_registrations_total", "firma_registry_logins_total"); err != nil {
		t.Fatal(err)
	}
	// A second registry on the same registerer is refused, not a panic.
	if _, err := registry.New(e.db, registry.Options{SMS: e.outbox, Registerer: reg}); err == nil {
		t.Fatal("duplicate metrics registration accepted")
	}
}
