package api_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"io"
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/audit"
)

// TestSignDigestStream: each message on the stream is answered, in order,
// with signatures that verify, as its own key.activated and key.used pair;
// later messages inherit the first's key, scheme and hash; a message that
// names another key, or a bad digest, ends the stream with the error
// SignDigests gives.
func TestSignDigestStream(t *testing.T) {
	s := newServer(t)
	k := s.generate(t, "system:ops", firmav1.KeyType_KEY_TYPE_EC_P256, firmav1.KeyMode_KEY_MODE_TOKEN)
	other := s.generate(t, "system:ops", firmav1.KeyType_KEY_TYPE_EC_P256, firmav1.KeyMode_KEY_MODE_TOKEN)
	digest := func(i int) []byte { d := sha256.Sum256([]byte{byte(i)}); return d[:] }

	t.Run("one response per message, in order", func(t *testing.T) {
		ctx := context.Background()
		before := keyRecords(t, s, k.GetId())
		st, err := s.sign.SignDigestStream(ctx)
		if err != nil {
			t.Fatal(err)
		}
		const n = 5
		for i := range n {
			req := &firmav1.SignDigestsRequest{Digests: [][]byte{digest(i)}}
			if i == 0 {
				req.KeyId, req.Scheme = k.GetId(), firmav1.SignatureScheme_SIGNATURE_SCHEME_ECDSA
			}
			if i == 3 {
				req.Digests = append(req.Digests, digest(100))
			}
			if err := st.Send(req); err != nil {
				t.Fatal(err)
			}
			resp, err := st.Recv()
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			if len(resp.GetSignatures()) != len(req.Digests) {
				t.Fatalf("message %d: %d signatures for %d digests", i, len(resp.GetSignatures()), len(req.Digests))
			}
			goVerify(t, k.GetPublicKeyDer(), firmav1.SignatureScheme_SIGNATURE_SCHEME_ECDSA, crypto.SHA256, digest(i), resp.GetSignatures()[0])
		}
		if err := st.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Recv(); !errors.Is(err, io.EOF) {
			t.Fatalf("after CloseSend: %v, want EOF", err)
		}
		if got := keyRecords(t, s, k.GetId()) - before; got != 2*n {
			t.Fatalf("%d audit records for %d messages, want %d", got, n, 2*n)
		}
	})

	bad := []struct {
		name   string
		second *firmav1.SignDigestsRequest
		code   codes.Code
	}{
		{"another key", &firmav1.SignDigestsRequest{KeyId: other.GetId(), Digests: [][]byte{digest(1)}}, codes.InvalidArgument},
		{"another hash", &firmav1.SignDigestsRequest{Hash: firmav1.HashAlgorithm_HASH_ALGORITHM_SHA384, Digests: [][]byte{digest(1)}}, codes.InvalidArgument},
		{"short digest", &firmav1.SignDigestsRequest{Digests: [][]byte{digest(1)[:20]}}, codes.InvalidArgument},
		{"no digest", &firmav1.SignDigestsRequest{}, codes.InvalidArgument},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			st, err := s.sign.SignDigestStream(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Send(&firmav1.SignDigestsRequest{KeyId: k.GetId(), Digests: [][]byte{digest(0)}}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Recv(); err != nil {
				t.Fatalf("first message: %v", err)
			}
			st.Send(c.second)
			resp, err := st.Recv()
			if resp != nil {
				t.Fatalf("a response to a bad message: %v", resp)
			}
			wantStatus(t, err, c.code, firmav1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT)
		})
	}
}

func keyRecords(t *testing.T, s *server, keyID string) int {
	t.Helper()
	page, err := s.audit.Query(context.Background(), audit.Filter{KeyID: keyID, Events: []audit.Event{audit.KeyActivated, audit.KeyUsed}})
	if err != nil {
		t.Fatal(err)
	}
	return len(page.Records)
}
