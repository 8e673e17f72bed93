package transaction

import (
	"context"
	"errors"
	"fmt"

	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/store"
)

// CreateDraft opens an empty batch (FIRe createBatch): the portal adds
// documents with AddDocument (addDocumentToBatch), then SignBatch
// (signBatch) checks the whole and returns the approval URL. The citizen
// and redirect URLs are checked now, and again at SignBatch.
func (s *Service) CreateDraft(ctx context.Context, p *store.Portal, req CreateRequest) (*Created, error) {
	req.draft = true
	return s.Create(ctx, p, req)
}

// AddDocument adds a document to the portal's open batch and returns its
// index. Limits and duplicates are checked against the batch so far. p is
// the portal the caller authenticated, as CreateDraft takes it: a FIRe
// batch adds its documents one request each, and reading the portal again
// for every one was a third of the request's queries.
func (s *Service) AddDocument(ctx context.Context, p *store.Portal, id string, in DocumentInput) (int, error) {
	return s.AddDocumentWith(ctx, p, id, in, func(t *store.Transaction, d *store.Document) error {
		err := s.st.AddDocument(ctx, t, d)
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return fail(CodeUnavailable, "the transaction store failed; retry", err)
		}
		return err
	})
}

// AddDocumentWith is AddDocument whose store write is write, so that a
// caller can write what it keeps of the document in the same store
// transaction (FIRe's docid: one write per addDocumentToBatch instead of
// two). write must add d to the draft t as store.AddDocument does; its
// store.ErrConflict makes AddDocument read the batch again and retry,
// and any other error of it is returned as it is.
func (s *Service) AddDocumentWith(ctx context.Context, p *store.Portal, id string, in DocumentInput,
	write func(t *store.Transaction, d *store.Document) error) (int, error) {
	lim := portal.EffectiveLimits(p)
	for range maxRetries {
		t, err := s.loadFor(ctx, p.ID, id)
		if err != nil {
			return 0, err
		}
		if State(t.State) != StateDraft {
			return 0, refuse(CodeWrongState, "documents can be added only before the batch is signed (state %s)", t.State)
		}
		docs, err := s.st.Documents(ctx, t.ID, false)
		if err != nil {
			return 0, fail(CodeUnavailable, "the transaction store failed; retry", err)
		}
		n := len(docs)
		if n >= lim.MaxDocuments {
			return 0, &Error{Code: CodeTooManyDocuments, Field: "document",
				Message: fmt.Sprintf("the batch has %d documents; this portal may send at most %d per transaction", n, lim.MaxDocuments)}
		}
		d, err := s.document(p.ID, n, in, lim)
		if err != nil {
			return 0, err
		}
		for _, o := range docs {
			if o.Hash == d.Hash && string(o.Digest) == string(d.Digest) {
				return 0, &Error{Code: CodeDuplicateDocument, Field: "document",
					Message: fmt.Sprintf("the document is the same as document %d of the batch", o.Index)}
			}
		}
		d.TransactionID = t.ID
		t.UpdatedAt = s.now().UTC()
		err = write(t, d)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return 0, err
		}
		return n, nil
	}
	return 0, fail(CodeUnavailable, "the batch is busy; retry", nil)
}

// SignBatch closes the portal's open batch (FIRe signBatch): it checks the
// citizen again, fixes the approval digest over the documents and starts
// the approval time; the portal then sends the citizen to RedirectURL.
// Called again on a signed batch, it returns the same answer.
func (s *Service) SignBatch(ctx context.Context, portalID, id string) (*Created, error) {
	return s.signBatch(ctx, portalID, id, nil)
}

// SignBatchStopping is SignBatch that also sets whether signing stops at
// the first document that fails: FIRe's signBatch carries stoponerror,
// which its createBatch does not.
func (s *Service) SignBatchStopping(ctx context.Context, portalID, id string, stopOnError bool) (*Created, error) {
	return s.signBatch(ctx, portalID, id, &stopOnError)
}

func (s *Service) signBatch(ctx context.Context, portalID, id string, stopOnError *bool) (*Created, error) {
	for range maxRetries {
		t, err := s.loadFor(ctx, portalID, id)
		if err != nil {
			return nil, err
		}
		switch State(t.State) {
		case StateDraft:
		case StateCreated, StateAuthenticated, StateOTPSent:
			return s.created(t, true), nil
		default:
			return nil, stateError(t)
		}
		docs, err := s.st.Documents(ctx, t.ID, false)
		if err != nil {
			return nil, fail(CodeUnavailable, "the transaction store failed; retry", err)
		}
		if len(docs) == 0 {
			return nil, invalid("documents", "the batch has no documents: add at least one first")
		}
		if err := s.checkCitizen(ctx, t.CitizenID); err != nil {
			return nil, err
		}
		items := make([]policy.ApprovalItem, len(docs))
		for i, d := range docs {
			items[i] = policy.ApprovalItem{Hash: d.Hash, Digest: d.Digest}
		}
		now := s.now().UTC()
		t.State, t.ApprovalDigest, t.UpdatedAt, t.ExpiresAt = string(StateCreated), policy.ApprovalDigest(items), now, now.Add(s.opt.TTL)
		if stopOnError != nil {
			t.StopOnError = *stopOnError
		}
		err = s.st.UpdateTransaction(ctx, t)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, fail(CodeUnavailable, "the transaction store failed; retry", err)
		}
		s.log.InfoContext(ctx, "batch signed off by the portal", "transaction", t.ID, "documents", len(docs))
		return s.created(t, false), nil
	}
	return nil, fail(CodeUnavailable, "the batch is busy; retry", nil)
}
