package transaction_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/asn1"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/store/testdb"
	"github.com/firma-cloud/firma/transaction"
	"github.com/firma-cloud/firma/tsa"
	"github.com/firma-cloud/firma/verify/testpki"
)

// TestTimestampedSignatures asks for B-T: every CAdES and PAdES signature
// carries an RFC 3161 token from a real TSA, and still verifies.
func TestTimestampedSignatures(t *testing.T) {
	tok := softhsmtest.New(t)
	pki := testpki.New(t)
	e := newEnvOn(t, tok, func(o *transaction.Options) { o.Timestamper = pki.Timestamper(t) })
	p := e.portal("Portal", nil)
	citizen := e.advanced(12345678)
	docs, contents := threeDocs(t)
	c, err := e.svc.Create(e.ctx, p, transaction.CreateRequest{CitizenID: citizen, Documents: docs, OKURL: okURL, ErrorURL: errURL})
	if err != nil {
		t.Fatal(err)
	}
	sess, code := e.login(c.ID, citizen)
	if _, err := e.approve(c.ID, sess, code); err != nil {
		t.Fatal(err)
	}
	r, err := e.svc.Results(e.ctx, p.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	verifyResults(t, e, r, contents)
	for _, d := range r.Documents {
		if want := d.Format != signer.FormatRaw; d.Timestamped != want {
			t.Errorf("document %d (%s): timestamped %t", d.Index, d.Format, d.Timestamped)
		}
		if d.Format != signer.FormatRaw {
			// The token is handed out on its own too, and openssl reads it.
			if len(d.TimestampToken) == 0 || d.TimestampTime.IsZero() {
				t.Fatalf("document %d: no timestamp token in the results", d.Index)
			}
			tok := filepath.Join(t.TempDir(), "token.der")
			os.WriteFile(tok, d.TimestampToken, 0o600)
			out, err := run(t, "openssl", "ts", "-reply", "-token_in", "-in", tok, "-token_out", "-text")
			if err != nil || !strings.Contains(out, "Time stamp: "+d.TimestampTime.Format("Jan _2 15:04:05")) {
				t.Fatalf("openssl ts -reply on the token (time %s): %v\n%s", d.TimestampTime, err, out)
			}
		}
		if d.Format != signer.FormatCAdES {
			continue
		}
		path := filepath.Join(t.TempDir(), "sig.p7s")
		os.WriteFile(path, d.Signature, 0o600)
		out, err := run(t, "openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", path)
		if err != nil || !strings.Contains(out, "id-smime-aa-timeStampToken") {
			t.Fatalf("CAdES without a timestamp token: %v\n%s", err, out)
		}
	}

	// B-B on request, even with a TSA configured.
	c2, err := e.svc.Create(e.ctx, p, transaction.CreateRequest{CitizenID: citizen, Level: signer.LevelB, OKURL: okURL, ErrorURL: errURL,
		Documents: []transaction.DocumentInput{{Name: "b.txt", Content: []byte("b"), Format: signer.FormatCAdES}}})
	if err != nil {
		t.Fatal(err)
	}
	sess, code = e.login(c2.ID, citizen)
	if _, err := e.approve(c2.ID, sess, code); err != nil {
		t.Fatal(err)
	}
	r2, err := e.svc.Results(e.ctx, p.ID, c2.ID)
	if err != nil || r2.Documents[0].Timestamped {
		t.Fatalf("B-B result: %v %+v", err, r2.Documents[0].DocumentState)
	}
}

func TestBTWithoutTSARefused(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Portal", nil)
	citizen := e.advanced(12345678)
	_, err := e.svc.Create(e.ctx, p, transaction.CreateRequest{CitizenID: citizen, Level: signer.LevelT, OKURL: okURL, ErrorURL: errURL,
		Documents: []transaction.DocumentInput{{Name: "b.txt", Content: []byte("b")}}})
	wantCode(t, err, transaction.CodeInvalidRequest)
	if !strings.Contains(err.Error(), "timestamp") {
		t.Errorf("message %q", err)
	}
}

// TestBTAuditUnavailableNamed: the built-in TSA records its key use like
// any other; when the audit log refuses those records, a CAdES B-T
// document fails naming the audit log, not the timestamp authority. The
// SQLite trigger refuses only the TSA's records, so the citizen's own
// key.activated is written and signing reaches the timestamp. Cost: one
// token, one in-process TSA, one document.
func TestBTAuditUnavailableNamed(t *testing.T) {
	var stamper *tsa.Server
	e := newEnvWith(t, testdb.SQLite, softhsmtest.New(t), func(o *transaction.Options) {
		o.Timestamper = signer.TimestamperFunc(func(ctx context.Context, h crypto.Hash, d []byte) ([]byte, error) {
			return tsa.TokenDER(stamper)(ctx, h, d)
		})
	})
	stamper = builtinTSA(t, e)
	db, ok := e.db.(interface{ SQL() *sql.DB })
	if !ok {
		t.Fatalf("store %T has no SQL handle", e.db)
	}
	if _, err := db.SQL().ExecContext(e.ctx, `CREATE TRIGGER refuse_tsa_audit BEFORE INSERT ON audit_records
		WHEN NEW.actor_id = 'tsa' BEGIN SELECT RAISE(ABORT, 'audit store unavailable'); END`); err != nil {
		t.Fatal(err)
	}
	p := e.portal("Portal", nil)
	citizen := e.advanced(12345678)
	c, err := e.svc.Create(e.ctx, p, transaction.CreateRequest{CitizenID: citizen, Level: signer.LevelT, OKURL: okURL, ErrorURL: errURL,
		Documents: []transaction.DocumentInput{{Name: "acta.txt", Content: []byte("acta de la sesión"), Format: signer.FormatCAdES}}})
	if err != nil {
		t.Fatal(err)
	}
	sess, code := e.login(c.ID, citizen)
	if _, err := e.approve(c.ID, sess, code); err != nil {
		t.Fatal(err)
	}
	r, err := e.svc.Results(e.ctx, p.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	d := r.Documents[0]
	if d.Status != transaction.DocFailed || d.ErrorCode == transaction.CodeTimestampFailed || !strings.Contains(d.Error, "audit log") {
		t.Fatalf("B-T document with the TSA's audit records refused: %s %s %q; want failed, naming the audit log", d.Status, d.ErrorCode, d.Error)
	}

	// The same TSA times stamps again once its records are written.
	if _, err := db.SQL().ExecContext(e.ctx, `DROP TRIGGER refuse_tsa_audit`); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("acta"))
	if _, err := stamper.Timestamp(e.ctx, crypto.SHA256, sum[:]); err != nil {
		t.Fatalf("built-in TSA with its audit records written: %v", err)
	}
}

// builtinTSA is the built-in TSA signing through e's signing service, its
// key in e's token under a throw-away software CA.
func builtinTSA(t *testing.T, e *env) *tsa.Server {
	t.Helper()
	k, err := e.ks.GenerateMode(e.ctx, tsa.Owner, keystore.ECP256, keystore.ModeToken)
	if err != nil {
		t.Fatal(err)
	}
	key, err := e.ks.Signer(e.ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test TSA CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tsa.IssueCertificate(caCert, caKey, key.Public(), tsa.CertOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := tsa.NewServer(tsa.ServerConfig{Signer: key, Cert: cert, Chain: []*x509.Certificate{caCert}, Signing: e.signing,
		Policy: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1}, Serials: tsa.NewSequence(e.db, "default", 1), Issuance: e.db,
		Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}
