package tsa

import (
	"context"
	"crypto"
	"fmt"
	"math/big"
	"time"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signing"
)

// Actor is who the audit records of the built-in TSA name: the service
// itself, since it signs for anyone by design.
var Actor = audit.Actor{Role: audit.RoleSystem, ID: "tsa"}

// Details are the audit details of one token: its purpose, serial and
// time, on both the key.activated and the key.used record.
func Details(serial *big.Int, genTime time.Time) map[string]string {
	return map[string]string{
		"purpose": "rfc3161-timestamp",
		// Hex: the audit log refuses long digit strings as possible phone
		// numbers.
		"tsa_serial": fmt.Sprintf("%#x", serial),
		"gen_time":   genTime.UTC().Format(time.RFC3339Nano),
	}
}

// authorise asks the signing service for the TSA key for one token, the
// imprint as the document. The TSA has no consent to consume: it
// timestamps for anyone, so its evidence is the request's standing.
func (s *Server) authorise(ctx context.Context, h crypto.Hash, imprint []byte, serial *big.Int, genTime time.Time) (*signing.Grant, error) {
	return s.cfg.Signing.Authorise(ctx, signing.Request{Purpose: signing.PurposeTSA, Actor: Actor, KeyID: keyID(s.cfg.Signer),
		Documents: []audit.Document{audit.Digest(h, imprint)}, Details: Details(serial, genTime),
		Evidence: signing.TimestampRequest(fmt.Sprintf("%#x", serial))})
}

func keyID(s crypto.Signer) string {
	if ks, ok := s.(*keystore.Signer); ok {
		return ks.Key().ID
	}
	return ""
}
