package tsa

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultBreakerCooldown is how long a TSA that timed out or could not be
// reached is skipped before one trial request is let through.
const DefaultBreakerCooldown = 30 * time.Second

// Breaker states, as firma_tsa_breaker_state reports them.
const (
	breakerClosed   = 0
	breakerOpen     = 1
	breakerHalfOpen = 2
)

// breaker is one TSA URL's circuit breaker. Only a timeout or a failed
// connection opens it: those are what cost a caller a whole exchange
// deadline, while a TSA that answers, even with a refusal or an HTTP
// error, answers at once. A caller's own cancellation says nothing about
// the TSA and changes nothing. Hand-written rather than a library because
// that three-way outcome (answered, unreachable, neither) is the whole of
// it and fits in this file.
type breaker struct {
	cooldown time.Duration
	state    prometheus.Gauge
	opened   prometheus.Counter

	mu    sync.Mutex
	s     int       // breakerClosed, breakerOpen or breakerHalfOpen
	until time.Time // while open: when the trial request may go
}

// allow reports whether a request may go to the TSA now. After the
// cool-down the first caller is let through as the trial (half-open);
// others are turned away until it reports.
func (b *breaker) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.s {
	case breakerClosed:
		return true
	case breakerOpen:
		if now.Before(b.until) {
			return false
		}
		b.set(breakerHalfOpen)
		return true
	default: // a trial is in flight
		return false
	}
}

// skipping reports whether allow would refuse now, without starting a
// trial: a retry round in which every TSA would be skipped is not worth
// its backoff.
func (b *breaker) skipping(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.s == breakerHalfOpen || (b.s == breakerOpen && now.Before(b.until))
}

// answered closes the breaker: the TSA replied.
func (b *breaker) answered() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.set(breakerClosed)
}

// unreachable opens the breaker for the cool-down from now.
func (b *breaker) unreachable(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.s != breakerOpen {
		b.opened.Inc()
	}
	b.until = now.Add(b.cooldown)
	b.set(breakerOpen)
}

// abandoned is a request cut short by its caller: a trial gives its turn
// to the next caller at once; otherwise nothing changes.
func (b *breaker) abandoned(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.s == breakerHalfOpen {
		b.until = now
		b.set(breakerOpen)
	}
}

func (b *breaker) set(s int) {
	b.s = s
	b.state.Set(float64(s))
}
