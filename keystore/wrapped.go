package keystore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"github.com/miekg/pkcs11"
)

// wrapMech is AES key wrap with padding (RFC 5649), which wraps keys of any
// length, as PKCS#8 for private keys.
var wrapMech = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil)}

// kekHandle finds the key-encryption key and remembers its handle.
func (k *HSM) kekHandle(ctx context.Context) (pkcs11.ObjectHandle, error) {
	if h := k.kek.Load(); h != 0 {
		return pkcs11.ObjectHandle(h), nil
	}
	k.kekMu.Lock()
	defer k.kekMu.Unlock()
	if h := k.kek.Load(); h != 0 {
		return pkcs11.ObjectHandle(h), nil
	}
	var h pkcs11.ObjectHandle
	err := k.pool.Do(ctx, func(s *session) error {
		var err error
		h, err = k.findKEK(s)
		if err == nil && h != 0 {
			// Stored while the module cannot be re-initialised, so a
			// reset after this call clears it (see Open's onReset).
			k.kek.Store(uint64(h))
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	if h == 0 {
		return 0, fmt.Errorf("key-encryption key %q not found on token %q (run 'firmactl init'): %w",
			k.cfg.KEKLabel, k.cfg.TokenLabel, ErrKeyNotFound)
	}
	return h, nil
}

func (k *HSM) findKEK(s *session) (pkcs11.ObjectHandle, error) {
	if err := k.p.FindObjectsInit(s.h, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, k.cfg.KEKLabel),
	}); err != nil {
		return 0, fmt.Errorf("find key-encryption key: %w", err)
	}
	hs, _, err := k.p.FindObjects(s.h, 2)
	if ferr := k.p.FindObjectsFinal(s.h); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return 0, fmt.Errorf("find key-encryption key: %w", err)
	}
	if len(hs) > 1 {
		return 0, fmt.Errorf("find key-encryption key: more than one key labelled %q", k.cfg.KEKLabel)
	}
	if len(hs) == 0 {
		return 0, nil
	}
	return hs[0], nil
}

// HasKEK reports whether the token holds the key-encryption key, so that
// a caller can record the intent to make one (audit.ChangeKey) only when
// InitKEK will make it.
func (k *HSM) HasKEK(ctx context.Context) (bool, error) {
	var found bool
	err := k.pool.Do(ctx, func(s *session) error {
		h, err := k.findKEK(s)
		found = h != 0
		return err
	})
	return found, err
}

// InitKEK makes the AES-256 key-encryption key on the token unless it
// exists. It can wrap and unwrap and do nothing else, and never leaves the
// token.
func (k *HSM) InitKEK(ctx context.Context) error {
	k.kekMu.Lock()
	defer k.kekMu.Unlock()
	return k.pool.Do(ctx, func(s *session) error {
		h, err := k.findKEK(s)
		if err != nil {
			return err
		}
		if h == 0 {
			h, err = k.p.GenerateKey(s.h, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)},
				append(kekTemplate(k.cfg.KEKLabel, false), pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32)))
			if err != nil {
				return fmt.Errorf("generate key-encryption key: %w", err)
			}
			k.log.Info("generated key-encryption key", "label", k.cfg.KEKLabel, "token", k.cfg.TokenLabel)
		}
		k.kek.Store(uint64(h))
		return nil
	})
}

// generateWrapped makes a key pair as session objects, wraps the private
// key under the KEK and destroys both objects. It returns the wrapped blob.
func (k *HSM) generateWrapped(ctx context.Context, key *Key) ([]byte, error) {
	kek, err := k.kekHandle(ctx)
	if err != nil {
		return nil, err
	}
	mech, pubT, privT, err := keyPairTemplates(key.Type, false, []byte(key.ID), "firma:"+key.Owner)
	if err != nil {
		return nil, err
	}
	var blob []byte
	err = k.pool.Do(ctx, func(s *session) error {
		pubH, privH, err := k.p.GenerateKeyPair(s.h, []*pkcs11.Mechanism{mech}, pubT, privT)
		if err != nil {
			return fmt.Errorf("generate key pair: %w", err)
		}
		defer k.p.DestroyObject(s.h, pubH)
		defer k.p.DestroyObject(s.h, privH)
		if key.Public, err = k.readPublic(s, pubH, key.Type); err != nil {
			return err
		}
		if blob, err = k.p.WrapKey(s.h, wrapMech, kek, privH); err != nil {
			return fmt.Errorf("wrap private key: %w", err)
		}
		return nil
	})
	return blob, err
}

// Templates of the live copies, built once: the cold path unwraps a key for
// every signature, and miekg/pkcs11 only reads a template.
var (
	unwrapEC  = unwrapTemplate(pkcs11.CKK_EC)
	unwrapRSA = unwrapTemplate(pkcs11.CKK_RSA)
)

// liveTemplate is the unwrap template for a key of type t.
func liveTemplate(t Type) []*pkcs11.Attribute {
	if t.IsRSA() {
		return unwrapRSA
	}
	return unwrapEC
}

// unwrapTemplate is the template of a live copy of a wrapped key: a private
// session object that can sign and can never be extracted again.
func unwrapTemplate(kt uint) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, kt),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
	}
}

// liveKey is a wrapped key unwrapped into the token as a session object. It
// lives as long as the session that made it. refs counts the signatures
// under way with it: an evicted key is destroyed only once none is, so no
// caller ever signs through a handle the token has recycled.
type liveKey struct {
	h       pkcs11.ObjectHandle
	session uint64
	refs    int
	evicted bool
}

// liveCache is the bounded LRU of live wrapped keys.
//
// A key is admitted on its second use within a while, not its first: over
// a large population signing at random almost no key is used twice before
// it would be evicted, and every live copy costs the token memory and
// slows its session-object bookkeeping, so caching those only adds work
// (measured: 977 signatures/s with a 10,000-key cache over a million
// citizens, 1,854/s without). seen remembers recent first uses, IDs only.
type liveCache struct {
	mu   sync.Mutex
	lru  *simplelru.LRU[string, *liveKey] // nil when caching is off
	seen *simplelru.LRU[string, struct{}]
	max  int
}

// seenFactor sizes the first-use memory against the cache: a key used
// again within that many other first uses is admitted.
const seenFactor = 4

func newLiveCache(size int) *liveCache {
	c := &liveCache{max: size}
	if size > 0 {
		c.lru, _ = simplelru.NewLRU[string, *liveKey](size, nil)
		c.seen, _ = simplelru.NewLRU[string, struct{}](seenFactor*size, nil)
	}
	return c
}

// admit reports whether a key just unwrapped should be cached: true if it
// was used recently before. It remembers this use either way.
func (c *liveCache) admit(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen.Contains(id) {
		c.seen.Remove(id)
		return true
	}
	c.seen.Add(id, struct{}{})
	return false
}

// acquire returns the cached live key for id with a reference taken.
func (c *liveCache) acquire(id string) (*liveKey, bool) {
	if c.lru == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	lk, ok := c.lru.Get(id)
	if ok {
		lk.refs++
	}
	return lk, ok
}

// release drops a reference and reports whether the key must now be
// destroyed by the caller.
func (c *liveCache) release(lk *liveKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	lk.refs--
	return lk.evicted && lk.refs == 0
}

// add caches lk with a reference taken, and returns the key to use and the
// keys the caller must destroy now (pushed out and unused). If another
// goroutine cached the same key meanwhile, that one is used and lk goes.
func (c *liveCache) add(id string, lk *liveKey) (*liveKey, []*liveKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.lru.Get(id); ok {
		old.refs++
		return old, []*liveKey{lk}
	}
	var out []*liveKey
	for c.lru.Len() >= c.max {
		_, v, ok := c.lru.RemoveOldest()
		if !ok {
			break
		}
		v.evicted = true
		if v.refs == 0 {
			out = append(out, v)
		}
	}
	lk.refs = 1
	c.lru.Add(id, lk)
	return lk, out
}

// remove evicts id and returns its entry if the caller must destroy it now.
func (c *liveCache) remove(id string) (*liveKey, bool) {
	if c.lru == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.lru.Peek(id)
	if !ok {
		return nil, false
	}
	c.lru.Remove(id)
	v.evicted = true
	return v, v.refs == 0
}

// forget drops id if it still maps to the handle h, which went stale.
func (c *liveCache) forget(id string, h pkcs11.ObjectHandle) {
	if c.lru == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.lru.Peek(id); ok && v.h == h {
		c.lru.Remove(id)
	}
}

// dropSession forgets the keys made on a closed session: they died with it.
func (c *liveCache) dropSession(id uint64) {
	if c.lru == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range c.lru.Keys() {
		if v, ok := c.lru.Peek(k); ok && v.session == id {
			c.lru.Remove(k)
		}
	}
}

func (c *liveCache) dropAll() {
	if c.lru == nil {
		return
	}
	c.mu.Lock()
	c.lru.Purge()
	c.mu.Unlock()
}

// liveHandle returns a live handle for the wrapped key of sg, unwrapping it
// on session ss if it is not cached. done must be called once the
// signatures are made, on the same session.
func (k *HSM) liveHandle(ss *session, sg *Signer) (pkcs11.ObjectHandle, func(), error) {
	if lk, ok := k.live.acquire(sg.key.ID); ok {
		k.m.hits.Inc()
		return lk.h, func() { k.releaseLive(ss, lk) }, nil
	}
	if _, dead := k.destroyed.Load(sg.key.ID); dead {
		return 0, nil, fmt.Errorf("key %s: %w", sg.key.ID, ErrKeyDestroyed)
	}
	kek := pkcs11.ObjectHandle(k.kek.Load())
	if kek == 0 {
		// Found on this session, not through kekHandle: that would wait
		// for a second session while this one is held.
		h, err := k.findKEK(ss)
		if err != nil {
			return 0, nil, err
		}
		if h == 0 {
			if k.cfg.Mode == ModeWrapped {
				// Open found it: gone now means the token is not all
				// there, not that the key is.
				return 0, nil, fmt.Errorf("key-encryption key %q: %w", k.cfg.KEKLabel, errObjectLost)
			}
			return 0, nil, fmt.Errorf("key-encryption key %q not found: %w", k.cfg.KEKLabel, ErrKeyNotFound)
		}
		k.kek.Store(uint64(h))
		kek = h
	}
	h, err := k.p.UnwrapKey(ss.h, wrapMech, kek, sg.wrapped, liveTemplate(sg.key.Type))
	if err != nil {
		if errors.Is(err, pkcs11.Error(pkcs11.CKR_WRAPPED_KEY_INVALID)) || errors.Is(err, pkcs11.Error(pkcs11.CKR_ENCRYPTED_DATA_INVALID)) {
			return 0, nil, fmt.Errorf("unwrap key %s: blob does not decrypt under the key-encryption key: %w", sg.key.ID, err)
		}
		return 0, nil, fmt.Errorf("unwrap key %s: %w", sg.key.ID, err)
	}
	k.m.unwraps.Inc()
	if k.live.lru == nil || !k.live.admit(sg.key.ID) {
		return h, func() { k.p.DestroyObject(ss.h, h) }, nil
	}
	use, gone := k.live.add(sg.key.ID, &liveKey{h: h, session: ss.id})
	for _, g := range gone {
		k.p.DestroyObject(ss.h, g.h)
	}
	return use.h, func() { k.releaseLive(ss, use) }, nil
}

func (k *HSM) releaseLive(ss *session, lk *liveKey) {
	if k.live.release(lk) {
		k.p.DestroyObject(ss.h, lk.h)
	}
}

// dropLive destroys the live copy of a wrapped key, if any, and stops it
// from being unwrapped again by this process.
func (k *HSM) dropLive(ctx context.Context, id string) error {
	k.destroyed.Store(id, struct{}{})
	lk, now := k.live.remove(id)
	if !now {
		// Unused: gone with the cache. In use: the last user destroys it.
		return nil
	}
	return k.pool.Do(ctx, func(s *session) error {
		err := k.p.DestroyObject(s.h, lk.h)
		if errors.Is(err, pkcs11.Error(pkcs11.CKR_OBJECT_HANDLE_INVALID)) {
			return nil
		}
		return err
	})
}
