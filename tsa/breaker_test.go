package tsa

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/firma-cloud/firma/keystore"
	"github.com/prometheus/client_golang/prometheus"
)

// flaky is a real TSA that can be made to hang, before answering or in
// the middle of its reply, and counts the requests it receives.
type flaky struct {
	next    http.Handler
	midBody bool // hang after the headers and part of the body
	hung    atomic.Bool
	n       atomic.Int64
	stop    chan struct{} // closed before the server, whose Close waits for handlers
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.n.Add(1)
	if !f.hung.Load() {
		f.next.ServeHTTP(w, r)
		return
	}
	if f.midBody {
		w.Header().Set("Content-Type", ReplyContentType)
		w.Header().Set("Content-Length", "100")
		w.Write([]byte{0x30, 0x62})
		w.(http.Flusher).Flush()
	}
	// Reading the query to its end is what lets net/http notice the
	// client hanging up and cancel r.Context.
	io.Copy(io.Discard, r.Body)
	select {
	case <-r.Context().Done():
	case <-f.stop:
	}
}

// fakeClock is the client's clock, moved past cool-downs instead of
// sleeping through them.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestClientBreaker checks that a hung TSA costs one exchange deadline,
// then is skipped (failing over at once) until its cool-down ends, and is
// used again once it answers. Cost: three 500 ms deadlines (a signing TSA
// under -race needs the margin), about 2 s per subtest.
func TestClientBreaker(t *testing.T) {
	e := newEnv(t)
	p := e.newPKI("Firma")
	good := e.tsa(p, keystore.ECP256, nil)
	goodURL := serve(t, good)
	digest := sha256.Sum256([]byte("document"))
	const cooldown = time.Minute

	for _, midBody := range []bool{false, true} {
		name := "hangs before answering"
		if midBody {
			name = "hangs in the middle of its reply"
		}
		// Not parallel: github.com/digitorus/pkcs7's BER parser writes a
		// package variable, a race when tokens are verified at once.
		t.Run(name, func(t *testing.T) {
			f := &flaky{next: bareHTTP(good), midBody: midBody, stop: make(chan struct{})}
			f.hung.Store(true)
			hungURL := serve(t, f)
			t.Cleanup(func() { close(f.stop) })
			reg := prometheus.NewRegistry()
			clock := &fakeClock{t: time.Now()}
			client := func(urls ...string) *Client {
				c, err := NewClient(ClientConfig{URLs: urls, Roots: p.roots(), Timeout: 500 * time.Millisecond,
					Retries: 2, Backoff: time.Millisecond, BreakerCooldown: cooldown, Registerer: reg})
				if err != nil {
					t.Fatal(err)
				}
				c.now = clock.now
				return c
			}
			stamp := func(c *Client) (*Token, error) {
				return c.Timestamp(context.Background(), crypto.SHA256, digest[:])
			}
			received := func(want int64) {
				t.Helper()
				if got := f.n.Load(); got != want {
					t.Fatalf("hung TSA received %d requests, want %d", got, want)
				}
			}
			state := func(want float64) {
				t.Helper()
				if got := metricValue(t, reg, "firma_tsa_breaker_state", hungURL); got != want {
					t.Fatalf("breaker state of the hung TSA = %v, want %v", got, want)
				}
			}

			// Alone: the first document waits one deadline; the retry
			// rounds do not ask it again, nor do the next documents.
			alone := client(hungURL)
			if err := alone.Reachable(); err != nil {
				t.Fatalf("Reachable before any exchange: %v", err)
			}
			if _, err := stamp(alone); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrCircuitOpen) {
				t.Fatalf("first timestamp: %v, want a timeout", err)
			}
			received(1)
			state(breakerOpen)
			// Readiness: no TSA to ask until the cool-down.
			if err := alone.Reachable(); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Reachable with the only TSA open: %v, want ErrUnavailable", err)
			}
			for range 3 {
				if _, err := stamp(alone); !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrCircuitOpen) {
					t.Fatalf("timestamp while open: %v, want ErrCircuitOpen", err)
				}
			}
			received(1)

			// With a working second TSA: one deadline, then failover at once.
			pair := client(hungURL, goodURL)
			for i := range 3 {
				tok, err := stamp(pair)
				if err != nil || tok.URL != goodURL {
					t.Fatalf("timestamp %d: %v, %+v", i, err, tok)
				}
			}
			received(2)
			if err := pair.Reachable(); err != nil {
				t.Fatalf("Reachable with one TSA answering: %v", err)
			}

			// After the cool-down, still hung: one trial, open again.
			clock.add(cooldown)
			if tok, err := stamp(pair); err != nil || tok.URL != goodURL {
				t.Fatalf("timestamp after cool-down: %v", err)
			}
			received(3)
			state(breakerOpen)
			if _, err := stamp(pair); err != nil {
				t.Fatal(err)
			}
			received(3)

			// After the cool-down and answering again: used again, closed.
			f.hung.Store(false)
			clock.add(cooldown)
			for i := range 2 {
				tok, err := stamp(pair)
				if err != nil || tok.URL != hungURL {
					t.Fatalf("timestamp %d after recovery: %v, %+v", i, err, tok)
				}
			}
			received(5)
			state(breakerClosed)
			clock.add(cooldown) // alone's breaker may try again: ready again
			if err := alone.Reachable(); err != nil {
				t.Fatalf("Reachable after the cool-down: %v", err)
			}
			if got := metricValue(t, reg, "firma_tsa_breaker_open_total", hungURL); got != 3 {
				t.Errorf("firma_tsa_breaker_open_total = %v, want 3 (alone, pair, failed trial)", got)
			}
		})
	}
}

// metricValue is the value of the gauge or counter name for url.
func metricValue(t *testing.T, reg *prometheus.Registry, name, url string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() != url {
				continue
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no %s for %s", name, url)
	return 0
}

// TestClientBreakerIgnoresAnswers checks that a TSA that answers at once,
// with a refusal or an HTTP error, is asked every time: only timeouts and
// failed connections cost a deadline worth skipping.
func TestClientBreakerIgnoresAnswers(t *testing.T) {
	e := newEnv(t)
	p := e.newPKI("Firma")
	good := e.tsa(p, keystore.ECP256, nil)
	tests := []struct {
		name   string
		next   http.Handler
		policy []int
		kind   error
	}{
		{name: "policy refused", next: bareHTTP(good), policy: []int{1, 2, 3, 4}, kind: ErrRejected},
		{name: "HTTP 503", next: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
		}), kind: ErrUnavailable},
	}
	digest := sha256.Sum256([]byte("document"))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &flaky{next: tc.next, stop: make(chan struct{})}
			u := serve(t, f)
			reg := prometheus.NewRegistry()
			c, err := NewClient(ClientConfig{URLs: []string{u}, Roots: p.roots(), Policy: tc.policy,
				Retries: -1, BreakerCooldown: time.Hour, Registerer: reg})
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if _, err := c.Timestamp(context.Background(), crypto.SHA256, digest[:]); !errors.Is(err, tc.kind) || errors.Is(err, ErrCircuitOpen) {
					t.Fatalf("timestamp: %v, want %v", err, tc.kind)
				}
			}
			if got := f.n.Load(); got != 3 {
				t.Errorf("TSA received %d requests, want 3", got)
			}
			if got := metricValue(t, reg, "firma_tsa_breaker_state", u); got != breakerClosed {
				t.Errorf("breaker state %v, want closed", got)
			}
		})
	}
}
