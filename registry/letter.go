package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/store"
)

// maxPendingLetters bounds the letters a DNI/NIE can have on their way, so
// the postal outbox cannot be flooded for one address.
const maxPendingLetters = 3

// LetterRequest is the receipt of an invitation-letter request. The CSV
// itself travels only in the letter.
type LetterRequest struct {
	ID        string
	CitizenID string
	ExpiresAt time.Time
}

// RequestLetter starts an invitation-letter registration: a letter with a
// fresh 16-character CSV is put in the letter outbox, addressed to the
// fiscal address on record for the DNI/NIE.
func (r *Service) RequestLetter(ctx context.Context, id string) (*LetterRequest, error) {
	req, err := r.requestLetter(ctx, id)
	return req, r.fail(policy.InvitationLetter, err)
}

func (r *Service) requestLetter(ctx context.Context, id string) (*LetterRequest, error) {
	id, err := NormalizeID("id", id)
	if err != nil {
		return nil, err
	}
	if c, err := r.st.Citizen(ctx, id); err == nil && c.Status != StatusRemoved {
		if _, err := policy.ChangeLevel(policy.Level(c.Level), policy.InvitationLetter); err != nil {
			return nil, err
		}
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("request letter: %w", err)
	}
	rec, err := r.st.FiscalRecord(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w; register in person at a registry office or with an electronic certificate", id, ErrNoFiscalAddress)
	}
	if err != nil {
		return nil, fmt.Errorf("request letter: %w", err)
	}
	now := r.now().UTC()
	old, err := r.st.Codes(ctx, id, kindLetter)
	if err != nil {
		return nil, fmt.Errorf("request letter: %w", err)
	}
	pending := 0
	for _, o := range old {
		if o.UsedAt.IsZero() && now.Before(o.ExpiresAt) {
			pending++
		}
	}
	if pending >= maxPendingLetters {
		return nil, fmt.Errorf("%s: %d %w; use one of them or wait until they expire", id, pending, ErrLettersPending)
	}
	csv, err := randomCode(csvAlphabet, csvLength)
	if err != nil {
		return nil, err
	}
	lid, err := randomID()
	if err != nil {
		return nil, err
	}
	code := &store.Code{ID: lid, Kind: kindLetter, CitizenID: id, Hash: codeHash(kindLetter, id, csv),
		CreatedAt: now, ExpiresAt: now.Add(r.opt.LetterTTL)}
	if err := r.st.CreateCode(ctx, code); err != nil {
		return nil, fmt.Errorf("request letter: %w", err)
	}
	letter := &store.Letter{ID: lid, CitizenID: id, Address: rec.Address, CreatedAt: now,
		Body: letterBody(rec, csv, code.ExpiresAt, r.opt.ServiceURL)}
	if err := r.st.PutLetter(ctx, letter); err != nil {
		// Void the code: a CSV nobody was sent must not stay redeemable.
		r.st.UseCode(ctx, lid, now)
		return nil, fmt.Errorf("request letter: %w", err)
	}
	r.log.InfoContext(ctx, "invitation letter queued", "citizen", id, "letter", lid)
	return &LetterRequest{ID: lid, CitizenID: id, ExpiresAt: code.ExpiresAt}, nil
}

func letterBody(rec *store.FiscalRecord, csv string, expires time.Time, url string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n%s\n\n", rec.GivenName, rec.Surnames, rec.Address)
	b.WriteString("Cl@ve registration: invitation letter\n\n")
	fmt.Fprintf(&b, "Secure verification code (CSV): %s\n", csv)
	fmt.Fprintf(&b, "Valid until: %s\n\n", expires.Format("2006-01-02"))
	fmt.Fprintf(&b, "To complete your registration, go to %s, choose \"I already have an invitation letter\",\n", url)
	b.WriteString("enter your DNI/NIE, this CSV, your mobile number and e-mail address, and accept the conditions.\n")
	b.WriteString("The code can be used once. Registration by letter gives the basic level.\n")
	return b.String()
}

// Redemption is the second stage of an invitation-letter registration.
type Redemption struct {
	ID               string // DNI or NIE
	CSV              string
	Mobile           string
	Email            string
	AcceptConditions bool
}

// RedeemLetter completes an invitation-letter registration with the CSV
// from the letter: basic level and an activation code.
func (r *Service) RedeemLetter(ctx context.Context, in Redemption) (*Confirmation, error) {
	c, err := r.redeemLetter(ctx, in)
	return c, r.fail(policy.InvitationLetter, err)
}

func (r *Service) redeemLetter(ctx context.Context, in Redemption) (*Confirmation, error) {
	id, err := NormalizeID("id", in.ID)
	if err != nil {
		return nil, err
	}
	csv := cleanCode(in.CSV)
	if len(csv) != csvLength || strings.Trim(csv, csvAlphabet) != "" {
		return nil, fieldErr("csv", "must be the 16 digits and capital letters printed on the letter")
	}
	mobile, err := NormalizeMobile("mobile", in.Mobile)
	if err != nil {
		return nil, err
	}
	email, err := NormalizeEmail("email", in.Email)
	if err != nil {
		return nil, err
	}
	if !in.AcceptConditions {
		return nil, ErrConditions
	}
	rec, err := r.st.FiscalRecord(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("csv: %w", ErrCodeInvalid)
	}
	if err != nil {
		return nil, fmt.Errorf("redeem letter: %w", err)
	}
	if _, err := r.checkCode(ctx, id, kindLetter, csv); err != nil {
		return nil, fmt.Errorf("csv: %w", err)
	}
	return r.enrol(ctx, Person{ID: id, GivenName: rec.GivenName, Surnames: rec.Surnames, Mobile: mobile, Email: email},
		policy.InvitationLetter, citizenActor(id))
}

// PutFiscalRecord records the name and fiscal address the tax
// administration holds for a DNI/NIE (the addresses letters go to).
func (r *Service) PutFiscalRecord(ctx context.Context, id, givenName, surnames, address string) error {
	rec, err := normalizeFiscal(id, givenName, surnames, address)
	if err != nil {
		return err
	}
	rec.UpdatedAt = r.now().UTC()
	return r.st.PutFiscalRecord(ctx, rec)
}

func normalizeFiscal(id, givenName, surnames, address string) (*store.FiscalRecord, error) {
	var err error
	rec := &store.FiscalRecord{}
	if rec.CitizenID, err = NormalizeID("id", id); err != nil {
		return nil, err
	}
	if rec.GivenName, err = NormalizeName("given_name", givenName); err != nil {
		return nil, err
	}
	if rec.Surnames, err = NormalizeName("surnames", surnames); err != nil {
		return nil, err
	}
	rec.Address = strings.Join(strings.Fields(address), " ")
	if len(rec.Address) < 5 || len(rec.Address) > 300 {
		return nil, fieldErr("fiscal_address", "must be a postal address of 5 to 300 characters")
	}
	return rec, nil
}

// Letters lists the letter outbox, newest first, for one DNI/NIE if set.
func (r *Service) Letters(ctx context.Context, id string, limit int) ([]*store.Letter, error) {
	if id != "" {
		var err error
		if id, err = NormalizeID("id", id); err != nil {
			return nil, err
		}
	}
	return r.st.Letters(ctx, id, limit)
}
