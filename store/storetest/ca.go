package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/firma-cloud/firma/store"
)

func testCA(t *testing.T, open Open) {
	cases(t, open, []test{
		{"certificates", caCertificates},
		{"crl numbers", caCRLNumbers},
		{"authorities", caAuthorities},
	})
}

func caCert(id, owner, serial, status string) *store.Certificate {
	now := time.Now().UTC()
	return &store.Certificate{ID: id, Owner: owner, KeyID: "key-" + id, Serial: serial, Issuer: "issuing", Status: status,
		Cert: []byte{0x30, 0x00}, NotBefore: now, NotAfter: now.Add(time.Hour), CreatedAt: now}
}

func caCertificates(t *testing.T, db store.Store, _ Reopen) {
	ctx := context.Background()
	if err := db.CreateCertificate(ctx, caCert("c1", "12345678Z", "4a01", store.CertValid)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		c    *store.Certificate
		want error
	}{
		{"second valid for the same citizen", caCert("c2", "12345678Z", "4a02", store.CertValid), store.ErrConflict},
		{"same serial", caCert("c3", "23456789D", "4a01", store.CertValid), store.ErrConflict},
		{"same id", caCert("c1", "23456789D", "4a03", store.CertValid), store.ErrConflict},
		{"pending beside the valid one", caCert("c4", "12345678Z", "", store.CertPending), nil},
		{"second pending", caCert("c5", "12345678Z", "", store.CertPending), store.ErrConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := db.CreateCertificate(ctx, tc.c); !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
				t.Fatalf("CreateCertificate = %v, want %v", err, tc.want)
			}
		})
	}

	// Completing the pending request supersedes c1 in one transaction.
	next := caCert("c4", "12345678Z", "4a04", store.CertValid)
	at := time.Now().UTC()
	if err := db.ReplaceCertificate(ctx, "c1", next, at, 4); err != nil {
		t.Fatal(err)
	}
	old, err := db.Certificate(ctx, "c1")
	if err != nil || old.Status != store.CertRevoked || old.Reason != 4 || old.SupersededBy != "c4" || !old.RevokedAt.Equal(at) {
		t.Fatalf("superseded %+v, %v", old, err)
	}
	got, err := db.CertificateBySerial(ctx, "issuing", "4a04")
	if err != nil || got.ID != "c4" || got.Status != store.CertValid {
		t.Fatalf("by serial %+v, %v", got, err)
	}
	// A replacement that cannot be stored leaves the old one valid.
	if err := db.ReplaceCertificate(ctx, "c4", caCert("c6", "12345678Z", "4a01", store.CertValid), at, 4); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("replacement with a used serial = %v", err)
	}
	if c4, _ := db.Certificate(ctx, "c4"); c4.Status != store.CertValid {
		t.Fatalf("failed replacement revoked the old certificate: %s", c4.Status)
	}
	if err := db.RevokeCertificate(ctx, "c1", at, 1); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoking a revoked certificate = %v, want ErrNotFound", err)
	}
	revoked, err := db.RevokedCertificates(ctx, "issuing", time.Now())
	if err != nil || len(revoked) != 1 || revoked[0].ID != "c1" {
		t.Errorf("revoked list %v, %v", revoked, err)
	}
	// Expired revoked certificates leave the CRL.
	if revoked, _ := db.RevokedCertificates(ctx, "issuing", time.Now().Add(2*time.Hour)); len(revoked) != 0 {
		t.Errorf("revoked list after expiry has %d entries", len(revoked))
	}
	list, err := db.Certificates(ctx, store.CertificateFilter{Owner: "12345678Z", Limit: 1})
	if err != nil || len(list) != 1 || list[0].ID != "c1" {
		t.Fatalf("first page %v, %v", list, err)
	}
	list, _ = db.Certificates(ctx, store.CertificateFilter{Owner: "12345678Z", After: "c1"})
	if len(list) != 1 || list[0].ID != "c4" {
		t.Errorf("second page %v", list)
	}
}

func caCRLNumbers(t *testing.T, db store.Store, reopen Reopen) {
	ctx := context.Background()
	other := reopen(t)
	// Numbers are unique and increasing under concurrent allocation.
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	for i := range 20 {
		h := db
		if i%2 == 1 {
			h = other // another node
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := h.NextCRLNumber(ctx, "issuing")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			seen[n] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(seen) != 20 || !seen[1] || !seen[20] {
		t.Fatalf("allocated %v, want 1..20 once each", seen)
	}
	if n, _ := db.NextCRLNumber(ctx, "root"); n != 1 {
		t.Errorf("root's first number %d, want 1", n)
	}
	now := time.Now().UTC()
	for _, n := range []int64{5, 3, 7, 6} {
		if err := db.SaveCRL(ctx, &store.CRL{Issuer: "issuing", Number: n, ThisUpdate: now, NextUpdate: now.Add(time.Hour), DER: []byte{byte(n)}}); err != nil {
			t.Fatal(err)
		}
	}
	crl, err := db.LatestCRL(ctx, "issuing")
	if err != nil || crl.Number != 7 || crl.DER[0] != 7 {
		t.Fatalf("latest %+v, %v; want number 7 (an older CRL must not replace a newer one)", crl, err)
	}
	if _, err := db.LatestCRL(ctx, "root"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("root CRL = %v, want ErrNotFound", err)
	}
}

func caAuthorities(t *testing.T, db store.Store, _ Reopen) {
	ctx := context.Background()
	now := time.Now().UTC()
	a := &store.Authority{Name: "issuing", KeyID: "k1", Cert: []byte{1}, CreatedAt: now, UpdatedAt: now}
	if err := db.CreateAuthority(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateAuthority(ctx, a); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second create = %v, want ErrConflict", err)
	}
	if err := db.ReplaceAuthority(ctx, &store.Authority{Name: "ocsp", KeyID: "k2", Cert: []byte{2}, UpdatedAt: now}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("replace missing = %v, want ErrNotFound", err)
	}
	a.KeyID, a.Cert, a.External = "k3", []byte{3}, true
	if err := db.ReplaceAuthority(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := db.Authority(ctx, "issuing")
	if err != nil || got.KeyID != "k3" || got.Cert[0] != 3 || !got.External {
		t.Errorf("authority %+v, %v", got, err)
	}
	if _, err := db.Authority(ctx, "root"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing authority = %v", err)
	}
}
