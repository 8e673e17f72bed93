package limit

import (
	"context"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"

	"github.com/firma-cloud/firma/errs"
)

// Codes of the refusals.
const (
	CodeRateLimited = "rate_limited"
	CodeBusy        = "busy"
)

// Refusals counts the refusals of every named limiter, by its name;
// firmad registers it. Unnamed limiters (tests) are not counted.
var Refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "firma_limit_refusals_total",
	Help: "Requests refused by a limit (busy or over a per-client rate), by limit.",
}, []string{"limit"})

func refused(name string) {
	if name != "" {
		Refusals.WithLabelValues(name).Inc()
	}
}

// Gate is a weighted semaphore whose callers wait at most a bounded time
// for room, then are refused: a queue with a deadline rather than an
// unbounded pile of goroutines each holding what it came with.
type Gate struct {
	Name string // its label in Refusals; set before use
	sem  *semaphore.Weighted
	size int64
	wait time.Duration
}

// NewGate returns a gate of the given size; callers wait up to wait.
func NewGate(size int64, wait time.Duration) *Gate {
	return &Gate{sem: semaphore.NewWeighted(size), size: size, wait: wait}
}

// Size is the gate's capacity.
func (g *Gate) Size() int64 { return g.size }

// Acquire takes n units (at most Size), waiting up to the gate's wait or
// ctx's end. The refusal is Unavailable with code busy and a RetryAfter of
// the wait; release must be called once when acquired.
func (g *Gate) Acquire(ctx context.Context, n int64) (release func(), err error) {
	n = min(max(n, 1), g.size)
	if !g.sem.TryAcquire(n) {
		wctx, cancel := context.WithTimeout(ctx, g.wait)
		err := g.sem.Acquire(wctx, n)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, errs.Wrap(errs.Sentinel(errs.Canceled, "canceled", "the client went away"), ctx.Err(), "waiting for room")
			}
			refused(g.Name)
			return nil, &errs.Error{Kind: errs.Unavailable, Code: CodeBusy, Detail: "the server is busy; retry later",
				RetryAfter: retryAfter(g.wait)}
		}
	}
	var once sync.Once
	return func() { once.Do(func() { g.sem.Release(n) }) }, nil
}

// TryAcquire takes n units (at most Size) only if they are free now, for
// callers that must not wait (a gRPC tap handle runs under the
// connection's lock). The refusal is Unavailable, code busy, with a
// RetryAfter of the gate's wait.
func (g *Gate) TryAcquire(n int64) (release func(), err error) {
	n = min(max(n, 1), g.size)
	if !g.sem.TryAcquire(n) {
		refused(g.Name)
		return nil, &errs.Error{Kind: errs.Unavailable, Code: CodeBusy, Detail: "the server is busy; retry later",
			RetryAfter: retryAfter(g.wait)}
	}
	var once sync.Once
	return func() { once.Do(func() { g.sem.Release(n) }) }, nil
}

// Clients is a token bucket per client key (an IP address), kept in an
// LRU of bounded size whose entries expire after idle, so that the map is
// bounded whatever the number of addresses. A client evicted early starts
// again with a full bucket: the bound trades that leniency for memory.
type Clients struct {
	Name  string // its label in Refusals; set before use
	mu    sync.Mutex
	lru   *expirable.LRU[string, *rate.Limiter]
	every rate.Limit
	burst int
}

// NewClients allows each client perSecond requests with bursts of burst;
// at most size clients are tracked, each forgotten after ttl.
func NewClients(perSecond float64, burst, size int, ttl time.Duration) *Clients {
	return &Clients{lru: expirable.NewLRU[string, *rate.Limiter](size, nil, ttl), every: rate.Limit(perSecond), burst: burst}
}

// Allow takes one token of key's bucket, or says how long until one is
// there.
func (c *Clients) Allow(key string) (ok bool, retry time.Duration) {
	c.mu.Lock()
	l, found := c.lru.Get(key)
	if !found {
		l = rate.NewLimiter(c.every, c.burst)
		c.lru.Add(key, l)
	}
	c.mu.Unlock()
	now := time.Now()
	r := l.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Minute
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Check is Allow as an error: TooMany, code rate_limited, with RetryAfter.
func (c *Clients) Check(key string) error {
	if c == nil {
		return nil
	}
	if ok, d := c.Allow(key); !ok {
		refused(c.Name)
		return &errs.Error{Kind: errs.TooMany, Code: CodeRateLimited, Detail: "too many requests from this client; retry later",
			RetryAfter: retryAfter(d)}
	}
	return nil
}

// Len is the number of clients tracked.
func (c *Clients) Len() int { return c.lru.Len() }

// Concurrent bounds the requests one client has in flight. A key is kept
// only while it has requests in flight, so the map is bounded by what the
// server is serving.
type Concurrent struct {
	Name string // its label in Refusals; set before use
	mu   sync.Mutex
	n    map[string]int
	max  int
}

// NewConcurrent allows each key max requests in flight.
func NewConcurrent(max int) *Concurrent { return &Concurrent{n: map[string]int{}, max: max} }

// Enter counts one request of key in, refused (TooMany) at the bound.
func (c *Concurrent) Enter(key string) (leave func(), err error) {
	if c == nil {
		return func() {}, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[key] >= c.max {
		refused(c.Name)
		return nil, &errs.Error{Kind: errs.TooMany, Code: CodeRateLimited, Detail: "too many requests in flight from this client",
			RetryAfter: time.Second}
	}
	c.n[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.n[key]--; c.n[key] <= 0 {
				delete(c.n, key)
			}
		})
	}, nil
}

// RetryAfterSeconds is the Retry-After header value for err: its
// RetryAfter rounded up to whole seconds, at least 1; "" when err carries
// none.
func RetryAfterSeconds(err error) string {
	e := errs.As(err)
	if e == nil || e.RetryAfter <= 0 {
		return ""
	}
	return strconv.FormatInt(max(1, int64(math.Ceil(e.RetryAfter.Seconds()))), 10)
}

func retryAfter(d time.Duration) time.Duration { return max(d, time.Second) }
