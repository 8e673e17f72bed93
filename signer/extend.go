package signer

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
)

// ExtendCAdES raises an existing CAdES signature with one SignerInfo to
// opt.Level (B-T, B-LT or B-LTA): a signature timestamp when it has none,
// the validation material, an archive timestamp. digest is the signed
// content's digest under the signature's digest algorithm (opt.Hash),
// needed by the archive timestamp; nil for an attached signature, whose
// content gives it. No key is used: what was signed stays
// as it was, byte for byte.
func ExtendCAdES(ctx context.Context, sig, digest []byte, opt Options) ([]byte, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	if opt.Level.Rank() < 1 {
		return nil, fmt.Errorf("extend to %q: %w (want B-T, B-LT or B-LTA)", opt.Level, ErrFormat)
	}
	var ci struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue `asn1:"explicit,tag:0"`
	}
	if _, err := asn1.Unmarshal(sig, &ci); err != nil || !ci.Type.Equal(oidSignedData) {
		return nil, fmt.Errorf("extend: %w: not a CMS SignedData (%v)", ErrFormat, err)
	}
	var sd struct {
		Version          int
		DigestAlgorithms asn1.RawValue
		EncapContentInfo asn1.RawValue
		Certificates     asn1.RawValue `asn1:"optional,tag:0"`
		CRLs             asn1.RawValue `asn1:"optional,tag:1"`
		SignerInfos      []signerInfo  `asn1:"set"`
	}
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		return nil, fmt.Errorf("extend: %w: %v", ErrFormat, err)
	}
	if len(sd.SignerInfos) != 1 {
		return nil, fmt.Errorf("extend: %w: %d signer infos, want 1", ErrFormat, len(sd.SignerInfos))
	}
	var encap struct {
		EContentType asn1.ObjectIdentifier
		EContent     asn1.RawValue `asn1:"optional,explicit,tag:0"`
	}
	if rest, err := asn1.Unmarshal(sd.EncapContentInfo.FullBytes, &encap); err != nil || len(rest) != 0 || !encap.EContentType.Equal(oidData) {
		return nil, fmt.Errorf("extend: %w: only signatures over id-data", ErrFormat)
	}
	// An attached signature carries its content: its digest is taken
	// from there, and the content is written back as it was.
	var content []byte
	if len(encap.EContent.Bytes) > 0 {
		if _, err := asn1.Unmarshal(encap.EContent.Bytes, &content); err != nil {
			return nil, fmt.Errorf("extend: %w: encapsulated content: %v", ErrFormat, err)
		}
		if content == nil {
			content = []byte{}
		}
		d := hashOf(opt.hash(), content)
		if digest != nil && !bytes.Equal(digest, d) {
			return nil, fmt.Errorf("extend: %w: the digest given is not that of the content inside", ErrFormatDigest)
		}
		digest = d
	}
	si := sd.SignerInfos[0]
	h := opt.hash()
	if !si.DigestAlgorithm.Algorithm.Equal(digestOIDs[h]) {
		return nil, fmt.Errorf("extend: %w: the signature's digest algorithm is %v", ErrHash, si.DigestAlgorithm.Algorithm)
	}
	if len(digest) != h.Size() {
		return nil, fmt.Errorf("%d bytes for %v: %w", len(digest), h, ErrFormatDigest)
	}
	c := &cms{h: h, digest: digest, si: si, content: content}
	var err error
	if c.certs, err = splitSet(sd.Certificates.Bytes); err != nil {
		return nil, fmt.Errorf("extend: certificates: %w: %v", ErrFormat, err)
	}
	if c.crls, err = splitSet(sd.CRLs.Bytes); err != nil {
		return nil, fmt.Errorf("extend: crls: %w: %v", ErrFormat, err)
	}
	if c.unsAttr, err = splitSet(si.UnsignedAttrs.Bytes); err != nil {
		return nil, fmt.Errorf("extend: unsigned attributes: %w: %v", ErrFormat, err)
	}
	c.si.UnsignedAttrs = asn1.RawValue{}
	for _, der := range c.certs {
		if x, err := x509.ParseCertificate(der); err == nil {
			c.chain = append(c.chain, x)
		}
	}
	for _, a := range c.unsAttr {
		var at struct {
			Type   asn1.ObjectIdentifier
			Values asn1.RawValue
		}
		if _, err := asn1.Unmarshal(a, &at); err == nil && at.Type.Equal(oidAttrTimestampToken) {
			if vals, err := splitSet(at.Values.Bytes); err == nil && len(vals) == 1 && c.sigToken == nil {
				c.sigToken = vals[0]
			}
		}
	}
	if c.sigToken == nil {
		if err := c.extend(ctx, opt); err != nil {
			return nil, err
		}
		return c.encode()
	}
	if err := c.extendLT(ctx, opt, c.sigToken); err != nil {
		return nil, err
	}
	return c.encode()
}

// splitSet returns the encoded elements of a SET OF's content.
func splitSet(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		var raw asn1.RawValue
		rest, err := asn1.Unmarshal(b, &raw)
		if err != nil {
			return nil, err
		}
		out = append(out, raw.FullBytes)
		b = rest
	}
	return out, nil
}

// SignatureTimestamp returns the signature timestamp token of a CAdES
// signature's first SignerInfo, nil when it has none.
func SignatureTimestamp(sig []byte) ([]byte, error) {
	attrs, err := firstUnsignedAttrs(sig)
	if err != nil {
		return nil, err
	}
	for _, a := range attrs {
		var at struct {
			Type   asn1.ObjectIdentifier
			Values asn1.RawValue
		}
		if _, err := asn1.Unmarshal(a, &at); err == nil && at.Type.Equal(oidAttrTimestampToken) {
			if vals, err := splitSet(at.Values.Bytes); err == nil && len(vals) > 0 {
				return vals[0], nil
			}
		}
	}
	return nil, nil
}

// firstUnsignedAttrs returns the unsigned attributes of a CAdES
// signature's first SignerInfo, each as its DER.
func firstUnsignedAttrs(sig []byte) ([][]byte, error) {
	var ci struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue `asn1:"explicit,tag:0"`
	}
	if _, err := asn1.Unmarshal(sig, &ci); err != nil || !ci.Type.Equal(oidSignedData) {
		return nil, fmt.Errorf("%w: not a CMS SignedData (%v)", ErrFormat, err)
	}
	var sd struct {
		Version          int
		DigestAlgorithms asn1.RawValue
		EncapContentInfo asn1.RawValue
		Certificates     asn1.RawValue `asn1:"optional,tag:0"`
		CRLs             asn1.RawValue `asn1:"optional,tag:1"`
		SignerInfos      []signerInfo  `asn1:"set"`
	}
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil || len(sd.SignerInfos) == 0 {
		return nil, fmt.Errorf("%w: signed data (%v)", ErrFormat, err)
	}
	attrs, err := splitSet(sd.SignerInfos[0].UnsignedAttrs.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: unsigned attributes: %v", ErrFormat, err)
	}
	return attrs, nil
}
