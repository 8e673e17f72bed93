package keystore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/pkcs11"
	"golang.org/x/sync/semaphore"
)

// Pool is a bounded set of logged-in PKCS#11 sessions on one token.
//
// The token is logged in once; login state belongs to the application, not
// to a session, so the pool never calls C_Logout while serving. A session
// that returned a session-level error is closed and never handed out again
// (crypto11 issue #142 is what happens otherwise). If the token goes away,
// the pool closes everything, re-initialises the module (rate-limited, see
// module.reinit), finds the token again by label and logs in again, with a
// short bounded backoff within one call; while it stays gone callers get
// ErrTokenUnavailable, and the first call after it is back succeeds.
type Pool struct {
	mod     *module
	ctx     *pkcs11.Ctx
	label   string
	pin     string
	log     *slog.Logger
	sem     *semaphore.Weighted
	size    int
	timeout time.Duration
	m       *metrics

	mu       sync.Mutex
	slot     uint
	gen      uint64 // bumped whenever every session was dropped
	modGen   uint64 // the module generation the sessions belong to
	idle     []*session
	open     int
	loggedIn bool
	closed   bool
	onEvict  []func(id uint64)
	onReset  []func()

	nextID atomic.Uint64
}

// session is one open PKCS#11 session.
type session struct {
	h   pkcs11.SessionHandle
	id  uint64
	gen uint64
}

// errClass says what a PKCS#11 error means for the session that returned it.
type errClass int

const (
	classOK      errClass = iota // success or an error about the request
	classSession                 // the session is unusable: evict it
	classLogin                   // the application is no longer logged in
	classToken                   // the token or slot went away
)

// errObjectLost marks a token object that is missing while the store says
// its key is live: the token's storage went away (SoftHSM2 then shows an
// empty token) or an HSM is failing over. It is a token fault, not a
// destroyed key.
var errObjectLost = fmt.Errorf("%w: key object missing while the key is live", ErrTokenUnavailable)

func classify(err error) errClass {
	if errors.Is(err, errObjectLost) {
		return classToken
	}
	var e pkcs11.Error
	if !errors.As(err, &e) {
		return classOK
	}
	switch e {
	case pkcs11.CKR_SESSION_HANDLE_INVALID, pkcs11.CKR_SESSION_CLOSED,
		pkcs11.CKR_OPERATION_ACTIVE, pkcs11.CKR_DEVICE_MEMORY,
		pkcs11.CKR_GENERAL_ERROR, pkcs11.CKR_FUNCTION_FAILED:
		return classSession
	case pkcs11.CKR_USER_NOT_LOGGED_IN:
		return classLogin
	case pkcs11.CKR_DEVICE_REMOVED, pkcs11.CKR_TOKEN_NOT_PRESENT, pkcs11.CKR_TOKEN_NOT_RECOGNIZED,
		pkcs11.CKR_SLOT_ID_INVALID, pkcs11.CKR_DEVICE_ERROR, pkcs11.CKR_CRYPTOKI_NOT_INITIALIZED:
		return classToken
	}
	return classOK
}

// newPool finds the token by label, opens one session and logs in, so that a
// wrong PIN or a missing token is reported at start-up.
func newPool(ctx context.Context, mod *module, label, pin string, size int, timeout time.Duration, m *metrics, log *slog.Logger) (*Pool, error) {
	pl := &Pool{mod: mod, ctx: mod.ctx, label: label, pin: pin, log: log, size: size, timeout: timeout, m: m,
		sem: semaphore.NewWeighted(int64(size)), modGen: mod.gen.Load()}
	mod.rw.RLock()
	slot, err := findSlot(pl.ctx, label)
	mod.rw.RUnlock()
	if err != nil {
		return nil, err
	}
	pl.slot = slot
	// Exit early on a bad PIN: retrying would lock the token.
	err = pl.Do(ctx, func(*session) error { return nil })
	if err != nil {
		return nil, err
	}
	return pl, nil
}

func findSlot(p *pkcs11.Ctx, label string) (uint, error) {
	slots, err := p.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("list slots: %w: %w", ErrTokenUnavailable, err)
	}
	for _, s := range slots {
		ti, err := p.GetTokenInfo(s)
		if err != nil {
			continue
		}
		if ti.Label == label {
			return s, nil
		}
	}
	return 0, fmt.Errorf("token %q: %w: no slot holds a token with that label", label, ErrTokenUnavailable)
}

// Size is the number of sessions the pool may hold at once.
func (p *Pool) Size() int { return p.size }

// tryAttempts and tryBackoff bound the work of one call against a token
// that went away: three tries, 50 ms then 100 ms apart, so a caller learns
// of an outage within a fraction of a second, and a token that is back
// (or a module re-initialised by another caller) is found again by the
// same call.
const (
	tryAttempts = 3
	tryBackoff  = 50 * time.Millisecond
)

// Do runs fn with a logged-in session, waiting at most the pool's acquire
// timeout for one. If fn fails because the session, the login or the token
// went bad, the session is dropped and fn runs again on a fresh one; when
// the token is missing the module is re-initialised first.
func (p *Pool) Do(ctx context.Context, fn func(s *session) error) error {
	start := time.Now()
	// A free session is the common case: take it without the timer that
	// bounding the wait costs.
	if !p.sem.TryAcquire(1) {
		actx, cancel := context.WithTimeout(ctx, p.timeout)
		err := p.sem.Acquire(actx, 1)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("wait for HSM session: %w", ctx.Err())
			}
			p.m.busy.Inc()
			return fmt.Errorf("wait for HSM session after %s: %w", p.timeout, ErrBusy)
		}
	}
	defer p.sem.Release(1)
	p.m.wait.Observe(time.Since(start).Seconds())
	p.m.inUse.Inc()
	defer p.m.inUse.Dec()

	var last error
	wait := tryBackoff
	for attempt := 0; attempt < tryAttempts; attempt++ {
		if attempt > 0 && classify(last) == classToken || errors.Is(last, ErrTokenUnavailable) {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return last
			case <-t.C:
			}
			wait *= 2
		}
		p.syncModule()
		p.mod.rw.RLock()
		s, err := p.get()
		if err != nil {
			p.mod.rw.RUnlock()
			if !errors.Is(err, ErrTokenUnavailable) {
				return err
			}
			p.m.errors.WithLabelValues("token").Inc()
			p.tokenLost(err)
			last = err
			continue
		}
		err = p.run(fn, s)
		switch classify(err) {
		case classOK:
			p.put(s)
			p.mod.ok()
			return err
		case classSession:
			p.m.errors.WithLabelValues("session").Inc()
			p.log.Warn("evicting HSM session", "session", s.id, "err", err)
			p.evict(s)
			if errors.Is(err, pkcs11.Error(pkcs11.CKR_SESSION_HANDLE_INVALID)) || errors.Is(err, pkcs11.Error(pkcs11.CKR_SESSION_CLOSED)) {
				// Whatever closed this one may have closed the others.
				p.pruneIdle()
			}
		case classLogin:
			p.m.errors.WithLabelValues("login").Inc()
			p.log.Warn("HSM login lost, logging in again", "err", err)
			p.put(s)
			p.mu.Lock()
			p.loggedIn = false
			p.mu.Unlock()
		case classToken:
			p.m.errors.WithLabelValues("token").Inc()
			p.evict(s)
			p.reset()
			p.tokenLost(err)
		}
		last = err
	}
	if classify(last) != classOK && !errors.Is(last, ErrTokenUnavailable) {
		// Callers tell a device fault apart by this sentinel alone.
		return fmt.Errorf("%w: %w", ErrTokenUnavailable, last)
	}
	return last
}

// run calls fn with the module's read lock held, and lets go of it even if
// fn panics, so that a panic cannot stop the module from ever being
// re-initialised or closed.
func (p *Pool) run(fn func(s *session) error, s *session) error {
	defer p.mod.rw.RUnlock()
	return fn(s)
}

// tokenLost re-initialises the module (at most once per backoff period,
// shared by every pool on it), so that the next get finds the token again
// if it is back.
func (p *Pool) tokenLost(cause error) {
	p.mu.Lock()
	seen := p.modGen
	p.mu.Unlock()
	did, err := p.mod.reinit(seen)
	switch {
	case err != nil:
		p.log.Error("HSM module re-initialisation failed", "token", p.label, "err", err)
	case did:
		p.log.Warn("HSM token lost, module re-initialised", "token", p.label, "cause", cause)
	}
}

// syncModule drops every session if the module was re-initialised since
// they were opened: their handles mean nothing to the new generation.
func (p *Pool) syncModule() {
	cur := p.mod.gen.Load()
	p.mu.Lock()
	if p.modGen == cur {
		p.mu.Unlock()
		return
	}
	p.modGen = cur
	p.gen++
	p.idle = nil
	p.open = 0
	p.loggedIn = false
	p.m.open.Set(0)
	hooks := p.onReset
	p.mu.Unlock()
	for _, f := range hooks {
		f()
	}
}

// get pops an idle session or opens a new one, logging in if needed. The
// caller holds p.mod.rw for reading.
func (p *Pool) get() (*session, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if !p.loggedIn {
		// The token may have gone, or come back in another slot.
		slot, err := findSlot(p.ctx, p.label)
		if err != nil {
			return nil, err
		}
		p.slot = slot
		if err := p.loginLocked(); err != nil {
			return nil, err
		}
	}
	if n := len(p.idle); n > 0 {
		s := p.idle[n-1]
		p.idle = p.idle[:n-1]
		return s, nil
	}
	h, err := p.ctx.OpenSession(p.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		if classify(err) == classToken {
			p.loggedIn = false
			return nil, fmt.Errorf("open session on token %q: %w: %w", p.label, ErrTokenUnavailable, err)
		}
		return nil, fmt.Errorf("open session on token %q: %w", p.label, err)
	}
	p.open++
	p.m.open.Set(float64(p.open))
	return &session{h: h, id: p.nextID.Add(1), gen: p.gen}, nil
}

// loginLocked logs the application in. The session it opens joins the idle
// stack; the login lasts while any session of the application is open.
func (p *Pool) loginLocked() error {
	h, err := p.ctx.OpenSession(p.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		if classify(err) == classToken {
			return fmt.Errorf("open session on token %q: %w: %w", p.label, ErrTokenUnavailable, err)
		}
		return fmt.Errorf("open session on token %q: %w", p.label, err)
	}
	err = p.ctx.Login(h, pkcs11.CKU_USER, p.pin)
	if err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_USER_ALREADY_LOGGED_IN)) {
		p.ctx.CloseSession(h)
		switch {
		case errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)):
			return fmt.Errorf("log in to token %q: %w: wrong PIN", p.label, ErrLogin)
		case errors.Is(err, pkcs11.Error(pkcs11.CKR_PIN_LOCKED)):
			return fmt.Errorf("log in to token %q: %w: PIN locked", p.label, ErrLogin)
		}
		return fmt.Errorf("log in to token %q: %w: %w", p.label, ErrLogin, err)
	}
	p.open++
	p.m.open.Set(float64(p.open))
	p.idle = append(p.idle, &session{h: h, id: p.nextID.Add(1), gen: p.gen})
	p.loggedIn = true
	return nil
}

// put returns a healthy session to the idle stack, or closes it if the
// pool was reset or closed since it was handed out.
func (p *Pool) put(s *session) {
	p.mu.Lock()
	if s.gen == p.gen && !p.closed {
		p.idle = append(p.idle, s)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.evict(s)
}

// evict closes a session so it is never used again.
func (p *Pool) evict(s *session) {
	p.mod.rw.RLock()
	p.ctx.CloseSession(s.h)
	p.mod.rw.RUnlock()
	p.mu.Lock()
	if s.gen == p.gen {
		p.open--
		p.m.open.Set(float64(p.open))
		if p.open == 0 {
			// Closing the last session logs the application out.
			p.loggedIn = false
		}
	}
	hooks := p.onEvict
	p.mu.Unlock()
	for _, f := range hooks {
		f(s.id)
	}
}

// pruneIdle evicts the idle sessions the token no longer knows.
func (p *Pool) pruneIdle() {
	p.mod.rw.RLock()
	p.mu.Lock()
	var dead []*session
	live := p.idle[:0]
	for _, s := range p.idle {
		if _, err := p.ctx.GetSessionInfo(s.h); err != nil {
			dead = append(dead, s)
		} else {
			live = append(live, s)
		}
	}
	p.idle = live
	p.mu.Unlock()
	p.mod.rw.RUnlock()
	for _, s := range dead {
		p.evict(s)
	}
}

// reset drops every session after the token went away.
func (p *Pool) reset() {
	p.mod.rw.RLock()
	p.mu.Lock()
	p.ctx.CloseAllSessions(p.slot)
	p.gen++
	p.idle = nil
	p.open = 0
	p.loggedIn = false
	p.m.open.Set(0)
	hooks := p.onReset
	p.mu.Unlock()
	p.mod.rw.RUnlock()
	for _, f := range hooks {
		f()
	}
}

// close refuses new work, waits up to grace for the operations under way
// to finish, then closes every session.
func (p *Pool) close(grace time.Duration) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	drained := p.sem.Acquire(ctx, int64(p.size)) == nil
	cancel()
	if !drained {
		p.log.Warn("closing HSM sessions with operations still under way", "grace", grace)
	}
	p.mod.rw.RLock()
	defer p.mod.rw.RUnlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	// Only our own sessions: another pool of this process may share the
	// token, and C_CloseAllSessions would close its sessions too.
	for _, s := range p.idle {
		p.ctx.CloseSession(s.h)
	}
	p.idle = nil
	p.open = 0
	p.gen++
}
