package tsa

import (
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// DefaultCertValidity is how long a TSA certificate is valid unless
// CertOptions says otherwise.
const DefaultCertValidity = 3 * 365 * 24 * time.Hour

// CertOptions describe the TSA certificate IssueCertificate makes.
type CertOptions struct {
	Subject  pkix.Name     // default CN "Firma Time-Stamping Authority"
	Validity time.Duration // default DefaultCertValidity, cut to the issuer's
	Now      time.Time     // default time.Now()
	// Where relying parties find the issuer's certificate and revocation
	// status.
	IssuingCertificateURL []string
	OCSPServer            []string
	CRLDistributionPoints []string
}

// IssueCertificate issues a TSA certificate for pub, signed by issuerKey,
// the key of issuer: key usage digitalSignature and nonRepudiation, and the
// critical extended key usage id-kp-timeStamping alone that RFC 3161
// requires. Until the CA issues TSA certificates itself, firmad calls this
// with the built-in issuing CA's certificate and HSM key.
func IssueCertificate(issuer *x509.Certificate, issuerKey crypto.Signer, pub crypto.PublicKey, o CertOptions) (*x509.Certificate, error) {
	if issuer == nil || issuerKey == nil || pub == nil {
		return nil, errors.New("issue tsa certificate: issuer, issuer key and public key are required")
	}
	if !issuer.IsCA {
		return nil, errors.New("issue tsa certificate: issuer is not a CA")
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	validity := o.Validity
	if validity <= 0 {
		validity = DefaultCertValidity
	}
	notBefore := now.Add(-time.Minute) // tolerate clocks a little behind ours
	notAfter := now.Add(validity)
	if notAfter.After(issuer.NotAfter) {
		notAfter = issuer.NotAfter
	}
	if !notAfter.After(now) {
		return nil, errors.New("issue tsa certificate: issuer certificate has expired")
	}
	subject := o.Subject
	if len(subject.ToRDNSequence()) == 0 {
		subject = pkix.Name{CommonName: "Firma Time-Stamping Authority"}
	}
	// 159 random bits: positive, at most 20 octets (RFC 5280 section 4.1.2.2).
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 159))
	if err != nil {
		return nil, fmt.Errorf("issue tsa certificate: %w", err)
	}
	eku, err := asn1.Marshal([]asn1.ObjectIdentifier{oidKPTimeStamping})
	if err != nil {
		return nil, fmt.Errorf("issue tsa certificate: %w", err)
	}
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, fmt.Errorf("issue tsa certificate: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		SubjectKeyId:          ski,
		Subject:               subject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment,
		BasicConstraintsValid: true,
		IssuingCertificateURL: o.IssuingCertificateURL,
		OCSPServer:            o.OCSPServer,
		CRLDistributionPoints: o.CRLDistributionPoints,
		// crypto/x509 writes ExtKeyUsage non-critical; RFC 3161 wants it
		// critical, so the extension is written raw.
		ExtraExtensions: []pkix.Extension{{Id: oidExtKeyUsage, Critical: true, Value: eku}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, pub, issuerKey)
	if err != nil {
		return nil, fmt.Errorf("issue tsa certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("issue tsa certificate: %w", err)
	}
	if err := CheckCertificate(cert); err != nil {
		return nil, fmt.Errorf("issue tsa certificate: %w", err)
	}
	return cert, nil
}

// subjectKeyID is RFC 5280 4.2.1.2 method 1, the SHA-1 of the public key
// bits: crypto/x509 derives it by itself for CA certificates only, and
// relying parties (and EN 319 422) want it on the TSA certificate too.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		Key       asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, err
	}
	sum := sha1.Sum(spki.Key.Bytes)
	return sum[:], nil
}
