package csc

import (
	"context"
	"strings"

	"github.com/firma-cloud/firma/store"
)

// The citizen's own ceremony (OAuth 2.0 code flow, package csc/oauth)
// uses the same credentials, codes, attempt policy and SADs as the
// explicit path, with one difference that matters: the citizen types the
// SMS code into firma's page, never the client's. These methods serve it
// whether or not the explicit path is on.

// ConsentCredential is what the consent page shows of a credential.
type ConsentCredential struct {
	ID           string
	SubjectDN    string
	IssuerDN     string
	SerialNumber string
	ValidTo      string // generalized time, as credentials/info
	KeyID        string
}

// consentCredential loads the credential and checks that citizenID (the
// citizen signed in on the page) owns it and may sign with it now.
func (s *Service) consentCredential(ctx context.Context, credentialID, citizenID string) (*credential, *store.Citizen, error) {
	c, err := s.credential(ctx, credentialID)
	if err != nil {
		return nil, nil, err
	}
	if citizenID != "" && !strings.EqualFold(c.cert.Owner, citizenID) {
		return nil, nil, denied("the credential belongs to another citizen")
	}
	cz, err := s.mayUse(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	return c, cz, nil
}

// CheckCredential answers whether the credential exists and, when
// citizenID is not empty, whether that citizen owns it and may sign with
// it now, and describes it for the consent page.
func (s *Service) CheckCredential(ctx context.Context, credentialID, citizenID string) (*ConsentCredential, error) {
	var (
		c   *credential
		err error
	)
	if citizenID == "" {
		c, err = s.credential(ctx, credentialID)
	} else {
		c, _, err = s.consentCredential(ctx, credentialID, citizenID)
	}
	if err != nil {
		return nil, err
	}
	out := &ConsentCredential{ID: c.cert.ID, KeyID: c.cert.KeyID}
	if x := c.cert.Cert; x != nil {
		out.SubjectDN, out.IssuerDN = x.Subject.String(), x.Issuer.String()
		out.SerialNumber = strings.ToUpper(x.SerialNumber.Text(16))
		out.ValidTo = x.NotAfter.UTC().Format(generalized)
	}
	return out, nil
}

// ConsentSendOTP sends the holder the SMS code for the caller's request,
// after checking citizenID owns the credential and may sign.
func (s *Service) ConsentSendOTP(ctx context.Context, caller Caller, credentialID, citizenID string) error {
	c, cz, err := s.consentCredential(ctx, credentialID, citizenID)
	if err != nil {
		return err
	}
	return s.sendOTP(ctx, caller, c, cz)
}

// ConsentVerifyOTP checks the code the citizen typed on firma's page for
// exactly these digests, under the one attempt policy (the holder's
// lockout holds for every client and the approval page alike).
func (s *Service) ConsentVerifyOTP(ctx context.Context, caller Caller, credentialID, citizenID, hashAlgo, otp string, digests [][]byte) error {
	h, ok := hashByOID[hashAlgo]
	if !ok {
		return invalid("hashAlgorithmOID %q: want the OID of SHA-256, SHA-384 or SHA-512", hashAlgo)
	}
	c, cz, err := s.consentCredential(ctx, credentialID, citizenID)
	if err != nil {
		return err
	}
	return s.verifyOTP(ctx, caller, c, cz, otp, auditDocs(h, digests), "oauth2code")
}

// IssueSAD returns a SAD (the OAuth access token of credential scope) for
// exactly digests, which the citizen approved with a checked code.
func (s *Service) IssueSAD(ctx context.Context, caller Caller, credentialID, citizenID, hashAlgo string, digests [][]byte) (*Authorization, error) {
	h, ok := hashByOID[hashAlgo]
	if !ok {
		return nil, invalid("hashAlgorithmOID %q: want the OID of SHA-256, SHA-384 or SHA-512", hashAlgo)
	}
	for i, d := range digests {
		if len(d) != h.Size() {
			return nil, invalid("documentDigests[%d] is not a %s digest", i, h)
		}
	}
	c, cz, err := s.consentCredential(ctx, credentialID, citizenID)
	if err != nil {
		return nil, err
	}
	return s.issueSAD(ctx, caller, c, cz, hashAlgo, len(digests), digests)
}

// ParseDigest decodes one digest under the service's base64 rule and
// checks its length for the hash algorithm OID.
func ParseDigest(b64, hashAlgo string) ([]byte, error) {
	h, ok := hashByOID[hashAlgo]
	if !ok {
		return nil, invalid("hashAlgorithmOID %q: want the OID of SHA-256, SHA-384 or SHA-512", hashAlgo)
	}
	d, err := decodeHashes([]string{b64}, h)
	if err != nil {
		return nil, err
	}
	return d[0], nil
}

// HashName names a hash algorithm OID for people ("SHA-256"), "" if
// unknown.
func HashName(oid string) string {
	if h, ok := hashByOID[oid]; ok {
		return h.String()
	}
	return ""
}

// MaxSignatures is the most digests one authorisation may carry.
func (s *Service) MaxSignatures() int { return s.opt.MaxSignatures }

// TokenCaller finds the caller a SAD used as a bearer token (the OAuth
// access token of credential scope) belongs to, with the citizen it is
// for; ok false when tok is no live SAD.
func (s *Service) TokenCaller(ctx context.Context, tok string) (Caller, bool) {
	sad, err := s.opt.Store.SAD(ctx, sadID(tok))
	if err != nil || !s.now().Before(sad.ExpiresAt) {
		if s.serviceTokens != nil {
			if client, ok := s.serviceTokens(ctx, tok); ok {
				// Service scope: the client as with its API key.
				return Caller{ID: client}, true
			}
		}
		return Caller{}, false
	}
	return Caller{ID: sad.Caller, Token: tok, Citizen: sad.CitizenID}, true
}

// SetServiceTokens lets TokenCaller accept the authorisation server's
// service-scope access tokens (client_credentials): lookup returns the
// client a live one belongs to. csc/oauth sets it in New.
func (s *Service) SetServiceTokens(lookup func(ctx context.Context, tok string) (client string, ok bool)) {
	s.serviceTokens = lookup
}

// RevokeToken ends a SAD at once: every hash it has not signed is spent.
// Only its caller may.
func (s *Service) RevokeToken(ctx context.Context, caller Caller, tok string) error {
	sad, err := s.opt.Store.SAD(ctx, sadID(tok))
	if err != nil || sad.Caller != caller.ID {
		// RFC 7009: an unknown token is revoked already.
		return nil
	}
	var left [][]byte
	for _, d := range sad.Hashes {
		if !containsHash(sad.Spent, d) {
			left = append(left, d)
		}
	}
	if len(left) == 0 {
		return nil
	}
	if err := s.opt.Store.ReserveSAD(ctx, sad.ID, left, s.now().UTC()); err != nil {
		return nil // expired or raced: nothing left to sign either way
	}
	s.log.InfoContext(ctx, "csc token revoked", "portal", caller.ID, "credential", sad.CredentialID, "unsigned", len(left))
	return nil
}
