package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"math/big"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/firma-cloud/firma/config"
)

// testPKI is a CA with a server and two client certificates, made fresh
// for each test: one client is a configured operator, the other is signed
// by the same CA but not configured.
type testPKI struct {
	pool           *x509.CertPool
	server         tls.Certificate
	known, unknown tls.Certificate
	selfSigned     tls.Certificate
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) tls.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
		if parent == nil {
			parent, parentKey = tmpl, k
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &k.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	p := &testPKI{pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	p.server = issue(2, "firmad", x509.ExtKeyUsageServerAuth, ca, caKey)
	p.known = issue(3, "operator", x509.ExtKeyUsageClientAuth, ca, caKey)
	p.unknown = issue(4, "stranger", x509.ExtKeyUsageClientAuth, ca, caKey)
	p.selfSigned = issue(5, "operator", x509.ExtKeyUsageClientAuth, nil, nil)
	return p
}

func fingerprint(c tls.Certificate) string {
	s := sha256.Sum256(c.Certificate[0])
	return hex.EncodeToString(s[:])
}

func TestMutualTLSOperators(t *testing.T) {
	p := newPKI(t)
	const token = "tls-bearer"
	ops := []config.Operator{
		{Name: "robot", CertSHA256: fingerprint(p.known)},
		{Name: "human", TokenSHA256: TokenSHA256(token)},
	}
	unary, stream, err := AuthInterceptors(config.Auth{Operators: ops})
	if err != nil {
		t.Fatal(err)
	}
	// The handler reports who the interceptor said the caller is.
	var seen string
	check := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		seen = Operator(ctx)
		return h(ctx, req)
	}
	srvTLS := &tls.Config{Certificates: []tls.Certificate{p.server}, ClientCAs: p.pool, ClientAuth: tls.VerifyClientCertIfGiven}
	gs := grpc.NewServer(grpc.Creds(credentials.NewTLS(srvTLS)), grpc.ChainUnaryInterceptor(unary, check), grpc.ChainStreamInterceptor(stream))
	// A health service stands in for any protected method: the operator
	// check does not depend on which service is called.
	healthpb.RegisterHealthServer(gs, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)

	protected := "/grpc.health.v1.Health/Check"
	delete(publicMethods, protected)
	t.Cleanup(func() { publicMethods[protected] = true })

	tests := []struct {
		name   string
		certs  []tls.Certificate
		token  string
		want   codes.Code
		wantOp string
	}{
		{"configured client certificate", []tls.Certificate{p.known}, "", codes.OK, "robot"},
		{"certificate of the CA but not configured", []tls.Certificate{p.unknown}, "", codes.Unauthenticated, ""},
		{"no certificate, no token", nil, "", codes.Unauthenticated, ""},
		{"bearer token over TLS", nil, token, codes.OK, "human"},
		{"unknown certificate, good token", []tls.Certificate{p.unknown}, token, codes.OK, "human"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
				RootCAs: p.pool, Certificates: tt.certs, ServerName: "127.0.0.1"}))}
			if tt.token != "" {
				opts = append(opts, grpc.WithPerRPCCredentials(BearerCredentials{Token: tt.token}))
			}
			conn, err := grpc.NewClient(lis.Addr().String(), opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			seen = ""
			_, err = healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
			if status.Code(err) != tt.want {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if seen != tt.wantOp {
				t.Errorf("operator %q, want %q", seen, tt.wantOp)
			}
		})
	}

	t.Run("self-signed certificate with a configured fingerprint is refused by TLS", func(t *testing.T) {
		a, err := NewAuth([]config.Operator{{Name: "self", CertSHA256: fingerprint(p.selfSigned)}})
		if err != nil {
			t.Fatal(err)
		}
		// The handshake rejects it before any interceptor runs; the
		// interceptor itself only trusts verified chains.
		if _, ok := a.Authenticate(context.Background()); ok {
			t.Fatal("no peer at all was authenticated")
		}
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
			RootCAs: p.pool, Certificates: []tls.Certificate{p.selfSigned}, ServerName: "127.0.0.1"})))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err == nil {
			t.Fatal("self-signed client certificate accepted")
		}
	})
}

func TestNewAuthRejectsBadDigest(t *testing.T) {
	for _, op := range []config.Operator{{Name: "a", TokenSHA256: "xyz"}, {Name: "b", CertSHA256: "abcd"}} {
		if _, err := NewAuth([]config.Operator{op}); err == nil {
			t.Errorf("NewAuth accepted %+v", op)
		}
	}
}
