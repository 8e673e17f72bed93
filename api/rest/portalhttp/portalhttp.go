package portalhttp

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/firma-cloud/firma/api/rest"
	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/problem"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signer/asic"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/transaction"
)

// ProblemTypeBase prefixes the type URI of every problem document; the
// code follows it.
const ProblemTypeBase = problem.TypeBase

// APIKeyHeader carries a portal's API key (Authorization: Bearer works too).
const APIKeyHeader = "X-API-Key"

// DefaultMaxBody bounds a REST request body unless NewHandler is given
// another bound.
const DefaultMaxBody = transaction.DefaultMaxBody

// HTTPStatus is the HTTP status a code leaves the REST API with: its
// kind's, from the REST layer's one table.
func HTTPStatus(c transaction.Code) int { return rest.Status(c.Kind()) }

// Problem is the REST layer's problem document (problem.Details: type,
// title, status, detail, code, field) with the portal API's extension
// member transaction_id.
type Problem struct {
	Type          string           `json:"type"`
	Title         string           `json:"title"`
	Status        int              `json:"status"`
	Detail        string           `json:"detail"`
	Code          transaction.Code `json:"code"`
	Field         string           `json:"field,omitempty"`
	TransactionID string           `json:"transaction_id,omitempty"`
}

// WriteProblem writes err as application/problem+json. An error that is
// not a *transaction.Error is reported as internal without its text, which goes to
// the log.
func WriteProblem(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error, txID string) {
	var e *transaction.Error
	if !errors.As(err, &e) {
		e = &transaction.Error{Code: "internal", Message: "internal error", Err: err}
	}
	status := HTTPStatus(e.Code)
	lvl := slog.LevelWarn
	if status >= 500 {
		lvl = slog.LevelError
	}
	if log != nil {
		log.LogAttrs(r.Context(), lvl, "request refused", slog.String("path", r.URL.Path), slog.String("code", string(e.Code)),
			slog.Int("status", status), slog.Any("err", err))
	}
	if e.Code == transaction.CodeRateLimited {
		w.Header().Set("Retry-After", "60")
	}
	problem.Write(w, status, Problem{Type: ProblemTypeBase + string(e.Code), Title: http.StatusText(status), Status: status,
		Detail: e.Message, Code: e.Code, Field: e.Field, TransactionID: txID})
}

// Handler is the portal REST API. Its operations carry FIRe's names so
// an integrator finds their way: sign (one document), createBatch (with
// its documents, which in FIRe are added by addDocumentToBatch and then
// signBatch), recoverBatchState, recoverBatchResult and recoverBatchSign,
// addressed by application id (the authenticated portal), subject id
// (the citizen, optional query parameter subject_id) and transaction id.
type Handler struct {
	svc     *transaction.Service
	auth    portal.Authenticator
	log     *slog.Logger
	maxBody int64
	routes  []route
	mux     *http.ServeMux // the routes, for ServeHTTP
}

// NewHandler returns the REST API over svc; maxBody 0 means DefaultMaxBody.
func NewHandler(svc *transaction.Service, auth portal.Authenticator, log *slog.Logger, maxBody int64) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if maxBody <= 0 {
		maxBody = DefaultMaxBody
	}
	h := &Handler{svc: svc, auth: auth, log: log, maxBody: maxBody, mux: http.NewServeMux()}
	h.routes = []route{
		{"POST /api/v1/transactions", h.portal(h.create)},
		{"POST /api/v1/sign", h.portal(h.sign)},
		{"GET /api/v1/transactions", h.portal(h.list)},
		{"GET /api/v1/transactions/{id}", h.portal(h.state)},
		{"GET /api/v1/transactions/{id}/result", h.portal(h.result)},
		{"GET /api/v1/transactions/{id}/documents/{index}", h.portal(h.document)},
		{"POST /api/v1/transactions/{id}/cancel", h.portal(h.cancel)},
		{"POST /api/v1/signatures/upgrade", h.portal(h.upgrade)},
		// FIRe's three-step batch: createBatch, addDocumentToBatch, signBatch.
		// A batch id is a transaction id: its state and results are read as above.
		{"POST /api/v1/batches", h.portal(h.createBatch)},
		{"POST /api/v1/batches/{id}/documents", h.portal(h.addDocument)},
		{"POST /api/v1/batches/{id}/sign", h.portal(h.signBatch)},
	}
	h.Register(h.mux)
	return h
}

type route struct {
	pattern string
	handle  http.HandlerFunc
}

// Register adds the routes to mux, each under its own pattern.
func (h *Handler) Register(mux rest.Router) {
	for _, rt := range h.routes {
		mux.HandleFunc(rt.pattern, rt.handle)
	}
}

// ServeHTTP serves the portal API.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

type portalHandler func(w http.ResponseWriter, r *http.Request, p *store.Portal)

// portal authenticates the caller as a portal, by API key or verified
// client certificate, before the handler runs.
func (h *Handler) portal(next portalHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := h.authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="firma"`)
			status := http.StatusUnauthorized
			code := transaction.Code("unauthenticated")
			msg := "a portal API key (X-API-Key or Authorization: Bearer) or client certificate is required"
			if errors.Is(err, portal.ErrDisabled) {
				status, code, msg = http.StatusForbidden, transaction.CodeForbidden, "the portal is disabled"
			} else if !errors.Is(err, portal.ErrUnauthenticated) {
				h.log.ErrorContext(r.Context(), "portal authentication", "err", err)
				status, code, msg = http.StatusServiceUnavailable, transaction.CodeUnavailable, "authentication is unavailable; retry"
			}
			problem.Write(w, status, Problem{Type: ProblemTypeBase + string(code), Title: http.StatusText(status), Status: status, Detail: msg, Code: code})
			return
		}
		if app := r.URL.Query().Get("app_id"); app != "" && app != p.ID {
			WriteProblem(w, r, h.log, refuse(transaction.CodeForbidden, "app_id is not the authenticated portal"), "")
			return
		}
		next(w, r, p)
	}
}

func (h *Handler) authenticate(r *http.Request) (*store.Portal, error) {
	key := r.Header.Get(APIKeyHeader)
	if key == "" {
		if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "bearer") {
			key = strings.TrimSpace(tok)
		}
	}
	if key != "" {
		return h.auth.AuthenticateAPIKey(r.Context(), key)
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		sum := sha256.Sum256(r.TLS.VerifiedChains[0][0].Raw)
		return h.auth.AuthenticateCert(r.Context(), sum[:])
	}
	return nil, portal.ErrUnauthenticated
}

// JSON shapes of the REST API. Byte fields are standard base64.

// DocumentJSON is one document in a request.
type DocumentJSON struct {
	Name      string `json:"name"`
	MediaType string `json:"media_type,omitempty"`
	Content   []byte `json:"content,omitempty"`
	Digest    []byte `json:"digest,omitempty"`
	Hash      string `json:"hash,omitempty"`
	Format    string `json:"format,omitempty"`
	// Operation is sign (the default), cosign or countersign; Signature
	// the existing CAdES signature they add to (a PDF is co-signed by
	// sending the signed PDF as content).
	Operation string `json:"operation,omitempty"`
	Signature []byte `json:"signature,omitempty"`
	// Policy names the signature policy: omitted for the portal's
	// default, "none", "FirmaAGE" or a configured one.
	Policy string `json:"policy,omitempty"`
	// Attached puts the content inside a CAdES signature (mode implicit).
	Attached bool `json:"attached,omitempty"`
	// VisibleSignature draws a pades signature on the page: page, rect
	// [llx, lly, urx, ury] in points, text, reason, location, image
	// (base64 PNG or JPEG). Absent: invisible.
	VisibleSignature *transaction.Appearance `json:"visible_signature,omitempty"`
}

// input is the transaction service's form of d.
func (d DocumentJSON) input() transaction.DocumentInput {
	return transaction.DocumentInput{Name: d.Name, MediaType: d.MediaType, Content: d.Content, Digest: d.Digest,
		Hash: d.Hash, Format: signer.Format(d.Format), Operation: signer.Operation(d.Operation), Signature: d.Signature,
		Policy: d.Policy, Attached: d.Attached, Appearance: d.VisibleSignature}
}

// CreateJSON is the body of createBatch (documents) and sign (document).
type CreateJSON struct {
	AppID          string         `json:"app_id,omitempty"`
	SubjectID      string         `json:"subject_id"`
	Documents      []DocumentJSON `json:"documents,omitempty"`
	Document       *DocumentJSON  `json:"document,omitempty"`
	OKURL          string         `json:"ok_url"`
	ErrorURL       string         `json:"error_url"`
	StopOnError    bool           `json:"stop_on_error,omitempty"`
	Level          string         `json:"level,omitempty"`
	IdempotencyKey string         `json:"idempotency_key,omitempty"`
}

// CreatedJSON answers a creation.
type CreatedJSON struct {
	TransactionID string            `json:"transaction_id"`
	RedirectURL   string            `json:"redirect_url"`
	State         transaction.State `json:"state"`
	ExpiresAt     time.Time         `json:"expires_at"`
}

// DocumentStateJSON is one document's status.
type DocumentStateJSON struct {
	Index          int                   `json:"index"`
	Name           string                `json:"name"`
	MediaType      string                `json:"media_type,omitempty"`
	Size           int64                 `json:"size,omitempty"`
	Hash           string                `json:"hash"`
	Digest         []byte                `json:"digest"`
	Format         string                `json:"format"`
	Status         transaction.DocStatus `json:"status"`
	ErrorCode      transaction.Code      `json:"error_code,omitempty"`
	Error          string                `json:"error,omitempty"`
	Signature      []byte                `json:"signature,omitempty"`
	Timestamped    bool                  `json:"timestamped,omitempty"`
	TimestampToken []byte                `json:"timestamp_token,omitempty"`
	TimestampTime  time.Time             `json:"timestamp_time,omitzero"`
	SignedAt       time.Time             `json:"signed_at,omitzero"`
}

// StateJSON is recoverBatchState.
type StateJSON struct {
	TransactionID string              `json:"transaction_id"`
	AppID         string              `json:"app_id"`
	SubjectID     string              `json:"subject_id"`
	State         transaction.State   `json:"state"`
	StopOnError   bool                `json:"stop_on_error"`
	Summary       transaction.Summary `json:"summary,omitempty"`
	ErrorCode     transaction.Code    `json:"error_code,omitempty"`
	ErrorMessage  string              `json:"error_message,omitempty"`
	CreatedAt     time.Time           `json:"created_at"`
	UpdatedAt     time.Time           `json:"updated_at"`
	ExpiresAt     time.Time           `json:"expires_at"`
	EndedAt       time.Time           `json:"ended_at,omitzero"`
	// DocumentsProcessed of DocumentsTotal have their outcome stored: the
	// signing progress while the state is approved or signing.
	DocumentsProcessed int                 `json:"documents_processed"`
	DocumentsTotal     int                 `json:"documents_total"`
	Documents          []DocumentStateJSON `json:"documents,omitempty"`
}

// ResultJSON is recoverBatchResult.
type ResultJSON struct {
	StateJSON
	// CertificateChain is the signer's certificate, then its issuers.
	CertificateChain [][]byte `json:"certificate_chain,omitempty"`
}

func (h *Handler) create(w http.ResponseWriter, r *http.Request, p *store.Portal) {
	h.createWith(w, r, p, false)
}

func (h *Handler) sign(w http.ResponseWriter, r *http.Request, p *store.Portal) {
	h.createWith(w, r, p, true)
}

func (h *Handler) createWith(w http.ResponseWriter, r *http.Request, p *store.Portal, single bool) {
	var in CreateJSON
	if err := h.decode(w, r, &in); err != nil {
		WriteProblem(w, r, h.log, err, "")
		return
	}
	if in.AppID != "" && in.AppID != p.ID {
		WriteProblem(w, r, h.log, refuse(transaction.CodeForbidden, "app_id is not the authenticated portal"), "")
		return
	}
	docs := in.Documents
	switch {
	case single && (in.Document == nil || len(in.Documents) > 0):
		WriteProblem(w, r, h.log, invalid("document", "sign takes exactly one document; use /api/v1/transactions for a batch"), "")
		return
	case single:
		docs = []DocumentJSON{*in.Document}
	case in.Document != nil:
		WriteProblem(w, r, h.log, invalid("document", "a batch takes documents, not document"), "")
		return
	}
	req := transaction.CreateRequest{CitizenID: in.SubjectID, OKURL: in.OKURL, ErrorURL: in.ErrorURL, StopOnError: in.StopOnError,
		Level: signer.Level(in.Level), IdempotencyKey: in.IdempotencyKey}
	if k := r.Header.Get("Idempotency-Key"); k != "" {
		if req.IdempotencyKey != "" && req.IdempotencyKey != k {
			WriteProblem(w, r, h.log, invalid("idempotency_key", "differs from the Idempotency-Key header"), "")
			return
		}
		req.IdempotencyKey = k
	}
	for _, d := range docs {
		req.Documents = append(req.Documents, d.input())
	}
	c, err := h.svc.Create(r.Context(), p, req)
	if err != nil {
		WriteProblem(w, r, h.log, err, "")
		return
	}
	writeCreated(w, c)
}

func (h *Handler) createBatch(w http.ResponseWriter, r *http.Request, p *store.Portal) {
	var in CreateJSON
	if err := h.decode(w, r, &in); err != nil {
		WriteProblem(w, r, h.log, err, "")
		return
	}
	switch {
	case in.AppID != "" && in.AppID != p.ID:
		WriteProblem(w, r, h.log, refuse(transaction.CodeForbidden, "app_id is not the authenticated portal"), "")
		return
	case len(in.Documents) > 0 || in.Document != nil:
		WriteProblem(w, r, h.log, invalid("documents", "a batch starts empty: POST each document to /api/v1/batches/{id}/documents"), "")
		return
	}
	req := transaction.CreateRequest{CitizenID: in.SubjectID, OKURL: in.OKURL, ErrorURL: in.ErrorURL, StopOnError: in.StopOnError,
		Level: signer.Level(in.Level), IdempotencyKey: in.IdempotencyKey}
	if k := r.Header.Get("Idempotency-Key"); k != "" && req.IdempotencyKey == "" {
		req.IdempotencyKey = k
	}
	c, err := h.svc.CreateDraft(r.Context(), p, req)
	if err != nil {
		WriteProblem(w, r, h.log, err, "")
		return
	}
	writeCreated(w, c)
}

func (h *Handler) addDocument(w http.ResponseWriter, r *http.Request, p *store.Portal) {
	var d DocumentJSON
	if err := h.decode(w, r, &d); err != nil {
		WriteProblem(w, r, h.log, err, r.PathValue("id"))
		return
	}
	i, err := h.svc.AddDocument(r.Context(), p, r.PathValue("id"), d.input())
	if err != nil {
		WriteProblem(w, r, h.log, err, r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusCreated, struct {
		TransactionID string `json:"transaction_id"`
		Index         int    `json:"index"`
	}{r.PathValue("id"), i})
}

func (h *Handler) signBatch(w http.ResponseWriter, r *http.Request, p *store.Portal) {
	c, err := h.svc.SignBatch(r.Context(), p.ID, r.PathValue("id"))
	if err != nil {
		WriteProblem(w, r, h.log, err, r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, CreatedJSON{TransactionID: c.ID, RedirectURL: c.RedirectURL, State: c.State, ExpiresAt: c.ExpiresAt})
}

// lookup fetches the portal's transaction and applies the optional
// subject_id: a wrong citizen is reported as not found, like a wrong id.
func (h *Handler) lookup(r *http.Request, p *store.Portal) (*transaction.Transaction, error) {
	t, err := h.svc.Get(r.Context(), p.ID, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	if sub := r.URL.Query().Get("subject_id"); sub != "" {
		if n, err := registry.NormalizeID("subject_id", sub); err != nil || n != t.CitizenID {
			return nil, notFound()
		}
	}
	return t, nil
}

func (h *Handler) state(w http.ResponseWriter, r *http.Request, p *store.Portal) {
	t, err := h.lookup(r, p)
	if err != nil {
		WriteProblem(w, r, h.log, err, "")
		return
	}
	writeJSON(w, http.StatusOK, stateJSON(t, nil))
}

func (h *Handler) result(w http.ResponseWriter, r *http.Request, p *store.Portal) {
	if _, err := h.lookup(r, p); err != nil {
		WriteProblem(w, r, h.log, err, "")
		return
	}
	res, err := h.svc.Results(r.Context(), p.ID, r.PathValue("id"))
	if err != nil {
		WriteProblem(w, r, h.log, err, r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, ResultJSON{StateJSON: stateJSON(res.Transaction, res.Documents), CertificateChain: res.Chain})
}

// document answers recoverBatchSign: JSON by default, or the bare signed
// document (signature, CMS or PDF) when the client accepts
// application/octet-stream.
func (h *Handler) document(w http.ResponseWriter, r *http.Request, p *store.Portal) {
	if _, err := h.lookup(r, p); err != nil {
		WriteProblem(w, r, h.log, err, "")
		return
	}
	i, err := strconv.Atoi(r.PathValue("index"))
	if err != nil {
		WriteProblem(w, r, h.log, invalid("index", "not a document number"), r.PathValue("id"))
		return
	}
	d, err := h.svc.Document(r.Context(), p.ID, r.PathValue("id"), i)
	if err != nil {
		WriteProblem(w, r, h.log, err, r.PathValue("id"))
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "application/octet-stream") {
		if d.Status != transaction.DocSigned {
			WriteProblem(w, r, h.log, refuse(transaction.CodeWrongState, "document %d is %s, not signed", i, d.Status), r.PathValue("id"))
			return
		}
		ct := map[signer.Format]string{signer.FormatCAdES: "application/pkcs7-signature", signer.FormatPAdES: "application/pdf", signer.FormatXAdES: "application/xml", signer.FormatFacturae: "application/xml",
			signer.FormatASiCSCAdES: asic.MimeASiCS, signer.FormatASiCSXAdES: asic.MimeASiCS, signer.FormatASiCEXAdES: asic.MimeASiCE}[d.Format]
		if ct == "" {
			ct = "application/octet-stream"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Cache-Control", "no-store")
		w.Write(d.Signature)
		return
	}
	writeJSON(w, http.StatusOK, docJSON(d.DocumentState, d))
}

func (h *Handler) cancel(w http.ResponseWriter, r *http.Request, p *store.Portal) {
	if _, err := h.lookup(r, p); err != nil {
		WriteProblem(w, r, h.log, err, "")
		return
	}
	t, err := h.svc.Cancel(r.Context(), p.ID, r.PathValue("id"))
	if err != nil {
		WriteProblem(w, r, h.log, err, r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, stateJSON(t, nil))
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request, p *store.Portal) {
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	ts, err := h.svc.List(r.Context(), p.ID, q.Get("state"), q.Get("after"), limit)
	if err != nil {
		WriteProblem(w, r, h.log, err, "")
		return
	}
	out := struct {
		Transactions []StateJSON `json:"transactions"`
	}{Transactions: []StateJSON{}}
	for _, t := range ts {
		out.Transactions = append(out.Transactions, stateJSON(t, nil))
	}
	writeJSON(w, http.StatusOK, out)
}

// decode reads the JSON body into v with the REST layer's decoder and
// puts its refusals in the portal API's codes.
// UpgradeJSON asks to raise a CAdES signature, a signed PDF or an XAdES
// signature to a higher level.
type UpgradeJSON struct {
	Signature []byte `json:"signature"`         // base64 DER CMS, the signed PDF, or XML with one XAdES signature
	Digest    []byte `json:"digest,omitempty"`  // base64, the signed content's digest (CAdES); omitted for an attached signature
	Content   []byte `json:"content,omitempty"` // base64, the document of a detached XAdES signature
	Hash      string `json:"hash,omitempty"`    // sha256 (default), sha384, sha512
	Level     string `json:"level"`             // B-T, B-LT or B-LTA
	Format    string `json:"format,omitempty"`  // cades or pades; empty: a PDF is pades, XML is xades
}

// UpgradedJSON is the raised signature.
type UpgradedJSON struct {
	Signature []byte `json:"signature"`
	Level     string `json:"level"`
}

func (h *Handler) upgrade(w http.ResponseWriter, r *http.Request, _ *store.Portal) {
	var in UpgradeJSON
	if err := h.decode(w, r, &in); err != nil {
		WriteProblem(w, r, h.log, err, "")
		return
	}
	level, err := signer.ParseLevel(in.Level)
	if err != nil {
		WriteProblem(w, r, h.log, invalid("level", "%v", err), "")
		return
	}
	out, err := h.svc.Upgrade(r.Context(), transaction.UpgradeRequest{Signature: in.Signature, Digest: in.Digest, Hash: in.Hash, Level: level,
		Content: in.Content, Format: signer.Format(strings.ToLower(in.Format))})
	if err != nil {
		WriteProblem(w, r, h.log, err, "")
		return
	}
	writeJSON(w, http.StatusOK, UpgradedJSON{Signature: out, Level: string(level)})
}

func (h *Handler) decode(w http.ResponseWriter, r *http.Request, v any) error {
	err := rest.DecodeJSON(w, r, v, h.maxBody)
	e := errs.As(err)
	switch {
	case err == nil:
		return nil
	case e != nil && e.Kind == errs.TooLarge:
		return &transaction.Error{Code: transaction.CodeDocumentTooLarge, Message: e.Detail}
	case e != nil:
		return &transaction.Error{Code: transaction.CodeInvalidRequest, Field: e.Field, Message: e.Detail}
	}
	return err
}

func stateJSON(t *transaction.Transaction, docs []transaction.DocumentResult) StateJSON {
	out := StateJSON{TransactionID: t.ID, AppID: t.PortalID, SubjectID: t.CitizenID, State: t.State, StopOnError: t.StopOnError,
		Summary: t.Summary, ErrorCode: t.ErrorCode, ErrorMessage: t.ErrorMessage, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
		ExpiresAt: t.ExpiresAt, EndedAt: t.EndedAt, DocumentsProcessed: t.Processed, DocumentsTotal: len(t.Documents)}
	for i, d := range t.Documents {
		var r *transaction.DocumentResult
		if docs != nil {
			r = &docs[i]
		}
		out.Documents = append(out.Documents, docJSON(d, r))
	}
	return out
}

func docJSON(d transaction.DocumentState, r *transaction.DocumentResult) DocumentStateJSON {
	out := DocumentStateJSON{Index: d.Index, Name: d.Name, MediaType: d.MediaType, Size: d.Size, Hash: d.Hash, Digest: d.Digest,
		Format: string(d.Format), Status: d.Status, ErrorCode: d.ErrorCode, Error: d.Error}
	if r != nil {
		out.Signature, out.Timestamped, out.SignedAt = r.Signature, r.Timestamped, r.SignedAt
		out.TimestampToken, out.TimestampTime = r.TimestampToken, r.TimestampTime
	}
	return out
}

// writeCreated answers a creation: 201 with its Location, or 200 when
// the Idempotency-Key replayed an earlier one.
func writeCreated(w http.ResponseWriter, c *transaction.Created) {
	status := http.StatusCreated
	if c.Replayed {
		status = http.StatusOK
	}
	w.Header().Set("Location", "/api/v1/transactions/"+c.ID)
	writeJSON(w, status, CreatedJSON{TransactionID: c.ID, RedirectURL: c.RedirectURL, State: c.State, ExpiresAt: c.ExpiresAt})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// refuse, invalid and notFound are the refusals this layer finds itself,
// in the transaction package's vocabulary.

func refuse(code transaction.Code, format string, args ...any) *transaction.Error {
	return &transaction.Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func invalid(field, format string, args ...any) *transaction.Error {
	return &transaction.Error{Code: transaction.CodeInvalidRequest, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

func notFound() *transaction.Error {
	return refuse(transaction.CodeUnknownTransaction, "no such transaction")
}
