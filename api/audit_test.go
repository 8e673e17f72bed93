package api_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signing"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store/sqlite"
)

const (
	auditorToken = "test-auditor-token-2b91"
	adminToken   = "test-admin-token-c04e"
)

type auditServer struct {
	*server
	log     *audit.Log
	ks      *keystore.HSM
	auditor *grpc.ClientConn
	admin   *grpc.ClientConn
}

// newAuditServer is firmad's gRPC server with an auditor and an admin
// operator, the audit log on SQLite and its checkpoint key in SoftHSM2.
func newAuditServer(t *testing.T) *auditServer {
	t.Helper()
	ctx := context.Background()
	tok := softhsmtest.New(t)
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "firma.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ks, err := keystore.Open(ctx, keystore.Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN, Mode: keystore.ModeToken}, db, nil)
	if err != nil {
		t.Fatalf("open keystore: %v", err)
	}
	t.Cleanup(func() { ks.Close() })
	key, err := ks.GenerateMode(ctx, "system:audit", keystore.ECP256, keystore.ModeToken)
	if err != nil {
		t.Fatal(err)
	}
	ksig, err := ks.Signer(ctx, key.ID)
	if err != nil {
		t.Fatal(err)
	}
	const origin = "firma.test/audit"
	ns, err := audit.NewNoteSigner(origin, ksig)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := audit.NoteVerifierKey(origin, ksig.Public())
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(ctx, db, audit.Options{Origin: origin, Signer: ns})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })

	log := slog.New(slog.DiscardHandler)
	operators := config.Auth{Operators: []config.Operator{{Name: "root", TokenSHA256: api.TokenSHA256(adminToken)}}}
	opts, err := api.ServerOptions(operators, prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	opts = append(opts, grpc.ChainUnaryInterceptor(api.AuditKeyCalls(l, log)))
	gs := grpc.NewServer(opts...)
	sg, err := signing.New(signing.Options{Keys: ks, Core: signer.New(ks, signer.Config{}), Auditor: l})
	if err != nil {
		t.Fatal(err)
	}
	if err := api.Register(gs, ks, sg, log); err != nil {
		t.Fatal(err)
	}
	auditors, err := api.NewAuditors([]audit.Credential{{Name: "alice", TokenSHA256: api.TokenSHA256(auditorToken)}})
	if err != nil {
		t.Fatal(err)
	}
	ops, err := api.NewAuth(operators.Operators)
	if err != nil {
		t.Fatal(err)
	}
	firmav1.RegisterAuditServiceServer(gs, api.NewAuditService(l, vkey, auditors, ops, log))
	lis := bufconn.Listen(1 << 20)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	s := &auditServer{server: &server{ks: ks, lis: lis, db: db}, log: l, ks: ks}
	s.auditor = s.dial(t, grpc.WithPerRPCCredentials(api.BearerCredentials{Token: auditorToken, Insecure: true}))
	s.admin = s.dial(t, grpc.WithPerRPCCredentials(api.BearerCredentials{Token: adminToken, Insecure: true}))
	return s
}

func (s *auditServer) seed(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		err := s.log.Append(context.Background(), &audit.Record{
			Event: audit.KeyUsed, Outcome: audit.Success, Actor: audit.Actor{Role: audit.RoleCitizen, ID: "cit-1"},
			Citizen: "cit-1", Portal: []string{"aeat", "dgt"}[i%2], KeyID: "key-1",
			Documents: []audit.Document{{Hash: "sha-256", Digest: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestAuditServiceAuditor(t *testing.T) {
	s := newAuditServer(t)
	s.seed(t, 7)
	ctx := context.Background()
	c := firmav1.NewAuditServiceClient(s.auditor)

	// Paging by portal.
	var got []int64
	req := &firmav1.QueryAuditRequest{Portal: "aeat", PageSize: 2}
	for {
		resp, err := c.QueryAudit(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range resp.GetRecords() {
			got = append(got, r.GetSeq())
			if r.GetPortal() != "aeat" || r.GetEvent() != "key.used" || len(r.GetDocuments()) != 1 {
				t.Errorf("record %v", r)
			}
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			break
		}
	}
	if !slices.Equal(got, []int64{0, 2, 4, 6}) {
		t.Errorf("aeat records %v, want 0 2 4 6", got)
	}

	rep, err := c.KeyUsageReport(ctx, &firmav1.KeyUsageReportRequest{Citizen: "cit-1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.GetUsage()) != 2 || rep.GetUsage()[0].GetSignatures()+rep.GetUsage()[1].GetSignatures() != 7 {
		t.Errorf("usage %v, want 7 signatures over 2 portals", rep.GetUsage())
	}

	cp, err := c.GetCheckpoint(ctx, &firmav1.GetCheckpointRequest{})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := audit.NewNoteVerifiers(cp.GetVerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	chk, err := audit.OpenCheckpoint([]byte(cp.GetNote()), keys)
	if err != nil {
		t.Fatalf("checkpoint from the API: %v", err)
	}
	// Seven records, then the auditor's own reads: they are audited too.
	if chk.Size < 7 {
		t.Fatalf("checkpoint size %d", chk.Size)
	}
	inc, err := c.ProveInclusion(ctx, &firmav1.ProveInclusionRequest{Index: 3, TreeSize: chk.Size})
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.VerifyInclusion(chk, 3, inc.GetLeaf(), hashes(inc.GetProof())); err != nil {
		t.Errorf("inclusion proof from the API: %v", err)
	}
	s.seed(t, 3)
	cp2, err := c.GetCheckpoint(ctx, &firmav1.GetCheckpointRequest{})
	if err != nil {
		t.Fatal(err)
	}
	chk2, err := audit.OpenCheckpoint([]byte(cp2.GetNote()), keys)
	if err != nil {
		t.Fatal(err)
	}
	con, err := c.ProveConsistency(ctx, &firmav1.ProveConsistencyRequest{OldSize: chk.Size, NewSize: chk2.Size})
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.VerifyConsistency(chk, chk2, hashes(con.GetProof())); err != nil {
		t.Errorf("consistency proof from the API: %v", err)
	}

	stream, err := c.ExportAudit(ctx, &firmav1.ExportAuditRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var exp bytes.Buffer
	for {
		ch, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		exp.Write(ch.GetData())
	}
	vr, err := audit.VerifyExport(&exp, keys, chk2.Note)
	if err != nil {
		t.Fatalf("export from the API: %v", err)
	}
	if vr.Records < chk2.Size {
		t.Errorf("export has %d records, want at least %d", vr.Records, chk2.Size)
	}

	// The auditor's reads are in the log, as audit.read and audit.exported.
	page, err := s.log.Query(ctx, audit.Filter{Events: []audit.Event{audit.AuditRead, audit.AuditExported}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) < 6 || page.Records[0].Actor != (audit.Actor{Role: audit.RoleAuditor, ID: "alice"}) {
		t.Errorf("audited reads: %d, first %+v", len(page.Records), page.Records)
	}

	for _, bad := range []*firmav1.QueryAuditRequest{{PageSize: 5000}, {PageToken: "abc"}, {Events: []string{"key.stolen"}}} {
		_, err := c.QueryAudit(ctx, bad)
		wantStatus(t, err, codes.InvalidArgument, firmav1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT)
	}
	_, err = c.ProveInclusion(ctx, &firmav1.ProveInclusionRequest{Index: 1, TreeSize: 1 << 40})
	if got := status.Code(err); got != codes.OutOfRange {
		t.Errorf("proof beyond the log: %v", err)
	}
}

func hashes(b [][]byte) []tlog.Hash {
	out := make([]tlog.Hash, len(b))
	for i := range b {
		copy(out[i][:], b[i])
	}
	return out
}

// An auditor reads the log and does nothing else: its credential is not an
// operator's. Anyone else is refused the log, and the refusal is recorded.
func TestAuditRoles(t *testing.T) {
	s := newAuditServer(t)
	ctx := context.Background()

	// The auditor cannot generate keys, sign or destroy keys.
	_, err := firmav1.NewKeyServiceClient(s.auditor).GenerateKey(ctx, &firmav1.GenerateKeyRequest{Owner: "12345678Z"})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("auditor GenerateKey: %v, want Unauthenticated", err)
	}
	key, err := firmav1.NewKeyServiceClient(s.admin).GenerateKey(ctx, &firmav1.GenerateKeyRequest{Owner: "12345678Z"})
	if err != nil {
		t.Fatalf("admin GenerateKey: %v", err)
	}
	_, err = firmav1.NewSigningServiceClient(s.auditor).SignDigests(ctx, &firmav1.SignDigestsRequest{KeyId: key.GetKey().GetId(), Digests: [][]byte{make([]byte, 32)}})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("auditor Sign: %v, want Unauthenticated", err)
	}
	_, err = firmav1.NewKeyServiceClient(s.auditor).DestroyKey(ctx, &firmav1.DestroyKeyRequest{KeyId: key.GetKey().GetId()})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("auditor DestroyKey: %v, want Unauthenticated", err)
	}
	if k, err := s.ks.Key(ctx, key.GetKey().GetId()); err != nil || !k.DestroyedAt.IsZero() {
		t.Fatalf("key after the auditor's DestroyKey: %v, %v", k, err)
	}

	// The admin is refused the audit log, and so is a caller without
	// credentials; both refusals are recorded.
	_, err = firmav1.NewAuditServiceClient(s.admin).QueryAudit(ctx, &firmav1.QueryAuditRequest{})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("admin QueryAudit: %v, want PermissionDenied", err)
	}
	stream, err := firmav1.NewAuditServiceClient(s.dial(t)).ExportAudit(ctx, &firmav1.ExportAuditRequest{})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("anonymous ExportAudit: %v, want Unauthenticated", err)
	}
	page, err := s.log.Query(ctx, audit.Filter{Events: []audit.Event{audit.AuthFailed}})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 2 || page.Records[0].Actor != (audit.Actor{Role: audit.RoleAdmin, ID: "root"}) ||
		page.Records[1].Actor.Role != audit.RoleAnonymous || page.Records[0].Outcome != audit.Denied {
		t.Errorf("refusal records: %+v", page.Records)
	}

	// No call of the service changes or removes records: its methods are
	// exactly the read-only ones.
	var methods []string
	for _, m := range firmav1.AuditService_ServiceDesc.Methods {
		methods = append(methods, m.MethodName)
	}
	for _, m := range firmav1.AuditService_ServiceDesc.Streams {
		methods = append(methods, m.StreamName)
	}
	slices.Sort(methods)
	want := []string{"ExportAudit", "GetCheckpoint", "KeyUsageReport", "ProveConsistency", "ProveInclusion", "QueryAudit"}
	if !slices.Equal(methods, want) {
		t.Errorf("AuditService methods %v, want only %v", methods, want)
	}
}

// Keys generated, used and destroyed through the API are in the log, each
// signature's record committed before the signature is returned.
func TestAuditKeyCalls(t *testing.T) {
	s := newAuditServer(t)
	ctx := context.Background()
	keys, sign := firmav1.NewKeyServiceClient(s.admin), firmav1.NewSigningServiceClient(s.admin)
	k, err := keys.GenerateKey(ctx, &firmav1.GenerateKeyRequest{Owner: "12345678Z"})
	if err != nil {
		t.Fatal(err)
	}
	id := k.GetKey().GetId()
	d1, d2 := sha256.Sum256([]byte("contrato")), sha256.Sum256([]byte("anexo"))
	if _, err := sign.SignDigests(ctx, &firmav1.SignDigestsRequest{KeyId: id, Digests: [][]byte{d1[:], d2[:]}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sign.SignDigests(ctx, &firmav1.SignDigestsRequest{KeyId: "no-such-key", Digests: [][]byte{d1[:]}}); status.Code(err) != codes.NotFound {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := keys.DestroyKey(ctx, &firmav1.DestroyKeyRequest{KeyId: id}); err != nil {
		t.Fatal(err)
	}
	page, err := s.log.Query(ctx, audit.Filter{Events: []audit.Event{audit.KeyGenerateRequested, audit.KeyGenerated,
		audit.KeyActivated, audit.KeyUsed, audit.KeyDestroyRequested, audit.KeyDestroyed}})
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		ev      audit.Event
		out     audit.Outcome
		key     string
		docs    int
		citizen string
	}
	var got []row
	for _, r := range page.Records {
		got = append(got, row{r.Event, r.Outcome, r.KeyID, len(r.Documents), r.Citizen})
		if r.Actor != (audit.Actor{Role: audit.RoleAdmin, ID: "root"}) {
			t.Errorf("actor %+v", r.Actor)
		}
	}
	want := []row{
		// A key change's intent comes before it, its result after.
		{audit.KeyGenerateRequested, audit.Success, audit.NoKey, 0, "12345678Z"},
		{audit.KeyGenerated, audit.Success, id, 0, "12345678Z"},
		// One decision and one result per call, linked by the activation.
		{audit.KeyActivated, audit.Success, id, 2, ""},
		{audit.KeyUsed, audit.Success, id, 2, ""},
		{audit.KeyActivated, audit.Denied, "no-such-key", 1, ""},
		{audit.KeyDestroyRequested, audit.Success, id, 0, ""},
		{audit.KeyDestroyed, audit.Success, id, 0, ""},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("records\n%+v\nwant\n%+v", got, want)
	}
	if page.Records[3].Documents[0] != audit.Digest(crypto.SHA256, d1[:]) {
		t.Errorf("document %+v", page.Records[3].Documents[0])
	}
	if a := page.Records[2].Details[audit.DetailActivation]; a == "" || page.Records[3].Details[audit.DetailActivation] != a {
		t.Errorf("key.used not linked to its key.activated: %v / %v", page.Records[2].Details, page.Records[3].Details)
	}
	for _, i := range []int{0, 5} {
		if c := page.Records[i].Details[audit.DetailKeyChange]; c == "" || page.Records[i+1].Details[audit.DetailKeyChange] != c {
			t.Errorf("%s not linked to its intent: %v / %v", page.Records[i+1].Event, page.Records[i].Details, page.Records[i+1].Details)
		}
	}

	// With the log gone, a signature is refused rather than unrecorded.
	k2, err := keys.GenerateKey(ctx, &firmav1.GenerateKeyRequest{Owner: "87654321X"})
	if err != nil {
		t.Fatal(err)
	}
	s.log.Close()
	resp, err := sign.SignDigests(ctx, &firmav1.SignDigestsRequest{KeyId: k2.GetKey().GetId(), Digests: [][]byte{d1[:]}})
	if status.Code(err) != codes.Unavailable || resp != nil {
		t.Fatalf("signing with the audit log down: %v, %v; want Unavailable and nothing", resp, err)
	}
}

// A key change is recorded before it takes effect: with the audit store
// refusing writes, GenerateKey and DestroyKey are refused and the keys are
// as they were; a change the HSM refuses after its intent is recorded as a
// failure. Cost: one SoftHSM2 token, a few EC keys.
func TestKeyChangesAuditedFirst(t *testing.T) {
	s := newAuditServer(t)
	ctx := context.Background()
	keys, sign := firmav1.NewKeyServiceClient(s.admin), firmav1.NewSigningServiceClient(s.admin)
	kept, err := keys.GenerateKey(ctx, &firmav1.GenerateKeyRequest{Owner: "11111111H"})
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("acta"))

	// A malformed call is refused as such, before any record.
	size := s.log.Size()
	_, err = keys.GenerateKey(ctx, &firmav1.GenerateKeyRequest{Owner: "1234 5678Z"})
	wantStatus(t, err, codes.InvalidArgument, firmav1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT)
	if s.log.Size() != size {
		t.Errorf("a malformed GenerateKey was recorded")
	}

	// The HSM fails after the intent: no KEK on this token, so a wrapped
	// key cannot be made.
	if _, err := keys.GenerateKey(ctx, &firmav1.GenerateKeyRequest{Owner: "22222222J", Mode: firmav1.KeyMode_KEY_MODE_WRAPPED}); err == nil {
		t.Fatal("a wrapped key without a KEK")
	}
	page, err := s.log.Query(ctx, audit.Filter{Events: []audit.Event{audit.KeyGenerateRequested, audit.KeyGenerated}, Citizen: "22222222J"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 2 || page.Records[0].Event != audit.KeyGenerateRequested || page.Records[0].Details["mode"] != "KEY_MODE_WRAPPED" ||
		page.Records[1].Event != audit.KeyGenerated || page.Records[1].Outcome != audit.Failure || page.Records[1].Reason == "" ||
		page.Records[1].KeyID != audit.NoKey || page.Records[1].Details[audit.DetailKeyChange] != page.Records[0].Details[audit.DetailKeyChange] {
		t.Fatalf("a failed generation's records: %+v", page.Records)
	}

	before, err := s.ks.Keys(ctx, "", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	size = s.log.Size()
	if _, err := s.db.SQL().ExecContext(ctx, `CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_records
		BEGIN SELECT RAISE(ABORT, 'audit store unavailable'); END`); err != nil {
		t.Fatal(err)
	}
	_, err = keys.GenerateKey(ctx, &firmav1.GenerateKeyRequest{Owner: "33333333P"})
	wantStatus(t, err, codes.Unavailable, firmav1.ErrorReason_ERROR_REASON_AUDIT_UNAVAILABLE)
	_, err = keys.DestroyKey(ctx, &firmav1.DestroyKeyRequest{KeyId: kept.GetKey().GetId()})
	wantStatus(t, err, codes.Unavailable, firmav1.ErrorReason_ERROR_REASON_AUDIT_UNAVAILABLE)
	if _, err := s.db.SQL().ExecContext(ctx, `DROP TRIGGER refuse_audit`); err != nil {
		t.Fatal(err)
	}

	after, err := s.ks.Keys(ctx, "", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("%d keys before the refused calls, %d after", len(before), len(after))
	}
	for _, k := range after {
		if k.Owner == "33333333P" {
			t.Errorf("refused generation left key %s", k.ID)
		}
	}
	if s.log.Size() != size {
		t.Errorf("log grew from %d to %d while refusing", size, s.log.Size())
	}
	// The key the refused destroy named still signs (its own records
	// written now that the store takes them).
	if _, err := sign.SignDigests(ctx, &firmav1.SignDigestsRequest{KeyId: kept.GetKey().GetId(), Digests: [][]byte{d[:]}}); err != nil {
		t.Fatalf("the key a refused destroy named: %v", err)
	}
	// Destroying a destroyed key fails in the keystore, after its intent.
	if _, err := keys.DestroyKey(ctx, &firmav1.DestroyKeyRequest{KeyId: kept.GetKey().GetId()}); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.DestroyKey(ctx, &firmav1.DestroyKeyRequest{KeyId: kept.GetKey().GetId()}); err == nil {
		t.Fatal("destroyed twice")
	}
	page, err = s.log.Query(ctx, audit.Filter{Events: []audit.Event{audit.KeyDestroyRequested, audit.KeyDestroyed}, KeyID: kept.GetKey().GetId()})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range page.Records {
		got = append(got, string(r.Event)+"/"+string(r.Outcome))
	}
	want := []string{"key.destroy_requested/success", "key.destroyed/success", "key.destroy_requested/success", "key.destroyed/failure"}
	if !slices.Equal(got, want) {
		t.Fatalf("destroy records %v, want %v", got, want)
	}
}

// Before the audit log is open, key calls the interceptor records are
// refused, not run unrecorded; other calls pass.
func TestAuditKeyCallsWithoutLog(t *testing.T) {
	ic := api.AuditKeyCallsFunc(func() *audit.Log { return nil }, nil)
	for _, tt := range []struct {
		method string
		want   codes.Code
	}{
		// Signing records itself (package signing), so the interceptor
		// lets it through.
		{"/firma.v1.SigningService/SignDigests", codes.OK},
		{"/firma.v1.KeyService/GenerateKey", codes.Unavailable},
		{"/firma.v1.KeyService/GetPublicKey", codes.OK},
	} {
		ran := false
		_, err := ic(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: tt.method}, func(context.Context, any) (any, error) {
			ran = true
			return nil, nil
		})
		if status.Code(err) != tt.want || ran != (tt.want == codes.OK) {
			t.Errorf("%s: %v, handler ran %v", tt.method, err, ran)
		}
	}
}
