package cschttp

import (
	"context"

	"github.com/firma-cloud/firma/csc"
)

type getChallengeBody struct {
	CredentialID string `json:"credentialID"`
	AuthObjectID string `json:"authObjectID"`
	ClientData   string `json:"clientData"`
}

// serveGetChallenge answers 204: the challenge (the SMS code) goes out of
// band.
func (s *server) serveGetChallenge(ctx context.Context, c csc.Caller, body []byte) (any, error) {
	var b getChallengeBody
	if err := decode(body, &b); err != nil {
		return nil, err
	}
	return nil, s.svc.GetChallenge(ctx, c, b.CredentialID, b.AuthObjectID)
}

type authorizeCheckBody struct {
	Handle     string `json:"handle"`
	ClientData string `json:"clientData"`
}

func (s *server) serveAuthorizeCheck(ctx context.Context, c csc.Caller, body []byte) (any, error) {
	var b authorizeCheckBody
	if err := decode(body, &b); err != nil {
		return nil, err
	}
	return nil, s.svc.AuthorizeCheck(ctx, c, b.Handle)
}

type extendBody struct {
	CredentialID  string   `json:"credentialID"`
	SAD           string   `json:"SAD"`
	Hashes        []string `json:"hashes"`
	HashAlgorithm string   `json:"hashAlgorithmOID"`
	ClientData    string   `json:"clientData"`
}

func (s *server) serveExtend(ctx context.Context, c csc.Caller, body []byte) (any, error) {
	var b extendBody
	if err := decode(body, &b); err != nil {
		return nil, err
	}
	a, err := s.svc.ExtendTransaction(ctx, c, csc.ExtendRequest{CredentialID: b.CredentialID, SAD: b.SAD, Hashes: b.Hashes,
		HashAlgorithm: b.HashAlgorithm})
	if err != nil {
		return nil, err
	}
	return &authorizeResponse{SAD: a.SAD, ExpiresIn: a.ExpiresIn}, nil
}

type authRevokeBody struct {
	Token      string `json:"token"`
	Hint       string `json:"token_type_hint"`
	ClientData string `json:"clientData"`
}

// serveAuthRevoke answers 204 (CSC v2.2 11.3).
func (s *server) serveAuthRevoke(ctx context.Context, c csc.Caller, body []byte) (any, error) {
	var b authRevokeBody
	if err := decode(body, &b); err != nil {
		return nil, err
	}
	return nil, s.svc.AuthRevoke(ctx, c, b.Token, b.Hint)
}
