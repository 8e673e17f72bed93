package csc_test

import (
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/firma-cloud/firma/csc"
	"github.com/firma-cloud/firma/e2e/stack"
)

// TestExtendTransaction: credentials/extendTransaction gives a new SAD for
// the hashes the old one has not signed (all, or the subset asked), ends
// the old one in the same step, never adds a hash, and stops at the
// transaction's lifetime. Each answer in the v2.2 form.
func TestExtendTransaction(t *testing.T) {
	f := newFixture(t)
	raw, b64 := hashes("uno.pdf", "dos.pdf", "tres.pdf")
	sad1 := f.authorize(t, f.key, b64)
	f.verify(t, raw[:1], signatures(t, f.signHash(t, f.key, sad1, b64[:1])))

	extend := func(key string, body map[string]any) answer {
		t.Helper()
		if _, ok := body["credentialID"]; !ok {
			body["credentialID"] = f.cred
		}
		return f.call(t, key, "credentials/extendTransaction", body)
	}
	a := extend(f.key, map[string]any{"SAD": sad1, "hashAlgorithmOID": oidSHA256})
	if a.status != http.StatusOK {
		t.Fatalf("extend: %d %s", a.status, a.raw)
	}
	conforms(t, "credentials_extendTransaction", a.raw)
	sad2 := a.body["SAD"].(string)
	if sad2 == sad1 || a.body["expiresIn"].(float64) > 300 {
		t.Fatalf("extend answer %s", a.raw)
	}
	// The old SAD is over, for what it had left.
	want(t, f.signHash(t, f.key, sad1, b64[1:2]), http.StatusBadRequest, csc.CodeInvalidRequest, "Hash is not authorized by the SAD")
	want(t, extend(f.key, map[string]any{"SAD": sad1}), http.StatusBadRequest, csc.CodeInvalidRequest, "nothing is left")
	// The new one signs what was left, and not what was signed already.
	want(t, f.signHash(t, f.key, sad2, b64[:1]), http.StatusBadRequest, csc.CodeInvalidRequest, "Hash is not authorized by the SAD")
	f.verify(t, raw[1:2], signatures(t, f.signHash(t, f.key, sad2, b64[1:2])))

	// Later, past the first SAD's life but within the transaction's: a
	// subset of what is left.
	f.clock.Add(4 * time.Minute)
	a = extend(f.key, map[string]any{"SAD": sad2, "hashes": b64[2:]})
	if a.status != http.StatusOK {
		t.Fatalf("extend with hashes: %d %s", a.status, a.raw)
	}
	sad3 := a.body["SAD"].(string)
	f.clock.Add(3 * time.Minute) // sad2's five minutes are over, sad3's not
	f.verify(t, raw[2:], signatures(t, f.signHash(t, f.key, sad3, b64[2:])))

	// Refusals, each in the CSC error form.
	_, more := hashes("cuatro.pdf", "cinco.pdf")
	f.clock.Add(time.Hour)
	live := f.authorize(t, f.key, more)
	_, other := hashes("no autorizado.pdf")
	otherCred := f.Certificate(f.Advanced(55667788, "Luis", "Gil Sanz")).ID
	for _, c := range []struct {
		name string
		key  string
		body map[string]any
		desc string
	}{
		{"no credentialID", f.key, map[string]any{"credentialID": "", "SAD": live}, "missing string parameter credentialID"},
		{"no SAD", f.key, map[string]any{}, "missing string parameter SAD"},
		{"unknown SAD", f.key, map[string]any{"SAD": "bm90IGEgU0FE"}, "invalid parameter SAD"},
		{"SAD of another portal", f.keyB, map[string]any{"SAD": live}, "invalid parameter SAD"},
		{"another credential", f.key, map[string]any{"credentialID": otherCred, "SAD": live}, "invalid parameter SAD"},
		{"a hash the SAD does not list", f.key, map[string]any{"SAD": live, "hashes": other}, "new hashes need a new authorisation"},
		{"another hash algorithm", f.key, map[string]any{"SAD": live, "hashAlgorithmOID": "2.16.840.1.101.3.4.2.3"}, "hashAlgorithmOID"},
		{"an expired SAD", f.key, map[string]any{"SAD": sad3}, "SAD expired"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := extend(c.key, c.body)
			want(t, a, http.StatusBadRequest, csc.CodeInvalidRequest, c.desc)
			conforms(t, "error", a.raw)
		})
	}
	// Refused extensions left the SAD whole (the winner below signs both
	// hashes). Two extensions at once: one wins, the other is refused.
	var (
		wg      sync.WaitGroup
		answers [2]answer
	)
	for i := range answers {
		wg.Go(func() { answers[i] = extend(f.key, map[string]any{"SAD": live}) })
	}
	wg.Wait()
	var won string
	for _, a := range answers {
		if a.status == http.StatusOK {
			if won != "" {
				t.Fatal("two extensions of one SAD both won")
			}
			won = a.body["SAD"].(string)
		} else if a.code() != csc.CodeInvalidRequest {
			t.Fatalf("losing extension: %s", a.raw)
		}
	}
	if won == "" {
		t.Fatalf("no extension won: %s / %s", answers[0].raw, answers[1].raw)
	}
	signatures(t, f.signHash(t, f.key, won, more))

	// The chain ends 30 minutes after the citizen's approval.
	_, last := hashes("seis.pdf", "siete.pdf")
	f.clock.Add(time.Hour)
	sad := f.authorize(t, f.key, last)
	signatures(t, f.signHash(t, f.key, sad, last[:1]))
	var in float64
	for range 6 {
		f.clock.Add(4*time.Minute + 50*time.Second)
		a := extend(f.key, map[string]any{"SAD": sad})
		if a.status != http.StatusOK {
			t.Fatalf("extension within the transaction: %s", a.raw)
		}
		sad, in = a.body["SAD"].(string), a.body["expiresIn"].(float64)
	}
	// 29 minutes after the approval: the last SAD lives one more, not five.
	if in < 55 || in > 60 {
		t.Fatalf("the last extension lives %v s, want the transaction's last minute", in)
	}
	f.clock.Add(time.Minute)
	want(t, extend(f.key, map[string]any{"SAD": sad}), http.StatusBadRequest, csc.CodeInvalidRequest, "SAD expired")
}

// TestGetChallengeAndAuthorizeCheck: credentials/getChallenge sends the
// SMS code of the one authentication object "otp" (204, out of band) and
// that code authorises; credentials/authorizeCheck has no handle to check,
// credentials/authorize being synchronous, and says so.
func TestGetChallengeAndAuthorizeCheck(t *testing.T) {
	f := newFixture(t)
	a := f.call(t, f.key, "credentials/getChallenge", map[string]any{"credentialID": f.cred, "authObjectID": "otp"})
	if a.status != http.StatusNoContent || a.raw != "" || f.SMSCount(f.citizen) != 1 {
		t.Fatalf("getChallenge: %d %q, %d SMS", a.status, a.raw, f.SMSCount(f.citizen))
	}
	code := f.mustLastOTP(t)
	// Again at once: the resend rules of credentials/sendOTP hold.
	want(t, f.call(t, f.key, "credentials/getChallenge", map[string]any{"credentialID": f.cred, "authObjectID": "OTP"}),
		http.StatusTooManyRequests, csc.CodeInvalidRequest, "")
	_, b64 := hashes("reto.pdf")
	a = f.call(t, f.key, "credentials/authorize", map[string]any{"credentialID": f.cred, "numSignatures": 1, "hashes": b64,
		"hashAlgorithmOID": oidSHA256, "authData": []map[string]string{{"id": "otp", "value": code}}})
	if a.status != http.StatusOK {
		t.Fatalf("authorize with the challenge's code: %s", a.raw)
	}
	for _, c := range []struct {
		name, method string
		body         map[string]any
		status       int
		desc         string
	}{
		{"getChallenge without authObjectID", "credentials/getChallenge", map[string]any{"credentialID": f.cred}, 400, "missing string parameter authObjectID"},
		{"getChallenge of an object the credential has not", "credentials/getChallenge", map[string]any{"credentialID": f.cred, "authObjectID": "PIN"}, 400, "invalid parameter authObjectID"},
		{"getChallenge without credentialID", "credentials/getChallenge", map[string]any{"authObjectID": "otp"}, 400, "missing string parameter credentialID"},
		{"getChallenge of an unknown credential", "credentials/getChallenge", map[string]any{"credentialID": "nope", "authObjectID": "otp"}, 400, "invalid parameter credentialID"},
		{"authorizeCheck without handle", "credentials/authorizeCheck", map[string]any{}, 400, "missing string parameter handle"},
		{"authorizeCheck of a handle", "credentials/authorizeCheck", map[string]any{"handle": "878287f37b2bv293"}, 400, "issues no handles"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := f.call(t, f.key, c.method, c.body)
			want(t, a, c.status, csc.CodeInvalidRequest, c.desc)
			conforms(t, "error", a.raw)
		})
	}
	info := f.CSC.Info()
	for _, m := range []string{"credentials/getChallenge", "credentials/authorizeCheck", "credentials/extendTransaction"} {
		if !slices.Contains(info.Methods, m) {
			t.Errorf("info.methods lacks %s: %v", m, info.Methods)
		}
	}
	// auth/revoke needs the OAuth server's tokens: not offered here.
	if slices.Contains(info.Methods, "auth/revoke") {
		t.Errorf("info.methods lists auth/revoke without the OAuth server")
	}
	want(t, f.call(t, f.key, "auth/revoke", map[string]any{"token": "x"}), http.StatusBadRequest, csc.CodeInvalidRequest, "not offered")
}

// TestExplicitMethodsOff: getChallenge and authorizeCheck belong to the
// explicit path and go with it; extendTransaction stays (OAuth tokens
// are SADs too).
func TestExplicitMethodsOff(t *testing.T) {
	s := stack.New(t, stack.Options{OAuth: true, CSC: func(o *csc.Options) { o.ExplicitOff = true }})
	f := &fixture{Stack: s, clock: &clock{}, citizen: s.Advanced(11223344, "Carmen", "Ruiz Vidal")}
	f.cred = s.Certificate(f.citizen).ID
	_, f.key = s.Portal("Portal A", "https://a.example.es/ok")
	info := s.CSC.Info()
	for m, listed := range map[string]bool{"credentials/getChallenge": false, "credentials/authorizeCheck": false,
		"credentials/extendTransaction": true, "auth/revoke": true} {
		if slices.Contains(info.Methods, m) != listed {
			t.Errorf("info.methods %v: %s listed should be %v", info.Methods, m, listed)
		}
	}
	want(t, f.call(t, f.key, "credentials/getChallenge", map[string]any{"credentialID": f.cred, "authObjectID": "otp"}),
		http.StatusBadRequest, csc.CodeInvalidRequest, "turned off")
	want(t, f.call(t, f.key, "credentials/authorizeCheck", map[string]any{"handle": "h"}), http.StatusBadRequest, csc.CodeInvalidRequest, "turned off")
	if n := s.SMSCount(f.citizen); n != 0 {
		t.Fatalf("%d SMS sent", n)
	}
}
