package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/store/sqlite"
)

// segments returns the journal segment files beside the database at path.
func segments(t *testing.T, path string) []string {
	t.Helper()
	m, err := filepath.Glob(path + "-audit-*.journal")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func openJournal(t *testing.T, path string) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.JournalAudit(context.Background()); err != nil {
		db.Close()
		t.Fatal(err)
	}
	return db
}

// appendN appends n records from index from, in batches of 1 to 7, every
// third with flush.
func appendN(t *testing.T, db *sqlite.DB, from, n int64) {
	t.Helper()
	for i, b := from, int64(1); i < from+n; i, b = i+b, b%7+1 {
		recs, hashes := auditBatch(i, min(b, from+n-i))
		if err := db.AppendAudit(context.Background(), recs, hashes, i%3 == 0); err != nil {
			t.Fatalf("append at %d: %v", i, err)
		}
	}
}

// checkLog checks that db holds exactly records 0..n-1 as auditBatch made
// them, with their hashes.
func checkLog(t *testing.T, db *sqlite.DB, n int64) {
	t.Helper()
	ctx := context.Background()
	if size, err := db.AuditSize(ctx); err != nil || size != n {
		t.Fatalf("size %d, %v; want %d", size, err, n)
	}
	got, err := db.AuditRecords(ctx, 0, n+10)
	if err != nil || int64(len(got)) != n {
		t.Fatalf("%d records, %v; want %d", len(got), err, n)
	}
	want, hashes := auditBatch(0, n)
	for i := range got {
		if fmt.Sprintf("%+v", got[i]) != fmt.Sprintf("%+v", want[i]) {
			t.Fatalf("record %d\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	idx := make([]int64, n)
	for i := range idx {
		idx[i] = int64(i)
	}
	hs, err := db.AuditHashes(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range hs {
		if h != hashes[i].Hash {
			t.Fatalf("hash %d differs", i)
		}
	}
}

// TestJournalRecovers: records acknowledged by a process that died before
// they moved into the tables are in the log once the next appender
// starts, and the journal is gone after a clean close.
func TestJournalRecovers(t *testing.T) {
	defer sqlite.SetJournal(1<<20, time.Hour, 8<<20)()
	path := filepath.Join(t.TempDir(), "firma.db")
	db := openJournal(t, path)
	appendN(t, db, 0, 300)
	// Reads through the appending handle see every record at once.
	checkLog(t, db, 300)
	appendN(t, db, 300, 200)
	db.Crash()
	if len(segments(t, path)) != 1 {
		t.Fatalf("segments after the crash: %v", segments(t, path))
	}
	// Another process reading the tables sees what had moved.
	reader, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(t, reader, "SELECT COUNT(*) FROM audit_records"); n != 300 {
		t.Errorf("%d records in the tables before recovery, want the 300 that moved", n)
	}
	reader.Close()

	db = openJournal(t, path)
	checkLog(t, db, 500)
	if n := count(t, db, "SELECT COUNT(*) FROM audit_records"); n != 500 {
		t.Errorf("%d records in the tables after recovery, want 500", n)
	}
	appendN(t, db, 500, 20)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if s := segments(t, path); len(s) != 0 {
		t.Errorf("segments left after a clean close: %v", s)
	}
	db = openJournal(t, path)
	defer db.Close()
	checkLog(t, db, 520)
}

// TestJournalTornTail: a frame cut short at the end of the journal (a
// write the crash interrupted, never acknowledged) is dropped; a bad frame
// anywhere else stops the start and names where it is, changing nothing.
func TestJournalTornTail(t *testing.T) {
	defer sqlite.SetJournal(1<<20, time.Hour, 8<<20)()
	for _, tc := range []struct {
		name    string
		damage  func(data []byte) []byte
		want    int64  // records after recovery
		wantErr string // or the start fails so
	}{
		{"half a frame at the end", func(d []byte) []byte { return append(d, d[:20]...) }, 30, ""},
		{"a header alone at the end", func(d []byte) []byte { return append(d, d[:5]...) }, 30, ""},
		{"a whole bad frame at the end", func(d []byte) []byte {
			last := append([]byte(nil), d[len(d)-frameLen(d):]...)
			last[len(last)-1] ^= 1
			return append(d, last...)
		}, 30, ""},
		{"a flipped byte in the first frame", func(d []byte) []byte { d[12] ^= 1; return d }, 0, "at byte 0: bad journal frame: checksum"},
		{"a frame cut out of the middle", func(d []byte) []byte {
			n := frameLen(d)
			return d[n:]
		}, 0, "do not continue the log at 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "firma.db")
			db := openJournal(t, path)
			appendN(t, db, 0, 30)
			db.Crash()
			seg := segments(t, path)[0]
			data, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(seg, tc.damage(bytes.Clone(data)), 0o600); err != nil {
				t.Fatal(err)
			}
			db, err = sqlite.Open(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			err = db.JournalAudit(context.Background())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), filepath.Base(seg)) {
					t.Fatalf("start: %v, want an error naming %s and %q", err, filepath.Base(seg), tc.wantErr)
				}
				if n := count(t, db, "SELECT COUNT(*) FROM audit_records"); n != 0 {
					t.Errorf("a refused start moved %d records", n)
				}
				// and holds no lock: the damage repaired by hand, a start
				// from another handle goes ahead.
				if err := os.WriteFile(seg, data, 0o600); err != nil {
					t.Fatal(err)
				}
				again := openJournal(t, path)
				defer again.Close()
				checkLog(t, again, 30)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkLog(t, db, tc.want)
			appendN(t, db, tc.want, 5)
			checkLog(t, db, tc.want+5)
		})
	}
}

// frameLen returns the length of the first frame in d.
func frameLen(d []byte) int {
	return 8 + int(uint32(d[0])|uint32(d[1])<<8|uint32(d[2])<<16|uint32(d[3])<<24)
}

// TestJournalOneAppender: while a handle journals, no other handle or
// process appends, and while one appends to the tables directly, none
// journals; either way the log keeps one sequence.
func TestJournalOneAppender(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "firma.db")
	journaled := openJournal(t, path)
	appendN(t, journaled, 0, 10)

	other, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.JournalAudit(ctx); !errors.Is(err, sqlite.ErrJournalHeld) {
		t.Errorf("second journal: %v, want ErrJournalHeld", err)
	}
	recs, hashes := auditBatch(10, 1)
	if err := other.AppendAudit(ctx, recs, hashes, false); !errors.Is(err, sqlite.ErrJournalHeld) {
		t.Errorf("direct append beside a journal: %v, want ErrJournalHeld", err)
	}
	if err := journaled.Close(); err != nil {
		t.Fatal(err)
	}
	if err := other.AppendAudit(ctx, recs, hashes, false); err != nil {
		t.Fatalf("direct append once the journal closed: %v", err)
	}
	third, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer third.Close()
	if err := third.JournalAudit(ctx); !errors.Is(err, sqlite.ErrJournalHeld) {
		t.Errorf("journal beside a direct appender: %v, want ErrJournalHeld", err)
	}
	checkLog(t, other, 11)
}

// TestJournalSegments: the journal starts a new segment file past its
// size limit and deletes each once its records are in the tables, so it
// stays small under a steady load.
func TestJournalSegments(t *testing.T) {
	defer sqlite.SetJournal(64, time.Millisecond, 4<<10)()
	path := filepath.Join(t.TempDir(), "firma.db")
	db := openJournal(t, path)
	defer db.Close()
	most := 0
	for i := int64(0); i < 2000; i += 100 {
		appendN(t, db, i, 100)
		most = max(most, len(segments(t, path)))
	}
	if most < 2 {
		t.Errorf("at most %d segment(s) with 4 KiB segments: no rotation", most)
	}
	checkLog(t, db, 2000) // reads move everything in
	if s := segments(t, path); len(s) > 2 {
		t.Errorf("%d segments once every record moved, want the open one and at most one more", len(s))
	}
	if n := count(t, db, "SELECT COUNT(*) FROM audit_records"); n != 2000 {
		t.Errorf("%d records in the tables", n)
	}
}

// TestJournalRefusesWhatTablesWould: a journaled append is refused at once
// for what the tables would refuse at the move (the conformance suite has
// the rest).
func TestJournalRefusesWhatTablesWould(t *testing.T) {
	path := filepath.Join(t.TempDir(), "firma.db")
	db := openJournal(t, path)
	defer db.Close()
	appendN(t, db, 0, 3)
	recs, hashes := auditBatch(3, 2)
	hashes[1].Index = 2
	if err := db.AppendAudit(context.Background(), recs, hashes, false); !errors.Is(err, store.ErrConflict) {
		t.Errorf("hash index going back: %v, want ErrConflict", err)
	}
	recs, hashes = auditBatch(3, 2)
	if err := db.AppendAudit(context.Background(), recs, hashes, false); err != nil {
		t.Fatalf("the same records with their hashes right: %v", err)
	}
	checkLog(t, db, 5)
}
