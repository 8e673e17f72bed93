package main

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/singleflight"
)

// readyTimeout bounds each readiness check, so that a hung HSM makes
// /readyz fail rather than hang the orchestrator's probe.
const readyTimeout = 3 * time.Second

func (a *app) routes() {
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	a.mux.HandleFunc("GET /readyz", a.readyz)
	a.mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{
		Registry: a.reg, ErrorLog: slogPrinter{a}, EnableOpenMetrics: true}))
}

// readyCacheFor is how long a readiness answer is reused: probes from
// several orchestrators, or a flood of requests, then cost the HSM one
// session check a second at most, never the sessions signatures need.
const readyCacheFor = time.Second

// readiness runs the checks at most once per readyCacheFor, and once at a
// time however many requests ask.
type readiness struct {
	group singleflight.Group
	mu    sync.Mutex
	last  *readyResult
}

type readyResult struct {
	ok      bool
	results map[string]string
	at      time.Time
}

// readyz answers 200 only if every readiness check passes. The body names
// each check's outcome but never its error text, which could describe the
// infrastructure; that goes to the log.
func (a *app) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if a.draining.Load() {
		// Tell load balancers to stop sending work while calls drain.
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]any{"status": "shutting down"})
		return
	}
	res := a.checkReady()
	status, code := "ready", http.StatusOK
	if !res.ok {
		status, code = "not ready", http.StatusServiceUnavailable
	}
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"status": status, "checks": res.results})
}

// checkReady returns a recent result or runs every check at once, each
// bounded by readyTimeout. The checks do not use a request's context: one
// caller going away must not fail the answer shared with the others.
func (a *app) checkReady() *readyResult {
	a.rd.mu.Lock()
	if l := a.rd.last; l != nil && time.Since(l.at) < readyCacheFor {
		a.rd.mu.Unlock()
		return l
	}
	a.rd.mu.Unlock()
	v, _, _ := a.rd.group.Do("ready", func() (any, error) {
		a.mu.Lock()
		checks := append([]readyCheck(nil), a.checks...)
		a.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
		defer cancel()
		res := &readyResult{ok: true, results: make(map[string]string, len(checks))}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, c := range checks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := c.fn(ctx)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					res.ok = false
					res.results[c.name] = "fail"
					a.log.Warn("readiness check failed", "check", c.name, "err", err)
					return
				}
				res.results[c.name] = "ok"
			}()
		}
		wg.Wait()
		res.at = time.Now()
		a.rd.mu.Lock()
		a.rd.last = res
		a.rd.mu.Unlock()
		return res, nil
	})
	return v.(*readyResult)
}

// slogPrinter passes promhttp's errors to the app's logger.
type slogPrinter struct{ a *app }

func (p slogPrinter) Println(v ...any) { p.a.log.Error("metrics", "err", v) }
