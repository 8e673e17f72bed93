package signer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/keystore"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
)

// Errors of the signing core, told apart with errors.Is.
var (
	// ErrDigestLength is keystore.ErrDigestLength: a digest whose length
	// does not match its hash.
	ErrDigestLength = keystore.ErrDigestLength
	// ErrBatch is a batch that is empty or larger than the core accepts.
	ErrBatch = errs.Sentinel(errs.Invalid, "bad_batch", "bad batch size")
	// ErrFault is a signature the token made that does not verify: it is
	// never returned, since a faulty RSA-CRT signature leaks the key.
	ErrFault = errors.New("signature failed its check against the public key")
)

// DefaultMaxBatch is the largest batch Sign accepts by default.
const DefaultMaxBatch = 1000

// Config tunes the core; the zero value is the default.
type Config struct {
	// VerifyECDSA checks ECDSA signatures too. RSA ones are always checked.
	VerifyECDSA bool
	// Parallelism is how many sessions one batch is spread over at most;
	// 0 means the keystore's session count.
	Parallelism int
	// MaxBatch is the largest batch accepted; 0 means DefaultMaxBatch.
	MaxBatch   int
	Registerer prometheus.Registerer // nil registers no metrics
	Log        *slog.Logger
}

// Request asks for signatures over digests with one key.
type Request struct {
	KeyID   string
	Scheme  keystore.Scheme
	Hash    crypto.Hash
	Digests [][]byte
	// Purpose labels the signatures in firma_signer_signatures_total
	// (signing.Purpose: transaction, csc, operator, tsa).
	Purpose string
}

// Core is the high-throughput signing core.
type Core struct {
	ks  *keystore.HSM
	cfg Config
	log *slog.Logger

	signatures *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	batch      prometheus.Histogram
}

// New returns a core signing with keys of ks.
func New(ks *keystore.HSM, cfg Config) *Core {
	if cfg.Parallelism <= 0 {
		cfg.Parallelism = ks.Sessions()
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Core{ks: ks, cfg: cfg, log: log,
		signatures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firma_signer_signatures_total", Help: "Signatures made with granted keys, digest batches (Sign) and the CMS, PDF and XML builders' (Signer) alike, by key type, scheme, purpose and outcome. The keystore's sign count also holds the service's own signatures (certificates, CRLs, OCSP, audit checkpoints)."},
			[]string{"key_type", "scheme", "purpose", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "firma_signer_batch_duration_seconds", Help: "Time to sign one batch, by key type and scheme.",
			Buckets: prometheus.ExponentialBuckets(1e-4, 4, 10)}, []string{"key_type", "scheme"}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "firma_signer_batch_size_digests", Help: "Digests per signing request.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 1024}}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(c.signatures, c.duration, c.batch)
	}
	return c
}

// Sign returns one signature per digest, in order, or an error and no
// signature at all.
func (c *Core) Sign(ctx context.Context, r Request) ([][]byte, error) {
	n := len(r.Digests)
	if n == 0 || n > c.cfg.MaxBatch {
		return nil, fmt.Errorf("%w: %d digests (want 1 to %d)", ErrBatch, n, c.cfg.MaxBatch)
	}
	for i, d := range r.Digests {
		if err := keystore.CheckDigest(r.Hash, d); err != nil {
			return nil, fmt.Errorf("digest %d: %w", i, err)
		}
	}
	sg, err := c.ks.Signer(ctx, r.KeyID)
	if err != nil {
		return nil, err
	}
	key := sg.Key()
	if err := key.Type.CheckScheme(r.Scheme); err != nil {
		return nil, err
	}
	start := time.Now()
	c.batch.Observe(float64(n))
	sigs, err := c.spread(ctx, sg, r)
	if err == nil {
		err = c.check(key, r, sigs)
	}
	outcome := "ok"
	if err != nil {
		outcome = "error"
		sigs = nil
	}
	c.signatures.WithLabelValues(string(key.Type), string(r.Scheme), purposeLabel(r.Purpose), outcome).Add(float64(n))
	c.duration.WithLabelValues(string(key.Type), string(r.Scheme)).Observe(time.Since(start).Seconds())
	return sigs, err
}

// spread splits the batch into at most Parallelism contiguous chunks, each
// signed on a session of its own.
func (c *Core) spread(ctx context.Context, sg *keystore.Signer, r Request) ([][]byte, error) {
	n := len(r.Digests)
	parts := min(n, c.cfg.Parallelism)
	if parts <= 1 {
		return sg.SignDigests(ctx, r.Scheme, r.Hash, r.Digests)
	}
	out := make([][]byte, n)
	g, gctx := errgroup.WithContext(ctx)
	size := (n + parts - 1) / parts
	for lo := 0; lo < n; lo += size {
		hi := min(lo+size, n)
		g.Go(func() error {
			sigs, err := sg.SignDigests(gctx, r.Scheme, r.Hash, r.Digests[lo:hi])
			if err != nil {
				return err
			}
			copy(out[lo:hi], sigs)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// check verifies each signature with the public key in Go: always for RSA,
// whose CRT faults leak the key, and for ECDSA when configured.
func (c *Core) check(key *keystore.Key, r Request, sigs [][]byte) error {
	switch pub := key.Public.(type) {
	case *rsa.PublicKey:
		for i, sig := range sigs {
			var err error
			if r.Scheme == keystore.PSS {
				err = rsa.VerifyPSS(pub, r.Hash, r.Digests[i], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
			} else {
				err = rsa.VerifyPKCS1v15(pub, r.Hash, r.Digests[i], sig)
			}
			if err != nil {
				c.log.Error("HSM signature failed its check; withheld", "key", key.ID, "index", i)
				return fmt.Errorf("key %s, digest %d: %w", key.ID, i, ErrFault)
			}
		}
	case *ecdsa.PublicKey:
		if !c.cfg.VerifyECDSA {
			return nil
		}
		for i, sig := range sigs {
			if !ecdsa.VerifyASN1(pub, r.Digests[i], sig) {
				c.log.Error("HSM signature failed its check; withheld", "key", key.ID, "index", i)
				return fmt.Errorf("key %s, digest %d: %w", key.ID, i, ErrFault)
			}
		}
	}
	return nil
}

// Signer returns sg as a crypto.Signer bound to ctx (crypto.Signer has no
// context of its own) whose signatures count in
// firma_signer_signatures_total as Sign's do: the CMS, PDF and XML
// builders and the TSA's tokens sign one digest a call through it, and
// were left out of the count when only Sign counted (3 counted where the
// keystore made 29).
func (c *Core) Signer(ctx context.Context, sg *keystore.Signer, purpose string) crypto.Signer {
	return countingSigner{ctx: ctx, sg: sg, c: c, purpose: purposeLabel(purpose)}
}

type countingSigner struct {
	ctx     context.Context
	sg      *keystore.Signer
	c       *Core
	purpose string
}

func (s countingSigner) Public() crypto.PublicKey { return s.sg.Public() }

func (s countingSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	key := s.sg.Key()
	scheme, err := keystore.SchemeFor(key.Type, opts)
	if err != nil {
		return nil, err
	}
	sig, err := s.sg.SignContext(s.ctx, digest, opts)
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	s.c.signatures.WithLabelValues(string(key.Type), string(scheme), s.purpose, outcome).Inc()
	return sig, err
}

func purposeLabel(p string) string {
	if p == "" {
		return "unknown"
	}
	return p
}
