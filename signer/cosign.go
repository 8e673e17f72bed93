package signer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"

	"github.com/firma-cloud/firma/errs"
)

// ErrCoSign is an existing signature that cannot take another signer: not
// a CMS SignedData over id-data, or not over the document given.
var ErrCoSign = errs.Sentinel(errs.Invalid, "bad_existing_signature", "the existing signature cannot be co-signed or counter-signed")

// Operation is what is done with a document: a new signature, or another
// signature added to an existing one.
type Operation string

// Operations on a document.
const (
	OpSign Operation = "sign" // a new signature (the default)
	// OpCoSign adds a parallel signature of the same content: another
	// SignerInfo in a CAdES SignedData, another signature field in a PDF.
	OpCoSign Operation = "cosign"
	// OpCounterSign countersigns every SignerInfo at the top of a CAdES
	// SignedData (its countersignature unsigned attribute, RFC 5652 11.4).
	OpCounterSign Operation = "countersign"
)

// ParseOperation parses an operation name; "" is OpSign.
func ParseOperation(s string) (Operation, error) {
	switch o := Operation(s); o {
	case "":
		return OpSign, nil
	case OpSign, OpCoSign, OpCounterSign:
		return o, nil
	}
	return "", fmt.Errorf("operation %q: %w (want sign, cosign or countersign)", s, ErrFormat)
}

// existing is a CMS SignedData already made, read to add signers to.
type existing struct {
	algs, certs, crls, signers [][]byte // DER elements
	eType                      asn1.ObjectIdentifier
	content                    []byte // encapsulated content; nil when detached
}

type rawSignerInfo struct {
	Version            int
	SID                asn1.RawValue
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue `asn1:"optional,tag:0"`
	SignatureAlgorithm asn1.RawValue
	Signature          []byte
	UnsignedAttrs      asn1.RawValue `asn1:"optional,tag:1"`
}

func readExisting(sig []byte) (*existing, error) {
	var ci struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue `asn1:"explicit,tag:0"`
	}
	if rest, err := asn1.Unmarshal(sig, &ci); err != nil || len(rest) != 0 || !ci.Type.Equal(oidSignedData) {
		return nil, fmt.Errorf("%w: not a DER CMS SignedData", ErrCoSign)
	}
	var sd struct {
		Version          int
		DigestAlgorithms asn1.RawValue
		EncapContentInfo struct {
			Type    asn1.ObjectIdentifier
			Content asn1.RawValue `asn1:"optional,explicit,tag:0"`
		}
		Certificates asn1.RawValue `asn1:"optional,tag:0"`
		CRLs         asn1.RawValue `asn1:"optional,tag:1"`
		SignerInfos  asn1.RawValue
	}
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		return nil, fmt.Errorf("%w: signed data: %v", ErrCoSign, err)
	}
	e := &existing{eType: sd.EncapContentInfo.Type}
	if !e.eType.Equal(oidData) {
		return nil, fmt.Errorf("%w: content type %v is not id-data", ErrCoSign, e.eType)
	}
	if b := sd.EncapContentInfo.Content.Bytes; len(b) > 0 {
		if _, err := asn1.Unmarshal(b, &e.content); err != nil {
			return nil, fmt.Errorf("%w: encapsulated content: %v", ErrCoSign, err)
		}
		if e.content == nil {
			e.content = []byte{}
		}
	}
	var err error
	for _, f := range []struct {
		dst *[][]byte
		b   []byte
	}{{&e.algs, sd.DigestAlgorithms.Bytes}, {&e.certs, sd.Certificates.Bytes}, {&e.crls, sd.CRLs.Bytes}, {&e.signers, sd.SignerInfos.Bytes}} {
		if *f.dst, err = splitSet(f.b); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrCoSign, err)
		}
	}
	if len(e.signers) == 0 || len(e.signers) > maxSigners {
		return nil, fmt.Errorf("%w: %d signers, want 1 to %d", ErrCoSign, len(e.signers), maxSigners)
	}
	return e, nil
}

// contentDigest returns the digest under h of the content the existing
// signature covers: its own encapsulated content, else content, else
// digest (already under h). Every existing signer whose message digest
// can be compared must match it, so a co-signature is never over another
// document than the first.
func (e *existing) contentDigest(h crypto.Hash, content, digest []byte) ([]byte, error) {
	if e.content != nil {
		if content != nil && !bytes.Equal(content, e.content) {
			return nil, fmt.Errorf("%w: the document is not the one inside the signature", ErrCoSign)
		}
		content = e.content
	}
	if content != nil {
		digest = hashOf(h, content)
	}
	if len(digest) != h.Size() {
		return nil, fmt.Errorf("%d bytes for %v: %w", len(digest), h, ErrFormatDigest)
	}
	compared := 0
	for _, der := range e.signers {
		var si rawSignerInfo
		if _, err := asn1.Unmarshal(der, &si); err != nil {
			return nil, fmt.Errorf("%w: signer info: %v", ErrCoSign, err)
		}
		var want []byte
		for hh, oid := range digestOIDs {
			if !oid.Equal(si.DigestAlgorithm.Algorithm) {
				continue
			}
			switch {
			case hh == h:
				want = digest
			case content != nil:
				want = hashOf(hh, content)
			}
		}
		md, ok := signedMessageDigest(si.SignedAttrs.Bytes)
		if want == nil || !ok {
			continue
		}
		if !bytes.Equal(md, want) {
			return nil, fmt.Errorf("%w: the document does not match the existing signature's message digest", ErrCoSign)
		}
		compared++
	}
	if compared == 0 {
		return nil, fmt.Errorf("%w: no existing signer could be checked against the document (another digest algorithm, or no message digest)", ErrCoSign)
	}
	return digest, nil
}

func signedMessageDigest(attrs []byte) ([]byte, bool) {
	list, err := splitSet(attrs)
	if err != nil {
		return nil, false
	}
	for _, a := range list {
		var at struct {
			Type   asn1.ObjectIdentifier
			Values asn1.RawValue
		}
		if _, err := asn1.Unmarshal(a, &at); err != nil || !at.Type.Equal(oidAttrMessageDigest) {
			continue
		}
		var md []byte
		if _, err := asn1.Unmarshal(at.Values.Bytes, &md); err == nil {
			return md, true
		}
	}
	return nil, false
}

// CoSign adds a parallel signature by key to the CAdES signature sig: a
// new SignerInfo over the same content, the existing ones kept byte for
// byte. content or digest (under opt.Hash) is the signed document, not
// needed when sig encapsulates it. The new signer reaches opt.Level; the
// others keep theirs.
func CoSign(ctx context.Context, sig, content, digest []byte, key crypto.Signer, chain []*x509.Certificate, opt Options) ([]byte, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	e, err := readExisting(sig)
	if err != nil {
		return nil, err
	}
	d, err := e.contentDigest(opt.hash(), content, digest)
	if err != nil {
		return nil, err
	}
	c, err := prepareCMS(d, key, chain, opt, true)
	if err != nil {
		return nil, err
	}
	c.adopt(e)
	if err := c.sign(key); err != nil {
		return nil, err
	}
	if err := c.extend(ctx, opt); err != nil {
		return nil, err
	}
	return c.encode()
}

// adopt takes the existing signature's content, certificates, revocation
// data and signers into c, which becomes one more signer of it.
func (c *cms) adopt(e *existing) {
	c.content = e.content
	mine := c.certs
	c.certs = append([][]byte(nil), e.certs...)
	for _, x := range mine {
		c.addCert(x)
	}
	c.crls = append([][]byte(nil), e.crls...)
	c.others, c.otherAlgs = e.signers, e.algs
}

// CounterSign countersigns every SignerInfo at the top of the CAdES
// signature sig with key: each gets a countersignature unsigned attribute
// whose message digest is of its signature value. A countersignature
// reaches B-T at most (its own signature timestamp) at opt.Level B-T and
// above; the validation material of B-LT and above goes in the SignedData
// for its chain as for a signer's. Archive timestamps are not put inside
// countersignatures.
func CounterSign(ctx context.Context, sig []byte, key crypto.Signer, chain []*x509.Certificate, opt Options) ([]byte, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	e, err := readExisting(sig)
	if err != nil {
		return nil, err
	}
	copt := opt
	if copt.Level == LevelLTA {
		copt.Level = LevelLT
	}
	out := &cms{h: opt.hash(), content: e.content, certs: append([][]byte(nil), e.certs...), crls: append([][]byte(nil), e.crls...)}
	var signers [][]byte
	for i, der := range e.signers {
		var si rawSignerInfo
		if _, err := asn1.Unmarshal(der, &si); err != nil {
			return nil, fmt.Errorf("%w: signer info %d: %v", ErrCoSign, i+1, err)
		}
		c, err := prepare(hashOf(opt.hash(), si.Signature), key, chain, copt, true, true)
		if err != nil {
			return nil, err
		}
		if err := c.sign(key); err != nil {
			return nil, err
		}
		if err := c.extend(ctx, copt); err != nil {
			return nil, err
		}
		csi, err := asn1.Marshal(c.finalSignerInfo())
		if err != nil {
			return nil, fmt.Errorf("encode countersignature: %w", err)
		}
		a, err := attr(oidAttrCounterSignature, asn1.RawValue{FullBytes: csi})
		if err != nil {
			return nil, err
		}
		// Appended after what is there: an archive-time-stamp-v3 of the
		// signer indexes its unsigned attributes, and an added one is
		// outside what it covers, not a change to it.
		si.UnsignedAttrs = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, IsCompound: true,
			Bytes: append(bytes.Clone(si.UnsignedAttrs.Bytes), a...)}
		b, err := asn1.Marshal(si)
		if err != nil {
			return nil, fmt.Errorf("encode signer info: %w", err)
		}
		signers = append(signers, b)
		for _, x := range c.certs {
			out.addCert(x)
		}
		for _, x := range c.crls {
			out.addCRL(x)
		}
	}
	out.others, out.otherAlgs = signers, e.algs
	return out.encodeSigners(nil)
}

// maxSigners bounds the signers of a signature taken to add one to, as
// package verify bounds what it reads: a countersignature is one key use
// per signer.
const maxSigners = 64

var oidAttrCounterSignature = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 6}

// finalSignerInfo is c's SignerInfo with its unsigned attributes.
func (c *cms) finalSignerInfo() signerInfo {
	si := c.si
	if len(c.unsAttr) > 0 {
		// The unsigned attributes keep their order (DER would sort a SET
		// OF, but ETSI EN 319 122-1 reads archive timestamps in order and
		// every verifier takes them as they come).
		si.UnsignedAttrs = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, IsCompound: true, Bytes: bytes.Join(c.unsAttr, nil)}
	}
	return si
}

// encodeMany encodes sd, whose one SignerInfo is si, with the other
// signers of a co-signed signature beside it.
func (c *cms) encodeMany(sd signedData, si signerInfo) ([]byte, error) {
	b, err := asn1.Marshal(si)
	if err != nil {
		return nil, fmt.Errorf("encode signer info: %w", err)
	}
	return c.encodeSigners(b)
}

// encodeSigners encodes a SignedData of c's certificates, crls and
// content whose signers are c.others and mine (nil for none).
func (c *cms) encodeSigners(mine []byte) ([]byte, error) {
	signers := append([][]byte(nil), c.others...)
	algs := append([][]byte(nil), c.otherAlgs...)
	version := 1
	if mine != nil {
		signers = append(signers, mine)
		a, err := asn1.Marshal(pkix.AlgorithmIdentifier{Algorithm: digestOIDs[c.h]})
		if err != nil {
			return nil, err
		}
		algs = append(algs, a)
	}
	for _, s := range signers {
		var v struct {
			Version int
			Rest    asn1.RawContent
		}
		// RFC 5652 5.1: a signer identified by subject key identifier
		// (version 3) makes the SignedData version 3.
		if _, err := asn1.Unmarshal(s, &v); err == nil && v.Version == 3 {
			version = 3
		}
	}
	encap := encapContentInfo{EContentType: oidData}
	if c.content != nil {
		oct, err := asn1.Marshal(c.content)
		if err != nil {
			return nil, fmt.Errorf("encode content: %w", err)
		}
		encap.EContent = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: oct}
	}
	sd := struct {
		Version          int
		DigestAlgorithms asn1.RawValue
		EncapContentInfo encapContentInfo
		Certificates     asn1.RawValue `asn1:"optional,tag:0"`
		CRLs             asn1.RawValue `asn1:"optional,tag:1"`
		SignerInfos      asn1.RawValue
	}{
		Version:          version,
		DigestAlgorithms: asn1.RawValue{Tag: asn1.TagSet, IsCompound: true, Bytes: setOf(dedup(algs))},
		EncapContentInfo: encap,
		Certificates:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: setOf(c.certs)},
		SignerInfos:      asn1.RawValue{Tag: asn1.TagSet, IsCompound: true, Bytes: setOf(signers)},
	}
	if len(c.crls) > 0 {
		sd.CRLs = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, IsCompound: true, Bytes: setOf(c.crls)}
	}
	inner, err := asn1.Marshal(sd)
	if err != nil {
		return nil, fmt.Errorf("encode signed data: %w", err)
	}
	out, err := asn1.Marshal(contentInfo{ContentType: oidSignedData, Content: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}})
	if err != nil {
		return nil, fmt.Errorf("encode content info: %w", err)
	}
	return out, nil
}

func dedup(elems [][]byte) [][]byte {
	var out [][]byte
	for _, e := range elems {
		seen := false
		for _, o := range out {
			seen = seen || bytes.Equal(o, e)
		}
		if !seen {
			out = append(out, e)
		}
	}
	return out
}

// CoSignCheck reports whether the CAdES signature sig could be co-signed
// or counter-signed as a signature of the document given by content or
// digest (under h): it is a SignedData over id-data whose signers'
// message digests are the document's. It returns the document's digest.
func CoSignCheck(sig, content, digest []byte, h crypto.Hash) ([]byte, error) {
	e, err := readExisting(sig)
	if err != nil {
		return nil, err
	}
	return e.contentDigest(h, content, digest)
}

// SignedContent returns what the CAdES signature sig signs, for adding a
// signer to it when only the signature is at hand (FIRe's cosign and
// countersign send nothing else): the content inside an attached one, or
// else the message digest under h of its first signer that used h.
func SignedContent(sig []byte, h crypto.Hash) (content, digest []byte, err error) {
	e, err := readExisting(sig)
	if err != nil {
		return nil, nil, err
	}
	if e.content != nil {
		return e.content, nil, nil
	}
	for _, der := range e.signers {
		var si rawSignerInfo
		if _, err := asn1.Unmarshal(der, &si); err != nil {
			return nil, nil, fmt.Errorf("%w: signer info: %v", ErrCoSign, err)
		}
		if si.DigestAlgorithm.Algorithm.Equal(digestOIDs[h]) {
			if md, ok := signedMessageDigest(si.SignedAttrs.Bytes); ok && len(md) == h.Size() {
				return nil, md, nil
			}
		}
	}
	return nil, nil, fmt.Errorf("%w: no signer used %v, and the content is not inside", ErrCoSign, h)
}
