package tsa

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"time"

	"github.com/digitorus/pkcs7"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signing"
	"github.com/firma-cloud/firma/store"
	"github.com/prometheus/client_golang/prometheus"
)

// Content types of RFC 3161 over HTTP (section 3.4).
const (
	QueryContentType = "application/timestamp-query"
	ReplyContentType = "application/timestamp-reply"
)

// Server defaults.
const (
	DefaultAccuracy      = time.Second
	DefaultMaxQueryBytes = 16 << 10
	// maxNonceBits bounds the nonce echoed in every token: clients use 64
	// to 160 bits.
	maxNonceBits = 512
)

// DefaultHashes are the message-imprint hashes the server accepts unless
// configured otherwise. SHA-1 is refused (badAlg): its collisions make an
// imprint worthless.
var DefaultHashes = []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512}

// ServerConfig configures the built-in TSA.
type ServerConfig struct {
	// Signer is the TSA key, normally a token-mode HSM key
	// (*keystore.Signer); Cert is its certificate and Chain the issuing
	// CA certificates sent with it when a request sets certReq.
	Signer crypto.Signer
	// Signing authorises and records every use of an HSM key: required
	// when Signer is a *keystore.Signer, whose tokens are then signed only
	// through it, per audit interval: a key.activated record opens the
	// interval before its first token, a key.used summary closes it.
	Signing *signing.Service
	// Issuance is the TSA's issuance log, required with Signing: every
	// token's row is stored before the token is handed out, and interval
	// summaries are over these rows.
	Issuance store.TSAIssuanceStore
	// AuditInterval is how long an audit interval stays open; 0 means
	// DefaultAuditInterval. Close closes the last one.
	AuditInterval time.Duration
	Cert          *x509.Certificate
	Chain         []*x509.Certificate
	// Policy is the TSA policy OID written in every token. A request for
	// any other policy is refused with unacceptedPolicy.
	Policy asn1.ObjectIdentifier
	// Accuracy is written in every token; 0 means DefaultAccuracy. The
	// time is written to the resolution the accuracy calls for.
	Accuracy time.Duration
	Hashes   []crypto.Hash // accepted imprint hashes; nil means DefaultHashes
	Serials  SerialSource
	// MaxQueryBytes bounds the request body; 0 means DefaultMaxQueryBytes.
	MaxQueryBytes int64
	// ClockCheck, if set, must pass for a token to be issued; otherwise
	// the reply is timeNotAvailable. KernelClock(Accuracy) is the check
	// for a production TSA, whose time must be within its accuracy.
	ClockCheck func() error
	Now        func() time.Time // nil means time.Now
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil registers no metrics
}

// ErrTimeNotAvailable is Respond's error when the time source is not
// trusted: the reply says timeNotAvailable and the HTTP status is 503.
var ErrTimeNotAvailable = errors.New("time source not available")

// Server is the built-in RFC 3161 TSA. It answers DER queries (Respond);
// api/rest/tsahttp serves it over HTTP.
type Server struct {
	cfg      ServerConfig
	hash     crypto.Hash // of the token signature
	tsaName  asn1.RawValue
	essAttr  pkcs7.Attribute
	chainPEM []byte
	// certs is the TSA certificate and its chain, checked once in
	// NewServer: a token carries them as they are, not checked again.
	certs []*x509.Certificate
	log   *slog.Logger
	m     *serverMetrics
	clock *clockGate   // nil without a ClockCheck
	iv    *intervals   // nil without Signing
	rows  *issuanceLog // nil without Signing
}

// NewServer checks cfg and returns the TSA.
func NewServer(cfg ServerConfig) (*Server, error) {
	switch {
	case cfg.Signer == nil || cfg.Cert == nil:
		return nil, errors.New("tsa server: signer and certificate are required")
	case cfg.Serials == nil:
		return nil, errors.New("tsa server: serial source is required")
	case len(cfg.Policy) == 0:
		return nil, errors.New("tsa server: policy OID is required")
	}
	if _, hsm := cfg.Signer.(*keystore.Signer); hsm && cfg.Signing == nil {
		return nil, errors.New("tsa server: an HSM key signs only through the signing service, which records every token")
	}
	if cfg.Signing != nil && cfg.Issuance == nil {
		return nil, errors.New("tsa server: the issuance log is required with the signing service: audit summaries are over its rows")
	}
	if cfg.AuditInterval < 0 {
		return nil, errors.New("tsa server: negative audit interval")
	}
	if cfg.AuditInterval == 0 {
		cfg.AuditInterval = DefaultAuditInterval
	}
	if err := CheckCertificate(cfg.Cert); err != nil {
		return nil, fmt.Errorf("tsa server: %w", err)
	}
	if !publicKeysEqual(cfg.Signer.Public(), cfg.Cert.PublicKey) {
		return nil, errors.New("tsa server: certificate is not for the signer's key")
	}
	parent := cfg.Cert
	for _, c := range cfg.Chain {
		if err := parent.CheckSignatureFrom(c); err != nil {
			return nil, fmt.Errorf("tsa server: chain certificate %q did not issue %q: %w", c.Subject, parent.Subject, err)
		}
		// Tokens name the certificate by its own issuer field: it must be
		// the chain's next subject.
		if !bytes.Equal(parent.RawIssuer, c.RawSubject) {
			return nil, fmt.Errorf("tsa server: chain certificate %q is not the issuer %q names", c.Subject, parent.Issuer)
		}
		parent = c
	}
	if cfg.Accuracy <= 0 {
		cfg.Accuracy = DefaultAccuracy
	}
	if cfg.Hashes == nil {
		cfg.Hashes = DefaultHashes
	}
	for _, h := range cfg.Hashes {
		if oidFromHash(h) == nil || !h.Available() {
			return nil, fmt.Errorf("tsa server: imprint hash %v not supported (want SHA-256, SHA-384 or SHA-512)", h)
		}
	}
	if cfg.MaxQueryBytes <= 0 {
		cfg.MaxQueryBytes = DefaultMaxQueryBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h, err := signatureHash(cfg.Signer.Public())
	if err != nil {
		return nil, fmt.Errorf("tsa server: %w", err)
	}
	m, err := newServerMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("tsa server: %w", err)
	}
	ess, err := essAttribute(cfg.Cert)
	if err != nil {
		return nil, fmt.Errorf("tsa server: %w", err)
	}
	name, err := tsaName(cfg.Cert)
	if err != nil {
		return nil, fmt.Errorf("tsa server: %w", err)
	}
	var chainPEM bytes.Buffer
	for _, c := range append([]*x509.Certificate{cfg.Cert}, cfg.Chain...) {
		pem.Encode(&chainPEM, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	var clock *clockGate
	if cfg.ClockCheck != nil {
		clock = &clockGate{check: cfg.ClockCheck}
	}
	srv := &Server{
		clock:    clock,
		cfg:      cfg,
		hash:     h,
		tsaName:  name,
		essAttr:  ess,
		chainPEM: chainPEM.Bytes(),
		certs:    append([]*x509.Certificate{cfg.Cert}, cfg.Chain...),
		log:      cfg.Logger,
		m:        m,
	}
	if cfg.Signing != nil {
		srv.iv = &intervals{s: srv}
		srv.rows = newIssuanceLog(cfg.Issuance)
	}
	return srv, nil
}

// Certificate returns the TSA certificate.
func (s *Server) Certificate() *x509.Certificate { return s.cfg.Cert }

// ChainPEM is the TSA certificate and its chain as PEM, for relying
// parties that verify tokens with openssl ts -verify -untrusted.
func (s *Server) ChainPEM() []byte { return s.chainPEM }

// MaxQueryBytes bounds a time-stamp query: the HTTP layer refuses a
// larger body before Respond.
func (s *Server) MaxQueryBytes() int64 { return s.cfg.MaxQueryBytes }

// Respond answers one DER TimeStampReq with a DER TimeStampResp. fail is
// the PKIFailureInfo of a refusal, FailNone when a token was granted. err is set
// only when the failure is ours (time source, certificate, serial source,
// key or audit log), and the reply then says timeNotAvailable or
// systemFailure.
func (s *Server) Respond(ctx context.Context, query []byte) ([]byte, FailInfo, error) {
	start := time.Now()
	reply, fail, err := s.respond(ctx, query)
	result := "granted"
	if fail != FailNone {
		result = fail.String()
	}
	s.Observe(result, start)
	return reply, fail, err
}

// Observe counts a request that ended with result: Respond counts its
// own; the HTTP layer counts the requests it refuses before Respond
// (method_not_allowed, unsupported_media_type, too_large, read_error).
func (s *Server) Observe(result string, start time.Time) {
	if result == "granted" {
		s.m.granted.Inc()
		s.m.grantedDur.Observe(time.Since(start).Seconds())
		return
	}
	s.m.requests.WithLabelValues(result).Inc()
	s.m.duration.WithLabelValues(result).Observe(time.Since(start).Seconds())
}

func (s *Server) respond(ctx context.Context, query []byte) ([]byte, FailInfo, error) {
	var req request
	rest, err := asn1.Unmarshal(query, &req)
	switch {
	case err != nil:
		return s.reject(FailBadDataFormat, "malformed TimeStampReq: "+err.Error())
	case len(rest) > 0:
		return s.reject(FailBadDataFormat, "trailing data after TimeStampReq")
	case req.Version != 1:
		return s.reject(FailBadDataFormat, fmt.Sprintf("TimeStampReq version %d, want 1", req.Version))
	}
	h := hashFromOID(req.MessageImprint.HashAlgorithm.Algorithm)
	if h == 0 || !slices.Contains(s.cfg.Hashes, h) {
		return s.reject(FailBadAlg, fmt.Sprintf("hash algorithm %v not accepted", req.MessageImprint.HashAlgorithm.Algorithm))
	}
	if len(req.MessageImprint.HashedMessage) != h.Size() {
		return s.reject(FailBadDataFormat, fmt.Sprintf("%v imprint of %d bytes, want %d", h, len(req.MessageImprint.HashedMessage), h.Size()))
	}
	if len(req.ReqPolicy) > 0 && !req.ReqPolicy.Equal(s.cfg.Policy) {
		return s.reject(FailUnacceptedPolicy, fmt.Sprintf("policy %v not offered; this TSA issues under %v", req.ReqPolicy, s.cfg.Policy))
	}
	if len(req.Extensions) > 0 {
		// RFC 3161 section 2.4.2: an extension the TSA does not know,
		// critical or not, means no token.
		return s.reject(FailUnacceptedExtension, fmt.Sprintf("extension %v not supported", req.Extensions[0].Id))
	}
	if req.Nonce != nil && (req.Nonce.Sign() < 0 || req.Nonce.BitLen() > maxNonceBits) {
		return s.reject(FailBadDataFormat, fmt.Sprintf("nonce must be a positive integer of at most %d bits", maxNonceBits))
	}
	now := s.cfg.Now()
	if s.clock != nil {
		if err, changed := s.clock.status(now); err != nil {
			if changed {
				s.log.ErrorContext(ctx, "TSA stops issuing: time source not trusted", "err", err)
			}
			reply, _, _ := s.reject(FailTimeNotAvailable, "the TSA's time source is not available")
			return reply, FailTimeNotAvailable, ErrTimeNotAvailable
		} else if changed {
			s.log.InfoContext(ctx, "TSA time source trusted")
		}
	}
	if now.Before(s.cfg.Cert.NotBefore) || now.After(s.cfg.Cert.NotAfter) {
		reply, _, _ := s.reject(FailTimeNotAvailable, "TSA certificate not valid now")
		return reply, FailTimeNotAvailable, errors.New("tsa certificate not valid now")
	}
	genTime := now.Truncate(resolution(s.cfg.Accuracy))
	serial, err := s.cfg.Serials.Next(ctx)
	if err != nil {
		return s.systemFailure(err)
	}
	token, err := s.sign(ctx, &req, h, serial, genTime)
	if err != nil {
		return s.systemFailure(err)
	}
	reply, err := asn1.Marshal(response{Status: pkiStatusInfo{Status: statusGranted}, TimeStampToken: asn1.RawValue{FullBytes: token}})
	if err != nil {
		return s.systemFailure(err)
	}
	return reply, FailNone, nil
}

// sign makes the token: with an HSM key through the signing service,
// under the open audit interval, and only once its issuance row is stored.
func (s *Server) sign(ctx context.Context, req *request, h crypto.Hash, serial *big.Int, genTime time.Time) ([]byte, error) {
	if s.cfg.Signing == nil {
		return s.token(req, h, serial, genTime, s.cfg.Signer)
	}
	return s.issue(ctx, req, h, serial, genTime)
}

func (s *Server) token(req *request, h crypto.Hash, serial *big.Int, genTime time.Time, key crypto.Signer) ([]byte, error) {
	info := tstInfo{
		Version: 1,
		Policy:  s.cfg.Policy,
		MessageImprint: messageImprint{
			HashAlgorithm: req.MessageImprint.HashAlgorithm,
			HashedMessage: req.MessageImprint.HashedMessage,
		},
		SerialNumber: serial,
		GenTime:      generalizedTime(genTime),
		Accuracy:     accuracyOf(s.cfg.Accuracy),
		Nonce:        req.Nonce,
		TSA:          s.tsaName,
	}
	// Echo the requester's algorithm identifier, but in DER: NULL
	// parameters are optional for SHA-2 and clients compare the imprint.
	info.MessageImprint.HashAlgorithm.Algorithm = oidFromHash(h)
	content, err := asn1.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("marshal TSTInfo: %w", err)
	}
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		return nil, fmt.Errorf("signed data: %w", err)
	}
	sd.SetDigestAlgorithm(oidFromHash(s.hash))
	sd.SetContentType(oidTSTInfo)
	// RFC 5652 section 5.1: version 3 when the content is not id-data.
	sd.GetSignedData().Version = 3
	// AddSigner, not AddSignerChain: the latter checks the chain's
	// signatures again on every token (an ECDSA verification each, once
	// the largest cost of a token). NewServer checked them once; with no
	// parents AddSigner names the certificate's own issuer, which is the
	// chain's first certificate's subject.
	conf := pkcs7.SignerInfoConfig{ExtraSignedAttributes: []pkcs7.Attribute{s.essAttr}, SkipCertificates: true}
	if err := sd.AddSigner(s.cfg.Cert, key, conf); err != nil {
		return nil, fmt.Errorf("sign token: %w", err)
	}
	if req.CertReq {
		for _, c := range s.certs {
			sd.AddCertificate(c)
		}
	}
	der, err := sd.Finish()
	if err != nil {
		return nil, fmt.Errorf("finish token: %w", err)
	}
	return der, nil
}

func (s *Server) reject(f FailInfo, why string) ([]byte, FailInfo, error) {
	reply, err := asn1.Marshal(response{Status: pkiStatusInfo{
		Status:       statusRejection,
		StatusString: []asn1.RawValue{{Tag: asn1.TagUTF8String, Bytes: []byte(why)}},
		FailInfo:     failBits(f),
	}})
	if err != nil {
		return nil, f, fmt.Errorf("marshal rejection: %w", err)
	}
	return reply, f, nil
}

func (s *Server) systemFailure(cause error) ([]byte, FailInfo, error) {
	// The cause goes to our log, not to the client: it may name internals.
	reply, _, err := s.reject(FailSystemFailure, "the TSA cannot issue a token now; try again later")
	return reply, FailSystemFailure, errors.Join(cause, err)
}

// tsaName is the TSTInfo tsa field naming cert's subject: [0] EXPLICIT
// GeneralName, a directoryName ([4] EXPLICIT Name).
func tsaName(cert *x509.Certificate) (asn1.RawValue, error) {
	dn, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: cert.RawSubject})
	if err != nil {
		return asn1.RawValue{}, err
	}
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: dn}, nil
}

// resolution is the unit genTime is truncated to: no finer than the
// accuracy it is claimed to.
func resolution(acc time.Duration) time.Duration {
	switch {
	case acc >= time.Second:
		return time.Second
	case acc >= time.Millisecond:
		return time.Millisecond
	}
	return time.Microsecond
}

// signatureHash picks the token signature's hash to match the key's
// strength.
func signatureHash(pub crypto.PublicKey) (crypto.Hash, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return crypto.SHA256, nil
		case elliptic.P384():
			return crypto.SHA384, nil
		case elliptic.P521():
			return crypto.SHA512, nil
		}
	case *rsa.PublicKey:
		return crypto.SHA256, nil
	}
	return 0, fmt.Errorf("key type %T not supported", pub)
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// essAttribute is the signingCertificateV2 attribute (RFC 5035) naming
// cert by its SHA-256 hash and issuer and serial.
func essAttribute(cert *x509.Certificate) (pkcs7.Attribute, error) {
	sum := sha256.Sum256(cert.Raw)
	name, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 4, IsCompound: true, Bytes: cert.RawIssuer})
	if err != nil {
		return pkcs7.Attribute{}, err
	}
	names, err := asn1.Marshal([]asn1.RawValue{{FullBytes: name}})
	if err != nil {
		return pkcs7.Attribute{}, err
	}
	v, err := asn1.Marshal(signingCertificateV2{Certs: []essCertIDv2{{
		CertHash:     sum[:],
		IssuerSerial: issuerSerial{Issuer: asn1.RawValue{FullBytes: names}, SerialNumber: cert.SerialNumber},
	}}})
	if err != nil {
		return pkcs7.Attribute{}, err
	}
	return pkcs7.Attribute{Type: oidSigningCertV2, Value: asn1.RawValue{FullBytes: v}}, nil
}
