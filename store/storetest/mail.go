package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/firma-cloud/firma/store"
)

func testMail(t *testing.T, open Open) {
	cases(t, open, []test{
		{"outbox", mailOutbox},
		{"duplicate id", mailDuplicate},
		{"survives reopen", mailReopen},
	})
}

// mailOutbox: newest first, by recipient, bounded, purged by age; the
// subject and an accented, multi-line body come back byte for byte.
func mailOutbox(t *testing.T, db store.Store, _ Reopen) {
	ctx := context.Background()
	at := time.Unix(1_700_000_000, 0).UTC()
	to := []string{"ana@example.es", "luis@example.es"}
	for i := range 5 {
		m := &store.Email{ID: fmt.Sprintf("e%d", i), To: to[i%2], Subject: fmt.Sprintf("Cl@ve Firma: aviso %d", i),
			Text: fmt.Sprintf("Se firmó %d documento.\r\nSi no reconoce esta firma, revóquelo.", i), CreatedAt: at.Add(time.Duration(i) * time.Second)}
		if err := db.PutEmail(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		to    string
		limit int
		ids   []string
	}{
		{"one address", "ana@example.es", 10, []string{"e4", "e2", "e0"}},
		{"other address", "luis@example.es", 10, []string{"e3", "e1"}},
		{"all, bounded", "", 3, []string{"e4", "e3", "e2"}},
		{"all, default limit", "", 0, []string{"e4", "e3", "e2", "e1", "e0"}},
		{"nobody", "nadie@example.es", 10, nil},
	}
	for _, tc := range tests {
		ms, err := db.Emails(ctx, tc.to, tc.limit)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var ids []string
		for _, m := range ms {
			ids = append(ids, m.ID)
		}
		if fmt.Sprint(ids) != fmt.Sprint(tc.ids) {
			t.Errorf("%s: ids %v, want %v", tc.name, ids, tc.ids)
		}
	}
	ms, _ := db.Emails(ctx, "luis@example.es", 1)
	if len(ms) != 1 {
		t.Fatalf("latest to luis: %d messages", len(ms))
	}
	want := store.Email{ID: "e3", To: "luis@example.es", Subject: "Cl@ve Firma: aviso 3",
		Text: "Se firmó 3 documento.\r\nSi no reconoce esta firma, revóquelo.", CreatedAt: at.Add(3 * time.Second)}
	if got := *ms[0]; got.ID != want.ID || got.To != want.To || got.Subject != want.Subject || got.Text != want.Text || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("message %+v, want %+v", got, want)
	}
	if n, err := db.DeleteEmails(ctx, at.Add(2*time.Second)); err != nil || n != 2 {
		t.Errorf("delete before +2s: %d %v, want 2", n, err)
	}
	if ms, _ := db.Emails(ctx, "", 0); len(ms) != 3 || ms[2].ID != "e2" {
		t.Errorf("after delete: %d messages", len(ms))
	}
	if n, err := db.DeleteEmails(ctx, at.Add(time.Hour)); err != nil || n != 3 {
		t.Errorf("delete all: %d %v, want 3", n, err)
	}
}

// mailDuplicate: a second message with an ID already used is refused with
// ErrConflict, and the first is left as it was.
func mailDuplicate(t *testing.T, db store.Store, _ Reopen) {
	ctx := context.Background()
	at := time.Unix(1_700_000_000, 0).UTC()
	if err := db.PutEmail(ctx, &store.Email{ID: "dup", To: "ana@example.es", Subject: "s", Text: "first", CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	err := db.PutEmail(ctx, &store.Email{ID: "dup", To: "luis@example.es", Subject: "s", Text: "second", CreatedAt: at})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second put with the same id: %v, want ErrConflict", err)
	}
	if ms, _ := db.Emails(ctx, "", 0); len(ms) != 1 || ms[0].Text != "first" || ms[0].To != "ana@example.es" {
		t.Errorf("after the refused put: %+v", ms)
	}
}

// mailReopen: another handle on the same database (a restart, a second
// node) reads what the first wrote.
func mailReopen(t *testing.T, db store.Store, reopen Reopen) {
	ctx := context.Background()
	if err := db.PutEmail(ctx, &store.Email{ID: "r1", To: "ana@example.es", Subject: "s", Text: "t", CreatedAt: time.Unix(1_700_000_000, 0)}); err != nil {
		t.Fatal(err)
	}
	other := reopen(t)
	if ms, err := other.Emails(ctx, "ana@example.es", 10); err != nil || len(ms) != 1 || ms[0].ID != "r1" {
		t.Errorf("from another handle: %+v %v", ms, err)
	}
}
