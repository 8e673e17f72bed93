package csc

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/store"
)

// InfoResponse is the body of info (CSC v2.2 section 11.1). Every member
// the specification requires is always present; the EUDI wallet's parser
// rejects the whole answer when signAlgorithms or signature_formats is
// missing.
type InfoResponse struct {
	Specs       string   `json:"specs"`
	Name        string   `json:"name"`
	Logo        string   `json:"logo"`
	Region      string   `json:"region"`
	Lang        string   `json:"lang"`
	Description string   `json:"description"`
	AuthType    []string `json:"authType"`
	// OAuth2 is the base URI of the OAuth 2.0 authorisation server, set
	// only when authType lists oauth2code or oauth2client.
	OAuth2                    string           `json:"oauth2,omitempty"`
	AsynchronousOperationMode bool             `json:"asynchronousOperationMode"`
	Methods                   []string         `json:"methods"`
	ValidationInfo            bool             `json:"validationInfo"`
	SignAlgorithms            SignAlgorithms   `json:"signAlgorithms"`
	SignatureFormats          SignatureFormats `json:"signature_formats"`
	ConformanceLevels         []string         `json:"conformance_levels,omitempty"`
}

// SignAlgorithms lists the signAlgo OIDs signHash takes, whatever the key
// type; credentials/info narrows them to a credential's key.
type SignAlgorithms struct {
	Algos []string `json:"algos"`
}

// SignatureFormats are the formats signDoc builds (C: CAdES, P: PAdES)
// and, for each, the envelope properties it offers.
type SignatureFormats struct {
	Formats            []string   `json:"formats"`
	EnvelopeProperties [][]string `json:"envelope_properties"`
}

// Methods lists the API methods served besides info (which every client
// may call without credentials).
var Methods = []string{"credentials/list", "credentials/info", "credentials/sendOTP", "credentials/authorize", "credentials/getChallenge",
	"credentials/authorizeCheck", "credentials/extendTransaction", "signatures/signHash", "signatures/signDoc", "signatures/timestamp", "auth/revoke"}

// explicitMethods are the explicit path's, off with it.
var explicitMethods = []string{"credentials/sendOTP", "credentials/authorize", "credentials/getChallenge", "credentials/authorizeCheck"}

// Info describes the service.
func (s *Service) Info() *InfoResponse {
	out := &InfoResponse{Specs: Spec, Name: s.opt.Name, Logo: s.opt.Logo, Region: s.opt.Region, Lang: s.opt.Lang,
		Description: s.opt.Description, AuthType: []string{"external", "tls"},
		Methods:           append([]string{"info"}, s.Methods()...),
		SignAlgorithms:    SignAlgorithms{Algos: allSignAlgos()},
		SignatureFormats:  SignatureFormats{Formats: SignDocFormats, EnvelopeProperties: SignDocEnvelopes},
		ConformanceLevels: SignDocConformanceLevels}
	if s.opt.Timestamper != nil {
		out.ConformanceLevels = append(slices.Clone(SignDocConformanceLevels), "Ades-B-T")
	}
	if s.opt.OAuth2URL != "" {
		out.AuthType = append(out.AuthType, "oauth2code", "oauth2client")
		out.OAuth2 = s.opt.OAuth2URL
		out.Methods = append(out.Methods, OAuthMethods...)
	}
	return out
}

// OAuthMethods are the authorisation server's endpoints, listed in info
// when it is served.
var OAuthMethods = []string{"oauth2/authorize", "oauth2/pushed_authorize", "oauth2/token", "oauth2/revoke"}

// Methods lists the methods this service serves besides info: the
// explicit path's only while it is on, signatures/timestamp with a TSA,
// auth/revoke with the OAuth 2.0 server's service tokens.
func (s *Service) Methods() []string {
	out := make([]string, 0, len(Methods))
	for _, m := range Methods {
		if s.opt.ExplicitOff && slices.Contains(explicitMethods, m) {
			continue
		}
		if m == "auth/revoke" && s.revoker == nil {
			continue
		}
		if m == "signatures/timestamp" && s.opt.Timestamper == nil {
			continue
		}
		out = append(out, m)
	}
	return out
}

// InfoRequest is what credentials/info and credentials/list ask to see.
type InfoRequest struct {
	Certificates string // none, single (default) or chain
	CertInfo     bool
	AuthInfo     bool
	// Lang is the language the client asks descriptions in; firma has one
	// (Options.Lang) and says which in the answer's lang.
	Lang string
}

// CredentialInfo is credentials/info's body, and one credentialInfos
// entry of credentials/list (with CredentialID set).
type CredentialInfo struct {
	CredentialID       string    `json:"credentialID,omitempty"`
	Description        string    `json:"description,omitempty"`
	SignatureQualifier string    `json:"signatureQualifier,omitempty"`
	Key                KeyInfo   `json:"key"`
	Cert               *CertInfo `json:"cert,omitempty"`
	// Auth is always present (v2 clients require it); authInfo only adds
	// the description of each object.
	Auth *AuthInfo `json:"auth"`
	// AuthMode and OTP repeat Auth in the CSC v1 form that many clients
	// still read.
	AuthMode  string   `json:"authMode"`
	OTP       *OTPInfo `json:"OTP,omitempty"`
	SCAL      string   `json:"SCAL"`
	Multisign int      `json:"multisign"`
	Lang      string   `json:"lang,omitempty"`
}

// KeyInfo describes the signing key.
type KeyInfo struct {
	Status string   `json:"status"` // enabled or disabled
	Algo   []string `json:"algo"`
	Len    int      `json:"len"`
	Curve  string   `json:"curve,omitempty"`
}

// CertInfo describes the certificate and its chain.
type CertInfo struct {
	Status       string   `json:"status"` // valid, expired, revoked
	Certificates []string `json:"certificates,omitempty"`
	IssuerDN     string   `json:"issuerDN,omitempty"`
	SerialNumber string   `json:"serialNumber,omitempty"`
	SubjectDN    string   `json:"subjectDN,omitempty"`
	ValidFrom    string   `json:"validFrom,omitempty"`
	ValidTo      string   `json:"validTo,omitempty"`
}

// AuthInfo is how signing with the credential is authorised.
type AuthInfo struct {
	Mode       string       `json:"mode"`
	Expression string       `json:"expression,omitempty"`
	Objects    []AuthObject `json:"objects"`
}

// AuthObject is one input of the authorisation. Type is one of the CSC v2
// types: Password, PasswordOOB, ChallengeResponse, ChallengeResponseOOB.
type AuthObject struct {
	Type        string `json:"type"`
	ID          string `json:"id"`
	Format      string `json:"format,omitempty"`
	Label       string `json:"label,omitempty"`
	Description string `json:"description,omitempty"`
	Generator   string `json:"generator,omitempty"`
}

// OTPInfo is the CSC v1 description of the OTP.
type OTPInfo struct {
	Presence    string `json:"presence"`
	Type        string `json:"type"`
	Format      string `json:"format"`
	Label       string `json:"label"`
	Description string `json:"description"`
	ID          string `json:"ID"`
	Provider    string `json:"provider"`
}

// generalized is the time format CSC uses for validFrom and validTo.
const generalized = "20060102150405Z"

func (s *Service) credentialInfo(c *credential, in InfoRequest) (*CredentialInfo, error) {
	now := s.now()
	// SCAL 1 while the explicit path is on: there the client collects the
	// citizen's code in its own page and relays it, which ETSI TS 119 432
	// 5.3.2 says should not satisfy SCAL2 (the hashes are still bound to
	// the SAD). SCAL 2 only when the citizen's own page (OAuth 2.0) is the
	// one way in.
	scal := "1"
	if s.opt.OAuth2URL != "" && s.opt.ExplicitOff {
		scal = "2"
	}
	out := &CredentialInfo{
		Description: "Cl@ve Firma certificate of " + c.cert.Owner,
		AuthMode:    "explicit",
		SCAL:        scal,
		Multisign:   s.opt.MaxSignatures,
		Lang:        s.opt.Lang,
	}
	out.Key.Status = "enabled"
	if c.unusable(now) != "" {
		out.Key.Status = "disabled"
	}
	if c.key != nil && c.key.Type != "" {
		out.Key.Algo = keyAlgos(c.key.Type)
		out.Key.Len, out.Key.Curve = keyInfo(c.key.Type)
	} else {
		out.Key.Algo = []string{}
	}
	certs := in.Certificates
	if certs == "" {
		certs = "single"
	}
	switch certs {
	case "none", "single", "chain":
	default:
		return nil, invalid("certificates must be none, single or chain, not %q", certs)
	}
	cert := &CertInfo{Status: certStatus(c.cert, now)}
	if certs != "none" && c.cert.Cert != nil {
		cert.Certificates = []string{base64.StdEncoding.EncodeToString(c.cert.DER)}
		if certs == "chain" {
			if iss := s.opt.Certificates.Issuing(); iss != nil {
				cert.Certificates = append(cert.Certificates, base64.StdEncoding.EncodeToString(iss.Raw))
			}
			if root := s.opt.Certificates.Root(); root != nil {
				cert.Certificates = append(cert.Certificates, base64.StdEncoding.EncodeToString(root.Raw))
			}
		}
	}
	if in.CertInfo && c.cert.Cert != nil {
		x := c.cert.Cert
		cert.IssuerDN = x.Issuer.String()
		cert.SubjectDN = x.Subject.String()
		cert.SerialNumber = strings.ToUpper(x.SerialNumber.Text(16))
		cert.ValidFrom = x.NotBefore.UTC().Format(generalized)
		cert.ValidTo = x.NotAfter.UTC().Format(generalized)
	}
	out.Cert = cert
	ttl := s.opt.Rules.TTL
	a := s.opt.Attempts.Rules()
	desc := fmt.Sprintf("6-digit code sent by SMS to the holder's mobile by credentials/sendOTP; valid %d minutes; %d wrong codes from any portal lock the holder's codes for %d minutes",
		int(ttl.Minutes()), a.MaxFailures, int(a.Lockout.Minutes()))
	// The code reaches the citizen out of band (SMS, after
	// credentials/sendOTP) and comes back in authData as {"id": "otp"}.
	obj := AuthObject{Type: "PasswordOOB", ID: "otp", Format: "N", Label: "SMS code", Generator: "credentials/sendOTP"}
	if in.AuthInfo {
		obj.Description = desc
	}
	out.Auth = &AuthInfo{Mode: "explicit", Expression: "otp", Objects: []AuthObject{obj}}
	out.OTP = &OTPInfo{Presence: "true", Type: "online", Format: "N", Label: "SMS code", Description: desc, ID: "otp", Provider: "Cl@ve Firma SMS"}
	if s.opt.OAuth2URL != "" {
		// The v2 answer names the stronger way; v1's authMode keeps
		// telling v1 clients of the explicit path while it is on.
		out.Auth = &AuthInfo{Mode: "oauth2code", Objects: []AuthObject{}}
		if s.opt.ExplicitOff {
			out.AuthMode, out.OTP = "oauth2code", nil
		}
	}
	return out, nil
}

func certStatus(c *ca.Certificate, now time.Time) string {
	switch {
	case c.Status == store.CertRevoked:
		return "revoked"
	case c.Status == store.CertExpired || now.After(c.NotAfter):
		return "expired"
	}
	return "valid"
}

// CredentialInfo returns credentials/info for a credential.
func (s *Service) CredentialInfo(ctx context.Context, caller Caller, credentialID string, in InfoRequest) (*CredentialInfo, error) {
	c, err := s.credential(ctx, credentialID)
	if err != nil {
		return nil, err
	}
	return s.credentialInfo(c, in)
}

// ListRequest is credentials/list's input, decoded.
type ListRequest struct {
	UserID     string
	CredInfo   bool // credentialInfo in v2, credInfo in v1
	OnlyValid  bool
	MaxResults int
	PageToken  string
	Info       InfoRequest
}

// ListResponse is credentials/list's body.
type ListResponse struct {
	CredentialIDs   []string          `json:"credentialIDs"`
	CredentialInfos []*CredentialInfo `json:"credentialInfos,omitempty"`
	OnlyValid       bool              `json:"onlyValid,omitempty"`
	NextPageToken   string            `json:"nextPageToken,omitempty"`
}

// List returns the credentials of the citizen the caller names. An
// unknown citizen has none, so the answer does not say who is registered.
func (s *Service) List(ctx context.Context, caller Caller, r ListRequest) (*ListResponse, error) {
	if strings.TrimSpace(r.UserID) == "" {
		return nil, invalid("missing string parameter userID: the DNI/NIE of the citizen the portal acts for")
	}
	id, err := registry.NormalizeID("userID", r.UserID)
	if err != nil {
		return nil, invalid("userID is not a valid DNI/NIE")
	}
	limit := r.MaxResults
	if limit <= 0 || limit > 100 {
		limit = 100
	}
	out := &ListResponse{CredentialIDs: []string{}, OnlyValid: r.OnlyValid}
	if _, err := s.opt.Citizens.Citizen(ctx, id); err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, registry.ErrNotFound) {
			return out, nil
		}
		return nil, internal(err)
	}
	status := ""
	if r.OnlyValid {
		status = store.CertValid
	}
	// One more than asked tells whether there is a next page.
	certs, err := s.opt.Certificates.Certificates(ctx, ca.ListOptions{Citizen: id, Status: status, After: r.PageToken, Limit: limit + 1})
	if err != nil {
		return nil, internal(err)
	}
	now := s.now()
	for i, c := range certs {
		if i == limit {
			out.NextPageToken = certs[limit-1].ID
			break
		}
		if c.Status == store.CertPending || c.KeyID == "" {
			continue
		}
		if r.OnlyValid && now.After(c.NotAfter) {
			continue
		}
		out.CredentialIDs = append(out.CredentialIDs, c.ID)
		if r.CredInfo {
			cred, err := s.credential(ctx, c.ID)
			if err != nil {
				return nil, err
			}
			info, err := s.credentialInfo(cred, r.Info)
			if err != nil {
				return nil, err
			}
			info.CredentialID = c.ID
			out.CredentialInfos = append(out.CredentialInfos, info)
		}
	}
	s.log.InfoContext(ctx, "csc credentials listed", "portal", caller.ID, "count", len(out.CredentialIDs))
	return out, nil
}
