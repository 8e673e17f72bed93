package tsa

import (
	"errors"
	"sync"
	"time"
)

// ErrClockUnsynced means the system clock is not known to be within the
// accuracy the TSA writes in its tokens, so it must not issue any.
var ErrClockUnsynced = errors.New("system clock not synchronised")

// clockGate runs a ClockCheck at most once a second, since time sources do
// not change faster, and tells the caller when its verdict changes so that
// it logs transitions rather than every request.
type clockGate struct {
	check func() error

	mu      sync.Mutex
	at      time.Time
	err     error
	checked bool
}

// status returns the current verdict and whether it differs from the last.
func (g *clockGate) status(now time.Time) (error, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.checked && now.Sub(g.at) < time.Second && now.After(g.at) {
		return g.err, false
	}
	err := g.check()
	changed := !g.checked || (err == nil) != (g.err == nil)
	g.at, g.err, g.checked = now, err, true
	return err, changed
}
