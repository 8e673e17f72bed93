package keystore

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/pkcs11"
)

// A PKCS#11 module is initialised once per process: a second C_Initialize
// fails and one C_Finalize ends it for everyone. Keystores on the same
// module (several tokens, or tests) share one loaded module, counted here.
var (
	modulesMu sync.Mutex
	modules   = map[string]*module{}
)

// Bounds of the wait between two re-initialisations of a module while its
// token stays away: the first comes at once, then each waits twice as
// long as the last, up to reinitMax, so a token that is gone for good
// costs the module one C_Finalize/C_Initialize every few seconds, not one
// per signature.
const (
	reinitMin = 250 * time.Millisecond
	reinitMax = 4 * time.Second
)

type module struct {
	path string
	ctx  *pkcs11.Ctx
	refs int

	// rw is held for reading around every PKCS#11 call and for writing
	// while the module is re-initialised: a C_Finalize under a call in
	// flight is undefined behaviour (SoftHSM2 frees what the call uses).
	rw sync.RWMutex
	// gen counts re-initialisations; every session and object handle of
	// an older generation is void.
	gen atomic.Uint64

	reMu    sync.Mutex // serialises reinit; guards next and backoff
	next    time.Time  // no re-initialisation before then
	backoff time.Duration
	failing atomic.Bool // a re-initialisation happened since the last success
}

// loadModule loads and initialises the module at path, or takes another
// reference to it if it is loaded.
func loadModule(path string) (*module, error) {
	modulesMu.Lock()
	defer modulesMu.Unlock()
	if m, ok := modules[path]; ok {
		m.refs++
		return m, nil
	}
	p := pkcs11.New(path)
	if p == nil {
		return nil, fmt.Errorf("%w %q: the file is missing or is not a PKCS#11 library", ErrModule, path)
	}
	if err := p.Initialize(); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		p.Destroy()
		return nil, fmt.Errorf("%w %q: initialize: %w", ErrModule, path, err)
	}
	m := &module{path: path, ctx: p, refs: 1}
	modules[path] = m
	return m, nil
}

// reinit finalises and initialises the module again, so that it reads its
// tokens afresh: SoftHSM2, like many HSM clients, loses a token whose
// storage went away and does not find it again while initialised. seen is
// the generation the caller's sessions belong to; if the module was
// re-initialised since, or the backoff has not run out, nothing is done.
// It reports whether the generation moved on.
func (m *module) reinit(seen uint64) (bool, error) {
	m.reMu.Lock()
	defer m.reMu.Unlock()
	if m.gen.Load() != seen {
		return true, nil
	}
	now := time.Now()
	if now.Before(m.next) {
		return false, nil
	}
	m.rw.Lock()
	m.ctx.Finalize() // fails only if it was not initialised, which is fine
	err := m.ctx.Initialize()
	m.gen.Add(1)
	m.rw.Unlock()
	m.backoff = min(max(2*m.backoff, reinitMin), reinitMax)
	m.next = now.Add(m.backoff)
	m.failing.Store(true)
	if err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		return true, fmt.Errorf("re-initialise module %q: %w: %w", m.path, ErrTokenUnavailable, err)
	}
	return true, nil
}

// ok says an operation succeeded: the next outage starts its backoff
// afresh. It costs one atomic load on the signing path.
func (m *module) ok() {
	if !m.failing.Load() {
		return
	}
	m.reMu.Lock()
	m.backoff, m.next = 0, time.Time{}
	m.failing.Store(false)
	m.reMu.Unlock()
}

// releaseModule drops a reference and finalises the module with the last.
func releaseModule(path string) error {
	modulesMu.Lock()
	defer modulesMu.Unlock()
	m, ok := modules[path]
	if !ok {
		return nil
	}
	if m.refs--; m.refs > 0 {
		return nil
	}
	delete(modules, path)
	m.rw.Lock()
	defer m.rw.Unlock()
	err := m.ctx.Finalize()
	m.ctx.Destroy()
	return err
}
