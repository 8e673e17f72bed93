package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
)

func TestLateInterceptorsRunInOrder(t *testing.T) {
	var got []string
	mark := func(name string) grpc.UnaryServerInterceptor {
		return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			got = append(got, name+">")
			resp, err := h(ctx, req)
			got = append(got, "<"+name)
			return resp, err
		}
	}
	a := &app{}
	a.intercept(mark("audit"), nil)
	a.intercept(mark("quota"), nil)
	resp, err := a.lateUnary(context.Background(), "req", &grpc.UnaryServerInfo{}, func(ctx context.Context, req any) (any, error) {
		got = append(got, "handler")
		return req.(string) + "-done", nil
	})
	if err != nil || resp != "req-done" {
		t.Fatalf("resp %v err %v", resp, err)
	}
	want := []string{"audit>", "quota>", "handler", "<quota", "<audit"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}

	empty := &app{}
	if resp, err := empty.lateUnary(context.Background(), 1, &grpc.UnaryServerInfo{}, func(ctx context.Context, req any) (any, error) { return req, nil }); err != nil || resp != 1 {
		t.Fatalf("no interceptors: %v %v", resp, err)
	}
}

func TestReadinessIsSharedAndCached(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	a := &app{log: slog.New(slog.DiscardHandler)}
	a.ready("slow", func(ctx context.Context) error {
		calls.Add(1)
		<-release
		return nil
	})
	a.ready("broken", func(ctx context.Context) error { return errors.New("store at 10.0.0.5 refused") })
	var wg sync.WaitGroup
	results := make([]*readyResult, 8)
	for i := range results {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = a.checkReady() }()
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d concurrent requests ran the check %d times, want once", len(results), n)
	}
	for _, r := range results {
		if r.ok || r.results["slow"] != "ok" || r.results["broken"] != "fail" {
			t.Fatalf("result %+v", r)
		}
	}
	a.checkReady()
	if n := calls.Load(); n != 1 {
		t.Fatalf("a fresh answer was not reused: %d runs", n)
	}

	rec := httptest.NewRecorder()
	a.readyz(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 503 || strings.Contains(rec.Body.String(), "10.0.0.5") {
		t.Fatalf("readyz %d %s: want 503 without the error text", rec.Code, rec.Body)
	}
}
