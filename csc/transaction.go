package csc

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"time"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/store"
)

// The methods of CSC v2.2 around a credential authorisation besides
// credentials/authorize itself: credentials/getChallenge (11.8),
// credentials/authorizeCheck (11.7), credentials/extendTransaction (11.9)
// and auth/revoke (11.3).

// DefaultTransactionTTL bounds how long extendTransaction can keep one
// authorisation alive, from the citizen's approval: a SAD is renewed, the
// citizen's consent is not.
const DefaultTransactionTTL = 30 * time.Minute

// GetChallenge serves credentials/getChallenge for the credential's one
// authentication object, the SMS code ("otp", PasswordOOB): the code goes
// out of band, so the answer has no body (HTTP 204), as for
// credentials/sendOTP. It is part of the explicit path and refused with
// it.
func (s *Service) GetChallenge(ctx context.Context, caller Caller, credentialID, authObjectID string) error {
	if s.opt.ExplicitOff {
		return errExplicitOff("credentials/getChallenge")
	}
	switch {
	case strings.TrimSpace(credentialID) == "":
		return invalid("missing string parameter credentialID")
	case authObjectID == "":
		return invalid("missing string parameter authObjectID: the credential's authentication object is \"otp\"")
	case !strings.EqualFold(authObjectID, "otp"):
		return invalid("invalid parameter authObjectID %q: the credential's only authentication object is \"otp\" (the SMS code)", authObjectID)
	}
	return s.SendOTP(ctx, caller, credentialID)
}

// AuthorizeCheck serves credentials/authorizeCheck, the poll of an
// authorisation that credentials/authorize answered with HTTP 202 and a
// handle. Here credentials/authorize always decides at once (the SMS code
// is checked in the call), so it never issues a handle and every handle
// is an invalid one; the method is answered, in the CSC form, so that a
// client polling by the specification learns why.
func (s *Service) AuthorizeCheck(ctx context.Context, caller Caller, handle string) error {
	if s.opt.ExplicitOff {
		return errExplicitOff("credentials/authorizeCheck")
	}
	if handle == "" {
		return invalid("missing string parameter handle")
	}
	return invalid("invalid parameter handle: credentials/authorize answers synchronously on this service (HTTP 200 with the SAD) and issues no handles")
}

// ExtendRequest is credentials/extendTransaction's input, decoded.
type ExtendRequest struct {
	CredentialID  string
	SAD           string
	Hashes        []string // base64; empty: every hash not yet signed
	HashAlgorithm string
}

// ExtendTransaction replaces a live SAD with a new one for the hashes it
// has not signed yet (or the subset given), with a new lifetime. The old
// SAD ends in the same step (its remaining hashes are spent in one
// conditional update), so of two racing extensions one wins. New hashes
// cannot be added: they need the citizen. The chain of extensions ends
// Options.TransactionTTL after the citizen's approval.
func (s *Service) ExtendTransaction(ctx context.Context, caller Caller, r ExtendRequest) (*Authorization, error) {
	if r.SAD == "" {
		r.SAD = caller.Token
	}
	switch {
	case strings.TrimSpace(r.CredentialID) == "":
		return nil, invalid("missing string parameter credentialID")
	case r.SAD == "":
		return nil, invalid("missing string parameter SAD")
	}
	sad, now, err := s.liveSAD(ctx, caller, r.CredentialID, r.SAD)
	if err != nil {
		return nil, err
	}
	if r.HashAlgorithm != "" && r.HashAlgorithm != sad.HashAlgo {
		return nil, invalid("hashAlgorithmOID %s is not the %s the SAD was authorised for", r.HashAlgorithm, sad.HashAlgo)
	}
	end := sad.CreatedAt.Add(s.opt.TransactionTTL)
	if !now.Before(end) {
		return nil, invalid("the transaction cannot be extended past %s (%s after the citizen's authorisation); authorize again",
			end.UTC().Format(time.RFC3339), s.opt.TransactionTTL)
	}
	var left [][]byte
	for _, d := range sad.Hashes {
		if !containsHash(sad.Spent, d) {
			left = append(left, d)
		}
	}
	if len(left) == 0 {
		return nil, invalid("the SAD has signed every hash it authorised: nothing is left to extend")
	}
	keep := left
	if len(r.Hashes) > 0 {
		if keep, err = decodeHashes(r.Hashes, hashByOID[sad.HashAlgo]); err != nil {
			return nil, err
		}
		for i, d := range keep {
			if !containsHash(left, d) {
				return nil, invalid("Hash is not authorized by the SAD: hashes[%d] is not one it lists unsigned; new hashes need a new authorisation", i)
			}
		}
	}
	c, err := s.credential(ctx, sad.CredentialID)
	if err != nil {
		return nil, err
	}
	if c.cert.KeyID != sad.KeyID {
		return nil, denied("the credential's key changed since the SAD was issued; authorize again")
	}
	cz, err := s.mayUse(ctx, c)
	if err != nil {
		return nil, err
	}
	if cz.ID != sad.CitizenID {
		return nil, denied("the credential's holder changed since the SAD was issued; authorize again")
	}
	// The old SAD ends here, for every hash it had left, or not at all.
	if err := s.opt.Store.ReserveSAD(ctx, sad.ID, left, now); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, invalid("another request used or extended the SAD at the same time; each SAD is extended once")
		}
		return nil, internal(err)
	}
	tok := make([]byte, 32)
	if _, err := rand.Read(tok); err != nil {
		s.giveBack(ctx, sad.ID, left)
		return nil, internal(err)
	}
	text := base64.RawURLEncoding.EncodeToString(tok)
	expires := now.Add(s.opt.SADTTL)
	if end.Before(expires) {
		expires = end
	}
	// CreatedAt stays the approval's: it is what bounds the chain.
	next := &store.SAD{ID: sadID(text), CredentialID: sad.CredentialID, Caller: sad.Caller, CitizenID: sad.CitizenID, KeyID: sad.KeyID,
		HashAlgo: sad.HashAlgo, NumSignatures: len(keep), Hashes: keep, CreatedAt: sad.CreatedAt, ExpiresAt: expires}
	if err := s.opt.Store.CreateSAD(ctx, next); err != nil {
		s.giveBack(ctx, sad.ID, left)
		return nil, internal(err)
	}
	s.m.extensions.Inc()
	s.log.InfoContext(ctx, "csc sad extended", "portal", caller.ID, "credential", sad.CredentialID, "hashes", len(keep),
		"expires", expires.UTC().Format(time.RFC3339))
	return &Authorization{SAD: text, ExpiresIn: max(1, int(expires.Sub(now).Round(time.Second)/time.Second))}, nil
}

// TokenRevoker revokes the authorisation server's service-scope tokens
// (access or refresh) of a client: csc/oauth sets it with
// SetTokenRevoker. hint is "", "access_token" or "refresh_token".
type TokenRevoker func(ctx context.Context, client, token, hint string) error

// SetTokenRevoker serves auth/revoke with the authorisation server's
// tokens; without it, auth/revoke is not offered.
func (s *Service) SetTokenRevoker(r TokenRevoker) { s.revoker = r }

// AuthRevoke serves auth/revoke (RFC 7009 semantics): the caller's own
// service-scope access or refresh token ends (a refresh token with every
// access token of its grant); a token that is unknown, expired or of
// another client is revoked already, and the answer says nothing more.
func (s *Service) AuthRevoke(ctx context.Context, caller Caller, token, hint string) error {
	if s.revoker == nil {
		return errs.New(errs.FailedPrecondition, CodeInvalidRequest, "auth/revoke is not offered: this service issues no service tokens (no OAuth 2.0 server)")
	}
	switch hint {
	case "", "access_token", "refresh_token":
	default:
		return invalid("invalid parameter token_type_hint %q: access_token or refresh_token", hint)
	}
	if token == "" {
		return invalid("missing string parameter token")
	}
	if err := s.revoker(ctx, caller.ID, token, hint); err != nil {
		return err
	}
	if hint != "refresh_token" {
		// A credential-scope token (a SAD) of the caller ends too.
		return s.RevokeToken(ctx, caller, token)
	}
	return nil
}
