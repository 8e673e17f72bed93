package verify

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/firma-cloud/firma/signer/xades"
)

// FormatXAdES is an XML signature with XAdES qualifying properties.
const FormatXAdES = "xades"

// MaxXMLBytes bounds an XML document given to XAdES, as MaxVerifyBytes
// bounds a REST request.
const MaxXMLBytes = 64 << 20

// XAdES verifies every XAdES signature in an XML document: enveloped,
// enveloping, or detached over content (nil when the signature is not
// detached). Each signature gets its own report, with the same checks as
// CAdES: integrity (every reference and the signature value), the
// SigningCertificateV2 binding, the SignatureTimeStamp, chain and
// revocation.
func (v *Verifier) XAdES(ctx context.Context, doc, content []byte) (*Report, error) {
	start := time.Now()
	resolve := func(string) ([]byte, bool) { return content, content != nil }
	vs, err := xades.Verify(doc, resolve, xades.Limits{MaxBytes: MaxXMLBytes})
	if err != nil {
		return nil, err
	}
	out := make([]*Signature, 0, len(vs))
	for _, x := range vs {
		if errors.Is(x.Err, xades.ErrNoContent) {
			return nil, ErrNoContent
		}
		s := &Signature{Format: FormatXAdES, Level: string(baseLevel(x)), DigestAlg: hashNames[x.Hash], SigningTime: x.SigningTime}
		v.checkXAdES(ctx, s, x)
		out = append(out, s)
	}
	return v.finish(FormatXAdES, start, out...), nil
}

// baseLevel is B-T for a signature with a signature timestamp, else B-B:
// checkXAdES raises it to B-LT and B-LTA only as those parts check, never
// on what the signature's structure claims.
func baseLevel(x *xades.Verified) xades.Level {
	if x.Timestamp != nil {
		return xades.LevelT
	}
	return xades.LevelB
}

var hashNames = map[crypto.Hash]string{crypto.SHA256: "SHA-256", crypto.SHA384: "SHA-384", crypto.SHA512: "SHA-512"}

func (v *Verifier) checkXAdES(ctx context.Context, s *Signature, x *xades.Verified) {
	c := x.Cert
	if c != nil {
		s.Signer, s.Issuer = c.Subject.String(), c.Issuer.String()
		s.SignerSerial = c.SerialNumber.Text(16)
		s.CertSHA256 = hex.EncodeToString(certHash(c))
	}
	if x.Err != nil {
		s.add(CheckIntegrity, Failed, x.Err.Error())
		if c == nil {
			s.add(CheckSigningCert, Failed, "no certificate of KeyInfo is the one the signed properties name")
			return
		}
	} else {
		s.add(CheckIntegrity, Passed, fmt.Sprintf("every reference (%s) matches and the signature value verifies with the signer's key", s.DigestAlg))
	}
	if x.HasSignedCertV2 {
		s.add(CheckSigningCert, Passed, "the signed SigningCertificateV2 names the signer's certificate (digest and issuer/serial)")
	} else {
		s.add(CheckSigningCert, Passed, "the signed SigningCertificate names the signer's certificate")
	}
	at := v.now()
	var accuracy time.Duration
	if x.Timestamp != nil {
		tok, st, why := v.timestamp(x.Timestamp, x.TimestampData)
		s.add(CheckTimestamp, st, why)
		if tok != nil {
			s.TimestampTime = tok.Time
			s.TSA = tok.Cert.Subject.String()
			at, accuracy = tok.Time, tok.Accuracy
		}
	}
	s.ValidationTime = at
	chain, st, why := v.chain(c, append(append([]*x509.Certificate{}, x.Certs...), x.ValidationCerts...), at)
	s.add(CheckChain, st, why)
	lt := false
	if x.HasValidationData && chain != nil {
		// B-LT: the material the signature carries is judged offline
		// first; only what it lacks is asked of the configured checker.
		e := &embedded{ocsp: x.OCSP, certs: x.ValidationCerts}
		for _, der := range x.CRLs {
			if l, err := x509.ParseRevocationList(der); err == nil {
				e.crls = append(e.crls, l)
			}
		}
		est, ewhy := v.revocation(ctx, e, chain, at, accuracy, s.TimestampTime.IsZero())
		if est != Indeterminate {
			lt = true
			s.add(CheckValidationData, Passed, "the signature carries revocation data for every certificate of its chain, checked offline")
			s.add(CheckRevocation, est, ewhy)
		} else {
			s.add(CheckValidationData, Indeterminate, "the revocation data carried does not cover the chain: "+ewhy)
		}
	}
	if !lt {
		st, why = v.revocation(ctx, v.cfg.Revocation, chain, at, accuracy, s.TimestampTime.IsZero())
		s.add(CheckRevocation, st, why)
	}
	if lt && s.Level == string(xades.LevelT) {
		s.Level = string(xades.LevelLT)
	}
	if len(x.Archive) > 0 {
		st, why := Passed, ""
		var notes []string
		for i, a := range x.Archive {
			tok, ast, awhy := v.timestamp(a.Token, a.Data)
			if ast != Passed {
				st, why = worseStatus(st, ast), fmt.Sprintf("archive timestamp %d: %s", i+1, awhy)
				break
			}
			notes = append(notes, fmt.Sprintf("archive timestamp at %s by %s covers the signature and its validation data",
				tok.Time.UTC().Format(time.RFC3339), tok.Cert.Subject.CommonName))
		}
		if st == Passed {
			why = joinNotes(notes)
		}
		s.add(CheckArchiveTimestamp, st, why)
		if st == Passed && s.Level == string(xades.LevelLT) {
			s.Level = string(xades.LevelLTA)
		}
	}
}
