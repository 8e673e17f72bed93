package audit_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/store"
)

// tsaInterval writes what the built-in TSA writes for one interval of n
// tokens: a key.activated record, n issuance rows (stored out of serial
// order, as concurrent requests finish) and the key.used summary.
func tsaInterval(t *testing.T, e *env, id string, first int64, n int) {
	t.Helper()
	ctx := context.Background()
	actor := audit.Actor{Role: audit.RoleSystem, ID: "tsa"}
	act := &audit.Record{Event: audit.KeyActivated, Outcome: audit.Success, Actor: actor, KeyID: "tsa-key",
		Details: map[string]string{audit.DetailActivation: id, "signing_purpose": "tsa"}}
	if err := e.log.Append(ctx, act); err != nil {
		t.Fatal(err)
	}
	var rows []*store.TSAIssuance
	for i := n - 1; i >= 0; i-- {
		s := first + int64(i)
		r := &store.TSAIssuance{Serial: s, Interval: id, KeyID: "tsa-key", IssuedAt: time.Unix(1700000000+s, 0),
			TokenHash: bytes.Repeat([]byte{byte(s)}, 32), ImprintHash: "sha-256", Policy: "0.4.0.2023.1.1", Client: "192.0.2.7"}
		if err := e.db.AddTSAIssuance(ctx, r); err != nil {
			t.Fatal(err)
		}
		rows = append([]*store.TSAIssuance{r}, rows...)
	}
	d := audit.SummariseIssuance(rows).Details()
	d[audit.DetailActivation] = id
	if err := e.log.Append(ctx, &audit.Record{Event: audit.KeyUsed, Outcome: audit.Success, Actor: actor, KeyID: "tsa-key", Details: d}); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyTSASummaries: verification given the issuance log recomputes
// every interval summary and names the interval whose rows were changed,
// deleted or added.
func TestVerifyTSASummaries(t *testing.T) {
	tests := []struct {
		name  string
		sql   func(e *env) []string
		want  string // in the problem; "" verifies
		index int64  // the summary record named
	}{
		{"untouched", nil, "", 0},
		{"row deleted", func(*env) []string {
			return []string{"DELETE FROM tsa_issuance WHERE interval_id = 'i2' AND serial = 12"}
		}, "holds 4 tokens for it, the summary says 5", 3},
		{"token hash changed", func(e *env) []string {
			return []string{"UPDATE tsa_issuance SET token_hash = " + e.b.Blob(make([]byte, 32)) + " WHERE interval_id = 'i1' AND serial = 2"}
		}, "no longer hash to the summary's root", 1},
		{"client changed", func(*env) []string {
			return []string{"UPDATE tsa_issuance SET client = '' WHERE interval_id = 'i2' AND serial = 14"}
		}, "no longer hash to the summary's root", 3},
		{"serial changed", func(*env) []string {
			return []string{"UPDATE tsa_issuance SET serial = 99 WHERE interval_id = 'i2' AND serial = 14"}
		}, "serials run 0xa to 0x63", 3},
		{"row added", func(e *env) []string {
			return []string{"INSERT INTO tsa_issuance (interval_id, serial, key_id, issued_at, token_hash, imprint_hash, policy, client) VALUES ('i1', 4, 'tsa-key', 1, " +
				e.b.Blob(make([]byte, 32)) + ", 'sha-256', '0.4.0.2023.1.1', '')"}
		}, "holds 4 tokens for it, the summary says 3", 1},
		{"key changed", func(*env) []string {
			return []string{"UPDATE tsa_issuance SET key_id = 'other' WHERE interval_id = 'i1' AND serial = 1"}
		}, "names key other", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, audit.Options{})
			tsaInterval(t, e, "i1", 1, 3)
			tsaInterval(t, e, "i2", 10, 5)
			checkpoint(t, e.log)
			if tc.sql != nil {
				e.b.Exec(t, e.db, tc.sql(e)...)
			}
			rep, err := audit.VerifyStoreWith(ctx, e.db, audit.VerifyOptions{Keys: e.keys, Issuance: e.db})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if rep.TSASummaries != 2 || rep.TSATokens != 8 || rep.TSAChecked != 2 || len(rep.Unfinished) != 0 {
					t.Fatalf("report: %d summaries, %d tokens, %d checked, %d unfinished; want 2, 8, 2, 0",
						rep.TSASummaries, rep.TSATokens, rep.TSAChecked, len(rep.Unfinished))
				}
			} else {
				var te *audit.TamperError
				if !errors.As(err, &te) || !strings.Contains(te.Problem, tc.want) || te.Index != tc.index || te.Event != audit.KeyUsed {
					t.Fatalf("got %v, want a tamper error at record %d saying %q", err, tc.index, tc.want)
				}
			}
			// Without the issuance log, summaries are counted only; an
			// export is checked against it the same way.
			rep, err = audit.VerifyStoreWith(ctx, e.db, audit.VerifyOptions{Keys: e.keys})
			if err != nil || rep.TSASummaries != 2 || rep.TSAChecked != 0 {
				t.Fatalf("without the issuance log: %v, %+v", err, rep)
			}
			_, err = audit.VerifyExportContext(ctx, bytes.NewReader(exportOf(t, e.db)), audit.VerifyOptions{Keys: e.keys, Issuance: e.db})
			if (err == nil) != (tc.want == "") {
				t.Fatalf("export against the issuance log: %v", err)
			}
		})
	}
}

func TestParseIssuanceSummary(t *testing.T) {
	var s audit.Issuance
	s.Add(0x10, [32]byte{1})
	s.Add(0x12, [32]byte{2})
	want := s.Summary(3)
	got, ok, err := audit.ParseIssuanceSummary(want.Details())
	if !ok || err != nil || got != want {
		t.Fatalf("round trip: %+v %v %v, want %+v", got, ok, err, want)
	}
	empty := (&audit.Issuance{}).Summary(0)
	if got, ok, err := audit.ParseIssuanceSummary(empty.Details()); !ok || err != nil || got != empty {
		t.Fatalf("empty interval: %+v %v %v", got, ok, err)
	}
	for _, d := range []map[string]string{
		{audit.DetailTSARoot: "zz", audit.DetailTSACount: "1"},
		{audit.DetailTSARoot: strings.Repeat("00", 32), audit.DetailTSACount: "-1"},
		{audit.DetailTSARoot: strings.Repeat("00", 32), audit.DetailTSACount: "2", audit.DetailTSAFirst: "x"},
	} {
		if _, ok, err := audit.ParseIssuanceSummary(d); !ok || err == nil {
			t.Errorf("%v: ok %v, err %v; want a malformed summary", d, ok, err)
		}
	}
	if _, ok, _ := audit.ParseIssuanceSummary(map[string]string{"activation": "x"}); ok {
		t.Error("a record without a root taken for a summary")
	}
}

// TestVerifyTSAIntervalCutShort: an interval a crash left without its
// summary is reported unfinished, with the tokens the issuance log holds
// for it.
func TestVerifyTSAIntervalCutShort(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, audit.Options{})
	tsaInterval(t, e, "i1", 1, 2)
	if err := e.log.Append(ctx, &audit.Record{Event: audit.KeyActivated, Outcome: audit.Success, Actor: audit.Actor{Role: audit.RoleSystem, ID: "tsa"},
		KeyID: "tsa-key", Details: map[string]string{audit.DetailActivation: "i2", "signing_purpose": "tsa"}}); err != nil {
		t.Fatal(err)
	}
	for s := int64(3); s <= 5; s++ {
		if err := e.db.AddTSAIssuance(ctx, &store.TSAIssuance{Serial: s, Interval: "i2", KeyID: "tsa-key", IssuedAt: time.Unix(s, 0),
			TokenHash: make([]byte, 32), ImprintHash: "sha-256", Policy: "1.2"}); err != nil {
			t.Fatal(err)
		}
	}
	checkpoint(t, e.log)
	for _, tc := range []struct {
		issuance audit.IssuanceLog
		rows     int
	}{{e.db, 3}, {nil, -1}} {
		rep, err := audit.VerifyStoreWith(ctx, e.db, audit.VerifyOptions{Keys: e.keys, Issuance: tc.issuance})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Unfinished) != 1 || !rep.Unfinished[0].TSA || rep.Unfinished[0].ID != "i2" || rep.Unfinished[0].IssuanceRows != tc.rows {
			t.Fatalf("unfinished %+v, want interval i2 with %d rows", rep.Unfinished, tc.rows)
		}
	}
}
