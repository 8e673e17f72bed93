package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/firma-cloud/firma/store"
	"golang.org/x/crypto/ocsp"
	"golang.org/x/time/rate"
)

// OCSPResult is a signed OCSP response and what it says.
type OCSPResult struct {
	DER    []byte
	Status string // good, revoked, unknown, malformed, unauthorized, trylater, error
	// NextUpdate is when a relying party should ask again; zero for error
	// responses.
	NextUpdate time.Time
}

// RespondOCSP answers a DER OCSP request (RFC 6960) about a certificate of
// the issuing CA. It never returns a Go error for bad input: a request it
// cannot parse gets a malformedRequest response, one about another CA an
// unauthorized response, as the RFC says; the error return is for a
// failing HSM or store, with an internalError response to send.
func (a *Authority) RespondOCSP(ctx context.Context, reqDER []byte) (*OCSPResult, error) {
	res, err := a.respondOCSP(ctx, reqDER)
	a.m.ocsp.WithLabelValues(res.Status).Inc()
	return res, err
}

func (a *Authority) respondOCSP(ctx context.Context, reqDER []byte) (*OCSPResult, error) {
	req, err := ocsp.ParseRequest(reqDER)
	if err != nil {
		return &OCSPResult{DER: ocsp.MalformedRequestErrorResponse, Status: "malformed"}, nil
	}
	s := a.loaded(ctx)
	if s.issuing == nil || s.issuing.signer == nil {
		return &OCSPResult{DER: ocsp.UnauthorizedErrorResponse, Status: "unauthorized"}, nil
	}
	if ok, err := issuedBy(req, s.issuing.cert); err != nil || !ok {
		return &OCSPResult{DER: ocsp.UnauthorizedErrorResponse, Status: "unauthorized"}, nil
	}
	if req.SerialNumber == nil || req.SerialNumber.Sign() <= 0 {
		return &OCSPResult{DER: ocsp.MalformedRequestErrorResponse, Status: "malformed"}, nil
	}
	nonce, err := requestNonce(reqDER)
	if err != nil {
		return &OCSPResult{DER: ocsp.MalformedRequestErrorResponse, Status: "malformed"}, nil
	}
	// A nonce asks for a fresh signature, which cannot come from the
	// cache; past the nonce rate the cached answer, without a nonce, is
	// sent instead (RFC 6960 lets a responder leave it out), so that
	// nonces cannot turn a query flood into an HSM signature flood.
	if nonce != nil && !a.nonced.Allow() {
		nonce = nil
	}
	serial := serialHex(req.SerialNumber)
	cacheKey := fmt.Sprintf("%s/%d", serial, req.HashAlgorithm)
	if nonce == nil {
		if r := a.cache.get(cacheKey); r != nil {
			return r, nil
		}
	}

	now := time.Now().UTC().Truncate(time.Second)
	tmpl := ocsp.Response{
		SerialNumber: req.SerialNumber,
		ThisUpdate:   now,
		NextUpdate:   now.Add(a.cfg.OCSPMaxAge),
		IssuerHash:   req.HashAlgorithm,
	}
	status := "unknown"
	rec, err := a.st.CertificateBySerial(ctx, nameIssuing, serial)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if !a.unknown.Allow() {
			return &OCSPResult{DER: ocsp.TryLaterErrorResponse, Status: "trylater"}, nil
		}
		tmpl.Status = ocsp.Unknown
	case err != nil:
		a.m.errors.WithLabelValues("ocsp").Inc()
		return &OCSPResult{DER: ocsp.InternalErrorErrorResponse, Status: "error"}, fmt.Errorf("ocsp %s: %w", serial, err)
	case rec.Status == store.CertRevoked:
		tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, rec.RevokedAt, rec.Reason
		status = "revoked"
	default:
		// Valid and expired (never revoked) certificates are good: RFC
		// 6960 lets a responder answer about expired certificates.
		tmpl.Status = ocsp.Good
		status = "good"
	}

	responder, signer, signerID := s.issuing.cert, s.issuing.signer, s.issuing.rec.KeyID
	// The delegated responder signs while its certificate is valid; should
	// rollover have failed, the issuing CA answers itself rather than
	// sending responses nobody accepts.
	if s.ocsp != nil && s.ocsp.signer != nil && now.Before(s.ocsp.cert.NotAfter) {
		responder, signer, signerID = s.ocsp.cert, s.ocsp.signer, s.ocsp.rec.KeyID
		tmpl.Certificate = s.ocsp.cert
	}
	der, err := createOCSPResponse(s.issuing.cert, responder, tmpl, signer, now, nonce)
	if err != nil {
		a.m.errors.WithLabelValues("ocsp").Inc()
		a.signFailed(ctx, signerID, "ocsp", err)
		return &OCSPResult{DER: ocsp.InternalErrorErrorResponse, Status: "error"}, fmt.Errorf("ocsp %s: sign: %w", serial, err)
	}
	if err := a.record(ctx, keyUsed(signerID, "ocsp", der, map[string]string{"serial": hexSerial(serial), "status": status})); err != nil {
		return &OCSPResult{DER: ocsp.InternalErrorErrorResponse, Status: "error"}, fmt.Errorf("ocsp %s: %w", serial, err)
	}
	res := &OCSPResult{DER: der, Status: status, NextUpdate: tmpl.NextUpdate}
	if status != "unknown" && nonce == nil {
		// Unknown serials are not cached: the certificate may be issued
		// by another replica a moment later. Nonced answers belong to
		// their request alone.
		a.cache.put(cacheKey, res)
	}
	return res, nil
}

// issuedBy reports whether the request's CertID names issuer.
func issuedBy(req *ocsp.Request, issuer *x509.Certificate) (bool, error) {
	if !req.HashAlgorithm.Available() {
		return false, fmt.Errorf("hash %v not available", req.HashAlgorithm)
	}
	var spki struct {
		Algorithm asn1.RawValue
		Key       asn1.BitString
	}
	if _, err := asn1.Unmarshal(issuer.RawSubjectPublicKeyInfo, &spki); err != nil {
		return false, err
	}
	return bytes.Equal(hashOf(req.HashAlgorithm, issuer.RawSubject), req.IssuerNameHash) &&
		bytes.Equal(hashOf(req.HashAlgorithm, spki.Key.RightAlign()), req.IssuerKeyHash), nil
}

func hashOf(h crypto.Hash, b []byte) []byte {
	w := h.New()
	w.Write(b)
	return w.Sum(nil)
}

// ocspCache keeps signed responses for a short while so that a flood of
// queries about the same certificates does not become a flood of HSM
// signatures. It is cleared on every revocation in this process; another
// replica's revocation shows here after at most the TTL.
type ocspCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]cached
}

type cached struct {
	res     *OCSPResult
	expires time.Time
}

// maxCached bounds the cache; past it the cache is emptied rather than
// tracked per entry, since entries live only a TTL anyway.
const maxCached = 10000

func newOCSPCache(ttl time.Duration) *ocspCache {
	return &ocspCache{ttl: ttl, m: map[string]cached{}}
}

func (c *ocspCache) get(k string) *OCSPResult {
	if c.ttl <= 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || time.Now().After(e.expires) {
		delete(c.m, k)
		return nil
	}
	return e.res
}

func (c *ocspCache) put(k string, r *OCSPResult) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCached {
		c.m = map[string]cached{}
	}
	c.m[k] = cached{res: r, expires: time.Now().Add(c.ttl)}
}

func (c *ocspCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m = map[string]cached{}
}

// ResetOCSPNonceLimit refills the nonce limiter; for tests.
func (a *Authority) ResetOCSPNonceLimit() {
	a.nonced = rate.NewLimiter(a.nonced.Limit(), a.nonced.Burst())
}
