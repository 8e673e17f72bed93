package loadgen

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"image/png"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/registry"
)

func TestConfigRefusals(t *testing.T) {
	good := func() Config {
		return Config{Nodes: []string{"http://127.0.0.1:8080"}, APIKey: "k", OperatorToken: "t",
			Citizens: SandboxCitizens(0, 4, "p"), Workers: 2, Count: 1}
	}
	tests := []struct {
		name string
		mod  func(*Config)
		want error
	}{
		{"public address", func(c *Config) { c.Nodes = []string{"http://10.1.2.3:8080"} }, ErrNotLoopback},
		{"host name", func(c *Config) { c.Nodes = []string{"http://127.0.0.1:1", "https://clave.example.es"} }, ErrNotLoopback},
		{"not a URL", func(c *Config) { c.Nodes = []string{"127.0.0.1:8080"} }, ErrConfig},
		{"no node", func(c *Config) { c.Nodes = nil }, ErrConfig},
		{"no API key", func(c *Config) { c.APIKey = "" }, ErrConfig},
		{"no operator token", func(c *Config) { c.OperatorToken = "" }, ErrConfig},
		{"no bound", func(c *Config) { c.Count, c.Duration = 0, 0 }, ErrConfig},
		{"fewer citizens than workers", func(c *Config) { c.Workers = 5 }, ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.mod(&c)
			rep, err := Run(context.Background(), c)
			if !errors.Is(err, tt.want) || rep != nil {
				t.Fatalf("got %v %v, want %v", rep, err, tt.want)
			}
		})
	}
	for _, n := range []string{"http://localhost:1", "http://[::1]:1", "http://127.0.0.2:1"} {
		c := good()
		c.Nodes = []string{n}
		if err := c.check(); err != nil {
			t.Errorf("%s refused: %v", n, err)
		}
	}
}

// The sandbox citizens are ones the registry accepts, and distinct.
func TestSandboxCitizens(t *testing.T) {
	cs := SandboxCitizens(123, 500, "pw")
	seen := map[string]bool{}
	for _, c := range cs {
		id, err := registry.NormalizeID("id", c.ID)
		if err != nil || id != c.ID {
			t.Fatalf("%s: %v", c.ID, err)
		}
		if _, err := registry.NormalizeMobile("mobile", c.Mobile); err != nil {
			t.Fatalf("%s: %v", c.Mobile, err)
		}
		if _, err := registry.NormalizeName("surnames", "Prueba "+letters(c.ID)); err != nil {
			t.Fatalf("surname of %s: %v", c.ID, err)
		}
		if seen[c.ID] || seen[c.Mobile] {
			t.Fatalf("%s or %s twice", c.ID, c.Mobile)
		}
		seen[c.ID], seen[c.Mobile] = true, true
	}
}

func testCert(t *testing.T) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "10000001S"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return k, der
}

func signed(t *testing.T, k *ecdsa.PrivateKey, chain []byte, digests ...[]byte) *result {
	t.Helper()
	r := &result{State: "done", Chain: [][]byte{chain}}
	for _, d := range digests {
		sig, err := ecdsa.SignASN1(rand.Reader, k, d)
		if err != nil {
			t.Fatal(err)
		}
		r.Documents = append(r.Documents, struct {
			Signature []byte `json:"signature"`
		}{sig})
	}
	return r
}

func digest(s string) []byte { d := sha256.Sum256([]byte(s)); return d[:] }

func TestCollectorCheck(t *testing.T) {
	k, der := testCert(t)
	_, otherDer := testCert(t)
	c := newCollector()
	d1, d2 := digest("uno"), digest("dos")
	good := signed(t, k, der, d1, d2)
	if err := c.check("tx1", good, [][]byte{d1, d2}); err != nil {
		t.Fatalf("good result: %v", err)
	}
	tests := []struct {
		name    string
		id      string
		res     *result
		digests [][]byte
		want    string
	}{
		{"same transaction again", "tx1", signed(t, k, der, d1), [][]byte{d1}, "collected twice"},
		{"a signature returned again", "tx2", good, [][]byte{d1, d2}, "already returned"},
		{"signature over another digest", "tx3", signed(t, k, der, d2), [][]byte{d1}, "does not verify"},
		{"other certificate", "tx4", signed(t, k, otherDer, d1), [][]byte{d1}, "does not verify"},
		{"a document without a signature", "tx5", signed(t, k, der, d1), [][]byte{d1, d2}, "1 signatures for 2 documents"},
		{"no chain", "tx6", &result{State: "done"}, [][]byte{d1}, "without a certificate chain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.check(tt.id, tt.res, tt.digests)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	if c.duplicates != 2 || c.lost != 1 {
		t.Fatalf("duplicates %d lost %d, want 2 and 1", c.duplicates, c.lost)
	}
}

func TestReport(t *testing.T) {
	begin := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	c := newCollector()
	for i := 1; i <= 100; i++ {
		d := time.Duration(i) * time.Millisecond
		c.add(Transaction{ID: "t", Start: begin.Add(time.Duration(i%3) * time.Second), Create: d / 4, Approve: d / 2,
			Collect: d / 4, Total: d, Signatures: 2})
	}
	c.add(Transaction{Start: begin, Step: "approve", Err: "approve: 422 otp_wrong"})
	r := c.report(begin, begin.Add(4*time.Second), Config{Nodes: []string{"http://127.0.0.1:1"}, Workers: 3, Documents: 2})
	if r.Transactions != 100 || r.Signatures != 200 || r.Failed != 1 || r.Errors["approve"] != 1 || r.OK() {
		t.Fatalf("counts: %+v", r)
	}
	if r.TxPerSecond != 25 || r.SigPerSecond != 50 {
		t.Fatalf("rates %v %v", r.TxPerSecond, r.SigPerSecond)
	}
	if l := r.Latency["total"]; l.P50 != 50 || l.P95 != 95 || l.P99 != 99 || l.Max != 100 {
		t.Fatalf("total latency %+v", l)
	}
	if len(r.Series) != 5 {
		t.Fatalf("%d points for a 4 s run", len(r.Series))
	}
	n := 0
	for _, p := range r.Series {
		n += p.Transactions
	}
	if n != 100 {
		t.Fatalf("series holds %d transactions", n)
	}
	var text, js, img bytes.Buffer
	if err := r.WriteText(&text); err != nil || !strings.Contains(text.String(), "errors at approve") {
		t.Fatalf("text: %v\n%s", err, text.String())
	}
	if err := r.WriteJSON(&js); err != nil || !strings.Contains(js.String(), `"signatures_per_second": 50`) {
		t.Fatalf("json: %v\n%s", err, js.String())
	}
	if err := r.WritePNG(&img); err != nil {
		t.Fatal(err)
	}
	pic, err := png.Decode(&img)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := pic.Bounds(); b.Dx() < 800 || b.Dy() < 500 {
		t.Fatalf("plot is %v", b)
	}
	if err := (&Report{}).WritePNG(&img); err == nil {
		t.Fatal("plotted an empty run")
	}
}
