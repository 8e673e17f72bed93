package ca

import (
	"crypto/x509"
	"time"
)

// CA names for CRL and CACertificate: the store's names of the built-in
// authorities.
const (
	RootCA    = nameRoot
	IssuingCA = nameIssuing
	OCSPCA    = nameOCSP
)

// CACertificate returns the certificate of the named CA (RootCA,
// IssuingCA or OCSPCA) and when it was last stored, for the publication
// endpoints' Last-Modified; nil before set-up or for another name.
func (a *Authority) CACertificate(name string) (*x509.Certificate, time.Time) {
	s := a.cur.Load()
	var au *authority
	switch name {
	case nameRoot:
		au = s.root
	case nameIssuing:
		au = s.issuing
	case nameOCSP:
		au = s.ocsp
	}
	if au == nil {
		return nil, time.Time{}
	}
	return au.cert, au.rec.UpdatedAt
}

// CRLInterval is how often CRLs are refreshed: caches may keep one that
// long, so revocations show within one interval.
func (a *Authority) CRLInterval() time.Duration { return a.cfg.CRLInterval }

// OCSPCacheTTL bounds how long a GET OCSP response may be cached.
func (a *Authority) OCSPCacheTTL() time.Duration { return a.cfg.OCSPCacheTTL }
