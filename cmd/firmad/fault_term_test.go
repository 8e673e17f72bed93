package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERMUnderLoad approves several batches at once and sends SIGTERM
// at a random moment (seeded, logged) while they are signed: firmad must
// exit 0 within listen.shutdown_timeout (plus a margin for the process to
// go), every approval must either complete or fail cleanly (a refused
// connection or a non-500 answer), and after a restart every transaction
// must end done with each document signed once, the audit log verifying
// and accounting for every signature. Cost: about 15 s (two firmad
// starts, 6 batches of 20).
func TestSIGTERMUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("fault suite")
	}
	const (
		shutdown = 10 * time.Second
		batches  = 6
		n        = 20
	)
	rng := rand.New(rand.NewPCG(faultSeed(t), 0))
	s := newFaultState(t, [2]string{"    shutdown_timeout: 30s\n", fmt.Sprintf("    shutdown_timeout: %s\n", shutdown)})
	d := s.run(t)
	s.createPortal(t, d)
	ids := make([]string, batches)
	docs := make([][]faultDoc, batches)
	as := make([]*approval, batches)
	for i := range batches {
		docs[i] = batch(fmt.Sprintf("term %d", i), n)
		ids[i] = s.create(t, d, docs[i], "")
		as[i] = s.signIn(t, d, ids[i])
	}
	codes := make([]int, batches)
	errs := make([]error, batches)
	var wg sync.WaitGroup
	base := "http://" + d.http
	for i := range batches {
		wg.Go(func() { codes[i], _, errs[i] = as[i].approve(base) })
	}
	delay := time.Duration(rng.Int64N(int64(200 * time.Millisecond)))
	time.Sleep(delay)
	sent := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		if code := exitCode(err); code != 0 {
			t.Fatalf("exit %d after SIGTERM\n%s", code, d.stderr)
		}
	case <-time.After(shutdown + 10*time.Second):
		t.Fatalf("firmad still running %v after SIGTERM (shutdown_timeout %v)\n%s", shutdown+10*time.Second, shutdown, d.stderr)
	}
	t.Logf("SIGTERM %v after the approvals began; firmad exited %v later", delay.Round(time.Millisecond), time.Since(sent).Round(time.Millisecond))
	wg.Wait()
	for i := range batches {
		switch {
		case errs[i] != nil:
			t.Logf("approval %d: %v", i, errs[i])
		case codes[i] == http.StatusInternalServerError:
			t.Errorf("approval %d: 500 during shutdown", i)
		default:
			t.Logf("approval %d: %d", i, codes[i])
		}
	}

	d = s.run(t)
	for i := range batches {
		st, err := s.txState(t, d, ids[i])
		if err != nil {
			t.Fatal(err)
		}
		if st == "otp_sent" {
			// The approval did not get in before the stop: the code stands.
			if code, _, err := as[i].approve("http://" + d.http); err != nil || code != http.StatusSeeOther {
				t.Fatalf("approve %d again after the restart: %d %v", i, code, err)
			}
		}
		if st, _ := s.waitFinal(t, d, ids[i], 60*time.Second); st != "done" {
			t.Fatalf("transaction %d ended %s\n%s", i, st, d.stderr)
		}
		checkSigned(t, s.result(t, d, ids[i]), docs[i], 1)
	}
	key := s.verifierKey(t, d)
	if code := d.stop(t); code != 0 {
		t.Fatalf("firmad exit %d\n%s", code, d.stderr)
	}
	if rep := s.checkAudit(t, key); rep.Signed != batches*n {
		t.Fatalf("audit check saw %d signed documents, want %d", rep.Signed, batches*n)
	}
}
