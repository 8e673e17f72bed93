package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/firma-cloud/firma/e2e/stack"
	"github.com/firma-cloud/firma/limit"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/web"
)

func wantRetryAfter(t *testing.T, what string, r resp) {
	t.Helper()
	if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("%s: %d without Retry-After (%q)", what, r.status, r.header.Get("Retry-After"))
	}
}

// TestSignInRateLimited checks a client over the sign-in rate gets the
// page with a 429, Retry-After and the message, on the approval page and
// on /me, which share the limit, before the password is checked.
func TestSignInRateLimited(t *testing.T) {
	f := newFixture(t, func(o *web.Options) {
		o.SessionKey = meKey
		o.LoginRate = limit.NewClients(1.0/60, 1, 10, time.Minute)
	})
	id := f.create(t)
	page := f.get(t, "/sign/"+id, "Accept-Language", "en")
	form := url.Values{"csrf": {csrfOf(t, page.body)}, "citizen": {f.citizen}, "password": {"Wrong-Password-1"}}
	if r := f.post(t, "/sign/"+id+"/login", form, f.Server.URL); r.status != http.StatusUnauthorized {
		t.Fatalf("first sign-in: %d", r.status)
	}
	form.Set("password", stack.Password)
	r := f.post(t, "/sign/"+id+"/login", form, f.Server.URL)
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("second sign-in: %d", r.status)
	}
	wantRetryAfter(t, "approval page", r)
	wantIn(t, r.body, "Demasiados intentos desde esta conexión")
	if got := state(t, f, id); got != "created" {
		t.Errorf("the refused sign-in moved the transaction to %s", got)
	}
	m := f.meLogin(t, f.citizen, stack.Password)
	if m.status != http.StatusTooManyRequests {
		t.Fatalf("/me sign-in: %d", m.status)
	}
	wantRetryAfter(t, "/me", m)
}

// TestSMSRateLimited checks a client over the SMS rate cannot have more
// codes sent: the resend is refused with the page, 429 and Retry-After,
// and no SMS goes out.
func TestSMSRateLimited(t *testing.T) {
	sms := limit.NewClients(1.0/60, 1, 10, time.Minute)
	f := newFixture(t, func(o *web.Options) { o.SMSRate = sms })
	id := f.create(t)
	otpPage := f.login(t, id) // the code sent at sign-in is the sign-in's
	sms.Allow("127.0.0.1")    // this client's one send is spent
	before := f.SMSCount(f.citizen)
	r := f.post(t, "/sign/"+id+"/resend", url.Values{"csrf": {csrfOf(t, otpPage.body)}}, f.Server.URL)
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("resend: %d\n%s", r.status, r.body)
	}
	wantRetryAfter(t, "resend", r)
	if after := f.SMSCount(f.citizen); after != before {
		t.Fatalf("%d SMS sent by a refused resend", after-before)
	}
}

// busyCitizens is a registry whose argon2id gate has no room.
type busyCitizens struct{ gate *limit.Gate }

func (b busyCitizens) Authenticate(ctx context.Context, id, password string) (*store.Citizen, error) {
	release, err := b.gate.Acquire(ctx, 1)
	if err != nil {
		return nil, err
	}
	release()
	return nil, nil
}

// TestMeBusy checks a sign-in the server has no room to check is a 503
// with Retry-After and the unavailable message, not a wrong password.
func TestMeBusy(t *testing.T) {
	gate := limit.NewGate(1, 10*time.Millisecond)
	release, _ := gate.Acquire(context.Background(), 1)
	defer release()
	f := newFixture(t, func(o *web.Options) { o.SessionKey = meKey; o.Citizens = busyCitizens{gate} })
	r := f.meLogin(t, f.citizen, stack.Password)
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("/me sign-in: %d", r.status)
	}
	wantRetryAfter(t, "/me busy", r)
}
