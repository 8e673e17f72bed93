package fire

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/transaction"
)

// Upgrades after a grace period (transactions.upgrade_grace). A FIRe
// client asking for LT-LEVEL or LTA-LEVEL on a single CAdES or PAdES
// signature gets it signed at B-T; op 2 raises it once the grace period
// after its signature timestamp has passed, or answers with the grace id
// (the transaction id) and date, after which ops 70 and 71 raise and
// return it, as FIRe's validation platform does. Revocation data is thus
// taken after a revocation made before the signature could be published.
// With no grace period the signature is made at the level asked.

// Grace is FIRe's grace answer: retry op 70 with ID at Date.
type Grace struct {
	ID   string
	Date time.Time
}

func normUpgrade(v string) string { return strings.ToLower(strings.TrimSpace(v)) }

// upgradedCache holds signatures raised by op 2 or op 70 until op 11 or
// op 71 hands them out; a miss (another node, a restart) raises again.
const (
	upgradedCacheSize = 256
)

func newUpgradedCache(ttl time.Duration) *expirable.LRU[string, []byte] {
	return expirable.NewLRU[string, []byte](upgradedCacheSize, nil, ttl)
}

// graceFormat tells whether a document of format f is signed at B-T and
// raised after the grace period when level is asked.
func (s *Service) graceFormat(f signer.Format, level signer.Level) bool {
	return s.tx.UpgradeGrace() > 0 && level.Rank() >= 2 && s.tx.HasTimestamper() &&
		(f == signer.FormatCAdES || f == signer.FormatPAdES)
}

// signedLevel is the level op 1 signed a document of format f at for the
// FIRe upgrade asked at creation.
func (s *Service) signedLevel(f signer.Format, created signer.Level) signer.Level {
	if s.graceFormat(f, created) {
		return signer.LevelT
	}
	return created
}

// raise returns the signature of r's one document at level: as signed
// when that is the level, raised otherwise; a non-nil Grace when the
// grace period has not passed.
func (s *Service) raise(ctx context.Context, ft *store.FireTransaction, r *transaction.Results, level signer.Level) ([]byte, *Grace, error) {
	if len(r.Documents) == 0 {
		return nil, nil, ErrTransaction
	}
	d := r.Documents[0]
	signed := s.signedLevel(d.Format, upgrades[normUpgrade(ft.Upgrade)].level)
	if signed.Rank() < 1 && d.Timestamped {
		signed = signer.LevelT // firma's default level with a TSA
	}
	if level.Rank() >= 1 && !d.Timestamped {
		return nil, nil, errs.Wrap(ErrUpgrade, nil, "upgrade to %s: the signature has no timestamp (no timestamp authority is configured)", level)
	}
	if level.Rank() <= signed.Rank() {
		return d.Signature, nil, nil
	}
	if d.Format != signer.FormatCAdES && d.Format != signer.FormatPAdES {
		return nil, nil, errs.Wrap(ErrUpgrade, nil, "only CAdES and PAdES signatures are raised after signing; ask for the level at op 1")
	}
	if ready := d.TimestampTime.Add(s.tx.UpgradeGrace()); level.Rank() >= 2 && !d.TimestampTime.IsZero() && s.now().Before(ready) {
		return nil, &Grace{ID: ft.ID, Date: ready}, nil
	}
	out, err := s.tx.Upgrade(ctx, transaction.UpgradeRequest{Signature: d.Signature, Digest: d.Digest, Hash: d.Hash, Level: level, Format: d.Format})
	if err != nil {
		var te *transaction.Error
		if errors.As(err, &te) && te.Code == transaction.CodeWrongState && !d.TimestampTime.IsZero() {
			// The service's clock says it is early still.
			return nil, &Grace{ID: ft.ID, Date: d.TimestampTime.Add(s.tx.UpgradeGrace())}, nil
		}
		if transaction.CodeOf(err) == transaction.CodeUnavailable {
			return nil, nil, err
		}
		return nil, nil, errs.Wrap(ErrUpgrade, err, "upgrade to %s: %v", level, err)
	}
	return out, nil, nil
}

// keepForGrace makes the FIRe transaction outlive the grace period, so
// that op 70 finds it under the grace id, and remembers the upgrade
// asked (op 2's may differ from op 1's) for op 71. Within a grace period
// the signature was made at B-T whatever op 1 asked, so the level it was
// signed at still follows from the upgrade kept.
func (s *Service) keepForGrace(ctx context.Context, ft *store.FireTransaction, g *Grace, upgrade string) error {
	if until := g.Date.Add(s.life); until.After(ft.ExpiresAt) || upgrade != ft.Upgrade {
		if until.After(ft.ExpiresAt) {
			ft.ExpiresAt = until
		}
		ft.Upgrade = upgrade
		if err := s.st.UpdateFireTransaction(ctx, ft); err != nil && !errors.Is(err, store.ErrConflict) {
			return unavailable(err)
		}
	}
	return nil
}

// graceTransaction loads the single FIRe transaction a grace id names:
// ops 70 and 71 carry no subjectid, the application is the check.
func (s *Service) graceTransaction(ctx context.Context, a *App, id string) (*store.FireTransaction, *transaction.Results, error) {
	unknownGrace := errs.Wrap(ErrUnknownGraceID, nil, "no signature waits under id %q", id)
	ft, err := s.st.FireTransaction(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, unknownGrace
	}
	if err != nil {
		return nil, nil, unavailable(err)
	}
	if ft.AppID != a.ID || ft.Batch || s.now().After(ft.ExpiresAt) {
		return nil, nil, unknownGrace
	}
	r, err := s.results(ctx, a, id)
	if err != nil {
		if errors.Is(err, ErrTransaction) {
			return nil, nil, unknownGrace
		}
		return nil, nil, err
	}
	if !r.Transaction.State.Final() || stored(r.Transaction) != nil {
		return nil, nil, unknownGrace
	}
	return ft, r, nil
}

// Updated is op 70's answer: the level reached, or a new grace period.
type Updated struct {
	Upgrade string
	Grace   *Grace
}

// UpdatedSign is op 70: the signature under grace id docID raised to
// upgrade (the one asked at op 1 when empty), kept for op 71; or, still
// within the grace period, the date to come back.
func (s *Service) UpdatedSign(ctx context.Context, a *App, docID, upgrade string) (*Updated, error) {
	ft, r, err := s.graceTransaction(ctx, a, docID)
	if err != nil {
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
	sig, g, err := s.raise(ctx, ft, r, u.level)
	if err != nil {
		return nil, err
	}
	if g != nil {
		return &Updated{Grace: g}, s.keepForGrace(ctx, ft, g, upgrade)
	}
	s.upgraded.Add(ft.ID, sig)
	out := &Updated{}
	if u.level != "" {
		out.Upgrade = upgrade
	}
	return out, nil
}

// UpdatedSignResult is op 71: the signature op 70 raised, once; the
// FIRe transaction ends with it. ErrGrace while the grace period lasts.
func (s *Service) UpdatedSignResult(ctx context.Context, a *App, docID string) ([]byte, error) {
	ft, r, err := s.graceTransaction(ctx, a, docID)
	if err != nil {
		return nil, err
	}
	sig, ok := s.upgraded.Get(ft.ID)
	if !ok {
		var g *Grace
		if sig, g, err = s.raise(ctx, ft, r, upgrades[normUpgrade(ft.Upgrade)].level); err != nil {
			return nil, err
		}
		if g != nil {
			return nil, errs.Wrap(ErrGrace, nil, "the signature may be raised from %s (grace period)", g.Date.UTC().Format(time.RFC3339))
		}
	}
	s.upgraded.Remove(ft.ID)
	if err := s.st.DeleteFireTransaction(ctx, ft.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.WarnContext(ctx, "fire transaction not deleted after its upgraded result", "transaction", ft.ID, "err", err)
	}
	return sig, nil
}
