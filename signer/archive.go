package signer

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"time"

	"github.com/firma-cloud/firma/internal/cmsparse"
)

// ArchiveTimestamp is the last archive timestamp of a B-LTA signature:
// when it was made and the certificate of the TSA that made it, whose
// expiry bounds how long the archive timestamp protects the signature.
type ArchiveTimestamp struct {
	Time time.Time
	TSA  *x509.Certificate
}

// LastArchiveTimestamp returns the last archive timestamp of sig: for
// CAdES its SignerInfo's last archive-time-stamp-v3, for PAdES the PDF's
// last document timestamp; nil when it has none (not B-LTA).
func LastArchiveTimestamp(sig []byte, f Format) (*ArchiveTimestamp, error) {
	var tok []byte
	var err error
	switch f {
	case FormatPAdES:
		tok, err = LastDocumentTimestamp(sig)
	case FormatCAdES:
		tok, err = lastCAdESArchiveToken(sig)
	default:
		return nil, fmt.Errorf("archive timestamp of %q: %w (want cades or pades)", f, ErrFormat)
	}
	if err != nil || tok == nil {
		return nil, err
	}
	ts, err := cmsparse.Timestamp(tok)
	if err != nil {
		return nil, fmt.Errorf("archive timestamp: %w: %w", ErrTimestamp, err)
	}
	var tsa *x509.Certificate
	for _, c := range ts.Certificates {
		for _, u := range c.ExtKeyUsage {
			if u == x509.ExtKeyUsageTimeStamping && tsa == nil {
				tsa = c
			}
		}
	}
	if tsa == nil {
		return nil, fmt.Errorf("archive timestamp: %w: the token carries no TSA certificate", ErrTimestamp)
	}
	return &ArchiveTimestamp{Time: ts.Time, TSA: tsa}, nil
}

// lastCAdESArchiveToken returns the token of the last
// archive-time-stamp-v3 of a CAdES signature's first SignerInfo.
func lastCAdESArchiveToken(sig []byte) ([]byte, error) {
	attrs, err := firstUnsignedAttrs(sig)
	if err != nil {
		return nil, err
	}
	var last []byte
	for _, a := range attrs {
		var at struct {
			Type   asn1.ObjectIdentifier
			Values asn1.RawValue
		}
		if _, err := asn1.Unmarshal(a, &at); err == nil && at.Type.Equal(oidAttrArchiveTSv3) {
			if vals, err := splitSet(at.Values.Bytes); err == nil && len(vals) == 1 {
				last = vals[0]
			}
		}
	}
	return last, nil
}
