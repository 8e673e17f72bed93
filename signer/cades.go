package signer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"sort"
	"strings"
	"time"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/signer/asic"
	"github.com/firma-cloud/firma/signer/facturae"
	"github.com/firma-cloud/firma/signer/ltv"
	"github.com/firma-cloud/firma/signer/xades"
)

// Sentinel errors of the document formats, told apart with errors.Is.
var (
	ErrFormat        = errs.Sentinel(errs.Invalid, "unknown_format", "unknown signature format")
	ErrCertificate   = errors.New("signer certificate does not match")
	ErrTimestamp     = errs.Sentinel(errs.Unavailable, "timestamp_failed", "timestamp failed")
	ErrHash          = errs.Sentinel(errs.Invalid, "unsupported_hash", "unsupported hash")
	ErrFormatDigest  = errs.Sentinel(errs.Invalid, "format_digest_length", "digest length does not match the hash")
	ErrNeedsDocument = errs.Sentinel(errs.Invalid, "needs_document", "format needs the whole document")
	// ErrValidation is validation material (B-LT) that could not be
	// gathered; it wraps the ltv error saying why (revoked, unavailable).
	ErrValidation = errs.Sentinel(errs.Unavailable, "validation_material", "validation material unavailable")
)

// Format is the signature format of one document.
type Format string

// Signature formats.
const (
	FormatRaw   Format = "raw"   // a bare signature over a digest
	FormatCAdES Format = "cades" // detached CMS, CAdES baseline
	FormatPAdES Format = "pades" // PDF incremental update holding a CAdES signature
	// FormatXAdES is XAdES (signer/xades): enveloped in an XML document,
	// detached for any other content or a digest.
	FormatXAdES Format = "xades"
	// ASiC containers (ETSI EN 319 162-1, signer/asic) of the whole
	// document: ASiC-S with a CAdES or a XAdES signature, ASiC-E with a
	// XAdES one.
	// FormatFacturae is a FacturaE 3.2.x invoice signed enveloped with
	// XAdES-EPES under the FacturaE policy 3.1 (signer/facturae).
	FormatFacturae   Format = "facturae"
	FormatASiCSCAdES Format = "asic-s-cades"
	FormatASiCSXAdES Format = "asic-s-xades"
	FormatASiCEXAdES Format = "asic-e-xades"
)

// ParseFormat parses a format name; "" is returned as "" so the caller can
// apply its per-document default.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case "", FormatRaw, FormatCAdES, FormatPAdES, FormatXAdES, FormatFacturae, FormatASiCSCAdES, FormatASiCSXAdES, FormatASiCEXAdES:
		return f, nil
	}
	return "", fmt.Errorf("format %q: %w (want raw, cades, pades, xades, facturae, asic-s-cades, asic-s-xades or asic-e-xades)", s, ErrFormat)
}

// Level is the ETSI baseline level of a CAdES or PAdES signature.
type Level string

// Baseline levels.
const (
	LevelB Level = "B-B" // signed attributes only
	LevelT Level = "B-T" // plus a signature timestamp from a TSA
	// LevelLT adds the validation material (certificates, OCSP responses
	// or CRLs of the signer's and the TSA's chains).
	LevelLT Level = "B-LT"
	// LevelLTA adds an archive timestamp over all of it.
	LevelLTA Level = "B-LTA"
)

// ParseLevel parses a level name; "" is returned as "" so the caller can
// apply its default. It is the one place level names are read.
func ParseLevel(s string) (Level, error) {
	switch l := Level(s); l {
	case "", LevelB, LevelT, LevelLT, LevelLTA:
		return l, nil
	}
	return "", fmt.Errorf("level %q: %w (want B-B, B-T, B-LT or B-LTA)", s, ErrFormat)
}

// Rank orders the levels: B-B 0, B-T 1, B-LT 2, B-LTA 3; -1 for others.
func (l Level) Rank() int {
	switch l {
	case "", LevelB:
		return 0
	case LevelT:
		return 1
	case LevelLT:
		return 2
	case LevelLTA:
		return 3
	}
	return -1
}

// Timestamper obtains RFC 3161 timestamp tokens. The tsa package's client
// satisfies it; it must check the reply (status, nonce, imprint, TSA chain)
// before returning the token.
type Timestamper interface {
	// Timestamp returns the DER TimeStampToken (a CMS ContentInfo) over
	// digest, which was computed with h.
	Timestamp(ctx context.Context, h crypto.Hash, digest []byte) ([]byte, error)
}

// TimestamperFunc adapts a function to Timestamper, for example the tsa
// client, whose Timestamp returns a checked *tsa.Token:
//
//	signer.TimestamperFunc(func(ctx context.Context, h crypto.Hash, d []byte) ([]byte, error) {
//		t, err := client.Timestamp(ctx, h, d)
//		if err != nil {
//			return nil, err
//		}
//		return t.DER, nil
//	})
type TimestamperFunc func(ctx context.Context, h crypto.Hash, digest []byte) ([]byte, error)

var _ Timestamper = TimestamperFunc(nil)

// Timestamp calls f.
func (f TimestamperFunc) Timestamp(ctx context.Context, h crypto.Hash, digest []byte) ([]byte, error) {
	return f(ctx, h, digest)
}

// Options tune a CAdES or PAdES signature. The zero value gives SHA-256,
// PKCS#1 v1.5 for RSA keys, the current time and level B-B.
type Options struct {
	Level       Level
	Hash        crypto.Hash // SHA256 (default), SHA384 or SHA512
	PSS         bool        // RSA keys sign with RSASSA-PSS
	SigningTime time.Time   // the signing-time attribute; zero means now
	// Timestamper is required for LevelT and above.
	Timestamper Timestamper
	// Validation gathers the validation material of LevelLT and above:
	// an *ltv.Gatherer, or an *ltv.Batch shared by the documents of one
	// batch so each certificate's status is asked once.
	Validation Validation
	// Policy, when set, is put in the signed attributes as
	// signature-policy-identifier (an EPES signature); nil means none.
	Policy *Policy
	// Attached puts the content inside a CAdES SignedData (mode
	// implicit); it needs the whole document.
	Attached bool
}

// Validation gathers certificates and revocation data for chains, each
// leaf first; package ltv implements it.
type Validation interface {
	Gather(ctx context.Context, chains ...[]*x509.Certificate) (*ltv.Material, error)
}

func (o *Options) hash() crypto.Hash {
	if o.Hash == 0 {
		return crypto.SHA256
	}
	return o.Hash
}

func (o *Options) check() error {
	if _, err := ParseLevel(string(o.Level)); err != nil {
		return err
	}
	if o.Level.Rank() >= 1 && o.Timestamper == nil {
		return fmt.Errorf("level %s: %w: no timestamper configured", o.Level, ErrTimestamp)
	}
	if o.Level.Rank() >= 2 && o.Validation == nil {
		return fmt.Errorf("level %s: %w: no validation material source configured", o.Level, ErrValidation)
	}
	if _, ok := digestOIDs[o.hash()]; !ok {
		return fmt.Errorf("%v: %w (want SHA-256, SHA-384 or SHA-512)", o.hash(), ErrHash)
	}
	if o.Policy != nil {
		if err := o.Policy.check(); err != nil {
			return err
		}
	}
	return nil
}

// Object identifiers used in CMS and CAdES (RFC 5652, RFC 5035, ETSI EN 319 122-1).
var (
	oidData               = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidAttrContentType    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidAttrMessageDigest  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidAttrSigningTime    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}
	oidAttrSigningCertV2  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
	oidAttrTimestampToken = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 14}
	oidRSAPSS             = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidMGF1               = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	oidSHA256             = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384             = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512             = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidECDSAWithSHA256    = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA384    = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSAWithSHA512    = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
	oidSHA256WithRSA      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384WithRSA      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512WithRSA      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	digestOIDs            = map[crypto.Hash]asn1.ObjectIdentifier{crypto.SHA256: oidSHA256, crypto.SHA384: oidSHA384, crypto.SHA512: oidSHA512}
	ecdsaOIDs             = map[crypto.Hash]asn1.ObjectIdentifier{crypto.SHA256: oidECDSAWithSHA256, crypto.SHA384: oidECDSAWithSHA384, crypto.SHA512: oidECDSAWithSHA512}
	rsaOIDs               = map[crypto.Hash]asn1.ObjectIdentifier{crypto.SHA256: oidSHA256WithRSA, crypto.SHA384: oidSHA384WithRSA, crypto.SHA512: oidSHA512WithRSA}
	asn1Null              = asn1.RawValue{Tag: asn1.TagNull}
)

// The CMS structures are written out here rather than with
// github.com/digitorus/pkcs7 because its pinned version computes the
// message digest itself (we must sign a digest we are given, without the
// content), always stamps time.Now and has no RSASSA-PSS.
type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue // [0] EXPLICIT, tagged by hand
}

type encapContentInfo struct {
	EContentType asn1.ObjectIdentifier
	// EContent is [0] EXPLICIT OCTET STRING, tagged by hand; absent when
	// detached.
	EContent asn1.RawValue `asn1:"optional"`
}

type signedData struct {
	Version          int
	DigestAlgorithms []pkix.AlgorithmIdentifier `asn1:"set"`
	EncapContentInfo encapContentInfo
	Certificates     asn1.RawValue `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue `asn1:"optional,tag:1"`
	SignerInfos      []signerInfo  `asn1:"set"`
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

type signerInfo struct {
	Version            int
	SID                issuerAndSerial
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue `asn1:"optional,tag:0"`
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
	UnsignedAttrs      asn1.RawValue `asn1:"optional,tag:1"`
}

type essCertIDv2 struct {
	// hashAlgorithm is DEFAULT sha256 and so absent in DER.
	CertHash     []byte
	IssuerSerial issuerSerial
}

type issuerSerial struct {
	Issuer asn1.RawValue // GeneralNames
	Serial *big.Int
}

type signingCertificateV2 struct {
	Certs []essCertIDv2
}

type pssParams struct {
	Hash         pkix.AlgorithmIdentifier `asn1:"explicit,tag:0"`
	MGF          pkix.AlgorithmIdentifier `asn1:"explicit,tag:1"`
	SaltLength   int                      `asn1:"explicit,tag:2"`
	TrailerField int                      `asn1:"optional,explicit,tag:3,default:1"`
}

// attr encodes one Attribute with a single value.
func attr(oid asn1.ObjectIdentifier, value any) ([]byte, error) {
	v, err := asn1.Marshal(value)
	if err != nil {
		return nil, fmt.Errorf("encode attribute %v: %w", oid, err)
	}
	return asn1.Marshal(struct {
		Type   asn1.ObjectIdentifier
		Values asn1.RawValue
	}{oid, asn1.RawValue{Tag: asn1.TagSet, IsCompound: true, Bytes: v}})
}

// setOf returns the DER content of a SET OF: DER sorts the encodings, and
// OpenSSL re-encodes signed attributes before checking, so order matters.
func setOf(elems [][]byte) []byte {
	s := append([][]byte(nil), elems...)
	sort.Slice(s, func(i, j int) bool { return bytes.Compare(s[i], s[j]) < 0 })
	return bytes.Join(s, nil)
}

// CAdES returns a detached CAdES signature (DER CMS SignedData) whose
// message-digest attribute is digest, made by key with the certificate
// chain[0] and its issuers chain[1:] (all included). The content is never
// needed.
func CAdES(ctx context.Context, digest []byte, key crypto.Signer, chain []*x509.Certificate, opt Options) ([]byte, error) {
	if opt.Attached {
		return nil, fmt.Errorf("attached cades: %w", ErrNeedsDocument)
	}
	return signCMS(ctx, digest, key, chain, opt, true)
}

// signCMS builds the CMS; PAdES leaves out signing-time (ETSI EN 319 142-1
// puts the time in the signature dictionary's /M instead).
func signCMS(ctx context.Context, digest []byte, key crypto.Signer, chain []*x509.Certificate, opt Options, withTime bool) ([]byte, error) {
	c, err := prepareCMS(digest, key, chain, opt, withTime)
	if err != nil {
		return nil, err
	}
	if err := c.sign(key); err != nil {
		return nil, err
	}
	if err := c.extend(ctx, opt); err != nil {
		return nil, err
	}
	return c.encode()
}

// cms is one SignerInfo's SignedData on its way: prepared (signed
// attributes fixed), signed (one use of the key), extended (unsigned
// attributes and validation material), encoded.
type cms struct {
	h      crypto.Hash
	digest []byte // the content's digest under h
	si     signerInfo
	toSign []byte // DER SET OF the signed attributes
	opts   crypto.SignerOpts
	maxSig int // the longest signature value the key can make
	chain  []*x509.Certificate
	// sigToken is the signature timestamp token, once there.
	sigToken []byte
	certs    [][]byte // CertificateChoices, DER
	crls     [][]byte // RevocationInfoChoice, DER
	unsAttr  [][]byte // unsigned attributes, DER, in order
	// content is the encapsulated content of an attached signature; nil
	// when detached.
	content []byte
	// others are the SignerInfos (DER, kept byte for byte) of the
	// signatures already there when co-signing; otherAlgs their digest
	// algorithms (DER AlgorithmIdentifiers).
	others, otherAlgs [][]byte
}

func prepareCMS(digest []byte, key crypto.Signer, chain []*x509.Certificate, opt Options, withTime bool) (*cms, error) {
	return prepare(digest, key, chain, opt, withTime, false)
}

// prepare is prepareCMS; counter leaves out content-type, which a
// countersignature must not carry (RFC 5652 11.4): its digest is of
// another SignerInfo's signature value, not of content.
func prepare(digest []byte, key crypto.Signer, chain []*x509.Certificate, opt Options, withTime, counter bool) (*cms, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	h := opt.hash()
	if len(digest) != h.Size() {
		return nil, fmt.Errorf("%d bytes for %v: %w", len(digest), h, ErrFormatDigest)
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("no certificate: %w", ErrCertificate)
	}
	cert := chain[0]
	if !samePublic(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("certificate %q: %w the key", cert.Subject.CommonName, ErrCertificate)
	}
	sigAlg, opts, err := signatureAlgorithm(key.Public(), h, opt.PSS)
	if err != nil {
		return nil, err
	}
	signingTime := opt.SigningTime
	if signingTime.IsZero() {
		signingTime = time.Now()
	}
	signedAttrs, err := signedAttributes(digest, signingTime.UTC().Truncate(time.Second), withTime, cert, opt.Policy, counter)
	if err != nil {
		return nil, err
	}
	// The signature covers the attributes encoded as an explicit SET OF.
	toSign, err := asn1.Marshal(asn1.RawValue{Tag: asn1.TagSet, IsCompound: true, Bytes: signedAttrs})
	if err != nil {
		return nil, fmt.Errorf("encode signed attributes: %w", err)
	}
	c := &cms{h: h, digest: digest, toSign: toSign, opts: opts, maxSig: maxSignatureSize(key.Public()),
		si: signerInfo{
			Version:            1,
			SID:                issuerAndSerial{Issuer: asn1.RawValue{FullBytes: cert.RawIssuer}, Serial: cert.SerialNumber},
			DigestAlgorithm:    pkix.AlgorithmIdentifier{Algorithm: digestOIDs[h]},
			SignedAttrs:        asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: signedAttrs},
			SignatureAlgorithm: sigAlg,
		}}
	for _, x := range chain {
		c.addCert(x.Raw)
	}
	c.chain = chain
	return c, nil
}

// sign is the one use of the key.
func (c *cms) sign(key crypto.Signer) error {
	sig, err := key.Sign(rand.Reader, hashOf(c.h, c.toSign), c.opts)
	if err != nil {
		return fmt.Errorf("sign attributes: %w", err)
	}
	c.si.Signature = sig
	return nil
}

// extend adds what the level asks for beyond B-B, after the signature.
func (c *cms) extend(ctx context.Context, opt Options) error {
	if opt.Level == "" || opt.Level == LevelB {
		return nil
	}
	tok, err := opt.Timestamper.Timestamp(ctx, c.h, hashOf(c.h, c.si.Signature))
	if err != nil {
		return fmt.Errorf("signature timestamp: %w: %w", ErrTimestamp, err)
	}
	a, err := attr(oidAttrTimestampToken, asn1.RawValue{FullBytes: tok})
	if err != nil {
		return fmt.Errorf("timestamp token: %w: %w", ErrTimestamp, err)
	}
	c.unsAttr = append(c.unsAttr, a)
	c.sigToken = tok
	return c.extendLT(ctx, opt, tok)
}

func (c *cms) addCert(der []byte) {
	for _, have := range c.certs {
		if bytes.Equal(have, der) {
			return
		}
	}
	c.certs = append(c.certs, der)
}

// encode returns the DER ContentInfo.
func (c *cms) encode() ([]byte, error) {
	si := c.finalSignerInfo()
	encap := encapContentInfo{EContentType: oidData}
	if c.content != nil {
		oct, err := asn1.Marshal(c.content)
		if err != nil {
			return nil, fmt.Errorf("encode content: %w", err)
		}
		encap.EContent = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: oct}
	}
	sd := signedData{
		Version:          1,
		DigestAlgorithms: []pkix.AlgorithmIdentifier{{Algorithm: digestOIDs[c.h]}},
		EncapContentInfo: encap,
		Certificates:     asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: setOf(c.certs)},
		SignerInfos:      []signerInfo{si},
	}
	if len(c.crls) > 0 {
		sd.CRLs = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, IsCompound: true, Bytes: setOf(c.crls)}
	}
	if len(c.others) > 0 {
		return c.encodeMany(sd, si)
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

// maxSignatureSize is the longest signature value pub's key makes: the
// modulus size for RSA, the DER of two integers each one octet longer
// than the order for ECDSA.
func maxSignatureSize(pub crypto.PublicKey) int {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		return p.Size()
	case *ecdsa.PublicKey:
		n := (p.Curve.Params().N.BitLen()+7)/8 + 1
		body := 2 * (2 + n)
		if body >= 128 {
			return body + 3
		}
		return body + 2
	}
	return 1024
}

// CAdESDocument reads the whole document and returns its detached CAdES
// signature.
func CAdESDocument(ctx context.Context, doc io.Reader, key crypto.Signer, chain []*x509.Certificate, opt Options) ([]byte, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	if opt.Attached {
		content, err := io.ReadAll(doc)
		if err != nil {
			return nil, fmt.Errorf("read document: %w", err)
		}
		return CAdESAttached(ctx, content, key, chain, opt)
	}
	hh := opt.hash().New()
	if _, err := io.Copy(hh, doc); err != nil {
		return nil, fmt.Errorf("read document: %w", err)
	}
	return CAdES(ctx, hh.Sum(nil), key, chain, opt)
}

// CAdESAttached returns a CAdES signature with content inside its
// SignedData (mode implicit), at any level: the archive timestamp of
// B-LTA covers the content through its digest, as for a detached one.
func CAdESAttached(ctx context.Context, content []byte, key crypto.Signer, chain []*x509.Certificate, opt Options) ([]byte, error) {
	if content == nil {
		content = []byte{}
	}
	c, err := prepareCMS(hashOf(opt.hash(), content), key, chain, opt, true)
	if err != nil {
		return nil, err
	}
	c.content = content
	if err := c.sign(key); err != nil {
		return nil, err
	}
	if err := c.extend(ctx, opt); err != nil {
		return nil, err
	}
	return c.encode()
}

func signedAttributes(digest []byte, at time.Time, withTime bool, cert *x509.Certificate, pol *Policy, counter bool) ([]byte, error) {
	md, err := attr(oidAttrMessageDigest, digest)
	if err != nil {
		return nil, err
	}
	certHash := sha256.Sum256(cert.Raw)
	// GeneralNames holding one directoryName ([4] EXPLICIT Name).
	dirName, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: cert.RawIssuer})
	if err != nil {
		return nil, fmt.Errorf("encode issuer: %w", err)
	}
	sc, err := attr(oidAttrSigningCertV2, signingCertificateV2{Certs: []essCertIDv2{{
		CertHash:     certHash[:],
		IssuerSerial: issuerSerial{Issuer: asn1.RawValue{Tag: asn1.TagSequence, IsCompound: true, Bytes: dirName}, Serial: cert.SerialNumber},
	}}})
	if err != nil {
		return nil, err
	}
	attrs := [][]byte{md, sc}
	if !counter {
		ct, err := attr(oidAttrContentType, oidData)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, ct)
	}
	if pol != nil {
		pa, err := pol.attribute()
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, pa)
	}
	if withTime {
		st, err := attr(oidAttrSigningTime, at)
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, st)
	}
	return setOf(attrs), nil
}

// signatureAlgorithm returns the CMS signatureAlgorithm for the key and the
// options its Sign takes.
func signatureAlgorithm(pub crypto.PublicKey, h crypto.Hash, pss bool) (pkix.AlgorithmIdentifier, crypto.SignerOpts, error) {
	switch pub.(type) {
	case *ecdsa.PublicKey:
		return pkix.AlgorithmIdentifier{Algorithm: ecdsaOIDs[h]}, h, nil
	case *rsa.PublicKey:
		if !pss {
			return pkix.AlgorithmIdentifier{Algorithm: rsaOIDs[h], Parameters: asn1Null}, h, nil
		}
		hashAlg := pkix.AlgorithmIdentifier{Algorithm: digestOIDs[h], Parameters: asn1Null}
		hashDER, err := asn1.Marshal(hashAlg)
		if err != nil {
			return pkix.AlgorithmIdentifier{}, nil, fmt.Errorf("encode pss hash: %w", err)
		}
		params, err := asn1.Marshal(pssParams{
			Hash:         hashAlg,
			MGF:          pkix.AlgorithmIdentifier{Algorithm: oidMGF1, Parameters: asn1.RawValue{FullBytes: hashDER}},
			SaltLength:   h.Size(),
			TrailerField: 1,
		})
		if err != nil {
			return pkix.AlgorithmIdentifier{}, nil, fmt.Errorf("encode pss parameters: %w", err)
		}
		return pkix.AlgorithmIdentifier{Algorithm: oidRSAPSS, Parameters: asn1.RawValue{FullBytes: params}},
			&rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}, nil
	}
	return pkix.AlgorithmIdentifier{}, nil, fmt.Errorf("public key %T: %w", pub, ErrCertificate)
}

func samePublic(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

func hashOf(h crypto.Hash, b []byte) []byte {
	hh := h.New()
	hh.Write(b)
	return hh.Sum(nil)
}

// DocumentType is a document's media type, used to choose its default
// format.
type DocumentType string

// DefaultFormats maps document media types to formats; types not listed
// get Fallback.
type DefaultFormats struct {
	ByType   map[DocumentType]Format
	Fallback Format
}

// StandardFormats is PDF -> PAdES and everything else -> CAdES.
func StandardFormats() DefaultFormats {
	return DefaultFormats{ByType: map[DocumentType]Format{"application/pdf": FormatPAdES}, Fallback: FormatCAdES}
}

// For returns the format for a document of type t.
func (d DefaultFormats) For(t DocumentType) Format {
	if f, ok := d.ByType[t]; ok && f != "" {
		return f
	}
	if d.Fallback == "" {
		return FormatCAdES
	}
	return d.Fallback
}

// Document is what is signed: the whole content, or for CAdES and raw
// only, its digest under Options.Hash.
type Document struct {
	Type    DocumentType
	Content []byte
	Digest  []byte
	// Name is the document's file name, which a detached XAdES signature
	// refers to it by; "" means "document".
	Name string
}

// SignDocument signs doc in format f ("" means the default for its type
// from formats). It returns a detached CMS for CAdES, the signed PDF for
// PAdES, the signed XML document (or a detached ds:Signature for other
// content) for XAdES, and the bare signature for raw. pdf tunes PAdES only.
func SignDocument(ctx context.Context, f Format, formats DefaultFormats, doc Document, key crypto.Signer, chain []*x509.Certificate, opt Options, pdf PDFOptions) ([]byte, error) {
	if f == "" {
		f = formats.For(doc.Type)
	}
	switch f {
	case FormatCAdES:
		if doc.Content != nil {
			return CAdESDocument(ctx, bytes.NewReader(doc.Content), key, chain, opt)
		}
		return CAdES(ctx, doc.Digest, key, chain, opt)
	case FormatPAdES:
		if doc.Content == nil {
			return nil, fmt.Errorf("pades: %w", ErrNeedsDocument)
		}
		return PAdES(ctx, doc.Content, key, chain, opt, pdf)
	case FormatXAdES:
		return signXAdES(ctx, doc, key, chain, opt)
	case FormatFacturae:
		if doc.Content == nil {
			return nil, fmt.Errorf("facturae: %w", ErrNeedsDocument)
		}
		if err := opt.check(); err != nil {
			return nil, err
		}
		xo := xades.Options{Level: xades.Level(opt.Level), Hash: opt.hash(), PSS: opt.PSS, SigningTime: opt.SigningTime}
		if opt.Timestamper != nil {
			xo.Timestamper = opt.Timestamper
		}
		if opt.Validation != nil {
			xo.Validation = opt.Validation
		}
		out, err := facturae.Sign(ctx, doc.Content, key, chain, xo)
		if err != nil {
			return nil, xadesErr(err)
		}
		return out, nil
	case FormatASiCSCAdES, FormatASiCSXAdES, FormatASiCEXAdES:
		if doc.Content == nil {
			return nil, fmt.Errorf("%s: %w", f, ErrNeedsDocument)
		}
		return signASiC(ctx, f, doc, key, chain, opt)
	case FormatRaw:
		h := opt.hash()
		digest := doc.Digest
		if doc.Content != nil {
			digest = hashOf(h, doc.Content)
		}
		if len(digest) != h.Size() {
			return nil, fmt.Errorf("%d bytes for %v: %w", len(digest), h, ErrFormatDigest)
		}
		_, opts, err := signatureAlgorithm(key.Public(), h, opt.PSS)
		if err != nil {
			return nil, err
		}
		sig, err := key.Sign(rand.Reader, digest, opts)
		if err != nil {
			return nil, fmt.Errorf("sign: %w", err)
		}
		return sig, nil
	}
	return nil, fmt.Errorf("format %q: %w", f, ErrFormat)
}

// signASiC returns an ASiC container of doc and its signature.
func signASiC(ctx context.Context, f Format, doc Document, key crypto.Signer, chain []*x509.Certificate, opt Options) ([]byte, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	at := opt.SigningTime
	if at.IsZero() {
		at = time.Now()
		opt.SigningTime = at
	}
	// An ASiC container holds the document beside its signature.
	opt.Attached = false
	name := xadesName(doc.Name)
	docs := []asic.Document{{Name: name, Content: doc.Content}}
	if f == FormatASiCSCAdES {
		cms, err := CAdESDocument(ctx, bytes.NewReader(doc.Content), key, chain, opt)
		if err != nil {
			return nil, err
		}
		return asic.Build(asic.MimeASiCS, docs, asic.CAdESEntry, cms, at)
	}
	// Exclusive C14N keeps asic:XAdESSignatures, which the signature is
	// put in afterwards, out of what is signed.
	xo := xades.Options{Level: xades.Level(opt.Level), Hash: opt.hash(), PSS: opt.PSS, SigningTime: at,
		Canonicalization: xades.ExcC14N}
	if opt.Timestamper != nil {
		xo.Timestamper = opt.Timestamper
	}
	sig, err := xades.SignDetached(ctx, []xades.DetachedDoc{{Name: name, Digest: hashOf(opt.hash(), doc.Content), MimeType: string(doc.Type)}}, key, chain, xo)
	if err != nil {
		return nil, xadesErr(err)
	}
	wrapped, err := asic.WrapXAdES(sig)
	if err != nil {
		return nil, err
	}
	mime := asic.MimeASiCS
	if f == FormatASiCEXAdES {
		mime = asic.MimeASiCE
	}
	return asic.Build(mime, docs, asic.XAdESEntry, wrapped, at)
}

// xadesErr gives signer's sentinels to errors of signer/xades.
func xadesErr(err error) error {
	switch {
	case errors.Is(err, xades.ErrTimestamp):
		return fmt.Errorf("%w: %w", ErrTimestamp, err)
	case errors.Is(err, xades.ErrDigest):
		return fmt.Errorf("%w: %w", ErrFormatDigest, err)
	case errors.Is(err, xades.ErrCertificate):
		return fmt.Errorf("%w: %w", ErrCertificate, err)
	case errors.Is(err, xades.ErrValidation):
		return fmt.Errorf("%w: %w", ErrValidation, err)
	}
	return err
}

// signXAdES signs an XML document enveloped and anything else, or a
// digest, detached under its name.
func signXAdES(ctx context.Context, doc Document, key crypto.Signer, chain []*x509.Certificate, opt Options) ([]byte, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	xo := xades.Options{Level: xades.Level(opt.Level), Hash: opt.hash(), PSS: opt.PSS, SigningTime: opt.SigningTime,
		MimeType: string(doc.Type), Name: xadesName(doc.Name)}
	if opt.Timestamper != nil {
		xo.Timestamper = opt.Timestamper
	}
	if opt.Validation != nil {
		xo.Validation = opt.Validation
	}
	var out []byte
	var err error
	switch {
	case doc.Content != nil && xades.IsXML(doc.Content):
		xo.Packaging = xades.Enveloped
		out, err = xades.Sign(ctx, doc.Content, key, chain, xo)
	case doc.Content != nil:
		xo.Packaging = xades.Detached
		out, err = xades.Sign(ctx, doc.Content, key, chain, xo)
	default:
		out, err = xades.SignDigest(ctx, doc.Digest, key, chain, xo)
	}
	if err != nil {
		return nil, xadesErr(err)
	}
	return out, nil
}

// xadesName is the name a detached XAdES signature refers to the document
// by: its base name when that is a plain file name, else "document".
func xadesName(name string) string {
	if i := strings.LastIndexAny(name, "/\\"); i >= 0 {
		name = name[i+1:]
	}
	for _, r := range name {
		if !(r == '.' || r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return "document"
		}
	}
	if name == "" || strings.HasPrefix(name, ".") {
		return "document"
	}
	return name
}
