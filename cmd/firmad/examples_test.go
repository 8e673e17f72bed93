package main

import (
	"bufio"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/firma-cloud/firma/internal/firmadtest"
)

var (
	callbackKeyRe = regexp.MustCompile(`(?m)^callback key\s+([0-9a-f]+) \(`)
	sendToRe      = regexp.MustCompile(`^send the citizen to (\S+)$`)
)

// The example portal clients (examples/portal-go and examples/portal-curl)
// run against a real firmad: each creates a transaction, the citizen
// approves it on the page (over HTTP, as browser_test's browser does),
// the client takes the HMAC-signed callback, checks it and collects the
// verified results. Then the metrics must agree with what happened.
// Cost: one firmad, one `go build` of the example, two transactions in
// parallel; no browser.
func TestExamplePortalClients(t *testing.T) {
	if _, err := exec.LookPath("nc"); err != nil {
		t.Fatal("the curl example needs nc (Debian netcat-openbsd; make test installs it)")
	}
	s := initState(t)
	s.firmactl(t, 0, "demo", "seed", "--state", "var")
	d := s.start(t)
	defer d.stop(t)
	base := "http://" + d.http
	addr := "--addr=" + d.grpc
	goExample := filepath.Join(t.TempDir(), "portal-go")
	if out, err := exec.Command("go", "build", "-o", goExample, "github.com/firma-cloud/firma/examples/portal-go").CombinedOutput(); err != nil {
		t.Fatalf("build examples/portal-go: %v\n%s", err, out)
	}
	curlExample, err := filepath.Abs("../../examples/portal-curl/portal.sh")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, "doc.txt"), []byte("Solicitud de firma: expediente 2026/0042\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	outbox := func() (all, codes int) {
		out := s.firmactl(t, 0, "sms", "outbox", "--limit", "1000", addr)
		lines := strings.Split(strings.TrimSpace(out), "\n")[1:] // less the header
		return len(lines), len(webSMSCodeRe.FindAllString(out, -1))
	}
	before := scrape(t, base)
	smsBefore, codesBefore := outbox()

	clients := []struct {
		name, citizen, mobile string
		cmd                   func(dir, listen, out string) *exec.Cmd
	}{
		{"go", "10000001S", "+34600000001", func(dir, listen, out string) *exec.Cmd {
			c := exec.Command(goExample, "-base", base, "-api-key-file", "portal.key", "-callback-key-file", "callback.key",
				"-listen", listen, "-subject", "10000001S", "-doc", "doc.txt", "-out", out, "-wait", "2m")
			c.Dir = dir
			return c
		}},
		{"curl", "10000002Q", "+34600000002", func(dir, listen, out string) *exec.Cmd {
			_, port, _ := strings.Cut(listen, ":")
			c := exec.Command("bash", curlExample)
			c.Dir = dir
			c.Env = append(os.Environ(), "FIRMA="+base, "API_KEY_FILE=portal.key", "CALLBACK_KEY_FILE=callback.key",
				"CALLBACK_PORT="+port, "SUBJECT=10000002Q", "DOC=../doc.txt", "OUT="+out, "WAIT=120")
			return c
		}},
	}
	var mu sync.Mutex // firmactl runs in s.dir; the outbox is shared
	t.Run("clients", func(t *testing.T) {
		for _, c := range clients {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				dir := filepath.Join(s.dir, c.name)
				if err := os.MkdirAll(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if c.name == "go" {
					os.WriteFile(filepath.Join(dir, "doc.txt"), []byte("Solicitud de firma: expediente 2026/0042\n"), 0o600)
				}
				listen := firmadtest.FreeAddr(t)
				mu.Lock()
				out := s.firmactl(t, 0, "portals", "create", "--name", "Sede "+c.name,
					"--redirect", base+"/sandbox/return?result=ok", "--redirect", base+"/sandbox/return?result=error",
					"--callback-url", "http://"+listen+"/callback", addr)
				mu.Unlock()
				key, cb := webAPIKeyRe.FindStringSubmatch(out), callbackKeyRe.FindStringSubmatch(out)
				if key == nil || cb == nil {
					t.Fatalf("no API key or callback key in:\n%s", out)
				}
				os.WriteFile(filepath.Join(dir, "portal.key"), []byte(key[1]+"\n"), 0o600)
				os.WriteFile(filepath.Join(dir, "callback.key"), []byte(cb[1]+"\n"), 0o600)

				cmd := c.cmd(dir, listen, filepath.Join(dir, "results"))
				stdout, err := cmd.StdoutPipe()
				if err != nil {
					t.Fatal(err)
				}
				var stderr strings.Builder
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				defer cmd.Process.Kill()
				lines := bufio.NewScanner(stdout)
				var printed []string
				var page string
				for page == "" && lines.Scan() {
					printed = append(printed, lines.Text())
					if m := sendToRe.FindStringSubmatch(lines.Text()); m != nil {
						page = m[1]
					}
				}
				if page == "" {
					cmd.Wait()
					t.Fatalf("the %s client printed no approval page:\n%s\n%s", c.name, strings.Join(printed, "\n"), stderr.String())
				}
				approve(t, s, &mu, base, page, c.citizen, c.mobile, addr)
				rest, _ := io.ReadAll(stdout)
				printed = append(printed, strings.Split(strings.TrimSpace(string(rest)), "\n")...)
				if err := cmd.Wait(); err != nil {
					t.Fatalf("the %s client: %v\n%s\n%s", c.name, err, strings.Join(printed, "\n"), stderr.String())
				}
				all := strings.Join(printed, "\n")
				for _, want := range []string{"(signature verified)", "VERDICT_VALID", "callback: transaction "} {
					if !strings.Contains(all, want) {
						t.Errorf("the %s client's output lacks %q:\n%s", c.name, want, all)
					}
				}
				sigs, _ := filepath.Glob(filepath.Join(dir, "results", "0-*.sig"))
				if len(sigs) != 1 {
					t.Fatalf("results: %v", sigs)
				}
				if fi, err := os.Stat(sigs[0]); err != nil || fi.Size() < 100 {
					t.Fatalf("signature file %s: %v", sigs[0], err)
				}
			})
		}
	})
	if t.Failed() {
		return
	}
	after := scrape(t, base)
	smsAfter, codesAfter := outbox()
	checkMetrics(t, before, after, 2)
	// Every message that went into the outbox is counted sent: the two
	// codes and whatever notices the flow sends.
	if got, want := sum(after, "firma_sms_sent_total", nil)-sum(before, "firma_sms_sent_total", nil), float64(smsAfter-smsBefore); got != want ||
		codesAfter-codesBefore != 2 {
		t.Errorf("firma_sms_sent_total moved by %v; the outbox took %v messages, %d of them codes", got, want, codesAfter-codesBefore)
	}
}

// approve is the citizen on the approval page at pageURL: sign in, read
// the SMS code from the sandbox outbox, approve, land on the portal's
// (the sandbox's) OK page.
func approve(t *testing.T, s *state, mu *sync.Mutex, base, pageURL, citizen, mobile, addr string) {
	t.Helper()
	u, err := url.Parse(pageURL)
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, base)
	path := u.Path
	_, html, _ := b.page(http.MethodGet, path, nil)
	code, html, loc := b.page(http.MethodPost, path+"/login", url.Values{"csrf": {b.csrf(html)}, "citizen": {citizen}, "password": {"Firma-Demo-2026"}})
	if code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d\n%s", code, html)
	}
	_, html, _ = b.page(http.MethodGet, loc, nil)
	mu.Lock()
	outbox := s.firmactl(t, 0, "sms", "outbox", "--to", mobile, "--limit", "1", addr)
	mu.Unlock()
	sm := webSMSCodeRe.FindStringSubmatch(outbox)
	if sm == nil {
		t.Fatalf("no code in the outbox:\n%s", outbox)
	}
	code, html, loc = b.follow(b.page(http.MethodPost, path+"/approve", url.Values{"csrf": {b.csrf(html)}, "otp": {sm[1]}}))
	if code != http.StatusSeeOther || !strings.HasPrefix(loc, base+"/sandbox/return?result=ok&transaction_id=") {
		t.Fatalf("approve: %d %q\n%s", code, loc, html)
	}
	// The sandbox's OK page says so, in a page a browser can show.
	code, html, _ = b.page(http.MethodGet, strings.TrimPrefix(loc, base), nil)
	if code != http.StatusOK || !strings.Contains(html, `data-result="ok"`) {
		t.Fatalf("sandbox return page: %d\n%s", code, html)
	}
}

// metricLineRe is one sample of the text exposition format.
var metricLineRe = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? (\S+)`)

type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape reads /metrics.
func scrape(t *testing.T, base string) []sample {
	t.Helper()
	_, text := get(t, base+"/metrics")
	var out []sample
	for _, line := range strings.Split(text, "\n") {
		m := metricLineRe.FindStringSubmatch(line)
		if m == nil || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			continue
		}
		labels := map[string]string{}
		for _, kv := range strings.Split(m[2], ",") {
			if k, val, ok := strings.Cut(kv, "="); ok {
				labels[k] = strings.Trim(val, `"`)
			}
		}
		out = append(out, sample{m[1], labels, v})
	}
	return out
}

// sum adds the samples of name whose labels include want.
func sum(ss []sample, name string, want map[string]string) float64 {
	var n float64
	for _, s := range ss {
		if s.name != name {
			continue
		}
		ok := true
		for k, v := range want {
			ok = ok && s.labels[k] == v
		}
		if ok {
			n += s.value
		}
	}
	return n
}

// checkMetrics compares what the metrics say happened between two
// scrapes with what did: n transactions of one document each, created,
// approved with one SMS code each, signed, and announced by callback.
func checkMetrics(t *testing.T, before, after []sample, n float64) {
	t.Helper()
	delta := func(name string, labels map[string]string) float64 {
		return sum(after, name, labels) - sum(before, name, labels)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
	}{
		{"firma_transaction_created_total", map[string]string{"outcome": "ok"}},
		{"firma_transaction_ended_total", map[string]string{"state": "done"}},
		{"firma_transaction_documents_total", map[string]string{"status": "signed"}},
		{"firma_transaction_otp_sends_total", map[string]string{"outcome": "sent"}},
		{"firma_transaction_otp_checks_total", map[string]string{"result": "ok"}},
		{"firma_transaction_callbacks_total", map[string]string{"outcome": "delivered"}},
		// One signature a document, made with the citizen's granted key.
		{"firma_signer_signatures_total", map[string]string{"purpose": "transaction", "outcome": "ok"}},
	} {
		if got := delta(c.name, c.labels); got != n {
			t.Errorf("%s%v moved by %v, want %v", c.name, c.labels, got, n)
		}
	}
	// The keystore made those and the service's own (time-stamp tokens,
	// OCSP answers, audit checkpoints): never fewer than the signer counted.
	signer := delta("firma_signer_signatures_total", map[string]string{"outcome": "ok"})
	keystore := delta("firma_keystore_operations_total", map[string]string{"op": "sign", "outcome": "ok"})
	if keystore < signer || signer < n {
		t.Errorf("keystore signatures %v, signer signatures %v, documents %v", keystore, signer, n)
	}
	t.Logf("over the flow: %v documents signed; signer counted %v signatures (tsa %v), keystore %v", n, signer,
		delta("firma_signer_signatures_total", map[string]string{"purpose": "tsa", "outcome": "ok"}), keystore)
}
