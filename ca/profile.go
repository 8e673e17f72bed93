package ca

import (
	"crypto"
	"crypto/rand"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/firma-cloud/firma/store"
)

// OIDs of the attributes and extensions Go's x509 has no field for.
var (
	oidCountry                = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidOrganization           = asn1.ObjectIdentifier{2, 5, 4, 10}
	oidCommonName             = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidSurname                = asn1.ObjectIdentifier{2, 5, 4, 4}
	oidGivenName              = asn1.ObjectIdentifier{2, 5, 4, 42}
	oidSerialNumber           = asn1.ObjectIdentifier{2, 5, 4, 5}
	oidOrganizationIdentifier = asn1.ObjectIdentifier{2, 5, 4, 97}

	oidOCSPNoCheck  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}
	oidQCStatements = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 3}
	oidQcCompliance = asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 1}
	oidQcType       = asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 6}
	oidQcTypeESign  = asn1.ObjectIdentifier{0, 4, 0, 1862, 1, 6, 1}
	asn1NULL        = []byte{0x05, 0x00}
	clockSkew       = 5 * time.Minute
)

// newSerial returns a random positive 16-byte serial number. The top bits
// are fixed so every serial encodes in exactly 16 octets, with 126 random
// bits, well above the 64 the CA/Browser Forum asks for.
func newSerial() (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("serial: %w", err)
	}
	b[0] = b[0]&0x3f | 0x40
	return new(big.Int).SetBytes(b), nil
}

// serialHex is the one spelling of a serial in the store.
func serialHex(n *big.Int) string { return strings.ToLower(n.Text(16)) }

// subjectKeyID is RFC 5280 section 4.2.1.2 method (1): SHA-1 of the
// subjectPublicKey bits. SHA-1 is what the RFC names; it is an identifier,
// not a security function.
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

// atv makes one single-valued RDN.
func atv(oid asn1.ObjectIdentifier, v any) pkix.RelativeDistinguishedNameSET {
	return pkix.RelativeDistinguishedNameSET{{Type: oid, Value: v}}
}

// printable wraps s so it is encoded as PrintableString, which RFC 5280
// requires for country and serialNumber.
func printable(s string) asn1.RawValue {
	return asn1.RawValue{Tag: asn1.TagPrintableString, Class: asn1.ClassUniversal, Bytes: []byte(s)}
}

// utf8 wraps s so it is encoded as UTF8String, the RFC 5280 choice for
// names that may hold letters such as Ñ.
func utf8(s string) asn1.RawValue {
	return asn1.RawValue{Tag: asn1.TagUTF8String, Class: asn1.ClassUniversal, Bytes: []byte(s)}
}

// caSubject is the DN of one of the service's CAs.
func (a *Authority) caSubject(cn string) ([]byte, error) {
	rdn := pkix.RDNSequence{
		atv(oidCountry, printable(a.cfg.Country)),
		atv(oidOrganization, utf8(a.cfg.Organization)),
	}
	if a.cfg.OrganizationIdentifier != "" {
		rdn = append(rdn, atv(oidOrganizationIdentifier, utf8(a.cfg.OrganizationIdentifier)))
	}
	rdn = append(rdn, atv(oidCommonName, utf8(cn)))
	return asn1.Marshal(rdn)
}

// citizenSubject is the ETSI EN 319 412-2 natural-person DN used by
// Spanish qualified certificate providers: C, serialNumber with the
// IDCES semantics identifier (ETSI EN 319 412-1 5.1.3), given name,
// surnames and a common name that repeats them with the ID.
func citizenSubject(c *store.Citizen) ([]byte, string, error) {
	given, surnames := strings.TrimSpace(c.GivenName), strings.TrimSpace(c.Surnames)
	if given == "" || surnames == "" {
		return nil, "", fmt.Errorf("%w: citizen %s has no given name or surnames on record", ErrBadCertificate, c.ID)
	}
	cn := fmt.Sprintf("%s, %s - %s", strings.ToUpper(surnames), strings.ToUpper(given), c.ID)
	der, err := asn1.Marshal(pkix.RDNSequence{
		atv(oidCountry, printable("ES")),
		atv(oidSerialNumber, printable("IDCES-"+c.ID)),
		atv(oidGivenName, utf8(given)),
		atv(oidSurname, utf8(surnames)),
		atv(oidCommonName, utf8(cn)),
	})
	return der, cn, err
}

// validity returns notBefore/notAfter for a certificate starting now,
// never outliving its issuer. notBefore is backdated by clockSkew so that
// relying parties whose clocks are a little behind accept it.
func validity(now time.Time, d time.Duration, issuer *x509.Certificate) (time.Time, time.Time) {
	nb := now.Add(-clockSkew).Truncate(time.Second).UTC()
	na := now.Add(d).Truncate(time.Second).UTC()
	if issuer != nil && na.After(issuer.NotAfter) {
		na = issuer.NotAfter
	}
	return nb, na
}

func (a *Authority) urls() (crl, ocsp, caIssuers string) {
	if a.cfg.BaseURL == "" {
		return "", "", ""
	}
	return a.cfg.BaseURL + "/crl/issuing.crl", a.cfg.BaseURL + "/ocsp", a.cfg.BaseURL + "/ca/issuing.crt"
}

// caTemplate is the template of a root (parent nil) or issuing CA.
func (a *Authority) caTemplate(cn string, pub crypto.PublicKey, d time.Duration, parent *x509.Certificate, pathLen int) (*x509.Certificate, error) {
	subj, err := a.caSubject(cn)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	nb, na := validity(time.Now(), d, parent)
	t := &x509.Certificate{
		SerialNumber:          serial,
		RawSubject:            subj,
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            pathLen,
		MaxPathLenZero:        pathLen == 0,
		SubjectKeyId:          ski,
	}
	if parent != nil && a.cfg.BaseURL != "" {
		// The root's CRL lists revoked issuing CAs; it is published by
		// firmad like the issuing CA's.
		t.CRLDistributionPoints = []string{a.cfg.BaseURL + "/crl/root.crl"}
		t.IssuingCertificateURL = []string{a.cfg.BaseURL + "/ca/root.crt"}
	}
	return t, nil
}

// citizenTemplate is the natural-person signing certificate of c.
func (a *Authority) citizenTemplate(c *store.Citizen, pub crypto.PublicKey, issuer *x509.Certificate) (*x509.Certificate, error) {
	subj, _, err := citizenSubject(c)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	nb, na := validity(time.Now(), a.cfg.CitizenValidity, issuer)
	t := &x509.Certificate{
		SerialNumber: serial,
		RawSubject:   subj,
		NotBefore:    nb,
		NotAfter:     na,
		// Go marks keyUsage critical, as EN 319 412-2 asks.
		KeyUsage:              x509.KeyUsageContentCommitment | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		SubjectKeyId:          ski,
	}
	if c.Email != "" {
		t.EmailAddresses = []string{c.Email}
	}
	for _, p := range a.cfg.Policies {
		oid, err := x509.ParseOID(p)
		if err != nil {
			return nil, fmt.Errorf("policy %q: %w", p, err)
		}
		// Policies, not PolicyIdentifiers: since Go 1.24 CreateCertificate
		// encodes only this field.
		t.Policies = append(t.Policies, oid)
	}
	if crl, ocsp, issuers := a.urls(); crl != "" {
		t.CRLDistributionPoints = []string{crl}
		t.OCSPServer = []string{ocsp}
		t.IssuingCertificateURL = []string{issuers}
	}
	if a.cfg.QCStatements {
		ext, err := qcStatements()
		if err != nil {
			return nil, err
		}
		t.ExtraExtensions = append(t.ExtraExtensions, ext)
	}
	return t, nil
}

// ocspTemplate is a delegated OCSP responder certificate (RFC 6960 4.2.2.2)
// with id-pkix-ocsp-nocheck, so clients do not ask about the responder's
// own status.
func (a *Authority) ocspTemplate(pub crypto.PublicKey, issuer *x509.Certificate) (*x509.Certificate, error) {
	subj, err := a.caSubject(a.cfg.IssuingName + " OCSP Responder")
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	ski, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	nb, na := validity(time.Now(), a.cfg.OCSPValidity, issuer)
	return &x509.Certificate{
		SerialNumber:          serial,
		RawSubject:            subj,
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		BasicConstraintsValid: true,
		SubjectKeyId:          ski,
		ExtraExtensions:       []pkix.Extension{{Id: oidOCSPNoCheck, Value: asn1NULL}},
	}, nil
}

// qcStatements encodes QcCompliance and QcType esign (ETSI EN 319 412-5).
func qcStatements() (pkix.Extension, error) {
	type statement struct {
		ID   asn1.ObjectIdentifier
		Info asn1.RawValue `asn1:"optional"`
	}
	types, err := asn1.Marshal([]asn1.ObjectIdentifier{oidQcTypeESign})
	if err != nil {
		return pkix.Extension{}, err
	}
	der, err := asn1.Marshal([]statement{
		{ID: oidQcCompliance},
		{ID: oidQcType, Info: asn1.RawValue{FullBytes: types}},
	})
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: oidQCStatements, Value: der}, nil
}

// subjectSerial returns the serialNumber attribute of a certificate's
// subject.
func subjectSerial(c *x509.Certificate) string {
	for _, n := range c.Subject.Names {
		if n.Type.Equal(oidSerialNumber) {
			if s, ok := n.Value.(string); ok {
				return s
			}
		}
	}
	return ""
}

// samePublicKey reports whether two public keys are equal.
func samePublicKey(a, b crypto.PublicKey) bool {
	ka, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ka.Equal(b)
}
