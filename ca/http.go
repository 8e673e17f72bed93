package ca

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/firma-cloud/firma/problem"
)

// maxOCSPRequest bounds a POSTed OCSP request; a real one is a few hundred
// bytes.
const maxOCSPRequest = 16 << 10

// Handler serves the publication endpoints: the CRLs, the OCSP responder
// and the CA certificates named in AIA extensions.
func (a *Authority) Handler() http.Handler {
	mux := http.NewServeMux()
	a.RegisterHTTP(mux)
	return mux
}

// RegisterHTTP adds the publication endpoints to mux:
//
//	GET  /crl/issuing.crl, /crl/root.crl   DER CRL (application/pkix-crl)
//	POST /ocsp                             RFC 6960 OCSP, request in the body
//	GET  /ocsp/{base64 request}            RFC 6960 appendix A.1 GET form
//	GET  /ca/root.crt, /ca/issuing.crt, /ca/ocsp.crt  DER certificates
func (a *Authority) RegisterHTTP(mux *http.ServeMux) {
	mux.HandleFunc("GET /crl/{name}", a.serveCRL)
	mux.HandleFunc("POST /ocsp", a.serveOCSPPost)
	mux.HandleFunc("POST /ocsp/", a.serveOCSPPost)
	mux.HandleFunc("GET /ocsp/{req...}", a.serveOCSPGet)
	mux.HandleFunc("GET /ca/{name}", a.serveCACert)
}

func (a *Authority) serveCRL(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(r.PathValue("name"), ".crl")
	if !ok || (name != nameIssuing && name != nameRoot) {
		writeProblem(w, http.StatusNotFound, "unknown CRL", "CRLs are published at /crl/issuing.crl and /crl/root.crl")
		return
	}
	crl, err := a.CRL(r.Context(), name)
	if errors.Is(err, ErrNotFound) {
		writeProblem(w, http.StatusNotFound, "CRL not published", "the "+name+" CA has no CRL here")
		return
	}
	if err != nil {
		a.log.Error("serve crl", "issuer", name, "err", err)
		writeProblem(w, http.StatusInternalServerError, "cannot read CRL", "")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/pkix-crl")
	h.Set("Last-Modified", crl.ThisUpdate.UTC().Format(http.TimeFormat))
	h.Set("Expires", crl.NextUpdate.UTC().Format(http.TimeFormat))
	h.Set("ETag", strconv.Quote(name+"-"+strconv.FormatInt(crl.Number, 10)))
	// Caches may keep it until the next scheduled refresh, not until
	// nextUpdate, so revocations show within one interval.
	h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d", max(0, int(min(a.cfg.CRLInterval, time.Until(crl.NextUpdate)).Seconds()))))
	http.ServeContent(w, r, "", crl.ThisUpdate, bytes.NewReader(crl.DER))
}

func (a *Authority) serveOCSPPost(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxOCSPRequest))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.writeOCSP(w, r, malformed(), false)
			return
		}
		writeProblem(w, http.StatusBadRequest, "cannot read request", "")
		return
	}
	a.writeOCSP(w, r, body, false)
}

func (a *Authority) serveOCSPGet(w http.ResponseWriter, r *http.Request) {
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
	a.writeOCSP(w, r, der, true)
}

// malformed is input that ParseRequest rejects, so bad transport encoding
// and a bad request get the same malformedRequest answer.
func malformed() []byte { return []byte{0} }

func (a *Authority) writeOCSP(w http.ResponseWriter, r *http.Request, der []byte, cacheable bool) {
	res, err := a.RespondOCSP(r.Context(), der)
	if err != nil {
		a.log.Error("ocsp", "err", err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/ocsp-response")
	if cacheable && !res.NextUpdate.IsZero() {
		// RFC 5019 section 5: GET responses may be cached until nextUpdate.
		h.Set("Cache-Control", fmt.Sprintf("public, max-age=%d, no-transform, must-revalidate",
			max(0, int(min(a.cfg.OCSPCacheTTL, time.Until(res.NextUpdate)).Seconds()))))
		h.Set("Expires", res.NextUpdate.UTC().Format(http.TimeFormat))
	} else {
		h.Set("Cache-Control", "no-store")
	}
	h.Set("Content-Length", strconv.Itoa(len(res.DER)))
	w.WriteHeader(http.StatusOK)
	w.Write(res.DER)
}

func (a *Authority) serveCACert(w http.ResponseWriter, r *http.Request) {
	s := a.cur.Load()
	var au *authority
	switch r.PathValue("name") {
	case "root.crt":
		au = s.root
	case "issuing.crt":
		au = s.issuing
	case "ocsp.crt":
		au = s.ocsp
	default:
		writeProblem(w, http.StatusNotFound, "unknown certificate", "CA certificates are at /ca/root.crt, /ca/issuing.crt and /ca/ocsp.crt")
		return
	}
	if au == nil {
		writeProblem(w, http.StatusNotFound, "certificate not set up", "run 'firmactl init'")
		return
	}
	w.Header().Set("Content-Type", "application/pkix-cert")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	http.ServeContent(w, r, "", au.rec.UpdatedAt, bytes.NewReader(au.cert.Raw))
}

// writeProblem writes an RFC 9457 problem document.
func writeProblem(w http.ResponseWriter, status int, title, detail string) {
	problem.Basic(w, status, title, detail)
}
