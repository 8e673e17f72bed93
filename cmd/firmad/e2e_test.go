package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/internal/firmadtest"
	"github.com/firma-cloud/firma/store/postgres/pgtest"
)

// bin holds firmad and firmactl, built once for every test here.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "firmad-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = dir
	if err := firmadtest.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	pgtest.Cleanup()
	os.Exit(code)
}

// state is a folder made by `firmactl init`, with its own SoftHSM2 token.
type state struct {
	dir  string
	http string // listen.http and the host of ca.base_url
}

func initState(t *testing.T) *state {
	t.Helper()
	s := &state{dir: t.TempDir()}
	// The HTTP port is fixed before init: the CA's URLs in certificates
	// (ca.base_url) must name the port firmad will serve on.
	s.http = firmadtest.FreeAddr(t)
	out := s.firmactl(t, 0, "init", "--state", "var", "--listen-grpc", "127.0.0.1:0", "--listen-http", s.http,
		"--ca-base-url", "http://"+s.http)
	for _, want := range []string{"created SoftHSM2 token", "wrote var/firmad.yaml", "key-encryption key", "certificate authority: created root, issuing"} {
		if !strings.Contains(out, want) {
			t.Fatalf("init output lacks %q:\n%s", want, out)
		}
	}
	for _, f := range []string{"var/hsm.pin", "var/operator.token", "var/firmad.yaml"} {
		fi, err := os.Stat(filepath.Join(s.dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	cfg, _ := os.ReadFile(filepath.Join(s.dir, "var/firmad.yaml"))
	pin, _ := os.ReadFile(filepath.Join(s.dir, "var/hsm.pin"))
	token, _ := os.ReadFile(filepath.Join(s.dir, "var/operator.token"))
	if bytes.Contains(cfg, bytes.TrimSpace(pin)) || bytes.Contains(cfg, bytes.TrimSpace(token)) {
		t.Fatal("firmad.yaml holds the PIN or the operator token")
	}
	if bytes.Contains([]byte(out), bytes.TrimSpace(pin)) || bytes.Contains([]byte(out), bytes.TrimSpace(token)) {
		t.Fatal("init printed the PIN or the operator token")
	}
	return s
}

// firmactl runs firmactl in the state's folder and checks its exit code.
func (s *state) firmactl(t *testing.T, wantCode int, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "firmactl"), args...)
	cmd.Dir = s.dir
	cmd.Env = firmadtest.CleanEnv()
	out, err := cmd.CombinedOutput()
	if code := exitCode(err); wantCode >= 0 && code != wantCode { // -1: any
		t.Fatalf("firmactl %s: exit %d, want %d:\n%s", strings.Join(args, " "), code, wantCode, out)
	}
	return string(out)
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

// daemon is a running firmad.
type daemon struct {
	cmd        *exec.Cmd
	grpc, http string
	stderr     *syncBuffer
	done       chan error
}

func (s *state) start(t *testing.T, env ...string) *daemon {
	t.Helper()
	d := &daemon{stderr: &syncBuffer{}}
	cmd := exec.Command(filepath.Join(bin, "firmad"), "-config", "var/firmad.yaml")
	cmd.Dir = s.dir
	cmd.Env = firmadtest.CleanEnv(env...)
	cmd.Stderr = d.stderr
	p, err := firmadtest.Start(cmd, 30*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, d.stderr)
	}
	d.cmd, d.grpc, d.http, d.done = cmd, p.GRPC, p.HTTP, p.Done
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Kill()
		}
	})
	return d
}

// stop sends SIGTERM and returns the exit code.
func (d *daemon) stop(t *testing.T) int {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.done:
		return exitCode(err)
	case <-time.After(60 * time.Second):
		t.Fatalf("firmad did not stop after SIGTERM:\n%s", d.stderr)
	}
	return -1
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var keyIDRe = regexp.MustCompile(`(?m)^key ([0-9a-f]+)$`)

func TestEndToEnd(t *testing.T) {
	s := initState(t)
	if out := s.firmactl(t, 0, "init", "--state", "var"); !strings.Contains(out, "reusing var/firmad.yaml") || !strings.Contains(out, "reusing SoftHSM2 token") {
		t.Fatalf("second init did not reuse the state:\n%s", out)
	}
	d := s.start(t)

	if code, body := get(t, "http://"+d.http+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	code, body := get(t, "http://"+d.http+"/readyz")
	var ready struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}
	if err := json.Unmarshal([]byte(body), &ready); err != nil || code != 200 || ready.Status != "ready" ||
		ready.Checks["hsm"] != "ok" || ready.Checks["store"] != "ok" {
		t.Fatalf("/readyz: %d %s", code, body)
	}

	addr := "--addr=" + d.grpc
	msg := filepath.Join(s.dir, "msg.txt")
	if err := os.WriteFile(msg, []byte("Solicitud de firma: expediente 2026/0042\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	type signCase struct{ scheme, hash string }
	cases := []struct {
		typ     string
		schemes []signCase
	}{
		{"ec-p256", []signCase{{"", "sha256"}, {"ecdsa", "sha384"}}},
		{"ec-p384", []signCase{{"ecdsa", "sha384"}}},
		{"rsa-2048", []signCase{{"", "sha256"}, {"pss", "sha256"}}},
		{"rsa-3072", []signCase{{"pkcs1v15", "sha512"}, {"pss", "sha384"}}},
	}
	var lastID string
	for _, mode := range []string{"token", "wrapped"} {
		for _, c := range cases {
			t.Run(mode+"/"+c.typ, func(t *testing.T) {
				pub := filepath.Join(s.dir, mode+"-"+c.typ+".pem")
				out := s.firmactl(t, 0, "keys", "generate", "--user", "12345678Z", "--type", c.typ, "--mode", mode, "--out", pub, addr)
				m := keyIDRe.FindStringSubmatch(out)
				if m == nil {
					t.Fatalf("no key id in:\n%s", out)
				}
				id := m[1]
				lastID = id
				for _, sc := range c.schemes {
					sig := filepath.Join(s.dir, id+sc.scheme+sc.hash+".sig")
					args := []string{"sign", "--key", id, "--in", msg, "--hash", sc.hash, "--out", sig, addr}
					if sc.scheme != "" {
						args = append(args, "--scheme", sc.scheme)
					}
					s.firmactl(t, 0, args...)
					vargs := []string{"dgst", "-" + sc.hash, "-verify", pub, "-signature", sig}
					if sc.scheme == "pss" {
						vargs = append(vargs, "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1")
					}
					vout, err := exec.Command("openssl", append(vargs, msg)...).CombinedOutput()
					if err != nil || !strings.Contains(string(vout), "Verified OK") {
						t.Fatalf("openssl %v: %v %s", vargs, err, vout)
					}
				}
				// The same signature from a hex digest, checked with pkeyutl.
				sum := sha256.Sum256([]byte("digest input"))
				if strings.HasPrefix(c.typ, "ec") {
					sig := filepath.Join(s.dir, id+".digest.sig")
					dg := filepath.Join(s.dir, id+".digest")
					os.WriteFile(dg, sum[:], 0o600)
					s.firmactl(t, 0, "sign", "--key", id, "--digest", fmt.Sprintf("%x", sum), "--out", sig, addr)
					vout, err := exec.Command("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-in", dg, "-sigfile", sig).CombinedOutput()
					if err != nil || !strings.Contains(string(vout), "Signature Verified Successfully") {
						t.Fatalf("openssl pkeyutl: %v %s", err, vout)
					}
				}
			})
		}
	}

	list := s.firmactl(t, 0, "keys", "list", "--user", "12345678Z", addr)
	if n := strings.Count(list, "12345678Z"); n != 8 {
		t.Fatalf("keys list shows %d keys, want 8:\n%s", n, list)
	}
	pub2 := filepath.Join(s.dir, "again.pem")
	s.firmactl(t, 0, "keys", "pubkey", lastID, "--out", pub2, addr)
	if b, _ := os.ReadFile(pub2); !bytes.Contains(b, []byte("BEGIN PUBLIC KEY")) {
		t.Fatalf("keys pubkey wrote %q", b)
	}
	if out := s.firmactl(t, 0, "keys", "destroy", lastID, addr); !strings.Contains(out, "destroyed") {
		t.Fatalf("keys destroy: %s", out)
	}
	out := s.firmactl(t, 1, "sign", "--key", lastID, "--digest", strings.Repeat("ab", 32), "--out", filepath.Join(s.dir, "x.sig"), addr)
	if !strings.Contains(out, "key destroyed") || !strings.Contains(out, "FailedPrecondition") {
		t.Fatalf("sign with destroyed key: %s", out)
	}
	out = s.firmactl(t, 1, "keys", "pubkey", "0000", addr)
	if !strings.Contains(out, "NotFound") {
		t.Fatalf("pubkey of unknown key: %s", out)
	}
	cmd := exec.Command(filepath.Join(bin, "firmactl"), "keys", "list", addr)
	cmd.Dir, cmd.Env = s.dir, firmadtest.CleanEnv("FIRMA_TOKEN=not-the-token")
	if out, err := cmd.CombinedOutput(); exitCode(err) != 1 || !strings.Contains(string(out), "Unauthenticated") {
		t.Fatalf("bad token: exit %d: %s", exitCode(err), out)
	}

	_, metrics := get(t, "http://"+d.http+"/metrics")
	for _, want := range []string{"firma_keystore_sessions_open", "firma_api_requests_total", "firma_signer_signatures_total",
		"go_goroutines", "process_cpu_seconds_total", "firma_store_audit_journal_records"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	pin, _ := os.ReadFile(filepath.Join(s.dir, "var/hsm.pin"))
	token, _ := os.ReadFile(filepath.Join(s.dir, "var/operator.token"))
	if code := d.stop(t); code != 0 {
		t.Fatalf("firmad exit %d after SIGTERM:\n%s", code, d.stderr)
	}
	logs := d.stderr.String()
	if !strings.Contains(logs, "firmad stopped") {
		t.Errorf("no clean stop in the log:\n%s", logs)
	}
	for _, secret := range [][]byte{bytes.TrimSpace(pin), bytes.TrimSpace(token)} {
		if strings.Contains(logs+metrics, string(secret)) {
			t.Error("a secret reached the logs or metrics")
		}
	}
}

// A batch that is being signed when SIGTERM arrives still completes.
func TestShutdownDrainsInFlightSignatures(t *testing.T) {
	s := initState(t)
	d := s.start(t)
	token, _ := os.ReadFile(filepath.Join(s.dir, "var/operator.token"))
	conn, err := grpc.NewClient(d.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(api.BearerCredentials{Token: strings.TrimSpace(string(token)), Insecure: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	k, err := firmav1.NewKeyServiceClient(conn).GenerateKey(ctx, &firmav1.GenerateKeyRequest{Owner: "12345678Z", Type: firmav1.KeyType_KEY_TYPE_RSA_3072})
	if err != nil {
		t.Fatal(err)
	}
	digests := make([][]byte, api.MaxDigests)
	for i := range digests {
		digests[i] = make([]byte, 32)
		rand.Read(digests[i])
	}
	type result struct {
		resp *firmav1.SignDigestsResponse
		err  error
	}
	res := make(chan result, 1)
	started := time.Now()
	go func() {
		r, err := firmav1.NewSigningServiceClient(conn).SignDigests(ctx, &firmav1.SignDigestsRequest{KeyId: k.GetKey().GetId(), Digests: digests})
		res <- result{r, err}
	}()
	// Wait until the batch is being signed: the session gauge shows use.
	for {
		_, m := get(t, "http://"+d.http+"/metrics")
		if regexp.MustCompile(`(?m)^firma_keystore_sessions_in_use [1-9]`).MatchString(m) {
			break
		}
		if time.Since(started) > 20*time.Second {
			t.Fatal("batch never reached the HSM")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// While the batch drains, readiness is withdrawn. The HTTP listener
	// closes once draining ends, so only an answer is checked.
	time.Sleep(50 * time.Millisecond)
	if resp, err := http.Get("http://" + d.http + "/readyz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("/readyz during drain: %d, want 503", resp.StatusCode)
		}
	}
	r := <-res
	if r.err != nil {
		t.Fatalf("in-flight batch failed during shutdown: %v", r.err)
	}
	pub, _ := x509.ParsePKIXPublicKey(k.GetKey().GetPublicKeyDer())
	for i, sig := range r.resp.GetSignatures() {
		if err := rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, digests[i], sig); err != nil {
			t.Fatalf("signature %d: %v", i, err)
		}
	}
	select {
	case err := <-d.done:
		if exitCode(err) != 0 {
			t.Fatalf("exit %d:\n%s", exitCode(err), d.stderr)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("firmad did not exit")
	}
	if !strings.Contains(d.stderr.String(), "shutting down") {
		t.Errorf("no shutdown in log:\n%s", d.stderr)
	}
}

func TestStartupErrors(t *testing.T) {
	s := initState(t)
	pinInFile := filepath.Join(s.dir, "var", "pin.yaml")
	cfg, _ := os.ReadFile(filepath.Join(s.dir, "var/firmad.yaml"))
	os.WriteFile(pinInFile, bytes.Replace(cfg, []byte("hsm:\n"), []byte("hsm:\n    pin: \"99887766\"\n"), 1), 0o600)
	tests := []struct {
		name   string
		env    []string
		args   []string
		code   int
		want   string
		secret string
	}{
		{"wrong PIN", []string{"FIRMA_HSM_PIN=0000wrong0000"}, nil, exitFail, "wrong PIN", "0000wrong0000"},
		{"missing module", []string{"FIRMA_HSM_MODULE=/nonexistent/libpkcs11-nope.so"}, nil, exitFail, "cannot load PKCS#11 module", ""},
		{"unknown token", []string{"FIRMA_HSM_TOKEN_LABEL=no-such-token"}, nil, exitFail, "token unavailable", ""},
		{"bad sessions", []string{"FIRMA_HSM_SESSIONS=0"}, nil, exitConfig, "hsm.sessions: must be > 0", ""},
		{"bad flag value", nil, []string{"-hsm-key-mode", "cloud"}, exitConfig, "hsm.key_mode", ""},
		{"public plaintext", []string{"FIRMA_LISTEN_GRPC=0.0.0.0:0"}, nil, exitConfig, "listen.grpc", ""},
		{"PIN in config file", nil, []string{"-config", "var/pin.yaml"}, exitConfig, "hsm.pin: the PIN must not be in the config file", "99887766"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-config", "var/firmad.yaml"}, tt.args...)
			cmd := exec.Command(filepath.Join(bin, "firmad"), args...)
			cmd.Dir = s.dir
			cmd.Env = firmadtest.CleanEnv(tt.env...)
			done := make(chan struct{})
			var out []byte
			var err error
			go func() { out, err = cmd.CombinedOutput(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatal("firmad kept running")
			}
			if code := exitCode(err); code != tt.code {
				t.Fatalf("exit %d, want %d:\n%s", code, tt.code, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, out)
			}
			if strings.Contains(string(out), "panic") || strings.Contains(string(out), "goroutine ") {
				t.Errorf("crashed:\n%s", out)
			}
			if tt.secret != "" && strings.Contains(string(out), tt.secret) {
				t.Errorf("output repeats the secret:\n%s", out)
			}
		})
	}
}

// checkSigned stops d and checks its state's audit log as an auditor
// would after a fault or abuse run: 'firmactl audit verify --db --signed'
// (the log verifies against its checkpoints, the TSA's interval summaries
// match the issuance log, every signed document has exactly one key.used
// and every key activation is completed or resumed).
func (s *state) checkSigned(t *testing.T, d *daemon) string {
	t.Helper()
	if code := d.stop(t); code != 0 {
		t.Fatalf("firmad exit %d:\n%s", code, d.stderr)
	}
	m := verifierKeyRe.FindStringSubmatch(d.stderr.String())
	if m == nil {
		t.Fatalf("firmad logged no audit verifier key:\n%s", d.stderr)
	}
	out := s.firmactl(t, 0, "audit", "verify", "--db", "var/firma.db", "--signed", "--key", m[1])
	if !strings.Contains(out, "verified") || !strings.Contains(out, "signed documents checked") {
		t.Fatalf("audit verify --signed:\n%s", out)
	}
	t.Logf("audit verify --signed:\n%s", out)
	return out
}

// syncBuffer is firmad's stderr as tests read it while firmad still
// writes it (exec copies the pipe into it from its own goroutine).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
