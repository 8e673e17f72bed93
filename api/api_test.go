package api_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
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

func TestMain(m *testing.M) {
	code := m.Run()
	softhsmtest.Cleanup()
	os.Exit(code)
}

const operatorToken = "test-operator-token-7f3a"

// server is a firmad gRPC server on a fresh SoftHSM2 token, reached over
// an in-memory connection.
type server struct {
	ks    *keystore.HSM
	core  *signer.Core
	audit *audit.Log
	db    *sqlite.DB
	lis   *bufconn.Listener
	keys  firmav1.KeyServiceClient
	sign  firmav1.SigningServiceClient
}

func newServer(t testing.TB) *server {
	t.Helper()
	return newServerCore(t, signer.Config{VerifyECDSA: true})
}

// newServerCore is newServer with the given signing core configuration.
func newServerCore(t testing.TB, cc signer.Config) *server {
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
	if err := ks.InitKEK(ctx); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	core := signer.New(ks, cc)
	opts, err := api.ServerOptions(config.Auth{Operators: []config.Operator{{Name: "op", TokenSHA256: api.TokenSHA256(operatorToken)}}},
		prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(opts...)
	al, err := audit.Open(ctx, db, audit.Options{Node: "api-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	sg, err := signing.New(signing.Options{Keys: ks, Core: core, Auditor: al})
	if err != nil {
		t.Fatal(err)
	}
	if err := api.Register(gs, ks, sg, log); err != nil {
		t.Fatal(err)
	}
	healthpb.RegisterHealthServer(gs, health.NewServer())
	lis := bufconn.Listen(1 << 20)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)

	s := &server{ks: ks, core: core, lis: lis, audit: al, db: db}
	conn := s.dial(t, grpc.WithPerRPCCredentials(api.BearerCredentials{Token: operatorToken, Insecure: true}))
	s.keys = firmav1.NewKeyServiceClient(conn)
	s.sign = firmav1.NewSigningServiceClient(conn)
	return s
}

func (s *server) dial(t testing.TB, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return s.lis.DialContext(ctx) }))
	conn, err := grpc.NewClient("passthrough:///bufnet", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func (s *server) generate(t testing.TB, owner string, typ firmav1.KeyType, mode firmav1.KeyMode) *firmav1.Key {
	t.Helper()
	resp, err := s.keys.GenerateKey(context.Background(), &firmav1.GenerateKeyRequest{Owner: owner, Type: typ, Mode: mode})
	if err != nil {
		t.Fatalf("GenerateKey(%v, %v): %v", typ, mode, err)
	}
	return resp.GetKey()
}

// wantStatus checks an RPC error's code and ErrorInfo reason.
func wantStatus(t *testing.T, err error, code codes.Code, reason firmav1.ErrorReason) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("got %v, want code %v", err, code)
	}
	if got := api.Reason(err); got != reason.String() {
		t.Fatalf("got reason %q, want %q (err %v)", got, reason, err)
	}
}

var hashName = map[crypto.Hash]string{crypto.SHA256: "sha256", crypto.SHA384: "sha384", crypto.SHA512: "sha512"}

// opensslVerify checks sig over msg with the PEM public key, as a relying
// party would: openssl dgst -verify.
func opensslVerify(t *testing.T, pubPEM string, scheme firmav1.SignatureScheme, h crypto.Hash, msg, sig []byte) {
	t.Helper()
	dir := t.TempDir()
	pub, m, s := filepath.Join(dir, "pub.pem"), filepath.Join(dir, "msg"), filepath.Join(dir, "sig")
	for f, b := range map[string][]byte{pub: []byte(pubPEM), m: msg, s: sig} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"dgst", "-" + hashName[h], "-verify", pub, "-signature", s}
	if scheme == firmav1.SignatureScheme_SIGNATURE_SCHEME_RSA_PSS {
		args = append(args, "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1")
	}
	out, err := exec.Command("openssl", append(args, m)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verified OK") {
		t.Fatalf("openssl %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// goVerify checks sig with the standard library.
func goVerify(t *testing.T, der []byte, scheme firmav1.SignatureScheme, h crypto.Hash, digest, sig []byte) {
	t.Helper()
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatal(err)
	}
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(p, digest, sig) {
			t.Fatal("Go: ECDSA signature does not verify")
		}
	case *rsa.PublicKey:
		if scheme == firmav1.SignatureScheme_SIGNATURE_SCHEME_RSA_PSS {
			err = rsa.VerifyPSS(p, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			err = rsa.VerifyPKCS1v15(p, h, digest, sig)
		}
		if err != nil {
			t.Fatalf("Go: RSA signature does not verify: %v", err)
		}
	default:
		t.Fatalf("unexpected public key %T", pub)
	}
}

func TestGenerateSignVerify(t *testing.T) {
	s := newServer(t)
	type sc struct {
		scheme firmav1.SignatureScheme
		hash   firmav1.HashAlgorithm
		h      crypto.Hash
	}
	var (
		ecdsa256 = sc{firmav1.SignatureScheme_SIGNATURE_SCHEME_ECDSA, firmav1.HashAlgorithm_HASH_ALGORITHM_SHA256, crypto.SHA256}
		ecdsa384 = sc{firmav1.SignatureScheme_SIGNATURE_SCHEME_ECDSA, firmav1.HashAlgorithm_HASH_ALGORITHM_SHA384, crypto.SHA384}
		pkcs256  = sc{firmav1.SignatureScheme_SIGNATURE_SCHEME_RSA_PKCS1V15, firmav1.HashAlgorithm_HASH_ALGORITHM_SHA256, crypto.SHA256}
		pkcs512  = sc{firmav1.SignatureScheme_SIGNATURE_SCHEME_RSA_PKCS1V15, firmav1.HashAlgorithm_HASH_ALGORITHM_SHA512, crypto.SHA512}
		pss256   = sc{firmav1.SignatureScheme_SIGNATURE_SCHEME_RSA_PSS, firmav1.HashAlgorithm_HASH_ALGORITHM_SHA256, crypto.SHA256}
		pss384   = sc{firmav1.SignatureScheme_SIGNATURE_SCHEME_RSA_PSS, firmav1.HashAlgorithm_HASH_ALGORITHM_SHA384, crypto.SHA384}
		defaults = sc{firmav1.SignatureScheme_SIGNATURE_SCHEME_UNSPECIFIED, firmav1.HashAlgorithm_HASH_ALGORITHM_UNSPECIFIED, crypto.SHA256}
	)
	tests := []struct {
		typ     firmav1.KeyType
		schemes []sc
	}{
		{firmav1.KeyType_KEY_TYPE_EC_P256, []sc{ecdsa256, ecdsa384, defaults}},
		{firmav1.KeyType_KEY_TYPE_EC_P384, []sc{ecdsa384, ecdsa256}},
		{firmav1.KeyType_KEY_TYPE_RSA_2048, []sc{pkcs256, pss256, pkcs512, defaults}},
		{firmav1.KeyType_KEY_TYPE_RSA_3072, []sc{pss384, pkcs256}},
	}
	for _, mode := range []firmav1.KeyMode{firmav1.KeyMode_KEY_MODE_TOKEN, firmav1.KeyMode_KEY_MODE_WRAPPED} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%v/%v", mode, tt.typ), func(t *testing.T) {
				k := s.generate(t, "12345678Z", tt.typ, mode)
				if k.GetType() != tt.typ || k.GetMode() != mode || k.GetOwner() != "12345678Z" || k.GetId() == "" {
					t.Fatalf("generated key %v", k)
				}
				blk, _ := pem.Decode([]byte(k.GetPublicKeyPem()))
				if blk == nil || blk.Type != "PUBLIC KEY" || string(blk.Bytes) != string(k.GetPublicKeyDer()) {
					t.Fatal("PEM and DER public keys differ")
				}
				got, err := s.keys.GetPublicKey(context.Background(), &firmav1.GetPublicKeyRequest{KeyId: k.GetId()})
				if err != nil || string(got.GetKey().GetPublicKeyDer()) != string(k.GetPublicKeyDer()) {
					t.Fatalf("GetPublicKey: %v", err)
				}
				for _, c := range tt.schemes {
					msgs := [][]byte{[]byte("first document"), []byte("segundo documento"), []byte(c.scheme.String())}
					digests := make([][]byte, len(msgs))
					for i, m := range msgs {
						hh := c.h.New()
						hh.Write(m)
						digests[i] = hh.Sum(nil)
					}
					resp, err := s.sign.SignDigests(context.Background(), &firmav1.SignDigestsRequest{
						KeyId: k.GetId(), Scheme: c.scheme, Hash: c.hash, Digests: digests})
					if err != nil {
						t.Fatalf("SignDigests %v %v: %v", c.scheme, c.hash, err)
					}
					if len(resp.GetSignatures()) != len(digests) {
						t.Fatalf("%d signatures for %d digests", len(resp.GetSignatures()), len(digests))
					}
					scheme := c.scheme
					if scheme == firmav1.SignatureScheme_SIGNATURE_SCHEME_UNSPECIFIED && strings.Contains(tt.typ.String(), "RSA") {
						scheme = firmav1.SignatureScheme_SIGNATURE_SCHEME_RSA_PKCS1V15
					}
					for i, sig := range resp.GetSignatures() {
						goVerify(t, k.GetPublicKeyDer(), scheme, c.h, digests[i], sig)
						opensslVerify(t, k.GetPublicKeyPem(), scheme, c.h, msgs[i], sig)
					}
				}
			})
		}
	}
}

func TestErrors(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	ec := s.generate(t, "12345678Z", firmav1.KeyType_KEY_TYPE_EC_P256, firmav1.KeyMode_KEY_MODE_TOKEN)
	rsaKey := s.generate(t, "12345678Z", firmav1.KeyType_KEY_TYPE_RSA_2048, firmav1.KeyMode_KEY_MODE_WRAPPED)
	gone := s.generate(t, "12345678Z", firmav1.KeyType_KEY_TYPE_EC_P256, firmav1.KeyMode_KEY_MODE_WRAPPED)
	goneTok := s.generate(t, "12345678Z", firmav1.KeyType_KEY_TYPE_RSA_2048, firmav1.KeyMode_KEY_MODE_TOKEN)
	for _, k := range []*firmav1.Key{gone, goneTok} {
		// Sign once first so a cached signer exists and must be dropped.
		if _, err := s.sign.SignDigests(ctx, &firmav1.SignDigestsRequest{KeyId: k.GetId(), Digests: [][]byte{make([]byte, 32)}}); err != nil {
			t.Fatal(err)
		}
		resp, err := s.keys.DestroyKey(ctx, &firmav1.DestroyKeyRequest{KeyId: k.GetId()})
		if err != nil {
			t.Fatalf("DestroyKey: %v", err)
		}
		if resp.GetKey().GetDestroyTime() == nil {
			t.Fatal("destroyed key has no destroy_time")
		}
	}
	d32 := [][]byte{make([]byte, 32)}
	sha256 := firmav1.HashAlgorithm_HASH_ALGORITHM_SHA256
	ecdsaS := firmav1.SignatureScheme_SIGNATURE_SCHEME_ECDSA
	const (
		invalid     = firmav1.ErrorReason_ERROR_REASON_INVALID_ARGUMENT
		unsupported = firmav1.ErrorReason_ERROR_REASON_UNSUPPORTED
	)
	tests := []struct {
		name   string
		call   func() error
		code   codes.Code
		reason firmav1.ErrorReason
	}{
		{"sign unknown key", func() error {
			_, err := s.sign.SignDigests(ctx, &firmav1.SignDigestsRequest{KeyId: "00112233445566778899aabbccddeeff", Scheme: ecdsaS, Digests: d32})
			return err
		}, codes.NotFound, firmav1.ErrorReason_ERROR_REASON_KEY_NOT_FOUND},
		{"sign unknown key, default scheme", func() error {
			_, err := s.sign.SignDigests(ctx, &firmav1.SignDigestsRequest{KeyId: "nope", Digests: d32})
			return err
		}, codes.NotFound, firmav1.ErrorReason_ERROR_REASON_KEY_NOT_FOUND},
		{"pubkey unknown key", func() error {
			_, err := s.keys.GetPublicKey(ctx, &firmav1.GetPublicKeyRequest{KeyId: "nope"})
			return err
		}, codes.NotFound, firmav1.ErrorReason_ERROR_REASON_KEY_NOT_FOUND},
		{"destroy unknown key", func() error {
			_, err := s.keys.DestroyKey(ctx, &firmav1.DestroyKeyRequest{KeyId: "nope"})
			return err
		}, codes.NotFound, firmav1.ErrorReason_ERROR_REASON_KEY_NOT_FOUND},
		{"sign destroyed wrapped key", func() error {
			_, err := s.sign.SignDigests(ctx, &firmav1.SignDigestsRequest{KeyId: gone.GetId(), Scheme: ecdsaS, Digests: d32})
			return err
		}, codes.FailedPrecondition, firmav1.ErrorReason_ERROR_REASON_KEY_DESTROYED},
		{"sign destroyed token key", func() error {
			_, err := s.sign.SignDigests(ctx, &firmav1.SignDigestsRequest{KeyId: goneTok.GetId(), Digests: d32})
			return err
		}, codes.FailedPrecondition, firmav1.ErrorReason_ERROR_REASON_KEY_DESTROYED},
		{"destroy twice", func() error {
			_, err := s.keys.DestroyKey(ctx, &firmav1.DestroyKeyRequest{KeyId: gone.GetId()})
			return err
		}, codes.FailedPrecondition, firmav1.ErrorReason_ERROR_REASON_KEY_DESTROYED},
		{"digest too short", func() error {
			_, err := s.sign.SignDigests(ctx, &firmav1.SignDigestsRequest{KeyId: ec.GetId(), Scheme: ecdsaS, Hash: sha256, Digests: [][]byte{make([]byte, 31)}})
			return err
		}, codes.InvalidArgument, invalid},
		{"sha384 digest sent as sha256", func() error {
			_, err := s.sign.SignDigests(ctx, &firmav1.SignDigestsRequest{KeyId: rsaKey.GetId(), Hash: sha256, Digests: [][]byte{make([]byte, 32), make([]byte, 48)}})
			return err
		}, codes.InvalidArgument, invalid},
		{"no digests", func() error {
			_, err := s.sign.SignDigests(ctx, &firmav1.SignDigestsRequest{KeyId: ec.GetId()})
			return err
		}, codes.InvalidArgument, invalid},
		{"too many digests", func() error {
			_, err := s.sign.SignDigests(ctx, &firmav1.SignDigestsRequest{KeyId: ec.GetId(), Digests: make([][]byte, api.MaxDigests+1)})
			return err
		}, codes.InvalidArgument, invalid},
		{"no key id", func() error {
			_, err := s.sign.SignDigests(ctx, &firmav1.SignDigestsRequest{Digests: d32})
			return err
		}, codes.InvalidArgument, invalid},
		{"unknown hash", func() error {
			_, err := s.sign.SignDigests(ctx, &firmav1.SignDigestsRequest{KeyId: ec.GetId(), Hash: 42, Digests: d32})
			return err
		}, codes.InvalidArgument, invalid},
		{"unknown scheme", func() error {
			_, err := s.sign.SignDigests(ctx, &firmav1.SignDigestsRequest{KeyId: ec.GetId(), Scheme: 42, Digests: d32})
			return err
		}, codes.InvalidArgument, invalid},
		{"ecdsa with rsa key", func() error {
			_, err := s.sign.SignDigests(ctx, &firmav1.SignDigestsRequest{KeyId: rsaKey.GetId(), Scheme: ecdsaS, Digests: d32})
			return err
		}, codes.InvalidArgument, unsupported},
		{"pss with ec key", func() error {
			_, err := s.sign.SignDigests(ctx, &firmav1.SignDigestsRequest{KeyId: ec.GetId(), Scheme: firmav1.SignatureScheme_SIGNATURE_SCHEME_RSA_PSS, Digests: d32})
			return err
		}, codes.InvalidArgument, unsupported},
		{"generate without owner", func() error {
			_, err := s.keys.GenerateKey(ctx, &firmav1.GenerateKeyRequest{})
			return err
		}, codes.InvalidArgument, invalid},
		{"generate owner with spaces", func() error {
			_, err := s.keys.GenerateKey(ctx, &firmav1.GenerateKeyRequest{Owner: "1234 5678Z"})
			return err
		}, codes.InvalidArgument, invalid},
		{"generate unknown type", func() error {
			_, err := s.keys.GenerateKey(ctx, &firmav1.GenerateKeyRequest{Owner: "12345678Z", Type: 99})
			return err
		}, codes.InvalidArgument, invalid},
		{"generate unknown mode", func() error {
			_, err := s.keys.GenerateKey(ctx, &firmav1.GenerateKeyRequest{Owner: "12345678Z", Mode: 99})
			return err
		}, codes.InvalidArgument, invalid},
		{"list negative page size", func() error {
			_, err := s.keys.ListKeys(ctx, &firmav1.ListKeysRequest{PageSize: -1})
			return err
		}, codes.InvalidArgument, invalid},
		{"list forged page token", func() error {
			_, err := s.keys.ListKeys(ctx, &firmav1.ListKeysRequest{PageToken: "!!!"})
			return err
		}, codes.InvalidArgument, invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantStatus(t, tt.call(), tt.code, tt.reason)
		})
	}
}

func TestDigestErrorNamesField(t *testing.T) {
	s := newServer(t)
	k := s.generate(t, "12345678Z", firmav1.KeyType_KEY_TYPE_EC_P256, firmav1.KeyMode_KEY_MODE_TOKEN)
	_, err := s.sign.SignDigests(context.Background(), &firmav1.SignDigestsRequest{KeyId: k.GetId(),
		Digests: [][]byte{make([]byte, 32), make([]byte, 32), make([]byte, 20)}})
	if msg := status.Convert(err).Message(); !strings.Contains(msg, "digests[2]") || !strings.Contains(msg, "20 bytes") {
		t.Fatalf("message %q should name digests[2] and its length", msg)
	}
}

func TestAuthentication(t *testing.T) {
	s := newServer(t)
	anon := s.dial(t)
	bad := s.dial(t, grpc.WithPerRPCCredentials(api.BearerCredentials{Token: operatorToken + "x", Insecure: true}))
	empty := s.dial(t, grpc.WithPerRPCCredentials(api.BearerCredentials{Token: "", Insecure: true}))
	ctx := context.Background()
	for name, conn := range map[string]*grpc.ClientConn{"anonymous": anon, "bad token": bad, "empty token": empty} {
		t.Run(name, func(t *testing.T) {
			_, err := firmav1.NewSigningServiceClient(conn).SignDigests(ctx, &firmav1.SignDigestsRequest{KeyId: "x", Digests: [][]byte{make([]byte, 32)}})
			wantStatus(t, err, codes.Unauthenticated, firmav1.ErrorReason_ERROR_REASON_UNAUTHENTICATED)
			_, err = firmav1.NewKeyServiceClient(conn).GenerateKey(ctx, &firmav1.GenerateKeyRequest{Owner: "12345678Z"})
			wantStatus(t, err, codes.Unauthenticated, firmav1.ErrorReason_ERROR_REASON_UNAUTHENTICATED)
			_, err = firmav1.NewKeyServiceClient(conn).ListKeys(ctx, &firmav1.ListKeysRequest{})
			wantStatus(t, err, codes.Unauthenticated, firmav1.ErrorReason_ERROR_REASON_UNAUTHENTICATED)
		})
	}
	t.Run("health needs no credentials", func(t *testing.T) {
		resp, err := healthpb.NewHealthClient(anon).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health: %v %v", resp, err)
		}
	})
}

func TestListKeysPaging(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	want := map[string]bool{}
	for i := 0; i < 5; i++ {
		want[s.generate(t, "A1234567Z", firmav1.KeyType_KEY_TYPE_EC_P256, firmav1.KeyMode_KEY_MODE_WRAPPED).GetId()] = true
	}
	other := s.generate(t, "B7654321X", firmav1.KeyType_KEY_TYPE_EC_P256, firmav1.KeyMode_KEY_MODE_TOKEN).GetId()

	var got []string
	token, pages := "", 0
	for {
		resp, err := s.keys.ListKeys(ctx, &firmav1.ListKeysRequest{Owner: "A1234567Z", PageSize: 2, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, k := range resp.GetKeys() {
			if k.GetOwner() != "A1234567Z" {
				t.Errorf("key of %s listed for A1234567Z", k.GetOwner())
			}
			got = append(got, k.GetId())
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
		if _, err := s.keys.ListKeys(ctx, &firmav1.ListKeysRequest{Owner: "B7654321X", PageToken: token}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("page token reused with another owner: %v", err)
		}
	}
	if pages != 3 || len(got) != 5 || !sort.StringsAreSorted(got) {
		t.Fatalf("pages %d, ids %v", pages, got)
	}
	for _, id := range got {
		if !want[id] {
			t.Errorf("unexpected id %s", id)
		}
	}
	all, err := s.keys.ListKeys(ctx, &firmav1.ListKeysRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.GetKeys()) != 6 || all.GetNextPageToken() != "" {
		t.Fatalf("unfiltered list: %d keys, next %q", len(all.GetKeys()), all.GetNextPageToken())
	}
	found := false
	for _, k := range all.GetKeys() {
		found = found || k.GetId() == other
	}
	if !found {
		t.Error("unfiltered list misses the other owner's key")
	}
}

// Many goroutines sign at once through gRPC; run with -race.
func TestConcurrentSigning(t *testing.T) {
	s := newServer(t)
	ctx := context.Background()
	keys := []*firmav1.Key{
		s.generate(t, "12345678Z", firmav1.KeyType_KEY_TYPE_EC_P256, firmav1.KeyMode_KEY_MODE_TOKEN),
		s.generate(t, "12345678Z", firmav1.KeyType_KEY_TYPE_EC_P256, firmav1.KeyMode_KEY_MODE_WRAPPED),
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := keys[g%len(keys)]
			pub, _ := x509.ParsePKIXPublicKey(k.GetPublicKeyDer())
			for i := 0; i < 10; i++ {
				digests := make([][]byte, 8)
				for j := range digests {
					digests[j] = make([]byte, 32)
					rand.Read(digests[j])
				}
				resp, err := s.sign.SignDigests(ctx, &firmav1.SignDigestsRequest{KeyId: k.GetId(), Digests: digests})
				if err != nil {
					errs <- err
					return
				}
				for j, sig := range resp.GetSignatures() {
					if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digests[j], sig) {
						errs <- fmt.Errorf("goroutine %d: signature %d does not verify", g, j)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
