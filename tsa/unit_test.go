package tsa

import (
	"context"
	"crypto/x509"
	"sync"
	"testing"
	"time"

	"github.com/firma-cloud/firma/keystore"
)

// TestLoadUnit creates a unit, reloads it as a restart would, and renews
// its certificate when it nears its end and when the issuing CA changes.
func TestLoadUnit(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	p, other := e.newPKI("Firma"), e.newPKI("Next")
	cfgFor := func(pk *pki, now time.Time) UnitConfig {
		return UnitConfig{Issuer: pk.issuing, Issue: IssuerFunc(pk.issuing, pk.issuingKey, CertOptions{Now: now}),
			Now: func() time.Time { return now }}
	}
	now := time.Now()
	first, err := LoadUnit(ctx, e.ks, e.db, cfgFor(p, now))
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		cfg     UnitConfig
		renewed bool
		issuer  *pki
	}{
		{"reload", cfgFor(p, now.Add(time.Hour)), false, p},
		{"near end", cfgFor(p, first.Cert.NotAfter.Add(-24*time.Hour)), true, p},
		{"reload after renewal", cfgFor(p, first.Cert.NotAfter.Add(-24*time.Hour)), false, p},
		{"issuing CA changed", cfgFor(other, now), true, other},
	}
	prev := first
	for _, s := range steps {
		u, err := LoadUnit(ctx, e.ks, e.db, s.cfg)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if u.Signer.Key().ID != first.Signer.Key().ID {
			t.Fatalf("%s: key changed from %s to %s", s.name, first.Signer.Key().ID, u.Signer.Key().ID)
		}
		if renewed := u.Cert.SerialNumber.Cmp(prev.Cert.SerialNumber) != 0; renewed != s.renewed {
			t.Fatalf("%s: renewed = %v, want %v", s.name, renewed, s.renewed)
		}
		if err := u.Cert.CheckSignatureFrom(s.issuer.issuing); err != nil {
			t.Fatalf("%s: certificate not from the expected CA: %v", s.name, err)
		}
		if err := CheckCertificate(u.Cert); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		prev = u
	}
	keys, err := e.ks.Keys(ctx, Owner, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].Mode != keystore.ModeToken {
		t.Fatalf("TSA keys in the keystore: %+v", keys)
	}
	// A token from the unit verifies under the new root.
	srv := e.tsa(other, keystore.ECP256, func(c *ServerConfig) {
		c.Signer, c.Cert, c.Chain = prev.Signer, prev.Cert, []*x509.Certificate{other.issuing}
	})
	reply, fail, err := srv.Respond(ctx, sha256Query(t, []byte("x"), true))
	if err != nil || fail >= 0 {
		t.Fatalf("respond: %v %v", fail, err)
	}
	der, err := ParseReply(reply)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyToken(der, VerifyOptions{Roots: other.roots(), Hash: tokenHash, Digest: sha256Of("x")}); err != nil {
		t.Fatalf("verify: %v", err)
	}
}

// TestLoadUnitRace starts two replicas at once on one store: both must end
// up with the same key, and the loser's key must be destroyed.
func TestLoadUnitRace(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	p := e.newPKI("Firma")
	cfg := UnitConfig{Issuer: p.issuing, Issue: IssuerFunc(p.issuing, p.issuingKey, CertOptions{})}
	const replicas = 4
	units := make([]*Unit, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			units[i], errs[i] = LoadUnit(ctx, e.ks, e.db, cfg)
		}()
	}
	wg.Wait()
	for i := range replicas {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		if units[i].Signer.Key().ID != units[0].Signer.Key().ID {
			t.Fatalf("replica %d has key %s, replica 0 %s", i, units[i].Signer.Key().ID, units[0].Signer.Key().ID)
		}
	}
	keys, err := e.ks.Keys(ctx, Owner, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	live := 0
	for _, k := range keys {
		if k.DestroyedAt.IsZero() {
			live++
		}
	}
	t.Logf("%d replicas made %d keys", replicas, len(keys))
	if live != 1 {
		t.Fatalf("%d live TSA keys of %d made, want 1", live, len(keys))
	}
}
