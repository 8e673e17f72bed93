package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/firma-cloud/firma/internal/firmadtest"
)

// readmeBlockRe finds the README's runnable blocks: fenced ```sh try.
var readmeBlockRe = regexp.MustCompile("(?ms)^```sh try\n(.*?)^```\n")

// readmeAddr is the HTTP address the README's commands name (make run's).
const readmeAddr = "127.0.0.1:7780"

// The README's own commands, taken from README.md (not copied here), run
// from a fresh state to collected, verified results: keys and a raw
// signature checked by openssl, then a portal, a transaction, the
// citizen's approval (done here, over HTTP, as a browser would), and the
// results verified. Each block runs in bash -e with bin/ holding the
// binaries under test; firmad listens on a free port, which replaces the
// README's 127.0.0.1:7780 and is the only change made to the commands.
// Cost: one firmad; no browser.
func TestReadmeCommands(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlockRe.FindAllStringSubmatch(string(raw), -1)
	if len(blocks) != 3 {
		t.Fatalf("README.md has %d ```sh try blocks, want 3 (try it; a portal's transaction; its results)", len(blocks))
	}
	// make run's steps (firmactl init, demo seed, firmad), on free fixed
	// ports: firmactl finds firmad through the state, as in the README.
	s := &state{dir: t.TempDir(), http: firmadtest.FreeAddr(t)}
	s.firmactl(t, 0, "init", "--state", "var", "--listen-grpc", firmadtest.FreeAddr(t), "--listen-http", s.http,
		"--ca-base-url", "http://"+s.http)
	s.firmactl(t, 0, "demo", "seed", "--state", "var")
	if err := os.Symlink(bin, filepath.Join(s.dir, "bin")); err != nil {
		t.Fatal(err)
	}
	d := s.start(t)
	run := func(i int) string {
		t.Helper()
		script := strings.ReplaceAll(blocks[i][1], readmeAddr, d.http)
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
		cmd.Dir = s.dir
		cmd.Env = append(os.Environ(), "FIRMA_TOKEN=", "FIRMA_ADDR=")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("README block %d failed: %v\n--- block\n%s--- output\n%s", i+1, err, blocks[i][1], out)
		}
		return string(out)
	}

	if out := run(0); !strings.Contains(out, "Verified OK") {
		t.Fatalf("the Try it block did not verify its signature:\n%s", out)
	}
	out := run(1)
	m := regexp.MustCompile(`(?m)^send the citizen to\s+(\S+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the portal block printed no approval page:\n%s", out)
	}
	approve(t, s, &sync.Mutex{}, "http://"+d.http, m[1], "10000001S", "+34600000001", "--addr="+d.grpc)
	out = run(2)
	for _, want := range []string{"state", "done", "wrote results/0-doc.txt.p7s", "VALID"} {
		if !strings.Contains(out, want) {
			t.Errorf("the results block's output lacks %q:\n%s", want, out)
		}
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("firmad exit %d:\n%s", code, d.stderr)
	}
	// The start-up log names the URL links are made with, never an empty one.
	logs := d.stderr.String()
	if strings.Contains(logs, `public_url=""`) || strings.Contains(logs, `"public_url":""`) || !strings.Contains(logs, "http://"+d.http) {
		t.Errorf("the start-up log does not name the effective public URL http://%s:\n%s", d.http, logs)
	}
}
