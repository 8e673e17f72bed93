package main

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
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

// readyz runs every readiness check at once and answers 200 only if all
// pass. The body names each check's outcome but never its error text, which
// could describe the infrastructure; that goes to the log.
func (a *app) readyz(w http.ResponseWriter, r *http.Request) {
	if a.draining.Load() {
		// Tell load balancers to stop sending work while calls drain.
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]any{"status": "shutting down"})
		return
	}
	a.mu.Lock()
	checks := append([]readyCheck(nil), a.checks...)
	a.mu.Unlock()

	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	results := make(map[string]string, len(checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	ok := true
	for _, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.fn(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				ok = false
				results[c.name] = "fail"
				a.log.Warn("readiness check failed", "check", c.name, "err", err)
				return
			}
			results[c.name] = "ok"
		}()
	}
	wg.Wait()
	status := "ready"
	code := http.StatusOK
	if !ok {
		status, code = "not ready", http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"status": status, "checks": results})
}

// slogPrinter passes promhttp's errors to the app's logger.
type slogPrinter struct{ a *app }

func (p slogPrinter) Println(v ...any) { p.a.log.Error("metrics", "err", v) }
