package keystore

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"

	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store/testdb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func openInternal(t *testing.T, sessions int) (*HSM, *softhsmtest.Token) {
	t.Helper()
	tok := softhsmtest.New(t)
	st := testdb.Default(t).Open(t)
	ks, err := Open(context.Background(), Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN,
		Sessions: sessions, Registerer: prometheus.NewRegistry()}, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	return ks, tok
}

// signOK signs one digest and checks the signature.
func signOK(t *testing.T, ks *HSM, key *Key) {
	t.Helper()
	sg, err := ks.Signer(context.Background(), key.ID)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("recovery"))
	sigs, err := sg.SignDigests(context.Background(), ECDSA, crypto.SHA256, [][]byte{d[:]})
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	if !ecdsa.VerifyASN1(key.Public.(*ecdsa.PublicKey), d[:], sigs[0]) {
		t.Fatal("signature does not verify")
	}
}

// fill makes the pool open n sessions by holding n of them at once.
func fill(t *testing.T, p *Pool, n int) {
	t.Helper()
	var wg sync.WaitGroup
	hold := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Do(context.Background(), func(*session) error { <-hold; return nil })
		}()
	}
	for {
		p.mu.Lock()
		open := p.open
		p.mu.Unlock()
		if open >= n {
			break
		}
	}
	close(hold)
	wg.Wait()
}

func TestPoolEvictsInvalidatedSession(t *testing.T) {
	ks, _ := openInternal(t, 3)
	key, err := ks.Generate(context.Background(), "12345678Z", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, ks.pool, 3)
	ks.pool.mu.Lock()
	victim := ks.pool.idle[len(ks.pool.idle)-1] // the next one handed out
	ks.pool.mu.Unlock()
	// Invalidate it behind the pool's back, as a token reset or a network
	// HSM dropping a connection does.
	if err := ks.p.CloseSession(victim.h); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		signOK(t, ks, key)
	}
	if got := testutil.ToFloat64(ks.m.errors.WithLabelValues("session")); got != 1 {
		t.Fatalf("session errors = %v, want 1", got)
	}
	// The bad session is never handed out again.
	for i := 0; i < 10; i++ {
		ks.pool.Do(context.Background(), func(s *session) error {
			if s.id == victim.id {
				t.Errorf("evicted session %d handed out again", s.id)
			}
			return nil
		})
	}
	ks.pool.mu.Lock()
	defer ks.pool.mu.Unlock()
	for _, s := range ks.pool.idle {
		if s.id == victim.id {
			t.Fatal("evicted session is back in the idle stack")
		}
	}
}

func TestPoolRecoversLostLogin(t *testing.T) {
	ks, _ := openInternal(t, 2)
	key, err := ks.Generate(context.Background(), "12345678Z", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, ks.pool, 2)
	signOK(t, ks, key)
	// Closing every session also logs the application out.
	if err := ks.p.CloseAllSessions(ks.pool.slot); err != nil {
		t.Fatal(err)
	}
	signOK(t, ks, key)
	signOK(t, ks, key)
	if err := ks.Ping(context.Background()); err != nil {
		t.Fatalf("ping after recovery: %v", err)
	}
}

func TestPoolTokenGone(t *testing.T) {
	ks, tok := openInternal(t, 2)
	key, err := ks.Generate(context.Background(), "12345678Z", ECP256)
	if err != nil {
		t.Fatal(err)
	}
	signOK(t, ks, key)
	if err := tok.Delete(); err != nil {
		t.Fatal(err)
	}
	// Drop what the library still has open, as a removed device does.
	ks.p.CloseAllSessions(ks.pool.slot)
	sg, err := ks.Signer(context.Background(), key.ID)
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("gone"))
	_, err = sg.SignDigests(context.Background(), ECDSA, crypto.SHA256, [][]byte{d[:]})
	if err == nil {
		t.Fatal("signing succeeded with the token deleted")
	}
	if !errors.Is(err, ErrTokenUnavailable) && !errors.Is(err, ErrKeyDestroyed) {
		t.Fatalf("got %v, want a clear token-unavailable error", err)
	}
	if err := ks.Ping(context.Background()); !errors.Is(err, ErrTokenUnavailable) {
		t.Fatalf("ping with the token gone: %v, want ErrTokenUnavailable", err)
	}
}

func TestPoolBusy(t *testing.T) {
	ks, _ := openInternal(t, 1)
	ks.pool.timeout = 50e6 // 50ms
	hold := make(chan struct{})
	started := make(chan struct{})
	done := make(chan struct{})
	go func() {
		ks.pool.Do(context.Background(), func(*session) error { close(started); <-hold; return nil })
		close(done)
	}()
	<-started
	err := ks.pool.Do(context.Background(), func(*session) error { return nil })
	close(hold)
	<-done
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("got %v, want ErrBusy", err)
	}
}
