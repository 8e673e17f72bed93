package firehttp

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/magiconair/properties"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/api/rest"
	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/fire"
	"github.com/firma-cloud/firma/limit"
)

// Options configure a Handler; the zero values are fire.DefaultConfig's.
type Options struct {
	Path            string // default fire.DefaultPath
	MaxParamBytes   int
	MaxRequestBytes int
	// CertHeader names the header a TLS-terminating proxy on loopback
	// puts the client certificate in; "" believes no header.
	CertHeader string
	// Bytes, if set, bounds the request bodies held at once: each takes
	// its length (or MaxRequestBytes when unknown) before it is read.
	Bytes      *limit.Gate
	Log        *slog.Logger
	Registerer prometheus.Registerer
}

// Handler serves the FIRe service path and the citizen's returns.
type Handler struct {
	svc *fire.Service
	opt Options
	log *slog.Logger
	m   *metrics
	ops map[string]opHandler
}

type metrics struct {
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
}

type opHandler func(ctx context.Context, w http.ResponseWriter, a *fire.App, p params) error

// ReturnPath is where the citizen comes back from firma's approval page,
// under the service path: ReturnPath(path) + "/ok" and "/error".
func ReturnPath(path string) string { return path + "/return" }

// New returns the handler over svc.
func New(svc *fire.Service, opt Options) (*Handler, error) {
	d := fire.DefaultConfig()
	if opt.Path == "" {
		opt.Path = d.Path
	}
	if opt.MaxParamBytes <= 0 {
		opt.MaxParamBytes = d.MaxParamBytes
	}
	if opt.MaxRequestBytes <= 0 {
		opt.MaxRequestBytes = d.MaxRequestBytes
	}
	h := &Handler{svc: svc, opt: opt, log: opt.Log, m: &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "firma_fire_requests_total",
			Help: "Requests to the FIRe-compatible endpoint, by FIRe operation."}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "firma_fire_errors_total",
			Help: "FIRe error answers, by FIRe error code."}, []string{"code"}),
	}}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if opt.Registerer != nil {
		for _, c := range []prometheus.Collector{h.m.requests, h.m.errors} {
			if err := opt.Registerer.Register(c); err != nil {
				return nil, err
			}
		}
	}
	h.ops = map[string]opHandler{
		"1": h.sign, "2": h.recoverSign, "11": h.recoverSignResult,
		"5": h.createBatch, "6": h.addDocument, "7": h.signBatch, "8": h.recoverBatch, "9": h.batchState, "10": h.recoverBatchSign,
		"70": h.updatedSign, "71": h.updatedSignResult, "99": h.recoverError,
	}
	return h, nil
}

// Register adds the service path (POST, and GET, which the reference
// server also reads) and the return paths.
func (h *Handler) Register(mux rest.Router) {
	mux.HandleFunc("POST "+h.opt.Path, h.serve)
	mux.HandleFunc("GET "+h.opt.Path, h.serve)
	mux.HandleFunc("GET "+ReturnPath(h.opt.Path)+"/ok", func(w http.ResponseWriter, r *http.Request) { h.back(w, r, true) })
	mux.HandleFunc("GET "+ReturnPath(h.opt.Path)+"/error", func(w http.ResponseWriter, r *http.Request) { h.back(w, r, false) })
}

// back sends the citizen on to the application's redirect URL exactly as
// it was given.
func (h *Handler) back(w http.ResponseWriter, r *http.Request, ok bool) {
	u, err := h.svc.ReturnURL(r.Context(), r.URL.Query().Get("transaction_id"), ok)
	if err != nil {
		http.Error(w, "This signature request is no longer known; return to the application.", http.StatusNotFound)
		return
	}
	w.Header().Set("Location", u) // verbatim: http.Redirect would clean it
	w.WriteHeader(http.StatusFound)
}

// params are the request's parameters: the first value of each name.
type params map[string]string

func missing(name string) error {
	return &errs.Error{Kind: errs.Invalid, Code: "missing_parameter", Field: name, Detail: "the parameter " + name + " is required"}
}

// need returns the named parameter, or FIRe's error for its absence.
func (p params) need(name string) (string, error) {
	if v := p[name]; v != "" {
		return v, nil
	}
	return "", missing(name)
}

// parse reads the clients' parameter form: k=v pairs split at the first
// =, values not percent-encoded, empty pairs (the .NET client's leading
// &) skipped and the first of a repeated name kept (its repeated op). A
// GET's query string is read the same way.
func parse(body []byte, query string) params {
	p := params{}
	for _, src := range []string{query, string(body)} {
		for pair := range strings.SplitSeq(src, "&") {
			pair = strings.TrimSpace(pair)
			if pair == "" {
				continue
			}
			k, v, _ := strings.Cut(pair, "=")
			if strings.Contains(v, "%") {
				// A client that did percent-encode: base64 has no %.
				if u, err := url.PathUnescape(v); err == nil {
					v = u
				}
			}
			if _, seen := p[k]; !seen {
				p[k] = v
			}
		}
	}
	return p
}

// decodeB64 reads either base64 alphabet, padded or not.
func decodeB64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case '-':
			return '+'
		case '_':
			return '/'
		case ' ', '\n', '\r', '\t':
			return -1
		}
		return r
	}, s)
	if strings.HasSuffix(s, "=") || len(s)%4 == 0 {
		return base64.StdEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}

// props decodes a base64 Java .properties blob; "" is no properties.
// The reference server reads the text as UTF-8; \uXXXX escapes (Java's
// Properties.store) are honoured.
func props(name, v string) (map[string]string, error) {
	if v == "" {
		return map[string]string{}, nil
	}
	raw, err := decodeB64(v)
	if err != nil {
		return nil, &errs.Error{Kind: errs.Invalid, Code: "bad_" + name, Field: name, Detail: name + " is not base64"}
	}
	l := &properties.Loader{Encoding: properties.UTF8, DisableExpansion: true}
	pp, err := l.LoadBytes(raw)
	if err != nil {
		return nil, &errs.Error{Kind: errs.Invalid, Code: "bad_" + name, Field: name, Detail: name + " is not a Java properties text", Err: err}
	}
	return pp.Map(), nil
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) {
	// No certificate, no body read: a caller that cannot authenticate
	// makes firmad hold nothing (FIRe checks appid first; error 6 comes
	// before 2 here).
	der, err := h.clientCert(r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if h.opt.Bytes != nil {
		n := r.ContentLength
		if n < 0 || n > int64(h.opt.MaxRequestBytes) {
			n = int64(h.opt.MaxRequestBytes)
		}
		release, err := h.opt.Bytes.Acquire(r.Context(), n)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		defer release()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(h.opt.MaxRequestBytes)))
	if err != nil {
		h.writeError(w, r, &errs.Error{Kind: errs.TooLarge, Code: "unreadable", Detail: "the request is unreadable or larger than " +
			strconv.Itoa(h.opt.MaxRequestBytes) + " bytes", Err: err})
		return
	}
	p := parse(body, r.URL.RawQuery)
	// params.maxSize as FIRe measures it: base64 length x 0.75.
	for k, v := range p {
		if len(v)/4*3 > h.opt.MaxParamBytes {
			h.writeError(w, r, &errs.Error{Kind: errs.TooLarge, Code: "unreadable", Detail: "the parameter " + k + " is larger than " +
				strconv.Itoa(h.opt.MaxParamBytes) + " bytes"})
			return
		}
	}
	appID, err := p.need("appid")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	a, err := h.svc.Authenticate(r.Context(), appID, der)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	op, err := p.need("op")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	handle, ok := h.ops[op]
	if !ok {
		h.writeError(w, r, &errs.Error{Kind: errs.Invalid, Code: "unknown_op", Detail: "operation " + strconv.Quote(op) + " is not supported"})
		return
	}
	h.m.requests.WithLabelValues(op).Inc()
	if err := handle(r.Context(), w, a, p); err != nil {
		h.writeError(w, r, err)
	}
}

// clientCert is the DER of the TLS client certificate, or of the one a
// proxy on loopback put in the configured header. FIRe also refuses a
// certificate outside its validity dates.
func (h *Handler) clientCert(r *http.Request) ([]byte, error) {
	var c *x509.Certificate
	switch {
	case r.TLS != nil && len(r.TLS.PeerCertificates) > 0:
		c = r.TLS.PeerCertificates[0]
	case h.opt.CertHeader != "" && r.Header.Get(h.opt.CertHeader) != "" && fromLoopback(r):
		v := r.Header.Get(h.opt.CertHeader)
		if strings.Contains(v, "%") {
			if u, err := url.PathUnescape(v); err == nil {
				v = u // nginx's $ssl_client_escaped_cert
			}
		}
		// PEM whose line breaks a proxy turned into spaces or tabs, or
		// bare base64 DER: the markers off, the rest is base64.
		v = strings.NewReplacer("-----BEGIN CERTIFICATE-----", "", "-----END CERTIFICATE-----", "").Replace(v)
		der, _ := decodeB64(v)
		var err error
		if c, err = x509.ParseCertificate(der); err != nil {
			return nil, &errs.Error{Kind: errs.Invalid, Code: "bad_client_certificate", Detail: "the client certificate header is not a certificate", Err: err}
		}
	default:
		return nil, &errs.Error{Kind: errs.Unauthenticated, Code: "no_client_certificate", Detail: "a TLS client certificate is required"}
	}
	if now := time.Now(); now.Before(c.NotBefore) || now.After(c.NotAfter) {
		return nil, fire.ErrUnknownApp
	}
	return c.Raw, nil
}

func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	ip := net.ParseIP(host)
	return err == nil && ip != nil && ip.IsLoopback()
}

// writeJSON writes a compact JSON answer with the media type the clients
// test for.
func writeJSON(w http.ResponseWriter, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_, err := w.Write(bytes.TrimRight(b.Bytes(), "\n"))
	return err
}

// writeRaw writes signature bytes as FIRe does: no content type.
func writeRaw(w http.ResponseWriter, b []byte) error {
	w.Header()["Content-Type"] = nil // keep net/http from sniffing one
	_, err := w.Write(b)
	return err
}

func writeText(w http.ResponseWriter, s string) error {
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	_, err := io.WriteString(w, s)
	return err
}
