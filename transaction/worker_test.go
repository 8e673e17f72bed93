package transaction_test

import (
	"context"
	"crypto"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store/testdb"
	"github.com/firma-cloud/firma/transaction"
	"github.com/firma-cloud/firma/verify/testpki"
)

// slowTSA is a real TSA (testpki) behind a hook that runs before each
// timestamp: it holds the signing worker on a document (B-T) for as long
// as a test needs, or moves the test clock as a slow TSA would.
type slowTSA struct {
	next  signer.Timestamper
	calls atomic.Int32
	hook  func(ctx context.Context, call int) error
}

func (s *slowTSA) Timestamp(ctx context.Context, h crypto.Hash, digest []byte) ([]byte, error) {
	n := int(s.calls.Add(1))
	if s.hook != nil {
		if err := s.hook(ctx, n); err != nil {
			return nil, err
		}
	}
	return s.next.Timestamp(ctx, h, digest)
}

// cadesDocs is n small text documents signed CAdES B-T: one timestamp
// each, one document at a time.
func cadesDocs(n int) []transaction.DocumentInput {
	docs := make([]transaction.DocumentInput, n)
	for i := range docs {
		docs[i] = transaction.DocumentInput{Name: fmt.Sprintf("documento-%02d.txt", i), MediaType: "text/plain",
			Content: []byte(fmt.Sprintf("Documento %d de la remesa\n", i)), Format: signer.FormatCAdES}
	}
	return docs
}

// waitFor polls cond (the store, through the service) until it holds; a
// minute is the bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after a minute", what)
		}
	}
}

// processed counts the documents with a stored outcome, as the portal's
// status shows them.
func processed(t *testing.T, e *env, portalID, id string) (transaction.State, int) {
	t.Helper()
	tx, err := e.svc.Get(e.ctx, portalID, id)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range tx.Documents {
		if d.Status != transaction.DocPending {
			n++
		}
	}
	if n != tx.Processed {
		t.Fatalf("Processed %d, %d documents with an outcome", tx.Processed, n)
	}
	return tx.State, n
}

// keyRecords checks the audit log of a transaction: every document in
// exactly one successful key.used record, and activations key.activated
// records, each after the first saying it resumes with how many documents
// already done; it returns those activations' document counts, in order.
func keyRecords(t *testing.T, e *env, portalID string, docs []transaction.DocumentInput, activations int) []int {
	t.Helper()
	page, err := e.audit.Query(e.ctx, audit.Filter{Portal: portalID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]int{}
	var activated []int
	for _, r := range page.Records {
		switch {
		case r.Event == audit.KeyActivated:
			// An activation after the first one of a transaction says it
			// resumes one cut short (a transient fault, a stop, a crash),
			// and how many documents were done by then.
			resumed := r.Details["resumed"] == "true"
			if done := len(docs) - len(r.Documents); resumed != (len(activated) > 0) ||
				(done > 0 && !resumed) || (resumed && r.Details["documents_done"] != fmt.Sprint(done)) {
				t.Errorf("key.activated of %d documents of %d: details %v", len(r.Documents), len(docs), r.Details)
			}
			activated = append(activated, len(r.Documents))
		case r.Event == audit.KeyUsed && r.Outcome == audit.Success:
			for _, d := range r.Documents {
				used[d.Name]++
			}
		}
	}
	for _, d := range docs {
		if used[d.Name] != 1 {
			t.Errorf("%s is in %d key.used records, want 1 (%v)", d.Name, used[d.Name], used)
		}
	}
	if len(used) != len(docs) {
		t.Errorf("key.used names %d documents, want %d", len(used), len(docs))
	}
	if len(activated) != activations {
		t.Errorf("%d key.activated records, want %d", len(activated), activations)
	}
	return activated
}

func wantAllSigned(t *testing.T, e *env, portalID, id string, n int) {
	t.Helper()
	r, err := e.svc.Results(e.ctx, portalID, id)
	if err != nil {
		t.Fatal(err)
	}
	if r.Transaction.State != transaction.StateDone || r.Transaction.Summary != transaction.SummaryAllSigned || len(r.Documents) != n {
		t.Fatalf("results: %s %s, %d documents", r.Transaction.State, r.Transaction.Summary, len(r.Documents))
	}
	for _, d := range r.Documents {
		if d.Status != transaction.DocSigned || len(d.Signature) == 0 || len(d.TimestampToken) == 0 {
			t.Fatalf("document %d: %s %s", d.Index, d.Status, d.Error)
		}
	}
}

// TestApproveReturnsBeforeSigning: Approve records the decision and
// returns while the worker waits on a slow TSA; the approving request's
// context ending (a closed tab) does not stop the signing; the portal
// sees the transaction signing with its progress, document by document;
// a resume scan meanwhile does not start a second signing; and every
// document is signed once. On SQLite and, when configured, PostgreSQL.
// Cost: 4 CAdES B-T signatures per backend.
func TestApproveReturnsBeforeSigning(t *testing.T) {
	// Tokens before anything loads SoftHSM2 (testpki does): it sees only
	// the tokens that exist then.
	toks := map[string]*softhsmtest.Token{}
	for _, b := range testdb.All() {
		toks[b.Name] = softhsmtest.New(t)
	}
	pki := testpki.New(t)
	testdb.Each(t, func(t *testing.T, b testdb.Backend) {
		gate := make(chan struct{})
		tsa := &slowTSA{next: pki.Timestamper(t), hook: func(ctx context.Context, _ int) error {
			select {
			case <-gate:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}}
		e := newEnvWith(t, b, toks[b.Name], func(o *transaction.Options) { o.Timestamper = tsa })
		p := e.portal("Portal", nil)
		citizen := e.advanced(12345678)
		docs := cadesDocs(4)
		c := e.create(p, citizen, docs...)
		sess, code := e.login(c.ID, citizen)

		rctx, closeTab := context.WithCancel(e.ctx)
		v, err := e.svc.Approve(rctx, c.ID, sess, code)
		closeTab()
		if err != nil || v.State != transaction.StateApproved {
			t.Fatalf("approve: %v %+v", err, v)
		}
		for i := range docs {
			waitFor(t, fmt.Sprintf("signing, %d of %d processed", i, len(docs)), func() bool {
				st, n := processed(t, e, p.ID, c.ID)
				return st == transaction.StateSigning && n == i && int(tsa.calls.Load()) == i+1
			})
			// The scan finds nothing due (the lease is live) and would
			// not queue it twice anyway.
			if err := e.svc.Scan(e.ctx); err != nil {
				t.Fatal(err)
			}
			gate <- struct{}{}
		}
		if err := e.svc.Wait(e.ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		wantAllSigned(t, e, p.ID, c.ID, len(docs))
		keyRecords(t, e, p.ID, docs, 1)
	})
}

// twoNodes is a node whose TSA runs hook, and a second node on the same
// store, token and clock whose TSA answers at once.
func twoNodes(t *testing.T, reg prometheus.Registerer, hook func(a, b *env, ctx context.Context, call int) error) (*env, *env) {
	t.Helper()
	tok := softhsmtest.New(t)
	pki := testpki.New(t)
	var a, b *env
	tsa := &slowTSA{next: pki.Timestamper(t), hook: func(ctx context.Context, n int) error { return hook(a, b, ctx, n) }}
	a = newEnvOn(t, tok, func(o *transaction.Options) { o.Timestamper, o.SignLease, o.Registerer = tsa, time.Minute, reg })
	b = &env{t: t, ctx: a.ctx, dir: t.TempDir(), tok: a.tok, clock: a.clock, tdb: a.tdb, otpKey: a.otpKey,
		mut: func(o *transaction.Options) { o.Timestamper = pki.Timestamper(t); o.SignLease = time.Minute }}
	b.open()
	t.Cleanup(b.close)
	return a, b
}

// TestLeaseRenewedWhileProgressing: a batch whose documents take 40 s
// each (the TSA moves the test clock) outlives its 1-minute lease many
// times over; the worker renews it with each stored document, so the
// other node's resume scans, run (and waited for) after every document,
// never take it over: one activation, one key.used per document. Cost:
// 5 CAdES B-T.
func TestLeaseRenewedWhileProgressing(t *testing.T) {
	var id atomic.Value
	a, _ := twoNodes(t, nil, func(a, b *env, ctx context.Context, _ int) error {
		a.clock.Add(40 * time.Second)
		if err := b.svc.Scan(ctx); err != nil {
			return err
		}
		return b.svc.Wait(ctx, id.Load().(string))
	})
	p := a.portal("Portal", nil)
	citizen := a.advanced(12345678)
	docs := cadesDocs(5)
	c := a.create(p, citizen, docs...)
	id.Store(c.ID)
	sess, code := a.login(c.ID, citizen)
	if _, err := a.approve(c.ID, sess, code); err != nil {
		t.Fatal(err)
	}
	wantAllSigned(t, a, p.ID, c.ID, len(docs))
	keyRecords(t, a, p.ID, docs, 1)
}

// TestStalledWorkerLosesLease: the worker stalls on its second document
// past its lease; the other node's scan takes the transaction over and
// signs what has no stored result (its key.activated names only those);
// the stalled worker, coming back, finds its lease gone and withholds
// what it signed. Each document has one key.used. Cost: 6 CAdES B-T.
func TestStalledWorkerLosesLease(t *testing.T) {
	var id atomic.Value
	reg := prometheus.NewRegistry()
	a, b := twoNodes(t, reg, func(a, b *env, ctx context.Context, call int) error {
		if call != 2 {
			return nil
		}
		a.clock.Add(2 * time.Minute)
		if err := b.svc.Scan(ctx); err != nil {
			return err
		}
		return b.svc.Wait(ctx, id.Load().(string))
	})
	p := a.portal("Portal", nil)
	citizen := a.advanced(12345678)
	docs := cadesDocs(4)
	c := a.create(p, citizen, docs...)
	id.Store(c.ID)
	sess, code := a.login(c.ID, citizen)
	if _, err := a.svc.Approve(a.ctx, c.ID, sess, code); err != nil {
		t.Fatal(err)
	}
	err := a.svc.Wait(a.ctx, c.ID)
	wantCode(t, err, transaction.CodeUnavailable)
	wantAllSigned(t, b, p.ID, c.ID, len(docs))
	if got := keyRecords(t, a, p.ID, docs, 2); len(got) == 2 && got[1] != len(docs)-1 {
		t.Errorf("the take-over activated %d documents, want the %d without a stored result", got[1], len(docs)-1)
	}
	if n := metricValue(t, reg, "firma_transaction_sign_lease_lost_total"); n != 1 {
		t.Errorf("leases lost: %v, want 1", n)
	}
}

// held is a TSA hook that holds the worker on the given call until
// release is closed or the worker's context ends, after closing reached.
func held(call int, reached, release chan struct{}) func(ctx context.Context, n int) error {
	return func(ctx context.Context, n int) error {
		if n != call {
			return nil
		}
		close(reached)
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// TestStopMidBatch stops the workers while one is on the second document
// of four. Gracefully (a deadline long enough): the worker finishes that
// document, stores both, and hands the transaction back, approved and due.
// Cut off (the deadline already passed): nothing after the first stored
// document is stored or released, and the lease is left to lapse. Either
// way a restart's Resume signs only what has no stored result (its
// key.activated names only those), and each document has one key.used.
// Cost: about 6 CAdES B-T per case.
func TestStopMidBatch(t *testing.T) {
	for _, tc := range []struct {
		name     string
		graceful bool
		stored   int // documents stored when the workers stopped
		state    transaction.State
	}{
		{"graceful", true, 2, transaction.StateApproved},
		{"cut off", false, 1, transaction.StateSigning},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := softhsmtest.New(t)
			pki := testpki.New(t)
			reached, release := make(chan struct{}), make(chan struct{})
			tsa := &slowTSA{next: pki.Timestamper(t), hook: held(2, reached, release)}
			e := newEnvOn(t, tok, func(o *transaction.Options) { o.Timestamper = tsa })
			p := e.portal("Portal", nil)
			citizen := e.advanced(12345678)
			docs := cadesDocs(4)
			c := e.create(p, citizen, docs...)
			sess, code := e.login(c.ID, citizen)
			if _, err := e.svc.Approve(e.ctx, c.ID, sess, code); err != nil {
				t.Fatal(err)
			}
			<-reached
			ctx, cancel := context.WithTimeout(e.ctx, time.Minute)
			if !tc.graceful {
				cancel()
			}
			stopped := make(chan error, 1)
			go func() { stopped <- e.svc.Stop(ctx) }()
			waitFor(t, "stopping", e.svc.Draining)
			if tc.graceful {
				close(release) // the document in progress ends
			}
			// Cut off, the worker's context ends instead.
			err := <-stopped
			cancel()
			if tc.graceful != (err == nil) {
				t.Fatalf("stop: %v", err)
			}
			st, n := processed(t, e, p.ID, c.ID)
			if st != tc.state || n != tc.stored {
				t.Fatalf("after the stop: %s with %d documents stored, want %s with %d", st, n, tc.state, tc.stored)
			}
			e.restart()
			if err := e.svc.Resume(e.ctx); err != nil {
				t.Fatal(err)
			}
			wantAllSigned(t, e, p.ID, c.ID, len(docs))
			if got := keyRecords(t, e, p.ID, docs, 2); len(got) == 2 && got[1] != len(docs)-tc.stored {
				t.Errorf("the resume activated %d documents, want the %d without a stored result", got[1], len(docs)-tc.stored)
			}
		})
	}
}

// TestHSMBackoff: the retry after a transient HSM fault grows from about
// 2 s, doubling, to a 1-minute cap, with jitter (half of each delay).
func TestHSMBackoff(t *testing.T) {
	for _, tc := range []struct {
		n        int
		min, max time.Duration
	}{
		{1, time.Second, 2 * time.Second},
		{2, 2 * time.Second, 4 * time.Second},
		{3, 4 * time.Second, 8 * time.Second},
		{5, 16 * time.Second, 32 * time.Second},
		{6, 30 * time.Second, time.Minute},
		{40, 30 * time.Second, time.Minute},
	} {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := transaction.HSMBackoff(tc.n)
			if d < tc.min || d > tc.max {
				t.Fatalf("retry %d: %s, want %s to %s", tc.n, d, tc.min, tc.max)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("retry %d: %d distinct delays in 200, want jitter", tc.n, len(seen))
		}
	}
}

// TestTransientFaultBacksOff: the TSA (the built-in one signs with the
// HSM) fails with the token away for three tries. Each try hands the
// transaction back, approved, due after a growing, jittered delay (1-2 s,
// 2-4 s, 4-8 s by the test clock) and never failed; the fourth signs the
// document once. With the fault lasting past Options.SignExpiry from the
// approval, the transaction expires instead. Cost: 1 CAdES B-T.
func TestTransientFaultBacksOff(t *testing.T) {
	for _, tc := range []struct {
		name   string
		faults int
		expire bool
	}{
		{"recovers", 3, false},
		{"expires", 1 << 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := softhsmtest.New(t)
			pki := testpki.New(t)
			tsa := &slowTSA{next: pki.Timestamper(t), hook: func(_ context.Context, n int) error {
				if n <= tc.faults {
					return fmt.Errorf("built-in TSA: %w", keystore.ErrTokenUnavailable)
				}
				return nil
			}}
			reg := prometheus.NewRegistry()
			e := newEnvOn(t, tok, func(o *transaction.Options) {
				o.Timestamper, o.SignExpiry, o.Registerer = tsa, 10*time.Minute, reg
			})
			p := e.portal("Portal", nil)
			citizen := e.advanced(12345678)
			docs := cadesDocs(1) // one TSA call per try
			c := e.create(p, citizen, docs...)
			sess, code := e.login(c.ID, citizen)
			if _, err := e.svc.Approve(e.ctx, c.ID, sess, code); err != nil {
				t.Fatal(err)
			}
			tries := 0
			for try := 1; ; try++ {
				tries = try
				err := e.svc.Wait(e.ctx, c.ID)
				st, err2 := e.db.Transaction(e.ctx, c.ID)
				if err2 != nil {
					t.Fatal(err2)
				}
				if transaction.State(st.State) != transaction.StateApproved {
					if tc.expire && err != nil {
						wantCode(t, err, transaction.CodeExpired)
					} else if !tc.expire && err != nil {
						t.Fatalf("try %d: %v", try, err)
					}
					break
				}
				if err != nil {
					wantCode(t, err, transaction.CodeUnavailable)
				}
				wait := st.ExpiresAt.Sub(e.clock.Now())
				if lo, hi := time.Second<<(try-1), 2*time.Second<<(try-1); try <= 5 && (wait < lo || wait > hi) {
					t.Fatalf("try %d: due in %s, want %s to %s", try, wait, lo, hi)
				}
				// Not due before its time.
				if err := e.svc.Scan(e.ctx); err != nil {
					t.Fatal(err)
				}
				e.svc.Wait(e.ctx, c.ID) // the last attempt's outcome, unless a new one ran
				if int(tsa.calls.Load()) != try {
					t.Fatalf("try %d: signed again before its backoff (%d TSA calls)", try, tsa.calls.Load())
				}
				e.clock.Add(wait + time.Millisecond)
				if err := e.svc.Scan(e.ctx); err != nil {
					t.Fatal(err)
				}
				if try > 100 {
					t.Fatal("still approved after 100 tries")
				}
			}
			if tc.expire {
				tx, err := e.svc.Get(e.ctx, p.ID, c.ID)
				if err != nil || tx.State != transaction.StateExpired || tx.ErrorCode != transaction.CodeExpired ||
					tx.Documents[0].Status != transaction.DocNotProcessed {
					t.Fatalf("after the fault outlasted the expiry: %v %+v", err, tx)
				}
				if over := e.clock.Now().Sub(tx.CreatedAt); over < 10*time.Minute || tries < 10 {
					t.Fatalf("expired after %d tries, %s", tries, over)
				}
				return
			}
			if got := int(tsa.calls.Load()); got != tc.faults+len(docs) {
				t.Errorf("%d TSA calls, want %d", got, tc.faults+len(docs))
			}
			wantAllSigned(t, e, p.ID, c.ID, len(docs))
			keyRecords(t, e, p.ID, docs, tries)
			for name, want := range map[string]float64{"firma_transaction_sign_retries_total": float64(tries - 1),
				"firma_transaction_sign_workers": transaction.DefaultSignWorkers, "firma_transaction_sign_workers_busy": 0,
				"firma_transaction_sign_queue_depth": 0, "firma_transaction_sign_lease_lost_total": 0} {
				if got := metricValue(t, reg, name); got != want {
					t.Errorf("%s = %v, want %v", name, got, want)
				}
			}
		})
	}
}

// metricValue sums a metric's samples in reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		sum := 0.0
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		return sum
	}
	t.Fatalf("no metric %s", name)
	return 0
}
