package main

import (
	"context"
	"time"
)

// every runs job at once and then every period until firmad stops; each
// run gets a minute. Shutdown waits for a run under way.
func (a *app) every(name string, period time.Duration, job func(ctx context.Context)) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			job(ctx)
			cancel()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	a.onClose(name, func() error { close(stop); <-done; return nil })
}
