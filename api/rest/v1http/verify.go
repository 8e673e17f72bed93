package v1http

import (
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/api/rest"
)

// RegisterVerify mounts POST /v1/verify on mux. The body is either a
// VerifyRequest in proto JSON (Content-Type application/json; bytes are
// base64) or the signed PDF itself (application/pdf). The answer is the
// VerifyResponse in JSON with snake_case names, 200 whatever the verdict;
// input that is not a signature is a 400 application/problem+json.
func RegisterVerify(mux rest.Router, s *api.VerifyService) {
	mux.HandleFunc("POST /v1/verify", func(w http.ResponseWriter, r *http.Request) { serveVerify(s, w, r) })
}

func serveVerify(s *api.VerifyService, w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, api.MaxVerifyBytes))
	if err != nil {
		writeProblem(w, invalidArg("body", fmt.Sprintf("cannot be read or is larger than %d MiB", api.MaxVerifyBytes>>20)))
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	req := &firmav1.VerifyRequest{}
	switch strings.ToLower(mt) {
	case "application/pdf":
		req.Signature = body
	case "application/json", "":
		if err := restIn.Unmarshal(body, req); err != nil {
			writeProblem(w, invalidArg("body", "is not a valid JSON VerifyRequest: "+err.Error()))
			return
		}
	default:
		writeProblem(w, invalidArg("Content-Type", "want application/json or application/pdf, got "+mt))
		return
	}
	resp, err := s.Verify(callContext(r), req)
	if err != nil {
		writeProblem(w, err)
		return
	}
	b, err := restOut.Marshal(resp)
	if err != nil {
		writeProblem(w, status.Error(codes.Internal, "internal error"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}
