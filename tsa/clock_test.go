package tsa

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firma-cloud/firma/keystore"
)

// TestClockCheck checks the TSA issues nothing while its time source is
// not trusted, and resumes when it is again.
func TestClockCheck(t *testing.T) {
	e := newEnv(t)
	p := e.newPKI("Firma")
	var synced atomic.Bool
	var calls atomic.Int64
	now := time.Now()
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	srv := e.tsa(p, keystore.ECP256, func(c *ServerConfig) {
		c.Now = func() time.Time { return time.Unix(0, clock.Load()) }
		c.ClockCheck = func() error {
			calls.Add(1)
			if synced.Load() {
				return nil
			}
			return ErrClockUnsynced
		}
	})
	url := serve(t, srv)
	dir := t.TempDir()
	steps := []struct {
		name    string
		synced  bool
		advance time.Duration
		status  int
		fail    FailInfo
	}{
		{"unsynced", false, 0, http.StatusServiceUnavailable, FailTimeNotAvailable},
		{"synced within the second: cached verdict", true, 100 * time.Millisecond, http.StatusServiceUnavailable, FailTimeNotAvailable},
		{"synced, checked again", true, 2 * time.Second, http.StatusOK, -1},
		{"unsynced again", false, 2 * time.Second, http.StatusServiceUnavailable, FailTimeNotAvailable},
	}
	for _, s := range steps {
		synced.Store(s.synced)
		clock.Add(int64(s.advance))
		resp, body := post(t, url, QueryContentType, sha256Query(t, []byte("x"), true))
		if resp.StatusCode != s.status {
			t.Fatalf("%s: HTTP %d, want %d", s.name, resp.StatusCode, s.status)
		}
		_, err := ParseReply(body)
		if s.fail < 0 {
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			continue
		}
		var re *RejectionError
		if !errors.As(err, &re) || re.FailInfo != s.fail {
			t.Fatalf("%s: reply %v, want %v", s.name, err, s.fail)
		}
		f := filepath.Join(dir, "r.tsr")
		os.WriteFile(f, body, 0o600)
		out, err := run(t, "openssl", "ts", "-reply", "-in", f, "-text")
		if err != nil || !strings.Contains(out, "the TSA's time source is not available") {
			t.Fatalf("%s: openssl: %v\n%s", s.name, err, out)
		}
	}
	if calls.Load() != 3 {
		t.Errorf("clock checked %d times, want 3 (once per second at most)", calls.Load())
	}
}

// TestKernelClock runs the kernel check on this machine: it must give a
// verdict, and with a zero tolerance no clock passes.
func TestKernelClock(t *testing.T) {
	if err := KernelClock(time.Hour)(); err != nil && !errors.Is(err, ErrClockUnsynced) {
		t.Fatalf("kernel clock check: %v", err)
	}
	if err := KernelClock(0)(); !errors.Is(err, ErrClockUnsynced) {
		t.Fatalf("zero tolerance accepted: %v", err)
	}
}
