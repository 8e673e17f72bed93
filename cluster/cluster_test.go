package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/firma-cloud/firma/internal/firmadtest"
	"github.com/firma-cloud/firma/loadgen"
	"github.com/firma-cloud/firma/store/postgres/pgtest"
)

// bin holds firmad and firmactl, built once for every test here.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "firma-cluster-")
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
	pgtest.Cleanup()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cluster is one state folder (config, SoftHSM2 token directory, PINs)
// and one PostgreSQL database shared by its nodes.
type cluster struct {
	dir     string
	env     []string // the store: every process gets it
	token   string   // operator bearer token
	auditor string   // security officer's bearer token
	nodes   []*node
}

// node is a running firmad.
type node struct {
	cmd        *exec.Cmd
	grpc, http string
	stderr     *bytes.Buffer
	done       chan error
}

// newCluster makes the state with 'firmactl init' on a fresh PostgreSQL
// database, wrapped keys, an auditor and light password hashing (a load
// test signs in thousands of times; see docs/scale.md), and starts n nodes
// on it.
func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{dir: t.TempDir()}
	c.env = []string{"FIRMA_STORE_DRIVER=postgres", "FIRMA_STORE_DSN=" + pgtest.New(t)}
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = firmadtest.FreeAddr(t)
	}
	// ca.base_url names node A: every node serves the same CRL and OCSP.
	c.firmactl(t, 0, "init", "--state", "var", "--listen-grpc", "127.0.0.1:0", "--listen-http", addrs[0],
		"--ca-base-url", "http://"+addrs[0], "--key-mode", "wrapped")
	// init writes the CA to the store of the config it writes (SQLite);
	// 'ca init' reads the environment too, so it puts the CA, whose keys
	// init made on the token, in PostgreSQL.
	c.firmactl(t, 0, "ca", "init", "--state", "var")
	// A security officer to read the audit log: operators may not.
	tok := make([]byte, 20)
	rand.Read(tok)
	c.auditor = hex.EncodeToString(tok)
	sum := sha256.Sum256([]byte(c.auditor))
	cfgPath := filepath.Join(c.dir, "var/firmad.yaml")
	cfg, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// The light argon2id cost of registry.argon2_* (docs/scale.md): the
	// load signs citizens in thousands of times.
	for _, r := range [][2]string{
		{"    auditors: []\n", "    auditors:\n        - name: officer\n          token_sha256: " + hex.EncodeToString(sum[:]) + "\n"},
		{"    argon2_time: 3\n", "    argon2_time: 1\n"},
		{"    argon2_memory_kib: 65536\n", "    argon2_memory_kib: 8192\n"},
		{"    argon2_threads: 4\n", "    argon2_threads: 1\n"},
	} {
		changed := bytes.Replace(cfg, []byte(r[0]), []byte(r[1]), 1)
		if bytes.Equal(changed, cfg) {
			t.Fatalf("no %q in firmad.yaml to replace:\n%s", r[0], cfg)
		}
		cfg = changed
	}
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	op, err := os.ReadFile(filepath.Join(c.dir, "var/operator.token"))
	if err != nil {
		t.Fatal(err)
	}
	c.token = strings.TrimSpace(string(op))
	for _, a := range addrs {
		c.nodes = append(c.nodes, c.start(t, "FIRMA_LISTEN_HTTP="+a))
	}
	return c
}

// firmactl runs firmactl in the state's folder and checks its exit code.
func (c *cluster) firmactl(t *testing.T, want int, args ...string) string {
	t.Helper()
	return c.firmactlEnv(t, nil, want, args...)
}

func (c *cluster) firmactlEnv(t *testing.T, env []string, want int, args ...string) string {
	t.Helper()
	out, code := c.run(t, env, args...)
	if code != want {
		t.Fatalf("firmactl %s: exit %d, want %d:\n%s", strings.Join(args, " "), code, want, out)
	}
	return out
}

// run runs firmactl with env added and returns its output and exit code.
func (c *cluster) run(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "firmactl"), args...)
	cmd.Dir = c.dir
	cmd.Env = firmadtest.CleanEnv(append(append([]string(nil), c.env...), env...)...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func (c *cluster) start(t *testing.T, env ...string) *node {
	t.Helper()
	d := &node{stderr: &bytes.Buffer{}}
	cmd := exec.Command(filepath.Join(bin, "firmad"), "-config", "var/firmad.yaml")
	cmd.Dir = c.dir
	cmd.Env = firmadtest.CleanEnv(append(c.env, env...)...)
	cmd.Stderr = d.stderr
	p, err := firmadtest.Start(cmd, 60*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, d.stderr)
	}
	d.cmd, d.grpc, d.http, d.done = cmd, p.GRPC, p.HTTP, p.Done
	t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			d.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-d.done:
			case <-time.After(30 * time.Second):
				d.cmd.Process.Kill()
			}
		}
	})
	return d
}

func (d *node) base() string { return "http://" + d.http }

var apiKeyRe = regexp.MustCompile(`(?m)^api key\s+(\S+\.\S+)`)

// portal registers a portal with firmactl on node 0 and returns its key.
func (c *cluster) portal(t *testing.T) string {
	t.Helper()
	out := c.firmactl(t, 0, "portals", "create", "--addr", c.nodes[0].grpc, "--name", "Portal del clúster",
		"--redirect", "https://portal.example.es/ok", "--redirect", "https://portal.example.es/error", "--rate", "100000")
	m := apiKeyRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no API key in:\n%s", out)
	}
	return m[1]
}

var verifierRe = regexp.MustCompile(`(?m)^verifier key: (\S+)`)

// verifyAudit takes a signed checkpoint from every node, exports the log
// from the last, and checks the export against the checkpoints with
// 'firmactl audit verify'. It returns the verify output.
func (c *cluster) verifyAudit(t *testing.T) string {
	t.Helper()
	var key string
	var args []string
	for i, n := range c.nodes {
		cp := filepath.Join(c.dir, fmt.Sprintf("checkpoint-%d.txt", i))
		out := c.firmactlEnv(t, []string{"FIRMA_TOKEN=" + c.auditor}, 0, "audit", "checkpoint", "--addr", n.grpc, "--out", cp)
		m := verifierRe.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no verifier key from node %d:\n%s", i, out)
		}
		if key != "" && m[1] != key {
			t.Fatalf("nodes sign checkpoints with different keys: %s and %s", key, m[1])
		}
		key = m[1]
		args = append(args, "--trusted", cp)
	}
	export := filepath.Join(c.dir, "audit.jsonl")
	c.firmactlEnv(t, []string{"FIRMA_TOKEN=" + c.auditor}, 0, "audit", "export", "--addr", c.nodes[len(c.nodes)-1].grpc, "--out", export)
	return c.firmactl(t, 0, append([]string{"audit", "verify", "--key", key, export}, args...)...)
}

// TestTwoNodes: a transaction created on node A is approved on node B and
// collected on A (and the other way round); three wrong codes typed on
// alternate nodes fail the transaction; the audit log both nodes wrote
// verifies as one.
func TestTwoNodes(t *testing.T) {
	c := newCluster(t, 2)
	a, b := c.nodes[0], c.nodes[1]
	key := c.portal(t)
	ctx := context.Background()
	citizens := loadgen.SandboxCitizens(0, 4, "Clave-Cluster-2026")
	if err := loadgen.Enrol(ctx, http.DefaultClient, b.base(), c.token, citizens, 2); err != nil {
		t.Fatalf("enrol sandbox citizens through node B: %v", err)
	}

	// Transaction n is created on nodes[n%2], approved on nodes[(n+1)%2]
	// and collected on nodes[n%2]: A-B-A, B-A-B, ...
	rep, err := loadgen.Run(ctx, loadgen.Config{Nodes: []string{a.base(), b.base()}, APIKey: key, OperatorToken: c.token,
		Citizens: citizens[:2], Count: 6, Workers: 2, Documents: 2})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	rep.WriteText(&text)
	if !rep.OK() || rep.Transactions != 6 || rep.Signatures != 12 {
		t.Fatalf("cross-node signatures:\n%s\n%+v", text.String(), rep.FailedTx)
	}

	// The same through the command: 'firmactl bench' over both nodes,
	// with citizens it enrols itself, its report and plot.
	keyFile, jsonOut, pngOut := filepath.Join(c.dir, "portal.key"), filepath.Join(c.dir, "b.json"), filepath.Join(c.dir, "b.png")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := c.firmactlEnv(t, []string{"FIRMA_TOKEN=" + c.token}, 0, "bench", "--enrol", "--first-citizen", "100",
		"--nodes", a.base()+","+b.base(), "--api-key-file", keyFile, "--count", "4", "--workers", "2", "--citizens", "2",
		"--json", jsonOut, "--png", pngOut)
	if !regexp.MustCompile(`transactions\s+4 done, 0 failed`).MatchString(out) {
		t.Fatalf("firmactl bench:\n%s", out)
	}
	for _, f := range []string{jsonOut, pngOut} {
		if fi, err := os.Stat(f); err != nil || fi.Size() == 0 {
			t.Fatalf("firmactl bench did not write %s: %v", f, err)
		}
	}

	// Three wrong codes, on A, B and A: the third fails the transaction,
	// whichever node counts it.
	citizen := citizens[3]
	id := createTx(t, a.base(), key, citizen.ID)
	br := newBrowser(t)
	html := br.page(t, http.MethodGet, b.base(), "/sign/"+id, nil, http.StatusOK)
	br.page(t, http.MethodPost, b.base(), "/sign/"+id+"/login",
		url.Values{"csrf": {csrf(t, html)}, "citizen": {citizen.ID}, "password": {citizen.Password}}, http.StatusSeeOther)
	html = br.page(t, http.MethodGet, b.base(), "/sign/"+id, nil, http.StatusOK)
	for i, n := range []*node{a, b, a} {
		html = br.page(t, http.MethodPost, n.base(), "/sign/"+id+"/approve",
			url.Values{"csrf": {csrf(t, html)}, "otp": {"000000"}}, 0)
		st := txState(t, c.nodes[(i+1)%2].base(), key, id)
		if i < 2 && st != "otp_sent" {
			t.Fatalf("after wrong code %d (node %d): state %q, want otp_sent", i+1, i%2, st)
		}
		if i == 2 && st != "failed" {
			t.Fatalf("after the third wrong code: state %q, want failed", st)
		}
		if i < 2 {
			html = br.page(t, http.MethodGet, c.nodes[(i+1)%2].base(), "/sign/"+id, nil, http.StatusOK)
		}
	}

	out = c.verifyAudit(t)
	if !strings.Contains(out, "audit export verified") || !strings.Contains(out, "(2 trusted") {
		t.Fatalf("audit verify:\n%s", out)
	}
	t.Logf("audit verify:\n%s", out)
}

func createTx(t *testing.T, base, key, citizen string) string {
	t.Helper()
	sum := sha256.Sum256([]byte("documento del clúster"))
	body, _ := json.Marshal(map[string]any{"subject_id": citizen, "ok_url": "https://portal.example.es/ok",
		"error_url": "https://portal.example.es/error",
		"documents": []map[string]any{{"name": "d.bin", "digest": sum[:], "hash": "sha256", "format": "raw"}}})
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/transactions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", key)
	var out struct {
		ID string `json:"transaction_id"`
	}
	if code := doJSON(t, req, &out); code != http.StatusCreated || out.ID == "" {
		t.Fatalf("create: %d %+v", code, out)
	}
	return out.ID
}

func txState(t *testing.T, base, key, id string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/transactions/"+id, nil)
	req.Header.Set("X-API-Key", key)
	var out struct {
		State string `json:"state"`
	}
	if code := doJSON(t, req, &out); code != http.StatusOK {
		t.Fatalf("state of %s: %d", id, code)
	}
	return out.State
}

func doJSON(t *testing.T, req *http.Request, out any) int {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, b)
	}
	return resp.StatusCode
}

// browser keeps the approval page's cookies. Cookies do not depend on the
// port, so nodes on one loopback host see the same ones, as nodes behind
// one load balancer would.
type browser struct{ c *http.Client }

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page requests path on base and checks the status unless want is 0.
func (b *browser) page(t *testing.T, method, base, path string, form url.Values, want int) string {
	t.Helper()
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, base+path, rd)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", base)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if want != 0 && resp.StatusCode != want {
		t.Fatalf("%s %s%s: %d, want %d\n%s", method, base, path, resp.StatusCode, want, body)
	}
	return string(body)
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrf(t *testing.T, html string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(html)
	if m == nil {
		t.Fatalf("no form token in:\n%s", html)
	}
	return m[1]
}
