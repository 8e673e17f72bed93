package api

import (
	"context"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signing"
)

// Register registers KeyService and SigningService on s; it refuses
// without a signing service.
func Register(s *grpc.Server, ks *keystore.HSM, sg *signing.Service, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sv, err := NewSigningService(sg, log)
	if err != nil {
		return err
	}
	firmav1.RegisterKeyServiceServer(s, NewKeyService(ks, log))
	firmav1.RegisterSigningServiceServer(s, sv)
	return nil
}

// ServerOptions returns the interceptors every firmad gRPC server runs, in
// order: panic recovery, metrics, then operator authentication. reg may be
// nil (no metrics). Transport credentials are the caller's to add.
func ServerOptions(auth config.Auth, reg prometheus.Registerer, log *slog.Logger) ([]grpc.ServerOption, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	au, as, err := AuthInterceptors(auth)
	if err != nil {
		return nil, err
	}
	m := newMetrics(reg)
	rec := recoverer{log: log}
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(rec.unary, m.unary, au),
		grpc.ChainStreamInterceptor(rec.stream, m.stream, as),
	}, nil
}

// recoverer turns a panic in a handler into Internal, so that one bad
// request never takes the service (and every in-flight signature) down.
type recoverer struct{ log *slog.Logger }

// Named results: a deferred recover can set nothing else.
func (r recoverer) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("panic in handler", "method", info.FullMethod, "panic", p, "stack", string(debug.Stack()))
			resp, err = nil, newStatus(codes.Internal, firmav1.ErrorReason_ERROR_REASON_INTERNAL, "internal error", nil)
		}
	}()
	return handler(ctx, req)
}

func (r recoverer) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("panic in handler", "method", info.FullMethod, "panic", p, "stack", string(debug.Stack()))
			err = newStatus(codes.Internal, firmav1.ErrorReason_ERROR_REASON_INTERNAL, "internal error", nil)
		}
	}()
	return handler(srv, ss)
}

// metrics count calls and time them by method and code.
type metrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// ok holds each method's series of a successful call (method ->
	// *okSeries), bound on its first call: looking the labels up per
	// call hashes them and takes the vectors' locks, a measurable part of
	// a one-digest call. Methods are the registered ones, so it stays small.
	ok sync.Map
}

type okSeries struct {
	calls    prometheus.Counter
	duration prometheus.Observer
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firma_api_requests_total", Help: "gRPC calls by method and status code."},
			[]string{"method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "firma_api_request_duration_seconds", Help: "gRPC call latency by method.",
			Buckets: []float64{1e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5}},
			[]string{"method"}),
	}
	if reg != nil {
		reg.MustRegister(m.calls, m.duration)
	}
	return m
}

func (m *metrics) observe(method string, start time.Time, err error) {
	if err == nil {
		v, ok := m.ok.Load(method)
		if !ok {
			v, _ = m.ok.LoadOrStore(method, &okSeries{calls: m.calls.WithLabelValues(method, codes.OK.String()),
				duration: m.duration.WithLabelValues(method)})
		}
		s := v.(*okSeries)
		s.calls.Inc()
		s.duration.Observe(time.Since(start).Seconds())
		return
	}
	m.calls.WithLabelValues(method, status.Code(err).String()).Inc()
	m.duration.WithLabelValues(method).Observe(time.Since(start).Seconds())
}

func (m *metrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	m.observe(info.FullMethod, start, err)
	return resp, err
}

func (m *metrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	m.observe(info.FullMethod, start, err)
	return err
}
