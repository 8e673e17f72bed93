package keystore

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/firma-cloud/firma/store"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/miekg/pkcs11"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for Config fields left zero.
const (
	DefaultAcquireTimeout = 5 * time.Second
	DefaultCacheSize      = 10000
	DefaultKEKLabel       = "firma-kek"
	signerCacheSize       = 4096
)

// DefaultSessions is the pool size used when Config.Sessions is zero: two
// per core, so that one session per core can wait on the token while the
// other is being prepared or its result checked.
func DefaultSessions() int { return 2 * runtime.GOMAXPROCS(0) }

// Config says which token to use and how.
type Config struct {
	// Module and TokenLabel name the token; package config resolves an
	// RFC 7512 pkcs11: URI into them.
	Module     string // path of the PKCS#11 module
	TokenLabel string
	PIN        string

	Sessions       int           // pool size; 0 means DefaultSessions()
	AcquireTimeout time.Duration // wait for a free session; 0 means DefaultAcquireTimeout
	Mode           Mode          // mode of new user keys; "" means ModeToken
	// CacheSize bounds the live unwrapped keys in wrapped mode; 0 means
	// DefaultCacheSize, a negative value unwraps for every call.
	CacheSize int
	KEKLabel  string // label of the key-encryption key; "" means DefaultKEKLabel

	Registerer prometheus.Registerer // nil registers no metrics
}

// HSM is the set of key pairs held on one token.
type HSM struct {
	cfg   Config
	p     *pkcs11.Ctx
	pool  *Pool
	store store.KeyRecordStore
	log   *slog.Logger
	m     *metrics

	// signers caches, per key ID, the record and (in token mode) the object
	// handle, so the signing path reads neither the store nor the token index.
	signers *lru.Cache[string, *Signer]

	// kek is the key-encryption key's handle, 0 until found; read on every
	// unwrap without a lock. kekMu serialises finding or making it.
	kekMu sync.Mutex
	kek   atomic.Uint64

	live *liveCache // wrapped keys unwrapped into the token
	// destroyed holds the IDs destroyed by this process, so that a Signer
	// still held by a caller cannot unwrap its key again.
	destroyed sync.Map

	// health says the token holds the health object, so Ping looks for it.
	health bool

	closeOnce sync.Once
}

// Open loads the PKCS#11 module, finds the token and logs in. Records are
// kept in st.
func Open(ctx context.Context, cfg Config, st store.KeyRecordStore, log *slog.Logger) (*HSM, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Module == "" {
		return nil, fmt.Errorf("%w: no module path configured", ErrModule)
	}
	if cfg.TokenLabel == "" {
		return nil, fmt.Errorf("%w: no token label configured", ErrTokenUnavailable)
	}
	if cfg.Sessions <= 0 {
		cfg.Sessions = DefaultSessions()
	}
	if cfg.AcquireTimeout <= 0 {
		cfg.AcquireTimeout = DefaultAcquireTimeout
	}
	if cfg.Mode == "" {
		cfg.Mode = ModeToken
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.KEKLabel == "" {
		cfg.KEKLabel = DefaultKEKLabel
	}
	mod, err := loadModule(cfg.Module)
	if err != nil {
		return nil, err
	}
	p := mod.ctx
	m := newMetrics(cfg.Registerer)
	pool, err := newPool(ctx, mod, cfg.TokenLabel, cfg.PIN, cfg.Sessions, cfg.AcquireTimeout, m, log)
	if err != nil {
		releaseModule(cfg.Module)
		return nil, err
	}
	signers, _ := lru.New[string, *Signer](signerCacheSize)
	k := &HSM{cfg: cfg, p: p, pool: pool, store: st, log: log, m: m, signers: signers}
	k.live = newLiveCache(cfg.CacheSize)
	pool.onEvict = append(pool.onEvict, k.live.dropSession)
	pool.onReset = append(pool.onReset, func() {
		k.live.dropAll()
		k.signers.Purge()
		k.kek.Store(0)
	})
	k.ensureHealth(ctx)
	if cfg.Mode == ModeWrapped {
		if _, err := k.kekHandle(ctx); err != nil {
			k.Close()
			return nil, err
		}
	}
	return k, nil
}

// Close waits for the signatures under way (at most 30 s), then releases
// every session and unloads the module.
func (k *HSM) Close() error {
	var err error
	k.closeOnce.Do(func() {
		k.pool.close(30 * time.Second)
		err = releaseModule(k.cfg.Module)
	})
	if err != nil {
		return fmt.Errorf("finalize module: %w", err)
	}
	return nil
}

// Sessions is the pool size: how many signing operations can run at once.
func (k *HSM) Sessions() int { return k.pool.Size() }

// Mode is the mode new user keys are made in.
func (k *HSM) Mode() Mode { return k.cfg.Mode }

// healthLabel labels the data object Ping looks for. It holds nothing
// secret; finding it proves the token's objects are there, which an
// answer to C_GetSessionInfo does not (SoftHSM2 answers it with its
// storage gone).
const healthLabel = "firma-health"

// Ping checks that the token answers, the login holds and the token's
// objects are there: it finds the health object Open made. A token that
// went away is looked for again (see Pool), so Ping succeeds again once it
// is back.
func (k *HSM) Ping(ctx context.Context) error {
	return k.pool.Do(ctx, func(s *session) error {
		info, err := k.p.GetSessionInfo(s.h)
		if err != nil {
			return fmt.Errorf("ping token %q: %w", k.cfg.TokenLabel, err)
		}
		if info.State != pkcs11.CKS_RW_USER_FUNCTIONS && info.State != pkcs11.CKS_RO_USER_FUNCTIONS {
			return fmt.Errorf("ping token %q: %w", k.cfg.TokenLabel, pkcs11.Error(pkcs11.CKR_USER_NOT_LOGGED_IN))
		}
		if !k.health {
			return nil
		}
		hs, err := k.findHealth(s)
		if err != nil {
			return fmt.Errorf("ping token %q: %w", k.cfg.TokenLabel, err)
		}
		if len(hs) == 0 {
			return fmt.Errorf("ping token %q: health object: %w", k.cfg.TokenLabel, errObjectLost)
		}
		return nil
	})
}

func (k *HSM) findHealth(s *session) ([]pkcs11.ObjectHandle, error) {
	if err := k.p.FindObjectsInit(s.h, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, healthLabel),
	}); err != nil {
		return nil, fmt.Errorf("find health object: %w", err)
	}
	hs, _, err := k.p.FindObjects(s.h, 1)
	if ferr := k.p.FindObjectsFinal(s.h); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return nil, fmt.Errorf("find health object: %w", err)
	}
	return hs, nil
}

// ensureHealth makes the health object unless the token has one. A token
// that refuses it (read-only, say) is pinged without it.
func (k *HSM) ensureHealth(ctx context.Context) {
	err := k.pool.Do(ctx, func(s *session) error {
		hs, err := k.findHealth(s)
		if err != nil || len(hs) > 0 {
			return err
		}
		_, err = k.p.CreateObject(s.h, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, false),
			pkcs11.NewAttribute(pkcs11.CKA_LABEL, healthLabel),
			pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, healthLabel),
			pkcs11.NewAttribute(pkcs11.CKA_VALUE, []byte("firma readiness check")),
		})
		return err
	})
	if err != nil {
		k.log.Warn("no health object on the token: readiness checks the session only", "token", k.cfg.TokenLabel, "err", err)
		return
	}
	k.health = true
}

// Generate makes a key pair for owner in the configured mode.
func (k *HSM) Generate(ctx context.Context, owner string, t Type) (*Key, error) {
	return k.GenerateMode(ctx, owner, t, k.cfg.Mode)
}

// GenerateMode makes a key pair for owner in the given mode. The private key
// is generated inside the token and never leaves it in clear.
func (k *HSM) GenerateMode(ctx context.Context, owner string, t Type, m Mode) (*Key, error) {
	if owner == "" {
		return nil, fmt.Errorf("generate key: %w", ErrOwner)
	}
	if t.curve() == nil && t.rsaBits() == 0 {
		return nil, fmt.Errorf("generate key: type %q: %w", t, ErrUnsupported)
	}
	key, idb, err := newKey(owner, t, m)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	var wrapped []byte
	switch m {
	case ModeToken:
		err = k.generateToken(ctx, key, idb)
	case ModeWrapped:
		wrapped, err = k.generateWrapped(ctx, key)
	default:
		err = fmt.Errorf("mode %q: %w", m, ErrUnsupported)
	}
	if err != nil {
		k.m.ops.WithLabelValues("generate", "error").Inc()
		return nil, fmt.Errorf("generate %s key for %s: %w", t, owner, err)
	}
	rec, err := key.record(wrapped)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	if err := k.store.CreateKey(ctx, rec); err != nil {
		if m == ModeToken {
			// Without its record the token object is unreachable: remove it.
			k.destroyToken(ctx, idb)
		}
		k.m.ops.WithLabelValues("generate", "error").Inc()
		return nil, fmt.Errorf("generate key: %w", err)
	}
	k.m.ops.WithLabelValues("generate", "ok").Inc()
	return key, nil
}

// Key returns the key with the given ID, live or destroyed.
func (k *HSM) Key(ctx context.Context, id string) (*Key, error) {
	rec, err := k.store.Key(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("key %s: %w", id, ErrKeyNotFound)
		}
		return nil, err
	}
	return keyFromRecord(rec)
}

// Keys lists keys ordered by ID, those of owner only if it is not empty.
func (k *HSM) Keys(ctx context.Context, owner, after string, limit int) ([]*Key, error) {
	recs, err := k.store.Keys(ctx, owner, after, limit)
	if err != nil {
		return nil, err
	}
	out := make([]*Key, 0, len(recs))
	for _, r := range recs {
		key, err := keyFromRecord(r)
		if err != nil {
			return nil, err
		}
		out = append(out, key)
	}
	return out, nil
}

func keyFromRecord(r *store.Key) (*Key, error) {
	pub, err := x509.ParsePKIXPublicKey(r.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("key %s: stored public key: %w", r.ID, err)
	}
	return &Key{ID: r.ID, Owner: r.Owner, Type: Type(r.Type), Mode: Mode(r.Mode), Public: pub,
		CreatedAt: r.CreatedAt, DestroyedAt: r.DestroyedAt}, nil
}

// Destroy deletes the private key from the token (token mode) or erases
// its wrapped blob and any live copy (wrapped mode). Signing with it
// afterwards fails with ErrKeyDestroyed.
func (k *HSM) Destroy(ctx context.Context, id string) error {
	rec, err := k.store.Key(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("destroy key %s: %w", id, ErrKeyNotFound)
		}
		return fmt.Errorf("destroy key %s: %w", id, err)
	}
	if rec.Destroyed() {
		return fmt.Errorf("destroy key %s: %w", id, ErrKeyDestroyed)
	}
	k.signers.Remove(id)
	switch Mode(rec.Mode) {
	case ModeToken:
		idb, err := hex.DecodeString(id)
		if err != nil {
			return fmt.Errorf("destroy key %s: bad id: %w", id, err)
		}
		// Marked first: a Signer signing meanwhile must see a destroyed
		// key, not a token that lost an object.
		k.destroyed.Store(id, struct{}{})
		if err := k.destroyToken(ctx, idb); err != nil {
			k.destroyed.Delete(id)
			k.m.ops.WithLabelValues("destroy", "error").Inc()
			return fmt.Errorf("destroy key %s: %w", id, err)
		}
	case ModeWrapped:
		if err := k.dropLive(ctx, id); err != nil {
			k.m.ops.WithLabelValues("destroy", "error").Inc()
			return fmt.Errorf("destroy key %s: %w", id, err)
		}
	}
	if err := k.store.DestroyKey(ctx, id, time.Now().UTC()); err != nil {
		return fmt.Errorf("destroy key %s: %w", id, err)
	}
	k.signers.Remove(id)
	k.m.ops.WithLabelValues("destroy", "ok").Inc()
	return nil
}

// Signer returns a crypto.Signer for the live key with the given ID.
func (k *HSM) Signer(ctx context.Context, id string) (*Signer, error) {
	if s, ok := k.signers.Get(id); ok {
		return s, nil
	}
	rec, err := k.store.Key(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("key %s: %w", id, ErrKeyNotFound)
		}
		return nil, fmt.Errorf("key %s: %w", id, err)
	}
	if rec.Destroyed() {
		return nil, fmt.Errorf("key %s: %w", id, ErrKeyDestroyed)
	}
	key, err := keyFromRecord(rec)
	if err != nil {
		return nil, err
	}
	s := &Signer{ks: k, key: key, wrapped: rec.Wrapped}
	if key.Mode == ModeToken {
		s.cka, err = hex.DecodeString(id)
		if err != nil {
			return nil, fmt.Errorf("key %s: bad id: %w", id, err)
		}
	}
	k.signers.Add(id, s)
	return s, nil
}

// newKey describes a key about to be made, with a random 16-byte ID, which
// is also its CKA_ID in token mode.
func newKey(owner string, t Type, m Mode) (*Key, []byte, error) {
	idb := make([]byte, 16)
	if _, err := rand.Read(idb); err != nil {
		return nil, nil, err
	}
	return &Key{ID: hex.EncodeToString(idb), Owner: owner, Type: t, Mode: m, CreatedAt: time.Now().UTC()}, idb, nil
}

// record is the store record of a key just made.
func (key *Key) record(wrapped []byte) (*store.Key, error) {
	der, err := x509.MarshalPKIXPublicKey(key.Public)
	if err != nil {
		return nil, err
	}
	return &store.Key{ID: key.ID, Owner: key.Owner, Type: string(key.Type), Mode: string(key.Mode), PublicKey: der,
		Wrapped: wrapped, CreatedAt: key.CreatedAt}, nil
}
