package bench

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digitorus/timestamp"

	"github.com/firma-cloud/firma/api/rest/tsahttp"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signing"
	"github.com/firma-cloud/firma/tsa"
)

// BenchmarkTSA measures the built-in TSA (issue 5) in tokens/s, in process
// and over loopback HTTP, next to its baseline: openssl ts -reply, one
// process per token, with a software key of the same type (P-256) and the
// same policy, digest, accuracy and ESS attribute, in the same run.
func BenchmarkTSA(b *testing.B) {
	f := setup(b)
	ks, st, err := f.open(keystore.ModeToken, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	defer ks.Close()
	ctx := context.Background()
	hsm := func(owner string) *keystore.Signer {
		k, err := ks.GenerateMode(ctx, owner, keystore.ECP256, keystore.ModeToken)
		if err != nil {
			b.Fatal(err)
		}
		s, err := ks.Signer(ctx, k.ID)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	caKey := hsm("bench:tsa-ca")
	caCert := tsaBenchCA(b, caKey)
	tsaKey := hsm(tsa.Owner)
	tsaCert, err := tsa.IssueCertificate(caCert, caKey, tsaKey.Public(), tsa.CertOptions{})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := tsa.NewServer(tsa.ServerConfig{
		Signer: tsaKey, Cert: tsaCert, Chain: []*x509.Certificate{caCert}, Signing: benchSigning(b, ks),
		Policy: tsaBenchPolicy, Serials: tsa.NewSequence(st, "bench-"+randHex(4), 1), Issuance: st,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close(ctx)
	d := benchDigest
	query, err := (&timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: d, Certificates: true, Nonce: big.NewInt(42)}).Marshal()
	if err != nil {
		b.Fatal(err)
	}
	report := func(b *testing.B) { b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s") }

	b.Run("builtin", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, fail, err := srv.Respond(ctx, query); err != nil || fail >= 0 {
					b.Errorf("respond: %v %v", fail, err)
					return
				}
			}
		})
		report(b)
	})
	b.Run("builtin-http", func(b *testing.B) {
		hs := httptest.NewServer(tsahttp.Handler(srv, nil))
		defer hs.Close()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := http.Post(hs.URL, tsa.QueryContentType, bytes.NewReader(query))
				if err != nil {
					b.Error(err)
					return
				}
				_, err = new(bytes.Buffer).ReadFrom(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					b.Errorf("HTTP %d: %v", resp.StatusCode, err)
					return
				}
			}
		})
		report(b)
	})
	b.Run("openssl-ts-reply", func(b *testing.B) {
		tsaBenchOpenSSL(b, caCert, caKey, query)
		report(b)
	})
}

var tsaBenchPolicy = asn1.ObjectIdentifier{0, 4, 0, 2023, 1, 1}

func tsaBenchCA(b *testing.B, key crypto.Signer) *x509.Certificate {
	b.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Bench TSA CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		b.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// tsaBenchConf is openssl's TSA configuration matching the built-in TSA.
// TSA_SERIAL is one file per concurrent process: openssl does not lock it.
const tsaBenchConf = `[ tsa ]
default_tsa = tsa1
[ tsa1 ]
dir               = $ENV::TSA_DIR
serial            = $ENV::TSA_SERIAL
crypto_device     = builtin
signer_cert       = $dir/tsa.pem
certs             = $dir/ca.pem
signer_key        = $dir/tsa.key
signer_digest     = sha256
default_policy    = 0.4.0.2023.1.1
digests           = sha256, sha384, sha512
accuracy          = secs:1
ordering          = no
tsa_name          = yes
ess_cert_id_chain = no
ess_cert_id_alg   = sha256
`

func tsaBenchOpenSSL(b *testing.B, caCert *x509.Certificate, caKey crypto.Signer, query []byte) {
	dir := b.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	cert, err := tsa.IssueCertificate(caCert, caKey, key.Public(), tsa.CertOptions{})
	if err != nil {
		b.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		b.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			b.Fatal(err)
		}
		return p
	}
	write("tsa.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
	write("tsa.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	caFile := write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caCert.Raw}))
	cnf := write("tsa.cnf", []byte(tsaBenchConf))
	qf := write("q.tsq", query)
	reply := func(id int64, first bool) (string, error) {
		serial := filepath.Join(dir, fmt.Sprintf("serial-%d", id))
		if first {
			write(filepath.Base(serial), []byte("01\n"))
		}
		out := filepath.Join(dir, fmt.Sprintf("r-%d.tsr", id))
		cmd := exec.Command("openssl", "ts", "-reply", "-config", cnf, "-queryfile", qf, "-out", out)
		cmd.Env = append(os.Environ(), "TSA_DIR="+dir, "TSA_SERIAL="+serial)
		if msg, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("openssl ts -reply: %v: %s", err, msg)
		}
		return out, nil
	}
	// The baseline must do the same work: its reply has to verify.
	out, err := reply(0, true)
	if err != nil {
		b.Fatal(err)
	}
	msg, err := exec.Command("openssl", "ts", "-verify", "-queryfile", qf, "-in", out, "-CAfile", caFile,
		"-untrusted", filepath.Join(dir, "tsa.pem")).CombinedOutput()
	if err != nil || !strings.Contains(string(msg), "Verification: OK") {
		b.Fatalf("openssl baseline reply does not verify: %v: %s", err, msg)
	}
	var worker atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		id := worker.Add(1)
		for first := true; pb.Next(); first = false {
			if _, err := reply(id, first); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchSigning is a signing service on ks, recording in an audit log of
// its own (through the journal, as firmad's): the built-in TSA's key signs
// only through one, two audit records per token.
func benchSigning(b *testing.B, ks *keystore.HSM) *signing.Service {
	al, err := audit.Open(context.Background(), auditDB(b, false), audit.Options{Node: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { al.Close() })
	sg, err := signing.New(signing.Options{Keys: ks, Core: signer.New(ks, signer.Config{}), Auditor: al})
	if err != nil {
		b.Fatal(err)
	}
	return sg
}
