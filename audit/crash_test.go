package audit_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/store/sqlite"
)

const (
	crashEnv        = "FIRMA_AUDIT_CRASH_DB"
	crashJournalEnv = "FIRMA_AUDIT_CRASH_JOURNAL"
)

// TestCrashHelper is the process TestCrashLosesNothing kills: it appends
// from many goroutines and prints each record it got an acknowledgement
// for, as a service would return a signature right after its record.
func TestCrashHelper(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process for TestCrashLosesNothing")
	}
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv(crashJournalEnv) != "" {
		if err := db.JournalAudit(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	l, err := audit.Open(context.Background(), db, audit.Options{Node: "crash"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				r := sample(i)
				r.RequestID = fmt.Sprintf("w%d-%d", w, i)
				if err := l.Append(context.Background(), r); err != nil {
					fmt.Fprintln(os.Stderr, err)
					return
				}
				mu.Lock()
				fmt.Fprintf(out, "ack %d %s\n", r.Seq, r.RequestID)
				out.Flush()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

// A process killed with SIGKILL while appending loses no record it had
// acknowledged, and the log it leaves verifies and goes on: with records
// committed straight into the tables, and through the journal (firmad's
// default), where the next appender moves in what the killed one left.
func TestCrashLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a child process")
	}
	for _, journal := range []bool{false, true} {
		t.Run(map[bool]string{false: "tables", true: "journal"}[journal], func(t *testing.T) { crashLosesNothing(t, journal) })
	}
}

func crashLosesNothing(t *testing.T, journal bool) {
	db, path := openDB(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	if journal {
		cmd.Env = append(cmd.Env, crashJournalEnv+"=1")
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[int64]string{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && len(acked) < 2000 {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "ack" {
			continue
		}
		seq, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		acked[seq] = f[2]
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if len(acked) < 2000 {
		t.Fatalf("helper acknowledged only %d records before it stopped", len(acked))
	}
	if journal {
		var moved int64
		if err := db.SQL().QueryRow("SELECT COUNT(*) FROM audit_records").Scan(&moved); err != nil {
			t.Fatal(err)
		}
		if err := db.JournalAudit(context.Background()); err != nil {
			t.Fatal(err)
		}
		size, _ := db.AuditSize(context.Background())
		t.Logf("%d records were in the tables at the kill, %d only in the journal", moved, size-moved)
	}

	size, err := db.AuditSize(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	recs, err := db.AuditRecords(context.Background(), 0, size)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[int64]string{}
	for _, r := range recs {
		stored[r.Index] = r.RequestID
	}
	for seq, req := range acked {
		if stored[seq] != req {
			t.Errorf("acknowledged record %d (%s) is %q after the crash", seq, req, stored[seq])
		}
	}
	t.Logf("%d records acknowledged before SIGKILL, %d in the store after it", len(acked), size)

	// The log reopens where it stopped and the whole of it verifies.
	_, _, s := hsmKey(t, db)
	ns, err := audit.NewNoteSigner(origin, s)
	if err != nil {
		t.Fatal(err)
	}
	vkey, _ := audit.NoteVerifierKey(origin, s.Public())
	keys, _ := audit.NewNoteVerifiers(vkey)
	l, err := audit.Open(context.Background(), db, audit.Options{Origin: origin, Signer: ns})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fill(t, l, int(size), int(size)+3)
	checkpoint(t, l)
	rep, err := audit.VerifyStore(context.Background(), db, keys)
	if err != nil || rep.Records != size+3 {
		t.Fatalf("log after the crash: %+v, %v", rep, err)
	}
}
