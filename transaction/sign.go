package transaction

import (
	"cmp"
	"context"
	"crypto"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/internal/cmsparse"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signing"
	"github.com/firma-cloud/firma/store"
)

// PDFReason is the /Reason of PAdES signatures made here.
const PDFReason = "Firmado con Cl@ve Firma"

// sign takes an approved transaction through signing to done (or failed),
// in steps: the signing service authorises it (certificate, the signing
// lease as the citizen's consent, the key.activated record), the
// documents are signed, and the outcome summarised. Each document's
// outcome is stored with a conditional update as soon as it is known, and
// the lease renewed with it, so a signing interrupted by a restart, a
// stop or a stall resumes with the documents still pending (see Resume
// and scan). Only a signing worker calls it (see Start): never on a
// request's context. takeover takes a lease that has not run out (see
// Resume).
func (s *Service) sign(ctx context.Context, t *store.Transaction, takeover bool) error {
	if _, busy := s.active.LoadOrStore(t.ID, struct{}{}); busy {
		return nil // this process is signing it already
	}
	defer s.active.Delete(t.ID)
	if st := State(t.State); st != StateApproved && st != StateSigning {
		return nil // it already ended
	}
	start := time.Now()
	g, err := s.authorise(ctx, t, takeover)
	if g == nil {
		return err
	}
	if err := s.signDocuments(ctx, t, g); err != nil {
		// A transient HSM fault or a stop handed the transaction back,
		// approved and due (see retryLater, handBack); other errors leave
		// it for the lease to lapse.
		return err
	}
	s.w.retries.Delete(t.ID)
	return s.summarise(ctx, t, start)
}

// authorise asks the signing service for the citizen's key, with the
// signing lease as the evidence. It returns no grant when the
// transaction is not this node's to sign: ended, signed by another node,
// refused (then ended here as failed), or waiting for the audit log or
// the store (then the error says so and signing resumes later).
func (s *Service) authorise(ctx context.Context, t *store.Transaction, takeover bool) (*signing.Grant, error) {
	docs, err := s.st.Documents(ctx, t.ID, false)
	if err != nil {
		return nil, fail(CodeUnavailable, "the transaction store failed; retry", err)
	}
	// Signatures stored before an interruption, hidden until their
	// key.used is known: confirmed now if the log has it; else their
	// record is written under this activation, which lists them.
	unrecorded, err := s.confirmRecorded(ctx, t, docs)
	if err != nil {
		s.log.WarnContext(ctx, "signatures stored before an interruption not confirmed", "transaction", t.ID, "err", err)
		return nil, fail(CodeUnavailable, "the audit log or the transaction store failed; signing resumes on its own", err)
	}
	var approved []audit.Document
	for _, d := range unrecorded {
		approved = append(approved, auditDocument(d))
	}
	for _, d := range docs {
		if d.Status == string(DocPending) {
			approved = append(approved, auditDocument(d))
		}
	}
	if len(approved) == 0 {
		// Every document has its outcome: a stop came after they were
		// stored and before the transaction ended. Nothing is left to
		// sign, so no key is activated (an activation with nothing to
		// sign would have no key.used after it).
		return nil, s.summarise(ctx, t, s.now())
	}
	details := map[string]string{"transaction": t.ID}
	if done := len(docs) - len(approved) + len(unrecorded); done > 0 || State(t.State) == StateSigning || t.CertificateID != "" {
		// A resume (after a stop, a crash, a stall, a lease that ran out,
		// a transient fault): an earlier activation of this transaction
		// was cut short, and this record says it signs what that one left
		// pending (which is what explains it to audit.CheckSigned), naming
		// only what it signs now.
		details[audit.DetailResumed] = "true"
		details["documents_done"] = strconv.Itoa(done)
	}
	g, err := s.opt.Signing.Authorise(ctx, signing.Request{Purpose: signing.PurposeTransaction, Actor: citizenActor(t.CitizenID),
		Citizen: t.CitizenID, Portal: t.PortalID, RequestID: t.ID, Documents: approved,
		Details: details, Evidence: &lease{s: s, t: t, takeover: takeover}})
	switch {
	case err == nil:
	case errors.Is(err, signing.ErrEvidenceUsed):
		return nil, nil // it ended, or another node holds the lease
	case errors.Is(err, errLeaseStore):
		return nil, fail(CodeUnavailable, "the transaction store failed; retry", err)
	case errors.Is(err, signing.ErrAuditUnavailable):
		// The lease was given back: the transaction is approved again and
		// the resume scan signs it once the log takes records, backing off
		// as for the HSM meanwhile.
		return nil, s.retryLater(ctx, t, err, "audit")
	case ctx.Err() != nil:
		return nil, fail(CodeUnavailable, "signing was interrupted; it resumes on its own", err)
	case transientDevice(err):
		// The HSM failed before the consent was taken (issuing the
		// certificate, say): the transaction stays approved, due soon.
		return nil, s.retryLater(ctx, t, err, "hsm")
	case errors.Is(err, keystore.ErrKeyDestroyed), errors.Is(err, keystore.ErrKeyNotFound):
		s.log.ErrorContext(ctx, "signing key unavailable", "transaction", t.ID, "err", err)
		return nil, s.end(ctx, t, StateFailed, CodeSigningFailed, "the citizen's signing key is not available")
	default:
		code, msg := certificateFailure(err)
		s.log.WarnContext(ctx, "no certificate for signing", "transaction", t.ID, "code", code, "err", err)
		return nil, s.end(ctx, t, StateFailed, code, msg)
	}
	if cert := g.Certificate(); t.CertificateID != cert.ID {
		t.CertificateID, t.KeyID, t.UpdatedAt = cert.ID, cert.KeyID, s.now().UTC()
		if err := s.st.UpdateTransaction(ctx, t); err != nil {
			// The key.activated record stands with no key.used: a decision
			// cut short, which verification reports; the lease runs out and
			// another try signs.
			return nil, fail(CodeUnavailable, "the transaction store failed; retry", err)
		}
	}
	if err := s.recordHidden(ctx, t, g, unrecorded); err != nil {
		// Their records stand; the next resume finds them and marks the
		// documents signed.
		return nil, err
	}
	return g, nil
}

// errLeaseStore marks a store failure while taking or giving back the
// signing lease, as opposed to losing it.
var errLeaseStore = errors.New("signing lease: transaction store failed")

// errLeaseLost is a worker finding, as it renews, that its lease was
// taken over: it stalled past it, and another worker signs the rest.
var errLeaseLost = errors.New("signing lease: taken over by another worker")

// lease is a transaction's evidence for the signing service: the citizen
// approved with the OTP, and the approved transaction is signed once.
// Consume takes the signing lease (approved, or signing with the lease run
// out, to signing, for Options.SignLease) with the store's conditional
// update, so of two workers, here or on two nodes, one wins; the winner
// renews it as it stores each outcome (see renew). Restore puts the
// transaction back to approved, its lease end as it was, for the resume
// scan to sign later. takeover also takes a lease that has not run out:
// start-up Resume, when no worker of this node can hold one.
type lease struct {
	s        *Service
	t        *store.Transaction
	prev     store.Transaction
	takeover bool
}

func (l *lease) Kind() string { return "transaction-lease" }
func (l *lease) Ref() string  { return l.t.ID }

func (l *lease) Consume(ctx context.Context) error {
	s, t := l.s, l.t
	for attempt := 0; ; attempt++ {
		st := State(t.State)
		if (st != StateApproved && st != StateSigning) || attempt >= maxRetries {
			return fmt.Errorf("transaction %s is %s: %w", t.ID, st, signing.ErrEvidenceUsed)
		}
		if st == StateSigning && s.now().Before(t.ExpiresAt) && (attempt > 0 || !l.takeover) {
			return fmt.Errorf("transaction %s: another worker holds the lease: %w", t.ID, signing.ErrEvidenceUsed)
		}
		l.prev = *t
		now := s.now().UTC()
		t.State, t.UpdatedAt, t.ExpiresAt = string(StateSigning), now, now.Add(s.opt.SignLease)
		err := s.st.UpdateTransaction(ctx, t)
		if err == nil {
			return nil
		}
		if !errors.Is(err, store.ErrConflict) {
			*t = l.prev
			return fmt.Errorf("%w: %w", errLeaseStore, err)
		}
		cur, err := s.st.Transaction(ctx, t.ID)
		if err != nil {
			*t = l.prev
			return fmt.Errorf("%w: %w", errLeaseStore, err)
		}
		*t = *cur
	}
}

func (l *lease) Restore(ctx context.Context) error {
	s, t := l.s, l.t
	back := *t
	back.State, back.ExpiresAt, back.UpdatedAt = string(StateApproved), l.prev.ExpiresAt, s.now().UTC()
	if err := s.st.UpdateTransaction(ctx, &back); err != nil {
		return fmt.Errorf("%w: %w", errLeaseStore, err)
	}
	*t = back
	return nil
}

// signDocuments signs every pending document with the grant and stores
// the outcomes. Raw documents are signed first in batches through the
// signing core; CAdES and PAdES one at a time.
func (s *Service) signDocuments(ctx context.Context, t *store.Transaction, g *signing.Grant) error {
	docs, err := s.st.Documents(ctx, t.ID, true)
	if err != nil {
		return fail(CodeUnavailable, "the transaction store failed; retry", err)
	}
	raw := s.signRaw(ctx, g, docs)
	var vb signer.Validation
	if s.opt.Validation != nil && signer.Level(t.Level).Rank() >= 2 {
		vb = s.opt.Validation.Batch()
	}
	failed := false
	var deviceErr error // the first transient HSM fault: those documents stay pending
	// Outcomes are stored in batches: a batch of raw signatures costs
	// three commits whatever its size. Signatures are stored first,
	// hidden (DocRecording: kept, never handed out), then their key.used
	// is written, then they are marked signed: a crash before the store
	// loses only signatures nobody recorded (the documents are still
	// pending and signed on resume); one after it leaves them recording,
	// and the resume confirms or writes their record instead of signing
	// them again (confirmRecorded), so each has exactly one key.used.
	//
	// The lease is renewed before each store: a worker that stalled past
	// its lease finds it taken over and withholds what it signed (no
	// key.used, nothing stored), so the one that took over is the one
	// whose signatures count.
	var outcomes []*store.Document
	flush := func() error {
		if len(outcomes) == 0 {
			return nil
		}
		batch := outcomes
		outcomes = nil
		if err := s.renew(ctx, t); err != nil {
			return err
		}
		return s.store(ctx, t, g, batch)
	}
	for _, d := range docs {
		if d.Status != string(DocPending) {
			failed = failed || d.Status == string(DocFailed)
			continue
		}
		if ctx.Err() != nil {
			// Cut off (the shutdown deadline): nothing more is stored or
			// released; the lease lapses and whoever resumes signs what
			// is pending.
			return fail(CodeUnavailable, "signing was interrupted; it resumes on its own", ctx.Err())
		}
		if s.w.draining.Load() {
			// Stopping: keep what is done and hand the rest back now,
			// rather than leave it to the lease.
			if err := flush(); err != nil {
				return err
			}
			return s.handBack(ctx, t)
		}
		if _, ok := raw[d.Index]; !ok && len(outcomes) > 0 {
			// Slow formats take a while each: keep what is done first.
			if err := flush(); err != nil {
				return err
			}
		}
		next, err := s.outcome(ctx, t, g, d, raw, vb, t.StopOnError && failed)
		if err != nil {
			deviceErr = cmp.Or(deviceErr, err)
			continue
		}
		failed = failed || next.Status == string(DocFailed)
		outcomes = append(outcomes, next)
		s.m.documents.WithLabelValues(d.Format, next.Status).Inc()
	}
	if err := flush(); err != nil {
		return err
	}
	if deviceErr != nil {
		return s.retryLater(ctx, t, deviceErr, "hsm")
	}
	return nil
}

// store stores a batch of outcomes in three steps: the signatures
// hidden (DocRecording), their key.used records (release), then the
// signatures marked signed together with the failures, each step a
// conditional update of its own. Withheld signatures (their record could
// not be written) end failed, their result dropped.
func (s *Service) store(ctx context.Context, t *store.Transaction, g *signing.Grant, batch []*store.Document) error {
	var hidden, final []*store.Document
	for _, d := range batch {
		if d.Status == string(DocSigned) {
			d.Status = string(DocRecording)
			hidden = append(hidden, d)
		} else {
			final = append(final, d)
		}
	}
	skipped, err := s.st.UpdateDocuments(ctx, hidden, string(DocPending))
	if err != nil {
		return fail(CodeUnavailable, "the transaction store failed; retry", err)
	}
	if len(skipped) > 0 {
		// Not pending any more: another worker stored their outcome, and
		// its signatures are the ones recorded. These are withheld.
		s.log.WarnContext(ctx, "outcomes stored by another worker: signatures withheld", "transaction", t.ID, "documents", len(skipped))
		batch = slices.DeleteFunc(batch, func(d *store.Document) bool { return slices.Contains(skipped, d.Index) })
		hidden = slices.DeleteFunc(hidden, func(d *store.Document) bool { return slices.Contains(skipped, d.Index) })
	}
	s.release(ctx, t, g, batch, nil)
	if _, err := s.st.UpdateDocuments(ctx, final, string(DocPending)); err != nil {
		return fail(CodeUnavailable, "the transaction store failed; retry", err)
	}
	return s.reveal(ctx, hidden)
}

// reveal marks documents stored recording, whose key.used is written,
// signed (or failed, their signature withheld, when release failed them).
func (s *Service) reveal(ctx context.Context, docs []*store.Document) error {
	for _, d := range docs {
		if d.Status == string(DocRecording) {
			d.Status = string(DocSigned)
		}
	}
	if _, err := s.st.UpdateDocuments(ctx, docs, string(DocRecording)); err != nil {
		return fail(CodeUnavailable, "the transaction store failed; retry", err)
	}
	return nil
}

// renew extends the worker's lease to Options.SignLease from now, with
// the store's conditional update: a conflict means another worker took
// the transaction over (errLeaseLost).
func (s *Service) renew(ctx context.Context, t *store.Transaction) error {
	next := *t
	now := s.now().UTC()
	next.ExpiresAt, next.UpdatedAt = now.Add(s.opt.SignLease), now
	if err := s.st.UpdateTransaction(ctx, &next); err != nil {
		if errors.Is(err, store.ErrConflict) {
			s.m.leaseLost.Inc()
			s.log.WarnContext(ctx, "signing lease taken over: signatures made since the last renewal withheld", "transaction", t.ID)
			return fail(CodeUnavailable, "another worker took the signing over", errLeaseLost)
		}
		// Not knowing whether the lease still holds, nothing is released.
		return fail(CodeUnavailable, "the transaction store failed; retry", err)
	}
	*t = next
	return nil
}

// handBack gives the lease back at a stop: the transaction is approved
// again and due at once, for another node or the next start.
func (s *Service) handBack(ctx context.Context, t *store.Transaction) error {
	now := s.now().UTC()
	back := *t
	back.State, back.ExpiresAt, back.UpdatedAt = string(StateApproved), now, now
	if err := s.st.UpdateTransaction(ctx, &back); err != nil && !errors.Is(err, store.ErrConflict) {
		return fail(CodeUnavailable, "the transaction store failed; its lease lapses", err)
	}
	s.log.InfoContext(ctx, "signing handed back at stop", "transaction", t.ID)
	return fail(CodeUnavailable, "signing was stopped; it resumes on its own", errStopping)
}

// transientDevice reports whether err is an HSM fault that passes: the
// token went away for a while, or every session was busy. The citizen's
// consent still stands then; the documents stay pending.
func transientDevice(err error) bool {
	return errors.Is(err, keystore.ErrTokenUnavailable) || errors.Is(err, keystore.ErrBusy)
}

// retryLater gives the signing lease back after a transient fault of the
// HSM (cause "hsm") or of the audit log before the key was activated
// ("audit"): the transaction is approved again, due for the resume scan
// after a backoff that grows with each consecutive fault of this
// transaction (hsmBackoff: 2 s doubling to 1 min, jittered), instead of
// failing with its OTP spent. A transient fault never fails the
// transaction; its expiry (Options.SignExpiry after the approval) is the
// only end while the fault lasts.
func (s *Service) retryLater(ctx context.Context, t *store.Transaction, cause error, what string) error {
	now := s.now().UTC()
	if !t.ApprovedAt.IsZero() && !now.Before(t.ApprovedAt.Add(s.opt.SignExpiry)) {
		s.w.retries.Delete(t.ID)
		s.log.WarnContext(ctx, "signing expired while a transient fault lasted", "transaction", t.ID, "cause", what, "err", cause)
		msg := fmt.Sprintf("the documents could not be signed within %s of the approval: the %s stayed unavailable", s.opt.SignExpiry, faultName(what))
		if err := s.end(ctx, t, StateExpired, CodeExpired, msg); err != nil {
			return err
		}
		// An error, so that the caller stops: the transaction ended.
		return &Error{Code: CodeExpired, Message: msg, Err: cause}
	}
	n, wait := s.nextRetry(t.ID)
	back := *t
	back.State, back.ExpiresAt, back.UpdatedAt = string(StateApproved), now.Add(wait), now
	if err := s.st.UpdateTransaction(ctx, &back); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil // another node took it over
		}
		return fail(CodeUnavailable, "the transaction store failed; retry", err)
	}
	*t = back
	s.m.retries.WithLabelValues(what).Inc()
	msg := "the " + faultName(what) + " is unavailable; signing resumes on its own"
	s.log.WarnContext(ctx, "signing handed back after a transient fault", "transaction", t.ID, "cause", what, "retry", n, "retry_in", wait, "err", cause)
	return fail(CodeUnavailable, msg, cause)
}

// outcome signs one pending document (or takes its raw signature) and
// returns it with its new status; abort says an earlier document failed
// and the batch stops on the first error. A transient HSM fault is
// returned as the error instead: the document stays pending.
func (s *Service) outcome(ctx context.Context, t *store.Transaction, g *signing.Grant, d *store.Document, raw map[int]rawResult, vb signer.Validation, abort bool) (*store.Document, error) {
	next := *d
	if abort {
		next.Status, next.ErrorCode = string(DocAborted), string(CodeSigningFailed)
		next.Error = "not signed: an earlier document failed and this batch stops on the first error"
		return &next, nil
	}
	var (
		res, tok []byte
		err      error
	)
	if r, ok := raw[d.Index]; ok {
		res, err = r.sig, r.err
	} else {
		res, tok, err = s.signDocument(ctx, t, d, g, vb)
	}
	if err != nil && transientDevice(err) {
		return nil, err
	}
	if err != nil {
		code, msg := documentFailure(err)
		s.log.WarnContext(ctx, "document not signed", "transaction", t.ID, "document", d.Index, "code", code, "err", err)
		next.Status, next.ErrorCode, next.Error = string(DocFailed), string(code), msg
		return &next, nil
	}
	next.Status, next.Result, next.SignedAt = string(DocSigned), res, s.now().UTC()
	next.Timestamped = signer.Level(t.Level).Rank() >= 1 && next.Format != string(signer.FormatRaw)
	if len(tok) > 0 {
		next.TimestampToken = tok
		if ts, err := cmsparse.Timestamp(tok); err == nil {
			next.TimestampedAt = ts.Time.UTC()
		}
	}
	return &next, nil
}

// summarise ends the transaction from its documents' outcomes.
func (s *Service) summarise(ctx context.Context, t *store.Transaction, start time.Time) error {
	// Re-read: on a conflict another node stored the outcome.
	docs, err := s.st.Documents(ctx, t.ID, false)
	if err != nil {
		return fail(CodeUnavailable, "the transaction store failed; retry", err)
	}
	signed := 0
	for _, d := range docs {
		if d.Status == string(DocSigned) {
			signed++
		}
	}
	s.m.signing.Observe(time.Since(start).Seconds())
	switch signed {
	case len(docs):
		t.Summary = string(SummaryAllSigned)
		return s.end(ctx, t, StateDone, "", "")
	case 0:
		t.Summary = string(SummaryAllFailed)
		return s.end(ctx, t, StateFailed, CodeSigningFailed, "no document could be signed; see each document's error")
	}
	t.Summary = string(SummarySomeFailed)
	return s.end(ctx, t, StateDone, "", "")
}

// end is finish for the signing path, which alone holds the transaction
// in signing, so a conflict means another node finished it.
func (s *Service) end(ctx context.Context, t *store.Transaction, st State, code Code, msg string) error {
	s.w.retries.Delete(t.ID)
	err := s.finish(ctx, t, st, code, msg)
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return fail(CodeUnavailable, "the transaction store failed; retry", err)
	}
	return nil
}

type rawResult struct {
	sig []byte
	err error
}

// signRaw signs every pending raw document through the grant, one batch
// per hash, so that a batch costs the HSM's signatures and little else. A
// failed batch is retried one document at a time to find which one
// failed.
func (s *Service) signRaw(ctx context.Context, g *signing.Grant, docs []*store.Document) map[int]rawResult {
	byHash := map[string][]*store.Document{}
	for _, d := range docs {
		if d.Status == string(DocPending) && d.Format == string(signer.FormatRaw) {
			byHash[d.Hash] = append(byHash[d.Hash], d)
		}
	}
	out := make(map[int]rawResult)
	for name, ds := range byHash {
		h := hashes[name]
		digests := make([][]byte, len(ds))
		for i, d := range ds {
			digests[i] = d.Digest
		}
		sigs, err := g.SignDigests(ctx, "", h, digests)
		if err == nil && len(sigs) == len(ds) {
			for i, d := range ds {
				out[d.Index] = rawResult{sig: sigs[i]}
			}
			continue
		}
		for _, d := range ds {
			sig, err := g.SignDigests(ctx, "", h, [][]byte{d.Digest})
			if err == nil && len(sig) != 1 {
				err = errors.New("signing core returned no signature")
			}
			if err != nil {
				out[d.Index] = rawResult{err: err}
				continue
			}
			out[d.Index] = rawResult{sig: sig[0]}
		}
	}
	return out
}

// signDocument makes a CAdES or PAdES signature of one document, and
// returns the timestamp token put in it (B-T), kept on the side for the
// portal.
func (s *Service) signDocument(ctx context.Context, t *store.Transaction, d *store.Document, g *signing.Grant, vb signer.Validation) ([]byte, []byte, error) {
	_, h, err := ParseHash(d.Hash)
	if err != nil {
		return nil, nil, err
	}
	var token []byte
	opt := signer.Options{Level: signer.Level(t.Level), Hash: h, SigningTime: s.now(), Validation: vb}
	if opt.Level.Rank() >= 1 && s.opt.Timestamper != nil {
		// The first token is the signature timestamp; at B-LTA an archive
		// or document timestamp follows.
		opt.Timestamper = signer.TimestamperFunc(func(ctx context.Context, h crypto.Hash, digest []byte) ([]byte, error) {
			tok, err := s.opt.Timestamper.Timestamp(ctx, h, digest)
			if err == nil && token == nil {
				token = tok
			}
			return tok, err
		})
	}
	chain := g.Chain()
	doc := signer.Document{Type: signer.DocumentType(d.MediaType), Content: d.Content, Digest: d.Digest, Name: d.Name}
	po, err := pdfOptions(signer.PDFOptions{Reason: PDFReason, Name: chain[0].Subject.CommonName}, d.Appearance)
	if err != nil {
		return nil, nil, err
	}
	o, err := readSignOptions(d.SignOptions)
	if err != nil {
		return nil, nil, err
	}
	res, err := signWith(ctx, o, signer.Format(d.Format), s.formats, doc, g.Signer(ctx), chain, opt, po)
	if err != nil {
		return nil, nil, err
	}
	return res, token, nil
}

// certificateFailure turns a CA error at signing time into a code and a
// message for people.
func certificateFailure(err error) (Code, string) {
	switch {
	case errors.Is(err, ca.ErrNotAdvanced):
		return CodeWeakRegistration, "the citizen is no longer registered at the advanced level"
	case errors.Is(err, ca.ErrInactive):
		return CodeCertificateBlocked, "the citizen's registration is not active"
	case errors.Is(err, ca.ErrUnknownCitizen):
		return CodeUnknownCitizen, "the citizen is no longer registered"
	case errors.Is(err, ca.ErrPending), errors.Is(err, ca.ErrNotInitialised):
		return CodeNoCertificate, "no signing certificate could be issued for the citizen"
	}
	return CodeSigningFailed, "the signing certificate could not be issued"
}

// documentFailure turns a signing error into a code and a message that
// names the document's problem but never the service's internals.
func documentFailure(err error) (Code, string) {
	switch {
	// First: the built-in TSA's records (a B-T timestamp) failing come
	// wrapped in signer.ErrTimestamp, but the audit log is what failed.
	case errors.Is(err, signing.ErrAuditUnavailable), errors.Is(err, audit.ErrUnavailable), errors.Is(err, audit.ErrClosed):
		return CodeSigningFailed, "the audit log was unavailable, so the document was not signed"
	case errors.Is(err, signer.ErrPDF):
		return CodeInvalidDocument, fmt.Sprintf("the PDF cannot be signed: %v", err)
	case errors.Is(err, signer.ErrCoSign), errors.Is(err, signer.ErrPolicy):
		return CodeInvalidDocument, err.Error()
	case errors.Is(err, signer.ErrNeedsDocument), errors.Is(err, signer.ErrFormat), errors.Is(err, signer.ErrHash):
		return CodeUnsupportedFormat, err.Error()
	case errors.Is(err, signer.ErrTimestamp):
		return CodeTimestampFailed, "the timestamp authority did not answer; the document was not signed"
	case errors.Is(err, keystore.ErrBusy), errors.Is(err, keystore.ErrTokenUnavailable):
		return CodeSigningFailed, "the signing device was unavailable; start a new transaction for this document"
	}
	return CodeSigningFailed, "the document could not be signed"
}

// Resume has the signing workers finish every approved transaction whose
// signing a stop of firmad interrupted, leases or not (the lease of a
// transaction left signing is taken over at once, instead of after
// Options.SignLease), and waits for them: run it at start-up, when no
// worker of this node can hold a lease. Documents already signed keep
// their result. It returns the first error a worker met; those
// transactions stay approved and the resume scan tries them again.
func (s *Service) Resume(ctx context.Context) error {
	seen := map[string]bool{}
	var first error
	for {
		ts, err := s.st.TransactionsDue(ctx, []string{string(StateApproved), string(StateSigning)}, time.Time{}, 100)
		if err != nil {
			return fmt.Errorf("resume signing: %w", err)
		}
		var jobs []string
		for _, t := range ts {
			if seen[t.ID] {
				continue
			}
			seen[t.ID] = true
			s.log.InfoContext(ctx, "resuming signing", "transaction", t.ID, "state", t.State)
			if err := s.enqueueWait(ctx, t.ID); err != nil {
				return fmt.Errorf("resume signing %s: %w", t.ID, err)
			}
			jobs = append(jobs, t.ID)
		}
		if len(jobs) == 0 {
			return first
		}
		for _, id := range jobs {
			if err := s.Wait(ctx, id); err != nil && first == nil {
				first = fmt.Errorf("resume signing %s: %w", id, err)
			}
		}
	}
}

// enqueueWait is enqueue with takeover, waiting for room in the queue.
func (s *Service) enqueueWait(ctx context.Context, id string) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for s.enqueue(id, true) == nil {
		if s.w.draining.Load() {
			return errStopping
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// faultName names a retryLater cause for people.
func faultName(what string) string {
	if what == "audit" {
		return "audit log"
	}
	return "signing device"
}
