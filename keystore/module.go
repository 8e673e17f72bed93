package keystore

import (
	"errors"
	"fmt"
	"sync"

	"github.com/miekg/pkcs11"
)

// A PKCS#11 module is initialised once per process: a second C_Initialize
// fails and one C_Finalize ends it for everyone. Keystores on the same
// module (several tokens, or tests) share one loaded module, counted here.
var (
	modulesMu sync.Mutex
	modules   = map[string]*module{}
)

type module struct {
	ctx  *pkcs11.Ctx
	refs int
}

// loadModule loads and initialises the module at path, or takes another
// reference to it if it is loaded.
func loadModule(path string) (*pkcs11.Ctx, error) {
	modulesMu.Lock()
	defer modulesMu.Unlock()
	if m, ok := modules[path]; ok {
		m.refs++
		return m.ctx, nil
	}
	p := pkcs11.New(path)
	if p == nil {
		return nil, fmt.Errorf("%w %q: the file is missing or is not a PKCS#11 library", ErrModule, path)
	}
	if err := p.Initialize(); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		p.Destroy()
		return nil, fmt.Errorf("%w %q: initialize: %w", ErrModule, path, err)
	}
	modules[path] = &module{ctx: p, refs: 1}
	return p, nil
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
	err := m.ctx.Finalize()
	m.ctx.Destroy()
	return err
}
