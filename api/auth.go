package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"

	"github.com/firma-cloud/firma/config"
)

// publicMethods need no operator: health checks come from load balancers
// and orchestrators that hold no credentials.
var publicMethods = map[string]bool{
	"/grpc.health.v1.Health/Check": true,
	"/grpc.health.v1.Health/Watch": true,
	"/grpc.health.v1.Health/List":  true,
}

// operator is one configured caller, by the SHA-256 of its credentials.
type operator struct {
	name  string
	token []byte // SHA-256 of the bearer token; nil if none
	cert  []byte // SHA-256 of the client certificate DER; nil if none
}

// Auth authenticates gRPC callers as configured operators.
type Auth struct {
	// ops is swapped whole by Replace (firmad reloads auditors on
	// SIGHUP), so a call sees either the old or the new list.
	ops atomic.Pointer[[]operator]
}

// NewAuth builds an Auth from the configured operators. Hashes are hex
// SHA-256 digests (colons allowed), as config.Validate accepts them.
func NewAuth(ops []config.Operator) (*Auth, error) {
	var list []operator
	for i, o := range ops {
		op := operator{name: o.Name}
		var err error
		if o.TokenSHA256 != "" {
			if op.token, err = decodeSHA256(o.TokenSHA256); err != nil {
				return nil, fmt.Errorf("auth.operators[%d].token_sha256: %w", i, err)
			}
		}
		if o.CertSHA256 != "" {
			if op.cert, err = decodeSHA256(o.CertSHA256); err != nil {
				return nil, fmt.Errorf("auth.operators[%d].cert_sha256: %w", i, err)
			}
		}
		list = append(list, op)
	}
	a := &Auth{}
	a.ops.Store(&list)
	return a, nil
}

// Replace makes a authenticate as b does from now on; calls under way
// finish with the list they started with.
func (a *Auth) Replace(b *Auth) {
	a.ops.Store(b.ops.Load())
}

func (a *Auth) list() []operator {
	if p := a.ops.Load(); p != nil {
		return *p
	}
	return nil
}

func decodeSHA256(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.ToLower(strings.ReplaceAll(s, ":", "")))
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("must be 64 hex digits (a SHA-256)")
	}
	return b, nil
}

// TokenSHA256 returns the hex SHA-256 of a bearer token, the form in which
// tokens are configured.
func TokenSHA256(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// AuthInterceptors returns unary and stream interceptors that admit only
// the operators configured in cfg. Chain them before any other interceptor.
func AuthInterceptors(cfg config.Auth) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor, error) {
	a, err := NewAuth(cfg.Operators)
	if err != nil {
		return nil, nil, err
	}
	return a.Unary, a.Stream, nil
}

type operatorKey struct{}

// Operator returns the name of the operator who made the call, or "".
func Operator(ctx context.Context) string {
	s, _ := ctx.Value(operatorKey{}).(string)
	return s
}

// Unary is the unary server interceptor.
func (a *Auth) Unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if publicMethods[info.FullMethod] {
		return handler(ctx, req)
	}
	name, ok := a.Authenticate(ctx)
	if !ok {
		return nil, unauthenticated()
	}
	return handler(context.WithValue(ctx, operatorKey{}, name), req)
}

// Stream is the stream server interceptor.
func (a *Auth) Stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if publicMethods[info.FullMethod] {
		return handler(srv, ss)
	}
	name, ok := a.Authenticate(ss.Context())
	if !ok {
		return unauthenticated()
	}
	return handler(srv, &authedStream{ServerStream: ss, ctx: context.WithValue(ss.Context(), operatorKey{}, name)})
}

type authedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *authedStream) Context() context.Context { return s.ctx }

// Authenticate returns the operator that the bearer token or the verified
// client certificate of the call belongs to. Every configured digest is
// compared, in constant time, so timing tells nothing about which matched.
func (a *Auth) Authenticate(ctx context.Context) (string, bool) {
	if tok, ok := bearer(ctx); ok {
		sum := sha256.Sum256([]byte(tok))
		if name, ok := a.match(sum[:], func(o *operator) []byte { return o.token }); ok {
			return name, true
		}
	}
	if sum, ok := clientCertSHA256(ctx); ok {
		if name, ok := a.match(sum, func(o *operator) []byte { return o.cert }); ok {
			return name, true
		}
	}
	return "", false
}

func (a *Auth) match(sum []byte, field func(*operator) []byte) (string, bool) {
	ops := a.list()
	found := -1
	for i := range ops {
		want := field(&ops[i])
		if want == nil {
			continue
		}
		if subtle.ConstantTimeCompare(sum, want) == 1 && found < 0 {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	return ops[found].name, true
}

func bearer(ctx context.Context) (string, bool) {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return "", false
	}
	for _, v := range md.Get("authorization") {
		scheme, tok, ok := strings.Cut(v, " ")
		if ok && strings.EqualFold(scheme, "bearer") {
			if tok = strings.TrimSpace(tok); tok != "" {
				return tok, true
			}
		}
	}
	return "", false
}

// clientCertSHA256 returns the SHA-256 of the leaf client certificate if
// the TLS handshake verified it against the configured client CA.
func clientCertSHA256(ctx context.Context) ([]byte, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return nil, false
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return nil, false
	}
	sum := sha256.Sum256(ti.State.VerifiedChains[0][0].Raw)
	return sum[:], true
}

// BearerCredentials sends a bearer token with every call, for clients
// (firmactl, tests, benchmarks). insecure allows it over plaintext, which
// only loopback servers accept.
type BearerCredentials struct {
	Token    string
	Insecure bool
}

var _ credentials.PerRPCCredentials = BearerCredentials{}

// GetRequestMetadata adds the authorization header.
func (b BearerCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.Token}, nil
}

// RequireTransportSecurity is false only for loopback plaintext.
func (b BearerCredentials) RequireTransportSecurity() bool { return !b.Insecure }
