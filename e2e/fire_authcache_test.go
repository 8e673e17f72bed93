package e2e_test

import (
	"testing"
	"time"

	"github.com/firma-cloud/firma/e2e/stack"
	"github.com/firma-cloud/firma/fire"
	"github.com/firma-cloud/firma/store"
)

// TestFIReAuthCacheFollowsChanges: the service keeps a verified
// application for fire.DefaultAuthCacheTTL, so a rotated certificate and
// a disabled portal must refuse within it, and a newly registered
// certificate must work at once (refusals are not kept). Cost: about
// two TTLs (4 s) of waiting, no browser.
func TestFIReAuthCacheFollowsChanges(t *testing.T) {
	s := stack.New(t, stack.Options{})
	e := newFire(t, s)
	citizen := s.Advanced(78901240, "Inés", "Caché Rota")
	// op 2 on no transaction: 503 once authenticated, 502 when not.
	probe := "op=2&appid=" + e.appID + "&subjectid=" + citizen + "&transactionid=none"
	authenticated := func() bool {
		t.Helper()
		a := e.post(e.client, probe)
		switch a.status {
		case 403:
			wantError(t, a, 403, 503)
			return true
		case 401:
			wantError(t, a, 401, 502)
			return false
		}
		t.Fatalf("probe: %v", a)
		return false
	}
	refusedWithin := func(what string) {
		t.Helper()
		deadline := time.Now().Add(2*fire.DefaultAuthCacheTTL + time.Second)
		for authenticated() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: still authenticated %s later", what, 2*fire.DefaultAuthCacheTTL+time.Second)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if authenticated() {
			t.Fatalf("%s: authenticated again after a refusal", what)
		}
	}
	app, p, err := s.DB.FireAppPortal(s.Ctx, e.appID)
	if err != nil {
		t.Fatal(err)
	}
	registered := app.CertDigests
	if !authenticated() {
		t.Fatal("the registered certificate is refused")
	}

	// Rotation to another certificate: the old one stops working.
	other, _ := fire.Digest("sha256", []byte("another certificate"))
	app.CertDigests, app.UpdatedAt = []string{other}, time.Now()
	if err := s.DB.PutFireApp(s.Ctx, app); err != nil {
		t.Fatal(err)
	}
	refusedWithin("certificate rotated away")
	// Registered again: works on the next request.
	app.CertDigests = registered
	if err := s.DB.PutFireApp(s.Ctx, app); err != nil {
		t.Fatal(err)
	}
	if !authenticated() {
		t.Fatal("a certificate registered again is refused")
	}

	// The portal disabled: its application stops working.
	p.Status = store.PortalDisabled
	if err := s.DB.UpdatePortal(s.Ctx, p); err != nil {
		t.Fatal(err)
	}
	refusedWithin("portal disabled")
}
