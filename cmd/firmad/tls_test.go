package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/firma-cloud/firma/internal/firmadtest"
)

// writePKI writes a CA, a server certificate for 127.0.0.1 and a client
// certificate (with keys) as PEM files into dir and returns the client
// certificate's SHA-256 fingerprint.
func writePKI(t *testing.T, dir string) string {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "firma test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.pem", "CERTIFICATE", caDER)
	issue := func(name string, serial int64, usage x509.ExtKeyUsage) []byte {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kd, _ := x509.MarshalPKCS8PrivateKey(k)
		write(name+".pem", "CERTIFICATE", der)
		write(name+".key", "PRIVATE KEY", kd)
		return der
	}
	issue("server", 2, x509.ExtKeyUsageServerAuth)
	client := issue("client", 3, x509.ExtKeyUsageClientAuth)
	sum := sha256.Sum256(client)
	return hex.EncodeToString(sum[:])
}

// firmad serves TLS on both listeners and admits an operator by client
// certificate alone; plaintext clients are refused. A citizen's
// certificate from a CA of registry.trusted_cas (DNIe, FNMT) passes the
// handshake, for electronic-certificate registration, but does not make
// its holder an operator.
func TestTLSAndClientCertificate(t *testing.T) {
	s := initState(t)
	v := filepath.Join(s.dir, "var")
	fp := writePKI(t, v)
	dnie := filepath.Join(v, "dnie")
	if err := os.MkdirAll(dnie, 0o700); err != nil {
		t.Fatal(err)
	}
	writePKI(t, dnie)
	// Edit the file as a generic document so that sections of features
	// this test does not link survive.
	path := filepath.Join(v, "firmad.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	doc["tls"] = map[string]any{"cert": "var/server.pem", "key": "var/server.key", "client_ca": "var/ca.pem"}
	doc["registry"] = map[string]any{"trusted_cas": []string{"var/dnie/ca.pem"}}
	auth := doc["auth"].(map[string]any)
	auth["operators"] = append(auth["operators"].([]any), map[string]any{"name": "robot", "cert_sha256": fp})
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	d := s.start(t)

	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(v, "ca.pem"))
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := hc.Get("https://" + d.http + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("https /healthz: %v", err)
	}
	resp.Body.Close()
	citizen, err := tls.LoadX509KeyPair(filepath.Join(dnie, "client.pem"), filepath.Join(dnie, "client.key"))
	if err != nil {
		t.Fatal(err)
	}
	hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{citizen}}}}
	resp, err = hc.Get("https://" + d.http + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("https /healthz with a citizen certificate of a trusted CA: %v", err)
	}
	resp.Body.Close()

	run := func(env []string, args ...string) (int, string) {
		cmd := exec.Command(filepath.Join(bin, "firmactl"), append(args, "--addr", d.grpc)...)
		cmd.Dir, cmd.Env = s.dir, firmadtest.CleanEnv(env...)
		out, err := cmd.CombinedOutput()
		return exitCode(err), string(out)
	}
	noToken := []string{"FIRMA_TOKEN_FILE=" + filepath.Join(s.dir, "no-token")}
	if code, out := run(noToken, "keys", "generate", "--user", "12345678Z", "--ca", "var/ca.pem", "--cert", "var/client.pem", "--key-file", "var/client.key"); code != 0 || !strings.Contains(out, "BEGIN PUBLIC KEY") {
		t.Fatalf("mTLS operator: exit %d\n%s", code, out)
	}
	if code, out := run(nil, "keys", "list", "--ca", "var/ca.pem"); code != 0 || !strings.Contains(out, "12345678Z") {
		t.Fatalf("bearer token over TLS: exit %d\n%s", code, out)
	}
	if code, out := run([]string{"FIRMA_TOKEN=wrong"}, "keys", "list", "--ca", "var/ca.pem"); code != 1 || !strings.Contains(out, "Unauthenticated") {
		t.Fatalf("bad token over TLS: exit %d\n%s", code, out)
	}
	if code, out := run(noToken, "keys", "list", "--ca", "var/ca.pem", "--cert", "var/dnie/client.pem", "--key-file", "var/dnie/client.key"); code != 1 || !strings.Contains(out, "Unauthenticated") {
		t.Fatalf("citizen certificate as an operator: exit %d, want Unauthenticated\n%s", code, out)
	}
	if code, out := run(nil, "keys", "list"); code != 1 {
		t.Fatalf("plaintext client against a TLS server: exit %d\n%s", code, out)
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit %d:\n%s", code, d.stderr)
	}
}
