package softhsmtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Token is a SoftHSM2 token made for one test.
type Token struct {
	Module string // path of libsofthsm2.so
	Label  string
	PIN    string
	SOPIN  string
	Conf   string // SOFTHSM2_CONF of the process
	Dir    string // token directory shared by the process's tokens
}

var (
	once    sync.Once
	confErr error
	dir     string
	conf    string
)

// Module returns the path of the SoftHSM2 PKCS#11 module, or "" if it is not
// installed.
func Module() string {
	for _, m := range []string{
		"/usr/lib/softhsm/libsofthsm2.so",
		"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
		"/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
		"/usr/local/lib/softhsm/libsofthsm2.so",
	} {
		if _, err := os.Stat(m); err == nil {
			return m
		}
	}
	return ""
}

// setup makes the process-wide token directory and points SOFTHSM2_CONF at
// it. It must run before the module is first initialised in this process.
func setup() error {
	once.Do(func() {
		d, err := os.MkdirTemp("", "firma-softhsm-")
		if err != nil {
			confErr = err
			return
		}
		if err := os.Mkdir(filepath.Join(d, "tokens"), 0o700); err != nil {
			confErr = err
			return
		}
		c := filepath.Join(d, "softhsm2.conf")
		body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
			filepath.Join(d, "tokens"))
		if err := os.WriteFile(c, []byte(body), 0o600); err != nil {
			confErr = err
			return
		}
		dir, conf = d, c
		confErr = os.Setenv("SOFTHSM2_CONF", c)
	})
	return confErr
}

// Cleanup removes the process-wide token directory. Call it from TestMain
// after m.Run.
func Cleanup() {
	if dir != "" {
		os.RemoveAll(dir)
	}
}

// New makes a fresh token with a random label and PINs and deletes it when
// the test ends. The test fails at once if SoftHSM2 is not installed: HSM
// tests are never silently skipped.
func New(tb testing.TB) *Token {
	tb.Helper()
	tok, err := Make("t-" + randHex(6))
	if err != nil {
		tb.Fatalf("softhsmtest: %v", err)
	}
	tb.Cleanup(func() { tok.Delete() })
	return tok
}

// Make initialises a token with the given label in the process's token
// directory. Benchmarks and programs that are not tests use it directly.
func Make(label string) (*Token, error) {
	module := Module()
	if module == "" {
		return nil, fmt.Errorf("SoftHSM2 module not found: install it with 'apt-get install -y softhsm2'")
	}
	if err := setup(); err != nil {
		return nil, fmt.Errorf("set up token directory: %w", err)
	}
	tok := &Token{Module: module, Label: label, PIN: randHex(8), SOPIN: randHex(8), Conf: conf, Dir: dir}
	out, err := tok.util("--init-token", "--free", "--label", label, "--pin", tok.PIN, "--so-pin", tok.SOPIN)
	if err != nil {
		return nil, fmt.Errorf("init token %q: %w: %s", label, err, out)
	}
	return tok, nil
}

// Delete removes the token and its objects.
func (t *Token) Delete() error {
	out, err := t.util("--delete-token", "--token", t.Label)
	if err != nil {
		return fmt.Errorf("delete token %q: %w: %s", t.Label, err, out)
	}
	return nil
}

func (t *Token) util(args ...string) (string, error) {
	cmd := exec.Command("softhsm2-util", args...)
	cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+t.Conf)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
