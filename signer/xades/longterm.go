package xades

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/beevik/etree"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/internal/cmsparse"
	"github.com/firma-cloud/firma/signer/ltv"
)

// NSXAdES141 is the namespace of the XAdES 1.4.1 elements the long-term
// levels use (TimeStampValidationData, ArchiveTimeStamp).
const NSXAdES141 = "http://uri.etsi.org/01903/v1.4.1#"

// ErrValidation is validation material (B-LT) that could not be gathered.
var ErrValidation = errs.Sentinel(errs.Unavailable, "validation_material", "validation material unavailable")

// Validation gathers certificates and revocation data for chains, each
// leaf first: an *ltv.Gatherer, or an *ltv.Batch shared by the documents
// of one batch.
type Validation interface {
	Gather(ctx context.Context, chains ...[]*x509.Certificate) (*ltv.Material, error)
}

// rank orders the levels: B-B 0, B-T 1, B-LT 2, B-LTA 3.
func (l Level) rank() int {
	switch l {
	case LevelT:
		return 1
	case LevelLT:
		return 2
	case LevelLTA:
		return 3
	}
	return 0
}

// Extend raises the one XAdES signature in signed (enveloped, enveloping
// or detached) to opt.Level: a SignatureTimeStamp when it has none; for
// B-LT the certificates (xades:CertificateValues) and OCSP responses or
// CRLs (xades:RevocationValues) of the signer's chain, and those of the
// signature timestamp's TSA chain (xadesv141:TimeStampValidationData);
// for B-LTA an xadesv141:ArchiveTimeStamp over all of it (again, renewing
// the archive, when there is one). The signature is verified first, and
// nothing signed changes: the new unsigned properties are written into
// the signature's bytes, which stay as they were around them. detached
// gives a detached reference's content; it is needed for B-LTA, whose
// archive timestamp covers the signed data.
func Extend(ctx context.Context, signed []byte, detached Resolver, opt Options) ([]byte, error) {
	if opt.Level.rank() < 1 {
		return nil, fmt.Errorf("extend to %q: %w (want B-T, B-LT or B-LTA)", opt.Level, ErrUnsupported)
	}
	if err := opt.check(); err != nil {
		return nil, err
	}
	p, err := parseTracking(signed, opt.Limits, true)
	if err != nil {
		return nil, err
	}
	sigs, ids := signatures(p.doc)
	if len(sigs) != 1 {
		return nil, fmt.Errorf("%d XML signatures: %w (extend takes a document with one)", len(sigs), ErrUnsupported)
	}
	v := &Verified{}
	if err := verifyOne(p.doc, sigs[0], ids, detached, false, v); err != nil {
		return nil, fmt.Errorf("extend: %w", err)
	}
	if v.missing && opt.Level == LevelLTA {
		return nil, fmt.Errorf("B-LTA covers the signed data: %w", ErrNoContent)
	}
	e := &extension{p: p, v: v, opt: &opt}
	if err := e.run(ctx); err != nil {
		return nil, err
	}
	return e.output(signed), nil
}

// extension is the work of one Extend: the unsigned signature properties
// element (found or made) and what is added to the tree, to be written
// into the input's bytes at the end.
type extension struct {
	p   *parsed
	v   *Verified
	opt *Options

	usp *etree.Element
	// top is the first new ancestor of what is added (a new
	// UnsignedProperties or UnsignedSignatureProperties), placed as the
	// last child of an existing element; nil when usp existed, and then
	// added are its new children.
	top   *etree.Element
	added []*etree.Element
}

func (e *extension) run(ctx context.Context) error {
	e.findUSP()
	h := e.opt.hash()
	if e.v.Timestamp == nil {
		c14n := ExcC14N
		sv := child(e.v.sig, NSDSig, "SignatureValue")
		data, err := canonElement(sv, c14n, "")
		if err != nil {
			return err
		}
		tok, err := e.opt.Timestamper.Timestamp(ctx, h, hashOf(h, data))
		if err != nil {
			return fmt.Errorf("signature timestamp: %w: %w", ErrTimestamp, err)
		}
		ts := e.add(NSXAdES, "xades", "SignatureTimeStamp")
		ts.CreateAttr("Id", "SignatureTimeStamp-"+randomID())
		timestampContent(ts, c14n, tok)
		e.v.Timestamp = tok
	}
	if e.opt.Level.rank() >= 2 && !e.v.HasValidationData {
		if err := e.addValidationData(ctx); err != nil {
			return err
		}
	}
	if e.opt.Level == LevelLTA {
		c14n := ExcC14N
		data, err := archiveInput(e.v, e.usp, nil, c14n)
		if err != nil {
			return err
		}
		tok, err := e.opt.Timestamper.Timestamp(ctx, h, hashOf(h, data))
		if err != nil {
			return fmt.Errorf("archive timestamp: %w: %w", ErrTimestamp, err)
		}
		ats := e.add(NSXAdES141, "xadesv141", "ArchiveTimeStamp")
		ats.CreateAttr("Id", "ArchiveTimeStamp-"+randomID())
		timestampContent(ats, c14n, tok)
	}
	return nil
}

// findUSP finds the signature's UnsignedSignatureProperties, or makes it
// (and UnsignedProperties) as a new element of the tree.
func (e *extension) findUSP() {
	up := child(e.v.qp, NSXAdES, "UnsignedProperties")
	if up != nil {
		e.usp = child(up, NSXAdES, "UnsignedSignatureProperties")
	}
	if e.usp != nil {
		return
	}
	if up == nil {
		e.top = e.v.qp.CreateElement("xades:UnsignedProperties")
		e.top.CreateAttr("xmlns:xades", NSXAdES)
		e.usp = e.top.CreateElement("xades:UnsignedSignatureProperties")
		return
	}
	e.top = up.CreateElement("xades:UnsignedSignatureProperties")
	e.top.CreateAttr("xmlns:xades", NSXAdES)
	e.usp = e.top
}

// add appends a new property ns:local to the unsigned signature
// properties. Each one declares the namespaces it uses, whatever prefixes
// the signature chose for them.
func (e *extension) add(ns, prefix, local string) *etree.Element {
	el := e.usp.CreateElement(prefix + ":" + local)
	el.CreateAttr("xmlns:"+prefix, ns)
	if e.top == nil {
		e.added = append(e.added, el)
	}
	return el
}

func timestampContent(el *etree.Element, c14n string, tok []byte) {
	cm := el.CreateElement("ds:CanonicalizationMethod")
	cm.CreateAttr("xmlns:ds", NSDSig)
	cm.CreateAttr("Algorithm", c14n)
	et := el.CreateElement("xades:EncapsulatedTimeStamp")
	if el.Space != "xades" {
		et.CreateAttr("xmlns:xades", NSXAdES)
	}
	et.SetText(base64.StdEncoding.EncodeToString(tok))
}

// addValidationData gathers and adds the material of the signer's chain
// and of the signature timestamp's TSA chain.
func (e *extension) addValidationData(ctx context.Context) error {
	if e.opt.Validation == nil {
		return fmt.Errorf("level %s: %w: no validation material source configured", e.opt.Level, ErrValidation)
	}
	chain := []*x509.Certificate{e.v.Cert}
	for _, c := range e.v.Certs {
		if !c.Equal(e.v.Cert) {
			chain = append(chain, c)
		}
	}
	m, err := gather(ctx, e.opt.Validation, chain)
	if err != nil {
		return err
	}
	p7, err := cmsparse.PKCS7(e.v.Timestamp)
	if err != nil || len(p7.Certificates) == 0 {
		return fmt.Errorf("signature timestamp: %w: no certificates in the token (%v)", ErrTimestamp, err)
	}
	tm, err := gather(ctx, e.opt.Validation, p7.Certificates)
	if err != nil {
		return err
	}
	certVals := e.add(NSXAdES, "xades", "CertificateValues")
	if !certificateValues(certVals, m.Certs, e.v.Certs) {
		e.remove(certVals)
	}
	revocationValues(e.add(NSXAdES, "xades", "RevocationValues"), m)
	tsvd := e.add(NSXAdES141, "xadesv141", "TimeStampValidationData")
	tsvd.CreateAttr("xmlns:xades", NSXAdES)
	cv := tsvd.CreateElement("xades:CertificateValues")
	if !certificateValues(cv, tm.Certs, p7.Certificates) {
		tsvd.RemoveChild(cv)
	}
	revocationValues(tsvd.CreateElement("xades:RevocationValues"), tm)
	e.v.HasValidationData = true
	return nil
}

func (e *extension) remove(el *etree.Element) {
	e.usp.RemoveChild(el)
	for i, a := range e.added {
		if a == el {
			e.added = append(e.added[:i], e.added[i+1:]...)
			break
		}
	}
}

// gather asks v about chain; a revoked certificate is ltv.ErrRevoked (the
// signature is not valid), anything else ErrValidation.
func gather(ctx context.Context, v Validation, chain []*x509.Certificate) (*ltv.Material, error) {
	m, err := v.Gather(ctx, chain)
	if err != nil {
		if errors.Is(err, ltv.ErrRevoked) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrValidation, err)
	}
	return m, nil
}

// certificateValues fills el with the certificates of certs that are not
// already in have; false when there are none.
func certificateValues(el *etree.Element, certs, have []*x509.Certificate) bool {
	n := 0
	for _, c := range certs {
		if containsCert(have, c) {
			continue
		}
		el.CreateElement("xades:EncapsulatedX509Certificate").SetText(base64.StdEncoding.EncodeToString(c.Raw))
		n++
	}
	return n > 0
}

func containsCert(list []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range list {
		if x.Equal(c) {
			return true
		}
	}
	return false
}

// revocationValues fills el with m's CRLs and OCSP responses, in the
// schema's order.
func revocationValues(el *etree.Element, m *ltv.Material) {
	if len(m.CRLs) > 0 {
		cv := el.CreateElement("xades:CRLValues")
		for _, der := range m.CRLs {
			cv.CreateElement("xades:EncapsulatedCRLValue").SetText(base64.StdEncoding.EncodeToString(der))
		}
	}
	if len(m.OCSP) > 0 {
		ov := el.CreateElement("xades:OCSPValues")
		for _, der := range m.OCSP {
			ov.CreateElement("xades:EncapsulatedOCSPValue").SetText(base64.StdEncoding.EncodeToString(der))
		}
	}
}

// output writes what was added into the input's bytes.
func (e *extension) output(in []byte) []byte {
	if e.top != nil {
		parent := e.top.Parent()
		return insertAt(in, e.p.ends[parent], parent.FullTag(), e.top)
	}
	return insertAt(in, e.p.ends[e.usp], e.usp.FullTag(), e.added...)
}

// archiveInput is what an archive timestamp's imprint covers (EN 319
// 132-1 5.5.2.2, the XAdES 1.4.1 archive time-stamp): each reference's
// data as digested, in order (the SignedProperties' included); the
// canonicalised ds:SignedInfo, ds:SignatureValue and ds:KeyInfo; each
// unsigned signature property before the time-stamp ats (all of them
// when ats is nil), canonicalised, in order; and each ds:Object that no
// reference covers other than the one of the qualifying properties.
func archiveInput(v *Verified, usp, ats *etree.Element, c14n string) ([]byte, error) {
	var out bytes.Buffer
	for _, d := range v.refData {
		out.Write(d)
	}
	s := v.sig
	for _, name := range []string{"SignedInfo", "SignatureValue", "KeyInfo"} {
		el := child(s, NSDSig, name)
		if el == nil {
			if name == "KeyInfo" {
				continue
			}
			return nil, broken("no single ds:%s", name)
		}
		c, err := canonElement(el, c14n, "")
		if err != nil {
			return nil, err
		}
		out.Write(c)
	}
	for _, p := range usp.ChildElements() {
		if p == ats {
			break
		}
		c, err := canonElement(p, c14n, "")
		if err != nil {
			return nil, err
		}
		out.Write(c)
	}
	referenced := map[string]bool{}
	if si := child(s, NSDSig, "SignedInfo"); si != nil {
		for _, r := range children(si, NSDSig, "Reference") {
			if u := r.SelectAttrValue("URI", ""); strings.HasPrefix(u, "#") {
				referenced[u[1:]] = true
			}
		}
	}
	for _, o := range children(s, NSDSig, "Object") {
		if o == v.qp.Parent() || referenced[o.SelectAttrValue("Id", "")] {
			continue
		}
		c, err := canonElement(o, c14n, "")
		if err != nil {
			return nil, err
		}
		out.Write(c)
	}
	return out.Bytes(), nil
}

// readLongTerm reads the validation material and the archive timestamps
// of the unsigned signature properties usp.
func readLongTerm(usp *etree.Element, v *Verified) error {
	readValues := func(cv, rv *etree.Element) error {
		if cv != nil {
			for _, c := range children(cv, NSXAdES, "EncapsulatedX509Certificate") {
				der, err := b64(c)
				if err != nil {
					return broken("bad EncapsulatedX509Certificate")
				}
				x, err := x509.ParseCertificate(der)
				if err != nil {
					return broken("bad EncapsulatedX509Certificate: %v", err)
				}
				v.ValidationCerts = append(v.ValidationCerts, x)
			}
		}
		if rv != nil {
			for _, list := range []struct {
				outer, inner string
				to           *[][]byte
			}{{"CRLValues", "EncapsulatedCRLValue", &v.CRLs}, {"OCSPValues", "EncapsulatedOCSPValue", &v.OCSP}} {
				if o := child(rv, NSXAdES, list.outer); o != nil {
					for _, x := range children(o, NSXAdES, list.inner) {
						der, err := b64(x)
						if err != nil {
							return broken("bad %s", list.inner)
						}
						*list.to = append(*list.to, der)
					}
				}
			}
		}
		return nil
	}
	cv, rv := child(usp, NSXAdES, "CertificateValues"), child(usp, NSXAdES, "RevocationValues")
	v.HasValidationData = cv != nil || rv != nil
	if err := readValues(cv, rv); err != nil {
		return err
	}
	for _, t := range children(usp, NSXAdES141, "TimeStampValidationData") {
		if err := readValues(child(t, NSXAdES, "CertificateValues"), child(t, NSXAdES, "RevocationValues")); err != nil {
			return err
		}
	}
	for _, ats := range children(usp, NSXAdES141, "ArchiveTimeStamp") {
		alg := C14N10
		if cm := child(ats, NSDSig, "CanonicalizationMethod"); cm != nil {
			alg = cm.SelectAttrValue("Algorithm", "")
		}
		tok, err := b64(child(ats, NSXAdES, "EncapsulatedTimeStamp"))
		if err != nil {
			return broken("bad EncapsulatedTimeStamp in an ArchiveTimeStamp")
		}
		if v.missing {
			return fmt.Errorf("archive timestamp: %w", ErrNoContent)
		}
		data, err := archiveInput(v, usp, ats, alg)
		if err != nil {
			return err
		}
		v.Archive = append(v.Archive, ArchiveTimestamp{Token: tok, Data: data})
	}
	return nil
}

// SignatureTimestamp returns the DER SignatureTimeStamp token of the one
// XAdES signature in signed, nil when it has none.
func SignatureTimestamp(signed []byte, lim Limits) ([]byte, error) {
	doc, err := Parse(signed, lim)
	if err != nil {
		return nil, err
	}
	sigs, _ := signatures(doc)
	if len(sigs) != 1 {
		return nil, fmt.Errorf("%d XML signatures: %w (want one)", len(sigs), ErrUnsupported)
	}
	for _, o := range children(sigs[0], NSDSig, "Object") {
		for _, qp := range children(o, NSXAdES, "QualifyingProperties") {
			up := child(qp, NSXAdES, "UnsignedProperties")
			if up == nil {
				return nil, nil
			}
			usp := child(up, NSXAdES, "UnsignedSignatureProperties")
			if usp == nil {
				return nil, nil
			}
			if ts := children(usp, NSXAdES, "SignatureTimeStamp"); len(ts) > 0 {
				tok, err := b64(child(ts[0], NSXAdES, "EncapsulatedTimeStamp"))
				if err != nil {
					return nil, broken("bad EncapsulatedTimeStamp")
				}
				return tok, nil
			}
			return nil, nil
		}
	}
	return nil, broken("no xades:QualifyingProperties: an XMLDSig signature, not XAdES")
}
