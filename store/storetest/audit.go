package storetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/firma-cloud/firma/store"
)

func testAudit(t *testing.T, open Open) {
	cases(t, open, []test{
		{"append continues the log exactly", auditAppend},
		{"one sequence across handles", auditAppendConcurrent},
		{"queries and usage", auditQueries},
		{"queries across index and tail", auditLarge},
		{"checkpoints and cursors", auditCheckpoints},
	})
}

var auditEpoch = time.Unix(1_700_000_000, 0).UTC()

func auditRec(i int64, event, outcome, citizen, portal, key string, docs int) *store.AuditRecord {
	return &store.AuditRecord{Index: i, Time: auditEpoch.Add(time.Duration(i) * time.Second), Event: event, Outcome: outcome,
		ActorRole: "portal", ActorID: portal, Citizen: citizen, Portal: portal, KeyID: key, RequestID: fmt.Sprintf("r%d", i),
		Documents: docs, Data: []byte(fmt.Sprintf(`{"i":%d,"event":%q,"ñ":"ü"}`, i, event))}
}

// hashesFor stands in for the tree hashes of recs: the store keeps them
// by index without interpreting them.
func hashesFor(recs []*store.AuditRecord) []store.AuditHash {
	var out []store.AuditHash
	for _, r := range recs {
		out = append(out, store.AuditHash{Index: r.Index, Hash: sha256.Sum256(r.Data)})
	}
	return out
}

func auditAppend(t *testing.T, db store.Store, _ Reopen) {
	ctx := context.Background()
	if n, err := db.AuditSize(ctx); err != nil || n != 0 {
		t.Fatalf("empty log size %d, %v", n, err)
	}
	first := []*store.AuditRecord{auditRec(0, "key.used", "success", "c", "p", "k", 1), auditRec(1, "key.used", "success", "c", "p", "k", 2)}
	if err := db.AppendAudit(ctx, first, hashesFor(first), false); err != nil {
		t.Fatal(err)
	}
	refused := []struct {
		name string
		recs []*store.AuditRecord
	}{
		{"gap", []*store.AuditRecord{auditRec(3, "x", "success", "", "", "", 0)}},
		{"overlap", []*store.AuditRecord{auditRec(1, "x", "success", "", "", "", 0), auditRec(2, "x", "success", "", "", "", 0)}},
		{"out of sequence", []*store.AuditRecord{auditRec(2, "x", "success", "", "", "", 0), auditRec(4, "x", "success", "", "", "", 0)}},
	}
	for _, r := range refused {
		if err := db.AppendAudit(ctx, r.recs, hashesFor(r.recs), false); !errors.Is(err, store.ErrConflict) {
			t.Errorf("%s: %v, want ErrConflict", r.name, err)
		}
	}
	// A hash index already stored fails the whole batch.
	next := []*store.AuditRecord{auditRec(2, "x", "success", "", "", "", 0)}
	if err := db.AppendAudit(ctx, next, []store.AuditHash{{Index: 1}}, true); !errors.Is(err, store.ErrConflict) {
		t.Errorf("hash stored twice: %v, want ErrConflict", err)
	}
	if n, _ := db.AuditSize(ctx); n != 2 {
		t.Fatalf("refused appends changed the size to %d", n)
	}
	if err := db.AppendAudit(ctx, next, hashesFor(next), true); err != nil {
		t.Fatal(err)
	}
	if err := db.AppendAudit(ctx, nil, nil, false); err != nil {
		t.Errorf("empty append: %v", err)
	}
	recs, err := db.AuditRecords(ctx, 0, 10)
	if err != nil || len(recs) != 3 {
		t.Fatalf("records %d, %v", len(recs), err)
	}
	if want := auditRec(1, "key.used", "success", "c", "p", "k", 2); fmt.Sprintf("%+v", recs[1]) != fmt.Sprintf("%+v", want) {
		t.Errorf("record round trip\n got %+v\nwant %+v", recs[1], want)
	}
	hs, err := db.AuditHashes(ctx, []int64{2, 0})
	if err != nil || hs[0] != sha256.Sum256(recs[2].Data) || hs[1] != sha256.Sum256(recs[0].Data) {
		t.Errorf("hashes in the order asked: %v", err)
	}
	if _, err := db.AuditHashes(ctx, []int64{0, 7}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing hash: %v, want ErrNotFound", err)
	}
	if hs, err := db.AuditHashes(ctx, nil); err != nil || len(hs) != 0 {
		t.Errorf("no hashes: %v %v", hs, err)
	}
}

// auditAppendConcurrent appends from goroutines on two handles, each
// reading the size and appending there, retrying on ErrConflict, as nodes
// do: the log must come out as one gapless sequence holding every record
// exactly once.
func auditAppendConcurrent(t *testing.T, db store.Store, reopen Reopen) {
	if reopen == nil {
		t.Skip("the store has a single appender")
	}
	ctx := context.Background()
	other := reopen(t)
	const writers, per = 6, 15
	var wg sync.WaitGroup
	for w := range writers {
		h := db
		if w%2 == 1 {
			h = other
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range per {
				for try := 0; ; try++ {
					size, err := h.AuditSize(ctx)
					if err != nil {
						t.Error(err)
						return
					}
					r := auditRec(size, fmt.Sprintf("w%d.%d", w, j), "success", "", "", "", 0)
					err = h.AppendAudit(ctx, []*store.AuditRecord{r}, hashesFor([]*store.AuditRecord{r}), j%3 == 0)
					if err == nil {
						break
					}
					if !errors.Is(err, store.ErrConflict) || try > 10000 {
						t.Errorf("append: %v", err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	recs, err := db.AuditRecords(ctx, 0, writers*per+10)
	if err != nil || len(recs) != writers*per {
		t.Fatalf("%d records, %v; want %d", len(recs), err, writers*per)
	}
	seen := map[string]bool{}
	for i, r := range recs {
		if r.Index != int64(i) || seen[r.Event] {
			t.Fatalf("record %d: index %d, event %s seen before: %v", i, r.Index, r.Event, seen[r.Event])
		}
		seen[r.Event] = true
	}
}

func auditQueries(t *testing.T, db store.Store, _ Reopen) {
	ctx := context.Background()
	recs := []*store.AuditRecord{
		auditRec(0, "key.used", "success", "A", "P1", "k1", 2),
		auditRec(1, "key.used", "failure", "A", "P1", "k1", 1),
		auditRec(2, "key.used", "success", "A", "P2", "k1", 3),
		auditRec(3, "otp.failed", "failure", "A", "P1", "", 0),
		auditRec(4, "key.used", "success", "B", "P1", "k2", 1),
		auditRec(5, "cert.issued", "success", "B", "", "k2", 0),
	}
	if err := db.AppendAudit(ctx, recs, hashesFor(recs), false); err != nil {
		t.Fatal(err)
	}
	at := func(i int) time.Time { return auditEpoch.Add(time.Duration(i) * time.Second) }
	queries := []struct {
		name string
		f    store.AuditFilter
		want string
	}{
		{"all", store.AuditFilter{}, "[0 1 2 3 4 5]"},
		{"citizen", store.AuditFilter{Citizen: "B"}, "[4 5]"},
		{"portal", store.AuditFilter{Portal: "P1"}, "[0 1 3 4]"},
		{"key", store.AuditFilter{KeyID: "k1"}, "[0 1 2]"},
		{"events", store.AuditFilter{Events: []string{"otp.failed", "cert.issued"}}, "[3 5]"},
		{"time range", store.AuditFilter{From: at(1), To: at(3)}, "[1 2]"},
		{"page", store.AuditFilter{Citizen: "A", Start: 1, Limit: 2}, "[1 2]"},
		{"all filters", store.AuditFilter{Citizen: "A", Portal: "P1", KeyID: "k1", Events: []string{"key.used"}, From: at(1)}, "[1]"},
		{"nothing", store.AuditFilter{Citizen: "C"}, "[]"},
	}
	for _, q := range queries {
		got, err := db.QueryAudit(ctx, q.f)
		if err != nil {
			t.Fatal(err)
		}
		var idx []int64
		for _, r := range got {
			idx = append(idx, r.Index)
		}
		if fmt.Sprint(idx) != q.want {
			t.Errorf("%s: %v, want %s", q.name, idx, q.want)
		}
	}
	usage, err := db.AuditKeyUsage(ctx, "", "", time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, u := range usage {
		lines = append(lines, fmt.Sprintf("%s/%s/%s ok=%d ko=%d docs=%d %d-%d", u.Citizen, u.Portal, u.KeyID, u.Signatures, u.Failures, u.Documents,
			u.First.Sub(auditEpoch)/time.Second, u.Last.Sub(auditEpoch)/time.Second))
	}
	if want := "[A/P1/k1 ok=1 ko=1 docs=2 0-1 A/P2/k1 ok=1 ko=0 docs=3 2-2 B/P1/k2 ok=1 ko=0 docs=1 4-4]"; fmt.Sprint(lines) != want {
		t.Errorf("usage %v\nwant %s", lines, want)
	}
	if usage, _ := db.AuditKeyUsage(ctx, "A", "P1", at(1), at(9)); len(usage) != 1 || usage[0].Signatures != 0 || usage[0].Failures != 1 {
		t.Errorf("filtered usage %+v", usage)
	}
	if usage, err := db.AuditKeyUsage(ctx, "C", "", time.Time{}, time.Time{}); err != nil || len(usage) != 0 {
		t.Errorf("usage of nobody %v %v", usage, err)
	}
}

func auditCheckpoints(t *testing.T, db store.Store, _ Reopen) {
	ctx := context.Background()
	if _, err := db.LatestAuditCheckpoint(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no checkpoint: %v", err)
	}
	for _, size := range []int64{10, 30, 20} {
		c := &store.AuditCheckpoint{Size: size, Note: []byte(fmt.Sprintf("note %d", size)), CreatedAt: auditEpoch.Add(time.Duration(size))}
		if size == 20 {
			c.Timestamp = []byte{0x30, 0x03}
		}
		if err := db.AddAuditCheckpoint(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.AddAuditCheckpoint(ctx, &store.AuditCheckpoint{Size: 20, Note: []byte("other"), CreatedAt: auditEpoch}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second checkpoint of a size: %v, want ErrConflict", err)
	}
	latest, err := db.LatestAuditCheckpoint(ctx)
	if err != nil || latest.Size != 30 || string(latest.Note) != "note 30" || latest.Timestamp != nil || !latest.CreatedAt.Equal(auditEpoch.Add(30)) {
		t.Errorf("latest %+v %v", latest, err)
	}
	cs, err := db.AuditCheckpoints(ctx, 10, 1)
	if err != nil || len(cs) != 1 || cs[0].Size != 20 || string(cs[0].Timestamp) != "\x30\x03" {
		t.Errorf("checkpoints after 10: %+v %v", cs, err)
	}
	if pos, err := db.AuditCursor(ctx, "notifier"); err != nil || pos != -1 {
		t.Errorf("unsaved cursor %d %v", pos, err)
	}
	for _, p := range []int64{5, 12} {
		if err := db.SetAuditCursor(ctx, "notifier", p); err != nil {
			t.Fatal(err)
		}
	}
	if pos, err := db.AuditCursor(ctx, "notifier"); err != nil || pos != 12 {
		t.Errorf("cursor %d %v", pos, err)
	}
}
