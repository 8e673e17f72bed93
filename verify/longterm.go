package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/firma-cloud/firma/internal/cmsparse"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/tsa"
)

// Checks of the long-term levels.
const (
	// CheckValidationData is B-LT: the revocation data the signature
	// carries answers for every certificate of the signer's chain.
	CheckValidationData = "validation-data"
	// CheckArchiveTimestamp is B-LTA: each archive timestamp covers the
	// signature and its validation data as they are.
	CheckArchiveTimestamp = "archive-timestamp"
)

var (
	oidRIOCSPResponse   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 16, 2}
	oidAttrArchiveTSv3  = asn1.ObjectIdentifier{0, 4, 0, 1733, 2, 4}
	oidAttrATSHashIndex = asn1.ObjectIdentifier{0, 4, 0, 19122, 1, 5}
)

// embedded is validation material carried by a signature, checked
// offline: OCSP responses and CRLs, and the certificates alongside.
type embedded struct {
	ocsp  [][]byte
	crls  []*x509.RevocationList
	certs []*x509.Certificate
}

var _ RevocationChecker = (*embedded)(nil)

// elements splits the content of a SET OF into its encoded elements.
func elements(b []byte) ([][]byte, error) {
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

// embeddedMaterial reads SignedData.crls: CRLs, and OCSP responses as the
// other RevocationInfoChoice (RFC 5940). Entries it cannot read are left
// out; nil when there is nothing.
func embeddedMaterial(crls [][]byte, certs []*x509.Certificate) *embedded {
	e := &embedded{certs: certs}
	for _, der := range crls {
		var raw asn1.RawValue
		if _, err := asn1.Unmarshal(der, &raw); err != nil {
			continue
		}
		switch {
		case raw.Class == asn1.ClassUniversal && raw.Tag == asn1.TagSequence:
			if l, err := x509.ParseRevocationList(der); err == nil {
				e.crls = append(e.crls, l)
			}
		case raw.Class == asn1.ClassContextSpecific && raw.Tag == 1:
			var other struct {
				Format asn1.ObjectIdentifier
				Info   asn1.RawValue
			}
			if _, err := asn1.Unmarshal(append([]byte{0x30}, der[1:]...), &other); err == nil && other.Format.Equal(oidRIOCSPResponse) {
				e.ocsp = append(e.ocsp, other.Info.FullBytes)
			}
		}
	}
	if len(e.ocsp) == 0 && len(e.crls) == 0 {
		return nil
	}
	return e
}

// Revocation answers from the embedded material only: an OCSP response
// signed for issuer about cert, or a CRL of issuer.
func (e *embedded) Revocation(_ context.Context, cert, issuer *x509.Certificate) (*Revocation, error) {
	for _, der := range e.ocsp {
		r, err := ocsp.ParseResponseForCert(der, cert, issuer)
		if err != nil {
			continue
		}
		rv := &Revocation{Source: "ocsp (embedded)", ThisUpdate: r.ThisUpdate, NextUpdate: r.NextUpdate}
		switch r.Status {
		case ocsp.Good:
			rv.Status = Good
		case ocsp.Revoked:
			rv.Status, rv.RevokedAt, rv.Reason = Revoked, r.RevokedAt, r.RevocationReason
		default:
			rv.Status = Unknown
		}
		return rv, nil
	}
	for _, l := range e.crls {
		if !bytes.Equal(l.RawIssuer, issuer.RawSubject) || l.CheckSignatureFrom(issuer) != nil {
			continue
		}
		rv := &Revocation{Status: Good, Source: "crl (embedded)", ThisUpdate: l.ThisUpdate, NextUpdate: l.NextUpdate}
		for _, ent := range l.RevokedCertificateEntries {
			if ent.SerialNumber.Cmp(cert.SerialNumber) == 0 {
				rv.Status, rv.RevokedAt, rv.Reason = Revoked, ent.RevocationTime, ent.ReasonCode
			}
		}
		return rv, nil
	}
	return nil, fmt.Errorf("%w: none embedded for %q", ErrNoRevocationSource, cert.Subject.CommonName)
}

// archiveTimestamps checks every archive-time-stamp-v3 of p (EN 319 122-1
// 5.5.3) whose content digest under the signer's hash is digest.
func (v *Verifier) archiveTimestamps(p *parsed, digest []byte) (Status, string, time.Time) {
	var notes []string
	var first time.Time
	attrs := 0
	for _, a := range p.unsignedRaw {
		var at struct {
			Type   asn1.ObjectIdentifier
			Values asn1.RawValue
		}
		if _, err := asn1.Unmarshal(a, &at); err != nil {
			return Failed, "unsigned attribute: " + err.Error(), first
		}
		if !at.Type.Equal(oidAttrArchiveTSv3) {
			attrs++
			continue
		}
		vals, err := elements(at.Values.Bytes)
		if err != nil || len(vals) != 1 {
			return Failed, "archive-time-stamp-v3 holds no single token", first
		}
		tok, err := v.archiveToken(p, digest, vals[0], p.unsignedRaw[:attrs])
		if err != nil {
			return Failed, "archive timestamp: " + err.Error(), first
		}
		if first.IsZero() {
			first = tok.Time
		}
		notes = append(notes, fmt.Sprintf("archive timestamp at %s by %s covers the signature and its validation data",
			tok.Time.UTC().Format(time.RFC3339), tok.Cert.Subject.CommonName))
		attrs++
	}
	return Passed, joinNotes(notes), first
}

// archiveToken checks one archive token: its ats-hash-index-v3 must list
// exactly the certificates, revocation data and earlier unsigned
// attributes there are, and the TSA's imprint must be the hash of the
// signature's fields and that index.
func (v *Verifier) archiveToken(p *parsed, digest, tokDER []byte, before [][]byte) (*tsa.Token, error) {
	ts, err := cmsparse.Timestamp(tokDER)
	if err != nil {
		return nil, err
	}
	h := ts.HashAlgorithm
	if h != p.hash {
		return nil, fmt.Errorf("imprint under %v, the signature's content digest under %v", h, p.hash)
	}
	idx, err := tokenUnsignedAttr(tokDER, oidAttrATSHashIndex)
	if err != nil {
		return nil, err
	}
	var seq asn1.RawValue
	if rest, err := asn1.Unmarshal(idx, &seq); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("ats-hash-index-v3: %v", err)
	}
	fields, err := elements(seq.Bytes)
	if err != nil || len(fields) < 3 || len(fields) > 4 {
		return nil, fmt.Errorf("ats-hash-index-v3: %d fields (%v)", len(fields), err)
	}
	if len(fields) == 4 {
		// hashIndAlgorithm, absent for its DEFAULT SHA-256.
		if !bytes.Contains(fields[0], digestOID(h)) {
			return nil, errors.New("ats-hash-index-v3 under another hash than its token's imprint")
		}
		fields = fields[1:]
	} else if h != crypto.SHA256 {
		return nil, errors.New("ats-hash-index-v3 under SHA-256, its token's imprint under another hash")
	}
	var index struct{ Certs, CRLs, Attrs [][]byte }
	for i, dst := range []*[][]byte{&index.Certs, &index.CRLs, &index.Attrs} {
		if _, err := asn1.Unmarshal(fields[i], dst); err != nil {
			return nil, fmt.Errorf("ats-hash-index-v3: %w", err)
		}
	}
	for name, pair := range map[string][2][][]byte{"certificates": {index.Certs, p.certsRaw}, "revocation data": {index.CRLs, p.crlsRaw}} {
		if err := sameHashes(h, pair[0], pair[1]); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	// EN 319 122-1 V1.1.1 5.5.2: one entry per attribute value, over
	// attrType and that value.
	var attrs [][]byte
	for _, a := range before {
		parts, err := signer.AttributeValueParts(a)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, parts...)
	}
	if err := sameHashes(h, index.Attrs, attrs); err != nil {
		return nil, fmt.Errorf("unsigned attributes: %w", err)
	}
	var si struct {
		Version, SID, Digest asn1.RawValue
		Signed               asn1.RawValue `asn1:"optional,tag:0"`
		SigAlg, Signature    asn1.RawValue
	}
	if _, err := asn1.Unmarshal(p.si.Raw, &si); err != nil {
		return nil, err
	}
	ct, err := asn1.Marshal(p.eType)
	if err != nil {
		return nil, err
	}
	hh := h.New()
	for _, b := range [][]byte{ct, digest, si.Version.FullBytes, si.SID.FullBytes, si.Digest.FullBytes, si.Signed.FullBytes, si.SigAlg.FullBytes, si.Signature.FullBytes, idx} {
		hh.Write(b)
	}
	return tsa.VerifyToken(tokDER, tsa.VerifyOptions{Roots: v.cfg.TSARoots, Intermediates: v.cfg.Intermediates, Hash: h, Digest: hh.Sum(nil)})
}

// sameHashes reports whether every hash index lists is that of an
// element still present: nothing covered was changed or removed. Elements
// added after the archive timestamp (validation data of a renewal) are
// not listed, and not covered by it.
func sameHashes(h crypto.Hash, index, elems [][]byte) error {
	have := map[string]int{}
	for _, e := range elems {
		x := h.New()
		x.Write(e)
		have[string(x.Sum(nil))]++
	}
	for _, g := range index {
		if have[string(g)] == 0 {
			return errors.New("an element it covers was changed or removed")
		}
		have[string(g)]--
	}
	return nil
}

func digestOID(h crypto.Hash) []byte {
	oid := map[crypto.Hash]asn1.ObjectIdentifier{crypto.SHA256: oidSHA256, crypto.SHA384: oidSHA384, crypto.SHA512: oidSHA512}[h]
	b, _ := asn1.Marshal(oid)
	return b
}

// tokenUnsignedAttr returns the first value of the token's unsigned
// attribute oid.
func tokenUnsignedAttr(tok []byte, oid asn1.ObjectIdentifier) ([]byte, error) {
	ps, err := parseCMS(tok)
	if err != nil {
		return nil, err
	}
	vals := ps[0].unsigned[oid.String()]
	if len(vals) == 0 {
		return nil, errors.New("no ats-hash-index-v3 in the archive token")
	}
	return vals[0].FullBytes, nil
}

// with returns e and o's material together; o may be nil.
func (e *embedded) with(o *embedded) *embedded {
	if o == nil {
		return e
	}
	return &embedded{ocsp: append(append([][]byte{}, e.ocsp...), o.ocsp...),
		crls:  append(append([]*x509.RevocationList{}, e.crls...), o.crls...),
		certs: append(append([]*x509.Certificate{}, e.certs...), o.certs...)}
}
