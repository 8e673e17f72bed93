package transaction_test

import (
	"sync"
	"testing"
	"time"

	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/portal"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store/testdb"
	"github.com/firma-cloud/firma/transaction"
)

// node returns a second firmad node beside e: every part built again on
// the same token and a new handle on the same database, sharing nothing
// with e in memory, as a second process would.
func (e *env) node() *env {
	e.t.Helper()
	n := &env{t: e.t, ctx: e.ctx, dir: e.t.TempDir(), tok: e.tok, clock: e.clock, mut: e.mut, tdb: e.tdb, otpKey: e.otpKey}
	n.open()
	e.t.Cleanup(n.close)
	return n
}

// TestTwoNodes runs the steps of transactions on two nodes sharing the
// store and the token, on each backend: whichever node serves a step, the
// transaction moves on once, OTP attempts count across nodes, and so does
// the portal's rate limit.
func TestTwoNodes(t *testing.T) {
	testdb.Each(t, func(t *testing.T, b testdb.Backend) {
		a := newEnvWith(t, b, softhsmtest.New(t), nil)
		n2 := a.node()
		p := a.portal("Portal", func(s *portal.Spec) { s.Limits.RatePerMin = 5 })
		citizen := a.advanced(12345678)
		docs, contents := threeDocs(t)

		// Created on A, approved on B, collected on A.
		c := a.create(p, citizen, docs...)
		sess, code := n2.login(c.ID, citizen)
		if _, err := n2.approve(c.ID, sess, code); err != nil {
			t.Fatalf("approve on the second node: %v", err)
		}
		r, err := a.svc.Results(a.ctx, p.ID, c.ID)
		if err != nil || r.Transaction.State != transaction.StateDone {
			t.Fatalf("results on the first node: %v", err)
		}
		verifyResults(t, a, r, contents)

		// Three wrong codes spread over both nodes fail the transaction.
		c = n2.create(p, citizen, docs...)
		sess, code = a.login(c.ID, citizen)
		wrong := "000000"
		if wrong == code {
			wrong = "111111"
		}
		for i, step := range []struct {
			node *env
			want transaction.Code
		}{{a, transaction.CodeOTPInvalid}, {n2, transaction.CodeOTPInvalid}, {a, transaction.CodeOTPLocked}, {n2, transaction.CodeOTPLocked}} {
			guess := wrong
			if i == 3 {
				guess = code // even the right code, once locked
			}
			_, err := step.node.svc.Approve(a.ctx, c.ID, sess, guess)
			wantCode(t, err, step.want)
		}
		for _, node := range []*env{a, n2} {
			tx, err := node.svc.Get(a.ctx, p.ID, c.ID)
			if err != nil || tx.State != transaction.StateFailed || tx.ErrorCode != transaction.CodeOTPLocked {
				t.Fatalf("after three wrong codes: %+v, %v; want failed otp_locked", tx, err)
			}
		}
		// The lock is the citizen's channel's, on both nodes: a new
		// transaction gets no code until the lockout ends. (Before the one
		// attempt policy each transaction had its own three tries, and
		// the steps below ran at once.)
		locked := a.create(p, citizen, docs...)
		for _, node := range []*env{a, n2} {
			s, err := node.svc.Authenticate(a.ctx, locked.ID, citizen, password)
			if err != nil {
				t.Fatal(err)
			}
			_, err = node.svc.SendOTP(a.ctx, locked.ID, s.Token)
			wantCode(t, err, transaction.CodeOTPChannelLocked)
		}
		a.clock.Add(a.svc.Attempts().Rules().Lockout)

		// The same code sent to both nodes at once signs once.
		c = a.create(p, citizen, docs...)
		sess, code = n2.login(c.ID, citizen)
		const racers = 8
		var wg sync.WaitGroup
		codes := make([]transaction.Code, racers)
		for i := range racers {
			node := []*env{a, n2}[i%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := node.svc.Approve(a.ctx, c.ID, sess, code)
				codes[i] = transaction.CodeOf(err)
			}()
		}
		wg.Wait()
		ok := 0
		for _, got := range codes {
			switch got {
			case "":
				ok++
			case transaction.CodeAlreadyUsed:
			default:
				t.Errorf("concurrent approval: %s", got)
			}
		}
		if ok != 1 {
			t.Fatalf("%d approvals succeeded across the nodes, want 1 (%v)", ok, codes)
		}
		for _, node := range []*env{a, n2} {
			if err := node.svc.Wait(a.ctx, c.ID); err != nil {
				t.Fatalf("signing: %v", err)
			}
		}
		if r, err := n2.svc.Results(a.ctx, p.ID, c.ID); err != nil || len(r.Documents) != 3 {
			t.Fatalf("results: %v", err)
		}

		// The rate limit is the portal's, not a node's: with a fresh
		// minute, five of ten creations over both nodes get through.
		a.clock.Add(61 * time.Second)
		created := make([]transaction.Code, 10)
		for i := range created {
			node := []*env{a, n2}[i%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := node.svc.Create(a.ctx, p, transaction.CreateRequest{CitizenID: citizen, Documents: docs[:1], OKURL: okURL, ErrorURL: errURL})
				created[i] = transaction.CodeOf(err)
			}()
		}
		wg.Wait()
		ok = 0
		for _, got := range created {
			switch got {
			case "":
				ok++
			case transaction.CodeRateLimited:
			default:
				t.Errorf("create: %s", got)
			}
		}
		if ok != 5 {
			t.Fatalf("%d creations got through, want the portal's 5 a minute (%v)", ok, created)
		}
	})
}

// TestTwoNodesShareOTPBudget fails codes of several transactions of one
// citizen at once on two nodes sharing the database: the citizen's
// channel counts MaxFailures wrong codes in total, never more, whichever
// node and transaction they came through; the rest are refused unchecked.
func TestTwoNodesShareOTPBudget(t *testing.T) {
	testdb.Each(t, func(t *testing.T, b testdb.Backend) {
		a := newEnvWith(t, b, softhsmtest.New(t), nil)
		n2 := a.node()
		p := a.portal("Portal", nil)
		citizen := a.advanced(23456789)
		docs, _ := threeDocs(t)
		max := a.svc.Attempts().Rules().MaxFailures
		const txs, perTx = 6, 3
		type tx struct{ id, sess, wrong string }
		var all []tx
		for i := range txs {
			node := []*env{a, n2}[i%2]
			c := node.create(p, citizen, docs[:1]...)
			sess, code := node.login(c.ID, citizen)
			wrong := "000000"
			if code == wrong {
				wrong = "111111"
			}
			all = append(all, tx{c.ID, sess, wrong})
		}
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			codes = map[transaction.Code]int{}
		)
		for i := range txs * perTx {
			x, node := all[i%txs], []*env{a, n2}[i%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := node.svc.Approve(a.ctx, x.id, x.sess, x.wrong)
				mu.Lock()
				codes[transaction.CodeOf(err)]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		for c := range codes {
			switch c {
			case transaction.CodeOTPInvalid, transaction.CodeOTPLocked, transaction.CodeOTPChannelLocked:
			default:
				t.Errorf("unexpected answer %q (%d times)", c, codes[c])
			}
		}
		// At most max-1 "wrong code, tries left" answers: a counted code
		// whose transaction another one failed meanwhile is answered as
		// locked.
		if codes[transaction.CodeOTPInvalid] > max-1 {
			t.Fatalf("%d wrong-code answers, want at most %d (%v)", codes[transaction.CodeOTPInvalid], max-1, codes)
		}
		tries, failed := 0, 0
		for _, x := range all {
			st, err := a.db.Transaction(a.ctx, x.id)
			if err != nil {
				t.Fatal(err)
			}
			tries += st.OTPTries
			if st.State == string(transaction.StateFailed) && st.ErrorCode == string(transaction.CodeOTPLocked) {
				failed++
			} else if st.State != string(transaction.StateOTPSent) {
				t.Fatalf("transaction %s is %s", x.id, st.State)
			}
		}
		if tries > max || failed != 1 {
			t.Fatalf("%d wrong codes counted on the transactions and %d failed; want at most %d and 1 (%v)", tries, failed, max, codes)
		}
		// The citizen's counter, the one that decides: exactly max.
		n, _, until, err := a.db.Attempts(a.ctx, policy.OTPScope(citizen))
		if err != nil || n != max || until.IsZero() {
			t.Fatalf("the citizen's counter: %d, locked until %s, %v", n, until, err)
		}
	})
}
