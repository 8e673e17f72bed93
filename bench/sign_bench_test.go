package bench

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/ThalesIgnite/crypto11"
	"github.com/miekg/pkcs11"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

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

// One token and one store serve every benchmark of the run, so that every
// figure is measured on the same token as its raw PKCS#11 baseline.
var (
	fixtureOnce sync.Once
	fixture     *benchFixture
	fixtureErr  error
)

type benchFixture struct {
	tok     *softhsmtest.Token
	dbPath  string
	token   map[keystore.Type]*keystore.Key // token-mode key per type
	wrapped map[keystore.Type]*keystore.Key // wrapped-mode key per type
}

func TestMain(m *testing.M) {
	code := m.Run()
	softhsmtest.Cleanup()
	os.Exit(code)
}

// sessions is the session count of the default configuration, used by
// every variant so that they compete on equal terms.
func sessions() int { return keystore.DefaultSessions() }

func setup(b *testing.B) *benchFixture {
	b.Helper()
	fixtureOnce.Do(func() { fixture, fixtureErr = makeFixture() })
	if fixtureErr != nil {
		b.Fatal(fixtureErr)
	}
	return fixture
}

func makeFixture() (*benchFixture, error) {
	tok, err := softhsmtest.Make("bench-" + randHex(4))
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "firma-bench-")
	if err != nil {
		return nil, err
	}
	f := &benchFixture{tok: tok, dbPath: filepath.Join(dir, "firma.db"),
		token: map[keystore.Type]*keystore.Key{}, wrapped: map[keystore.Type]*keystore.Key{}}
	ctx := context.Background()
	ks, st, err := f.open(keystore.ModeToken, 0)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	defer ks.Close()
	if err := ks.InitKEK(ctx); err != nil {
		return nil, err
	}
	for _, t := range []keystore.Type{keystore.ECP256, keystore.RSA2048} {
		if f.token[t], err = ks.GenerateMode(ctx, "bench", t, keystore.ModeToken); err != nil {
			return nil, err
		}
		if f.wrapped[t], err = ks.GenerateMode(ctx, "bench", t, keystore.ModeWrapped); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// open opens the keystore in its default configuration, bar the mode and
// the live-key cache size (0: default).
func (f *benchFixture) open(mode keystore.Mode, cache int) (*keystore.HSM, *sqlite.DB, error) {
	st, err := sqlite.Open(context.Background(), f.dbPath)
	if err != nil {
		return nil, nil, err
	}
	ks, err := keystore.Open(context.Background(), keystore.Config{Module: f.tok.Module, TokenLabel: f.tok.Label,
		PIN: f.tok.PIN, Mode: mode, CacheSize: cache}, st, nil)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return ks, st, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func schemeOf(t keystore.Type) keystore.Scheme {
	if t.IsRSA() {
		return keystore.PKCS1v15
	}
	return keystore.ECDSA
}

// digestInput is what C_Sign gets for one SHA-256 digest: the digest for
// ECDSA, DigestInfo || digest for RSA PKCS#1 v1.5.
func digestInput(t keystore.Type, d []byte) []byte {
	if !t.IsRSA() {
		return d
	}
	prefix := []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}
	return append(prefix, d...)
}

// runParallel runs body from exactly n goroutines until b.N operations
// (each worth perOp signatures) are done, and reports signatures/s.
func runParallel(b *testing.B, n, perOp int, body func(worker int) error) {
	b.Helper()
	var (
		next sync.WaitGroup
		mu   sync.Mutex
		left = b.N
		fail error
	)
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if left == 0 || fail != nil {
			return false
		}
		left--
		return true
	}
	b.ResetTimer()
	for w := 0; w < n; w++ {
		next.Add(1)
		go func() {
			defer next.Done()
			for take() {
				if err := body(w); err != nil {
					mu.Lock()
					fail = err
					mu.Unlock()
					return
				}
			}
		}()
	}
	next.Wait()
	b.StopTimer()
	if fail != nil {
		b.Fatal(fail)
	}
	b.ReportMetric(float64(b.N*perOp)/b.Elapsed().Seconds(), "sigs/s")
}

// rawSessions opens sessions() logged-in sessions on the bench token with
// miekg/pkcs11, closed when b ends.
func rawSessions(b *testing.B, f *benchFixture) (*pkcs11.Ctx, []pkcs11.SessionHandle) {
	p := pkcs11.New(f.tok.Module)
	if err := p.Initialize(); err != nil {
		b.Fatal(err)
	}
	slots, err := p.GetSlotList(true)
	if err != nil {
		b.Fatal(err)
	}
	var slot uint
	for _, s := range slots {
		if ti, err := p.GetTokenInfo(s); err == nil && ti.Label == f.tok.Label {
			slot = s
		}
	}
	hs := make([]pkcs11.SessionHandle, sessions())
	for i := range hs {
		if hs[i], err = p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() { p.CloseAllSessions(slot); p.Finalize(); p.Destroy() })
	if err := p.Login(hs[0], pkcs11.CKU_USER, f.tok.PIN); err != nil {
		b.Fatal(err)
	}
	return p, hs
}

// benchRawUnwrap is the baseline of the cold wrapped path: per batch,
// C_UnwrapKey of the key's blob under the KEK (AES key wrap with padding,
// into a sensitive session object, as the keystore does), C_SignInit and
// C_Sign per digest, C_DestroyObject; miekg/pkcs11 straight, one session
// per goroutine, nothing else.
func benchRawUnwrap(b *testing.B, t keystore.Type, batch int) {
	f := setup(b)
	st, err := sqlite.Open(context.Background(), f.dbPath)
	if err != nil {
		b.Fatal(err)
	}
	rec, err := st.Key(context.Background(), f.wrapped[t].ID)
	st.Close()
	if err != nil || len(rec.Wrapped) == 0 {
		b.Fatalf("wrapped key record: %v", err)
	}
	p, hs := rawSessions(b, f)
	p.FindObjectsInit(hs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, keystore.DefaultKEKLabel)})
	keks, _, err := p.FindObjects(hs[0], 1)
	p.FindObjectsFinal(hs[0])
	if err != nil || len(keks) != 1 {
		b.Fatalf("find KEK: %v", err)
	}
	kt := uint(pkcs11.CKK_EC)
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}
	if t.IsRSA() {
		kt = pkcs11.CKK_RSA
		mech = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil)}
	}
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, kt),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false), pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true), pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
	}
	wrap := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil)}
	in := digestInput(t, benchDigest)
	runParallel(b, len(hs), batch, func(w int) error {
		h, err := p.UnwrapKey(hs[w], wrap, keks[0], rec.Wrapped, tmpl)
		if err != nil {
			return fmt.Errorf("unwrap: %w", err)
		}
		defer p.DestroyObject(hs[w], h)
		for range batch {
			if err := p.SignInit(hs[w], mech, h); err != nil {
				return err
			}
			if _, err := p.Sign(hs[w], in); err != nil {
				return err
			}
		}
		return nil
	})
}

var benchDigest = func() []byte { d := sha256.Sum256([]byte("benchmark")); return d[:] }()

func batchOf(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = benchDigest
	}
	return out
}

func BenchmarkSign(b *testing.B) {
	for _, t := range []keystore.Type{keystore.ECP256, keystore.RSA2048} {
		b.Run(string(t), func(b *testing.B) {
			b.Run("raw-pkcs11", func(b *testing.B) { benchRaw(b, t) })
			b.Run("crypto11", func(b *testing.B) { benchCrypto11(b, t) })
			b.Run("core-batch1", func(b *testing.B) { benchCore(b, t, keystore.ModeToken, 0, 1, false) })
			b.Run("core-batch64", func(b *testing.B) { benchCore(b, t, keystore.ModeToken, 0, 64, false) })
			if !t.IsRSA() {
				b.Run("core-batch1-verify", func(b *testing.B) { benchCore(b, t, keystore.ModeToken, 0, 1, true) })
			}
			b.Run("grpc-batch1", func(b *testing.B) { benchGRPC(b, t, 1) })
			b.Run("grpc-batch64", func(b *testing.B) { benchGRPC(b, t, 64) })
			b.Run("grpc-stream-batch1", func(b *testing.B) { benchGRPCStream(b, t) })
			b.Run("wrapped-warm-batch1", func(b *testing.B) { benchCore(b, t, keystore.ModeWrapped, 0, 1, false) })
			b.Run("raw-unwrap-batch1", func(b *testing.B) { benchRawUnwrap(b, t, 1) })
			b.Run("raw-unwrap-batch64", func(b *testing.B) { benchRawUnwrap(b, t, 64) })
			b.Run("wrapped-cold-batch1", func(b *testing.B) { benchCore(b, t, keystore.ModeWrapped, -1, 1, false) })
			b.Run("wrapped-cold-batch64", func(b *testing.B) { benchCore(b, t, keystore.ModeWrapped, -1, 64, false) })
		})
	}
}

// benchRaw is the baseline: C_SignInit + C_Sign with miekg/pkcs11 on a
// cached handle, one logged-in session per goroutine, nothing else.
func benchRaw(b *testing.B, t keystore.Type) {
	f := setup(b)
	p, hs := rawSessions(b, f)
	id, _ := hex.DecodeString(f.token[t].ID)
	p.FindObjectsInit(hs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY), pkcs11.NewAttribute(pkcs11.CKA_ID, id)})
	objs, _, err := p.FindObjects(hs[0], 1)
	p.FindObjectsFinal(hs[0])
	if err != nil || len(objs) != 1 {
		b.Fatalf("find key: %v", err)
	}
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}
	if t.IsRSA() {
		mech = []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS, nil)}
	}
	in := digestInput(t, benchDigest)
	runParallel(b, len(hs), 1, func(w int) error {
		if err := p.SignInit(hs[w], mech, objs[0]); err != nil {
			return err
		}
		_, err := p.Sign(hs[w], in)
		return err
	})
}

// benchCrypto11 signs through crypto11's crypto.Signer, MaxSessions set to
// the same session count.
func benchCrypto11(b *testing.B, t keystore.Type) {
	f := setup(b)
	c, err := crypto11.Configure(&crypto11.Config{Path: f.tok.Module, TokenLabel: f.tok.Label, Pin: f.tok.PIN,
		MaxSessions: sessions()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	id, _ := hex.DecodeString(f.token[t].ID)
	s, err := c.FindKeyPair(id, nil)
	if err != nil || s == nil {
		b.Fatalf("find key pair: %v", err)
	}
	runParallel(b, sessions(), 1, func(int) error {
		_, err := s.Sign(rand.Reader, benchDigest, crypto.SHA256)
		return err
	})
}

// benchCore signs through the core in process from twice as many
// goroutines as there are sessions, as a service's concurrent requests do:
// the pool still lets only sessions() of them reach the token at once, the
// same number the raw baseline uses, and the extra callers keep a session
// from idling while its last caller is back in Go.
func benchCore(b *testing.B, t keystore.Type, mode keystore.Mode, cache, batch int, verify bool) {
	f := setup(b)
	ks, st, err := f.open(mode, cache)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	defer ks.Close()
	core := signer.New(ks, signer.Config{VerifyECDSA: verify})
	key := f.token[t]
	if mode == keystore.ModeWrapped {
		key = f.wrapped[t]
	}
	req := signer.Request{KeyID: key.ID, Scheme: schemeOf(t), Hash: crypto.SHA256, Digests: batchOf(batch)}
	ctx := context.Background()
	if _, err := core.Sign(ctx, req); err != nil { // warm the caches
		b.Fatal(err)
	}
	runParallel(b, 2*sessions(), batch, func(int) error {
		_, err := core.Sign(ctx, req)
		return err
	})
}

// benchGRPC signs through firmad's gRPC service on a loopback TCP socket,
// with the operator authentication and metrics interceptors in place and
// the audit records discarded: the API layer's cost alone (BenchmarkAudit
// measures the records).
func benchGRPC(b *testing.B, t keystore.Type, batch int) { benchGRPCWith(b, t, batch, false) }

// benchGRPCStream is grpc-batch1 through SignDigestStream: one digest a
// message, each caller on its own stream, audit off as in grpc-batch1.
func benchGRPCStream(b *testing.B, t keystore.Type) {
	benchGRPCWith(b, t, 1, false, streamCalls{})
}

// streamCalls, passed to benchGRPCWith, sends its calls on
// SignDigestStream instead of SignDigests.
type streamCalls struct{ grpc.EmptyServerOption }

// discardAuditor is the audit log of the "audit off" baselines only: it
// keeps nothing, so a benchmark shows what the real log costs against it.
// firmad cannot run without a real one (signing.New requires an auditor
// and firmad passes its audit log).
type discardAuditor struct{}

func (discardAuditor) Append(context.Context, *audit.Record) error { return nil }

// benchGRPCWith is benchGRPC with the audit log on (audited: through the
// journal, as firmad by default) or discarded, and more server options
// (interceptors chained after authentication).
func benchGRPCWith(b *testing.B, t keystore.Type, batch int, audited bool, extra ...grpc.ServerOption) {
	f := setup(b)
	ks, st, err := f.open(keystore.ModeToken, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	defer ks.Close()
	core := signer.New(ks, signer.Config{})
	token := "bench-operator-token"
	opts, err := api.ServerOptions(config.Auth{Operators: []config.Operator{{Name: "bench", TokenSHA256: api.TokenSHA256(token)}}}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer(append(opts, extra...)...)
	// Audited, every call is a key.activated and a key.used record,
	// committed through the journal as firmad does by default.
	var auditor signing.Auditor = discardAuditor{}
	if audited {
		al, err := audit.Open(context.Background(), auditDB(b, false), audit.Options{Node: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		defer al.Close()
		auditor = al
	}
	sg, err := signing.New(signing.Options{Keys: ks, Core: core, Auditor: auditor})
	if err != nil {
		b.Fatal(err)
	}
	if err := api.Register(srv, ks, sg, nil); err != nil {
		b.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(lis)
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithPerRPCCredentials(api.BearerCredentials{Token: token, Insecure: true}))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	client := firmav1.NewSigningServiceClient(conn)
	scheme := firmav1.SignatureScheme_SIGNATURE_SCHEME_ECDSA
	if t.IsRSA() {
		scheme = firmav1.SignatureScheme_SIGNATURE_SCHEME_RSA_PKCS1V15
	}
	req := &firmav1.SignDigestsRequest{KeyId: f.token[t].ID, Scheme: scheme,
		Hash: firmav1.HashAlgorithm_HASH_ALGORITHM_SHA256, Digests: batchOf(batch)}
	ctx := context.Background()
	if _, err := client.SignDigests(ctx, req); err != nil {
		b.Fatal(err)
	}
	// Twice as many callers as sessions, so that one caller's network round
	// trip does not leave a session idle.
	callers := 2 * sessions()
	call := func(w int) (*firmav1.SignDigestsResponse, error) { return client.SignDigests(ctx, req) }
	if slices.ContainsFunc(extra, func(o grpc.ServerOption) bool { _, ok := o.(streamCalls); return ok }) {
		streams := make([]firmav1.SigningService_SignDigestStreamClient, callers)
		for i := range streams {
			if streams[i], err = client.SignDigestStream(ctx); err != nil {
				b.Fatal(err)
			}
			defer streams[i].CloseSend()
		}
		call = func(w int) (*firmav1.SignDigestsResponse, error) {
			if err := streams[w].Send(req); err != nil {
				return nil, err
			}
			return streams[w].Recv()
		}
	}
	runParallel(b, callers, batch, func(w int) error {
		resp, err := call(w)
		if err == nil && len(resp.GetSignatures()) != batch {
			return fmt.Errorf("%d signatures for %d digests", len(resp.GetSignatures()), batch)
		}
		return err
	})
}
