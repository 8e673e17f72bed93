package tsa

import (
	"context"
	"crypto/x509"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/keystore"
)

// TestLoadUnit creates a unit, reloads it as a restart would, re-certifies
// its key when the issuing CA changes, and rolls the key over when its
// usage period ends or its certificate nears its end.
func TestLoadUnit(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	p, other := e.newPKI("Firma"), e.newPKI("Next")
	cfgFor := func(pk *pki, now time.Time) UnitConfig {
		return UnitConfig{Auditor: e.auditLog(), Issuer: pk.issuing, Issue: IssuerFunc(pk.issuing, pk.issuingKey, CertOptions{Now: now, Validity: 3 * 365 * 24 * time.Hour}),
			KeyUsagePeriod: 365 * 24 * time.Hour, Now: func() time.Time { return now }}
	}
	now := time.Now()
	first, err := LoadUnit(ctx, e.ks, e.db, cfgFor(p, now))
	if err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	steps := []struct {
		name            string
		cfg             UnitConfig
		newKey, newCert bool
		issuer          *pki
	}{
		{"reload", cfgFor(p, now.Add(time.Hour)), false, false, p},
		{"issuing CA changed: same key re-certified", cfgFor(other, now.Add(2*time.Hour)), false, true, other},
		{"reload after re-certification", cfgFor(other, now.Add(3*time.Hour)), false, false, other},
		{"key usage period over: rollover", cfgFor(other, now.Add(366*day)), true, true, other},
		{"reload after rollover", cfgFor(other, now.Add(367*day)), false, false, other},
	}
	prev := first
	for _, s := range steps {
		u, err := LoadUnit(ctx, e.ks, e.db, s.cfg)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if newKey := u.Signer.Key().ID != prev.Signer.Key().ID; newKey != s.newKey {
			t.Fatalf("%s: new key = %v, want %v", s.name, newKey, s.newKey)
		}
		if newCert := !u.Cert.Equal(prev.Cert); newCert != s.newCert {
			t.Fatalf("%s: new certificate = %v, want %v", s.name, newCert, s.newCert)
		}
		if err := u.Cert.CheckSignatureFrom(s.issuer.issuing); err != nil {
			t.Fatalf("%s: certificate not from the expected CA: %v", s.name, err)
		}
		if err := CheckCertificate(u.Cert); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if !publicKeysEqual(u.Cert.PublicKey, u.Signer.Public()) {
			t.Fatalf("%s: certificate is not for the unit's key", s.name)
		}
		prev = u
	}

	// A certificate near its end rolls the key over even within the key's
	// usage period: here a second unit's CA issues for 30 days only.
	short := cfgFor(other, now)
	short.Name = "short"
	short.Issue = IssuerFunc(other.issuing, other.issuingKey, CertOptions{Now: now, Validity: 30 * day})
	u, err := LoadUnit(ctx, e.ks, e.db, short)
	if err != nil {
		t.Fatal(err)
	}
	short.Now = func() time.Time { return now.Add(22 * day) }
	rolled, err := LoadUnit(ctx, e.ks, e.db, short)
	if err != nil {
		t.Fatal(err)
	}
	if rolled.Signer.Key().ID == u.Signer.Key().ID {
		t.Fatal("certificate with 8 of 30 days left: key not rolled over")
	}

	keys, err := e.ks.Keys(ctx, Owner, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 4 {
		t.Fatalf("%d TSA keys in the keystore, want 4 (two units, each rolled over once, old keys kept for running replicas)", len(keys))
	}
	// A token from the rolled-over unit verifies under the new root.
	srv := e.tsa(other, keystore.ECP256, func(c *ServerConfig) {
		c.Signer, c.Cert, c.Chain = rolled.Signer, rolled.Cert, []*x509.Certificate{other.issuing}
		c.Now = short.Now
	})
	reply, fail, err := srv.Respond(ctx, sha256Query(t, []byte("x"), true))
	if err != nil || fail != FailNone {
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
	cfg := UnitConfig{Auditor: e.auditLog(), Issuer: p.issuing, Issue: IssuerFunc(p.issuing, p.issuingKey, CertOptions{})}
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

// TestRollOverRace has replicas roll the key over at once: one new key
// wins, the others destroy theirs and use it.
func TestRollOverRace(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	p := e.newPKI("Firma")
	at := func(now time.Time) UnitConfig {
		return UnitConfig{Auditor: e.auditLog(), Issuer: p.issuing, Issue: IssuerFunc(p.issuing, p.issuingKey, CertOptions{Now: now}),
			Now: func() time.Time { return now }}
	}
	now := time.Now()
	first, err := LoadUnit(ctx, e.ks, e.db, at(now))
	if err != nil {
		t.Fatal(err)
	}
	const replicas = 4
	units := make([]*Unit, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			units[i], errs[i] = LoadUnit(ctx, e.ks, e.db, at(now.Add(DefaultKeyUsagePeriod+time.Hour)))
		}()
	}
	wg.Wait()
	for i := range replicas {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		if id := units[i].Signer.Key().ID; id != units[0].Signer.Key().ID || id == first.Signer.Key().ID {
			t.Fatalf("replica %d has key %s (first %s, replica 0 %s)", i, id, first.Signer.Key().ID, units[0].Signer.Key().ID)
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
	// The first key is kept for replicas still signing with it.
	if live != 2 {
		t.Fatalf("%d live TSA keys of %d made, want 2", live, len(keys))
	}
}

// TestLoadUnitAuditedFirst: a TSA key is made (first set-up, rollover)
// only once its intent is in the audit log. With the audit store refusing
// writes the set-up and the rollover are refused and the keys are as they
// were; a generation that fails after its intent is recorded as a
// failure. Cost: one token, three EC keys.
func TestLoadUnitAuditedFirst(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	p := e.newPKI("Firma")
	now := time.Now()
	at := func(now time.Time) UnitConfig {
		return UnitConfig{Auditor: e.auditLog(), Issuer: p.issuing, Issue: IssuerFunc(p.issuing, p.issuingKey, CertOptions{Now: now}),
			Now: func() time.Time { return now }}
	}
	refuse := func(on bool) {
		t.Helper()
		q := `DROP TRIGGER refuse_audit`
		if on {
			q = `CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_records BEGIN SELECT RAISE(ABORT, 'audit store unavailable'); END`
		}
		if _, err := e.db.SQL().ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	tsaKeys := func() int {
		t.Helper()
		keys, err := e.ks.Keys(ctx, Owner, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	changes := func() []string {
		t.Helper()
		page, err := e.auditLog().Query(ctx, audit.Filter{Events: []audit.Event{audit.KeyGenerateRequested, audit.KeyGenerated,
			audit.KeyDestroyRequested, audit.KeyDestroyed}})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for i, r := range page.Records {
			out = append(out, string(r.Event)+"/"+string(r.Outcome))
			if i%2 == 1 && r.Details[audit.DetailKeyChange] != page.Records[i-1].Details[audit.DetailKeyChange] {
				t.Errorf("record %d not linked to its intent", i)
			}
		}
		return out
	}

	refuse(true)
	if _, err := LoadUnit(ctx, e.ks, e.db, at(now)); !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("first set-up with the audit store refusing: %v, want audit unavailable", err)
	}
	if n := tsaKeys(); n != 0 {
		t.Fatalf("%d TSA keys after a refused set-up", n)
	}
	refuse(false)
	first, err := LoadUnit(ctx, e.ks, e.db, at(now))
	if err != nil {
		t.Fatal(err)
	}

	// A rollover refused keeps the old key in service.
	later := now.Add(DefaultKeyUsagePeriod + time.Hour)
	refuse(true)
	if _, err := LoadUnit(ctx, e.ks, e.db, at(later)); !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("rollover with the audit store refusing: %v, want audit unavailable", err)
	}
	refuse(false)
	if n := tsaKeys(); n != 1 {
		t.Fatalf("%d TSA keys after a refused rollover, want 1", n)
	}
	if rec, err := e.db.TSAUnit(ctx, "default"); err != nil || rec.KeyID != first.Signer.Key().ID {
		t.Fatalf("unit after a refused rollover: %v, %v", rec, err)
	}

	// The HSM refuses after the intent: a key type it cannot make.
	bad := at(now)
	bad.Name, bad.KeyType = "bad", keystore.Type("ec-p999")
	if _, err := LoadUnit(ctx, e.ks, e.db, bad); err == nil {
		t.Fatal("a unit with a key type nobody makes")
	}
	rolled, err := LoadUnit(ctx, e.ks, e.db, at(later))
	if err != nil || rolled.Signer.Key().ID == first.Signer.Key().ID {
		t.Fatalf("rollover: %v", err)
	}
	want := []string{"key.generate_requested/success", "key.generated/success", // first set-up
		"key.generate_requested/success", "key.generated/failure", // bad type
		"key.generate_requested/success", "key.generated/success"} // rollover
	if got := changes(); !slices.Equal(got, want) {
		t.Fatalf("key change records\n%v\nwant\n%v", got, want)
	}
}
