package tsahttp

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"time"

	"github.com/firma-cloud/firma/limit"
	"github.com/firma-cloud/firma/problem"
	"github.com/firma-cloud/firma/tsa"
)

// Handler answers RFC 3161 requests with srv. Protocol-level refusals
// (malformed query, unsupported hash, policy or extension) are replies
// with PKIStatus rejection and HTTP 200, as clients expect; a failure on
// our side is a systemFailure reply with HTTP 500 so that clients fail
// over; HTTP misuse gets an application/problem+json error. log nil
// discards.
func Handler(srv *tsa.Server, log *slog.Logger) http.Handler { return HandlerLimited(srv, log, nil) }

// HandlerLimited is Handler with a per-client request rate: a client over
// it gets HTTP 429 with Retry-After and a problem document, before its
// query is read, so a flood costs neither signatures nor audit records.
// rate nil is no limit.
func HandlerLimited(srv *tsa.Server, log *slog.Logger, rate *limit.Clients) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serve(srv, log, rate, w, r) })
}

func serve(srv *tsa.Server, log *slog.Logger, rate *limit.Clients, w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	result := "" // set for HTTP errors; Respond counts the rest
	defer func() {
		if result != "" {
			srv.Observe(result, start)
		}
	}()
	if r.Method != http.MethodPost {
		result = "method_not_allowed"
		w.Header().Set("Allow", http.MethodPost)
		writeProblem(w, http.StatusMethodNotAllowed, "method_not_allowed", "time-stamp requests are POSTed")
		return
	}
	if err := rate.Check(limit.ClientKey(r)); err != nil {
		result = "rate_limited"
		w.Header().Set("Retry-After", limit.RetryAfterSeconds(err))
		writeProblem(w, http.StatusTooManyRequests, limit.CodeRateLimited, "too many time-stamp requests from this client; retry later")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != tsa.QueryContentType {
		result = "unsupported_media_type"
		writeProblem(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "the request body must be "+tsa.QueryContentType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, srv.MaxQueryBytes()))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			result = "too_large"
			writeProblem(w, http.StatusRequestEntityTooLarge, "request_too_large", fmt.Sprintf("a time-stamp query is at most %d bytes", mbe.Limit))
			return
		}
		result = "read_error"
		writeProblem(w, http.StatusBadRequest, "invalid_request", "the request body could not be read")
		return
	}
	// The requester's rate-limit key goes in the TSA's issuance log.
	reply, fail, err := srv.Respond(tsa.WithClient(r.Context(), limit.ClientKey(r)), body)
	status := http.StatusOK
	switch {
	case errors.Is(err, tsa.ErrTimeNotAvailable):
		// Logged when the clock's verdict changes, not per request.
		status = http.StatusServiceUnavailable
	case err != nil:
		status = http.StatusInternalServerError
		log.ErrorContext(r.Context(), "time-stamp request failed", "err", err)
	case fail != tsa.FailNone:
		log.WarnContext(r.Context(), "time-stamp request refused", "fail_info", fail.String(), "client", limit.ClientKey(r))
	}
	w.Header().Set("Content-Type", tsa.ReplyContentType)
	w.Header().Set("Content-Length", fmt.Sprint(len(reply)))
	w.WriteHeader(status)
	w.Write(reply)
}

// CertificatesHandler serves the TSA certificate and its chain as PEM, for
// relying parties that verify tokens with openssl ts -verify -untrusted.
func CertificatesHandler(srv *tsa.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeProblem(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
			return
		}
		w.Header().Set("Content-Type", "application/pem-certificate-chain")
		w.Write(srv.ChainPEM())
	})
}

// writeProblem writes the REST layer's problem document.
func writeProblem(w http.ResponseWriter, status int, code, detail string) {
	problem.Send(w, status, code, detail)
}
