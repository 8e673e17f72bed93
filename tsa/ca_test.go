package tsa

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/keystore"
	"github.com/prometheus/client_golang/prometheus"
)

// TestBuiltInCA runs the TSA as firmad wires it: a unit certified by the
// ca package's issuing CA (read from the store, key in the HSM), checked
// by openssl against that CA's root.
func TestBuiltInCA(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	authority, err := ca.New(ca.Config{BaseURL: "http://127.0.0.1:7780"}, e.ks, e.db, nil, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	res, err := authority.Init(ctx)
	if err != nil {
		t.Fatalf("ca init: %v", err)
	}
	rec, err := e.db.Authority(ctx, "issuing")
	if err != nil {
		t.Fatal(err)
	}
	issuerKey, err := e.ks.Signer(ctx, rec.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	unit, err := LoadUnit(ctx, e.ks, e.db, UnitConfig{Auditor: e.auditLog(), Issuer: res.Issuing, Issue: IssuerFunc(res.Issuing, issuerKey, CertOptions{})})
	if err != nil {
		t.Fatal(err)
	}
	srv := e.tsa(nil, keystore.ECP256, func(c *ServerConfig) {
		c.Signer, c.Cert, c.Chain = unit.Signer, unit.Cert, []*x509.Certificate{res.Issuing}
	})
	dir := t.TempDir()
	data := filepath.Join(dir, "d.txt")
	os.WriteFile(data, []byte("expediente 2026/0042"), 0o600)
	query := filepath.Join(dir, "q.tsq")
	if out, err := run(t, "openssl", "ts", "-query", "-data", data, "-sha384", "-cert", "-out", query); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	q, _ := os.ReadFile(query)
	_, body := post(t, serve(t, srv), QueryContentType, q)
	reply := filepath.Join(dir, "r.tsr")
	os.WriteFile(reply, body, 0o600)
	out, err := run(t, "openssl", "ts", "-verify", "-queryfile", query, "-in", reply,
		"-CAfile", writePEM(t, filepath.Join(dir, "root.pem"), res.Root),
		"-untrusted", writePEM(t, filepath.Join(dir, "chain.pem"), unit.Cert, res.Issuing))
	if err != nil || !strings.Contains(out, "Verification: OK") {
		t.Fatalf("openssl ts -verify: %v\n%s", err, out)
	}
}
