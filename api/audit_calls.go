package api

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/errs"
)

// Methods AuditKeyCalls records.
const (
	methodGenerateKey = "/firma.v1.KeyService/GenerateKey"
	methodDestroyKey  = "/firma.v1.KeyService/DestroyKey"
)

// AuditKeyCalls returns a unary interceptor that puts every key generated
// or destroyed through KeyService under audit.ChangeKey: the intent is
// recorded before the handler runs, and the call refused, nothing done,
// when it cannot be; the result follows. Chain it after authentication:
// the actor is the operator, as an administrator. SigningService records
// its key use itself, through package signing.
func AuditKeyCalls(l *audit.Log, log *slog.Logger) grpc.UnaryServerInterceptor {
	return AuditKeyCallsFunc(func() *audit.Log { return l }, log)
}

// AuditKeyCallsFunc is AuditKeyCalls for a server built before its audit
// log is open (firmad: app.auditLog): the log is looked up per call, and
// while there is none, key calls are refused rather than left unrecorded.
func AuditKeyCallsFunc(logOf func() *audit.Log, log *slog.Logger) grpc.UnaryServerInterceptor {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		switch info.FullMethod {
		case methodGenerateKey, methodDestroyKey:
		default:
			return handler(ctx, req)
		}
		l := logOf()
		if l == nil {
			return nil, newStatus(codes.Unavailable, firmav1.ErrorReason_ERROR_REASON_AUDIT_UNAVAILABLE,
				"audit log not open, operation refused", nil)
		}
		c := audit.KeyChange{Actor: audit.Actor{Role: audit.RoleAdmin, ID: Operator(ctx)}}
		switch r := req.(type) {
		// A malformed call is refused as it is, before any record: its
		// fields would not make one.
		case *firmav1.GenerateKeyRequest:
			if err := checkOwner(r.GetOwner()); err != nil {
				return nil, err
			}
			c.Citizen = r.GetOwner()
			c.Details = map[string]string{"type": r.GetType().String(), "mode": r.GetMode().String()}
		case *firmav1.DestroyKeyRequest:
			if err := checkKeyID(r.GetKeyId()); err != nil {
				return nil, err
			}
			c.Destroy, c.KeyID = true, r.GetKeyId()
		default:
			return nil, toStatus(ctx, log, info.FullMethod, errs.Internalf(nil, "unexpected request %T", req))
		}
		var resp any
		_, err := audit.ChangeKey(ctx, l, c, func(ctx context.Context) (string, error) {
			var err error
			resp, err = handler(ctx, req)
			if g, ok := resp.(*firmav1.GenerateKeyResponse); ok && err == nil {
				return g.GetKey().GetId(), nil
			}
			return "", err
		})
		if err == nil {
			return resp, nil
		}
		if _, ok := status.FromError(err); ok {
			return nil, err // the handler's own error, its failure recorded
		}
		// Fail closed: a key whose change is not recorded is not handed out.
		log.Error("key call refused: audit", "method", info.FullMethod, "err", err)
		return nil, toStatus(ctx, log, info.FullMethod, err)
	}
}
