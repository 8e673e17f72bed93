package api

import (
	"context"
	"crypto"
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
	methodSignDigests = "/firma.v1.SigningService/SignDigests"
)

var hashOfProto = map[firmav1.HashAlgorithm]crypto.Hash{
	firmav1.HashAlgorithm_HASH_ALGORITHM_UNSPECIFIED: crypto.SHA256,
	firmav1.HashAlgorithm_HASH_ALGORITHM_SHA256:      crypto.SHA256,
	firmav1.HashAlgorithm_HASH_ALGORITHM_SHA384:      crypto.SHA384,
	firmav1.HashAlgorithm_HASH_ALGORITHM_SHA512:      crypto.SHA512,
}

// AuditKeyCalls returns a unary interceptor that writes an audit record
// for every key generated, destroyed or used through KeyService and
// SigningService, with the digest of every document signed. The record of
// a signature is committed before the signatures leave: if it cannot be,
// the caller gets Unavailable and no signature. Failed calls are recorded
// too, best effort, and keep their own error. Chain it after
// authentication: the actor is the operator, as an administrator.
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
		case methodGenerateKey, methodDestroyKey, methodSignDigests:
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
		case *firmav1.SignDigestsRequest:
			rec.Event, rec.KeyID = audit.KeyUsed, r.GetKeyId()
			if h, ok := hashOfProto[r.GetHash()]; ok {
				for _, d := range r.GetDigests() {
					if len(d) == h.Size() {
						rec.Documents = append(rec.Documents, audit.Digest(h, d))
					}
				}
			}
			rec.Details = map[string]string{"scheme": r.GetScheme().String()}
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
