package signer

import (
	"crypto"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/firma-cloud/firma/errs"
)

// ErrPolicy is a signature policy that is unknown or badly described.
var ErrPolicy = errs.Sentinel(errs.Invalid, "bad_signature_policy", "bad signature policy")

// Policy is an explicit signature policy (ETSI EN 319 122-1 5.2.9): the
// policy's identifier, the hash of the policy document under Hash, and
// where the document is published. A signature carrying it is EPES.
type Policy struct {
	OID    asn1.ObjectIdentifier
	Hash   crypto.Hash // of the policy document; SHA-1 is allowed, as the AGE policy's is
	Digest []byte
	URI    string // the sigPolicyQualifier SPuri; "" for none
}

// PolicyAGE is the Spanish General State Administration's policy, v1.9
// (politica_de_firma_anexo_1.pdf), with the identifier, SHA-1 hash and
// URL that AutoFirma and FIRe put in CAdES and PAdES for expPolicy=FirmaAGE.
var PolicyAGE = Policy{
	OID:    asn1.ObjectIdentifier{2, 16, 724, 1, 3, 1, 1, 2, 1, 9},
	Hash:   crypto.SHA1,
	Digest: mustBase64("G7roucf600+f03r/o0bAOQ6WAs0="),
	URI:    "https://sede.060.gob.es/politica_de_firma_anexo_1.pdf",
}

// PolicyNameAGE is the name PolicyAGE is asked for by (FIRe's expPolicy).
const PolicyNameAGE = "FirmaAGE"

func mustBase64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

var policyHashes = map[string]crypto.Hash{
	"sha1": crypto.SHA1, "sha-1": crypto.SHA1,
	"sha256": crypto.SHA256, "sha-256": crypto.SHA256,
	"sha384": crypto.SHA384, "sha-384": crypto.SHA384,
	"sha512": crypto.SHA512, "sha-512": crypto.SHA512,
}

var policyHashOIDs = map[crypto.Hash]asn1.ObjectIdentifier{
	crypto.SHA1: {1, 3, 14, 3, 2, 26}, crypto.SHA256: oidSHA256, crypto.SHA384: oidSHA384, crypto.SHA512: oidSHA512,
}

// ParsePolicy reads a policy as configuration and portals give it: a
// dotted OID (an "urn:oid:" prefix is dropped), the hash algorithm's name
// (sha1, sha256, sha384, sha512), the base64 hash and the URI.
func ParsePolicy(oid, hashAlg, hashB64, uri string) (*Policy, error) {
	p := &Policy{URI: uri}
	for _, part := range strings.Split(strings.TrimPrefix(strings.TrimSpace(oid), "urn:oid:"), ".") {
		var n int
		if _, err := fmt.Sscan(part, &n); err != nil || n < 0 || fmt.Sprint(n) != part {
			return nil, fmt.Errorf("policy identifier %q: %w: not a dotted OID", oid, ErrPolicy)
		}
		p.OID = append(p.OID, n)
	}
	h, ok := policyHashes[strings.ToLower(strings.TrimSpace(hashAlg))]
	if !ok {
		return nil, fmt.Errorf("policy hash algorithm %q: %w (want sha1, sha256, sha384 or sha512)", hashAlg, ErrPolicy)
	}
	p.Hash = h
	d, err := base64.StdEncoding.DecodeString(strings.TrimSpace(hashB64))
	if err != nil {
		return nil, fmt.Errorf("policy hash: %w: not base64", ErrPolicy)
	}
	p.Digest = d
	if err := p.check(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Policy) check() error {
	if len(p.OID) < 2 {
		return fmt.Errorf("policy identifier %v: %w", p.OID, ErrPolicy)
	}
	if _, ok := policyHashOIDs[p.Hash]; !ok {
		return fmt.Errorf("policy hash %v: %w", p.Hash, ErrPolicy)
	}
	if len(p.Digest) != p.Hash.Size() {
		return fmt.Errorf("policy hash of %d bytes for %v: %w", len(p.Digest), p.Hash, ErrPolicy)
	}
	for _, r := range p.URI {
		if r > 0x7e || r < 0x20 {
			return fmt.Errorf("policy URI: %w: not printable ASCII", ErrPolicy)
		}
	}
	return nil
}

// String is the policy's identifier, dotted.
func (p *Policy) String() string { return p.OID.String() }

var (
	oidAttrSigPolicyID = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 15}
	oidSPQualifierURI  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 5, 1}
)

type otherHashAlgAndValue struct {
	HashAlgorithm pkix.AlgorithmIdentifier
	HashValue     []byte
}

type sigPolicyQualifierInfo struct {
	ID        asn1.ObjectIdentifier
	Qualifier asn1.RawValue
}

type signaturePolicyID struct {
	ID         asn1.ObjectIdentifier
	Hash       otherHashAlgAndValue
	Qualifiers []sigPolicyQualifierInfo `asn1:"optional"`
}

// attribute is the signature-policy-identifier attribute.
func (p *Policy) attribute() ([]byte, error) {
	v := signaturePolicyID{ID: p.OID, Hash: otherHashAlgAndValue{
		HashAlgorithm: pkix.AlgorithmIdentifier{Algorithm: policyHashOIDs[p.Hash]}, HashValue: p.Digest}}
	if p.URI != "" {
		uri, err := asn1.MarshalWithParams(p.URI, "ia5")
		if err != nil {
			return nil, fmt.Errorf("policy URI: %w: %w", ErrPolicy, err)
		}
		v.Qualifiers = []sigPolicyQualifierInfo{{ID: oidSPQualifierURI, Qualifier: asn1.RawValue{FullBytes: uri}}}
	}
	return attr(oidAttrSigPolicyID, v)
}
