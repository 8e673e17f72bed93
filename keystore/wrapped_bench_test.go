package keystore_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/pkcs11"

	"github.com/firma-cloud/firma/keystore"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store/sqlite"
)

// coldKeys is how many citizens the cold-path benchmark signs for: more
// than the keystore keeps signers for, so that, as over a million
// citizens, almost every signature reads its key's record from the store.
const coldKeys = 6000

// BenchmarkWrappedCold measures the cold path of wrapped mode: every
// signature unwraps its key (no live-key cache), over coldKeys EC P-256
// keys drawn at random. It compares what SoftHSM2 itself costs, with
// miekg/pkcs11 on blobs held in memory (unwrap-destroy alone, sign on a
// live key alone, and unwrap-sign-destroy), with the keystore's whole path
// (store read, record decoding, session, unwrap, sign, destroy), for one
// key (its record cached) and for keys at random. Each runs from twice as
// many goroutines as sessions (one per session for the raw ones) and
// reports signatures/s.
func BenchmarkWrappedCold(b *testing.B) {
	ctx := context.Background()
	tok := softhsmtest.New(b)
	dbPath := filepath.Join(b.TempDir(), "firma.db")
	st, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	cfg := keystore.Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN}
	ks, err := keystore.Open(ctx, cfg, st, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := ks.InitKEK(ctx); err != nil {
		b.Fatal(err)
	}
	ks.Close()
	cfg.Mode, cfg.CacheSize = keystore.ModeWrapped, -1
	if ks, err = keystore.Open(ctx, cfg, st, nil); err != nil {
		b.Fatal(err)
	}
	var ids []string
	for len(ids) < coldKeys {
		owners := make([]string, 1000)
		for i := range owners {
			owners[i] = fmt.Sprintf("COLD%06d", len(ids)+i)
		}
		keys, err := ks.GenerateWrappedBatch(ctx, owners, keystore.ECP256)
		if err != nil {
			b.Fatal(err)
		}
		for _, k := range keys {
			ids = append(ids, k.ID)
		}
	}
	ks.Close()
	blobs := make([][]byte, len(ids))
	for i, id := range ids {
		rec, err := st.Key(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		blobs[i] = rec.Wrapped
	}
	digest := sha256.Sum256([]byte("cold"))
	n := keystore.DefaultSessions()

	for _, raw := range []string{"raw-unwrap-destroy", "raw-sign-live", "raw-unwrap-sign-destroy"} {
		b.Run(raw, func(b *testing.B) { benchRawCold(b, tok, raw, blobs, digest[:], n, 0) })
	}
	for _, w := range []int{1, 2} {
		b.Run(fmt.Sprintf("raw-unwrap-sign-destroy-sessions=%d", w), func(b *testing.B) {
			benchRawCold(b, tok, "raw-unwrap-sign-destroy", blobs, digest[:], w, 0)
		})
	}
	// What a large live-key cache costs every other unwrap: the same
	// work with that many other keys live in the token.
	for _, live := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("raw-unwrap-sign-destroy-live=%d", live), func(b *testing.B) {
			benchRawCold(b, tok, "raw-unwrap-sign-destroy", blobs, digest[:], n, live)
		})
	}
	b.Run("keystore-one-key", func(b *testing.B) {
		ks := openCold(b, cfg, st)
		sg, err := ks.Signer(ctx, ids[0])
		if err != nil {
			b.Fatal(err)
		}
		parallel(b, 2*n, func(int) error {
			_, err := sg.SignDigests(ctx, keystore.ECDSA, crypto.SHA256, [][]byte{digest[:]})
			return err
		})
	})
	b.Run("keystore-random-key", func(b *testing.B) {
		ks := openCold(b, cfg, st)
		parallel(b, 2*n, func(int) error {
			sg, err := ks.Signer(ctx, ids[randN(len(ids))])
			if err != nil {
				return err
			}
			_, err = sg.SignDigests(ctx, keystore.ECDSA, crypto.SHA256, [][]byte{digest[:]})
			return err
		})
	})
}

func openCold(b *testing.B, cfg keystore.Config, st *sqlite.DB) *keystore.HSM {
	b.Helper()
	ks, err := keystore.Open(context.Background(), cfg, st, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ks.Close() })
	return ks
}

func randN(n int) int {
	var b [4]byte
	rand.Read(b[:])
	return int(uint32(b[0])|uint32(b[1])<<8|uint32(b[2])<<16|uint32(b[3])<<24) % n
}

// parallel runs body b.N times in all from exactly workers goroutines and
// reports signatures/s.
func parallel(b *testing.B, workers int, body func(worker int) error) {
	b.Helper()
	var (
		left  atomic.Int64
		wg    sync.WaitGroup
		first atomic.Value
	)
	left.Store(int64(b.N))
	cpu0 := cpuTime()
	b.ResetTimer()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				if err := body(w); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	cpu := cpuTime() - cpu0
	if err, ok := first.Load().(error); ok {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
	// CPU per signature, SoftHSM2's included: on a shared 2-core machine
	// it moves less with the other load than signatures/s does.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchRawCold is SoftHSM2 with nothing of ours: miekg/pkcs11, one
// logged-in session per goroutine, the blobs in memory; others keys are
// unwrapped and left live first, as a live-key cache would hold them.
func benchRawCold(b *testing.B, tok *softhsmtest.Token, what string, blobs [][]byte, digest []byte, n, others int) {
	p := pkcs11.New(tok.Module)
	if err := p.Initialize(); err != nil {
		b.Fatal(err)
	}
	defer func() { p.Finalize(); p.Destroy() }()
	slots, err := p.GetSlotList(true)
	if err != nil {
		b.Fatal(err)
	}
	var slot uint
	for _, s := range slots {
		if ti, err := p.GetTokenInfo(s); err == nil && ti.Label == tok.Label {
			slot = s
		}
	}
	hs := make([]pkcs11.SessionHandle, n)
	for i := range hs {
		if hs[i], err = p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION); err != nil {
			b.Fatal(err)
		}
	}
	defer p.CloseAllSessions(slot)
	if err := p.Login(hs[0], pkcs11.CKU_USER, tok.PIN); err != nil {
		b.Fatal(err)
	}
	p.FindObjectsInit(hs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, keystore.DefaultKEKLabel)})
	kek, _, err := p.FindObjects(hs[0], 1)
	p.FindObjectsFinal(hs[0])
	if err != nil || len(kek) != 1 {
		b.Fatalf("find KEK: %v", err)
	}
	wrap := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil)}
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}
	tmpl := func() []*pkcs11.Attribute {
		return []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
			pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_EC),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
			pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
			pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		}
	}
	for i := range others {
		if _, err := p.UnwrapKey(hs[0], wrap, kek[0], blobs[i%len(blobs)], tmpl()); err != nil {
			b.Fatal(err)
		}
	}
	live := make([]pkcs11.ObjectHandle, n)
	if what == "raw-sign-live" {
		for i := range live {
			if live[i], err = p.UnwrapKey(hs[i], wrap, kek[0], blobs[i], tmpl()); err != nil {
				b.Fatal(err)
			}
		}
	}
	parallel(b, n, func(w int) error {
		s := hs[w]
		if what == "raw-sign-live" {
			if err := p.SignInit(s, mech, live[w]); err != nil {
				return err
			}
			_, err := p.Sign(s, digest)
			return err
		}
		h, err := p.UnwrapKey(s, wrap, kek[0], blobs[randN(len(blobs))], tmpl())
		if err != nil {
			return err
		}
		defer p.DestroyObject(s, h)
		if what == "raw-unwrap-sign-destroy" {
			if err := p.SignInit(s, mech, h); err != nil {
				return err
			}
			_, err = p.Sign(s, digest)
		}
		return err
	})
}
