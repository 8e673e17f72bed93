package v1http

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/api/rest"
	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/problem"
)

// maxJSONBody bounds a REST request body; registrations are a few hundred
// bytes, certificate chains a few kilobytes.
const maxJSONBody = 1 << 20

var (
	restIn  = protojson.UnmarshalOptions{}
	restOut = protojson.MarshalOptions{UseProtoNames: true}
)

// invalidArg is api's InvalidArgument: the gRPC status a bad field gets,
// which writeProblem turns into the problem document.
func invalidArg(field, problem string) error { return api.InvalidArgument(field, problem) }

// callContext gives a REST request what the gRPC handlers read from a
// call: the Authorization header as metadata and the TLS state as peer.
func callContext(r *http.Request) context.Context {
	ctx := r.Context()
	if h := r.Header.Values("Authorization"); len(h) > 0 {
		ctx = metadata.NewIncomingContext(ctx, metadata.MD{"authorization": h})
	}
	p := &peer.Peer{Addr: remoteAddr(r)}
	if r.TLS != nil {
		p.AuthInfo = credentials.TLSInfo{State: *r.TLS}
	}
	return peer.NewContext(ctx, p)
}

type httpAddr string

func (a httpAddr) Network() string { return "tcp" }
func (a httpAddr) String() string  { return string(a) }

func remoteAddr(r *http.Request) net.Addr { return httpAddr(r.RemoteAddr) }

// jsonRoute decodes the body into a fresh M and calls fn.
func jsonRoute[M any, PM interface {
	*M
	proto.Message
}](fn func(context.Context, *http.Request, PM) (proto.Message, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		m := PM(new(M))
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJSONBody))
		if err != nil {
			writeProblem(w, invalidArg("body", "cannot be read or is larger than 1 MiB"))
			return
		}
		if len(strings.TrimSpace(string(body))) > 0 {
			if err := restIn.Unmarshal(body, m); err != nil {
				writeProblem(w, invalidArg("body", "is not a valid JSON request: "+err.Error()))
				return
			}
		}
		resp, err := fn(callContext(r), r, m)
		writeResult(w, r, resp, err)
	}
}

// queryRoute calls fn for a request without a body.
func queryRoute(fn func(context.Context, *http.Request) (proto.Message, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		resp, err := fn(callContext(r), r)
		writeResult(w, r, resp, err)
	}
}

func writeResult(w http.ResponseWriter, r *http.Request, resp proto.Message, err error) {
	if err != nil {
		writeProblem(w, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store") // responses may hold activation codes
	if reg, ok := resp.(*firmav1.RegistrationResponse); ok && wantsPDF(r) && len(reg.GetConfirmationPdf()) > 0 {
		w.Header().Set("Content-Type", "application/pdf")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="clave-confirmation-%s.pdf"`, reg.GetCitizen().GetId()))
		w.Write(reg.GetConfirmationPdf())
		return
	}
	writeMessage(w, resp)
}

// writeMessage answers with a gRPC response message as the REST face's
// JSON (restOut's field names).
func writeMessage(w http.ResponseWriter, resp proto.Message) {
	b, err := restOut.Marshal(resp)
	if err != nil {
		writeProblem(w, status.Error(codes.Internal, "internal error"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func wantsPDF(r *http.Request) bool {
	for _, a := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, _ := strings.Cut(strings.TrimSpace(a), ";"); mt == "application/pdf" {
			return true
		}
	}
	return false
}

// Problem is the REST layer's problem document (problem.Details: type,
// title, status, detail, code, field) with the /v1 extension members:
// the ErrorInfo reason as gRPC clients see it (ERROR_REASON_KEY_NOT_FOUND,
// kept because REST clients read it) and the registry refusals' rule and
// next_opening.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	// Code is the stable machine code, as on every REST surface: the
	// ErrorInfo reason without its enum prefix, lower case
	// (key_not_found), or the gRPC code's name in snake case.
	Code        string `json:"code"`
	Field       string `json:"field,omitempty"`
	Reason      string `json:"reason,omitempty"`
	Rule        string `json:"rule,omitempty"`
	NextOpening string `json:"next_opening,omitempty"`
}

// kinds puts a status code back in the error vocabulary, whose kind
// gives the HTTP status from the REST layer's one table (rest.Status).
var kinds = map[codes.Code]errs.Kind{
	codes.InvalidArgument:    errs.Invalid,
	codes.OutOfRange:         errs.OutOfRange,
	codes.NotFound:           errs.NotFound,
	codes.AlreadyExists:      errs.Conflict,
	codes.FailedPrecondition: errs.FailedPrecondition,
	codes.PermissionDenied:   errs.Denied,
	codes.Unauthenticated:    errs.Unauthenticated,
	codes.ResourceExhausted:  errs.TooMany,
	codes.Unavailable:        errs.Unavailable,
	codes.DeadlineExceeded:   errs.Timeout,
	codes.Canceled:           errs.Canceled,
}

// httpStatusOf is the HTTP status of a gRPC code.
func httpStatusOf(c codes.Code) int {
	if c == codes.Unimplemented {
		return http.StatusNotImplemented
	}
	k, ok := kinds[c]
	if !ok {
		k = errs.Internal
	}
	return rest.Status(k)
}

// reasonCode is the code of an ErrorInfo reason: ERROR_REASON_KEY_NOT_FOUND
// and REGISTRY_ERROR_REASON_CLOSED give key_not_found and closed; a reason
// that is a code already (the portal API's) is kept.
func reasonCode(reason string) string {
	if _, after, ok := strings.Cut(reason, "ERROR_REASON_"); ok {
		reason = after
	}
	return strings.ToLower(reason)
}

// snake is a gRPC code's name in snake case: InvalidArgument gives
// invalid_argument.
func snake(name string) string {
	var b strings.Builder
	for i, r := range name {
		if 'A' <= r && r <= 'Z' {
			if i > 0 {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// writeProblem turns a gRPC status error into application/problem+json.
func writeProblem(w http.ResponseWriter, err error) {
	st, _ := status.FromError(err)
	code := httpStatusOf(st.Code())
	p := Problem{Title: http.StatusText(code), Status: code, Detail: st.Message()}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			p.Reason = d.GetReason()
			p.Code = reasonCode(d.GetReason())
			p.Field, p.Rule, p.NextOpening = d.GetMetadata()["field"], d.GetMetadata()["rule"], d.GetMetadata()["next_opening"]
		case *errdetails.BadRequest:
			if v := d.GetFieldViolations(); len(v) > 0 && p.Field == "" {
				p.Field = v[0].GetField()
			}
		}
	}
	if p.Code == "" {
		p.Code = snake(st.Code().String())
	}
	p.Type = problem.TypeBase + p.Code
	if code == http.StatusInternalServerError {
		p.Detail = "internal error"
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="firma"`)
	}
	problem.Write(w, code, p)
}
