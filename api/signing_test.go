package api_test

import (
	"context"
	"crypto/sha256"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/audit"
)

// TestSignDigestsRecords checks an operator's call is one key.activated
// and one key.used, linked, naming the operator; and that with the audit
// store refusing appends no signature leaves.
func TestSignDigestsRecords(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	k := s.generate(t, "system:ops", firmav1.KeyType_KEY_TYPE_EC_P256, firmav1.KeyMode_KEY_MODE_TOKEN)
	digests := make([][]byte, 64)
	for i := range digests {
		d := sha256.Sum256([]byte{byte(i)})
		digests[i] = d[:]
	}
	resp, err := s.sign.SignDigests(ctx, &firmav1.SignDigestsRequest{KeyId: k.GetId(), Digests: digests})
	if err != nil || len(resp.GetSignatures()) != 64 {
		t.Fatalf("SignDigests: %v", err)
	}
	page, err := s.audit.Query(ctx, audit.Filter{KeyID: k.GetId(), Events: []audit.Event{audit.KeyActivated, audit.KeyUsed}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 2 {
		t.Fatalf("%d records for one call, want 2", len(page.Records))
	}
	act, used := page.Records[0], page.Records[1]
	op := audit.Actor{Role: audit.RoleAdmin, ID: "op"}
	if act.Event != audit.KeyActivated || used.Event != audit.KeyUsed || act.Actor != op || used.Actor != op ||
		len(act.Documents) != 64 || len(used.Documents) != 64 || act.Details["evidence"] != "operator-call" ||
		act.Details[audit.DetailActivation] == "" || act.Details[audit.DetailActivation] != used.Details[audit.DetailActivation] ||
		used.Details[audit.DetailAlgorithm] != "ecdsa-p256" {
		t.Fatalf("records:\n%+v\n%+v", act, used)
	}

	if _, err := s.db.SQL().ExecContext(ctx, `CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_records
		BEGIN SELECT RAISE(ABORT, 'audit store unavailable'); END`); err != nil {
		t.Fatal(err)
	}
	resp, err = s.sign.SignDigests(ctx, &firmav1.SignDigestsRequest{KeyId: k.GetId(), Digests: digests[:1]})
	wantStatus(t, err, codes.Unavailable, firmav1.ErrorReason_ERROR_REASON_AUDIT_UNAVAILABLE)
	if resp != nil {
		t.Fatal("a signature left with the audit store down")
	}
}

func TestSigningServiceNeedsSigning(t *testing.T) {
	if sv, err := api.NewSigningService(nil, nil); err == nil || sv != nil {
		t.Fatal("NewSigningService accepted no signing service")
	}
	if err := api.Register(grpc.NewServer(), nil, nil, nil); err == nil {
		t.Fatal("Register accepted no signing service")
	}
}
