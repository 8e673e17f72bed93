package tsa

import (
	"context"
	"crypto"
	"encoding/asn1"
	"fmt"
	"math/big"
	"time"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/keystore"
)

// Issued describes one use of the TSA key: a token signed, or an attempt
// that failed.
type Issued struct {
	KeyID  string // keystore key ID; empty for a signer outside the keystore
	Serial *big.Int
	Hash   crypto.Hash
	Digest []byte // the message imprint
	Policy asn1.ObjectIdentifier
	Time   time.Time
}

// AuditFunc records one use of the TSA key; err is the signing error, nil
// when the token was signed. When it returns an error the token is not
// handed out: the request fails closed with systemFailure.
type AuditFunc func(ctx context.Context, iss *Issued, err error) error

// AuditLog returns an AuditFunc writing a key.used record per token to l,
// with the imprint as the document digest and the token serial.
func AuditLog(l *audit.Log) AuditFunc {
	return func(ctx context.Context, iss *Issued, err error) error {
		rec := &audit.Record{
			Event:     audit.KeyUsed,
			Outcome:   audit.Success,
			Actor:     audit.Actor{Role: audit.RoleSystem, ID: "tsa"},
			KeyID:     iss.KeyID,
			Documents: []audit.Document{audit.Digest(iss.Hash, iss.Digest)},
			Details: map[string]string{
				"purpose": "rfc3161-timestamp",
				// Hex: the audit log refuses long digit strings as
				// possible phone numbers.
				"tsa_serial": fmt.Sprintf("%#x", iss.Serial),
				"gen_time":   iss.Time.UTC().Format(time.RFC3339Nano),
			},
		}
		if err != nil {
			rec.Outcome, rec.Reason = audit.Failure, err.Error()
		}
		return l.Append(ctx, rec)
	}
}

func keyID(s crypto.Signer) string {
	if ks, ok := s.(*keystore.Signer); ok {
		return ks.Key().ID
	}
	return ""
}
