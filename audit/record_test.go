package audit_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/audit"
)

func TestRecordValidate(t *testing.T) {
	good := func() *audit.Record { return sample(0) }
	tests := []struct {
		name   string
		change func(r *audit.Record)
		want   error
	}{
		{"valid", func(*audit.Record) {}, nil},
		{"unknown event", func(r *audit.Record) { r.Event = "key.stolen" }, audit.ErrInvalid},
		{"bad outcome", func(r *audit.Record) { r.Outcome = "maybe" }, audit.ErrInvalid},
		{"no actor role", func(r *audit.Record) { r.Actor.Role = "" }, audit.ErrInvalid},
		{"no actor id", func(r *audit.Record) { r.Actor.ID = "" }, audit.ErrInvalid},
		{"key event without key", func(r *audit.Record) { r.KeyID = "" }, audit.ErrInvalid},
		{"otp event without citizen", func(r *audit.Record) { r.Event, r.Citizen = audit.OTPSent, "" }, audit.ErrInvalid},
		{"digest wrong length", func(r *audit.Record) { r.Documents[0].Digest = "abcd" }, audit.ErrInvalid},
		{"digest upper case", func(r *audit.Record) { r.Documents[0].Digest = strings.ToUpper(r.Documents[0].Digest) }, audit.ErrInvalid},
		{"unknown hash", func(r *audit.Record) { r.Documents[0].Hash = "md5" }, audit.ErrInvalid},
		{"control character", func(r *audit.Record) { r.Portal = "portal\n1" }, audit.ErrInvalid},
		{"invalid utf-8", func(r *audit.Record) { r.Portal = "portal\xff" }, audit.ErrInvalid},
		{"too long", func(r *audit.Record) { r.RequestID = strings.Repeat("x", 300) }, audit.ErrInvalid},
		{"otp in details", func(r *audit.Record) { r.Details["otp"] = "123456" }, audit.ErrSecret},
		{"pin in details", func(r *audit.Record) { r.Details["pin"] = "1234" }, audit.ErrSecret},
		{"password in details", func(r *audit.Record) { r.Details["new_password"] = "x" }, audit.ErrSecret},
		{"api key in details", func(r *audit.Record) { r.Details["portal_api_key"] = "x" }, audit.ErrSecret},
		{"activation code", func(r *audit.Record) { r.Details["activation_code"] = "x" }, audit.ErrSecret},
		{"bad detail key", func(r *audit.Record) { r.Details["Bad Key"] = "x" }, audit.ErrInvalid},
		{"email in clear", func(r *audit.Record) { r.Details["contact"] = "ana@example.es" }, audit.ErrPersonalData},
		{"phone in clear", func(r *audit.Record) { r.Details["contact"] = "+34 612 345 678" }, audit.ErrPersonalData},
		{"phone as citizen", func(r *audit.Record) { r.Citizen = "612345678" }, audit.ErrPersonalData},
		{"phone pseudonym", func(r *audit.Record) {
			r.Details["phone"] = audit.Pseudonym(make([]byte, 32), audit.Phone, "+34 612 345 678")
		}, nil},
		{"counts are fine", func(r *audit.Record) { r.Details["attempts_left"] = "3" }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good()
			tt.change(r)
			err := r.Validate()
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Validate() = %v, want %v", err, tt.want)
			}
			// A rejected value must not be echoed: it may be the secret.
			if err != nil {
				for _, v := range []string{"123456", "ana@example.es", "612 345 678", "612345678"} {
					if strings.Contains(err.Error(), v) {
						t.Errorf("error %q repeats the value", err)
					}
				}
			}
		})
	}
}

// Append refuses an invalid record and commits nothing.
func TestAppendRejectsInvalid(t *testing.T) {
	e := newEnv(t, audit.Options{})
	r := sample(0)
	r.Details["otp"] = "123456"
	if err := e.log.Append(context.Background(), r); !errors.Is(err, audit.ErrSecret) {
		t.Fatalf("append with an OTP: %v, want ErrSecret", err)
	}
	if e.log.Size() != 0 {
		t.Fatalf("size %d after a rejected record", e.log.Size())
	}
}

func TestLeafCanonical(t *testing.T) {
	r := sample(0)
	r.Seq = 42
	r.Time = time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))
	leaf, err := r.Leaf()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(leaf, []byte(`{"seq":42,"time":"2026-11-25T09:00:00.123456789Z",`)) {
		t.Errorf("leaf starts %q", leaf[:60])
	}
	back, err := audit.ParseRecord(leaf)
	if err != nil {
		t.Fatal(err)
	}
	again, err := back.Leaf()
	if err != nil || !bytes.Equal(again, leaf) {
		t.Errorf("leaf does not round-trip:\n%s\n%s", leaf, again)
	}
	if _, err := audit.ParseRecord([]byte(`{"seq":1,"surprise":true}`)); err == nil {
		t.Error("a record with an unknown field parsed")
	}
}

func TestPseudonym(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	tests := []struct {
		name string
		a, b string
		kind audit.Kind
		same bool
	}{
		{"phone formats", "+34 612 345 678", "0034-612-345-678", audit.Phone, true},
		{"phone spacing", "+34612345678", " +34 (612) 34 56 78 ", audit.Phone, true},
		{"different phones", "+34612345678", "+34612345679", audit.Phone, false},
		{"email case", "Ana.Garcia@Example.ES", "ana.garcia@example.es", audit.Email, true},
		{"different emails", "ana@example.es", "eva@example.es", audit.Email, false},
		{"dni format", "12345678-z", "12345678Z", audit.NationalID, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pa, pb := audit.Pseudonym(k1, tt.kind, tt.a), audit.Pseudonym(k1, tt.kind, tt.b)
			if (pa == pb) != tt.same {
				t.Errorf("Pseudonym(%q) = %s, Pseudonym(%q) = %s; same = %v", tt.a, pa, tt.b, pb, tt.same)
			}
			if !strings.HasPrefix(pa, string(tt.kind)+":") || len(pa) != len(tt.kind)+1+22 {
				t.Errorf("pseudonym %q: want %s: and 22 base64url characters", pa, tt.kind)
			}
			if pa == audit.Pseudonym(k2, tt.kind, tt.a) {
				t.Error("two keys gave the same pseudonym")
			}
			if strings.Contains(pa, strings.TrimSpace(tt.a)) {
				t.Error("pseudonym contains the value")
			}
		})
	}
	if audit.Pseudonym(k1, audit.Phone, "x@y.es") == audit.Pseudonym(k1, audit.Email, "x@y.es") {
		t.Error("kind is not mixed into the pseudonym")
	}
}

func TestQueryAndKeyUsage(t *testing.T) {
	e := newEnv(t, audit.Options{})
	fill(t, e.log, 0, 30)
	ctx := context.Background()
	base := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		f    audit.Filter
		want func(i int, r *audit.Record) bool
	}{
		{"citizen", audit.Filter{Citizen: "cit-1"}, func(_ int, r *audit.Record) bool { return r.Citizen == "cit-1" }},
		{"portal", audit.Filter{Portal: "portal-2"}, func(_ int, r *audit.Record) bool { return r.Portal == "portal-2" }},
		{"key", audit.Filter{KeyID: "key-3"}, func(_ int, r *audit.Record) bool { return r.KeyID == "key-3" }},
		{"events", audit.Filter{Events: []audit.Event{audit.OTPSent, audit.OTPFailed}}, func(_ int, r *audit.Record) bool {
			return r.Event == audit.OTPSent || r.Event == audit.OTPFailed
		}},
		{"time range", audit.Filter{From: base.Add(10 * time.Second), To: base.Add(20 * time.Second)}, func(i int, _ *audit.Record) bool { return i >= 10 && i < 20 }},
		{"combined", audit.Filter{Citizen: "cit-0", Events: []audit.Event{audit.KeyUsed}, From: base.Add(5 * time.Second)}, func(i int, r *audit.Record) bool {
			return r.Citizen == "cit-0" && r.Event == audit.KeyUsed && i >= 5
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []int64
			for i := 0; i < 30; i++ {
				r := sample(i)
				if tt.want(i, r) {
					want = append(want, int64(i))
				}
			}
			var got []int64
			f := tt.f
			f.Limit = 2 // several pages
			for {
				p, err := e.log.Query(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				if len(p.Records) > 2 {
					t.Fatalf("page of %d, limit 2", len(p.Records))
				}
				for _, r := range p.Records {
					got = append(got, r.Seq)
				}
				if p.Next == 0 {
					break
				}
				f.Cursor = p.Next
			}
			if len(want) == 0 || !slices.Equal(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
	for _, bad := range []audit.Filter{{Limit: audit.MaxPage + 1}, {Cursor: -1}, {Events: []audit.Event{"nope"}}, {From: base, To: base}} {
		if _, err := e.log.Query(ctx, bad); !errors.Is(err, audit.ErrInvalid) {
			t.Errorf("Query(%+v) = %v, want ErrInvalid", bad, err)
		}
	}

	// Key usage: sample(i) is a successful key.used with 2 documents when
	// i%5 is 0 or 1; citizen and key are i%4, portal i%3.
	type k struct{ c, p, key string }
	want := map[k]*audit.Usage{}
	for i := 0; i < 30; i++ {
		r := sample(i)
		if r.Event != audit.KeyUsed {
			continue
		}
		kk := k{r.Citizen, r.Portal, r.KeyID}
		u := want[kk]
		if u == nil {
			u = &audit.Usage{First: base.Add(time.Duration(i) * time.Second)}
			want[kk] = u
		}
		u.Signatures++
		u.Documents += 2
		u.Last = base.Add(time.Duration(i) * time.Second)
	}
	all, err := e.log.KeyUsage(ctx, "", "", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(want) {
		t.Fatalf("%d usage lines, want %d", len(all), len(want))
	}
	for _, u := range all {
		w := want[k{u.Citizen, u.Portal, u.KeyID}]
		if w == nil || u.Signatures != w.Signatures || u.Documents != w.Documents || !u.First.Equal(w.First) || !u.Last.Equal(w.Last) || u.Failures != 0 {
			t.Errorf("usage %+v, want %+v", u, w)
		}
	}
	one, err := e.log.KeyUsage(ctx, "", "portal-1", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range one {
		if u.Portal != "portal-1" {
			t.Errorf("portal report has %+v", u)
		}
	}
	if len(one) == 0 {
		t.Error("no usage for portal-1")
	}
}

// Free text that quotes personal data (an error naming the number, a file
// named after a person's email) is kept with the data redacted.
func TestAppendRedactsFreeText(t *testing.T) {
	e := newEnv(t, audit.Options{})
	r := sample(0)
	r.Outcome = audit.Failure
	r.Reason = `sms to "+34 612 345 678": invalid recipient; copy to ana.garcia@example.es failed (call 612345678)`
	r.Documents[1].Name = "contrato de ana.garcia@example.es.pdf"
	if err := e.log.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	p, err := e.log.Query(context.Background(), audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	got := p.Records[0]
	if want := `sms to "[redacted]": invalid recipient; copy to [redacted] failed (call [redacted])`; got.Reason != want {
		t.Errorf("reason %q, want %q", got.Reason, want)
	}
	if got.Documents[1].Name != "contrato de [redacted]" {
		t.Errorf("document name %q", got.Documents[1].Name)
	}
	for _, keep := range []string{"firmado el 25/11/2026", "lote 2026-000123", "serial 0x1a2b3c4d5e"} {
		if audit.Redact(keep) != keep {
			t.Errorf("Redact(%q) = %q", keep, audit.Redact(keep))
		}
	}
}
