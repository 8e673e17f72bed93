package pkihttp

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/firma-cloud/firma/api/rest"
	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/limit"
	"github.com/firma-cloud/firma/problem"
)

// maxOCSPRequest bounds a POSTed OCSP request; a real one is a few hundred
// bytes.
const maxOCSPRequest = 16 << 10

// Handler serves the publication endpoints: the CRLs, the OCSP responder
// and the CA certificates named in AIA extensions. log nil discards.
func Handler(a *ca.Authority, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	Register(mux, a, log)
	return mux
}

// Register adds the publication endpoints to mux:
//
//	GET  /crl/issuing.crl, /crl/root.crl   DER CRL (application/pkix-crl)
//	POST /ocsp                             RFC 6960 OCSP, request in the body
//	GET  /ocsp/{base64 request}            RFC 6960 appendix A.1 GET form
//	GET  /ca/root.crt, /ca/issuing.crt, /ca/ocsp.crt  DER certificates
func Register(mux rest.Router, a *ca.Authority, log *slog.Logger) { RegisterLimited(mux, a, log, nil) }

// RegisterLimited is Register with a per-client rate on the OCSP
// responder (each answer is a signature): a client over it gets HTTP 429
// with Retry-After and the OCSP tryLater response (RFC 6960 section
// 2.3), before its request is read. rate nil is no limit.
func RegisterLimited(mux rest.Router, a *ca.Authority, log *slog.Logger, rate *limit.Clients) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &publisher{a: a, log: log, rate: rate}
	mux.HandleFunc("GET /crl/{name}", p.serveCRL)
	mux.HandleFunc("POST /ocsp", p.serveOCSPPost)
	mux.HandleFunc("POST /ocsp/", p.serveOCSPPost)
	mux.HandleFunc("GET /ocsp/{req...}", p.serveOCSPGet)
	mux.HandleFunc("GET /ca/{name}", p.serveCACert)
}

// publisher serves one CA's publication endpoints.
type publisher struct {
	a    *ca.Authority
	log  *slog.Logger
	rate *limit.Clients
}

// tryLater is the OCSPResponse with status tryLater(3) and no body.
var tryLater = []byte{0x30, 0x03, 0x0a, 0x01, 0x03}

// limited answers tryLater when r's client is over its rate.
func (p *publisher) limited(w http.ResponseWriter, r *http.Request) bool {
	err := p.rate.Check(limit.ClientKey(r))
	if err == nil {
		return false
	}
	h := w.Header()
	h.Set("Retry-After", limit.RetryAfterSeconds(err))
	h.Set("Content-Type", "application/ocsp-response")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(tryLater)))
	w.WriteHeader(http.StatusTooManyRequests)
	w.Write(tryLater)
	return true
}

func (p *publisher) serveCRL(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(r.PathValue("name"), ".crl")
	if !ok || (name != ca.IssuingCA && name != ca.RootCA) {
		writeProblem(w, http.StatusNotFound, "unknown_crl", "CRLs are published at /crl/issuing.crl and /crl/root.crl")
		return
	}
	crl, err := p.a.CRL(r.Context(), name)
	if errors.Is(err, ca.ErrNotFound) {
		writeProblem(w, http.StatusNotFound, "crl_not_published", "the "+name+" CA has no CRL here")
		return
	}
	if err != nil {
		p.log.Error("serve crl", "issuer", name, "err", err)
		writeProblem(w, http.StatusInternalServerError, "internal", "the CRL cannot be read now")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/pkix-crl")
	h.Set("Last-Modified", crl.ThisUpdate.UTC().Format(http.TimeFormat))
	h.Set("Expires", crl.NextUpdate.UTC().Format(http.TimeFormat))
	h.Set("ETag", strconv.Quote(name+"-"+strconv.FormatInt(crl.Number, 10)))
	// Caches may keep it until the next scheduled refresh, not until
	// nextUpdate, so revocations show within one interval.
	h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d", max(0, int(min(p.a.CRLInterval(), time.Until(crl.NextUpdate)).Seconds()))))
	http.ServeContent(w, r, "", crl.ThisUpdate, bytes.NewReader(crl.DER))
}

func (p *publisher) serveOCSPPost(w http.ResponseWriter, r *http.Request) {
	if p.limited(w, r) {
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOCSPRequest))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			p.writeOCSP(w, r, malformed(), false)
			return
		}
		writeProblem(w, http.StatusBadRequest, "invalid_request", "the request body could not be read")
		return
	}
	p.writeOCSP(w, r, body, false)
}

func (p *publisher) serveOCSPGet(w http.ResponseWriter, r *http.Request) {
	if p.limited(w, r) {
		return
	}
	enc := r.PathValue("req")
	var der []byte
	var err error
	for _, e := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if der, err = e.DecodeString(enc); err == nil {
			break
		}
	}
	if err != nil || len(der) > maxOCSPRequest {
		der = malformed()
	}
	p.writeOCSP(w, r, der, true)
}

// malformed is input that ParseRequest rejects, so bad transport encoding
// and a bad request get the same malformedRequest answer.
func malformed() []byte { return []byte{0} }

func (p *publisher) writeOCSP(w http.ResponseWriter, r *http.Request, der []byte, cacheable bool) {
	res, err := p.a.RespondOCSP(r.Context(), der)
	if err != nil {
		p.log.Error("ocsp", "err", err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/ocsp-response")
	if cacheable && !res.NextUpdate.IsZero() {
		// RFC 5019 section 5: GET responses may be cached until nextUpdate.
		h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d, no-transform, must-revalidate",
			max(0, int(min(p.a.OCSPCacheTTL(), time.Until(res.NextUpdate)).Seconds()))))
		h.Set("Expires", res.NextUpdate.UTC().Format(http.TimeFormat))
	} else {
		h.Set("Cache-Control", "no-store")
	}
	h.Set("Content-Length", strconv.Itoa(len(res.DER)))
	w.WriteHeader(http.StatusOK)
	w.Write(res.DER)
}

func (p *publisher) serveCACert(w http.ResponseWriter, r *http.Request) {
	name := map[string]string{"root.crt": ca.RootCA, "issuing.crt": ca.IssuingCA, "ocsp.crt": ca.OCSPCA}[r.PathValue("name")]
	if name == "" {
		writeProblem(w, http.StatusNotFound, "unknown_certificate", "CA certificates are at /ca/root.crt, /ca/issuing.crt and /ca/ocsp.crt")
		return
	}
	cert, updated := p.a.CACertificate(name)
	if cert == nil {
		writeProblem(w, http.StatusNotFound, "ca_not_initialised", "run 'firmactl init'")
		return
	}
	w.Header().Set("Content-Type", "application/pkix-cert")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	http.ServeContent(w, r, "", updated, bytes.NewReader(cert.Raw))
}

// writeProblem writes the REST layer's problem document.
func writeProblem(w http.ResponseWriter, status int, code, detail string) {
	problem.Send(w, status, code, detail)
}
