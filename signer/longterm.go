package signer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"

	"github.com/firma-cloud/firma/signer/ltv"
)

// Object identifiers of the long-term levels (RFC 5940, ETSI EN 319 122-1).
var (
	oidRIOCSPResponse   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 16, 2}
	oidAttrArchiveTSv3  = asn1.ObjectIdentifier{0, 4, 0, 1733, 2, 4}
	oidAttrATSHashIndex = asn1.ObjectIdentifier{0, 4, 0, 19122, 1, 5}
)

// extendLT adds, for B-LT and B-LTA, the certificates and revocation data
// of the signer's chain and of the signature timestamp's TSA chain to the
// SignedData, and for B-LTA an archive-time-stamp-v3 over the whole.
func (c *cms) extendLT(ctx context.Context, opt Options, sigToken []byte) error {
	if opt.Level.Rank() < 2 {
		return nil
	}
	m, err := gather(ctx, opt.Validation, c.chain, sigToken)
	if err != nil {
		return err
	}
	if err := c.addMaterial(m); err != nil {
		return err
	}
	if opt.Level != LevelLTA {
		return nil
	}
	return c.archiveTimestamp(ctx, opt)
}

// gather returns the validation material of the signer's chain and of
// the TSA chain in the signature timestamp sigToken. A revoked
// certificate is ltv.ErrRevoked (the signature is not valid); anything
// else ErrValidation.
func gather(ctx context.Context, v Validation, chain []*x509.Certificate, sigToken []byte) (*ltv.Material, error) {
	tsaChain, err := tokenCertificates(sigToken)
	if err != nil {
		return nil, fmt.Errorf("signature timestamp: %w: %w", ErrTimestamp, err)
	}
	m, err := v.Gather(ctx, chain, tsaChain)
	if err != nil {
		if errors.Is(err, ltv.ErrRevoked) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrValidation, err)
	}
	return m, nil
}

// addMaterial puts certificates in SignedData.certificates, CRLs and OCSP
// responses (as the other RevocationInfoChoice, RFC 5940) in crls.
func (c *cms) addMaterial(m *ltv.Material) error {
	for _, x := range m.Certs {
		c.addCert(x.Raw)
	}
	for _, crl := range m.CRLs {
		c.addCRL(crl)
	}
	for _, o := range m.OCSP {
		oid, err := asn1.Marshal(oidRIOCSPResponse)
		if err != nil {
			return err
		}
		// [1] IMPLICIT OtherRevocationInfoFormat.
		other, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, IsCompound: true, Bytes: append(oid, o...)})
		if err != nil {
			return fmt.Errorf("encode ocsp response: %w", err)
		}
		c.addCRL(other)
	}
	return nil
}

func (c *cms) addCRL(der []byte) {
	for _, have := range c.crls {
		if bytes.Equal(have, der) {
			return
		}
	}
	c.crls = append(c.crls, der)
}

// atsHashIndexV3 is ETSI EN 319 122-1 5.5.2's ATSHashIndexV3.
type atsHashIndexV3 struct {
	HashIndAlgorithm       pkix.AlgorithmIdentifier `asn1:"optional"` // absent for SHA-256, its DEFAULT
	CertificatesHashIndex  [][]byte
	CRLsHashIndex          [][]byte
	UnsignedAttrsHashIndex [][]byte
}

// archiveTimestamp adds an archive-time-stamp-v3 whose token carries the
// ats-hash-index-v3 of what it covers.
func (c *cms) archiveTimestamp(ctx context.Context, opt Options) error {
	certs, crls := sortedSet(c.certs), sortedSet(c.crls)
	idx, err := ATSHashIndex(c.h, certs, crls, c.unsAttr)
	if err != nil {
		return err
	}
	imprint, err := archiveImprint(c.h, c.digest, c.si, idx)
	if err != nil {
		return err
	}
	tok, err := opt.Timestamper.Timestamp(ctx, c.h, imprint)
	if err != nil {
		return fmt.Errorf("archive timestamp: %w: %w", ErrTimestamp, err)
	}
	idxAttr, err := attr(oidAttrATSHashIndex, asn1.RawValue{FullBytes: idx})
	if err != nil {
		return err
	}
	tok, err = addTokenUnsignedAttr(tok, idxAttr)
	if err != nil {
		return fmt.Errorf("archive timestamp: %w: %w", ErrTimestamp, err)
	}
	a, err := attr(oidAttrArchiveTSv3, asn1.RawValue{FullBytes: tok})
	if err != nil {
		return err
	}
	c.unsAttr = append(c.unsAttr, a)
	return nil
}

// ATSHashIndex returns the DER ATSHashIndexV3 under h of the SignedData's
// certificates and crls (each element's whole encoding, in the order
// encoded) and of the SignerInfo's unsigned attributes: EN 319 122-1
// V1.1.1 5.5.2 hashes, for each value of each attribute, the attrType
// encoding followed by that AttributeValue's (not the attrValues SET).
func ATSHashIndex(h crypto.Hash, certs, crls, unsignedAttrs [][]byte) ([]byte, error) {
	idx := atsHashIndexV3{CertificatesHashIndex: [][]byte{}, CRLsHashIndex: [][]byte{}, UnsignedAttrsHashIndex: [][]byte{}}
	if h != crypto.SHA256 {
		idx.HashIndAlgorithm = pkix.AlgorithmIdentifier{Algorithm: digestOIDs[h]}
	}
	for _, x := range certs {
		idx.CertificatesHashIndex = append(idx.CertificatesHashIndex, hashOf(h, x))
	}
	for _, x := range crls {
		idx.CRLsHashIndex = append(idx.CRLsHashIndex, hashOf(h, x))
	}
	for _, a := range unsignedAttrs {
		parts, err := AttributeValueParts(a)
		if err != nil {
			return nil, err
		}
		for _, p := range parts {
			idx.UnsignedAttrsHashIndex = append(idx.UnsignedAttrsHashIndex, hashOf(h, p))
		}
	}
	return asn1.Marshal(idx)
}

// AttributeValueParts returns, for each value of the DER Attribute a,
// the attrType encoding followed by that value's: what an
// ats-hash-index-v3 hashes of an unsigned attribute.
func AttributeValueParts(a []byte) ([][]byte, error) {
	var at struct {
		Type   asn1.RawValue
		Values asn1.RawValue
	}
	if rest, err := asn1.Unmarshal(a, &at); err != nil || len(rest) != 0 || at.Values.Tag != asn1.TagSet {
		return nil, fmt.Errorf("unsigned attribute: not an Attribute (%v)", err)
	}
	vals, err := splitSet(at.Values.Bytes)
	if err != nil {
		return nil, fmt.Errorf("unsigned attribute values: %w", err)
	}
	out := make([][]byte, 0, len(vals))
	for _, v := range vals {
		out = append(out, append(append([]byte{}, at.Type.FullBytes...), v...))
	}
	return out, nil
}

// archiveImprint is the message imprint of an archive-time-stamp-v3 (EN
// 319 122-1 5.5.3): the hash of eContentType, the content's hash, the
// SignerInfo's fields up to the signature, and the ATSHashIndexV3.
func archiveImprint(h crypto.Hash, contentDigest []byte, si signerInfo, idx []byte) ([]byte, error) {
	hh := h.New()
	ct, err := asn1.Marshal(oidData)
	if err != nil {
		return nil, err
	}
	hh.Write(ct)
	hh.Write(contentDigest)
	for _, v := range []any{si.Version, si.SID, si.DigestAlgorithm, si.SignedAttrs, si.SignatureAlgorithm, si.Signature} {
		b, err := asn1.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("archive imprint: %w", err)
		}
		hh.Write(b)
	}
	hh.Write(idx)
	return hh.Sum(nil), nil
}

// sortedSet returns the elements in the order a DER SET OF puts them.
func sortedSet(elems [][]byte) [][]byte {
	var out [][]byte
	rest := setOf(elems)
	for len(rest) > 0 {
		var raw asn1.RawValue
		r, err := asn1.Unmarshal(rest, &raw)
		if err != nil {
			return elems
		}
		out = append(out, raw.FullBytes)
		rest = r
	}
	return out
}

// tsSignedData keeps a token's SignedData fields as they were encoded.
type tsSignedData struct {
	Version     asn1.RawValue
	Digests     asn1.RawValue
	Encap       asn1.RawValue
	Certs       asn1.RawValue `asn1:"optional,tag:0"`
	CRLs        asn1.RawValue `asn1:"optional,tag:1"`
	SignerInfos asn1.RawValue
}

type tsSignerInfo struct {
	Version   asn1.RawValue
	SID       asn1.RawValue
	Digest    asn1.RawValue
	Signed    asn1.RawValue `asn1:"optional,tag:0"`
	SigAlg    asn1.RawValue
	Signature asn1.RawValue
	Unsigned  asn1.RawValue `asn1:"optional,tag:1"`
}

func parseToken(tok []byte) (*tsSignedData, error) {
	var ci struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue `asn1:"explicit,tag:0"`
	}
	if _, err := asn1.Unmarshal(tok, &ci); err != nil {
		return nil, fmt.Errorf("token: %w", err)
	}
	var sd tsSignedData
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		return nil, fmt.Errorf("token signed data: %w", err)
	}
	return &sd, nil
}

// tokenCertificates returns the certificates a timestamp token carries.
func tokenCertificates(tok []byte) ([]*x509.Certificate, error) {
	sd, err := parseToken(tok)
	if err != nil {
		return nil, err
	}
	if len(sd.Certs.Bytes) == 0 {
		return nil, errors.New("token carries no certificate")
	}
	return x509.ParseCertificates(sd.Certs.Bytes)
}

// addTokenUnsignedAttr adds an unsigned attribute to the token's one
// SignerInfo, which the TSA's signature does not cover; every other byte
// stays as the TSA wrote it.
func addTokenUnsignedAttr(tok, attrDER []byte) ([]byte, error) {
	sd, err := parseToken(tok)
	if err != nil {
		return nil, err
	}
	var si tsSignerInfo
	rest, err := asn1.Unmarshal(sd.SignerInfos.Bytes, &si)
	if err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("token signer info: want exactly one (%v)", err)
	}
	si.Unsigned = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, IsCompound: true, Bytes: append(bytes.Clone(si.Unsigned.Bytes), attrDER...)}
	siDER, err := marshalRaw(si.Version, si.SID, si.Digest, si.Signed, si.SigAlg, si.Signature, si.Unsigned)
	if err != nil {
		return nil, err
	}
	sis, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagSet, IsCompound: true, Bytes: siDER})
	if err != nil {
		return nil, err
	}
	sdDER, err := marshalRaw(sd.Version, sd.Digests, sd.Encap, sd.Certs, sd.CRLs, asn1.RawValue{FullBytes: sis})
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(contentInfo{ContentType: oidSignedData, Content: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: sdDER}})
}

// marshalRaw encodes a SEQUENCE of the present raw values, as parsed.
func marshalRaw(vals ...asn1.RawValue) ([]byte, error) {
	var body []byte
	for _, v := range vals {
		if len(v.FullBytes) == 0 {
			if v.Bytes == nil && v.Tag == 0 && v.Class == 0 {
				continue // an optional field that was absent
			}
			b, err := asn1.Marshal(v)
			if err != nil {
				return nil, err
			}
			body = append(body, b...)
			continue
		}
		body = append(body, v.FullBytes...)
	}
	return asn1.Marshal(asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true, Bytes: body})
}
