package main

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/limit"
	"github.com/firma-cloud/firma/verify"
)

// TestAnonymousGRPCClientKey: the gRPC tap limits by the same client as
// HTTP. From a peer that is not a trusted proxy, x-forwarded-for changes
// nothing (one bucket however it is spoofed); from a trusted proxy, each
// forwarded client has its own. Real client, real listener.
func TestAnonymousGRPCClientKey(t *testing.T) {
	for _, tt := range []struct {
		name    string
		trusted []string
		second  codes.Code // the second call, from another forwarded client
	}{
		{"untrusted peer", nil, codes.ResourceExhausted},
		{"trusted proxy", []string{"127.0.0.0/8"}, codes.Unavailable},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := limit.DefaultConfig()
			c.VerifyPerMinute, c.VerifyBurst = 1, 1
			l := newLimits(c)
			var err error
			if l.proxies, err = limit.ParseProxies(tt.trusted); err != nil {
				t.Fatal(err)
			}
			gs := grpc.NewServer(l.anonymousGRPC(64 << 20)...)
			firmav1.RegisterVerifyServiceServer(gs, api.NewLazyVerifyService(func(context.Context) (*verify.Verifier, error) {
				return nil, api.ErrVerifierUnavailable // reached: the limits let the call in
			}, nil))
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go gs.Serve(lis)
			defer gs.Stop()
			conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			client := firmav1.NewVerifyServiceClient(conn)
			call := func(forwardedFor string) codes.Code {
				ctx := metadata.AppendToOutgoingContext(t.Context(), "x-forwarded-for", forwardedFor)
				_, err := client.Verify(ctx, &firmav1.VerifyRequest{Signature: []byte("x")})
				return status.Code(err)
			}
			if got := call("203.0.113.1"); got != codes.Unavailable {
				t.Fatalf("first call: %v, want the verifier's Unavailable", got)
			}
			if got := call("203.0.113.2"); got != tt.second {
				t.Fatalf("second call, another forwarded client: %v, want %v", got, tt.second)
			}
		})
	}
}
