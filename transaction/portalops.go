package transaction

import (
	"context"
	"errors"

	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/store"
)

// Get returns the portal's transaction with each document's status
// (FIRe recoverBatchState). Another portal's transaction is not found.
func (s *Service) Get(ctx context.Context, portalID, id string) (*Transaction, error) {
	t, err := s.loadFor(ctx, portalID, id)
	if err != nil {
		return nil, err
	}
	docs, err := s.st.Documents(ctx, t.ID, false)
	if err != nil {
		return nil, fail(CodeUnavailable, "the transaction store failed; retry", err)
	}
	return toTransaction(t, docs), nil
}

// Results returns every document's outcome and signature, and the signer's
// certificate chain (FIRe recoverBatchResult).
func (s *Service) Results(ctx context.Context, portalID, id string) (*Results, error) {
	t, err := s.loadFor(ctx, portalID, id)
	if err != nil {
		return nil, err
	}
	docs, err := s.st.Documents(ctx, t.ID, true)
	if err != nil {
		return nil, fail(CodeUnavailable, "the transaction store failed; retry", err)
	}
	for _, d := range docs {
		if d.Status == string(DocSigned) && len(d.Result) == 0 {
			return nil, refuse(CodeResultsPurged, "the signed documents were deleted %s after the transaction ended; the state is still available",
				s.opt.Retention)
		}
	}
	r := &Results{Transaction: toTransaction(t, docs)}
	for i, d := range docs {
		dr := DocumentResult{DocumentState: r.Transaction.Documents[i], Timestamped: d.Timestamped, SignedAt: d.SignedAt}
		if d.Status == string(DocSigned) {
			dr.Signature, dr.TimestampToken, dr.TimestampTime = d.Result, d.TimestampToken, d.TimestampedAt
		}
		r.Documents = append(r.Documents, dr)
	}
	if r.Chain, err = s.chain(ctx, t); err != nil {
		return nil, err
	}
	return r, nil
}

// Document returns one document's outcome and signature (FIRe
// recoverBatchSign).
func (s *Service) Document(ctx context.Context, portalID, id string, index int) (*DocumentResult, error) {
	r, err := s.Results(ctx, portalID, id)
	if err != nil {
		return nil, err
	}
	if index < 0 || index >= len(r.Documents) {
		return nil, invalid("document", "no document %d in this transaction (it has %d)", index, len(r.Documents))
	}
	return &r.Documents[index], nil
}

// Cancel ends a transaction the citizen has not approved yet.
func (s *Service) Cancel(ctx context.Context, portalID, id string) (*Transaction, error) {
	for range maxRetries {
		t, err := s.loadFor(ctx, portalID, id)
		if err != nil {
			return nil, err
		}
		switch State(t.State) {
		case StateDraft, StateCreated, StateAuthenticated, StateOTPSent:
		default:
			return nil, stateError(t)
		}
		err = s.finish(ctx, t, StateCancelled, CodeCancelled, "the portal cancelled this transaction")
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, fail(CodeUnavailable, "the transaction store failed; retry", err)
		}
		return s.Get(ctx, portalID, id)
	}
	return nil, fail(CodeUnavailable, "the transaction is busy; retry", nil)
}

// List lists the portal's transactions ordered by ID, after the ID after.
func (s *Service) List(ctx context.Context, portalID, state, after string, limit int) ([]*Transaction, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	ts, err := s.st.Transactions(ctx, store.TransactionFilter{PortalID: portalID, State: state, After: after, Limit: limit})
	if err != nil {
		return nil, fail(CodeUnavailable, "the transaction store failed; retry", err)
	}
	out := make([]*Transaction, 0, len(ts))
	for _, t := range ts {
		out = append(out, toTransaction(t, nil))
	}
	return out, nil
}

// chain returns the signer certificate and its issuers, DER, once a
// certificate was chosen.
func (s *Service) chain(ctx context.Context, t *store.Transaction) ([][]byte, error) {
	if t.CertificateID == "" {
		return nil, nil
	}
	c, err := s.opt.Certificates.Certificate(ctx, t.CertificateID)
	if err != nil {
		return nil, fail(CodeUnavailable, "the certificate authority failed; retry", err)
	}
	out := [][]byte{c.DER}
	if is := s.opt.Certificates.Issuing(); is != nil && c.Issuer != "external" {
		out = append(out, is.Raw)
		if root := s.opt.Certificates.Root(); root != nil && !root.Equal(is) {
			out = append(out, root.Raw)
		}
	}
	return out, nil
}

func toTransaction(t *store.Transaction, docs []*store.Document) *Transaction {
	out := &Transaction{ID: t.ID, PortalID: t.PortalID, CitizenID: t.CitizenID, State: State(t.State), StopOnError: t.StopOnError,
		Summary: Summary(t.Summary), ErrorCode: Code(t.ErrorCode), ErrorMessage: t.ErrorMessage, CreatedAt: t.CreatedAt,
		UpdatedAt: t.UpdatedAt, ExpiresAt: t.ExpiresAt, EndedAt: t.EndedAt}
	for _, d := range docs {
		st := DocStatus(d.Status)
		if st == DocRecording {
			// Signed, its record not yet confirmed: nothing is handed out.
			st = DocPending
		}
		if st == DocPending && State(t.State).Final() {
			// The transaction ended before this document was reached.
			st = DocNotProcessed
		}
		out.Documents = append(out.Documents, DocumentState{Index: d.Index, Name: d.Name, MediaType: d.MediaType, Size: d.Size,
			Hash: d.Hash, Digest: d.Digest, Format: signer.Format(d.Format), Status: st, ErrorCode: Code(d.ErrorCode), Error: d.Error})
		if d.Status != string(DocPending) && d.Status != string(DocRecording) {
			out.Processed++
		}
	}
	return out
}
