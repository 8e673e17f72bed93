package xades

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha1"   // the digest of a policy document
	_ "crypto/sha256" // SHA-256 digests
	_ "crypto/sha512" // SHA-384 and SHA-512 digests
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"time"

	"github.com/beevik/etree"

	"github.com/firma-cloud/firma/errs"
)

// Sentinel errors of signing, told apart with errors.Is.
var (
	ErrUnsupported = errs.Sentinel(errs.Invalid, "xades_unsupported", "unsupported XAdES option")
	ErrCertificate = errs.Sentinel(errs.Invalid, "xades_certificate", "signer certificate does not match the key")
	ErrTimestamp   = errs.Sentinel(errs.Unavailable, "timestamp_failed", "timestamp failed")
	ErrDigest      = errs.Sentinel(errs.Invalid, "format_digest_length", "digest length does not match the hash")
	ErrName        = errs.Sentinel(errs.Invalid, "xades_document_name", "bad name for a detached document")
)

// Namespaces and type URIs of XMLDSig and XAdES (ETSI EN 319 132-1).
const (
	NSDSig          = "http://www.w3.org/2000/09/xmldsig#"
	NSXAdES         = "http://uri.etsi.org/01903/v1.3.2#"
	TypeSignedProps = "http://uri.etsi.org/01903#SignedProperties"
	TransformEnv    = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
	TransformBase64 = "http://www.w3.org/2000/09/xmldsig#base64"
)

// Level is the baseline level.
type Level string

// Baseline levels made here.
const (
	LevelB Level = "B-B"
	LevelT Level = "B-T"
	// LevelLT adds the validation material of the signer's and the TSA's
	// chains; LevelLTA an archive timestamp over everything (Extend).
	LevelLT  Level = "B-LT"
	LevelLTA Level = "B-LTA"
)

// Packaging is where the signature stands relative to what it signs.
type Packaging string

// Packagings.
const (
	// Enveloped: the signature is the last child of the signed XML
	// document's root element.
	Enveloped Packaging = "enveloped"
	// Enveloping: the signed content (an XML element, or any bytes in
	// base64) is a ds:Object inside the signature.
	Enveloping Packaging = "enveloping"
	// Detached: the signature refers to a document kept apart, by name.
	Detached Packaging = "detached"
)

// Timestamper obtains RFC 3161 tokens; signer.Timestamper and the tsa
// client (through signer.TimestamperFunc) satisfy it.
type Timestamper interface {
	Timestamp(ctx context.Context, h crypto.Hash, digest []byte) ([]byte, error)
}

// Policy is an explicit signature policy (XAdES-EPES): its identifier,
// the digest of the policy document, and optionally where to read it.
type Policy struct {
	Identifier  string // a URI, or an OID as urn:oid:...
	Description string
	Hash        crypto.Hash
	Digest      []byte
	URL         string // SPURI qualifier
}

// PolicyFacturae31 is the FacturaE signature policy 3.1 (XAdES-EPES for
// electronic invoices), with the SHA-1 digest of its document as FacturaE
// signers declare it.
var PolicyFacturae31 = Policy{
	Identifier:  "http://www.facturae.es/politica_de_firma_formato_facturae/politica_de_firma_formato_facturae_v3_1.pdf",
	Description: "Política de Firma FacturaE v3.1",
	Hash:        crypto.SHA1,
	Digest:      mustB64("Ohixl6upD6av8N7pEvDABhEL6hM="),
}

func mustB64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Options tune a signature. The zero value gives an enveloped B-B with
// SHA-256, exclusive C14N and PKCS#1 v1.5 for RSA keys.
type Options struct {
	Level     Level
	Packaging Packaging
	Hash      crypto.Hash
	PSS       bool // RSA keys sign with RSASSA-PSS (RFC 6931 sha*-rsa-MGF1)
	// SigningTime is the signed xades:SigningTime; zero means now.
	SigningTime time.Time
	// Timestamper is required for LevelT and above.
	Timestamper Timestamper
	// Validation gathers the material of LevelLT and above.
	Validation Validation
	// Canonicalization is the C14N of SignedInfo and the references; ""
	// means ExcC14N.
	Canonicalization string
	// MimeType goes into DataObjectFormat; "" means text/xml for XML and
	// application/octet-stream otherwise.
	MimeType string
	// Name is a detached document's reference URI, a relative name such
	// as "factura.pdf"; "" means "document".
	Name   string
	Policy *Policy
	Limits Limits
}

func (o *Options) hash() crypto.Hash {
	if o.Hash == 0 {
		return crypto.SHA256
	}
	return o.Hash
}

func (o *Options) c14n() string {
	if o.Canonicalization == "" {
		return ExcC14N
	}
	return o.Canonicalization
}

func (o *Options) check() error {
	switch o.Level {
	case "", LevelB, LevelT, LevelLT, LevelLTA:
	default:
		return fmt.Errorf("level %q: %w (want B-B, B-T, B-LT or B-LTA)", o.Level, ErrUnsupported)
	}
	if o.Level.rank() >= 1 && o.Timestamper == nil {
		return fmt.Errorf("level %s: %w: no timestamper configured", o.Level, ErrTimestamp)
	}
	if o.Level.rank() >= 2 && o.Validation == nil {
		return fmt.Errorf("level %s: %w: no validation material source configured", o.Level, ErrValidation)
	}
	switch o.Packaging {
	case "", Enveloped, Enveloping, Detached:
	default:
		return fmt.Errorf("packaging %q: %w (want enveloped, enveloping or detached)", o.Packaging, ErrUnsupported)
	}
	if _, ok := digestURIs[o.hash()]; !ok {
		return fmt.Errorf("%v: %w (want SHA-256, SHA-384 or SHA-512)", o.hash(), ErrUnsupported)
	}
	if _, _, err := canonicalizer(o.c14n(), ""); err != nil {
		return err
	}
	if p := o.Policy; p != nil {
		if _, ok := policyDigestURIs[p.Hash]; !ok || p.Identifier == "" || len(p.Digest) != p.Hash.Size() {
			return fmt.Errorf("signature policy %q: %w: needs an identifier and a SHA-1 or SHA-2 digest", p.Identifier, ErrUnsupported)
		}
	}
	return nil
}

var (
	digestURIs = map[crypto.Hash]string{
		crypto.SHA256: "http://www.w3.org/2001/04/xmlenc#sha256",
		crypto.SHA384: "http://www.w3.org/2001/04/xmldsig-more#sha384",
		crypto.SHA512: "http://www.w3.org/2001/04/xmlenc#sha512",
	}
	// policyDigestURIs add SHA-1, which published policies (FacturaE's)
	// identify their document by; it signs nothing.
	policyDigestURIs = map[crypto.Hash]string{
		crypto.SHA1:   "http://www.w3.org/2000/09/xmldsig#sha1",
		crypto.SHA256: "http://www.w3.org/2001/04/xmlenc#sha256",
		crypto.SHA384: "http://www.w3.org/2001/04/xmldsig-more#sha384",
		crypto.SHA512: "http://www.w3.org/2001/04/xmlenc#sha512",
	}
	ecdsaURIs = map[crypto.Hash]string{
		crypto.SHA256: "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
		crypto.SHA384: "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
		crypto.SHA512: "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
	}
	rsaURIs = map[crypto.Hash]string{
		crypto.SHA256: "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
		crypto.SHA384: "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
		crypto.SHA512: "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
	}
	pssURIs = map[crypto.Hash]string{
		crypto.SHA256: "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1",
		crypto.SHA384: "http://www.w3.org/2007/05/xmldsig-more#sha384-rsa-MGF1",
		crypto.SHA512: "http://www.w3.org/2007/05/xmldsig-more#sha512-rsa-MGF1",
	}
)

// signatureMethod returns the SignatureMethod URI and the options the
// key's Sign takes.
func signatureMethod(pub crypto.PublicKey, h crypto.Hash, pss bool) (string, crypto.SignerOpts, error) {
	switch pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsaURIs[h], h, nil
	case *rsa.PublicKey:
		if pss {
			return pssURIs[h], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}, nil
		}
		return rsaURIs[h], h, nil
	}
	return "", nil, fmt.Errorf("public key %T: %w", pub, ErrUnsupported)
}

// Sign signs doc. Enveloped needs doc to be XML and returns it with the
// signature inside; enveloping returns a ds:Signature holding doc (an XML
// element when doc is XML, base64 otherwise); detached returns a
// ds:Signature referring to doc by opt.Name.
//
// B-LT and B-LTA are made at B-T and raised by Extend; B-LTA of a detached
// signature needs the document, so SignDigest cannot make it.
func Sign(ctx context.Context, doc []byte, key crypto.Signer, chain []*x509.Certificate, opt Options) ([]byte, error) {
	out, err := sign(ctx, doc, key, chain, opt)
	if err != nil || opt.Level.rank() < 2 {
		return out, err
	}
	var resolve Resolver
	if opt.Packaging == Detached {
		name, _ := refName(opt.Name)
		resolve = func(uri string) ([]byte, bool) { return doc, uri == name }
	}
	return Extend(ctx, out, resolve, opt)
}

func sign(ctx context.Context, doc []byte, key crypto.Signer, chain []*x509.Certificate, opt Options) ([]byte, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	lim := opt.Limits.orDefault()
	if len(doc) > lim.MaxBytes {
		return nil, fmt.Errorf("%d bytes, over %d: %w", len(doc), lim.MaxBytes, ErrTooLarge)
	}
	s, err := newSig(key, chain, &opt)
	if err != nil {
		return nil, err
	}
	h := opt.hash()
	switch opt.Packaging {
	case "", Enveloped:
		p, err := parse(doc, lim)
		if err != nil {
			return nil, err
		}
		// The signature's place in the document, for its namespace context:
		// the root's attributes without its content, taken before the tree
		// is consumed by its canonicalisation.
		root := p.doc.Root()
		at := etree.NewElement(root.FullTag())
		at.Attr = append(at.Attr, root.Attr...)
		c, err := canonDoc(p.doc, withoutComments(opt.c14n()), "", true)
		if err != nil {
			return nil, err
		}
		s.addDocRef("", []string{TransformEnv, opt.c14n()}, hashOf(h, c), mimeOr(opt.MimeType, "text/xml"))
		at.AddChild(s.sig)
		if err := s.finish(ctx); err != nil {
			return nil, err
		}
		return p.insert(doc, s.sig), nil
	case Enveloping:
		obj := s.sig.CreateElement("ds:Object")
		obj.CreateAttr("Id", "Object-"+s.id)
		var digest []byte
		var transforms []string
		var mime string
		if IsXML(doc) {
			tree, err := Parse(doc, lim)
			if err != nil {
				return nil, err
			}
			mime = mimeOr(opt.MimeType, "text/xml")
			obj.CreateAttr("MimeType", mime)
			obj.AddChild(tree.Root())
			c, err := canonElement(obj, withoutComments(opt.c14n()), "")
			if err != nil {
				return nil, err
			}
			digest, transforms = hashOf(h, c), []string{opt.c14n()}
		} else {
			mime = mimeOr(opt.MimeType, "application/octet-stream")
			obj.CreateAttr("MimeType", mime)
			obj.CreateAttr("Encoding", TransformBase64)
			obj.SetText(base64.StdEncoding.EncodeToString(doc))
			digest, transforms = hashOf(h, doc), []string{TransformBase64}
		}
		s.addDocRef("#Object-"+s.id, transforms, digest, mime)
		// The content stays before the qualifying properties' ds:Object.
		s.sig.RemoveChild(obj)
		return s.standalone(ctx, obj)
	default:
		return signDetached(ctx, []DetachedDoc{{Name: opt.Name, Digest: hashOf(h, doc), MimeType: opt.MimeType}}, key, chain, opt)
	}
}

// SignDigest returns a detached signature over a document known only by
// its digest under opt.Hash, referred to as opt.Name.
func SignDigest(ctx context.Context, digest []byte, key crypto.Signer, chain []*x509.Certificate, opt Options) ([]byte, error) {
	return SignDetached(ctx, []DetachedDoc{{Name: opt.Name, Digest: digest, MimeType: opt.MimeType}}, key, chain, opt)
}

// DetachedDoc is one document a detached signature covers: its name (the
// reference URI), its digest under Options.Hash and its media type.
type DetachedDoc struct {
	Name     string
	Digest   []byte
	MimeType string
}

// SignDetached returns one ds:Signature with a reference (and a
// DataObjectFormat) for each of docs, as an ASiC-E container holds.
func SignDetached(ctx context.Context, docs []DetachedDoc, key crypto.Signer, chain []*x509.Certificate, opt Options) ([]byte, error) {
	out, err := signDetached(ctx, docs, key, chain, opt)
	if err != nil || opt.Level.rank() < 2 {
		return out, err
	}
	return Extend(ctx, out, nil, opt)
}

func signDetached(ctx context.Context, docs []DetachedDoc, key crypto.Signer, chain []*x509.Certificate, opt Options) ([]byte, error) {
	opt.Packaging = Detached
	if err := opt.check(); err != nil {
		return nil, err
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("no document: %w", ErrName)
	}
	s, err := newSig(key, chain, &opt)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, d := range docs {
		if len(d.Digest) != opt.hash().Size() {
			return nil, fmt.Errorf("%d bytes for %v: %w", len(d.Digest), opt.hash(), ErrDigest)
		}
		name, err := refName(d.Name)
		if err != nil {
			return nil, err
		}
		if seen[name] {
			return nil, fmt.Errorf("%q twice: %w", name, ErrName)
		}
		seen[name] = true
		s.addDocRef(name, nil, d.Digest, mimeOr(d.MimeType, "application/octet-stream"))
	}
	return s.standalone(ctx, nil)
}

// refName checks a detached document's name: a plain relative name, so
// that no verifier is led to fetch anything from elsewhere.
func refName(name string) (string, error) {
	if name == "" {
		return "document", nil
	}
	u, err := url.Parse(name)
	if err != nil || u.Scheme != "" || u.Host != "" || strings.HasPrefix(name, "#") || strings.HasPrefix(name, "/") ||
		strings.Contains(name, "..") || strings.ContainsAny(name, "\\\x00") || len(name) > 200 {
		return "", fmt.Errorf("%q: %w (want a plain relative file name)", name, ErrName)
	}
	return (&url.URL{Path: name}).String(), nil
}

func mimeOr(m, dflt string) string {
	if m == "" {
		return dflt
	}
	return m
}

func hashOf(h crypto.Hash, b []byte) []byte {
	hh := h.New()
	hh.Write(b)
	return hh.Sum(nil)
}

// sig is a signature being built.
type sig struct {
	key   crypto.Signer
	chain []*x509.Certificate
	opt   *Options
	id    string

	sig, signedInfo, signedProps, dataObjects, qp *etree.Element
	refs                                          int
}

func newSig(key crypto.Signer, chain []*x509.Certificate, opt *Options) (*sig, error) {
	if len(chain) == 0 {
		return nil, fmt.Errorf("no certificate: %w", ErrCertificate)
	}
	cert := chain[0]
	if e, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !e.Equal(key.Public()) {
		return nil, fmt.Errorf("certificate %q: %w", cert.Subject.CommonName, ErrCertificate)
	}
	method, _, err := signatureMethod(key.Public(), opt.hash(), opt.PSS)
	if err != nil {
		return nil, err
	}
	s := &sig{key: key, chain: chain, opt: opt, id: randomID()}
	h := opt.hash()

	s.sig = etree.NewElement("ds:Signature")
	s.sig.CreateAttr("xmlns:ds", NSDSig)
	s.sig.CreateAttr("Id", "Signature-"+s.id)
	s.signedInfo = s.sig.CreateElement("ds:SignedInfo")
	s.signedInfo.CreateElement("ds:CanonicalizationMethod").CreateAttr("Algorithm", opt.c14n())
	s.signedInfo.CreateElement("ds:SignatureMethod").CreateAttr("Algorithm", method)

	x509Data := s.sig.CreateElement("ds:KeyInfo").CreateElement("ds:X509Data")
	for _, c := range chain {
		x509Data.CreateElement("ds:X509Certificate").SetText(base64.StdEncoding.EncodeToString(c.Raw))
	}

	obj := s.sig.CreateElement("ds:Object")
	s.qp = obj.CreateElement("xades:QualifyingProperties")
	s.qp.CreateAttr("xmlns:xades", NSXAdES)
	s.qp.CreateAttr("Target", "#Signature-"+s.id)
	s.signedProps = s.qp.CreateElement("xades:SignedProperties")
	s.signedProps.CreateAttr("Id", "SignedProperties-"+s.id)
	ssp := s.signedProps.CreateElement("xades:SignedSignatureProperties")
	at := opt.SigningTime
	if at.IsZero() {
		at = time.Now()
	}
	ssp.CreateElement("xades:SigningTime").SetText(at.UTC().Truncate(time.Second).Format(time.RFC3339))
	certEl := ssp.CreateElement("xades:SigningCertificateV2").CreateElement("xades:Cert")
	cd := certEl.CreateElement("xades:CertDigest")
	cd.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", digestURIs[h])
	cd.CreateElement("ds:DigestValue").SetText(base64.StdEncoding.EncodeToString(hashOf(h, cert.Raw)))
	is, err := issuerSerialV2(cert)
	if err != nil {
		return nil, err
	}
	certEl.CreateElement("xades:IssuerSerialV2").SetText(base64.StdEncoding.EncodeToString(is))
	if p := opt.Policy; p != nil {
		spi := ssp.CreateElement("xades:SignaturePolicyIdentifier").CreateElement("xades:SignaturePolicyId")
		id := spi.CreateElement("xades:SigPolicyId")
		id.CreateElement("xades:Identifier").SetText(p.Identifier)
		if p.Description != "" {
			id.CreateElement("xades:Description").SetText(p.Description)
		}
		ph := spi.CreateElement("xades:SigPolicyHash")
		ph.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", policyDigestURIs[p.Hash])
		ph.CreateElement("ds:DigestValue").SetText(base64.StdEncoding.EncodeToString(p.Digest))
		if p.URL != "" {
			spi.CreateElement("xades:SigPolicyQualifiers").CreateElement("xades:SigPolicyQualifier").CreateElement("xades:SPURI").SetText(p.URL)
		}
	}
	s.dataObjects = s.signedProps.CreateElement("xades:SignedDataObjectProperties")
	return s, nil
}

// randomID is a fresh Id suffix.
func randomID() string {
	var rnd [8]byte
	rand.Read(rnd[:]) // never fails (crypto/rand since Go 1.24)
	return hex.EncodeToString(rnd[:])
}

// issuerSerialV2 is the DER IssuerSerial (RFC 5035) of cert.
func issuerSerialV2(cert *x509.Certificate) ([]byte, error) {
	dirName, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: cert.RawIssuer})
	if err != nil {
		return nil, fmt.Errorf("encode issuer: %w", err)
	}
	return asn1.Marshal(struct {
		Issuer asn1.RawValue
		Serial *big.Int
	}{asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true, Bytes: dirName}, cert.SerialNumber})
}

// reference adds a ds:Reference to SignedInfo.
func (s *sig) reference(id, uri, typ string, transforms []string, digest []byte) {
	ref := s.signedInfo.CreateElement("ds:Reference")
	if id != "" {
		ref.CreateAttr("Id", id)
	}
	if typ != "" {
		ref.CreateAttr("Type", typ)
	}
	ref.CreateAttr("URI", uri)
	if len(transforms) > 0 {
		tr := ref.CreateElement("ds:Transforms")
		for _, t := range transforms {
			tr.CreateElement("ds:Transform").CreateAttr("Algorithm", t)
		}
	}
	ref.CreateElement("ds:DigestMethod").CreateAttr("Algorithm", digestURIs[s.opt.hash()])
	ref.CreateElement("ds:DigestValue").SetText(base64.StdEncoding.EncodeToString(digest))
}

// addDocRef adds the reference to the signed document and its
// DataObjectFormat.
func (s *sig) addDocRef(uri string, transforms []string, digest []byte, mime string) {
	s.refs++
	id := fmt.Sprintf("Reference-%s-%d", s.id, s.refs)
	s.reference(id, uri, "", transforms, digest)
	dof := s.dataObjects.CreateElement("xades:DataObjectFormat")
	dof.CreateAttr("ObjectReference", "#"+id)
	dof.CreateElement("xades:MimeType").SetText(mime)
}

// standalone finishes a signature that is its own document, with content
// (enveloping) as a ds:Object before the qualifying properties.
func (s *sig) standalone(ctx context.Context, content *etree.Element) ([]byte, error) {
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	doc.SetRoot(s.sig)
	if content != nil {
		s.sig.InsertChildAt(s.qp.Parent().Index(), content)
	}
	if err := s.finish(ctx); err != nil {
		return nil, err
	}
	return doc.WriteToBytes()
}

// finish signs a signature placed where it will stay: the SignedProperties
// digest and SignedInfo are canonicalised in their final context.
func (s *sig) finish(ctx context.Context) error {
	h := s.opt.hash()
	c14n := s.opt.c14n()
	sp, err := canonElement(s.signedProps, withoutComments(c14n), "")
	if err != nil {
		return err
	}
	s.reference("", "#SignedProperties-"+s.id, TypeSignedProps, []string{c14n}, hashOf(h, sp))
	si, err := canonElement(s.signedInfo, c14n, "")
	if err != nil {
		return err
	}
	_, opts, err := signatureMethod(s.key.Public(), h, s.opt.PSS)
	if err != nil {
		return err
	}
	raw, err := s.key.Sign(rand.Reader, hashOf(h, si), opts)
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	if pub, ok := s.key.Public().(*ecdsa.PublicKey); ok {
		if raw, err = ecdsaRaw(raw, pub); err != nil {
			return err
		}
	}
	sv := etree.NewElement("ds:SignatureValue")
	sv.CreateAttr("Id", "SignatureValue-"+s.id)
	sv.SetText(base64.StdEncoding.EncodeToString(raw))
	s.sig.InsertChildAt(s.signedInfo.Index()+1, sv)
	if s.opt.Level.rank() < 1 {
		return nil
	}
	// The signature timestamp covers the canonicalised ds:SignatureValue
	// element (EN 319 132-1, 5.3).
	svc, err := canonElement(sv, c14n, "")
	if err != nil {
		return err
	}
	tok, err := s.opt.Timestamper.Timestamp(ctx, h, hashOf(h, svc))
	if err != nil {
		return fmt.Errorf("signature timestamp: %w: %w", ErrTimestamp, err)
	}
	ts := s.qp.CreateElement("xades:UnsignedProperties").CreateElement("xades:UnsignedSignatureProperties").CreateElement("xades:SignatureTimeStamp")
	ts.CreateAttr("Id", "SignatureTimeStamp-"+s.id)
	ts.CreateElement("ds:CanonicalizationMethod").CreateAttr("Algorithm", c14n)
	ts.CreateElement("xades:EncapsulatedTimeStamp").SetText(base64.StdEncoding.EncodeToString(tok))
	return nil
}

// ecdsaRaw turns an ASN.1 ECDSA signature into XMLDSig's r || s, each as
// long as the curve's order.
func ecdsaRaw(der []byte, pub *ecdsa.PublicKey) ([]byte, error) {
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &rs); err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("ecdsa signature: %w", err)
	}
	n := (pub.Curve.Params().BitSize + 7) / 8
	out := make([]byte, 2*n)
	rs.R.FillBytes(out[:n])
	rs.S.FillBytes(out[n:])
	return out, nil
}
