package fire

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/transaction"
)

// Provider is the "prov" FIRe clients receive: the cloud provider that
// signed. firma is Cl@ve Firma's model, and portals branch on this name.
const Provider = "clavefirma"

const maxRetries = 5

// A signed batch's results, as op 8 read them, are kept for its op 10
// calls: without them each op 10 reads every document's signature and the
// signer's chain again, ten reads of the whole batch for ten documents.
// They are final (the firma transaction is done) so no copy goes stale;
// what is handed out is still recorded in the store, so the cache saves
// reads only, and an instance without the entry (restarted, or another
// replica) reads the store as before. A batch whose signatures are larger
// than resultsCacheBatchBytes (PAdES answers carry whole PDFs) is not
// kept, so the cache holds at most resultsCacheSize x that.
const (
	resultsCacheSize       = 64
	resultsCacheBatchBytes = 1 << 20
	resultsCacheTTL        = 2 * time.Minute
	authCacheSize          = 1024
)

func resultBytes(r *transaction.Results) int {
	n := 0
	for _, d := range r.Documents {
		n += len(d.Signature) + len(d.TimestampToken)
	}
	return n
}

// Portals looks portals up; *portal.Registry implements it.
type Portals interface {
	Get(ctx context.Context, id string) (*store.Portal, error)
}

// Options wires a Service; Store, Transactions, Portals and ReturnBase
// are required.
type Options struct {
	Store        store.FireStore
	Transactions *transaction.Service
	Portals      Portals
	// ReturnBase is the absolute URL under which firmad serves the
	// returns to the verbatim redirect URLs: ReturnBase + "/ok" and
	// ReturnBase + "/error".
	ReturnBase string
	MaxBatch   int // default DefaultMaxBatch
	// AuthCacheTTL is how long a verified application (appid and
	// certificate digest) is taken as verified without reading the
	// store again: a rotated certificate or a suspended portal takes
	// effect within it. 0 means DefaultAuthCacheTTL, negative no cache.
	AuthCacheTTL time.Duration
	Log          *slog.Logger
	Clock        func() time.Time
}

// Service is the FIRe side of transactions.
type Service struct {
	st   store.FireStore
	tx   *transaction.Service
	p    Portals
	opt  Options
	log  *slog.Logger
	now  func() time.Time
	life time.Duration
	done *expirable.LRU[string, *transaction.Results] // by transaction id
	// upgraded are signatures raised by op 2 or 70, by transaction id.
	upgraded *expirable.LRU[string, []byte]
	// apps are the applications verified in the last AuthCacheTTL, by
	// appid and SHA-256 of the client certificate; nil without a cache.
	apps *expirable.LRU[appKey, *App]
}

// DefaultAuthCacheTTL: a FIRe client authenticates on every request (23
// for a batch of ten), and the application's row and its portal's were
// one store query each time; a change to either still holds within it.
const DefaultAuthCacheTTL = 2 * time.Second

// appKey is an application and the certificate that proved it.
type appKey struct {
	appID string
	cert  [sha256.Size]byte
}

// New returns a service.
func New(opt Options) (*Service, error) {
	if opt.Store == nil || opt.Transactions == nil || opt.Portals == nil || opt.ReturnBase == "" {
		return nil, errors.New("fire: a store, the transaction service, the portal registry and the return base URL are required")
	}
	if opt.MaxBatch <= 0 {
		opt.MaxBatch = DefaultMaxBatch
	}
	s := &Service{st: opt.Store, tx: opt.Transactions, p: opt.Portals, opt: opt, log: opt.Log, now: opt.Clock,
		done: expirable.NewLRU[string, *transaction.Results](resultsCacheSize, nil, resultsCacheTTL)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if ttl := opt.AuthCacheTTL; ttl >= 0 {
		if ttl == 0 {
			ttl = DefaultAuthCacheTTL
		}
		s.apps = expirable.NewLRU[appKey, *App](authCacheSize, nil, ttl)
	}
	// The FIRe side lives as long as the firma transaction may wait for
	// approval plus its signing, and at least FIRe's 600 s after that.
	s.life = max(opt.Transactions.TTL(), MinLifetime) + MinLifetime
	s.upgraded = newUpgradedCache(s.life)
	return s, nil
}

// App is an authenticated FIRe application.
type App struct {
	ID     string
	Portal *store.Portal
}

// Authenticate finds the application appID and checks that the client
// certificate's DER has one of its registered digests. Unknown, disabled
// and mismatched all give ErrUnknownApp, so a caller learns nothing of
// which applications exist.
func (s *Service) Authenticate(ctx context.Context, appID string, certDER []byte) (*App, error) {
	var key appKey
	if s.apps != nil {
		key = appKey{appID, sha256.Sum256(certDER)}
		if a, ok := s.apps.Get(key); ok {
			return a, nil
		}
	}
	// One query for the application and its portal: a FIRe client
	// authenticates on every request, 23 for a batch of ten.
	a, p, err := s.st.FireAppPortal(ctx, appID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknownApp
	}
	if err != nil {
		return nil, errs.Wrap(errs.Sentinel(errs.Unavailable, "unavailable", ""), err, "the application registry failed; retry")
	}
	if !DigestMatches(a.CertDigests, certDER) || p.Status != store.PortalActive {
		return nil, ErrUnknownApp
	}
	// Only successes are kept: a refusal costs the store query each
	// time, so a newly registered certificate works at once.
	app := &App{ID: a.AppID, Portal: p}
	if s.apps != nil {
		s.apps.Add(key, app)
	}
	return app, nil
}

// Digest is the "<alg>:<hex>" form a registered certificate digest takes.
func Digest(alg string, der []byte) (string, error) {
	var sum []byte
	switch alg {
	case "sha1":
		s := sha1.Sum(der)
		sum = s[:]
	case "sha256":
		s := sha256.Sum256(der)
		sum = s[:]
	case "sha512":
		s := sha512.Sum512(der)
		sum = s[:]
	default:
		return "", fmt.Errorf("digest %q: want sha1, sha256 or sha512", alg)
	}
	return alg + ":" + hex.EncodeToString(sum), nil
}

// ParseDigest checks and normalises a registered digest given as
// "<alg>:<hex>" (hex may have colons, as openssl prints it).
func ParseDigest(s string) (string, error) {
	alg, h, ok := strings.Cut(strings.TrimSpace(s), ":")
	alg = strings.ToLower(strings.ReplaceAll(alg, "-", ""))
	size := map[string]int{"sha1": 20, "sha256": 32, "sha512": 64}[alg]
	b, err := hex.DecodeString(strings.ReplaceAll(h, ":", ""))
	if !ok || size == 0 || err != nil || len(b) != size {
		return "", fmt.Errorf("certificate digest %q: want sha1:, sha256: or sha512: and the digest in hex", s)
	}
	return alg + ":" + hex.EncodeToString(b), nil
}

// DigestMatches reports whether der has one of the digests.
func DigestMatches(digests []string, der []byte) bool {
	if len(der) == 0 {
		return false
	}
	ok := false
	for _, d := range digests {
		alg, _, _ := strings.Cut(d, ":")
		got, err := Digest(alg, der)
		// Every digest is compared, in constant time, whatever matched.
		if err == nil && subtle.ConstantTimeCompare([]byte(got), []byte(d)) == 1 {
			ok = true
		}
	}
	return ok
}

// SignRequest is op 1 (SIGN) and op 5 (CREATE_BATCH), decoded.
type SignRequest struct {
	SubjectID  string
	Cop        string
	Algorithm  string
	Format     string
	Upgrade    string
	Data       []byte // op 1 only
	Config     map[string]string
	Properties map[string]string
}

// Started is where to send the citizen.
type Started struct {
	TransactionID string
	RedirectURL   string // "" for a batch not signed off yet
}

type settings struct {
	spec     formatSpec
	hash     string
	level    upgradeSpec
	op       signer.Operation
	policy   string // "" none (or the portal's default), FirmaAGE
	attached bool
}

// document is the transaction document for data under these settings:
// the data itself to sign, or the existing signature to cosign or
// countersign, with what it signs.
func (set *settings) document(name string, data []byte) (transaction.DocumentInput, error) {
	d := transaction.DocumentInput{Name: name, MediaType: set.spec.mediaType, Hash: set.hash, Format: set.spec.format,
		Operation: set.op, Policy: set.policy, Attached: set.attached}
	if set.op == signer.OpSign || set.spec.format == signer.FormatPAdES {
		d.Content = data
		return d, nil
	}
	_, h, err := transaction.ParseHash(set.hash)
	if err != nil {
		return d, err
	}
	if d.Content, d.Digest, err = signer.SignedContent(data, h); err != nil {
		return d, errs.Wrap(ErrUnsupported, err, "cop %s: the data is not a CAdES signature firma can add a signer to: %v", set.op, err)
	}
	d.Signature = data
	return d, nil
}

// resolve maps the FIRe values onto firma's, refusing by name any it
// cannot honour.
func resolve(cop, format, algorithm, upgrade string, props map[string]string) (*settings, error) {
	op, err := lookup(cops, "cop", cop)
	if err != nil {
		return nil, err
	}
	f, err := lookup(formats, "format", format)
	if err != nil {
		return nil, err
	}
	if f.refuse != "" {
		return nil, refused("format", format, f.refuse)
	}
	a, err := lookup(algorithms, "algorithm", algorithm)
	if err != nil {
		return nil, err
	}
	if a.refuse != "" {
		return nil, refused("algorithm", algorithm, a.refuse)
	}
	u, err := lookup(upgrades, "upgrade", upgrade)
	if err != nil {
		return nil, err
	}
	if u.refuse != "" {
		return nil, refused("upgrade", upgrade, u.refuse)
	}
	if err := checkProperties(props, f.format); err != nil {
		return nil, err
	}
	if op != signer.OpSign && f.format != signer.FormatCAdES && (op != signer.OpCoSign || f.format != signer.FormatPAdES) {
		return nil, refused("cop", cop, "firma cosigns and countersigns CAdES signatures, and cosigns PDFs; not "+format)
	}
	set := &settings{spec: f, hash: a.hash, level: u, op: op}
	set.policy, set.attached = docOptions(props, f.format, op)
	return set, nil
}

// redirects reads the redirect URLs of config: redirectErrorUrl defaults
// to redirectOkUrl, as in FIRe.
func redirects(cfg map[string]string) (ok, ko string, err error) {
	ok, ko = strings.TrimSpace(cfg["redirectOkUrl"]), strings.TrimSpace(cfg["redirectErrorUrl"])
	switch {
	case ok == "" && ko == "":
		return "", "", ErrNoRedirect
	case ok == "":
		ok = ko
	case ko == "":
		ko = ok
	}
	return ok, ko, nil
}

// returnPortal is the app's portal as the transaction service checks it:
// its allow-list holds only firma's return URLs, the portal's own having
// been checked against the verbatim ones.
func (s *Service) returnPortal(a *App, ok, ko string) (*store.Portal, error) {
	for _, u := range []struct{ name, v string }{{"redirectOkUrl", ok}, {"redirectErrorUrl", ko}} {
		if !portal.RedirectAllowed(a.Portal, u.v) {
			return nil, errs.Wrap(ErrBadConfig, nil, "config %s %q is not one of the application's registered redirect URLs", u.name, u.v)
		}
	}
	p := *a.Portal
	p.RedirectURLs = []string{s.opt.ReturnBase + "/ok", s.opt.ReturnBase + "/error"}
	return &p, nil
}

func docName(cfg map[string]string, fallback string) string {
	for _, k := range []string{"docName", "docTitle"} {
		if v := strings.TrimSpace(cfg[k]); v != "" {
			return v
		}
	}
	return fallback
}

// start reads what op 1 and op 5 share: the mapped settings and the
// portal that sends the citizen back through firma's return URLs.
// ok and ko are the application's own URLs, kept for the return hop.
func (s *Service) start(a *App, req SignRequest) (set *settings, p *store.Portal, ok, ko string, err error) {
	if set, err = resolve(req.Cop, req.Format, req.Algorithm, req.Upgrade, req.Properties); err != nil {
		return nil, nil, "", "", err
	}
	if ok, ko, err = redirects(req.Config); err != nil {
		return nil, nil, "", "", err
	}
	if p, err = s.returnPortal(a, ok, ko); err != nil {
		return nil, nil, "", "", err
	}
	return set, p, ok, ko, nil
}

// Sign is op 1: one document, approved on firma's page.
func (s *Service) Sign(ctx context.Context, a *App, req SignRequest) (*Started, error) {
	set, p, ok, ko, err := s.start(a, req)
	if err != nil {
		return nil, err
	}
	doc, err := set.document(docName(req.Config, "documento"), req.Data)
	if err != nil {
		return nil, err
	}
	c, err := s.tx.Create(ctx, p, transaction.CreateRequest{CitizenID: req.SubjectID, OKURL: p.RedirectURLs[0], ErrorURL: p.RedirectURLs[1],
		Level: s.signedLevel(set.spec.format, set.level.level), Documents: []transaction.DocumentInput{doc}})
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	sub, _ := registry.NormalizeID("subjectid", req.SubjectID) // valid: the transaction was made
	ft := &store.FireTransaction{ID: c.ID, AppID: a.ID, Subject: sub, OKURL: ok, ErrorURL: ko, Upgrade: req.Upgrade, Format: req.Format,
		Algorithm: req.Algorithm, CreatedAt: now, ExpiresAt: now.Add(s.life)}
	if err := s.st.CreateFireTransaction(ctx, ft); err != nil {
		// The firma transaction stays, unreachable by FIRe; cancel it so
		// that no citizen is asked to approve it.
		_, _ = s.tx.Cancel(context.WithoutCancel(ctx), a.Portal.ID, c.ID)
		return nil, unavailable(err)
	}
	return &Started{TransactionID: c.ID, RedirectURL: c.RedirectURL}, nil
}

func unavailable(err error) error {
	return errs.Wrap(errs.Sentinel(errs.Unavailable, "unavailable", ""), err, "the store failed; retry")
}

// load returns the app's FIRe transaction id, checking it belongs to
// subject; every miss is the same ErrTransaction (FIRe's 503).
func (s *Service) load(ctx context.Context, a *App, subject, id string, batch bool) (*store.FireTransaction, error) {
	ft, err := s.st.FireTransaction(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrTransaction
	}
	if err != nil {
		return nil, unavailable(err)
	}
	if ft.AppID != a.ID || ft.Batch != batch || s.now().After(ft.ExpiresAt) {
		return nil, ErrTransaction
	}
	if sub, err := registry.NormalizeID("subjectid", subject); err != nil || sub != ft.Subject {
		return nil, ErrTransaction
	}
	return ft, nil
}

// notFound turns the transaction service's unknown transaction into
// FIRe's.
func notFound(err error) error {
	if transaction.CodeOf(err) == transaction.CodeUnknownTransaction {
		return ErrTransaction
	}
	return err
}

// results are the firma transaction's outcome and signatures.
func (s *Service) results(ctx context.Context, a *App, id string) (*transaction.Results, error) {
	r, err := s.tx.Results(ctx, a.Portal.ID, id)
	return r, notFound(err)
}

// stored is the error a transaction ended with, as FIRe reports it; nil
// if it did not end in error.
func stored(t *transaction.Transaction) error {
	switch t.State {
	case transaction.StateDone:
		if t.Summary == transaction.SummaryAllSigned || len(t.Documents) == 0 {
			return nil
		}
		d := t.Documents[0]
		for _, x := range t.Documents {
			if x.Status == transaction.DocFailed {
				d = x
				break
			}
		}
		return &transaction.Error{Code: d.ErrorCode, Message: d.Error}
	case transaction.StateRejected, transaction.StateFailed, transaction.StateExpired, transaction.StateCancelled:
		return &transaction.Error{Code: t.ErrorCode, Message: t.ErrorMessage}
	}
	return nil
}

// Recovered is op 2's answer.
type Recovered struct {
	Provider string
	Cert     []byte // the signer's certificate, DER
	Upgrade  string // the level reached, as asked
	// Grace, when set, says the upgrade waits for a grace period: the
	// signature is recovered through ops 70 and 71.
	Grace *Grace
}

// Recover is op 2: the outcome of a single signature, without it. An
// error outcome ends the FIRe transaction, as in FIRe.
func (s *Service) Recover(ctx context.Context, a *App, subject, id, upgrade string) (*Recovered, error) {
	ft, err := s.load(ctx, a, subject, id, false)
	if err != nil {
		return nil, err
	}
	r, err := s.results(ctx, a, id)
	if err != nil {
		return nil, err
	}
	t := r.Transaction
	if !t.State.Final() {
		return nil, errs.Wrap(ErrNotSigned, nil, "the citizen has not signed yet (transaction %s); call again once they are back at redirectOkUrl", t.State)
	}
	if err := stored(t); err != nil {
		_ = s.st.DeleteFireTransaction(ctx, id)
		return nil, err
	}
	if upgrade == "" {
		upgrade = ft.Upgrade
	}
	u, err := lookup(upgrades, "upgrade", upgrade)
	if err == nil && u.refuse != "" {
		err = refused("upgrade", upgrade, u.refuse)
	}
	if err != nil {
		return nil, errs.Wrap(ErrUpgrade, err, "%s", err.Error())
	}
	out := &Recovered{Provider: Provider}
	sig, g, err := s.raise(ctx, ft, r, u.level)
	switch {
	case err != nil:
		return nil, err
	case g != nil:
		// As FIRe: the answer is the grace id and date; op 70 and 71 go on.
		out.Grace = g
		if err := s.keepForGrace(ctx, ft, g, upgrade); err != nil {
			return nil, err
		}
	default:
		if len(r.Documents) > 0 && !bytes.Equal(sig, r.Documents[0].Signature) {
			s.upgraded.Add(id, sig)
		}
		if u.level != "" {
			out.Upgrade = upgrade
		}
	}
	if len(r.Chain) > 0 {
		out.Cert = r.Chain[0]
	}
	return out, nil
}

// RecoverResult is op 11: the signature, handed out once; the FIRe
// transaction ends with it.
func (s *Service) RecoverResult(ctx context.Context, a *App, subject, id string) ([]byte, error) {
	for range maxRetries {
		ft, err := s.load(ctx, a, subject, id, false)
		if err != nil {
			return nil, err
		}
		if ft.ResultTaken {
			return nil, ErrTransaction
		}
		r, err := s.results(ctx, a, id)
		if err != nil {
			return nil, err
		}
		if t := r.Transaction; !t.State.Final() {
			return nil, errs.Wrap(ErrNotSigned, nil, "the citizen has not signed yet (transaction %s)", t.State)
		}
		if err := stored(r.Transaction); err != nil {
			return nil, err
		}
		sig, ok := s.upgraded.Get(id)
		if !ok {
			var g *Grace
			if sig, g, err = s.raise(ctx, ft, r, upgrades[normUpgrade(ft.Upgrade)].level); err != nil {
				return nil, err
			}
			if g != nil {
				return nil, errs.Wrap(ErrGrace, nil, "the signature may be raised from %s: recover it with operations 70 and 71 under id %s", g.Date.UTC().Format(time.RFC3339), g.ID)
			}
		}
		ft.ResultTaken = true
		if err := s.st.UpdateFireTransaction(ctx, ft); errors.Is(err, store.ErrConflict) {
			continue
		} else if errors.Is(err, store.ErrNotFound) {
			return nil, ErrTransaction
		} else if err != nil {
			return nil, unavailable(err)
		}
		if err := s.st.DeleteFireTransaction(ctx, id); err != nil {
			s.log.WarnContext(ctx, "fire transaction not deleted after its result", "transaction", id, "err", err)
		}
		s.upgraded.Remove(id)
		return sig, nil
	}
	return nil, unavailable(errors.New("fire transaction busy"))
}

// RecoverError is op 99: the error the transaction ended with, after
// which the FIRe transaction is gone. ErrTransaction if unknown or
// expired; ErrNoStoredError if it holds none.
func (s *Service) RecoverError(ctx context.Context, a *App, subject, id string) error {
	if _, err := s.load(ctx, a, subject, id, false); err != nil {
		if _, err := s.load(ctx, a, subject, id, true); err != nil {
			return err
		}
	}
	t, err := s.tx.Get(ctx, a.Portal.ID, id)
	if err != nil {
		return notFound(err)
	}
	_ = s.st.DeleteFireTransaction(ctx, id)
	if err := stored(t); err != nil {
		return err
	}
	if !t.State.Final() {
		return errs.Wrap(ErrNotSigned, nil, "the citizen has not finished (transaction %s)", t.State)
	}
	return ErrNoStoredError
}

// ReturnURL is the verbatim redirect URL of FIRe transaction id, the OK
// one or the error one; firma's page sends the citizen to the firmad URL
// that asks for it.
func (s *Service) ReturnURL(ctx context.Context, id string, ok bool) (string, error) {
	ft, err := s.st.FireTransaction(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return "", ErrTransaction
	}
	if err != nil {
		return "", unavailable(err)
	}
	if ok {
		return ft.OKURL, nil
	}
	return ft.ErrorURL, nil
}

var docIDPattern = regexp.MustCompile(`^[0-9a-zA-Z_.-]{1,40}$`)

// CreateBatch is op 5: an empty batch with the defaults of its documents.
func (s *Service) CreateBatch(ctx context.Context, a *App, req SignRequest) (*Started, error) {
	set, p, ok, ko, err := s.start(a, req)
	if err != nil {
		return nil, err
	}
	c, err := s.tx.CreateDraft(ctx, p, transaction.CreateRequest{CitizenID: req.SubjectID, OKURL: p.RedirectURLs[0],
		ErrorURL: p.RedirectURLs[1], Level: set.level.level})
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	sub, _ := registry.NormalizeID("subjectid", req.SubjectID) // valid: the transaction was made
	ft := &store.FireTransaction{ID: c.ID, AppID: a.ID, Subject: sub, Batch: true, OKURL: ok, ErrorURL: ko, Upgrade: req.Upgrade, Format: req.Format,
		Algorithm: req.Algorithm, CreatedAt: now, ExpiresAt: now.Add(s.life)}
	if err := s.st.CreateFireTransaction(ctx, ft); err != nil {
		_, _ = s.tx.Cancel(context.WithoutCancel(ctx), a.Portal.ID, c.ID)
		return nil, unavailable(err)
	}
	return &Started{TransactionID: c.ID}, nil
}

// AddRequest is op 6; empty Cop, Format and Upgrade take the batch's.
type AddRequest struct {
	SubjectID, TransactionID, DocID string
	Data                            []byte
	Config                          map[string]string
	Cop, Format, Upgrade            string
	Properties                      map[string]string
}

// AddDocument is op 6.
func (s *Service) AddDocument(ctx context.Context, a *App, req AddRequest) error {
	if !docIDPattern.MatchString(req.DocID) {
		return errs.Wrap(ErrBadDocID, nil, "docid %q: 1 to 40 of 0-9, a-z, A-Z, -, _ and .", req.DocID)
	}
	ft, err := s.load(ctx, a, req.SubjectID, req.TransactionID, true)
	if err != nil {
		return err
	}
	if req.Upgrade != "" && !strings.EqualFold(req.Upgrade, ft.Upgrade) {
		return refused("upgrade", req.Upgrade, "one batch is signed at one level: give the upgrade at createBatch")
	}
	cop, format := req.Cop, req.Format
	if cop == "" {
		cop = "sign"
	}
	if format == "" {
		format = ft.Format
	}
	set, err := resolve(cop, format, ft.Algorithm, ft.Upgrade, req.Properties)
	if err != nil {
		return err
	}
	// The docid goes into the same store write as the document; when
	// either moved meanwhile (another addDocument of the batch), the
	// batch is read again and the checks run again before the retry.
	check := func(ft *store.FireTransaction) error {
		if slices.Contains(ft.DocIDs, req.DocID) {
			return errs.Wrap(ErrDuplicateDocID, nil, "docid %q is already in the batch", req.DocID)
		}
		if n := countIDs(ft.DocIDs); n >= s.opt.MaxBatch {
			return errs.Wrap(ErrBatchFull, nil, "the batch has %d documents; at most %d", n, s.opt.MaxBatch)
		}
		return nil
	}
	if err := check(ft); err != nil {
		return err
	}
	doc, err := set.document(docName(req.Config, req.DocID), req.Data)
	if err != nil {
		return err
	}
	_, err = s.tx.AddDocumentWith(ctx, a.Portal, req.TransactionID, doc,
		func(t *store.Transaction, d *store.Document) error {
			next := *ft
			next.DocIDs = slices.Clone(ft.DocIDs)
			for len(next.DocIDs) <= d.Index {
				next.DocIDs = append(next.DocIDs, "")
			}
			next.DocIDs[d.Index] = req.DocID
			err := s.st.AddFireDocument(ctx, t, d, &next)
			if !errors.Is(err, store.ErrConflict) {
				if err != nil {
					return unavailable(err)
				}
				return nil
			}
			fresh, lerr := s.load(ctx, a, req.SubjectID, req.TransactionID, true)
			if lerr != nil {
				return lerr
			}
			if cerr := check(fresh); cerr != nil {
				return cerr
			}
			ft = fresh
			return err
		})
	return notFound(err)
}

func countIDs(ids []string) int {
	n := 0
	for _, id := range ids {
		if id != "" {
			n++
		}
	}
	return n
}

// SignBatch is op 7: the batch is closed and the citizen sent to approve
// it. stopOnError is FIRe's, read as Java's Boolean.parseBoolean does.
func (s *Service) SignBatch(ctx context.Context, a *App, subject, id string, stopOnError bool) (*Started, error) {
	ft, err := s.load(ctx, a, subject, id, true)
	if err != nil {
		return nil, err
	}
	if countIDs(ft.DocIDs) == 0 {
		_ = s.st.DeleteFireTransaction(ctx, id)
		_, _ = s.tx.Cancel(ctx, a.Portal.ID, id)
		return nil, ErrBatchEmpty
	}
	c, err := s.tx.SignBatchStopping(ctx, a.Portal.ID, id, stopOnError)
	if err != nil {
		return nil, notFound(err)
	}
	return &Started{TransactionID: c.ID, RedirectURL: c.RedirectURL}, nil
}

// FIRe's per-document outcomes (dt).
const (
	DtSigned       = ""
	DtPending      = "PENDING"
	DtNotProcessed = "NO_PROCESSED"
	DtAborted      = "ABORTED"
	DtInvalid      = "INVALID_SIGNATURE_OPERATION"
	DtSignError    = "POSTSIGN_ERROR"
)

// BatchDocument is one document of op 8's answer.
type BatchDocument struct {
	ID      string
	OK      bool
	Detail  string // dt
	Message string // errorm
}

// BatchResult is op 8's answer.
type BatchResult struct {
	Provider  string
	Cert      []byte
	Documents []BatchDocument
}

// RecoverBatch is op 8: the outcome of each document, once.
func (s *Service) RecoverBatch(ctx context.Context, a *App, subject, id string) (*BatchResult, error) {
	for range maxRetries {
		ft, err := s.load(ctx, a, subject, id, true)
		if err != nil {
			return nil, err
		}
		if ft.ResultTaken {
			return nil, ErrResultRecovered
		}
		r, err := s.results(ctx, a, id)
		if err != nil {
			return nil, err
		}
		t := r.Transaction
		if !t.State.Final() {
			return nil, errs.Wrap(ErrBatchNotSigned, nil, "the batch is not signed yet (transaction %s)", t.State)
		}
		if t.State != transaction.StateDone {
			// Rejected (507), expired (503), failed: as op 2 reports it.
			return nil, stored(t)
		}
		out := &BatchResult{Provider: Provider}
		if len(r.Chain) > 0 {
			out.Cert = r.Chain[0]
		}
		for i, d := range r.Documents {
			bd := BatchDocument{OK: d.Status == transaction.DocSigned, Message: d.Error}
			if i < len(ft.DocIDs) {
				bd.ID = ft.DocIDs[i]
			}
			switch d.Status {
			case transaction.DocSigned:
			case transaction.DocPending:
				bd.Detail = DtPending
			case transaction.DocNotProcessed:
				bd.Detail = DtNotProcessed
			case transaction.DocAborted:
				bd.Detail = DtAborted
			default:
				bd.Detail = DtSignError
				if d.ErrorCode == transaction.CodeInvalidDocument {
					bd.Detail = DtInvalid
				}
			}
			out.Documents = append(out.Documents, bd)
		}
		ft.ResultTaken = true
		if err := s.st.UpdateFireTransaction(ctx, ft); errors.Is(err, store.ErrConflict) {
			continue
		} else if err != nil {
			return nil, unavailable(err)
		}
		if t.Summary == transaction.SummaryAllFailed {
			_ = s.st.DeleteFireTransaction(ctx, id)
		} else if resultBytes(r) <= resultsCacheBatchBytes {
			s.done.Add(id, r)
		}
		return out, nil
	}
	return nil, unavailable(errors.New("fire batch busy"))
}

// BatchProgress is op 9: the share of documents no longer pending, 1 for
// an empty batch.
func (s *Service) BatchProgress(ctx context.Context, a *App, subject, id string) (float32, error) {
	if _, err := s.load(ctx, a, subject, id, true); err != nil {
		return 0, err
	}
	t, err := s.tx.Get(ctx, a.Portal.ID, id)
	if err != nil {
		return 0, notFound(err)
	}
	if len(t.Documents) == 0 {
		return 1, nil
	}
	pending := 0
	for _, d := range t.Documents {
		if d.Status == transaction.DocPending {
			pending++
		}
	}
	return 1 - float32(pending)/float32(len(t.Documents)), nil
}

// RecoverBatchSign is op 10: one document's signature, once, after op 8.
// The FIRe transaction ends once every document is handed out or failed.
func (s *Service) RecoverBatchSign(ctx context.Context, a *App, subject, id, docID string) ([]byte, error) {
	for range maxRetries {
		ft, err := s.load(ctx, a, subject, id, true)
		if err != nil {
			return nil, err
		}
		if !ft.ResultTaken {
			return nil, errs.Wrap(ErrBatchNotSigned, nil, "recover the batch result (op 8) first")
		}
		idx := slices.Index(ft.DocIDs, docID)
		if idx < 0 || docID == "" {
			return nil, errs.Wrap(ErrUnknownDocument, nil, "docid %q is not in the batch", docID)
		}
		if slices.Contains(ft.Recovered, docID) {
			return nil, ErrDocRecovered
		}
		// load checked the application and subject; the entry is the
		// same transaction's, read by op 8 once it was done.
		r, cached := s.done.Get(id)
		if !cached {
			if r, err = s.results(ctx, a, id); err != nil {
				return nil, err
			}
		}
		if idx >= len(r.Documents) {
			return nil, errs.Wrap(ErrUnknownDocument, nil, "docid %q is not in the batch", docID)
		}
		d := r.Documents[idx]
		if d.Status != transaction.DocSigned {
			return nil, errs.Wrap(ErrBatchFailed, nil, "document %q was not signed: %s", docID, d.Error)
		}
		// Only the hand-out list is written, against the version read:
		// of two requests for one document, one wins and the other
		// reads again and finds it handed out.
		if err := s.st.MarkFireRecovered(ctx, ft, docID); errors.Is(err, store.ErrConflict) {
			continue
		} else if errors.Is(err, store.ErrNotFound) {
			return nil, ErrTransaction
		} else if err != nil {
			return nil, unavailable(err)
		}
		left := 0
		for i, x := range r.Documents {
			if x.Status == transaction.DocSigned && i < len(ft.DocIDs) && !slices.Contains(ft.Recovered, ft.DocIDs[i]) {
				left++
			}
		}
		if left == 0 {
			s.done.Remove(id)
			_ = s.st.DeleteFireTransaction(ctx, id)
		}
		return d.Signature, nil
	}
	return nil, unavailable(errors.New("fire batch busy"))
}

// Purge forgets FIRe transactions past their life.
func (s *Service) Purge(ctx context.Context) (int, error) {
	return s.st.PurgeFireTransactions(ctx, s.now())
}
