package api

import (
	"context"
	"log/slog"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/audit"
)

// Methods AuditKeyCalls records.
const (
	methodGenerateKey = "/firma.v1.KeyService/GenerateKey"
	methodDestroyKey  = "/firma.v1.KeyService/DestroyKey"
)

// AuditKeyCalls returns a unary interceptor that writes an audit record
// for every key generated or destroyed through KeyService. Failed calls
// are recorded too, best effort, and keep their own error. Chain it after
// authentication: the actor is the operator, as an administrator.
// SigningService records its key use itself, through package signing.
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
		resp, err := handler(ctx, req)
		rec := &audit.Record{Outcome: audit.Success, Actor: audit.Actor{Role: audit.RoleAdmin, ID: Operator(ctx)}}
		switch r := req.(type) {
		case *firmav1.GenerateKeyRequest:
			rec.Event, rec.Citizen = audit.KeyGenerated, r.GetOwner()
			if g, ok := resp.(*firmav1.GenerateKeyResponse); ok && err == nil {
				rec.KeyID = g.GetKey().GetId()
			}
		case *firmav1.DestroyKeyRequest:
			rec.Event, rec.KeyID = audit.KeyDestroyed, r.GetKeyId()
		}
		if err != nil {
			rec.Outcome, rec.Reason = audit.Failure, status.Code(err).String()
			if status.Code(err) == codes.InvalidArgument || status.Code(err) == codes.NotFound {
				rec.Outcome = audit.Denied
			}
			if rec.KeyID == "" {
				rec.KeyID = "-" // a key event without a key: generation failed
			}
			if aerr := l.Append(ctx, rec); aerr != nil {
				log.Error("cannot audit a failed key call", "method", info.FullMethod, "err", aerr)
			}
			return nil, err
		}
		if aerr := l.Append(ctx, rec); aerr != nil {
			log.Error("audit append failed, refusing the key call", "method", info.FullMethod, "err", aerr)
			// Fail closed: the signature or key exists, but unrecorded it
			// must not be handed out.
			return nil, newStatus(codes.Unavailable, firmav1.ErrorReason_ERROR_REASON_AUDIT_UNAVAILABLE,
				"audit log unavailable, operation refused", nil)
		}
		return resp, nil
	}
}
