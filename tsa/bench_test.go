package tsa

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/firma-cloud/firma/keystore"
)

// BenchmarkServer measures the built-in TSA in tokens/s, in process and
// over loopback HTTP, next to openssl ts -reply with a software key of the
// same type on the same machine in the same run. Every variant answers the
// same certReq query with a SHA-256 ECDSA P-256 token.
func BenchmarkServer(b *testing.B) {
	e := newEnv(b)
	p := e.newPKI("Bench")
	query := sha256Query(b, []byte("benchmark"), true)
	for _, block := range []int{1, 64} {
		srv := e.tsa(p, keystore.ECP256, func(c *ServerConfig) { c.Serials = NewSequence(e.db, fmt.Sprint("bench-", block), block) })
		b.Run(fmt.Sprintf("respond-serial-block%d", block), func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, fail, err := srv.Respond(context.Background(), query); err != nil || fail >= 0 {
						b.Errorf("respond: %v %v", fail, err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
	srv := e.tsa(p, keystore.ECP256, nil)
	url := serve(b, srv)
	b.Run("http-serial-block1", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := http.Post(url, QueryContentType, bytes.NewReader(query))
				if err != nil {
					b.Error(err)
					return
				}
				_, err = bytes.NewBuffer(nil).ReadFrom(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Errorf("HTTP %d: %v", resp.StatusCode, err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
	})
	b.Run("openssl-ts-reply", func(b *testing.B) { benchOpenSSLReply(b, p, query) })
}

// benchOpenSSLReply runs one openssl ts -reply process per token, as many
// at once as RunParallel has goroutines.
func benchOpenSSLReply(b *testing.B, p *pki, query []byte) {
	dir := b.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	cert, err := IssueCertificate(p.issuing, p.issuingKey, key.Public(), CertOptions{})
	if err != nil {
		b.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		b.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "tsa.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	writePEM(b, filepath.Join(dir, "tsa.pem"), cert)
	writePEM(b, filepath.Join(dir, "chain.pem"), p.issuing)
	writePEM(b, filepath.Join(dir, "root.pem"), p.root)
	qf := filepath.Join(dir, "q.tsq")
	os.WriteFile(qf, query, 0o600)
	cnf, err := filepath.Abs("testdata/openssl-tsa.cnf")
	if err != nil {
		b.Fatal(err)
	}
	var worker atomic.Int64
	reply := func(id int64, n int) error {
		serial := filepath.Join(dir, fmt.Sprintf("serial-%d", id))
		if n == 0 {
			os.WriteFile(serial, []byte("01\n"), 0o600)
		}
		out := filepath.Join(dir, fmt.Sprintf("r-%d.tsr", id))
		cmd := exec.Command("openssl", "ts", "-reply", "-config", cnf, "-queryfile", qf, "-out", out)
		cmd.Env = append(os.Environ(), "TSA_DIR="+dir, "TSA_SERIAL="+serial, "TSA_ESS_ALG=sha256")
		if msg, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("openssl ts -reply: %v: %s", err, msg)
		}
		return nil
	}
	// Check once that openssl's reply is as valid as ours, so that both
	// sides do the same work.
	if err := reply(-1, 0); err != nil {
		b.Fatal(err)
	}
	msg, err := exec.Command("openssl", "ts", "-verify", "-queryfile", qf, "-in", filepath.Join(dir, "r--1.tsr"),
		"-CAfile", filepath.Join(dir, "root.pem"), "-untrusted", filepath.Join(dir, "chain.pem")).CombinedOutput()
	if err != nil || !strings.Contains(string(msg), "Verification: OK") {
		b.Fatalf("openssl baseline reply does not verify: %v: %s", err, msg)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := worker.Add(1)
		for n := 0; pb.Next(); n++ {
			if err := reply(id, n); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}
