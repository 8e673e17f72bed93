package tsa

import (
	"bytes"
	"crypto"
	_ "crypto/sha512" // SHA-384 and SHA-512 imprints
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/digitorus/pkcs7"
	"github.com/digitorus/timestamp"

	"github.com/firma-cloud/firma/internal/cmsparse"
)

// Token is a verified RFC 3161 time-stamp token.
type Token struct {
	// DER is the TimeStampToken, a CMS ContentInfo: what CAdES embeds as
	// id-aa-signatureTimeStampToken and PAdES as a document timestamp.
	DER      []byte
	Time     time.Time
	Accuracy time.Duration
	Serial   *big.Int
	Policy   asn1.ObjectIdentifier
	Hash     crypto.Hash
	Digest   []byte
	Nonce    *big.Int
	// Cert is the TSA certificate that signed the token; Chain is the
	// verified chain from it to a trusted root.
	Cert  *x509.Certificate
	Chain []*x509.Certificate
	// URL is the TSA that issued the token; set by Client only.
	URL string
}

// VerifyOptions say what a token must match. Roots is required, and
// either Hash and Digest or Data.
type VerifyOptions struct {
	Roots         *x509.CertPool
	Intermediates *x509.CertPool // besides the certificates in the token
	Hash          crypto.Hash
	Digest        []byte
	// Data, when Hash is zero, is what the token must be over, hashed with
	// the token's own algorithm (SHA-256, SHA-384 or SHA-512 only): for a
	// verifier that has, say, a CAdES signature value and not the hash the
	// signer chose.
	Data []byte
	// Nonce, when set, must equal the token's.
	Nonce *big.Int
	// Policies, when not empty, lists the acceptable TSA policies.
	Policies []asn1.ObjectIdentifier
}

// VerifyToken checks a DER TimeStampToken: the CMS signature, that the
// signed content is a TSTInfo over opts.Hash and opts.Digest, the nonce
// and policy, that the signer's certificate is a time-stamping-only
// certificate (critical EKU) chaining to opts.Roots at the token's time,
// and that the ESS signing-certificate attribute names that certificate.
func VerifyToken(der []byte, opts VerifyOptions) (*Token, error) {
	if opts.Roots == nil {
		return nil, errors.New("verify time-stamp token: no trusted roots configured")
	}
	// timestamp.Parse checks the CMS signature, but only when the token
	// carries certificates: without them we could not check the chain
	// either, so a token without one is refused.
	p7, err := safeParse(cmsparse.PKCS7, der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if len(p7.Signers) != 1 {
		return nil, fmt.Errorf("%w: %d signers, want 1", ErrMalformed, len(p7.Signers))
	}
	cert := p7.GetOnlySigner()
	if cert == nil {
		return nil, fmt.Errorf("%w: token carries no TSA certificate (was certReq set?)", ErrMalformed)
	}
	ts, err := safeParse(cmsparse.Timestamp, der)
	if errors.Is(err, errParserPanic) {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if err != nil {
		var pe timestamp.ParseError
		var se asn1.SyntaxError
		var sde asn1.StructuralError
		if errors.As(err, &pe) || errors.As(err, &se) || errors.As(err, &sde) {
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	if opts.Hash == 0 {
		switch ts.HashAlgorithm {
		case crypto.SHA256, crypto.SHA384, crypto.SHA512:
			if ts.HashAlgorithm.Available() {
				break
			}
			fallthrough
		default:
			return nil, fmt.Errorf("%w: imprint hash %v not accepted", ErrImprintMismatch, ts.HashAlgorithm)
		}
		d := ts.HashAlgorithm.New()
		d.Write(opts.Data)
		opts.Hash, opts.Digest = ts.HashAlgorithm, d.Sum(nil)
	}
	var info tstInfo
	if rest, err := asn1.Unmarshal(p7.Content, &info); err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("%w: TSTInfo does not parse", ErrMalformed)
	}
	if info.Version != 1 {
		return nil, fmt.Errorf("%w: TSTInfo version %d, want 1", ErrMalformed, info.Version)
	}
	if len(info.TSA.Bytes) > 0 {
		if err := checkTSAName(info.TSA.Bytes, cert); err != nil {
			return nil, err
		}
	}
	var ct asn1.ObjectIdentifier
	if err := p7.UnmarshalSignedAttribute(oidContentType, &ct); err != nil || !ct.Equal(oidTSTInfo) {
		return nil, fmt.Errorf("%w: signed content is not a TSTInfo", ErrMalformed)
	}
	if ts.HashAlgorithm != opts.Hash || !bytes.Equal(ts.HashedMessage, opts.Digest) {
		return nil, fmt.Errorf("%w: token has %v %x, asked %v %x", ErrImprintMismatch,
			ts.HashAlgorithm, ts.HashedMessage, opts.Hash, opts.Digest)
	}
	if opts.Nonce != nil && (ts.Nonce == nil || ts.Nonce.Cmp(opts.Nonce) != 0) {
		return nil, fmt.Errorf("%w: token has %v, sent %v", ErrNonceMismatch, ts.Nonce, opts.Nonce)
	}
	if len(opts.Policies) > 0 && !slices.ContainsFunc(opts.Policies, ts.Policy.Equal) {
		return nil, fmt.Errorf("%w: %v", ErrPolicyMismatch, ts.Policy)
	}
	if err := CheckCertificate(cert); err != nil {
		return nil, err
	}
	inter := x509.NewCertPool()
	if opts.Intermediates != nil {
		inter = opts.Intermediates.Clone()
	}
	for _, c := range p7.Certificates {
		if c != cert {
			inter.AddCert(c)
		}
	}
	// The chain is checked at the time the TSA vouches for, so that a
	// token stays verifiable after its TSA certificate has expired.
	chains, err := cert.Verify(x509.VerifyOptions{
		Roots:         opts.Roots,
		Intermediates: inter,
		CurrentTime:   ts.Time,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUntrusted, err)
	}
	if err := checkSigningCert(p7, cert); err != nil {
		return nil, err
	}
	return &Token{
		DER:      der,
		Time:     ts.Time,
		Accuracy: ts.Accuracy,
		Serial:   ts.SerialNumber,
		Policy:   ts.Policy,
		Hash:     ts.HashAlgorithm,
		Digest:   ts.HashedMessage,
		Nonce:    ts.Nonce,
		Cert:     cert,
		Chain:    chains[0],
	}, nil
}

// CheckCertificate reports whether cert may sign time-stamp tokens: its
// extended key usage must be present, critical and id-kp-timeStamping
// alone (RFC 3161 section 2.3), and its key usage, if present, must allow
// signatures.
func CheckCertificate(cert *x509.Certificate) error {
	i := slices.IndexFunc(cert.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(oidExtKeyUsage) })
	switch {
	case i < 0:
		return fmt.Errorf("%w: no extended key usage", ErrCertificateUsage)
	case !cert.Extensions[i].Critical:
		return fmt.Errorf("%w: extended key usage not critical", ErrCertificateUsage)
	case len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageTimeStamping || len(cert.UnknownExtKeyUsage) != 0:
		return fmt.Errorf("%w: extended key usage is not id-kp-timeStamping alone", ErrCertificateUsage)
	case cert.KeyUsage != 0 && cert.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0:
		return fmt.Errorf("%w: key usage allows no signature", ErrCertificateUsage)
	}
	return nil
}

// checkSigningCert checks the ESS signing-certificate attribute (v2, or v1
// with SHA-1) whose first entry must identify cert (RFC 5816).
func checkSigningCert(p7 *pkcs7.PKCS7, cert *x509.Certificate) error {
	var (
		h      crypto.Hash
		hash   []byte
		issuer issuerSerial
	)
	var v2 signingCertificateV2
	if err := p7.UnmarshalSignedAttribute(oidSigningCertV2, &v2); err == nil {
		if len(v2.Certs) == 0 {
			return fmt.Errorf("%w: empty signingCertificateV2", ErrSigningCertMismatch)
		}
		id := v2.Certs[0]
		h = crypto.SHA256
		if len(id.HashAlgorithm.Algorithm) > 0 {
			h = hashFromOID(id.HashAlgorithm.Algorithm)
		}
		hash, issuer = id.CertHash, id.IssuerSerial
	} else {
		var v1 signingCertificate
		if err := p7.UnmarshalSignedAttribute(oidSigningCertificate, &v1); err != nil {
			return fmt.Errorf("%w: no signingCertificate or signingCertificateV2 attribute", ErrSigningCertMismatch)
		}
		if len(v1.Certs) == 0 {
			return fmt.Errorf("%w: empty signingCertificate", ErrSigningCertMismatch)
		}
		h, hash, issuer = crypto.SHA1, v1.Certs[0].CertHash, v1.Certs[0].IssuerSerial
	}
	if h == 0 || !h.Available() {
		return fmt.Errorf("%w: unknown certificate hash algorithm", ErrSigningCertMismatch)
	}
	d := h.New()
	d.Write(cert.Raw)
	if !bytes.Equal(d.Sum(nil), hash) {
		return fmt.Errorf("%w: certificate hash differs", ErrSigningCertMismatch)
	}
	if issuer.SerialNumber == nil {
		return nil
	}
	if issuer.SerialNumber.Cmp(cert.SerialNumber) != 0 {
		return fmt.Errorf("%w: serial number differs", ErrSigningCertMismatch)
	}
	var names []asn1.RawValue
	if rest, err := asn1.Unmarshal(issuer.Issuer.FullBytes, &names); err != nil || len(rest) > 0 {
		return fmt.Errorf("%w: malformed issuer name", ErrSigningCertMismatch)
	}
	for _, n := range names {
		if n.Class == asn1.ClassContextSpecific && n.Tag == 4 && bytes.Equal(n.Bytes, cert.RawIssuer) {
			return nil
		}
	}
	return fmt.Errorf("%w: issuer name differs", ErrSigningCertMismatch)
}

var errParserPanic = errors.New("parser failed on malformed input")

// safeParse runs a third-party parser on outside input and turns a panic
// into an error: pkcs7's BER reader indexes past the end of some truncated
// inputs (found by FuzzVerifyToken), and a bad token must not bring the
// process down.
func safeParse[T any](parse func([]byte) (T, error), der []byte) (T, error) {
	var (
		out T
		err error
	)
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%w: %v", errParserPanic, r)
			}
		}()
		out, err = parse(der)
	}()
	return out, err
}

// checkTSAName checks the TSTInfo tsa field, a GeneralName, against the
// certificate: RFC 3161 section 2.4.2 has it name the TSA's subject.
func checkTSAName(der []byte, cert *x509.Certificate) error {
	var gn asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &gn); err != nil || len(rest) > 0 || gn.Class != asn1.ClassContextSpecific {
		return fmt.Errorf("%w: tsa name does not parse", ErrMalformed)
	}
	var ok bool
	switch gn.Tag {
	case 1: // rfc822Name
		ok = slices.ContainsFunc(cert.EmailAddresses, func(s string) bool { return strings.EqualFold(s, string(gn.Bytes)) })
	case 2: // dNSName
		ok = slices.ContainsFunc(cert.DNSNames, func(s string) bool { return strings.EqualFold(s, string(gn.Bytes)) })
	case 4: // directoryName, explicitly tagged
		ok = bytes.Equal(gn.Bytes, cert.RawSubject)
	case 6: // uniformResourceIdentifier
		ok = slices.ContainsFunc(cert.URIs, func(u *url.URL) bool { return u.String() == string(gn.Bytes) })
	}
	if !ok {
		return ErrTSANameMismatch
	}
	return nil
}
