package api_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/firma-cloud/firma/api"
	"github.com/firma-cloud/firma/api/firmav1"
	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/config"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/registry"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signer/xades"
	"github.com/firma-cloud/firma/signing"
	"github.com/firma-cloud/firma/sms"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store/sqlite"
	"github.com/firma-cloud/firma/transaction"
)

// txServer is the portal and transaction gRPC APIs on real parts, served
// on a loopback TCP port behind firmad's interceptors.
type txServer struct {
	db       *sqlite.DB
	reg      *registry.Service
	svc      *transaction.Service
	portals  firmav1.PortalServiceClient
	conn     *grpc.ClientConn
	root     []byte
	audit    *audit.Log
	addr     string
	registry *portal.Registry
}

func newTxServer(t *testing.T) *txServer {
	t.Helper()
	return newTxServerTLS(t, nil)
}

// newTxServerTLS is newTxServer serving TLS with tc; the client
// connection is then the caller's to make (s.addr).
func newTxServerTLS(t *testing.T, tc *tls.Config, tune ...func(*transaction.Options)) *txServer {
	t.Helper()
	ctx := context.Background()
	tok := softhsmtest.New(t)
	// tune runs before the module is initialised here, so that it may
	// make tokens of its own (testpki).
	var txOpt transaction.Options
	for _, f := range tune {
		f(&txOpt)
	}
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "firma.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ks, err := keystore.Open(ctx, keystore.Config{Module: tok.Module, TokenLabel: tok.Label, PIN: tok.PIN}, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	outbox, err := sms.NewOutbox(db, sms.OutboxOptions{})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := ca.New(ca.Config{BaseURL: "http://127.0.0.1:1"}, ks, db, nil, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Init(ctx); err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(db, registry.Options{SMS: outbox, Argon2: registry.Argon2{Time: 1, Memory: 8 * 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	auth.SetCitizens(reg)
	portals := portal.New(db, portal.Options{})
	auditLog, err := audit.Open(ctx, db, audit.Options{Node: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { auditLog.Close() })
	sg, err := signing.New(signing.Options{Keys: ks, Core: signer.New(ks, signer.Config{}), CA: auth, Citizens: reg, Auditor: auditLog})
	if err != nil {
		t.Fatal(err)
	}
	txOpt.Store, txOpt.Portals, txOpt.Citizens, txOpt.Certificates = db, portals, reg, auth
	txOpt.Signing, txOpt.SMS, txOpt.OTPKey, txOpt.BaseURL = sg, outbox, []byte("an otp key of at least thirty-two bytes"), "https://firma.example.es"
	svc, err := transaction.New(txOpt)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	opts, err := api.ServerOptions(config.Auth{Operators: []config.Operator{{Name: "op", TokenSHA256: api.TokenSHA256(operatorToken)}}},
		prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	if tc != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	gs := grpc.NewServer(opts...)
	api.RegisterPortals(gs, api.NewPortalService(portals, log).WithAuditor(auditLog))
	api.RegisterTransactions(gs, api.NewTransactionService(svc, portals, log))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	s := &txServer{db: db, reg: reg, svc: svc, root: auth.Root().Raw, audit: auditLog, addr: lis.Addr().String(), registry: portals}
	if tc != nil {
		return s
	}
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	s.conn, s.portals = conn, firmav1.NewPortalServiceClient(conn)
	return s
}

func opCtx() context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+operatorToken)
}

func portalCtx(key string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), api.PortalAPIKeyMetadata, key)
}

// wantReason checks a status code and the stable code in ErrorInfo.
func wantReason(t *testing.T, err error, code codes.Code, reason string) *status.Status {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("status %v (%v), want %v", st.Code(), err, code)
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Reason == reason && info.Domain == api.ErrorDomain {
			return st
		}
	}
	t.Fatalf("no ErrorInfo reason %q in %v", reason, st.Details())
	return nil
}

func TestTransactionGRPC(t *testing.T) {
	s := newTxServer(t)
	ctx := context.Background()
	spec := &firmav1.PortalSpec{Name: "Sede A", RedirectUrls: []string{"https://a.example.es/ok", "https://a.example.es/ko"}, ApiKey: true}

	// Portals are registered by operators only.
	_, err := s.portals.CreatePortal(ctx, &firmav1.CreatePortalRequest{Spec: spec})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("anonymous CreatePortal: %v", err)
	}
	_, err = s.portals.CreatePortal(opCtx(), &firmav1.CreatePortalRequest{Spec: &firmav1.PortalSpec{Name: "x", ApiKey: true}})
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "redirect_urls") {
		t.Fatalf("portal without redirect URLs: %v", err)
	}
	a, err := s.portals.CreatePortal(opCtx(), &firmav1.CreatePortalRequest{Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	spec.Name = "Sede B"
	b, err := s.portals.CreatePortal(opCtx(), &firmav1.CreatePortalRequest{Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	if a.ApiKey == "" || !a.Portal.HasApiKey {
		t.Fatalf("portal A: %+v", a)
	}
	got, err := s.portals.GetPortal(opCtx(), &firmav1.GetPortalRequest{Id: a.Portal.Id})
	if err != nil || got.Name != "Sede A" {
		t.Fatalf("GetPortal: %v", err)
	}

	conf, err := s.reg.RegisterInPerson(ctx, registry.Staff{Name: "r", Role: policy.Registrar}, registry.Person{ID: "12345678Z",
		GivenName: "Ana", Surnames: "López", Mobile: "+34612345678", Email: "ana@example.es"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.reg.SetPassword(ctx, "12345678Z", conf.ActivationCode, "Secreta-Segura-9"); err != nil {
		t.Fatal(err)
	}
	tx := firmav1.NewTransactionServiceClient(s.conn)
	invoice, err := os.ReadFile("../signer/facturae/testdata/factura-3.2.2.xml")
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("expediente 7"))
	req := &firmav1.CreateBatchRequest{SubjectId: "12345678Z", OkUrl: "https://a.example.es/ok", ErrorUrl: "https://a.example.es/ko",
		Documents: []*firmav1.TransactionDocument{
			{Name: "exp7", Digest: digest[:], Format: firmav1.SignatureFormat_SIGNATURE_FORMAT_RAW},
			{Name: "anexo.txt", Content: []byte("anexo"), Format: firmav1.SignatureFormat_SIGNATURE_FORMAT_CADES, Attached: true, Policy: "FirmaAGE"},
			{Name: "solicitud.xml", MediaType: "application/xml", Content: []byte(`<Solicitud xmlns="urn:example">7</Solicitud>`),
				Format: firmav1.SignatureFormat_SIGNATURE_FORMAT_XADES},
			{Name: "factura.xml", MediaType: "application/xml", Content: invoice, Format: firmav1.SignatureFormat_SIGNATURE_FORMAT_FACTURAE},
		}}

	_, err = tx.CreateBatch(ctx, req)
	wantReason(t, err, codes.Unauthenticated, "unauthenticated")
	_, err = tx.CreateBatch(opCtx(), req) // an operator is not a portal
	wantReason(t, err, codes.Unauthenticated, "unauthenticated")
	badURL := proto.Clone(req).(*firmav1.CreateBatchRequest)
	badURL.OkUrl = "https://a.example.es/ok/../evil"
	_, err = tx.CreateBatch(portalCtx(a.ApiKey), badURL)
	wantReason(t, err, codes.InvalidArgument, string(transaction.CodeBadRedirect))
	otherApp := proto.Clone(req).(*firmav1.CreateBatchRequest)
	otherApp.AppId = b.Portal.Id
	_, err = tx.CreateBatch(portalCtx(a.ApiKey), otherApp)
	wantReason(t, err, codes.PermissionDenied, string(transaction.CodeForbidden))

	created, err := tx.CreateBatch(portalCtx(a.ApiKey), req)
	if err != nil {
		t.Fatal(err)
	}
	ref := &firmav1.TransactionRef{AppId: a.Portal.Id, SubjectId: "12345678Z", TransactionId: created.TransactionId}
	_, err = tx.RecoverBatchState(portalCtx(b.ApiKey), &firmav1.TransactionRef{TransactionId: created.TransactionId})
	wantReason(t, err, codes.NotFound, string(transaction.CodeNotFound))
	_, err = tx.RecoverBatchState(portalCtx(a.ApiKey), &firmav1.TransactionRef{SubjectId: "87654321X", TransactionId: created.TransactionId})
	wantReason(t, err, codes.NotFound, string(transaction.CodeNotFound))
	st, err := tx.RecoverBatchState(portalCtx(a.ApiKey), ref)
	if err != nil || st.State != "created" || len(st.Documents) != 4 {
		t.Fatalf("RecoverBatchState: %v %+v", err, st)
	}

	// The citizen approves through the service, as the approval page does.
	sess, err := s.svc.Authenticate(ctx, created.TransactionId, "12345678Z", "Secreta-Segura-9")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.svc.SendOTP(ctx, created.TransactionId, sess.Token); err != nil {
		t.Fatal(err)
	}
	msgs, err := s.db.SMSes(ctx, "+34612345678", 1)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("outbox: %v", err)
	}
	code := regexp.MustCompile(`\d{6}`).FindString(msgs[0].Text)
	if _, err := s.svc.Approve(ctx, created.TransactionId, sess.Token, code); err != nil {
		t.Fatal(err)
	}
	// The signing workers sign off the approving call.
	if err := s.svc.Wait(ctx, created.TransactionId); err != nil {
		t.Fatal(err)
	}

	res, err := tx.RecoverBatchResult(portalCtx(a.ApiKey), ref)
	if err != nil {
		t.Fatal(err)
	}
	if res.Transaction.State != "done" || res.Transaction.Summary != "all_signed" || len(res.Documents) != 4 || len(res.CertificateChain) < 2 {
		t.Fatalf("RecoverBatchResult: %+v", res.Transaction)
	}
	// The raw signature verifies with openssl against the certificate's key.
	dir := t.TempDir()
	leaf := filepath.Join(dir, "leaf.der")
	os.WriteFile(leaf, res.CertificateChain[0], 0o600)
	pub := filepath.Join(dir, "pub.pem")
	opensslIn(t, dir, "x509", "-inform", "DER", "-in", leaf, "-pubkey", "-noout", "-out", pub)
	os.WriteFile(filepath.Join(dir, "digest"), digest[:], 0o600)
	os.WriteFile(filepath.Join(dir, "sig"), res.Documents[0].Signature, 0o600)
	opensslIn(t, dir, "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-in", "digest", "-sigfile", "sig")

	one, err := tx.RecoverBatchSign(portalCtx(a.ApiKey), &firmav1.RecoverBatchSignRequest{Ref: ref, DocumentIndex: 1})
	if err != nil || one.Document.Status != "signed" || one.Document.Format != firmav1.SignatureFormat_SIGNATURE_FORMAT_CADES || len(one.Signature) == 0 {
		t.Fatalf("RecoverBatchSign: %v %+v", err, one)
	}
	// Attached (the content inside) under the AGE policy, as asked.
	os.WriteFile(filepath.Join(dir, "cades"), one.Signature, 0o600)
	root := filepath.Join(dir, "root.pem")
	os.WriteFile(root, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: res.CertificateChain[len(res.CertificateChain)-1]}), 0o600)
	opensslIn(t, dir, "cms", "-verify", "-binary", "-inform", "DER", "-in", "cades", "-CAfile", root, "-purpose", "any", "-out", "content")
	if c, _ := os.ReadFile(filepath.Join(dir, "content")); string(c) != "anexo" {
		t.Errorf("attached CAdES holds %q", c)
	}
	if age, _ := asn1.Marshal(asn1.ObjectIdentifier{2, 16, 724, 1, 3, 1, 1, 2, 1, 9}); !bytes.Contains(one.Signature, age) {
		t.Error("the CAdES lacks the AGE policy asked for")
	}
	counter := proto.Clone(req).(*firmav1.CreateBatchRequest)
	counter.Documents = []*firmav1.TransactionDocument{{Name: "x", Content: []byte("x"), Format: firmav1.SignatureFormat_SIGNATURE_FORMAT_CADES, Operation: "countersign"}}
	_, err = tx.CreateBatch(portalCtx(a.ApiKey), counter)
	wantReason(t, err, codes.InvalidArgument, string(transaction.CodeInvalidRequest))
	// The XML document comes back with its XAdES signature enveloped.
	x, err := tx.RecoverBatchSign(portalCtx(a.ApiKey), &firmav1.RecoverBatchSignRequest{Ref: ref, DocumentIndex: 2})
	if err != nil || x.Document.Format != firmav1.SignatureFormat_SIGNATURE_FORMAT_XADES {
		t.Fatalf("RecoverBatchSign of the XML: %v %+v", err, x)
	}
	if vs, err := xades.Verify(x.Signature, nil, xades.Limits{}); err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Packaging != xades.Enveloped {
		t.Fatalf("XAdES from gRPC: %v %+v", err, vs)
	}
	// The invoice comes back signed under the FacturaE policy.
	fe, err := tx.RecoverBatchSign(portalCtx(a.ApiKey), &firmav1.RecoverBatchSignRequest{Ref: ref, DocumentIndex: 3})
	if err != nil || fe.Document.Format != firmav1.SignatureFormat_SIGNATURE_FORMAT_FACTURAE {
		t.Fatalf("RecoverBatchSign of the invoice: %v %+v", err, fe)
	}
	if vs, err := xades.Verify(fe.Signature, nil, xades.Limits{}); err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Policy == nil ||
		vs[0].Policy.Identifier != xades.PolicyFacturae31.Identifier {
		t.Fatalf("FacturaE from gRPC: %v %+v", err, vs)
	}
	_, err = tx.CancelTransaction(portalCtx(a.ApiKey), ref)
	wantReason(t, err, codes.FailedPrecondition, string(transaction.CodeAlreadyUsed))

	// FIRe's three steps: an empty batch, its documents, then signBatch.
	draft, err := tx.CreateBatch(portalCtx(a.ApiKey), &firmav1.CreateBatchRequest{SubjectId: "12345678Z", OkUrl: "https://a.example.es/ok",
		ErrorUrl: "https://a.example.es/ko"})
	if err != nil || draft.State != "draft" || draft.RedirectUrl != "" {
		t.Fatalf("CreateBatch without documents: %v %+v", err, draft)
	}
	dref := &firmav1.TransactionRef{TransactionId: draft.TransactionId}
	for i, d := range []string{"uno", "dos"} {
		r, err := tx.AddDocumentToBatch(portalCtx(a.ApiKey), &firmav1.AddDocumentToBatchRequest{Ref: dref,
			Document: &firmav1.TransactionDocument{Name: d, Content: []byte(d)}})
		if err != nil || r.DocumentIndex != int32(i) {
			t.Fatalf("AddDocumentToBatch %s: %v", d, err)
		}
	}
	_, err = tx.AddDocumentToBatch(portalCtx(a.ApiKey), &firmav1.AddDocumentToBatchRequest{Ref: dref,
		Document: &firmav1.TransactionDocument{Name: "uno otra vez", Content: []byte("uno")}})
	wantReason(t, err, codes.InvalidArgument, string(transaction.CodeDuplicateDocument))
	sb, err := tx.SignBatch(portalCtx(a.ApiKey), dref)
	if err != nil || sb.State != "created" || !strings.HasSuffix(sb.RedirectUrl, "/sign/"+draft.TransactionId) {
		t.Fatalf("SignBatch: %v %+v", err, sb)
	}
	if _, err := tx.CancelTransaction(portalCtx(a.ApiKey), dref); err != nil {
		t.Fatal(err)
	}

	list, err := tx.ListTransactions(portalCtx(a.ApiKey), &firmav1.ListTransactionsRequest{State: "done"})
	if err != nil || len(list.Transactions) != 1 {
		t.Fatalf("ListTransactions: %v %d", err, len(list.Transactions))
	}
	list, err = tx.ListTransactions(portalCtx(b.ApiKey), &firmav1.ListTransactionsRequest{})
	if err != nil || len(list.Transactions) != 0 {
		t.Fatalf("portal B lists %d transactions (%v)", len(list.Transactions), err)
	}

	// A rotated key stops at once; a disabled portal is refused.
	if _, err := s.portals.RotatePortalAPIKey(opCtx(), &firmav1.GetPortalRequest{Id: b.Portal.Id}); err != nil {
		t.Fatal(err)
	}
	_, err = tx.ListTransactions(portalCtx(b.ApiKey), &firmav1.ListTransactionsRequest{})
	wantReason(t, err, codes.Unauthenticated, "unauthenticated")
	if _, err := s.portals.SetPortalStatus(opCtx(), &firmav1.SetPortalStatusRequest{Id: a.Portal.Id, Status: "disabled"}); err != nil {
		t.Fatal(err)
	}
	_, err = tx.RecoverBatchState(portalCtx(a.ApiKey), ref)
	wantReason(t, err, codes.PermissionDenied, string(transaction.CodeForbidden))

	// Every portal change is in the audit log, by the operator who made it.
	page, err := s.audit.Query(ctx, audit.Filter{Events: []audit.Event{audit.PortalCreated, audit.PortalChanged, audit.PortalDisabled}})
	if err != nil {
		t.Fatal(err)
	}
	var events []string
	for _, r := range page.Records {
		if r.Actor.Role != audit.RoleAdmin || r.Actor.ID != "op" {
			t.Errorf("portal record by %+v", r.Actor)
		}
		events = append(events, string(r.Event))
	}
	if strings.Join(events, ",") != "portal.created,portal.created,portal.changed,portal.disabled" {
		t.Errorf("portal audit records %v", events)
	}
}

// TestTransactionGRPCMutualTLS authenticates a portal by its registered
// client certificate over a real TLS connection, with no API key.
func TestTransactionGRPCMutualTLS(t *testing.T) {
	pki := newPortalPKI(t)
	s := newTxServerTLS(t, &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientCAs: pki.pool,
		ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12})
	ctx := context.Background()
	c, err := s.registry.Create(ctx, portal.Spec{Name: "Sede mTLS", RedirectURLs: []string{"https://a.example.es/ok"}, CertSHA256: certSum(pki.known)})
	if err != nil {
		t.Fatal(err)
	}
	dial := func(cert *tls.Certificate) firmav1.TransactionServiceClient {
		tc := &tls.Config{RootCAs: pki.pool, ServerName: "127.0.0.1"}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(credentials.NewTLS(tc)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return firmav1.NewTransactionServiceClient(conn)
	}
	list, err := dial(&pki.known).ListTransactions(ctx, &firmav1.ListTransactionsRequest{})
	if err != nil || len(list.Transactions) != 0 {
		t.Fatalf("registered certificate: %v", err)
	}
	_, err = dial(&pki.known).RecoverBatchState(ctx, &firmav1.TransactionRef{AppId: c.Portal.ID, TransactionId: strings.Repeat("0", 32)})
	wantReason(t, err, codes.NotFound, string(transaction.CodeNotFound))
	_, err = dial(&pki.unknown).ListTransactions(ctx, &firmav1.ListTransactionsRequest{})
	wantReason(t, err, codes.Unauthenticated, "unauthenticated")
	_, err = dial(nil).ListTransactions(ctx, &firmav1.ListTransactionsRequest{})
	wantReason(t, err, codes.Unauthenticated, "unauthenticated")
}

// portalPKI is a CA with a server certificate for 127.0.0.1 and two
// client certificates, one of them registered for a portal.
type portalPKI struct {
	pool           *x509.CertPool
	server         tls.Certificate
	known, unknown tls.Certificate
}

func newPortalPKI(t *testing.T) *portalPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "portal test CA"}, NotBefore: now.Add(-time.Hour),
		NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	issue := func(n int64, usage x509.ExtKeyUsage) tls.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(n), Subject: pkix.Name{CommonName: fmt.Sprint("cert ", n)}, NotBefore: now.Add(-time.Hour),
			NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	p := &portalPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(caCert)
	p.server, p.known, p.unknown = issue(2, x509.ExtKeyUsageServerAuth), issue(3, x509.ExtKeyUsageClientAuth), issue(4, x509.ExtKeyUsageClientAuth)
	return p
}

func certSum(c tls.Certificate) string {
	s := sha256.Sum256(c.Certificate[0])
	return hex.EncodeToString(s[:])
}
