package api

import (
	"context"
	"fmt"
	"net"
	"sync"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	gproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/limit"
)

// anonymousMethods are the methods anyone may call with no credential of
// any kind, and so the ones AnonymousLimits bounds: verification (relying
// parties hold nothing). The other public methods (registry, audit, mail)
// authenticate their callers themselves.
var anonymousMethods = map[string]bool{}

func init() {
	for _, m := range firmav1.VerifyService_ServiceDesc.Methods {
		anonymousMethods["/"+firmav1.VerifyService_ServiceDesc.ServiceName+"/"+m.MethodName] = true
	}
}

// AnonymousLimits bounds the anonymous gRPC methods as POST /v1/verify is
// bounded, sharing its limiters: a per-client rate, a per-client count in
// flight, and room in the verify bytes gate (MaxMessageBytes a call) taken
// without waiting. It does so in a tap handle, which runs when a call's
// headers arrive, before any of its message is read; a nil field is no
// bound.
type AnonymousLimits struct {
	Bytes     *limit.Gate
	PerClient *limit.Concurrent
	Rate      *limit.Clients
	// MaxMessageBytes is the largest request an anonymous method accepts
	// (see ServerOptions); it is also what each call takes of Bytes.
	MaxMessageBytes int
	// ClientKey is the key a caller is limited by; nil: its peer's IP.
	ClientKey func(context.Context) string
}

// PeerIP is the IP address of a gRPC caller's peer ("" when unknown).
func PeerIP(ctx context.Context) string {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return ""
	}
	a := p.Addr.String()
	if host, _, err := net.SplitHostPort(a); err == nil {
		return host
	}
	return a
}

// ServerOptions are the options that apply the limits: the tap handle and
// a codec that refuses an anonymous method's request over MaxMessageBytes
// before decoding it.
//
// gRPC-Go has one receive limit for the whole server
// (listen.grpc_max_message_bytes, sized for CreateBatch), checked against
// a message's declared length before reading it; it has no per-method
// limit. So a larger anonymous request is refused once read (the read
// bounded by the server's limit and by Bytes' count of calls in flight),
// never decoded into a second copy.
func (l *AnonymousLimits) ServerOptions() []grpc.ServerOption {
	c := l.codec()
	return []grpc.ServerOption{grpc.InTapHandle(l.tap), grpc.ForceServerCodecV2(c), grpc.ChainUnaryInterceptor(c.refuse)}
}

// tap runs under the connection's lock, so it never waits: each refusal is
// immediate, ResourceExhausted with RetryInfo. What a call took is given
// back when its stream's context ends, which gRPC does for every stream
// however it ends (even one refused while decoding, before interceptors).
func (l *AnonymousLimits) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	if !anonymousMethods[info.FullMethodName] {
		return ctx, nil
	}
	key := PeerIP(ctx)
	if l.ClientKey != nil {
		key = l.ClientKey(ctx)
	}
	if err := l.Rate.Check(key); err != nil {
		return nil, exhausted(err)
	}
	leave, err := l.PerClient.Enter(key)
	if err != nil {
		return nil, exhausted(err)
	}
	release := func() {}
	if l.Bytes != nil {
		if release, err = l.Bytes.TryAcquire(int64(l.MaxMessageBytes)); err != nil {
			leave()
			return nil, exhausted(err)
		}
	}
	context.AfterFunc(ctx, func() { release(); leave() })
	return ctx, nil
}

// exhausted is a limit's refusal as ResourceExhausted (busy included: the
// caller is to slow down either way) with its reason and RetryInfo.
func exhausted(err error) error {
	e := errs.As(err)
	if e == nil {
		e = &errs.Error{Kind: errs.TooMany, Code: limit.CodeRateLimited, Detail: "too many requests"}
	}
	wait := e.RetryAfter
	if wait <= 0 {
		wait = retryDelay
	}
	st := status.New(codes.ResourceExhausted, e.Detail)
	details := []protoadapt.MessageV1{
		&errdetails.ErrorInfo{Reason: reasonOf(e), Domain: ErrorDomain},
		&errdetails.RetryInfo{RetryDelay: durationpb.New(wait)},
	}
	if s, err := st.WithDetails(details...); err == nil {
		return s.Err()
	}
	return st.Err()
}

// anonymousInputs are the request message types of the anonymous methods.
func anonymousInputs() map[protoreflect.FullName]bool {
	in := map[protoreflect.FullName]bool{}
	for m := range anonymousMethods {
		// "/pkg.Service/Method" to "pkg.Service.Method".
		name := protoreflect.FullName(m[1:])
		for i := len(name) - 1; i >= 0; i-- {
			if name[i] == '/' {
				name = name[:i] + "." + name[i+1:]
				break
			}
		}
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(name)
		if err != nil {
			panic(fmt.Sprintf("anonymous method %s: %v", m, err))
		}
		in[d.(protoreflect.MethodDescriptor).Input().FullName()] = true
	}
	return in
}

// sizedCodec is the proto codec leaving a message of an anonymous
// method's request type over max undecoded, and marking it so that refuse
// answers ResourceExhausted: an error from a codec reaches the client as
// Internal. A type is recognised by name, so one shared with an
// authenticated method would be bounded there too; none is.
type sizedCodec struct {
	encoding.CodecV2
	limited  map[protoreflect.FullName]bool
	max      int
	oversize *sync.Map // the messages left undecoded, until refuse sees them
}

func (l *AnonymousLimits) codec() sizedCodec {
	return sizedCodec{CodecV2: encoding.GetCodecV2(gproto.Name), limited: anonymousInputs(), max: l.MaxMessageBytes, oversize: &sync.Map{}}
}

func (c sizedCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(proto.Message); ok && c.limited[m.ProtoReflect().Descriptor().FullName()] && data.Len() > c.max {
		c.oversize.Store(v, data.Len())
		return nil
	}
	return c.CodecV2.Unmarshal(data, v)
}

// refuse is the unary interceptor answering for a message the codec left
// undecoded. A decoded message always reaches the interceptors, so no mark
// outlives its call.
func (c sizedCodec) refuse(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if n, ok := c.oversize.LoadAndDelete(req); ok {
		return nil, exhausted(&errs.Error{Kind: errs.TooMany, Code: "message_too_large",
			Detail: fmt.Sprintf("request of %d bytes is larger than %d, the limit of anonymous calls", n, c.max)})
	}
	return h(ctx, req)
}
