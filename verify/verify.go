package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/internal/cmsparse"
	"github.com/firma-cloud/firma/tsa"
)

// Status is the result of one check.
type Status string

// Check results.
const (
	Passed        Status = "passed"
	Failed        Status = "failed"
	Indeterminate Status = "indeterminate"
)

// Verdict is the overall result for a signature or a document.
type Verdict string

// Verdicts. VerdictIndeterminate carries the prefix because Indeterminate
// is the check status.
const (
	Valid                Verdict = "valid"
	Invalid              Verdict = "invalid"
	VerdictIndeterminate Verdict = "indeterminate"
)

// Names of the checks, in the order they are reported.
const (
	CheckIntegrity   = "integrity"           // document digest and signature over the signed attributes
	CheckSigningCert = "signing-certificate" // ESS binding of the signer certificate
	CheckByteRange   = "byte-range"          // PAdES: what the signature covers
	CheckTimestamp   = "timestamp"           // signature timestamp
	CheckChain       = "chain"               // signer chain to a configured root
	CheckRevocation  = "revocation"          // status at the time of signing
)

// Formats of signatures reported.
const (
	FormatCAdES    = "cades"
	FormatPAdES    = "pades"     // PDF, ETSI.CAdES.detached
	FormatPDFPKCS7 = "pdf-pkcs7" // PDF, adbe.pkcs7.detached
	// FormatDocTimestamp is a PAdES document timestamp (ETSI.RFC3161): a
	// TSA's token over the document, with no signer.
	FormatDocTimestamp = "pades-doc-timestamp"
)

// Check is the result of one check with the reason for it.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Reason string `json:"reason"`
}

// Signature is the report on one signature.
type Signature struct {
	Format  string  `json:"format"` // cades, pades, pdf-pkcs7 or pades-doc-timestamp
	Level   string  `json:"level"`  // B-B, B-T, B-LT or B-LTA: the level reached
	Field   string  `json:"field,omitempty"`
	Verdict Verdict `json:"verdict"`
	Checks  []Check `json:"checks"`

	Signer        string    `json:"signer,omitempty"` // subject DN
	SignerSerial  string    `json:"signer_serial,omitempty"`
	Issuer        string    `json:"issuer,omitempty"`
	CertSHA256    string    `json:"cert_sha256,omitempty"`
	DigestAlg     string    `json:"digest_algorithm,omitempty"`
	SigningTime   time.Time `json:"signing_time,omitzero"`   // claimed by the signer, not proven
	TimestampTime time.Time `json:"timestamp_time,omitzero"` // proven by a TSA
	TSA           string    `json:"tsa,omitempty"`
	// ValidationTime is the time the chain and revocation were judged at:
	// the timestamp's when it is valid, otherwise now.
	ValidationTime time.Time `json:"validation_time"`
	// CoversWholeDocument is set for PAdES: false when the file was
	// changed by incremental updates after this signature.
	CoversWholeDocument *bool `json:"covers_whole_document,omitempty"`
	// Policy is the signature policy the signer declared (EPES); nil
	// when none.
	Policy *Policy `json:"policy,omitempty"`
	// CounterSignatureOf is, for a countersignature, the position (from
	// 1, in Report.Signatures) of the signature it countersigns; 0 for
	// the others.
	CounterSignatureOf int `json:"countersignature_of,omitempty"`
}

// Report is the result for one document.
type Report struct {
	Verdict    Verdict      `json:"verdict"`
	Signatures []*Signature `json:"signatures"`
}

// Config is what a Verifier trusts.
type Config struct {
	// Roots are the trust anchors signer certificates must chain to;
	// Intermediates add CA certificates a signature leaves out.
	Roots         *x509.CertPool
	Intermediates *x509.CertPool
	// TSARoots are the trust anchors of TSA certificates; nil means Roots.
	TSARoots *x509.CertPool
	// Revocation checks certificate status; nil reports revocation as
	// indeterminate.
	Revocation RevocationChecker
	Now        func() time.Time // nil means time.Now
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil registers no metrics
}

// Verifier verifies signatures.
type Verifier struct {
	cfg Config
	log *slog.Logger
	m   *metrics
}

type metrics struct {
	verdicts *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// New returns a Verifier; Roots is required.
func New(cfg Config) (*Verifier, error) {
	if cfg.Roots == nil {
		return nil, errors.New("verify: no trusted roots configured")
	}
	if cfg.TSARoots == nil {
		cfg.TSARoots = cfg.Roots
	}
	v := &Verifier{cfg: cfg, log: cfg.Logger}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	m := &metrics{
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "firma_verify_signatures_total",
			Help: "Signatures verified, by format and verdict.",
		}, []string{"format", "verdict"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "firma_verify_duration_seconds",
			Help:    "Time to verify one document, by format.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"format"}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{m.verdicts, m.duration} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("verify: register metrics: %w", err)
			}
		}
	}
	v.m = m
	return v, nil
}

func (v *Verifier) now() time.Time {
	if v.cfg.Now != nil {
		return v.cfg.Now()
	}
	return time.Now()
}

// CAdES verifies a CMS signature over the content read from content; a nil
// content means the signature must encapsulate it. Each signer of a
// co-signed CMS gets its own report.
func (v *Verifier) CAdES(ctx context.Context, sig []byte, content io.Reader) (*Report, error) {
	start := time.Now()
	ps, err := parseCMS(sig)
	if err != nil {
		return nil, err
	}
	if content == nil {
		if ps[0].content == nil {
			return nil, ErrNoContent
		}
		content = bytes.NewReader(ps[0].content)
	}
	// One pass over the content for every digest algorithm in use.
	hashers := map[crypto.Hash]hash.Hash{}
	var ws []io.Writer
	for _, p := range ps {
		if _, ok := hashers[p.hash]; !ok && p.hash != 0 {
			hashers[p.hash] = p.hash.New()
			ws = append(ws, hashers[p.hash])
		}
	}
	if _, err := io.Copy(io.MultiWriter(ws...), content); err != nil {
		return nil, fmt.Errorf("read content: %w", err)
	}
	var out []*Signature
	for _, p := range ps {
		if p.hash == 0 {
			out = append(out, v.unsupportedHash(p))
			continue
		}
		s := &Signature{Format: FormatCAdES}
		v.check(ctx, s, p, hashers[p.hash].Sum(nil))
		out = append(out, s)
		out = v.counterSignatures(ctx, out, p, len(out), 0)
	}
	return v.finish(FormatCAdES, start, out...), nil
}

// CAdESDigest verifies a detached CMS signature against the digest of the
// content under h, which must be the digest algorithm of at least one
// signer; signers that used another cannot be checked against it.
func (v *Verifier) CAdESDigest(ctx context.Context, sig []byte, h crypto.Hash, digest []byte) (*Report, error) {
	start := time.Now()
	ps, err := parseCMS(sig)
	if err != nil {
		return nil, err
	}
	if !h.Available() || len(digest) != h.Size() {
		return nil, fmt.Errorf("%w: %d bytes for %v", ErrDigest, len(digest), h)
	}
	var out []*Signature
	matched := false
	for _, p := range ps {
		switch {
		case p.hash == 0:
			out = append(out, v.unsupportedHash(p))
		case p.hash != h:
			s := &Signature{Format: FormatCAdES, DigestAlg: p.hashName}
			s.add(CheckIntegrity, Indeterminate, fmt.Sprintf("this signer used %s; the digest given is %v", p.hashName, h))
			out = append(out, s)
		default:
			matched = true
			s := &Signature{Format: FormatCAdES}
			v.check(ctx, s, p, digest)
			out = append(out, s)
			out = v.counterSignatures(ctx, out, p, len(out), 0)
		}
	}
	if !matched {
		return nil, fmt.Errorf("%w: the signature uses %s, the digest given is %v", ErrDigest, ps[0].hashName, h)
	}
	return v.finish(FormatCAdES, start, out...), nil
}

// Errors of bad input to the verifier.
var (
	ErrDigest    = errs.Sentinel(errs.Invalid, "bad_digest", "bad digest")
	ErrNoContent = errs.Sentinel(errs.Invalid, "no_signed_content", "detached signature: the signed content or its digest is needed")
)

func (v *Verifier) unsupportedHash(p *parsed) *Signature {
	s := &Signature{Format: FormatCAdES, DigestAlg: p.hashName}
	s.add(CheckIntegrity, Failed, "digest algorithm "+p.hashName+" is not accepted (want SHA-256, SHA-384 or SHA-512)")
	return s
}

func (v *Verifier) finish(format string, start time.Time, sigs ...*Signature) *Report {
	r := &Report{Verdict: Valid, Signatures: sigs}
	for _, s := range sigs {
		s.Verdict = verdictOf(s.Checks)
		v.m.verdicts.WithLabelValues(format, string(s.Verdict)).Inc()
		r.Verdict = worse(r.Verdict, s.Verdict)
	}
	v.m.duration.WithLabelValues(format).Observe(time.Since(start).Seconds())
	v.log.Info("signature verified", "format", format, "verdict", r.Verdict, "signatures", len(sigs))
	return r
}

func verdictOf(cs []Check) Verdict {
	out := Valid
	for _, c := range cs {
		switch c.Status {
		case Failed:
			return Invalid
		case Indeterminate:
			out = VerdictIndeterminate
		}
	}
	return out
}

func worse(a, b Verdict) Verdict {
	rank := map[Verdict]int{Valid: 0, VerdictIndeterminate: 1, Invalid: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

func (s *Signature) add(name string, st Status, reason string) {
	s.Checks = append(s.Checks, Check{Name: name, Status: st, Reason: reason})
}

// check runs every check of one CMS signer whose content digest is digest.
func (v *Verifier) check(ctx context.Context, s *Signature, p *parsed, digest []byte) {
	s.DigestAlg = p.hashName
	s.Level = "B-B"
	if p.signer == nil {
		s.add(CheckIntegrity, Failed, "the signer certificate is not included in the signature")
		return
	}
	c := p.signer
	s.Signer, s.Issuer = c.Subject.String(), c.Issuer.String()
	s.SignerSerial = c.SerialNumber.Text(16)
	s.CertSHA256 = hex.EncodeToString(certHash(c))
	s.SigningTime = p.signingTime()

	// Integrity: the content digest and the signature over the attributes.
	md, err := p.messageDigest()
	switch {
	case err != nil:
		s.add(CheckIntegrity, Failed, err.Error())
	case !bytes.Equal(md, digest):
		s.add(CheckIntegrity, Failed, "the document does not match the signed message digest (it was changed or is another document)")
	default:
		var ct asn1.ObjectIdentifier
		_, hasCT := p.signed[oidAttrContentType.String()]
		if p.counter && hasCT {
			s.add(CheckIntegrity, Failed, "a countersignature must not carry a content-type attribute (RFC 5652 11.4)")
		} else if p.counter {
			if err := p.checkSignature(); err != nil {
				s.add(CheckIntegrity, Failed, err.Error())
			} else {
				s.add(CheckIntegrity, Passed, fmt.Sprintf("the countersigned signature value matches the message digest (%s) and the countersignature verifies with the countersigner's key", p.hashName))
			}
		} else if raw, ok := p.signed[oidAttrContentType.String()]; !ok {
			s.add(CheckIntegrity, Failed, "no content-type attribute")
		} else if _, err := asn1.Unmarshal(raw.FullBytes, &ct); err != nil || !ct.Equal(p.eType) {
			s.add(CheckIntegrity, Failed, "the content-type attribute does not match the encapsulated content type")
		} else if err := p.checkSignature(); err != nil {
			s.add(CheckIntegrity, Failed, err.Error())
		} else {
			s.add(CheckIntegrity, Passed, fmt.Sprintf("message digest (%s) matches and the signature verifies with the signer's key", p.hashName))
		}
	}
	v.policy(s, p)
	st, why := p.checkSigningCertificate()
	if st == Indeterminate && s.Format == FormatPDFPKCS7 && !p.hasSigningCert() {
		// adbe.pkcs7.detached predates ESS; its absence is no defect there.
		st, why = Passed, "no signing-certificate attribute, which adbe.pkcs7.detached does not require"
	}
	s.add(CheckSigningCert, st, why)

	// The timestamp first: its time is the one to judge the chain at.
	at := v.now()
	var accuracy time.Duration
	if toks := p.unsigned[oidAttrTimestampToken.String()]; len(toks) > 0 {
		s.Level = "B-T"
		tok, st, why := v.timestamp(toks[0].FullBytes, p.si.Signature)
		s.add(CheckTimestamp, st, why)
		if tok != nil {
			s.TimestampTime = tok.Time
			s.TSA = tok.Cert.Subject.String()
			at, accuracy = tok.Time, tok.Accuracy
		}
	}
	s.ValidationTime = at

	chain, st, why := v.chain(c, p.certs, at)
	s.add(CheckChain, st, why)
	lt := false
	if p.ltv != nil && chain != nil {
		// B-LT: the material the signature carries is judged offline
		// first; only what it lacks is asked of the configured checker.
		est, ewhy := v.revocation(ctx, p.ltv, chain, at, accuracy, s.TimestampTime.IsZero())
		if est != Indeterminate {
			lt = true
			s.add(CheckValidationData, Passed, "the signature carries revocation data for every certificate of its chain, checked offline")
			s.add(CheckRevocation, est, ewhy)
		} else if !p.shared() {
			s.add(CheckValidationData, Indeterminate, "the revocation data carried does not cover the chain: "+ewhy)
		}
		// With other signers or countersigners, the material carried may be
		// theirs alone: this signer is then not B-LT, which is no defect,
		// and its revocation is asked below as for any B-T.
	}
	if !lt {
		st, why = v.revocation(ctx, v.cfg.Revocation, chain, at, accuracy, s.TimestampTime.IsZero())
		s.add(CheckRevocation, st, why)
	}
	if lt && s.Level == "B-T" {
		s.Level = "B-LT"
	}
	if len(p.unsigned[oidAttrArchiveTSv3.String()]) > 0 {
		st, why, _ := v.archiveTimestamps(p, digest)
		s.add(CheckArchiveTimestamp, st, why)
		if st == Passed && s.Level == "B-LT" {
			s.Level = "B-LTA"
		}
	}
}

func (v *Verifier) timestamp(der, sigValue []byte) (*tsa.Token, Status, string) {
	// The imprint's hash comes from the token; VerifyToken then checks it
	// against the signature value under that hash.
	ts, err := cmsparse.Timestamp(der)
	if err != nil {
		return nil, Failed, "timestamp token does not verify: " + err.Error()
	}
	if ts.HashAlgorithm == 0 || !ts.HashAlgorithm.Available() {
		return nil, Failed, "timestamp token imprint uses an unsupported hash"
	}
	h := ts.HashAlgorithm.New()
	h.Write(sigValue)
	tok, err := tsa.VerifyToken(der, tsa.VerifyOptions{Roots: v.cfg.TSARoots, Intermediates: v.cfg.Intermediates, Hash: ts.HashAlgorithm, Digest: h.Sum(nil)})
	switch {
	case errors.Is(err, tsa.ErrUntrusted):
		return nil, Indeterminate, "timestamp is intact but its TSA does not chain to a configured TSA root: " + err.Error()
	case err != nil:
		return nil, Failed, "timestamp token: " + err.Error()
	}
	return tok, Passed, fmt.Sprintf("signature value timestamped at %s by %s (serial %s)",
		tok.Time.UTC().Format(time.RFC3339), tok.Cert.Subject.CommonName, tok.Serial)
}

func (v *Verifier) chain(c *x509.Certificate, certs []*x509.Certificate, at time.Time) ([]*x509.Certificate, Status, string) {
	inter := x509.NewCertPool()
	if v.cfg.Intermediates != nil {
		inter = v.cfg.Intermediates.Clone()
	}
	for _, x := range certs {
		if x != c {
			inter.AddCert(x)
		}
	}
	if c.KeyUsage != 0 && c.KeyUsage&(x509.KeyUsageDigitalSignature|x509.KeyUsageContentCommitment) == 0 {
		return nil, Failed, "the signer certificate's key usage allows neither digitalSignature nor nonRepudiation"
	}
	chains, err := c.Verify(x509.VerifyOptions{
		Roots: v.cfg.Roots, Intermediates: inter, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		var ua x509.UnknownAuthorityError
		var ci x509.CertificateInvalidError
		switch {
		case errors.As(err, &ua):
			return nil, Indeterminate, "no chain to a configured root: " + err.Error()
		case errors.As(err, &ci) && ci.Reason == x509.Expired:
			return nil, Failed, fmt.Sprintf("a certificate was not valid at %s: %v", at.UTC().Format(time.RFC3339), err)
		}
		return nil, Failed, "chain: " + err.Error()
	}
	ch := chains[0]
	return ch, Passed, fmt.Sprintf("chains to %q, valid at %s", ch[len(ch)-1].Subject.CommonName, at.UTC().Format(time.RFC3339))
}

// revocation checks every certificate of chain but the root. at is the
// timestamp's time, give or take accuracy, or now when untimed.
func (v *Verifier) revocation(ctx context.Context, rc RevocationChecker, chain []*x509.Certificate, at time.Time, accuracy time.Duration, untimed bool) (Status, string) {
	if chain == nil {
		return Indeterminate, "not checked: no valid chain"
	}
	if rc == nil {
		return Indeterminate, "no revocation checker configured"
	}
	var notes []string
	worst := Passed
	for i := 0; i+1 < len(chain); i++ {
		c, issuer := chain[i], chain[i+1]
		r, err := rc.Revocation(ctx, c, issuer)
		name := c.Subject.CommonName
		switch {
		case err != nil:
			worst = worseStatus(worst, Indeterminate)
			notes = append(notes, fmt.Sprintf("%s: %v", name, err))
		case r.Status == Revoked && untimed:
			// Without a timestamp nothing proves the signature predates
			// the revocation (ETSI EN 319 102-1: REVOKED_NO_POE).
			worst = worseStatus(worst, Indeterminate)
			notes = append(notes, fmt.Sprintf("%s: revoked at %s (%s) and no timestamp proves the signature came before, per %s",
				name, r.RevokedAt.UTC().Format(time.RFC3339), reasonText(r.Reason), r.Source))
		// OCSP and CRL times are whole seconds, so a revocation is known
		// to the second and the timestamp to its accuracy.
		case r.Status == Revoked && !r.RevokedAt.Add(time.Second).After(at.Add(-accuracy)):
			worst = Failed
			notes = append(notes, fmt.Sprintf("%s: revoked at %s (%s) before the timestamp %s, per %s", name,
				r.RevokedAt.UTC().Format(time.RFC3339), reasonText(r.Reason), at.UTC().Format(time.RFC3339Nano), r.Source))
		case r.Status == Revoked && !r.RevokedAt.After(at.Add(accuracy)):
			worst = worseStatus(worst, Indeterminate)
			notes = append(notes, fmt.Sprintf("%s: revoked at %s (%s), too close to the timestamp %s (accuracy %s) to tell which came first, per %s",
				name, r.RevokedAt.UTC().Format(time.RFC3339), reasonText(r.Reason), at.UTC().Format(time.RFC3339Nano), accuracy, r.Source))
		case r.Status == Revoked:
			notes = append(notes, fmt.Sprintf("%s: revoked at %s, after the timestamp, per %s", name, r.RevokedAt.UTC().Format(time.RFC3339), r.Source))
		case r.Status == Unknown:
			worst = worseStatus(worst, Indeterminate)
			notes = append(notes, fmt.Sprintf("%s: unknown to %s", name, r.Source))
		default:
			notes = append(notes, fmt.Sprintf("%s: good per %s", name, r.Source))
		}
	}
	return worst, joinNotes(notes)
}

func worseStatus(a, b Status) Status {
	rank := map[Status]int{Passed: 0, Indeterminate: 1, Failed: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

func joinNotes(n []string) string {
	var b bytes.Buffer
	for i, s := range n {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(s)
	}
	return b.String()
}
