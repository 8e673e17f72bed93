package storetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/firma-cloud/firma/store"
)

// auditLarge appends enough records, in batches of uneven sizes, that a
// store indexing its audit log behind the tail (the SQLite store indexes
// in bulk every few hundred records) answers from index and tail at once;
// every query and usage report must equal the same filter applied to the
// records in Go, on every page.
func auditLarge(t *testing.T, db store.Store, _ Reopen) {
	ctx := context.Background()
	const total = 1500
	events := []string{"key.used", "key.used", "otp.failed", "cert.issued", "key.used"}
	var all []*store.AuditRecord
	for i := int64(0); i < total; i++ {
		outcome := "success"
		if i%7 == 0 {
			outcome = "failure"
		}
		all = append(all, auditRec(i, events[i%5], outcome, fmt.Sprintf("C%d", i%13), fmt.Sprintf("P%d", i%3),
			fmt.Sprintf("k%d", i%13), int(i%4)))
	}
	// 1, 4, 13, 40, 121, then 200 at a time: the last records stay
	// below the SQLite store's indexing lag, in the tail.
	for from, n := 0, 1; from < total; n = min(n*3+1, 200) {
		part := all[from:min(from+n, total)]
		if err := db.AppendAudit(ctx, part, hashesFor(part), false); err != nil {
			t.Fatal(err)
		}
		from += len(part)
	}
	at := func(i int) time.Time { return auditEpoch.Add(time.Duration(i) * time.Second) }
	match := func(f store.AuditFilter, r *store.AuditRecord) bool {
		return (f.Citizen == "" || r.Citizen == f.Citizen) && (f.Portal == "" || r.Portal == f.Portal) &&
			(f.KeyID == "" || r.KeyID == f.KeyID) && (len(f.Events) == 0 || slices.Contains(f.Events, r.Event)) &&
			(f.From.IsZero() || !r.Time.Before(f.From)) && (f.To.IsZero() || r.Time.Before(f.To))
	}
	filters := []store.AuditFilter{
		{},
		{Citizen: "C5"},
		{Portal: "P1", Events: []string{"key.used"}},
		{KeyID: "k12", Events: []string{"otp.failed", "cert.issued"}},
		{From: at(400), To: at(1490)},
		{Citizen: "C3", From: at(1000)},
		{Events: []string{"cert.issued"}, From: at(1200)},
	}
	for _, f := range filters {
		var want []int64
		for _, r := range all {
			if match(f, r) {
				want = append(want, r.Index)
			}
		}
		for _, limit := range []int{7, 100, 1000} {
			var got []int64
			f := f
			f.Limit = limit
			for pages := 0; ; pages++ {
				recs, err := db.QueryAudit(ctx, f)
				if err != nil {
					t.Fatalf("%+v: %v", f, err)
				}
				if len(recs) > limit || pages > total {
					t.Fatalf("%+v: a page of %d records", f, len(recs))
				}
				for _, r := range recs {
					if string(r.Data) != string(all[r.Index].Data) || r.Citizen != all[r.Index].Citizen {
						t.Fatalf("record %d read back as %+v", r.Index, r)
					}
					got = append(got, r.Index)
				}
				if len(recs) < limit {
					break
				}
				f.Start = recs[len(recs)-1].Index + 1
			}
			if !slices.Equal(got, want) {
				t.Errorf("filter %+v, pages of %d: %d records, want %d (%v...)", f, limit, len(got), len(want), want[:min(5, len(want))])
			}
		}
	}
	for _, u := range []struct {
		citizen, portal string
		from, to        time.Time
	}{{"", "", time.Time{}, time.Time{}}, {"C4", "", time.Time{}, time.Time{}}, {"", "P2", at(100), at(1450)}} {
		type key struct{ c, p, k string }
		want := map[key]*store.AuditUsage{}
		for _, r := range all {
			f := store.AuditFilter{Citizen: u.citizen, Portal: u.portal, From: u.from, To: u.to, Events: []string{"key.used"}}
			if !match(f, r) {
				continue
			}
			k := key{r.Citizen, r.Portal, r.KeyID}
			w := want[k]
			if w == nil {
				w = &store.AuditUsage{Citizen: r.Citizen, Portal: r.Portal, KeyID: r.KeyID, First: r.Time, Last: r.Time}
				want[k] = w
			}
			if r.Outcome == "success" {
				w.Signatures++
				w.Documents += int64(r.Documents)
			} else {
				w.Failures++
			}
			w.Last = r.Time
		}
		got, err := db.AuditKeyUsage(ctx, u.citizen, u.portal, u.from, u.to)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("usage %+v: %d lines, want %d", u, len(got), len(want))
		}
		for _, g := range got {
			w := want[key{g.Citizen, g.Portal, g.KeyID}]
			if w == nil || g.Signatures != w.Signatures || g.Failures != w.Failures || g.Documents != w.Documents ||
				!g.First.Equal(w.First) || !g.Last.Equal(w.Last) {
				t.Errorf("usage %+v: %+v, want %+v", u, g, w)
			}
		}
	}
}
