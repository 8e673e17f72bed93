package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/firma-cloud/firma/store/postgres/pgtest"
)

// faultSeed is the seed of the fault suite's random choices: FIRMA_FAULT_SEED
// replays a failure, otherwise it is new each time; either way it is
// logged.
func faultSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("FIRMA_FAULT_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("FIRMA_FAULT_SEED: %v", err)
		}
	}
	t.Logf("seed %d (replay with FIRMA_FAULT_SEED=%d)", seed, seed)
	return seed
}

// TestSIGKILLDuringBatch kills firmad with SIGKILL at a random point of
// the signing of a 50-document batch, 20 times, and restarts it on the
// same state each time: every transaction must end done with each
// document signed once (its signature verifying against it), and the
// audit log must verify and account for every signature with exactly one
// key.used (audit.CheckSigned). Two states run in parallel, ten kills
// each; the kill delays are drawn up to the signing time of a batch
// signed without a kill, from a logged seed. Cost: about 60 s
// on two busy cores (two inits, 22 firmad starts, 22 batches).
func TestSIGKILLDuringBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("fault suite: 20 firmad restarts")
	}
	seed := faultSeed(t)
	for w := range 2 {
		t.Run(fmt.Sprintf("state%d", w), func(t *testing.T) {
			t.Parallel()
			killRuns(t, newFaultState(t), rand.New(rand.NewPCG(seed, uint64(w))), 10)
		})
	}
}

// TestSIGKILLDuringBatchPostgres is TestSIGKILLDuringBatch on PostgreSQL,
// for four kills: the store whose commits the kill interrupts is another
// process, which survives. Cost: about 25 s (PostgreSQL started once per
// test binary, six firmad starts).
func TestSIGKILLDuringBatchPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("fault suite: firmad restarts")
	}
	killRuns(t, newFaultStateOn(t, pgtest.New(t)), rand.New(rand.NewPCG(faultSeed(t), 2)), 4)
}

func killRuns(t *testing.T, s *faultState, rng *rand.Rand, runs int) {
	d := s.run(t)
	s.createPortal(t, d)
	const n = 50

	// Two batches without a kill, to learn how long signing takes here
	// once the citizen's certificate is issued (the first issues it).
	signing := time.Minute
	for i := range 2 {
		docs := batch(fmt.Sprintf("calibration %d", i), n)
		id := s.create(t, d, docs, "")
		a := s.signIn(t, d, id)
		start := time.Now()
		if code, _, err := a.approve("http://" + d.http); err != nil || code != http.StatusSeeOther {
			t.Fatalf("approve: %d %v", code, err)
		}
		if st, _ := s.waitFinalEvery(t, d, id, 60*time.Second, 5*time.Millisecond); st != "done" {
			t.Fatalf("calibration batch ended %s", st)
		}
		signing = min(signing, time.Since(start)) // the least disturbed by the other state's work
		checkSigned(t, s.result(t, d, id), docs, 2)
	}
	t.Logf("a %d-document batch took %v from approval to done", n, signing)
	signedDocs := 2 * n
	recording := 0 // documents a kill left stored hidden, before their key.used was confirmed

	for run := range runs {
		docs := batch(fmt.Sprintf("run %d", run), n)
		id := s.create(t, d, docs, "")
		a := s.signIn(t, d, id)
		delay := time.Duration(rng.Int64N(int64(signing)))
		approved := make(chan error, 1)
		go func() {
			_, _, err := a.approve("http://" + d.http)
			approved <- err
		}()
		time.Sleep(delay)
		if err := d.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-d.done
		<-approved // ends with the connection, if the kill came first
		var before string
		if st, err := s.stateInStore(t, id); err == nil {
			before = st
		}
		var statuses map[string]int
		if c, err := s.statusesInStore(t, id); err == nil {
			statuses = c
			recording += c["recording"]
		}
		restart := time.Now()
		d = s.run(t)
		restarted := time.Since(restart)
		st, err := s.txState(t, d, id)
		if err != nil {
			t.Fatal(err)
		}
		if st == "otp_sent" || st == "authenticated" {
			// Killed before the approval was taken: the citizen approves
			// again once the page is back, with the same code.
			if code, _, err := a.approve("http://" + d.http); err != nil || code != http.StatusSeeOther {
				t.Fatalf("run %d: approve again after the restart: %d %v", run, code, err)
			}
		}
		st, took := s.waitFinal(t, d, id, 60*time.Second)
		t.Logf("run %d: killed %v after approving (state then %q, documents %v); firmad back in %v, done %v later", run, delay.Round(time.Millisecond), before,
			statuses, restarted.Round(time.Millisecond), took.Round(time.Millisecond))
		if st != "done" {
			t.Fatalf("run %d (kill after %v): transaction ended %s\n%s", run, delay, st, d.stderr)
		}
		checkSigned(t, s.result(t, d, id), docs, 2)
		signedDocs += n
	}
	key := s.verifierKey(t, d)
	if code := d.stop(t); code != 0 {
		t.Fatalf("firmad exit %d after SIGTERM\n%s", code, d.stderr)
	}
	rep := s.checkAudit(t, key)
	t.Logf("%d documents were left recording by a kill (signed and stored, their key.used confirmed or written on resume)", recording)
	if rep.Signed != signedDocs {
		t.Fatalf("audit check saw %d signed documents, want %d", rep.Signed, signedDocs)
	}
}
