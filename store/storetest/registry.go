package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/firma-cloud/firma/store"
)

func testRegistry(t *testing.T, open Open) {
	cases(t, open, []test{
		{"citizens", regCitizens},
		{"import", regImport},
		{"credential lockout across handles", regCredentialLockout},
		{"codes spent once across handles", regCodes},
		{"fiscal records and letters", regFiscalLetters},
	})
}

func citizen(id string, at time.Time) *store.Citizen {
	return &store.Citizen{ID: id, GivenName: "Ana", Surnames: "García López", Mobile: "+34600000000", Email: "ana@example.es",
		Level: "advanced", Method: "in_person", Status: "active", CreatedAt: at, UpdatedAt: at, LevelAt: at}
}

func regCitizens(t *testing.T, db store.Store, _ Reopen) {
	ctx := context.Background()
	at := time.Unix(1_700_000_000, 5).UTC()
	for i, id := range []string{"00000001R", "00000002W", "00000003A", "X0000000T"} {
		c := citizen(id, at)
		if i%2 == 1 {
			c.Level, c.Status = "basic", "locked"
		}
		if err := db.CreateCitizen(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateCitizen(ctx, citizen("00000001R", at)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate: %v, want ErrConflict", err)
	}
	got, err := db.Citizen(ctx, "00000003A")
	if want := citizen("00000003A", at); err != nil || fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Fatalf("round trip %+v %v", got, err)
	}
	queries := []struct {
		q    store.CitizenQuery
		want string
	}{
		{store.CitizenQuery{}, "[00000001R 00000002W 00000003A X0000000T]"},
		{store.CitizenQuery{Level: "basic"}, "[00000002W X0000000T]"},
		{store.CitizenQuery{Status: "active", After: "00000001R"}, "[00000003A]"},
		{store.CitizenQuery{Limit: 1, After: "00000002W"}, "[00000003A]"},
		{store.CitizenQuery{Level: "advanced", Status: "locked"}, "[]"},
	}
	for _, q := range queries {
		list, err := db.Citizens(ctx, q.q)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, c := range list {
			ids = append(ids, c.ID)
		}
		if fmt.Sprint(ids) != q.want {
			t.Errorf("Citizens(%+v) = %v, want %s", q.q, ids, q.want)
		}
	}
	got.Mobile, got.Level, got.UpdatedAt = "+34611111111", "basic", at.Add(time.Hour)
	if err := db.UpdateCitizen(ctx, got); err != nil {
		t.Fatal(err)
	}
	if again, _ := db.Citizen(ctx, got.ID); again.Mobile != "+34611111111" || again.Level != "basic" || !again.CreatedAt.Equal(at) {
		t.Errorf("after update %+v", again)
	}
	if err := db.UpdateCitizen(ctx, citizen("99999999R", at)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update missing: %v, want ErrNotFound", err)
	}
	if _, err := db.Citizen(ctx, "99999999R"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing: %v, want ErrNotFound", err)
	}
}

func regImport(t *testing.T, db store.Store, _ Reopen) {
	ctx := context.Background()
	at := time.Unix(1_700_000_000, 0).UTC()
	if err := db.CreateCitizen(ctx, citizen("00000002W", at)); err != nil {
		t.Fatal(err)
	}
	var (
		cs   []*store.Citizen
		recs []*store.FiscalRecord
	)
	for _, id := range []string{"00000001R", "00000002W", "00000003A"} {
		c := citizen(id, at.Add(time.Hour))
		c.GivenName = "Imported"
		cs = append(cs, c)
		recs = append(recs, &store.FiscalRecord{CitizenID: id, GivenName: "Ana", Surnames: "G", Address: "Calle " + id, UpdatedAt: at})
	}
	created, err := db.ImportCitizens(ctx, cs, recs)
	if err != nil || fmt.Sprint(created) != "[true false true]" {
		t.Fatalf("import: %v %v, want [true false true]", created, err)
	}
	if c, _ := db.Citizen(ctx, "00000002W"); c.GivenName != "Ana" {
		t.Errorf("import overwrote an existing citizen: %+v", c)
	}
	if r, err := db.FiscalRecord(ctx, "00000003A"); err != nil || r.Address != "Calle 00000003A" || !r.UpdatedAt.Equal(at) {
		t.Errorf("fiscal record %+v %v", r, err)
	}
	if created, err := db.ImportCitizens(ctx, nil, nil); err != nil || len(created) != 0 {
		t.Errorf("empty import: %v %v", created, err)
	}
}

// regCredentialLockout guesses from many goroutines on two handles: every
// failure counts and exactly one of them locks the credential.
func regCredentialLockout(t *testing.T, db store.Store, reopen Reopen) {
	ctx := context.Background()
	other := reopen(t)
	at := time.Unix(1_700_000_000, 0).UTC()
	if err := db.PutCredential(ctx, &store.Credential{CitizenID: "00000001R", Hash: "h", SetAt: at}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("credential of a missing citizen: %v, want ErrNotFound", err)
	}
	if err := db.CreateCitizen(ctx, citizen("00000001R", at)); err != nil {
		t.Fatal(err)
	}
	if err := db.PutCredential(ctx, &store.Credential{CitizenID: "00000001R", Hash: "h", SetAt: at}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CredentialFailed(ctx, "00000001R", 5, at); err != nil {
		t.Fatal(err)
	}
	if err := db.CredentialSucceeded(ctx, "00000001R"); err != nil {
		t.Fatal(err)
	}
	const guesses, max = 12, 5
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[int]bool{}
	)
	for i := range guesses {
		h := db
		if i%2 == 1 {
			h = other
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := h.CredentialFailed(ctx, "00000001R", max, at.Add(time.Duration(i+1)*time.Second))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			counts[c.Failures] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(counts) != guesses {
		t.Fatalf("failure counts seen %v: two guesses got the same count", counts)
	}
	c, err := db.Credential(ctx, "00000001R")
	if err != nil || c.Failures != guesses || !c.Locked() {
		t.Fatalf("after %d guesses: %+v %v", guesses, c, err)
	}
	// A success does not unlock; setting a new password does.
	if err := db.CredentialSucceeded(ctx, "00000001R"); err != nil {
		t.Fatal(err)
	}
	if c, _ := db.Credential(ctx, "00000001R"); c.Failures != guesses {
		t.Errorf("success reset a locked credential: %+v", c)
	}
	if err := db.PutCredential(ctx, &store.Credential{CitizenID: "00000001R", Hash: "h2", SetAt: at.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if c, _ := db.Credential(ctx, "00000001R"); c.Locked() || c.Failures != 0 || c.Hash != "h2" {
		t.Errorf("new password: %+v", c)
	}
	if _, err := db.CredentialFailed(ctx, "99999999R", max, at); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("failure of a missing credential: %v", err)
	}
	if _, err := db.Credential(ctx, "99999999R"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing credential: %v", err)
	}
}

func regCodes(t *testing.T, db store.Store, reopen Reopen) {
	ctx := context.Background()
	other := reopen(t)
	at := time.Unix(1_700_000_000, 0).UTC()
	for i, kind := range []string{"activation", "activation", "csv"} {
		c := &store.Code{ID: fmt.Sprintf("c%d", i), Kind: kind, CitizenID: "00000001R", Hash: []byte{byte(i)}, Data: `{"step":1}`,
			CreatedAt: at.Add(time.Duration(i) * time.Minute), ExpiresAt: at.Add(time.Duration(i+1) * time.Hour)}
		if err := db.CreateCode(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateCode(ctx, &store.Code{ID: "c0", Kind: "csv", CitizenID: "x", Hash: []byte{1}, CreatedAt: at, ExpiresAt: at}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate code: %v", err)
	}
	codes, err := db.Codes(ctx, "00000001R", "activation")
	if err != nil || len(codes) != 2 || codes[0].ID != "c1" || codes[1].ID != "c0" || codes[0].Data != `{"step":1}` {
		t.Fatalf("codes newest first: %+v %v", codes, err)
	}
	// Twenty concurrent redemptions over two handles: one wins.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for i := range 20 {
		h := db
		if i%2 == 1 {
			h = other
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := h.UseCode(ctx, "c1", at)
			if err != nil && !errors.Is(err, store.ErrConflict) {
				t.Error(err)
			}
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("code spent %d times", wins)
	}
	if c, _ := db.Code(ctx, "c1"); !c.UsedAt.Equal(at) {
		t.Errorf("used at %v", c.UsedAt)
	}
	if err := db.UseCode(ctx, "nope", at); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("use missing: %v", err)
	}
	for want := 1; want <= 3; want++ {
		if n, err := other.CodeAttempt(ctx, "c0"); err != nil || n != want {
			t.Errorf("attempt %d: %d %v", want, n, err)
		}
	}
	if _, err := db.CodeAttempt(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("attempt at missing: %v", err)
	}
	// c0 expires at +1h, c1 at +2h, c2 (csv) at +3h.
	if n, err := db.DeleteCodes(ctx, "csv", at.Add(150*time.Minute)); err != nil || n != 0 {
		t.Errorf("delete unexpired csv: %d %v", n, err)
	}
	if n, err := db.DeleteCodes(ctx, "", at.Add(150*time.Minute)); err != nil || n != 2 {
		t.Errorf("delete expired: %d %v", n, err)
	}
	if _, err := db.Code(ctx, "c0"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted code: %v", err)
	}
}

func regFiscalLetters(t *testing.T, db store.Store, _ Reopen) {
	ctx := context.Background()
	at := time.Unix(1_700_000_000, 0).UTC()
	if _, err := db.FiscalRecord(ctx, "00000001R"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing fiscal record: %v", err)
	}
	for _, addr := range []string{"Calle Mayor 1", "Calle Mayor 2"} {
		if err := db.PutFiscalRecord(ctx, &store.FiscalRecord{CitizenID: "00000001R", GivenName: "Ana", Surnames: "G", Address: addr, UpdatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := db.FiscalRecord(ctx, "00000001R"); err != nil || r.Address != "Calle Mayor 2" {
		t.Errorf("replaced record %+v %v", r, err)
	}
	for i := range 3 {
		l := &store.Letter{ID: fmt.Sprintf("l%d", i), CitizenID: []string{"00000001R", "00000002W"}[i%2], Address: "a", Body: "CSV",
			CreatedAt: at.Add(time.Duration(i) * time.Hour)}
		if err := db.PutLetter(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	if ls, err := db.Letters(ctx, "00000001R", 0); err != nil || len(ls) != 2 || ls[0].ID != "l2" || !ls[0].CreatedAt.Equal(at.Add(2*time.Hour)) {
		t.Errorf("letters of a citizen %+v %v", ls, err)
	}
	if ls, _ := db.Letters(ctx, "", 2); len(ls) != 2 || ls[0].ID != "l2" || ls[1].ID != "l1" {
		t.Errorf("latest letters %+v", ls)
	}
	if n, err := db.DeleteLetters(ctx, at.Add(90*time.Minute)); err != nil || n != 2 {
		t.Errorf("delete letters: %d %v", n, err)
	}
}

func testSMS(t *testing.T, open Open) {
	cases(t, open, []test{
		{"outbox", smsOutbox},
	})
}

func smsOutbox(t *testing.T, db store.Store, _ Reopen) {
	ctx := context.Background()
	at := time.Unix(1_700_000_000, 0).UTC()
	for i := range 4 {
		m := &store.SMS{ID: fmt.Sprintf("m%d", i), To: []string{"+34600000001", "+34600000002"}[i%2], Text: fmt.Sprintf("code %d", i),
			CreatedAt: at.Add(time.Duration(i) * time.Second)}
		if err := db.PutSMS(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	ms, err := db.SMSes(ctx, "+34600000001", 10)
	if err != nil || len(ms) != 2 || ms[0].ID != "m2" || ms[0].Text != "code 2" || !ms[0].CreatedAt.Equal(at.Add(2*time.Second)) {
		t.Fatalf("messages to one number %+v %v", ms, err)
	}
	if ms, _ := db.SMSes(ctx, "", 3); len(ms) != 3 || ms[0].ID != "m3" {
		t.Errorf("latest messages %+v", ms)
	}
	if n, err := db.DeleteSMS(ctx, at.Add(2*time.Second)); err != nil || n != 2 {
		t.Errorf("delete: %d %v", n, err)
	}
	if ms, _ := db.SMSes(ctx, "", 0); len(ms) != 2 {
		t.Errorf("after delete %d messages", len(ms))
	}
}
