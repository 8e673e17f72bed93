package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/store"
)

func TestToStatus(t *testing.T) {
	tests := []struct {
		err    error
		code   codes.Code
		reason firmav1.ErrorReason
	}{
		{fmt.Errorf("key k: %w", keystore.ErrKeyNotFound), codes.NotFound, firmav1.ErrorReason_ERROR_REASON_KEY_NOT_FOUND},
		{fmt.Errorf("key k: %w", keystore.ErrKeyDestroyed), codes.FailedPrecondition, firmav1.ErrorReason_ERROR_REASON_KEY_DESTROYED},
		{fmt.Errorf("wait: %w", keystore.ErrBusy), codes.ResourceExhausted, firmav1.ErrorReason_ERROR_REASON_HSM_BUSY},
		{fmt.Errorf("digest 0: %w", signer.ErrDigestLength), codes.InvalidArgument, firmav1.ErrorReason_ERROR_REASON_DIGEST_LENGTH},
		{fmt.Errorf("%w: 0 digests", signer.ErrBatch), codes.InvalidArgument, firmav1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT},
		{fmt.Errorf("scheme: %w", keystore.ErrUnsupported), codes.InvalidArgument, firmav1.ErrorReason_ERROR_REASON_UNSUPPORTED},
		{fmt.Errorf("open: %w", keystore.ErrTokenUnavailable), codes.Unavailable, firmav1.ErrorReason_ERROR_REASON_HSM_UNAVAILABLE},
		{fmt.Errorf("login: %w", keystore.ErrLogin), codes.Unavailable, firmav1.ErrorReason_ERROR_REASON_HSM_UNAVAILABLE},
		{keystore.ErrClosed, codes.Unavailable, firmav1.ErrorReason_ERROR_REASON_SHUTTING_DOWN},
		{fmt.Errorf("sign: %w", context.Canceled), codes.Canceled, firmav1.ErrorReason_ERROR_REASON_UNSPECIFIED},
		{fmt.Errorf("key k, digest 3: %w", signer.ErrFault), codes.Internal, firmav1.ErrorReason_ERROR_REASON_INTERNAL},
		{errors.New("CKR_GENERAL_ERROR on /secret/path"), codes.Internal, firmav1.ErrorReason_ERROR_REASON_INTERNAL},
		// The CA's, audit's and verification's errors have reasons of their own.
		{fmt.Errorf("issue: %w", ca.ErrNotAdvanced), codes.FailedPrecondition, firmav1.ErrorReason_ERROR_REASON_ADVANCED_LEVEL_REQUIRED},
		{fmt.Errorf("issue: %w", ca.ErrInactive), codes.FailedPrecondition, firmav1.ErrorReason_ERROR_REASON_CITIZEN_INACTIVE},
		{fmt.Errorf("issue: %w", ca.ErrUnknownCitizen), codes.NotFound, firmav1.ErrorReason_ERROR_REASON_CITIZEN_NOT_FOUND},
		{fmt.Errorf("get: %w", ca.ErrNotFound), codes.NotFound, firmav1.ErrorReason_ERROR_REASON_CERTIFICATE_NOT_FOUND},
		{fmt.Errorf("revoke: %w", ca.ErrAlreadyRevoked), codes.FailedPrecondition, firmav1.ErrorReason_ERROR_REASON_CERTIFICATE_REVOKED},
		{fmt.Errorf("get: %w", ca.ErrPending), codes.FailedPrecondition, firmav1.ErrorReason_ERROR_REASON_CERTIFICATE_PENDING},
		{fmt.Errorf("issue: %w", ca.ErrExists), codes.AlreadyExists, firmav1.ErrorReason_ERROR_REASON_CERTIFICATE_EXISTS},
		{fmt.Errorf("csr: %w", ca.ErrWrongMode), codes.FailedPrecondition, firmav1.ErrorReason_ERROR_REASON_CA_WRONG_MODE},
		{fmt.Errorf("issue: %w", ca.ErrNotInitialised), codes.FailedPrecondition, firmav1.ErrorReason_ERROR_REASON_CA_NOT_INITIALISED},
		{fmt.Errorf("init: %w", ca.ErrAlreadyInitialised), codes.AlreadyExists, firmav1.ErrorReason_ERROR_REASON_CA_ALREADY_INITIALISED},
		{fmt.Errorf("issue: %w", ca.ErrAuditUnavailable), codes.Unavailable, firmav1.ErrorReason_ERROR_REASON_AUDIT_UNAVAILABLE},
		{fmt.Errorf("append: %w", audit.ErrUnavailable), codes.Unavailable, firmav1.ErrorReason_ERROR_REASON_AUDIT_UNAVAILABLE},
		{fmt.Errorf("checkpoint: %w", audit.ErrNoSigner), codes.FailedPrecondition, firmav1.ErrorReason_ERROR_REASON_AUDIT_SIGNER_MISSING},
		{fmt.Errorf("cades: %w", signer.ErrTimestamp), codes.Unavailable, firmav1.ErrorReason_ERROR_REASON_TSA_UNAVAILABLE},
		{ErrVerifierUnavailable, codes.Unavailable, firmav1.ErrorReason_ERROR_REASON_VERIFIER_UNAVAILABLE},
		// A store miss is not found of whatever was asked, not a key.
		{fmt.Errorf("checkpoint 9: %w", store.ErrNotFound), codes.NotFound, firmav1.ErrorReason_ERROR_REASON_UNSPECIFIED},
		{fmt.Errorf("proof: %w", audit.ErrRange), codes.OutOfRange, firmav1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT},
		{fmt.Errorf("pdf: %w", signer.ErrPDF), codes.InvalidArgument, firmav1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			err := toStatus(context.Background(), log, "M", tt.err, "key_id", "k")
			st := status.Convert(err)
			if st.Code() != tt.code {
				t.Fatalf("code %v, want %v", st.Code(), tt.code)
			}
			if Reason(err) != tt.reason.String() {
				t.Fatalf("reason %q, want %v", Reason(err), tt.reason)
			}
			var info *errdetails.ErrorInfo
			for _, d := range st.Details() {
				if i, ok := d.(*errdetails.ErrorInfo); ok {
					info = i
				}
			}
			if info == nil || info.Domain != ErrorDomain || info.Metadata["key_id"] != "k" {
				t.Fatalf("ErrorInfo %v", info)
			}
			if tt.code == codes.Internal {
				if st.Message() != "internal error" {
					t.Errorf("internal cause leaked to the client: %q", st.Message())
				}
				if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), tt.err.Error()) {
					t.Errorf("cause not logged at error: %s", logs.String())
				}
			}
			if tt.code == codes.ResourceExhausted {
				var retry bool
				for _, d := range st.Details() {
					_, ok := d.(*errdetails.RetryInfo)
					retry = retry || ok
				}
				if !retry {
					t.Error("ResourceExhausted without RetryInfo")
				}
			}
		})
	}
}

func TestPanicBecomesInternal(t *testing.T) {
	var logs bytes.Buffer
	r := recoverer{log: slog.New(slog.NewTextHandler(&logs, nil))}
	_, err := r.unary(context.Background(), nil, &grpcInfo, func(context.Context, any) (any, error) { panic("boom") })
	if status.Code(err) != codes.Internal || strings.Contains(status.Convert(err).Message(), "boom") {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(logs.String(), "boom") {
		t.Error("panic not logged")
	}
}

var grpcInfo = grpc.UnaryServerInfo{FullMethod: "/firma.v1.SigningService/SignDigests"}

// TestEveryKindHasACode makes a new errs.Kind fail here until the gRPC
// table says how it leaves.
func TestEveryKindHasACode(t *testing.T) {
	for k := errs.Internal; k <= errs.OutOfRange; k++ {
		if _, ok := grpcCodes[k]; !ok {
			t.Errorf("kind %v has no gRPC code", k)
		}
	}
}
