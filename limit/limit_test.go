package limit

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/errs"
)

func TestGate(t *testing.T) {
	g := NewGate(10, 50*time.Millisecond)
	ctx := context.Background()
	r1, err := g.Acquire(ctx, 6)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := g.Acquire(ctx, 4)
	if err != nil {
		t.Fatal(err)
	}
	// Full: the next waits its 50 ms, then is refused as busy.
	_, err = g.Acquire(ctx, 1)
	if e := errs.As(err); e == nil || e.Kind != errs.Unavailable || e.Code != CodeBusy || e.RetryAfter < time.Second {
		t.Fatalf("full gate: %#v", e)
	}
	if got := RetryAfterSeconds(err); got != "1" {
		t.Errorf("Retry-After %q, want 1", got)
	}
	// A caller that goes away is canceled, not busy.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := g.Acquire(cctx, 1); errs.KindOf(err) != errs.Canceled {
		t.Errorf("canceled wait: %v", err)
	}
	// Room made while waiting lets the waiter in.
	done := make(chan error, 1)
	go func() {
		r, err := withWait(g, time.Second).Acquire(ctx, 5)
		if err == nil {
			r()
		}
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	r1()
	r1() // a second release is a no-op, not a double release
	if err := <-done; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	r2()
	// More than the size takes all of it rather than waiting forever.
	r3, err := g.Acquire(ctx, 100)
	if err != nil {
		t.Fatalf("oversized: %v", err)
	}
	r3()
	// TryAcquire never waits: refused at once while full, busy.
	r4, err := g.TryAcquire(10)
	if err != nil {
		t.Fatalf("TryAcquire on an empty gate: %v", err)
	}
	if _, err := g.TryAcquire(1); errs.KindOf(err) != errs.Unavailable || RetryAfterSeconds(err) == "" {
		t.Fatalf("TryAcquire on a full gate: %v", err)
	}
	r4()
	if !g.sem.TryAcquire(10) {
		t.Fatal("units leaked")
	}
}

// withWait is g (the same units) with another wait.
func withWait(g *Gate, wait time.Duration) *Gate { return &Gate{sem: g.sem, size: g.size, wait: wait} }

func TestClients(t *testing.T) {
	c := NewClients(1, 3, 2, time.Minute) // 1/s, bursts of 3, 2 clients tracked
	for i := range 3 {
		if ok, _ := c.Allow("a"); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, retry := c.Allow("a")
	if ok || retry <= 0 || retry > time.Second {
		t.Fatalf("over the burst: ok %v retry %v", ok, retry)
	}
	c.Name = "test_rate"
	before := testutil.ToFloat64(Refusals.WithLabelValues("test_rate"))
	err := c.Check("a")
	if got := testutil.ToFloat64(Refusals.WithLabelValues("test_rate")) - before; got != 1 {
		t.Errorf("refusals counted %v, want 1", got)
	}
	if e := errs.As(err); e == nil || e.Kind != errs.TooMany || e.Code != CodeRateLimited || RetryAfterSeconds(err) != "1" {
		t.Fatalf("Check: %#v", e)
	}
	if ok, _ := c.Allow("b"); !ok {
		t.Fatal("another client is limited by the first")
	}
	// A flood of addresses keeps the map at its bound.
	for i := range 1000 {
		c.Allow(fmt.Sprintf("10.0.%d.%d", i/256, i%256))
	}
	if n := c.Len(); n != 2 {
		t.Fatalf("%d clients tracked, want the bound 2", n)
	}
	var nilClients *Clients
	if err := nilClients.Check("a"); err != nil {
		t.Fatalf("nil limiter: %v", err)
	}
}

func TestConcurrent(t *testing.T) {
	c := NewConcurrent(2)
	l1, err1 := c.Enter("a")
	l2, err2 := c.Enter("a")
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if _, err := c.Enter("a"); errs.KindOf(err) != errs.TooMany || RetryAfterSeconds(err) == "" {
		t.Fatalf("third in flight: %v", err)
	}
	if l, err := c.Enter("b"); err != nil {
		t.Fatal(err)
	} else {
		l()
	}
	l1()
	l1()
	if l, err := c.Enter("a"); err != nil {
		t.Fatalf("after one left: %v", err)
	} else {
		l()
	}
	l2()
	if len(c.n) != 0 {
		t.Fatalf("keys kept with nothing in flight: %v", c.n)
	}
	// Under contention the bound holds.
	var wg sync.WaitGroup
	var mu sync.Mutex
	in, peak := 0, 0
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			leave, err := c.Enter("x")
			if err != nil {
				return
			}
			mu.Lock()
			in++
			peak = max(peak, in)
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			in--
			mu.Unlock()
			leave()
		}()
	}
	wg.Wait()
	if peak > 2 {
		t.Fatalf("%d in flight at once, bound 2", peak)
	}
}

func TestClientKey(t *testing.T) {
	for _, tt := range []struct{ remote, want string }{
		{"192.0.2.7:5000", "192.0.2.7"},
		{"[2001:db8::1]:443", "2001:db8::1"},
		{"not-an-address", "not-an-address"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		r.Header.Set("X-Forwarded-For", "198.51.100.1") // never trusted
		if got := ClientKey(r); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.remote, got, tt.want)
		}
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{errors.New("plain"), ""},
		{&errs.Error{Kind: errs.TooMany, RetryAfter: 1500 * time.Millisecond}, "2"},
		{fmt.Errorf("wrapped: %w", &errs.Error{Kind: errs.Unavailable, RetryAfter: 10 * time.Millisecond}), "1"},
		{&errs.Error{Kind: errs.TooMany}, ""},
	} {
		if got := RetryAfterSeconds(tt.err); got != tt.want {
			t.Errorf("%v: %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	d := DefaultConfig()
	if err := d.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	bad := d
	bad.VerifyBytesMiB, bad.QueueWait, bad.MemoryLimitMiB, bad.TSABurst = 0, 0, -1, -3
	err := bad.Validate()
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *config.FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%v is not a FieldError", e)
		}
		fields = append(fields, fe.Field)
	}
	want := []string{"memory_limit_mib", "queue_wait", "verify_bytes_mib", "tsa_burst"}
	if fmt.Sprint(fields) != fmt.Sprint(want) {
		t.Fatalf("fields %v, want %v", fields, want)
	}
	// The section is registered: a file or FIRMA_LIMITS_* sets it.
	cfg := config.Default()
	if err := cfg.Decode(strings.NewReader("limits:\n  tsa_per_minute: 5\n")); err != nil {
		t.Fatal(err)
	}
	if got := config.SectionOf[Config](cfg, SectionName); got == nil || got.TSAPerMinute != 5 || got.OCSPBurst != d.OCSPBurst {
		t.Fatalf("decoded section: %+v", got)
	}
}
