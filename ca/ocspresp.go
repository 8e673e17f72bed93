package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/ocsp"
)

// The response is encoded here rather than with ocsp.CreateResponse,
// which truncates producedAt to the minute (so it came out before
// thisUpdate) and has no place for responseExtensions, where RFC 6960
// 4.4.1 puts the nonce.

var (
	oidOCSPNonce    = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}
	oidOCSPBasic    = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 1}
	oidSHA1         = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256       = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384       = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512       = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidECDSASHA256  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSASHA384  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSASHA512  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidRSASHA256    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	ocspHashOIDs    = map[crypto.Hash]asn1.ObjectIdentifier{crypto.SHA1: oidSHA1, crypto.SHA256: oidSHA256, crypto.SHA384: oidSHA384, crypto.SHA512: oidSHA512}
	errNonceLength  = errors.New("ocsp nonce length out of 1..32 octets")
	maxNonceLength  = 32 // RFC 8954 section 2.1
	ocspNullParams  = asn1.RawValue{Tag: asn1.TagNull}
	ocspSuccessResp = asn1.Enumerated(0)
)

type ocspCertID struct {
	HashAlgorithm  pkix.AlgorithmIdentifier
	IssuerNameHash []byte
	IssuerKeyHash  []byte
	SerialNumber   *big.Int
}

type ocspRevokedInfo struct {
	RevocationTime time.Time       `asn1:"generalized"`
	Reason         asn1.Enumerated `asn1:"explicit,tag:0,optional"`
}

type ocspSingleResponse struct {
	CertID     ocspCertID
	Good       asn1.Flag       `asn1:"tag:0,optional"`
	Revoked    ocspRevokedInfo `asn1:"tag:1,optional"`
	Unknown    asn1.Flag       `asn1:"tag:2,optional"`
	ThisUpdate time.Time       `asn1:"generalized"`
	NextUpdate time.Time       `asn1:"generalized,explicit,tag:0,optional"`
}

type ocspResponseData struct {
	ResponderID        asn1.RawValue
	ProducedAt         time.Time `asn1:"generalized"`
	Responses          []ocspSingleResponse
	ResponseExtensions []pkix.Extension `asn1:"explicit,tag:1,optional"`
}

type ocspBasicResponse struct {
	TBSResponseData    asn1.RawValue
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          asn1.BitString
	Certs              []asn1.RawValue `asn1:"explicit,tag:0,optional"`
}

type ocspResponseBytes struct {
	ResponseType asn1.ObjectIdentifier
	Response     []byte
}

type ocspResponse struct {
	Status        asn1.Enumerated
	ResponseBytes ocspResponseBytes `asn1:"explicit,tag:0"`
}

// requestNonce returns the extnValue of the request's nonce extension
// (nil when there is none), to be echoed verbatim. ocsp.ParseRequest
// drops requestExtensions, so they are read here. A nonce of 0 or more
// than 32 octets is errNonceLength (RFC 8954: malformedRequest).
func requestNonce(der []byte) ([]byte, error) {
	var req struct {
		TBS struct {
			Raw        asn1.RawContent
			Version    int           `asn1:"explicit,tag:0,default:0,optional"`
			Requestor  asn1.RawValue `asn1:"explicit,tag:1,optional"`
			List       asn1.RawValue
			Extensions []pkix.Extension `asn1:"explicit,tag:2,optional"`
		}
		Sig asn1.RawValue `asn1:"explicit,tag:0,optional"`
	}
	if _, err := asn1.Unmarshal(der, &req); err != nil {
		return nil, err
	}
	for _, e := range req.TBS.Extensions {
		if !e.Id.Equal(oidOCSPNonce) {
			continue
		}
		// Nonce ::= OCTET STRING inside extnValue; some old clients put
		// the bare bytes there, and those count as the nonce themselves.
		n := len(e.Value)
		var inner []byte
		if rest, err := asn1.Unmarshal(e.Value, &inner); err == nil && len(rest) == 0 {
			n = len(inner)
		}
		if n < 1 || n > maxNonceLength {
			return nil, errNonceLength
		}
		return e.Value, nil
	}
	return nil, nil
}

// createOCSPResponse signs a one-certificate OCSP response. producedAt is
// when it is signed, to the second, and so never before thisUpdate; nonce,
// when not nil, is echoed as a response extension.
func createOCSPResponse(issuer, responder *x509.Certificate, t ocsp.Response, signer crypto.Signer, producedAt time.Time, nonce []byte) ([]byte, error) {
	hashOID, ok := ocspHashOIDs[t.IssuerHash]
	if !ok || !t.IssuerHash.Available() {
		return nil, fmt.Errorf("ocsp: issuer hash %v not supported", t.IssuerHash)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		Key       asn1.BitString
	}
	if _, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, fmt.Errorf("ocsp: issuer key: %w", err)
	}
	single := ocspSingleResponse{
		CertID: ocspCertID{
			HashAlgorithm:  pkix.AlgorithmIdentifier{Algorithm: hashOID, Parameters: ocspNullParams},
			IssuerNameHash: hashOf(t.IssuerHash, issuer.RawSubject),
			IssuerKeyHash:  hashOf(t.IssuerHash, spki.Key.RightAlign()),
			SerialNumber:   t.SerialNumber,
		},
		ThisUpdate: t.ThisUpdate.UTC(),
		NextUpdate: t.NextUpdate.UTC(),
	}
	switch t.Status {
	case ocsp.Good:
		single.Good = true
	case ocsp.Unknown:
		single.Unknown = true
	case ocsp.Revoked:
		single.Revoked = ocspRevokedInfo{RevocationTime: t.RevokedAt.UTC(), Reason: asn1.Enumerated(t.RevocationReason)}
	default:
		return nil, fmt.Errorf("ocsp: status %d", t.Status)
	}
	data := ocspResponseData{
		// byName: [1] EXPLICIT Name.
		ResponderID: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, IsCompound: true, Bytes: responder.RawSubject},
		ProducedAt:  producedAt.UTC().Truncate(time.Second),
		Responses:   []ocspSingleResponse{single},
	}
	if nonce != nil {
		data.ResponseExtensions = []pkix.Extension{{Id: oidOCSPNonce, Value: nonce}}
	}
	tbs, err := asn1.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("ocsp: encode: %w", err)
	}
	alg, h, err := ocspSignatureAlgorithm(signer.Public())
	if err != nil {
		return nil, err
	}
	sig, err := signer.Sign(rand.Reader, hashOf(h, tbs), h)
	if err != nil {
		return nil, fmt.Errorf("ocsp: sign: %w", err)
	}
	basic := ocspBasicResponse{
		TBSResponseData:    asn1.RawValue{FullBytes: tbs},
		SignatureAlgorithm: alg,
		Signature:          asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)},
	}
	if t.Certificate != nil {
		basic.Certs = []asn1.RawValue{{FullBytes: t.Certificate.Raw}}
	}
	basicDER, err := asn1.Marshal(basic)
	if err != nil {
		return nil, fmt.Errorf("ocsp: encode: %w", err)
	}
	return asn1.Marshal(ocspResponse{Status: ocspSuccessResp, ResponseBytes: ocspResponseBytes{ResponseType: oidOCSPBasic, Response: basicDER}})
}

// ocspSignatureAlgorithm picks the signature algorithm for the responder's
// key: ECDSA with the hash matching the curve, RSA with SHA-256.
func ocspSignatureAlgorithm(pub crypto.PublicKey) (pkix.AlgorithmIdentifier, crypto.Hash, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P384():
			return pkix.AlgorithmIdentifier{Algorithm: oidECDSASHA384}, crypto.SHA384, nil
		case elliptic.P521():
			return pkix.AlgorithmIdentifier{Algorithm: oidECDSASHA512}, crypto.SHA512, nil
		}
		return pkix.AlgorithmIdentifier{Algorithm: oidECDSASHA256}, crypto.SHA256, nil
	case *rsa.PublicKey:
		return pkix.AlgorithmIdentifier{Algorithm: oidRSASHA256, Parameters: ocspNullParams}, crypto.SHA256, nil
	}
	return pkix.AlgorithmIdentifier{}, 0, fmt.Errorf("ocsp: responder key %T not supported", pub)
}
