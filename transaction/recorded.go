package transaction

import (
	"context"
	"errors"
	"fmt"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/signing"
	"github.com/firma-cloud/firma/store"
)

// DetailSignedBefore is "true" on a key.used record written by a resume
// for signatures made and stored (DocRecording) before an interruption
// cut their record off: the key was not used again for them.
const DetailSignedBefore = "signed_before_interruption"

// keyUseReader is the audit log's query API (audit.Log has it), which a
// resume asks whether a key.used record already names a document.
type keyUseReader interface {
	Query(ctx context.Context, f audit.Filter) (*audit.Page, error)
}

var errNoKeyUseReader = errors.New("the audit log cannot be queried for key.used records")

// confirmRecorded settles the documents of t left recording by an
// interruption (signed and stored, their key.used perhaps not written):
// those a successful key.used of t already names are marked signed, with
// no new key use or record; it returns the others, whose record the
// resumed grant writes (recordHidden). None is ever signed again.
func (s *Service) confirmRecorded(ctx context.Context, t *store.Transaction, docs []*store.Document) ([]*store.Document, error) {
	var hidden []*store.Document
	for _, d := range docs {
		if d.Status == string(DocRecording) {
			hidden = append(hidden, d)
		}
	}
	if len(hidden) == 0 {
		return nil, nil
	}
	// Their signatures are written back as they are: read them.
	docs, err := s.st.Documents(ctx, t.ID, true)
	if err != nil {
		return nil, fmt.Errorf("confirm recorded signatures: %w", err)
	}
	hidden = hidden[:0]
	for _, d := range docs {
		if d.Status == string(DocRecording) {
			hidden = append(hidden, d)
		}
	}
	uses := map[audit.Document]int{}
	if t.KeyID != "" { // no key, no key.used
		q, ok := s.opt.Signing.Auditor().(keyUseReader)
		if !ok {
			return nil, errNoKeyUseReader
		}
		// Every use of the citizen's key, not only those after the
		// transaction was created: the log's clock is not the service's,
		// and a record missed here would be written twice. Only a resume
		// with documents left recording pays for it.
		f := audit.Filter{KeyID: t.KeyID, Events: []audit.Event{audit.KeyUsed}, Limit: audit.MaxPage}
		for {
			p, err := q.Query(ctx, f)
			if err != nil {
				return nil, fmt.Errorf("confirm recorded signatures: %w", err)
			}
			for _, r := range p.Records {
				if r.Outcome != audit.Success || r.Details["transaction"] != t.ID {
					continue
				}
				for _, d := range r.Documents {
					uses[audit.Document{Hash: d.Hash, Digest: d.Digest}]++
				}
			}
			if p.Next == 0 {
				break
			}
			f.Cursor = p.Next
		}
	}
	// A transaction may hold one digest twice: the records already spent
	// on its signed documents do not confirm a recording one.
	for _, d := range docs {
		if d.Status == string(DocSigned) {
			k := auditDocument(d)
			k.Name = ""
			uses[k]--
		}
	}
	var confirmed, unrecorded []*store.Document
	for _, d := range hidden {
		k := auditDocument(d)
		k.Name = ""
		if uses[k] > 0 {
			uses[k]--
			confirmed = append(confirmed, d)
			continue
		}
		unrecorded = append(unrecorded, d)
	}
	if len(confirmed) > 0 {
		next := make([]*store.Document, len(confirmed))
		for i, d := range confirmed {
			c := *d
			c.Status = string(DocSigned)
			next[i] = &c
		}
		if _, err := s.st.UpdateDocuments(ctx, next, string(DocRecording)); err != nil {
			return nil, fmt.Errorf("confirm recorded signatures: %w", err)
		}
		s.log.InfoContext(ctx, "signatures recorded before an interruption confirmed", "transaction", t.ID, "documents", len(confirmed))
	}
	return unrecorded, nil
}

// recordHidden writes, through the resumed grant, the key.used records
// of signatures stored before an interruption cut their record off
// (marked DetailSignedBefore: the key is not used again), then marks them
// signed; failed, their signature withheld, when the record cannot be
// written.
func (s *Service) recordHidden(ctx context.Context, t *store.Transaction, g *signing.Grant, docs []*store.Document) error {
	if len(docs) == 0 {
		return nil
	}
	next := make([]*store.Document, len(docs))
	for i, d := range docs {
		c := *d
		next[i] = &c
	}
	s.release(ctx, t, g, next, map[string]string{DetailSignedBefore: "true"})
	s.log.InfoContext(ctx, "signatures stored before an interruption recorded", "transaction", t.ID, "documents", len(docs))
	return s.reveal(ctx, next)
}
