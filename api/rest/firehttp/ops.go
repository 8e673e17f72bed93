package firehttp

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/fire"
)

// signRequest reads op 1's and op 5's parameters in FIRe's order of
// checks, so the first error a client gets is the one FIRe would give.
func (h *Handler) signRequest(p params, withData bool) (fire.SignRequest, error) {
	var (
		req fire.SignRequest
		err error
	)
	for _, f := range []struct {
		name string
		v    *string
	}{{"subjectid", &req.SubjectID}, {"algorithm", &req.Algorithm}, {"cop", &req.Cop}, {"format", &req.Format}} {
		if *f.v, err = p.need(f.name); err != nil {
			return req, err
		}
	}
	if withData {
		if req.Data, err = data(p); err != nil {
			return req, err
		}
	}
	c, err := p.need("config")
	if err != nil {
		return req, err
	}
	if req.Config, err = props("config", c); err != nil {
		return req, err
	}
	if req.Properties, err = props("properties", p["properties"]); err != nil {
		return req, err
	}
	req.Upgrade = p["upgrade"]
	return req, nil
}

func data(p params) ([]byte, error) {
	d, err := p.need("dat")
	if err != nil {
		return nil, err
	}
	b, err := decodeB64(d)
	if err != nil || len(b) == 0 {
		return nil, &errs.Error{Kind: errs.Invalid, Code: "bad_data", Field: "dat", Detail: "dat is not base64 data"}
	}
	return b, nil
}

type started struct {
	TransactionID string `json:"transactionid"`
	RedirectURL   string `json:"redirecturl,omitempty"`
}

func (h *Handler) sign(ctx context.Context, w http.ResponseWriter, a *fire.App, p params) error {
	req, err := h.signRequest(p, true)
	if err != nil {
		return err
	}
	s, err := h.svc.Sign(ctx, a, req)
	if err != nil {
		return err
	}
	return writeJSON(w, started{s.TransactionID, s.RedirectURL})
}

// result is FIRe's transaction-result envelope; the clients recognise it
// by its first bytes, {"result":.
type result struct {
	State   int    `json:"state"`
	Ermsg   string `json:"ermsg,omitempty"`
	Ercod   int    `json:"ercod,omitempty"`
	Prov    string `json:"prov,omitempty"`
	Cert    string `json:"cert,omitempty"`
	Upgrade string `json:"upgrade,omitempty"`
	Grace   *grace `json:"grace,omitempty"`
}

// grace is the id to give op 70 and the earliest time to, in epoch
// milliseconds.
type grace struct {
	ID   string `json:"id"`
	Date int64  `json:"date"`
}

func graceOf(g *fire.Grace) *grace {
	if g == nil {
		return nil
	}
	return &grace{ID: g.ID, Date: g.Date.UnixMilli()}
}

// FIRe's result states.
const (
	stateOK      = 0
	stateError   = -1
	statePending = 1 // a grace period is set
)

func writeResult(w http.ResponseWriter, r result) error {
	return writeJSON(w, struct {
		Result result `json:"result"`
	}{r})
}

func txParams(p params) (subject, id string, err error) {
	if id, err = p.need("transactionid"); err != nil {
		return "", "", err
	}
	return p["subjectid"], id, nil
}

func (h *Handler) recoverSign(ctx context.Context, w http.ResponseWriter, a *fire.App, p params) error {
	subject, id, err := txParams(p)
	if err != nil {
		return err
	}
	r, err := h.svc.Recover(ctx, a, subject, id, p["upgrade"])
	if err != nil {
		return err
	}
	out := result{State: stateOK, Prov: r.Provider, Cert: base64.StdEncoding.EncodeToString(r.Cert), Upgrade: r.Upgrade, Grace: graceOf(r.Grace)}
	if r.Grace != nil {
		out.State = statePending
	}
	return writeResult(w, out)
}

func (h *Handler) recoverSignResult(ctx context.Context, w http.ResponseWriter, a *fire.App, p params) error {
	subject, id, err := txParams(p)
	if err != nil {
		return err
	}
	sig, err := h.svc.RecoverResult(ctx, a, subject, id)
	if err != nil {
		return err
	}
	return writeRaw(w, sig)
}

// recoverError is op 99: always HTTP 200, the error inside the envelope.
func (h *Handler) recoverError(ctx context.Context, w http.ResponseWriter, a *fire.App, p params) error {
	subject, id, err := txParams(p)
	if err != nil {
		return err
	}
	c, m := codeOf(h.svc.RecoverError(ctx, a, subject, id))
	return writeResult(w, result{State: stateError, Ermsg: m, Ercod: c.C, Prov: fire.Provider})
}

func (h *Handler) createBatch(ctx context.Context, w http.ResponseWriter, a *fire.App, p params) error {
	req, err := h.signRequest(p, false)
	if err != nil {
		return err
	}
	s, err := h.svc.CreateBatch(ctx, a, req)
	if err != nil {
		return err
	}
	return writeJSON(w, started{TransactionID: s.TransactionID})
}

func (h *Handler) addDocument(ctx context.Context, w http.ResponseWriter, a *fire.App, p params) error {
	subject, id, err := txParams(p)
	if err != nil {
		return err
	}
	req := fire.AddRequest{SubjectID: subject, TransactionID: id, Cop: p["cop"], Format: p["format"], Upgrade: p["upgrade"]}
	if req.DocID, err = p.need("docid"); err != nil {
		return err
	}
	if req.Data, err = data(p); err != nil {
		return err
	}
	if req.Config, err = props("config", p["config"]); err != nil {
		return err
	}
	if req.Properties, err = props("properties", p["properties"]); err != nil {
		return err
	}
	if err := h.svc.AddDocument(ctx, a, req); err != nil {
		return err
	}
	return writeText(w, "true")
}

func (h *Handler) signBatch(ctx context.Context, w http.ResponseWriter, a *fire.App, p params) error {
	subject, id, err := txParams(p)
	if err != nil {
		return err
	}
	// As FIRe reads it (Java's Boolean.parseBoolean): only "true", in any
	// case; the PHP client's "1" is false there, and so here.
	s, err := h.svc.SignBatch(ctx, a, subject, id, strings.EqualFold(p["stoponerror"], "true"))
	if err != nil {
		return err
	}
	return writeJSON(w, started{s.TransactionID, s.RedirectURL})
}

type batchDoc struct {
	ID     string `json:"id"`
	OK     bool   `json:"ok"`
	Dt     string `json:"dt"`
	Errorm string `json:"errorm"`
}

func (h *Handler) recoverBatch(ctx context.Context, w http.ResponseWriter, a *fire.App, p params) error {
	subject, id, err := txParams(p)
	if err != nil {
		return err
	}
	r, err := h.svc.RecoverBatch(ctx, a, subject, id)
	if err != nil {
		return err
	}
	out := struct {
		Prov  string     `json:"prov"`
		Cert  string     `json:"cert,omitempty"`
		Batch []batchDoc `json:"batch"`
	}{Prov: r.Provider, Cert: base64.StdEncoding.EncodeToString(r.Cert), Batch: []batchDoc{}}
	for _, d := range r.Documents {
		out.Batch = append(out.Batch, batchDoc{ID: d.ID, OK: d.OK, Dt: d.Detail, Errorm: d.Message})
	}
	return writeJSON(w, out)
}

// javaFloat formats like Java's Float.toString for values in [0, 1]:
// the shortest digits that read back, always with a decimal point.
func javaFloat(f float32) string {
	s := strconv.FormatFloat(float64(f), 'f', -1, 32)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

func (h *Handler) batchState(ctx context.Context, w http.ResponseWriter, a *fire.App, p params) error {
	subject, id, err := txParams(p)
	if err != nil {
		return err
	}
	f, err := h.svc.BatchProgress(ctx, a, subject, id)
	if err != nil {
		return err
	}
	return writeText(w, javaFloat(f))
}

func (h *Handler) recoverBatchSign(ctx context.Context, w http.ResponseWriter, a *fire.App, p params) error {
	subject, id, err := txParams(p)
	if err != nil {
		return err
	}
	doc, err := p.need("docid")
	if err != nil {
		return err
	}
	sig, err := h.svc.RecoverBatchSign(ctx, a, subject, id, doc)
	if err != nil {
		return err
	}
	return writeRaw(w, sig)
}

// updatedSign is op 70: the signature waiting under docid (the grace id)
// raised, or a new grace period.
func (h *Handler) updatedSign(ctx context.Context, w http.ResponseWriter, a *fire.App, p params) error {
	doc := p["docid"]
	if doc == "" {
		return missing("graceid")
	}
	u, err := h.svc.UpdatedSign(ctx, a, doc, p["upgrade"])
	if err != nil {
		return err
	}
	if u.Grace != nil {
		return writeResult(w, result{State: statePending, Grace: graceOf(u.Grace)})
	}
	return writeResult(w, result{State: stateOK, Upgrade: u.Upgrade})
}

// updatedSignResult is op 71: the raised signature, once.
func (h *Handler) updatedSignResult(ctx context.Context, w http.ResponseWriter, a *fire.App, p params) error {
	doc := p["docid"]
	if doc == "" {
		return missing("graceid")
	}
	sig, err := h.svc.UpdatedSignResult(ctx, a, doc)
	if err != nil {
		return err
	}
	return writeRaw(w, sig)
}
