package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
)

// TestLargeBatchOverGRPC creates a batch of whole documents larger than
// gRPC's default 4 MiB message limit through a real firmad: accepted under
// the default listen.grpc_max_message_bytes, refused with
// RESOURCE_EXHAUSTED when the setting is lowered to 4 MiB.
func TestLargeBatchOverGRPC(t *testing.T) {
	s := initState(t)
	s.firmactl(t, 0, "demo", "seed", "--state", "var")
	d := s.start(t)
	out := s.firmactl(t, 0, "portals", "create", "--addr="+d.grpc, "--name", "Sede grande", "--redirect", "http://127.0.0.1:9/ok",
		"--redirect", "http://127.0.0.1:9/ko")
	m := portalKeyLineRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("portals create printed no API key:\n%s", out)
	}
	req := &firmav1.CreateBatchRequest{SubjectId: "10000001S", OkUrl: "http://127.0.0.1:9/ok", ErrorUrl: "http://127.0.0.1:9/ko"}
	for i := range 3 {
		// 3 MiB each, distinct: duplicates in a batch are refused.
		body := bytes.Repeat([]byte{'a' + byte(i)}, 3<<20)
		req.Documents = append(req.Documents, &firmav1.TransactionDocument{Name: "acta-" + string(rune('1'+i)) + ".txt", MediaType: "text/plain", Content: body})
	}
	create := func(addr string) error {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), api.PortalAPIKeyMetadata, m[1]), time.Minute)
		defer cancel()
		resp, err := firmav1.NewTransactionServiceClient(conn).CreateBatch(ctx, req)
		if err == nil && resp.GetTransactionId() == "" {
			t.Fatalf("CreateBatch: no transaction id in %v", resp)
		}
		return err
	}
	if err := create(d.grpc); err != nil {
		t.Fatalf("CreateBatch of 9 MiB under the default limit: %v", err)
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("firmad exit %d:\n%s", code, d.stderr)
	}

	d = s.start(t, "FIRMA_LISTEN_GRPC_MAX_MESSAGE_BYTES=4194304")
	if err := create(d.grpc); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("CreateBatch of 9 MiB with a 4 MiB limit: %v, want ResourceExhausted", err)
	}
	if code := d.stop(t); code != 0 {
		t.Fatalf("firmad exit %d:\n%s", code, d.stderr)
	}
}
