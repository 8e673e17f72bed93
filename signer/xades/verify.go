package xades

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/firma-cloud/firma/errs"
)

// Errors of verification.
var (
	// ErrNoSignature is XML holding no ds:Signature.
	ErrNoSignature = errs.Sentinel(errs.Invalid, "no_xml_signature", "no XML signature found")
	// ErrBroken is a signature that does not verify: a changed document,
	// signed properties or signature value, or a missing part.
	ErrBroken = errors.New("XML signature does not verify")
	// ErrNoContent is a detached reference whose document was not given.
	ErrNoContent = errs.Sentinel(errs.Invalid, "no_signed_content", "detached signature: the signed content is needed")
)

// Verified is what Verify found of one signature. Err says why it does
// not verify (wrapping ErrBroken, ErrUnsupported or ErrNoContent); the
// other fields are filled as far as they could be read.
type Verified struct {
	Err error
	// Cert is the signer's certificate, the one of KeyInfo that the
	// SigningCertificate(V2) property names; Certs are all of KeyInfo.
	Cert        *x509.Certificate
	Certs       []*x509.Certificate
	Hash        crypto.Hash // of the references
	SigningTime time.Time
	MimeType    string
	Policy      *Policy
	Packaging   Packaging
	// Detached lists the URIs of detached references, as written.
	Detached        []string
	HasSignedCertV2 bool
	// Timestamp is the DER SignatureTimeStamp token (nil at B-B) and
	// TimestampData what its imprint must be the hash of: the ds:
	// SignatureValue element canonicalised as the time-stamp says.
	Timestamp     []byte
	TimestampData []byte
	// Validation material (B-LT): the certificates of CertificateValues,
	// the OCSP responses (DER OCSPResponse) and CRLs of RevocationValues,
	// with the TSA's of TimeStampValidationData added.
	ValidationCerts []*x509.Certificate
	OCSP, CRLs      [][]byte
	// HasValidationData is whether CertificateValues or RevocationValues
	// are present.
	HasValidationData bool
	// Archive are the ArchiveTimeStamps (B-LTA) in order, each with what
	// its imprint must be the hash of.
	Archive []ArchiveTimestamp

	// Of the signature in the tree, for Extend.
	sig, qp  *etree.Element
	refData  [][]byte // each reference's data as digested, in order
	missing  bool     // a detached reference's content was not given
	c14nAlgo string   // SignedInfo's
}

// ArchiveTimestamp is an xadesv141:ArchiveTimeStamp: its DER token and
// the input its imprint covers (EN 319 132-1 5.5.2).
type ArchiveTimestamp struct {
	Token, Data []byte
}

// Level is the level the signature's structure claims: B-LTA with an
// archive timestamp, B-LT with a signature timestamp and validation
// material, B-T with a signature timestamp. Whether the material is
// enough is the verify package's judgement.
func (v *Verified) Level() Level {
	switch {
	case v.Timestamp != nil && v.HasValidationData && len(v.Archive) > 0:
		return LevelLTA
	case v.Timestamp != nil && v.HasValidationData:
		return LevelLT
	case v.Timestamp != nil:
		return LevelT
	}
	return LevelB
}

// Resolver gives the content of a detached reference by its URI.
type Resolver func(uri string) ([]byte, bool)

// Verify checks every ds:Signature in b: each reference's digest (the
// document, with the enveloped-signature transform; an element by Id; or
// a detached document from detached), the signed properties' reference,
// the SigningCertificate(V2) binding and the signature value. It neither
// fetches anything nor judges trust: the caller checks the chain of
// Cert and the Timestamp token over TimestampData.
func Verify(b []byte, detached Resolver, lim Limits) ([]*Verified, error) {
	doc, err := Parse(b, lim)
	if err != nil {
		return nil, err
	}
	sigs, ids := signatures(doc)
	if len(sigs) == 0 {
		return nil, ErrNoSignature
	}
	out := make([]*Verified, 0, len(sigs))
	for _, s := range sigs {
		v := &Verified{}
		v.Err = verifyOne(doc, s, ids, detached, true, v)
		out = append(out, v)
	}
	return out, nil
}

// signatures returns the ds:Signature elements of doc and its elements by
// Id.
func signatures(doc *etree.Document) ([]*etree.Element, map[string][]*etree.Element) {
	var sigs []*etree.Element
	ids := map[string][]*etree.Element{}
	walk(doc.Root(), func(e *etree.Element) {
		if is(e, NSDSig, "Signature") {
			sigs = append(sigs, e)
		}
		for _, a := range e.Attr {
			if a.Space == "" && (a.Key == "Id" || a.Key == "ID" || a.Key == "id") {
				ids[a.Value] = append(ids[a.Value], e)
			}
		}
	})
	return sigs, ids
}

func walk(e *etree.Element, f func(*etree.Element)) {
	f(e)
	for _, c := range e.ChildElements() {
		walk(c, f)
	}
}

func is(e *etree.Element, ns, local string) bool {
	return e != nil && e.Tag == local && e.NamespaceURI() == ns
}

// child is the only child element ns:local of e, or nil.
func child(e *etree.Element, ns, local string) *etree.Element {
	var found *etree.Element
	for _, c := range e.ChildElements() {
		if is(c, ns, local) {
			if found != nil {
				return nil
			}
			found = c
		}
	}
	return found
}

func children(e *etree.Element, ns, local string) []*etree.Element {
	var out []*etree.Element
	for _, c := range e.ChildElements() {
		if is(c, ns, local) {
			out = append(out, c)
		}
	}
	return out
}

func broken(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrBroken, fmt.Sprintf(format, a...))
}

func b64(e *etree.Element) ([]byte, error) {
	if e == nil {
		return nil, errors.New("missing")
	}
	return base64.StdEncoding.DecodeString(strings.Join(strings.Fields(e.Text()), ""))
}

func hashByURI(uri string) (crypto.Hash, bool) {
	for h, u := range digestURIs {
		if u == uri {
			return h, true
		}
	}
	return 0, false
}

// verifyOne checks the signature s of doc into v. needContent false lets
// a detached reference whose content is not given pass unchecked, marked
// in v.missing, for Extend to add what needs no content.
func verifyOne(doc *etree.Document, s *etree.Element, ids map[string][]*etree.Element, detached Resolver, needContent bool, v *Verified) error {
	v.sig = s
	si := child(s, NSDSig, "SignedInfo")
	if si == nil {
		return broken("no single ds:SignedInfo")
	}
	cm := child(si, NSDSig, "CanonicalizationMethod")
	sm := child(si, NSDSig, "SignatureMethod")
	if cm == nil || sm == nil {
		return broken("SignedInfo lacks CanonicalizationMethod or SignatureMethod")
	}
	// Certificates of KeyInfo.
	if ki := child(s, NSDSig, "KeyInfo"); ki != nil {
		for _, xd := range children(ki, NSDSig, "X509Data") {
			for _, xc := range children(xd, NSDSig, "X509Certificate") {
				der, err := b64(xc)
				if err != nil {
					return broken("bad X509Certificate: %v", err)
				}
				c, err := x509.ParseCertificate(der)
				if err != nil {
					return broken("bad X509Certificate: %v", err)
				}
				v.Certs = append(v.Certs, c)
			}
		}
	}
	// The qualifying properties of this signature.
	sigID := s.SelectAttrValue("Id", "")
	var qp *etree.Element
	for _, o := range children(s, NSDSig, "Object") {
		for _, q := range children(o, NSXAdES, "QualifyingProperties") {
			if qp != nil {
				return broken("more than one QualifyingProperties")
			}
			qp = q
		}
	}
	if qp == nil {
		return broken("no xades:QualifyingProperties: an XMLDSig signature, not XAdES")
	}
	v.qp = qp
	if sigID == "" || qp.SelectAttrValue("Target", "") != "#"+sigID {
		return broken("QualifyingProperties Target does not name this signature")
	}
	sp := child(qp, NSXAdES, "SignedProperties")
	if sp == nil {
		return broken("no single SignedProperties")
	}
	if err := readProperties(sp, qp, s, v); err != nil {
		return err
	}

	// References.
	refs := children(si, NSDSig, "Reference")
	signedPropsRefs, docRefs := 0, 0
	for _, ref := range refs {
		uri := ref.SelectAttrValue("URI", "")
		hasURI := ref.SelectAttr("URI") != nil
		h, ok := hashByURI(attrOf(child(ref, NSDSig, "DigestMethod"), "Algorithm"))
		if !ok {
			return fmt.Errorf("reference %q: digest method: %w (want SHA-256, SHA-384 or SHA-512)", uri, ErrUnsupported)
		}
		want, err := b64(child(ref, NSDSig, "DigestValue"))
		if err != nil {
			return broken("reference %q: bad DigestValue", uri)
		}
		var transforms []*etree.Element
		if ts := child(ref, NSDSig, "Transforms"); ts != nil {
			transforms = children(ts, NSDSig, "Transform")
		}
		var target *etree.Element
		var data []byte
		switch {
		case hasURI && uri == "":
			target = doc.Root()
			v.Packaging = Enveloped
		case strings.HasPrefix(uri, "#"):
			els := ids[uri[1:]]
			if len(els) != 1 {
				return broken("reference %q names %d elements (want exactly 1)", uri, len(els))
			}
			target = els[0]
		case !hasURI:
			return broken("reference without URI")
		default:
			if len(transforms) > 0 {
				return fmt.Errorf("detached reference %q with transforms: %w", uri, ErrUnsupported)
			}
			v.Packaging = Detached
			v.Detached = append(v.Detached, uri)
			var content []byte
			ok := false
			if detached != nil {
				content, ok = detached(uri)
			}
			if !ok && needContent {
				return fmt.Errorf("reference %q: %w", uri, ErrNoContent)
			}
			if !ok {
				v.missing = true
				v.refData = append(v.refData, nil)
				docRefs++
				v.Hash = h
				continue
			}
			data = content
		}
		if ref.SelectAttrValue("Type", "") == TypeSignedProps {
			if target != sp {
				return broken("the SignedProperties reference %q does not point at this signature's SignedProperties", uri)
			}
			signedPropsRefs++
		} else {
			docRefs++
			v.Hash = h
			if target != nil && target.Parent() != nil && is(target.Parent(), NSDSig, "Signature") && is(target, NSDSig, "Object") && v.Packaging == "" {
				v.Packaging = Enveloping
			}
		}
		if target != nil {
			if data, err = transform(doc, s, target, uri == "", transforms); err != nil {
				return fmt.Errorf("reference %q: %w", uri, err)
			}
		}
		if got := hashOf(h, data); !bytes.Equal(got, want) {
			return broken("reference %q: digest does not match (the signed data was changed)", uri)
		}
		v.refData = append(v.refData, data)
	}
	if signedPropsRefs != 1 || docRefs == 0 {
		return broken("%d references to SignedProperties (want 1) and %d to data (want at least 1)", signedPropsRefs, docRefs)
	}

	// The signature value, with the certificate the signed properties name.
	if v.Cert == nil {
		return broken("no certificate of KeyInfo matches the signed SigningCertificate property")
	}
	c14n := cm.SelectAttrValue("Algorithm", "")
	v.c14nAlgo = c14n
	canon, err := canonElement(si, c14n, prefixList(cm))
	if err != nil {
		return err
	}
	sv := child(s, NSDSig, "SignatureValue")
	sig, err := b64(sv)
	if err != nil {
		return broken("bad SignatureValue")
	}
	if err := checkSignature(v.Cert.PublicKey, sm.SelectAttrValue("Algorithm", ""), canon, sig); err != nil {
		return err
	}
	// The signature timestamp, if any: what its imprint must cover.
	if uus := child(qp, NSXAdES, "UnsignedProperties"); uus != nil {
		if usp := child(uus, NSXAdES, "UnsignedSignatureProperties"); usp != nil {
			if ts := children(usp, NSXAdES, "SignatureTimeStamp"); len(ts) > 0 {
				tcm := child(ts[0], NSDSig, "CanonicalizationMethod")
				alg := C14N10 // the default of XAdES time-stamps
				if tcm != nil {
					alg = tcm.SelectAttrValue("Algorithm", "")
				}
				if v.Timestamp, err = b64(child(ts[0], NSXAdES, "EncapsulatedTimeStamp")); err != nil {
					return broken("bad EncapsulatedTimeStamp")
				}
				if v.TimestampData, err = canonElement(sv, alg, ""); err != nil {
					return err
				}
			}
			return readLongTerm(usp, v)
		}
	}
	return nil
}

// attrOf is e's attribute key, "" when e is nil or lacks it.
func attrOf(e *etree.Element, key string) string {
	if e == nil {
		return ""
	}
	return e.SelectAttrValue(key, "")
}

func prefixList(cm *etree.Element) string {
	for _, c := range cm.ChildElements() {
		if c.Tag == "InclusiveNamespaces" {
			return c.SelectAttrValue("PrefixList", "")
		}
	}
	return ""
}

// transform applies a reference's transforms to target: only the
// enveloped-signature transform, C14N and base64 are accepted, so no
// XPath or XSLT from a signature is ever run.
func transform(doc *etree.Document, s, target *etree.Element, whole bool, transforms []*etree.Element) ([]byte, error) {
	c14n := C14N10 // a node-set left at the end is canonicalised with C14N 1.0
	prefixes := ""
	enveloped, b64t := false, false
	for i, t := range transforms {
		switch alg := t.SelectAttrValue("Algorithm", ""); alg {
		case TransformEnv:
			enveloped = true
		case TransformBase64:
			if i != len(transforms)-1 {
				return nil, fmt.Errorf("base64 not last: %w", ErrUnsupported)
			}
			b64t = true
		default:
			if _, _, err := canonicalizer(alg, ""); err != nil {
				return nil, fmt.Errorf("transform %q: %w", alg, ErrUnsupported)
			}
			c14n, prefixes = alg, prefixList(t)
		}
	}
	if b64t {
		d, err := b64(target)
		if err != nil {
			return nil, broken("base64 content: %v", err)
		}
		return d, nil
	}
	if enveloped {
		p := s.Parent()
		if p == nil || !within(s, target) {
			return nil, broken("enveloped-signature transform on data that does not hold the signature")
		}
		i := s.Index()
		p.RemoveChildAt(i)
		defer p.InsertChildAt(i, s)
	}
	if whole {
		return canonDocument(doc, withoutComments(c14n), prefixes)
	}
	return canonElement(target, withoutComments(c14n), prefixes)
}

func within(e, ancestor *etree.Element) bool {
	for p := e.Parent(); p != nil; p = p.Parent() {
		if p == ancestor {
			return true
		}
	}
	return false
}

// readProperties reads the signed properties and finds the signer's
// certificate by SigningCertificateV2 (or the older SigningCertificate).
func readProperties(sp, qp, s *etree.Element, v *Verified) error {
	ssp := child(sp, NSXAdES, "SignedSignatureProperties")
	if ssp == nil {
		return broken("no SignedSignatureProperties")
	}
	if st := child(ssp, NSXAdES, "SigningTime"); st != nil {
		t, err := time.Parse(time.RFC3339, strings.TrimSpace(st.Text()))
		if err != nil {
			return broken("bad SigningTime %q", st.Text())
		}
		v.SigningTime = t
	}
	sc := child(ssp, NSXAdES, "SigningCertificateV2")
	v.HasSignedCertV2 = sc != nil
	if sc == nil {
		sc = child(ssp, NSXAdES, "SigningCertificate")
	}
	if sc == nil {
		return broken("no SigningCertificateV2 (or SigningCertificate) property")
	}
	cert := child(sc, NSXAdES, "Cert")
	if cert == nil {
		return broken("SigningCertificate property holds no single Cert")
	}
	cd := child(cert, NSXAdES, "CertDigest")
	if cd == nil {
		return broken("no CertDigest")
	}
	h, ok := hashByURI(attrOf(child(cd, NSDSig, "DigestMethod"), "Algorithm"))
	if !ok {
		return fmt.Errorf("CertDigest method: %w", ErrUnsupported)
	}
	want, err := b64(child(cd, NSDSig, "DigestValue"))
	if err != nil {
		return broken("bad CertDigest value")
	}
	for _, c := range v.Certs {
		if bytes.Equal(hashOf(h, c.Raw), want) {
			v.Cert = c
			break
		}
	}
	if v.Cert != nil && v.HasSignedCertV2 {
		if is := child(cert, NSXAdES, "IssuerSerialV2"); is != nil {
			got, err := b64(is)
			exp, err2 := issuerSerialV2(v.Cert)
			if err != nil || err2 != nil || !bytes.Equal(got, exp) {
				return broken("IssuerSerialV2 does not name the signer's certificate")
			}
		}
	}
	if sdop := child(sp, NSXAdES, "SignedDataObjectProperties"); sdop != nil {
		if dof := children(sdop, NSXAdES, "DataObjectFormat"); len(dof) > 0 {
			if m := child(dof[0], NSXAdES, "MimeType"); m != nil {
				v.MimeType = m.Text()
			}
		}
	}
	if spi := child(ssp, NSXAdES, "SignaturePolicyIdentifier"); spi != nil {
		if id := child(spi, NSXAdES, "SignaturePolicyId"); id != nil {
			p := &Policy{}
			if sid := child(id, NSXAdES, "SigPolicyId"); sid != nil {
				if i := child(sid, NSXAdES, "Identifier"); i != nil {
					p.Identifier = strings.TrimSpace(i.Text())
				}
				if d := child(sid, NSXAdES, "Description"); d != nil {
					p.Description = d.Text()
				}
			}
			if ph := child(id, NSXAdES, "SigPolicyHash"); ph != nil {
				if dm := child(ph, NSDSig, "DigestMethod"); dm != nil {
					for h, u := range policyDigestURIs {
						if u == dm.SelectAttrValue("Algorithm", "") {
							p.Hash = h
						}
					}
				}
				p.Digest, _ = b64(child(ph, NSDSig, "DigestValue"))
			}
			v.Policy = p
		}
	}
	return nil
}

// checkSignature verifies sig over data with pub under the SignatureMethod
// method.
func checkSignature(pub crypto.PublicKey, method string, data, sig []byte) error {
	find := func(m map[crypto.Hash]string) crypto.Hash {
		for h, u := range m {
			if u == method {
				return h
			}
		}
		return 0
	}
	switch pub := pub.(type) {
	case *ecdsa.PublicKey:
		h := find(ecdsaURIs)
		if h == 0 {
			return fmt.Errorf("signature method %q for an EC key: %w", method, ErrUnsupported)
		}
		n := (pub.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*n {
			return broken("ECDSA signature of %d bytes (want %d)", len(sig), 2*n)
		}
		r, s := new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])
		if !ecdsa.Verify(pub, hashOf(h, data), r, s) {
			return broken("the signature value does not verify (SignedInfo or the signature was changed)")
		}
		return nil
	case *rsa.PublicKey:
		var err error
		if h := find(rsaURIs); h != 0 {
			err = rsa.VerifyPKCS1v15(pub, h, hashOf(h, data), sig)
		} else if h := find(pssURIs); h != 0 {
			err = rsa.VerifyPSS(pub, h, hashOf(h, data), sig, &rsa.PSSOptions{SaltLength: h.Size(), Hash: h})
		} else {
			return fmt.Errorf("signature method %q for an RSA key: %w", method, ErrUnsupported)
		}
		if err != nil {
			return broken("the signature value does not verify (SignedInfo or the signature was changed)")
		}
		return nil
	}
	return fmt.Errorf("public key %T: %w", pub, ErrUnsupported)
}
