package tsa

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/digitorus/timestamp"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/store/sqlite"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestOpenSSLVerifiesReplies has openssl make the query and verify the
// built-in TSA's reply, and refuse it once the data changes.
func TestOpenSSLVerifiesReplies(t *testing.T) {
	doc, err := os.ReadFile("testdata/document.txt")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	p := e.newPKI("Firma")
	tests := []struct {
		name     string
		key      keystore.Type
		hash     string
		accuracy time.Duration
	}{
		{"ec-p256 sha256", keystore.ECP256, "-sha256", 0},
		{"ec-p384 sha384", keystore.ECP384, "-sha384", 500 * time.Millisecond},
		{"rsa-2048 sha512", keystore.RSA2048, "-sha512", 1500 * time.Microsecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			srv := e.tsa(p, tc.key, func(c *ServerConfig) { c.Accuracy = tc.accuracy })
			url := serve(t, srv)
			data := filepath.Join(dir, "document.txt")
			if err := os.WriteFile(data, doc, 0o600); err != nil {
				t.Fatal(err)
			}
			query := filepath.Join(dir, "q.tsq")
			if out, err := run(t, "openssl", "ts", "-query", "-data", data, tc.hash, "-cert", "-out", query); err != nil {
				t.Fatalf("openssl ts -query: %v\n%s", err, out)
			}
			q, err := os.ReadFile(query)
			if err != nil {
				t.Fatal(err)
			}
			resp, body := post(t, url, QueryContentType, q)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ReplyContentType {
				t.Fatalf("HTTP %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			reply := filepath.Join(dir, "reply.tsr")
			if err := os.WriteFile(reply, body, 0o600); err != nil {
				t.Fatal(err)
			}
			caFile := writePEM(t, filepath.Join(dir, "root.pem"), p.root)
			untrusted := writePEM(t, filepath.Join(dir, "tsa.pem"), srv.Certificate(), p.issuing)

			for _, args := range [][]string{
				{"-data", data},
				{"-queryfile", query}, // also checks the nonce and imprint against the query
			} {
				cmd := append([]string{"ts", "-verify", "-in", reply, "-CAfile", caFile, "-untrusted", untrusted}, args...)
				out, err := run(t, "openssl", cmd...)
				if err != nil || !strings.Contains(out, "Verification: OK") {
					t.Fatalf("openssl %s: %v\n%s", strings.Join(cmd, " "), err, out)
				}
			}

			text, err := run(t, "openssl", "ts", "-reply", "-in", reply, "-text")
			if err != nil {
				t.Fatalf("openssl ts -reply -text: %v\n%s", err, text)
			}
			for _, want := range []string{"Status: Granted.", "Policy OID: 1.3.6.1.4.1.99999.1.1", "Nonce: 0x"} {
				if !strings.Contains(text, want) {
					t.Errorf("reply text lacks %q:\n%s", want, text)
				}
			}
			wantAcc := map[time.Duration]string{
				0:                       "Accuracy: 0x01 seconds, unspecified millis, unspecified micros",
				500 * time.Millisecond:  "Accuracy: unspecified seconds, 0x01F4 millis, unspecified micros",
				1500 * time.Microsecond: "Accuracy: unspecified seconds, 0x01 millis, 0x01F4 micros",
			}[tc.accuracy]
			if !strings.Contains(text, wantAcc) {
				t.Errorf("reply text lacks %q:\n%s", wantAcc, text)
			}

			// One byte changed in the token, in the signed TSTInfo (the
			// policy OID) or in the signature value, and openssl refuses it.
			policyDER, _ := asn1.Marshal(testPolicy)
			for _, where := range []string{"policy", "signature"} {
				bad := append([]byte(nil), body...)
				if where == "policy" {
					i := bytes.Index(bad, policyDER)
					if i < 0 {
						t.Fatal("policy OID not found in the reply")
					}
					bad[i+len(policyDER)-1] ^= 0x01
				} else {
					bad[len(bad)-1] ^= 0x01
				}
				f := filepath.Join(dir, where+".tsr")
				os.WriteFile(f, bad, 0o600)
				out, err := run(t, "openssl", "ts", "-verify", "-in", f, "-CAfile", caFile, "-untrusted", untrusted, "-data", data)
				if err == nil || strings.Contains(out, "Verification: OK") {
					t.Fatalf("openssl accepted a token with its %s changed:\n%s", where, out)
				}
			}

			tampered := append([]byte(nil), doc...)
			tampered[len(tampered)/2] ^= 0x01
			if err := os.WriteFile(data, tampered, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := run(t, "openssl", "ts", "-verify", "-in", reply, "-CAfile", caFile, "-untrusted", untrusted, "-data", data)
			if err == nil || strings.Contains(out, "Verification: OK") {
				t.Fatalf("openssl accepted the token over changed data:\n%s", out)
			}
			if !strings.Contains(out, "message imprint mismatch") {
				t.Errorf("openssl failed for another reason than the imprint:\n%s", out)
			}
		})
	}
}

// TestOpenSSLRefusesForeignRoot checks the same reply fails against a CA
// file that does not hold our root.
func TestOpenSSLRefusesForeignRoot(t *testing.T) {
	e := newEnv(t)
	p, other := e.newPKI("Firma"), e.newPKI("Other")
	srv := e.tsa(p, keystore.ECP256, nil)
	dir := t.TempDir()
	data := filepath.Join(dir, "d.txt")
	os.WriteFile(data, []byte("hello"), 0o600)
	query := filepath.Join(dir, "q.tsq")
	if out, err := run(t, "openssl", "ts", "-query", "-data", data, "-sha256", "-cert", "-out", query); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	q, _ := os.ReadFile(query)
	reply, _, err := srv.Respond(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	rf := filepath.Join(dir, "r.tsr")
	os.WriteFile(rf, reply, 0o600)
	out, err := run(t, "openssl", "ts", "-verify", "-in", rf, "-data", data,
		"-CAfile", writePEM(t, filepath.Join(dir, "other.pem"), other.root),
		"-untrusted", writePEM(t, filepath.Join(dir, "tsa.pem"), srv.Certificate(), p.issuing))
	if err == nil || strings.Contains(out, "Verification: OK") {
		t.Fatalf("openssl accepted a token under an unconfigured root:\n%s", out)
	}
}

func tokenSerial(t *testing.T, reply []byte) *big.Int {
	t.Helper()
	ts, err := timestamp.ParseResponse(reply)
	if err != nil {
		t.Fatalf("parse reply: %v", err)
	}
	return ts.SerialNumber
}

func sha256Query(t testing.TB, data []byte, certReq bool) []byte {
	t.Helper()
	d := sha256.Sum256(data)
	q, err := (&timestamp.Request{HashAlgorithm: crypto.SHA256, HashedMessage: d[:], Certificates: certReq, Nonce: big.NewInt(time.Now().UnixNano())}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// TestSerialsIncreaseAcrossRestart issues tokens, reopens the database and
// the server as a restart would, and checks serials never repeat or fall.
func TestSerialsIncreaseAcrossRestart(t *testing.T) {
	for _, block := range []int{1, 16} {
		t.Run("block "+big.NewInt(int64(block)).String(), func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t)
			p := e.newPKI("Firma")
			path := filepath.Join(e.dir, "tsa.db")
			var serials []*big.Int
			for restart := range 3 {
				db, err := sqlite.Open(ctx, path)
				if err != nil {
					t.Fatal(err)
				}
				srv := e.tsa(p, keystore.ECP256, func(c *ServerConfig) { c.Serials = NewSequence(db, "default", block) })
				for i := range 4 {
					reply, fail, err := srv.Respond(ctx, sha256Query(t, []byte{byte(restart), byte(i)}, false))
					if err != nil || fail >= 0 {
						t.Fatalf("respond: %v %v", fail, err)
					}
					serials = append(serials, tokenSerial(t, reply))
				}
				db.Close()
			}
			for i := 1; i < len(serials); i++ {
				if serials[i].Cmp(serials[i-1]) <= 0 {
					t.Fatalf("serial %v after %v: not increasing (all: %v)", serials[i], serials[i-1], serials)
				}
			}
			if block == 1 && serials[len(serials)-1].Int64() != int64(len(serials)) {
				t.Errorf("block 1 left gaps: %v", serials)
			}
		})
	}
}

// TestRejections sends bad queries and checks the PKIStatus and failInfo
// of the reply, with our parser and with openssl's.
func TestRejections(t *testing.T) {
	e := newEnv(t)
	p := e.newPKI("Firma")
	reg := prometheus.NewRegistry()
	srv := e.tsa(p, keystore.ECP256, func(c *ServerConfig) { c.Registerer = reg })
	url := serve(t, srv)
	d := sha256.Sum256([]byte("x"))
	imprint := messageImprint{HashAlgorithm: algID(oidSHA256), HashedMessage: d[:]}
	mustDER := func(v any) []byte {
		b, err := asn1.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sha1 := make([]byte, 20)
	tests := []struct {
		name    string
		query   []byte
		want    FailInfo
		openssl string
	}{
		{"garbage", []byte("this is not DER"), FailBadDataFormat, "the data submitted has the wrong format"},
		{"empty", []byte{}, FailBadDataFormat, "the data submitted has the wrong format"},
		{"truncated", sha256Query(t, []byte("x"), true)[:20], FailBadDataFormat, "the data submitted has the wrong format"},
		{"trailing data", append(sha256Query(t, []byte("x"), true), 0, 0), FailBadDataFormat, "the data submitted has the wrong format"},
		{"nonce of 600 bits", mustDER(request{Version: 1, MessageImprint: imprint, Nonce: new(big.Int).Lsh(big.NewInt(1), 599)}), FailBadDataFormat, "the data submitted has the wrong format"},
		{"negative nonce", mustDER(request{Version: 1, MessageImprint: imprint, Nonce: big.NewInt(-5)}), FailBadDataFormat, "the data submitted has the wrong format"},
		{"version 2", mustDER(request{Version: 2, MessageImprint: imprint}), FailBadDataFormat, "the data submitted has the wrong format"},
		{"short digest", mustDER(request{Version: 1, MessageImprint: messageImprint{HashAlgorithm: algID(oidSHA256), HashedMessage: d[:16]}}), FailBadDataFormat, "the data submitted has the wrong format"},
		{"sha1", mustDER(request{Version: 1, MessageImprint: messageImprint{HashAlgorithm: algID(oidSHA1), HashedMessage: sha1}}), FailBadAlg, "unrecognized or unsupported algorithm identifier"},
		{"md5", mustDER(request{Version: 1, MessageImprint: messageImprint{HashAlgorithm: algID(asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 5}), HashedMessage: d[:16]}}), FailBadAlg, "unrecognized or unsupported algorithm identifier"},
		{"other policy", mustDER(request{Version: 1, MessageImprint: imprint, ReqPolicy: asn1.ObjectIdentifier{1, 2, 3, 4}}), FailUnacceptedPolicy, "the requested TSA policy is not supported by the TSA"},
		{"extension", mustDER(request{Version: 1, MessageImprint: imprint, Extensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3}, Value: []byte{5, 0}}}}), FailUnacceptedExtension, "the requested extension is not supported by the TSA"},
	}
	dir := t.TempDir()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := post(t, url, QueryContentType, tc.query)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != ReplyContentType {
				t.Fatalf("HTTP %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			_, err := ParseReply(body)
			var re *RejectionError
			if !errors.As(err, &re) || !errors.Is(err, ErrRejected) {
				t.Fatalf("reply is not a rejection: %v", err)
			}
			if re.Status != statusRejection || re.FailInfo != tc.want {
				t.Fatalf("status %d failInfo %v, want rejection %v", re.Status, re.FailInfo, tc.want)
			}
			if len(re.Text) == 0 {
				t.Errorf("rejection carries no statusString")
			}
			f := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".tsr")
			os.WriteFile(f, body, 0o600)
			out, err := run(t, "openssl", "ts", "-reply", "-in", f, "-text")
			if err != nil || !strings.Contains(out, "Status: Rejected.") || !strings.Contains(out, tc.openssl) {
				t.Fatalf("openssl ts -reply -text (want %q): %v\n%s", tc.openssl, err, out)
			}
		})
	}
	if got := testutil.ToFloat64(srv.m.requests.WithLabelValues("badDataFormat")); got != 8 {
		t.Errorf("badDataFormat counter = %v, want 8", got)
	}
}

func algID(oid asn1.ObjectIdentifier) pkix.AlgorithmIdentifier {
	return pkix.AlgorithmIdentifier{Algorithm: oid, Parameters: asn1.NullRawValue}
}

// TestCertReq checks certificates are in the token only when asked for.
func TestCertReq(t *testing.T) {
	e := newEnv(t)
	p := e.newPKI("Firma")
	srv := e.tsa(p, keystore.ECP256, nil)
	for _, certReq := range []bool{true, false} {
		reply, fail, err := srv.Respond(context.Background(), sha256Query(t, []byte("x"), certReq))
		if err != nil || fail >= 0 {
			t.Fatalf("respond: %v %v", fail, err)
		}
		ts, err := timestamp.ParseResponse(reply)
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		if certReq {
			want = 2 // TSA and issuing CA
		}
		if len(ts.Certificates) != want {
			t.Errorf("certReq %v: %d certificates, want %d", certReq, len(ts.Certificates), want)
		}
	}
}

// TestServerTimestamp checks the in-process path gives a token openssl
// accepts for the digest, and refuses bad input without issuing.
func TestServerTimestamp(t *testing.T) {
	e := newEnv(t)
	p := e.newPKI("Firma")
	srv := e.tsa(p, keystore.ECP256, nil)
	ctx := context.Background()
	tests := []struct {
		name   string
		hash   crypto.Hash
		digest []byte
		ok     bool
	}{
		{"sha256", crypto.SHA256, sha256Of("a"), true},
		{"sha1 refused", crypto.SHA1, make([]byte, 20), false},
		{"short digest", crypto.SHA256, make([]byte, 31), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := srv.Timestamp(ctx, tc.hash, tc.digest)
			if !tc.ok {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			tf := filepath.Join(dir, "token.der")
			os.WriteFile(tf, tok.DER, 0o600)
			out, err := run(t, "openssl", "ts", "-verify", "-token_in", "-in", tf, "-digest", hex.EncodeToString(tc.digest),
				"-CAfile", writePEM(t, filepath.Join(dir, "root.pem"), p.root),
				"-untrusted", writePEM(t, filepath.Join(dir, "tsa.pem"), srv.Certificate(), p.issuing))
			if err != nil || !strings.Contains(out, "Verification: OK") {
				t.Fatalf("openssl: %v\n%s", err, out)
			}
		})
	}
}

// TestNewServerRefusesBadConfig checks a misconfigured TSA does not start.
func TestNewServerRefusesBadConfig(t *testing.T) {
	e := newEnv(t)
	p, other := e.newPKI("Firma"), e.newPKI("Other")
	good := e.tsa(p, keystore.ECP256, nil).cfg
	otherKey := e.hsmKey(Owner, keystore.ECP256)
	nonCritical := leafCert(t, p, good.Signer.Public(), func(c *x509.Certificate) {
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageTimeStamping}
	})
	tests := []struct {
		name  string
		tweak func(*ServerConfig)
		want  string
	}{
		{"no signer", func(c *ServerConfig) { c.Signer = nil }, "signer and certificate are required"},
		{"no serials", func(c *ServerConfig) { c.Serials = nil }, "serial source is required"},
		{"no policy", func(c *ServerConfig) { c.Policy = nil }, "policy OID is required"},
		{"certificate for another key", func(c *ServerConfig) { c.Signer = otherKey }, "not for the signer's key"},
		{"EKU not critical", func(c *ServerConfig) { c.Cert = nonCritical }, "extended key usage not critical"},
		{"chain of another CA", func(c *ServerConfig) { c.Chain = []*x509.Certificate{other.issuing} }, "did not issue"},
		{"MD5 imprints", func(c *ServerConfig) { c.Hashes = []crypto.Hash{crypto.MD5} }, "not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			cfg.Registerer = prometheus.NewRegistry()
			tc.tweak(&cfg)
			_, err := NewServer(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
