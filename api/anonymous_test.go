package api_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/limit"
	"github.com/firma-cloud/firma/verify"
)

// anonymousServer serves VerifyService within lim on a real TCP listener.
// Its verifier is never there: each call that reaches it counts, waits on
// hold (when not nil) and fails as unavailable, so a test sees exactly
// which calls the limits let in.
func anonymousServer(t *testing.T, lim *api.AnonymousLimits, hold chan struct{}) (firmav1.VerifyServiceClient, *atomic.Int32) {
	t.Helper()
	var reached atomic.Int32
	svc := api.NewLazyVerifyService(func(ctx context.Context) (*verify.Verifier, error) {
		reached.Add(1)
		if hold != nil {
			select {
			case <-hold:
			case <-ctx.Done():
			}
		}
		return nil, api.ErrVerifierUnavailable
	}, nil)
	gs := grpc.NewServer(lim.ServerOptions()...)
	firmav1.RegisterVerifyServiceServer(gs, svc)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return firmav1.NewVerifyServiceClient(conn), &reached
}

func verifyCall(ctx context.Context, c firmav1.VerifyServiceClient, size int) error {
	_, err := c.Verify(ctx, &firmav1.VerifyRequest{Signature: make([]byte, size)})
	return err
}

// wantExhausted fails unless err is ResourceExhausted carrying RetryInfo.
func wantExhausted(t *testing.T, what string, err error) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != codes.ResourceExhausted {
		t.Fatalf("%s: %v, want ResourceExhausted", what, err)
	}
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() >= time.Second {
			return
		}
	}
	t.Fatalf("%s: no RetryInfo of at least 1 s in %v", what, st.Details())
}

// wantReached fails unless err is the verifier's answer (the call got in).
func wantReached(t *testing.T, what string, err error) {
	t.Helper()
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("%s: %v, want the verifier's Unavailable", what, err)
	}
}

// TestAnonymousLimits checks each bound of the anonymous gRPC methods on a
// real client and listener: the refusal is ResourceExhausted with
// RetryInfo, the verifier is never reached by a refused call, and what a
// call took is given back when it ends, however it ends.
func TestAnonymousLimits(t *testing.T) {
	const max = 1 << 10
	ctx := t.Context()

	t.Run("rate", func(t *testing.T) {
		t.Parallel()
		c, reached := anonymousServer(t, &api.AnonymousLimits{Rate: limit.NewClients(1.0/60, 2, 10, time.Minute), MaxMessageBytes: max}, nil)
		wantReached(t, "first", verifyCall(ctx, c, 10))
		wantReached(t, "second", verifyCall(ctx, c, 10))
		wantExhausted(t, "third within the minute", verifyCall(ctx, c, 10))
		if n := reached.Load(); n != 2 {
			t.Fatalf("verifier reached %d times, want 2", n)
		}
	})

	t.Run("in flight per client and in all", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			name string
			lim  *api.AnonymousLimits
		}{
			{"per client", &api.AnonymousLimits{PerClient: limit.NewConcurrent(2), MaxMessageBytes: max}},
			// Room for two calls' worth of bytes.
			{"bytes", &api.AnonymousLimits{Bytes: limit.NewGate(2*max, time.Second), MaxMessageBytes: max}},
		} {
			hold := make(chan struct{})
			c, reached := anonymousServer(t, tt.lim, hold)
			errc := make(chan error, 2)
			for range 2 {
				go func() { errc <- verifyCall(ctx, c, 10) }()
			}
			for reached.Load() < 2 {
				time.Sleep(5 * time.Millisecond)
			}
			// Refused at once, though the tap could have waited.
			wantExhausted(t, tt.name+": third while two are in", verifyCall(ctx, c, 10))
			close(hold)
			for range 2 {
				wantReached(t, tt.name+": held", <-errc)
			}
			// Given back when each call ended: two fit again, one by one.
			deadline := time.Now().Add(10 * time.Second)
			for {
				err := verifyCall(ctx, c, 10)
				if status.Code(err) == codes.Unavailable {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: room never given back: %v", tt.name, err)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	})

	t.Run("size", func(t *testing.T) {
		t.Parallel()
		gate := limit.NewGate(max, time.Second)
		c, reached := anonymousServer(t, &api.AnonymousLimits{Bytes: gate, MaxMessageBytes: max}, nil)
		err := verifyCall(ctx, c, 4*max)
		wantExhausted(t, "over the limit", err)
		if n := reached.Load(); n != 0 {
			t.Fatalf("an oversized request reached the verifier (%d)", n)
		}
		// The refused call gave its room back: the whole gate is free.
		deadline := time.Now().Add(10 * time.Second)
		for {
			release, err := gate.TryAcquire(max)
			if err == nil {
				release()
				break
			}
			if errs.KindOf(err) != errs.Unavailable || time.Now().After(deadline) {
				t.Fatalf("room of the refused call never given back: %v", err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		wantReached(t, "at the limit", verifyCall(ctx, c, max-16))
	})
}
