package api

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestMetricsSeries: the interceptor counts every call under its method
// and code, successful ones through the series bound on first use, and
// times them by method.
func TestMetricsSeries(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := newMetrics(reg)
	calls := []struct {
		method string
		err    error
	}{
		{"/firma.v1.SigningService/SignDigests", nil},
		{"/firma.v1.SigningService/SignDigests", nil},
		{"/firma.v1.SigningService/SignDigests", status.Error(codes.NotFound, "no key")},
		{"/firma.v1.KeyService/GetKey", nil},
		{"/firma.v1.KeyService/GetKey", errors.New("plain")},
	}
	for _, c := range calls {
		_, err := m.unary(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: c.method},
			func(context.Context, any) (any, error) { time.Sleep(time.Millisecond); return nil, c.err })
		if err != c.err {
			t.Fatalf("%s: interceptor returned %v, want %v", c.method, err, c.err)
		}
	}
	want := []struct {
		method, code string
		n            float64
	}{
		{"/firma.v1.SigningService/SignDigests", "OK", 2},
		{"/firma.v1.SigningService/SignDigests", "NotFound", 1},
		{"/firma.v1.KeyService/GetKey", "OK", 1},
		{"/firma.v1.KeyService/GetKey", "Unknown", 1},
	}
	for _, w := range want {
		if got := testutil.ToFloat64(m.calls.WithLabelValues(w.method, w.code)); got != w.n {
			t.Errorf("%s %s: %v calls, want %v", w.method, w.code, got, w.n)
		}
	}
	if n := testutil.CollectAndCount(m.duration); n != 2 {
		t.Errorf("%d duration series, want one per method (2)", n)
	}
}
