package csc_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/e2e/stack"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/transaction"
)

// TestOTPLockSharedByPortals: wrong codes count on the holder's channel,
// not per portal. Portals A and B share one budget of three; once it is
// spent, neither gets an SMS sent nor a code checked until the lockout
// ends, and a right code afterwards starts the count again.
func TestOTPLockSharedByPortals(t *testing.T) {
	f := newFixture(t)
	_, b64 := hashes("shared")
	codes := map[string]string{}
	keys := map[string]string{"A": f.key, "B": f.keyB}
	send := func(portal string) answer {
		a := f.call(t, keys[portal], "credentials/sendOTP", map[string]any{"credentialID": f.cred})
		if a.status == http.StatusNoContent {
			codes[portal] = f.mustLastOTP(t)
		}
		return a
	}
	auth := func(portal string, right bool) answer {
		code := codes[portal]
		if !right {
			code = "000000"
			if codes[portal] == code {
				code = "999999"
			}
		}
		return f.call(t, keys[portal], "credentials/authorize", map[string]any{"credentialID": f.cred, "numSignatures": 1, "hashes": b64,
			"hashAlgorithmOID": oidSHA256, "authData": []map[string]string{{"id": "otp", "value": code}}})
	}
	steps := []struct {
		name   string
		wait   time.Duration // clock moved before the step
		do     func() answer
		status int
		code   string // CSC error, "" for success
		desc   string
		sms    int // SMS the step sends
	}{
		{"A asks for a code", 0, func() answer { return send("A") }, http.StatusNoContent, "", "", 1},
		{"B asks for a code", 0, func() answer { return send("B") }, http.StatusNoContent, "", "", 1},
		{"A types a wrong one", 0, func() answer { return auth("A", false) }, http.StatusBadRequest, "invalid_otp", "2 tries left", 0},
		{"B's wrong one counts on the same budget", 0, func() answer { return auth("B", false) }, http.StatusBadRequest, "invalid_otp", "1 try left", 0},
		{"A's second locks the holder", 0, func() answer { return auth("A", false) }, http.StatusForbidden, "access_denied", "locked for every portal", 0},
		{"B gets no SMS", 0, func() answer { return send("B") }, http.StatusForbidden, "access_denied", "UTC", 0},
		{"B's right code is not checked", 0, func() answer { return auth("B", true) }, http.StatusForbidden, "access_denied", "locked", 0},
		{"A gets no SMS", 0, func() answer { return send("A") }, http.StatusForbidden, "access_denied", "locked", 0},
		{"still locked a second before the end", 15*time.Minute - time.Second, func() answer { return send("B") }, http.StatusForbidden, "access_denied", "locked", 0},
		{"after the lockout B gets a code", time.Second, func() answer { return send("B") }, http.StatusNoContent, "", "", 1},
		{"and it works", 0, func() answer { return auth("B", true) }, http.StatusOK, "", "", 0},
		{"A asks again", 0, func() answer { return send("A") }, http.StatusNoContent, "", "", 1},
		{"the right code reset the count", 0, func() answer { return auth("A", false) }, http.StatusBadRequest, "invalid_otp", "2 tries left", 0},
	}
	for _, s := range steps {
		f.clock.Add(s.wait)
		before := f.SMSCount(f.citizen)
		a := s.do()
		if s.code == "" {
			if a.status != s.status {
				t.Fatalf("%s: %d %s", s.name, a.status, a.raw)
			}
		} else {
			want(t, a, s.status, s.code, s.desc)
		}
		if got := f.SMSCount(f.citizen) - before; got != s.sms {
			t.Fatalf("%s: %d SMS sent, want %d", s.name, got, s.sms)
		}
	}
	// The audit log has the failures and the one lock, by portal.
	page, err := f.Audit.Query(context.Background(), audit.Filter{Citizen: f.citizen, Events: []audit.Event{audit.OTPFailed, audit.OTPLocked}})
	if err != nil {
		t.Fatal(err)
	}
	var failed, locked int
	for _, r := range page.Records {
		switch r.Event {
		case audit.OTPFailed:
			failed++
		case audit.OTPLocked:
			locked++
		}
	}
	if failed != 3 || locked != 1 {
		t.Fatalf("audit: %d otp.failed, %d otp.locked; want 3 and 1", failed, locked)
	}
}

// TestOTPLockAcrossWays: the approval page and the CSC API count on the
// same channel, so wrong codes typed in one lock the other.
func TestOTPLockAcrossWays(t *testing.T) {
	const okURL = "https://w.example.es/ok"
	approveWrong := func(t *testing.T, f *fixture, id, session, code string) error {
		wrong := "000000"
		if code == wrong {
			wrong = "999999"
		}
		_, err := f.Tx.Approve(context.Background(), id, session, wrong)
		return err
	}
	start := func(t *testing.T, f *fixture, p *store.Portal) (id, session string, err error) {
		t.Helper()
		ctx := context.Background()
		c, err := f.Tx.Create(ctx, p, transaction.CreateRequest{CitizenID: f.citizen, OKURL: okURL, ErrorURL: okURL,
			Documents: []transaction.DocumentInput{{Name: "a.txt", Content: []byte("a"), Format: "raw"}}})
		if err != nil {
			t.Fatal(err)
		}
		s, err := f.Tx.Authenticate(ctx, c.ID, f.citizen, stack.Password)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.Tx.SendOTP(ctx, c.ID, s.Token)
		return c.ID, s.Token, err
	}

	t.Run("web locks csc", func(t *testing.T) {
		f := newFixture(t)
		p, _ := f.Portal("Portal W", okURL)
		id, sess, err := start(t, f, p)
		if err != nil {
			t.Fatal(err)
		}
		code := f.mustLastOTP(t)
		for i, want := range []transaction.Code{transaction.CodeOTPInvalid, transaction.CodeOTPInvalid, transaction.CodeOTPLocked} {
			if got := transaction.CodeOf(approveWrong(t, f, id, sess, code)); got != want {
				t.Fatalf("wrong code %d: %s, want %s", i+1, got, want)
			}
		}
		sent := f.SMSCount(f.citizen)
		want(t, f.call(t, f.key, "credentials/sendOTP", map[string]any{"credentialID": f.cred}), http.StatusForbidden, "access_denied", "locked")
		if n := f.SMSCount(f.citizen); n != sent {
			t.Fatalf("sendOTP on a locked channel sent %d SMS", n-sent)
		}
		// And another transaction of the citizen's waits too.
		if _, _, err := start(t, f, p); transaction.CodeOf(err) != transaction.CodeOTPChannelLocked {
			t.Fatalf("another transaction's code: %v, want %s", err, transaction.CodeOTPChannelLocked)
		}
	})

	t.Run("csc locks web", func(t *testing.T) {
		f := newFixture(t)
		p, _ := f.Portal("Portal W", okURL)
		// A transaction waiting with its code in hand when the lock falls.
		id, sess, err := start(t, f, p)
		if err != nil {
			t.Fatal(err)
		}
		code := f.mustLastOTP(t)
		_, b64 := hashes("x")
		wrong := "000000"
		if f.otp(t, f.key) == wrong {
			wrong = "999999"
		}
		for range 3 {
			f.call(t, f.key, "credentials/authorize", map[string]any{"credentialID": f.cred, "numSignatures": 1, "hashes": b64,
				"hashAlgorithmOID": oidSHA256, "OTP": wrong})
		}
		if err := f.CSC.Attempts().Check(context.Background(), policy.OTPScope(f.citizen), time.Now()); err == nil {
			t.Fatal("three wrong CSC codes did not lock the channel")
		}
		// Its right code is not checked; the transaction waits, not failed.
		_, err = f.Tx.Approve(context.Background(), id, sess, code)
		if transaction.CodeOf(err) != transaction.CodeOTPChannelLocked {
			t.Fatalf("approve on a locked channel: %v", err)
		}
		if v, err := f.Tx.View(context.Background(), id); err != nil || v.State != transaction.StateOTPSent {
			t.Fatalf("the waiting transaction: %+v %v", v, err)
		}
		sent := f.SMSCount(f.citizen)
		if _, _, err := start(t, f, p); transaction.CodeOf(err) != transaction.CodeOTPChannelLocked {
			t.Fatalf("a new transaction's code: %v, want %s", err, transaction.CodeOTPChannelLocked)
		}
		if n := f.SMSCount(f.citizen); n != sent {
			t.Fatalf("SendOTP on a locked channel sent %d SMS", n-sent)
		}
	})
}
