package verify

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/firma-cloud/firma/errs"
)

// Object identifiers of CMS (RFC 5652), ESS (RFC 5035) and the algorithms.
var (
	oidData               = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData         = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidAttrContentType    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidAttrMessageDigest  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidAttrSigningTime    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}
	oidAttrSigningCert    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 12}
	oidAttrSigningCertV2  = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
	oidAttrTimestampToken = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 14}

	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}

	oidRSA       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidRSASHA256 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidRSASHA384 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidRSASHA512 = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidRSAPSS    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidEC        = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidECSHA256  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECSHA384  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECSHA512  = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
)

// ErrMalformed is returned for input that is not a CMS SignedData (or a
// PDF with signatures) at all: there is nothing to report on.
var ErrMalformed = errs.Sentinel(errs.Invalid, "malformed_signature", "malformed signature")

type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"explicit,optional,tag:0"`
}

type encapContentInfo struct {
	EContentType asn1.ObjectIdentifier
	EContent     asn1.RawValue `asn1:"explicit,optional,tag:0"`
}

type signedData struct {
	Version          int
	DigestAlgorithms asn1.RawValue
	EncapContentInfo encapContentInfo
	Certificates     asn1.RawValue `asn1:"optional,tag:0"`
	CRLs             asn1.RawValue `asn1:"optional,tag:1"`
	SignerInfos      []signerInfo  `asn1:"set"`
}

type signerInfo struct {
	Raw                asn1.RawContent
	Version            int
	SID                asn1.RawValue
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue `asn1:"optional,tag:0"`
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
	UnsignedAttrs      asn1.RawValue `asn1:"optional,tag:1"`
}

type attribute struct {
	Type   asn1.ObjectIdentifier
	Values asn1.RawValue
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

// parsed is one signer of a CMS SignedData, parsed but not yet checked.
type parsed struct {
	certs     []*x509.Certificate
	si        signerInfo
	signer    *x509.Certificate // nil if not among certs
	hash      crypto.Hash       // of the digest algorithm; 0 if unsupported
	hashName  string
	signedDER []byte                     // the signed attributes as signed: an explicit SET
	signed    map[string]asn1.RawValue   // first value of each signed attribute
	unsigned  map[string][]asn1.RawValue // every value of each unsigned attribute
	content   []byte                     // encapsulated content, nil when detached
	eType     asn1.ObjectIdentifier      // encapsulated content type
	// certsRaw and crlsRaw are SignedData.certificates and crls, each
	// element as encoded; unsignedRaw the signer's unsigned attributes as
	// encoded, in order: what an archive timestamp covers.
	certsRaw, crlsRaw, unsignedRaw [][]byte
	// ltv is validation material the signature carries (CAdES crls, a
	// PDF's DSS); nil when none.
	ltv *embedded
	// counter marks a countersignature: its message digest is of another
	// SignerInfo's signature value, and it has no content-type.
	counter bool
	// signers is how many SignerInfos the SignedData has at its top.
	signers int
}

// shared reports whether the SignedData's validation material may be
// another signer's: it has several signers, p is a countersignature, or p
// carries countersignatures.
func (p *parsed) shared() bool {
	return p.signers > 1 || p.counter || len(p.unsigned[oidAttrCounterSignature.String()]) > 0
}

// parseCMS parses a CMS SignedData into its signers (more than one for
// parallel signatures, as co-signing tools write), which share the
// certificates and the encapsulated content.
func parseCMS(der []byte) ([]*parsed, error) {
	var ci contentInfo
	// A PDF's /Contents is the DER followed by zero padding, so trailing
	// bytes are allowed.
	if _, err := asn1.Unmarshal(der, &ci); err != nil {
		// Not DER: it may be BER, as NSS writes.
		d, berErr := berToDER(der)
		if berErr != nil {
			return nil, fmt.Errorf("%w: not a CMS ContentInfo: %w", ErrMalformed, err)
		}
		der = d
		if _, err := asn1.Unmarshal(der, &ci); err != nil {
			return nil, fmt.Errorf("%w: not a CMS ContentInfo: %w", ErrMalformed, err)
		}
	}
	if !ci.ContentType.Equal(oidSignedData) {
		return nil, fmt.Errorf("%w: content type %v is not signed-data", ErrMalformed, ci.ContentType)
	}
	var sd signedData
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil {
		return nil, fmt.Errorf("%w: signed-data: %w", ErrMalformed, err)
	}
	if len(sd.SignerInfos) == 0 || len(sd.SignerInfos) > maxSigners {
		return nil, fmt.Errorf("%w: %d signer infos, want 1 to %d", ErrMalformed, len(sd.SignerInfos), maxSigners)
	}
	var content []byte
	if len(sd.EncapContentInfo.EContent.Bytes) > 0 {
		var oct []byte
		if _, err := asn1.Unmarshal(sd.EncapContentInfo.EContent.Bytes, &oct); err == nil {
			content = oct
		}
	}
	var certs []*x509.Certificate
	for rest := sd.Certificates.Bytes; len(rest) > 0; {
		var raw asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &raw); err != nil {
			return nil, fmt.Errorf("%w: certificates: %w", ErrMalformed, err)
		}
		if raw.Class != asn1.ClassUniversal || raw.Tag != asn1.TagSequence {
			continue // attribute or other certificate formats
		}
		c, err := x509.ParseCertificate(raw.FullBytes)
		if err != nil {
			return nil, fmt.Errorf("%w: certificate: %w", ErrMalformed, err)
		}
		certs = append(certs, c)
	}
	certsRaw, err := elements(sd.Certificates.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: certificates: %w", ErrMalformed, err)
	}
	crlsRaw, err := elements(sd.CRLs.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: crls: %w", ErrMalformed, err)
	}
	material := embeddedMaterial(crlsRaw, certs)
	var out []*parsed
	for i, si := range sd.SignerInfos {
		p := &parsed{si: si, certs: certs, content: content, eType: sd.EncapContentInfo.EContentType,
			certsRaw: certsRaw, crlsRaw: crlsRaw, ltv: material, signers: len(sd.SignerInfos)}
		if err := p.read(); err != nil {
			return nil, fmt.Errorf("signer %d: %w", i+1, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// read fills in what p's SignerInfo says.
func (p *parsed) read() error {
	var err error
	p.signed, p.unsigned = map[string]asn1.RawValue{}, map[string][]asn1.RawValue{}
	if p.unsignedRaw, err = elements(p.si.UnsignedAttrs.Bytes); err != nil {
		return fmt.Errorf("%w: unsigned attributes: %w", ErrMalformed, err)
	}
	p.signer = findSigner(p.si.SID, p.certs)
	p.hash, p.hashName = hashOf(p.si.DigestAlgorithm.Algorithm)
	if len(p.si.SignedAttrs.FullBytes) == 0 {
		return fmt.Errorf("%w: no signed attributes (CAdES requires them)", ErrMalformed)
	}
	// The signature covers the attributes with the SET tag in place of
	// the implicit [0]; the length octets are the same.
	p.signedDER = bytes.Clone(p.si.SignedAttrs.FullBytes)
	p.signedDER[0] = 0x31
	if err := attributes(p.si.SignedAttrs.Bytes, func(a attribute, vals []asn1.RawValue) {
		if _, dup := p.signed[a.Type.String()]; !dup && len(vals) > 0 {
			p.signed[a.Type.String()] = vals[0]
		}
	}); err != nil {
		return fmt.Errorf("%w: signed attributes: %w", ErrMalformed, err)
	}
	if err := attributes(p.si.UnsignedAttrs.Bytes, func(a attribute, vals []asn1.RawValue) {
		p.unsigned[a.Type.String()] = append(p.unsigned[a.Type.String()], vals...)
	}); err != nil {
		return fmt.Errorf("%w: unsigned attributes: %w", ErrMalformed, err)
	}
	return nil
}

// maxSigners bounds the parallel signatures of one CMS.
const maxSigners = 64

func attributes(b []byte, fn func(attribute, []asn1.RawValue)) error {
	for len(b) > 0 {
		var a attribute
		var err error
		if b, err = asn1.Unmarshal(b, &a); err != nil {
			return err
		}
		var vals []asn1.RawValue
		for v := a.Values.Bytes; len(v) > 0; {
			var raw asn1.RawValue
			if v, err = asn1.Unmarshal(v, &raw); err != nil {
				return err
			}
			vals = append(vals, raw)
		}
		fn(a, vals)
	}
	return nil
}

func findSigner(sid asn1.RawValue, certs []*x509.Certificate) *x509.Certificate {
	if sid.Class == asn1.ClassContextSpecific && sid.Tag == 0 {
		for _, c := range certs {
			if len(c.SubjectKeyId) > 0 && bytes.Equal(c.SubjectKeyId, sid.Bytes) {
				return c
			}
		}
		return nil
	}
	var ias issuerAndSerial
	if _, err := asn1.Unmarshal(sid.FullBytes, &ias); err != nil || ias.Serial == nil {
		return nil
	}
	for _, c := range certs {
		if bytes.Equal(c.RawIssuer, ias.Issuer.FullBytes) && c.SerialNumber.Cmp(ias.Serial) == 0 {
			return c
		}
	}
	return nil
}

func hashOf(oid asn1.ObjectIdentifier) (crypto.Hash, string) {
	switch {
	case oid.Equal(oidSHA256):
		return crypto.SHA256, "SHA-256"
	case oid.Equal(oidSHA384):
		return crypto.SHA384, "SHA-384"
	case oid.Equal(oidSHA512):
		return crypto.SHA512, "SHA-512"
	case oid.Equal(oidSHA1):
		return 0, "SHA-1"
	}
	return 0, oid.String()
}

// messageDigest returns the message-digest attribute.
func (p *parsed) messageDigest() ([]byte, error) {
	raw, ok := p.signed[oidAttrMessageDigest.String()]
	if !ok {
		return nil, errors.New("no message-digest attribute")
	}
	var md []byte
	if _, err := asn1.Unmarshal(raw.FullBytes, &md); err != nil {
		return nil, fmt.Errorf("message-digest attribute: %w", err)
	}
	return md, nil
}

// signingTime returns the signing-time attribute, zero if absent.
func (p *parsed) signingTime() time.Time {
	raw, ok := p.signed[oidAttrSigningTime.String()]
	if !ok {
		return time.Time{}
	}
	var t time.Time
	if _, err := asn1.Unmarshal(raw.FullBytes, &t); err != nil {
		return time.Time{}
	}
	return t
}

// checkSignature checks the signature over the signed attributes with the
// signer certificate's key.
func (p *parsed) checkSignature() error {
	pub := p.signer.PublicKey
	alg := p.si.SignatureAlgorithm.Algorithm
	h := p.hash
	sigHash := func(hh crypto.Hash) []byte {
		d := hh.New()
		d.Write(p.signedDER)
		return d.Sum(nil)
	}
	switch {
	case alg.Equal(oidECSHA256), alg.Equal(oidECSHA384), alg.Equal(oidECSHA512), alg.Equal(oidEC):
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			return fmt.Errorf("ECDSA signature but the certificate holds a %T key", pub)
		}
		switch {
		case alg.Equal(oidECSHA256):
			h = crypto.SHA256
		case alg.Equal(oidECSHA384):
			h = crypto.SHA384
		case alg.Equal(oidECSHA512):
			h = crypto.SHA512
		}
		if h == 0 {
			return fmt.Errorf("unsupported digest algorithm %s", p.hashName)
		}
		if !ecdsa.VerifyASN1(k, sigHash(h), p.si.Signature) {
			return errors.New("ECDSA signature does not verify")
		}
		return nil
	case alg.Equal(oidRSA), alg.Equal(oidRSASHA256), alg.Equal(oidRSASHA384), alg.Equal(oidRSASHA512):
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("RSA signature but the certificate holds a %T key", pub)
		}
		switch {
		case alg.Equal(oidRSASHA256):
			h = crypto.SHA256
		case alg.Equal(oidRSASHA384):
			h = crypto.SHA384
		case alg.Equal(oidRSASHA512):
			h = crypto.SHA512
		}
		if h == 0 {
			return fmt.Errorf("unsupported digest algorithm %s", p.hashName)
		}
		if err := rsa.VerifyPKCS1v15(k, h, sigHash(h), p.si.Signature); err != nil {
			return errors.New("RSA PKCS#1 v1.5 signature does not verify")
		}
		return nil
	case alg.Equal(oidRSAPSS):
		k, ok := pub.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("RSA-PSS signature but the certificate holds a %T key", pub)
		}
		var params struct {
			Hash pkix.AlgorithmIdentifier `asn1:"explicit,optional,tag:0"`
		}
		if _, err := asn1.Unmarshal(p.si.SignatureAlgorithm.Parameters.FullBytes, &params); err != nil {
			return fmt.Errorf("RSA-PSS parameters: %w", err)
		}
		ph, name := hashOf(params.Hash.Algorithm)
		if ph == 0 {
			return fmt.Errorf("unsupported RSA-PSS hash %s", name)
		}
		if err := rsa.VerifyPSS(k, ph, sigHash(ph), p.si.Signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto, Hash: ph}); err != nil {
			return errors.New("RSA-PSS signature does not verify")
		}
		return nil
	}
	return fmt.Errorf("unsupported signature algorithm %v", alg)
}

func (p *parsed) hasSigningCert() bool {
	_, v1 := p.signed[oidAttrSigningCert.String()]
	_, v2 := p.signed[oidAttrSigningCertV2.String()]
	return v1 || v2
}

// checkSigningCertificate checks the ESS signing-certificate(-v2)
// attribute names the signer certificate, which stops an attacker from
// substituting another certificate for the same key.
func (p *parsed) checkSigningCertificate() (Status, string) {
	if raw, ok := p.signed[oidAttrSigningCertV2.String()]; ok {
		var sc struct {
			Certs []struct {
				HashAlgorithm pkix.AlgorithmIdentifier `asn1:"optional"`
				CertHash      []byte
				IssuerSerial  asn1.RawValue `asn1:"optional"`
			}
		}
		if _, err := asn1.Unmarshal(raw.FullBytes, &sc); err != nil || len(sc.Certs) == 0 {
			return Failed, "signing-certificate-v2 attribute is malformed"
		}
		h := crypto.SHA256
		name := "SHA-256"
		if len(sc.Certs[0].HashAlgorithm.Algorithm) > 0 {
			h, name = hashOf(sc.Certs[0].HashAlgorithm.Algorithm)
			if h == 0 {
				return Indeterminate, "signing-certificate-v2 uses unsupported hash " + name
			}
		}
		d := h.New()
		d.Write(p.signer.Raw)
		if !bytes.Equal(d.Sum(nil), sc.Certs[0].CertHash) {
			return Failed, "signing-certificate-v2 does not match the signer certificate"
		}
		return Passed, "signing-certificate-v2 (" + name + ") matches the signer certificate"
	}
	if raw, ok := p.signed[oidAttrSigningCert.String()]; ok {
		var sc struct {
			Certs []struct {
				CertHash     []byte
				IssuerSerial asn1.RawValue `asn1:"optional"`
			}
		}
		if _, err := asn1.Unmarshal(raw.FullBytes, &sc); err != nil || len(sc.Certs) == 0 {
			return Failed, "signing-certificate attribute is malformed"
		}
		sum := sha1.Sum(p.signer.Raw)
		if !bytes.Equal(sum[:], sc.Certs[0].CertHash) {
			return Failed, "signing-certificate does not match the signer certificate"
		}
		return Passed, "signing-certificate (SHA-1) matches the signer certificate"
	}
	return Indeterminate, "no signing-certificate-v2 attribute: the certificate is not bound to the signature (not CAdES baseline)"
}

// certHash is a short fingerprint for reports.
func certHash(c *x509.Certificate) []byte {
	s := sha256.Sum256(c.Raw)
	return s[:]
}
