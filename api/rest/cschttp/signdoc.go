package cschttp

import (
	"context"
	"encoding/base64"

	"github.com/firma-cloud/firma/csc"
)

type signDocDigests struct {
	Hashes           []string `json:"hashes"`
	HashAlgorithm    string   `json:"hashAlgorithmOID"`
	SignatureFormat  string   `json:"signature_format"`
	ConformanceLevel string   `json:"conformance_level"`
	SignAlgo         string   `json:"signAlgo"`
	SignAlgoParams   string   `json:"signAlgoParams"`
	Envelope         string   `json:"signed_envelope_property"`
}

type signDocDocument struct {
	Document         string `json:"document"`
	SignatureFormat  string `json:"signature_format"`
	ConformanceLevel string `json:"conformance_level"`
	SignAlgo         string `json:"signAlgo"`
	SignAlgoParams   string `json:"signAlgoParams"`
	Envelope         string `json:"signed_envelope_property"`
}

type signDocBody struct {
	CredentialID    string            `json:"credentialID"`
	SAD             string            `json:"SAD"`
	DocumentDigests []signDocDigests  `json:"documentDigests"`
	Documents       []signDocDocument `json:"documents"`
	OperationMode   string            `json:"operationMode"`
	ValidationInfo  bool              `json:"returnValidationInfo"`
}

func (s *server) serveSignDoc(ctx context.Context, c csc.Caller, body []byte) (any, error) {
	var b signDocBody
	if err := decode(body, &b); err != nil {
		return nil, err
	}
	if b.OperationMode != "" && b.OperationMode != "S" {
		return nil, invalid("operationMode %q: only synchronous (\"S\") signing is offered", b.OperationMode)
	}
	if b.ValidationInfo {
		return nil, invalid("returnValidationInfo is not offered (info says validationInfo false)")
	}
	r := csc.SignDocRequest{CredentialID: b.CredentialID, SAD: b.SAD}
	for _, d := range b.DocumentDigests {
		if len(d.Hashes) == 0 {
			return nil, invalid("documentDigests: an entry without hashes")
		}
		r.Items = append(r.Items, csc.SignDocItem{Digests: d.Hashes, HashAlgorithm: d.HashAlgorithm, SignatureFormat: d.SignatureFormat,
			ConformanceLevel: d.ConformanceLevel, SignAlgo: d.SignAlgo, SignAlgoParams: d.SignAlgoParams, Envelope: d.Envelope})
	}
	for i, d := range b.Documents {
		doc, err := csc.DecodeBase64(d.Document)
		if err != nil || len(doc) == 0 {
			return nil, invalid("documents[%d].document is not base64", i)
		}
		r.Items = append(r.Items, csc.SignDocItem{Document: doc, SignatureFormat: d.SignatureFormat,
			ConformanceLevel: d.ConformanceLevel, SignAlgo: d.SignAlgo, SignAlgoParams: d.SignAlgoParams, Envelope: d.Envelope})
	}
	out, pades, err := s.svc.SignDoc(ctx, c, r)
	if err != nil {
		return nil, err
	}
	resp := &csc.SignDocResponse{}
	for i, o := range out {
		if pades[i] {
			resp.DocumentWithSignature = append(resp.DocumentWithSignature, base64.StdEncoding.EncodeToString(o))
		} else {
			resp.SignatureObject = append(resp.SignatureObject, base64.StdEncoding.EncodeToString(o))
		}
	}
	return resp, nil
}

type timestampBody struct {
	Hash          string `json:"hash"`
	HashAlgorithm string `json:"hashAlgorithmOID"`
	Size          int    `json:"size"`
	Nonce         string `json:"nonce"`
}

type timestampResponse struct {
	Timestamp string `json:"timestamp"`
}

func (s *server) serveTimestamp(ctx context.Context, c csc.Caller, body []byte) (any, error) {
	var b timestampBody
	if err := decode(body, &b); err != nil {
		return nil, err
	}
	tok, err := s.svc.Timestamp(ctx, c, b.Hash, b.HashAlgorithm, b.Nonce)
	if err != nil {
		return nil, err
	}
	if b.Size > 0 && len(tok) > b.Size {
		return nil, invalid("the token is %d bytes, over the size %d asked", len(tok), b.Size)
	}
	return &timestampResponse{Timestamp: base64.StdEncoding.EncodeToString(tok)}, nil
}
