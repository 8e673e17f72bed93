package v1http

import (
	"fmt"
	"mime"
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/api/rest"
	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/limit"
	"github.com/firma-cloud/firma/problem"
)

// RegisterVerify mounts POST /v1/verify on mux. The body is either a
// VerifyRequest in proto JSON (Content-Type application/json; bytes are
// base64) or the signed PDF itself (application/pdf). The answer is the
// VerifyResponse in JSON with snake_case names, 200 whatever the verdict;
// input that is not a signature is a 400 application/problem+json.
func RegisterVerify(mux rest.Router, s *api.VerifyService) {
	RegisterVerifyLimited(mux, s, VerifyLimits{})
}

// VerifyLimits bound what anonymous verify requests may make the server
// hold; a nil field is no bound.
type VerifyLimits struct {
	// Bytes is shared by every request: each takes its declared body
	// length (api.MaxVerifyBytes when undeclared) before reading, so the
	// bodies held at once never exceed its size.
	Bytes *limit.Gate
	// PerClient bounds one client's requests in flight, so that one
	// client cannot take all of Bytes.
	PerClient *limit.Concurrent
	// Rate is each client's request rate.
	Rate *limit.Clients
}

// RegisterVerifyLimited is RegisterVerify within lim. Refusals are 429
// (rate, per-client bound) or 503 (no room within the wait), both with
// Retry-After, as problem documents.
func RegisterVerifyLimited(mux rest.Router, s *api.VerifyService, lim VerifyLimits) {
	mux.HandleFunc("POST /v1/verify", func(w http.ResponseWriter, r *http.Request) { serveVerify(s, lim, w, r) })
}

func serveVerify(s *api.VerifyService, lim VerifyLimits, w http.ResponseWriter, r *http.Request) {
	client := limit.ClientKey(r)
	if err := lim.Rate.Check(client); err != nil {
		writeLimited(w, err)
		return
	}
	leave, err := lim.PerClient.Enter(client)
	if err != nil {
		writeLimited(w, err)
		return
	}
	defer leave()
	// The media type is parsed, not prefix-matched, and refused before
	// the body is read or waits for room.
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	switch {
	case ct == "":
		mt = "application/json"
	case err != nil:
		writeProblem(w, invalidArg("Content-Type", "want application/json or application/pdf"))
		return
	case mt != "application/json" && mt != "application/pdf":
		writeProblem(w, invalidArg("Content-Type", "want application/json or application/pdf, got "+mt))
		return
	}
	// Checked before reading (and before waiting for room): a body
	// declared too large is refused at no cost.
	size := r.ContentLength
	if size > api.MaxVerifyBytes {
		writeProblem(w, invalidArg("body", fmt.Sprintf("cannot be read or is larger than %d MiB", api.MaxVerifyBytes>>20)))
		return
	}
	if size < 0 {
		size = api.MaxVerifyBytes
	}
	if lim.Bytes != nil {
		release, err := lim.Bytes.Acquire(r.Context(), size)
		if err != nil {
			writeLimited(w, err)
			return
		}
		defer release()
	}
	body, err := rest.ReadBody(w, r, size)
	if err != nil {
		writeProblem(w, invalidArg("body", fmt.Sprintf("cannot be read or is larger than %d MiB", api.MaxVerifyBytes>>20)))
		return
	}
	req := &firmav1.VerifyRequest{}
	if mt == "application/pdf" {
		req.Signature = body
	} else if err := restIn.Unmarshal(body, req); err != nil {
		writeProblem(w, invalidArg("body", "is not a valid JSON VerifyRequest: "+err.Error()))
		return
	}
	resp, err := s.Verify(callContext(r), req)
	if err != nil {
		writeProblem(w, err)
		return
	}
	writeMessage(w, resp)
}

// writeLimited writes a limit's refusal (an *errs.Error of kind TooMany
// or Unavailable) as the problem document, with Retry-After.
func writeLimited(w http.ResponseWriter, err error) {
	e := errs.As(err)
	if e == nil {
		writeProblem(w, status.Error(codes.Internal, "internal error"))
		return
	}
	if ra := limit.RetryAfterSeconds(err); ra != "" {
		w.Header().Set("Retry-After", ra)
	}
	st := rest.Status(e.Kind)
	problem.Write(w, st, Problem{Type: problem.TypeBase + e.Code, Title: http.StatusText(st), Status: st, Detail: e.Detail, Code: e.Code})
}
