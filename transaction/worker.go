package transaction

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/firma-cloud/firma/store"
)

// Defaults of the signing workers' options.
const (
	DefaultSignWorkers = 2
	DefaultSignQueue   = 64
	DefaultSignLease   = time.Minute
	DefaultSignExpiry  = time.Hour
)

// The transient-HSM retry backoff: the first retry within hsmRetryBase,
// doubling per consecutive fault of the same transaction up to
// hsmRetryCap, each delay jittered so that transactions a token outage
// interrupted together do not come back together.
const (
	hsmRetryBase = 2 * time.Second
	hsmRetryCap  = time.Minute
)

// errStopping is a queued job's outcome when the workers stopped before
// it was taken: the transaction stays approved and due, for the next
// start or another node.
var errStopping = errors.New("signing workers stopping: the transaction is left for another node or the next start")

// workers signs approved transactions off the request that approved them:
// a bounded pool fed by Approve (at once) and by the resume scan (approved
// transactions of other nodes or from before a restart, and leases that
// lapsed). The signing lease in the store is what keeps two workers, here
// or on another node, from signing one transaction; jobs only spares this
// process a second job for a transaction it already has.
type workers struct {
	queue    chan string
	jobs     sync.Map // transaction id -> *job: queued, being signed, or last handed back here
	retries  sync.Map // transaction id -> int, consecutive transient HSM faults here
	started  atomic.Bool
	draining atomic.Bool
	once     sync.Once
	stop     chan struct{}
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	busy     atomic.Int64
}

// job is one transaction to sign; done is closed when a worker is through
// with it (signed, failed, handed back or left for later).
type job struct {
	done     chan struct{}
	err      error
	takeover bool // take the lease even if it has not run out (start-up Resume)
}

// Start starts the signing workers (Options.SignWorkers of them). Their
// context is ctx without its cancellation: a request's or a start-up
// step's end never stops a signature half-way; Stop does. A Service not
// started signs nothing until the first approval starts it with
// context.Background, so that a Service used without firmad's wiring
// (tests, tools) still signs.
func (s *Service) Start(ctx context.Context) {
	if s.w.draining.Load() {
		return // stopped for good
	}
	s.w.once.Do(func() {
		wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		s.w.cancel = cancel
		s.w.started.Store(true)
		for range s.opt.SignWorkers {
			s.w.wg.Add(1)
			go s.work(wctx)
		}
		s.log.InfoContext(ctx, "signing workers started", "workers", s.opt.SignWorkers, "lease", s.opt.SignLease)
	})
}

// Stop stops the signing workers: no new transaction is taken, and each
// worker hands back what it holds at the next document boundary (the
// documents signed so far stored and released, the transaction approved
// again and due at once, for another node or the next start). If ctx
// ends first, the documents in progress are cut off: their lease lapses
// after Options.SignLease and whoever resumes signs them again; nothing
// cut off was released. Queued transactions stay approved in the store.
func (s *Service) Stop(ctx context.Context) error {
	if !s.w.draining.CompareAndSwap(false, true) {
		return nil
	}
	// Whoever starts the workers from now on is turned away by draining;
	// once.Do waits for a start under way.
	s.w.once.Do(func() {})
	if !s.w.started.Load() {
		return nil
	}
	close(s.w.stop)
	done := make(chan struct{})
	go func() {
		s.w.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		s.log.WarnContext(ctx, "signing workers cut off at the shutdown deadline; their leases lapse", "lease", s.opt.SignLease)
		s.w.cancel()
		<-done
		err = ctx.Err()
	}
	s.w.cancel()
	// Whatever is still queued was never taken.
	for {
		select {
		case id := <-s.w.queue:
			s.complete(id, errStopping)
		default:
			return err
		}
	}
}

// enqueue hands a transaction to the workers without waiting, starting
// them if nobody did. It returns the job (one already there for the
// transaction, if any), or nil when the queue is full or the workers are
// stopping: the transaction stays approved and due, and the resume scan
// offers it again.
func (s *Service) enqueue(id string, takeover bool) *job {
	if s.w.draining.Load() {
		return nil
	}
	s.Start(context.Background())
	j := &job{done: make(chan struct{}), takeover: takeover}
	for {
		old, loaded := s.w.jobs.LoadOrStore(id, j)
		if !loaded {
			break
		}
		select {
		case <-old.(*job).done:
			// The last attempt here handed it back: this one replaces it.
			if s.w.jobs.CompareAndSwap(id, old, j) {
				goto queue
			}
		default:
			return old.(*job)
		}
	}
queue:
	select {
	case s.w.queue <- id:
		return j
	default:
		s.w.jobs.CompareAndDelete(id, j)
		s.m.queueFull.Inc()
		return nil
	}
}

// Wait waits until this process's workers are through with the
// transaction, and returns how their last attempt ended: nil when it is
// signed, failed for good or held by another node, an error when it was
// handed back (a transient HSM or audit fault, a store failure, a stop)
// and resumes on its own. It returns nil at once when no worker here had
// it, and ctx's error if ctx ends first. Approve does not wait: callers
// that want the outcome now (tools, tests) do.
func (s *Service) Wait(ctx context.Context, id string) error {
	v, ok := s.w.jobs.Load(id)
	if !ok {
		return nil
	}
	j := v.(*job)
	select {
	case <-j.done:
		return j.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Service) work(ctx context.Context) {
	defer s.w.wg.Done()
	for {
		select {
		case <-s.w.stop:
			return
		case id := <-s.w.queue:
			if s.w.draining.Load() {
				s.complete(id, errStopping)
				continue
			}
			s.w.busy.Add(1)
			s.complete(id, s.signID(ctx, id))
			s.w.busy.Add(-1)
		}
	}
}

func (s *Service) signID(ctx context.Context, id string) error {
	t, err := s.st.Transaction(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return fail(CodeUnavailable, "the transaction store failed; retry", err)
	}
	takeover := false
	if v, ok := s.w.jobs.Load(id); ok {
		takeover = v.(*job).takeover
	}
	err = s.sign(ctx, t, takeover)
	if err != nil && ctx.Err() == nil && !s.w.draining.Load() {
		s.log.WarnContext(ctx, "signing left for later", "transaction", id, "err", err)
	}
	return err
}

// complete ends the transaction's job with err. A job that handed the
// transaction back stays, done, for Wait to report until the next
// attempt replaces it; one that got through goes. (What stays is one
// entry per transaction handed back here and finished elsewhere.)
func (s *Service) complete(id string, err error) {
	v, ok := s.w.jobs.Load(id)
	if !ok {
		return
	}
	j := v.(*job)
	select {
	case <-j.done:
		return // an earlier attempt's, already reported
	default:
	}
	j.err = err
	close(j.done)
	if err == nil {
		s.w.jobs.CompareAndDelete(id, j)
	}
}

// scan offers the workers the approved transactions that are due: approved
// on another node or before a restart, handed back after a fault (once
// their backoff is over), or signing with a lease that lapsed. It takes no
// more than the queue has room for; the rest wait for the next scan.
func (s *Service) scan(ctx context.Context) error {
	room := cap(s.w.queue) - len(s.w.queue)
	if room <= 0 || s.w.draining.Load() {
		return nil
	}
	ts, err := s.st.TransactionsDue(ctx, []string{string(StateApproved), string(StateSigning)}, s.now(), room)
	if err != nil {
		return err
	}
	for _, t := range ts {
		if s.enqueue(t.ID, false) == nil {
			break
		}
	}
	return nil
}

// hsmBackoff is how long a transaction waits after its n-th consecutive
// transient HSM fault (n from 1): hsmRetryBase doubling up to hsmRetryCap,
// with "equal jitter" (half fixed, half random) so that the delay still
// grows while retries of many transactions spread out.
func hsmBackoff(n int) time.Duration {
	d := hsmRetryCap
	if n < 16 {
		d = min(hsmRetryCap, hsmRetryBase<<max(0, n-1))
	}
	return d/2 + rand.N(d/2+1)
}

// nextRetry counts one more transient fault of the transaction and
// returns its backoff. The count is this process's: another node taking
// the transaction over starts its own.
func (s *Service) nextRetry(id string) (int, time.Duration) {
	n := 1
	if v, ok := s.w.retries.Load(id); ok {
		n = v.(int) + 1
	}
	s.w.retries.Store(id, n)
	return n, hsmBackoff(n)
}
