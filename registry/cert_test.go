package registry_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/policy"
	"github.com/firma-cloud/firma/registry"
)

// pki is a certificate authority made with openssl, standing in for the
// FNMT or the DNIe authority.
type pki struct {
	dir  string
	cert *x509.Certificate
}

func openssl(t testing.TB, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
}

func readCert(t testing.TB, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newPKI(t testing.TB, name string) *pki {
	t.Helper()
	needTool(t, "openssl")
	dir := t.TempDir()
	openssl(t, dir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "ca.key", "-out", "ca.pem", "-days", "30", "-subj", "/C=ES/O="+name+"/CN="+name+" citizen CA",
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	return &pki{dir: dir, cert: readCert(t, filepath.Join(dir, "ca.pem"))}
}

// issue makes a citizen certificate and returns it with its key's path.
func (p *pki) issue(t testing.TB, name, subject string) (*x509.Certificate, string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(p.dir, "ext.cnf"),
		[]byte("keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	openssl(t, p.dir, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", name+".key", "-out", name+".csr", "-utf8", "-subj", subject)
	openssl(t, p.dir, "x509", "-req", "-in", name+".csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
		"-days", "10", "-extfile", "ext.cnf", "-out", name+".pem")
	return readCert(t, filepath.Join(p.dir, name+".pem")), filepath.Join(p.dir, name+".key")
}

const juanSubject = "/C=ES/serialNumber=IDCES-12345678Z/GN=JUAN/SN=ESPAÑOL LÓPEZ/CN=ESPAÑOL LÓPEZ JUAN - 12345678Z"

func certEnv(t *testing.T, trusted *pki) *env {
	pool := x509.NewCertPool()
	pool.AddCert(trusted.cert)
	e := newEnv(t, func(o *registry.Options) { o.TrustedCAs = pool })
	// openssl dates the certificates from the real clock.
	e.clock.Set(time.Now())
	return e
}

func TestElectronicCertificate(t *testing.T) {
	ctx := context.Background()
	fnmt := newPKI(t, "FNMT test")
	other := newPKI(t, "Unknown")
	juan, _ := fnmt.issue(t, "juan", juanSubject)
	stranger, _ := other.issue(t, "stranger", juanSubject)
	plain, _ := fnmt.issue(t, "plain", "/C=ES/serialNumber=X1234567L/CN=SMITH, JOHN (AUTENTICACIÓN)")
	noSerial, _ := fnmt.issue(t, "noserial", "/C=ES/CN=Nobody")
	badLetter, _ := fnmt.issue(t, "badletter", "/C=ES/serialNumber=IDCES-12345678A/GN=A/SN=B")
	dnie, _ := fnmt.issue(t, "dnie", "/C=ES/serialNumber=Y1234567X/SN=GARCÍA/GN=MARÍA JOSÉ/CN=GARCÍA DE LA FUENTE, MARÍA JOSÉ (AUTENTICACIÓN)")

	tests := []struct {
		name    string
		cert    *x509.Certificate
		wantErr error
		field   string
		wantID  string
		given   string
		surname string
	}{
		{name: "trusted CA", cert: juan, wantID: "12345678Z", given: "JUAN", surname: "ESPAÑOL LÓPEZ"},
		{name: "plain serial and CN name", cert: plain, wantID: "X1234567L", given: "JOHN", surname: "SMITH"},
		{name: "DNIe: full surnames from the CN", cert: dnie, wantID: "Y1234567X", given: "MARÍA JOSÉ", surname: "GARCÍA DE LA FUENTE"},
		{name: "other CA", cert: stranger, wantErr: registry.ErrUntrusted},
		{name: "no serialNumber", cert: noSerial, wantErr: registry.ErrInvalid, field: "certificate"},
		{name: "bad DNI letter in certificate", cert: badLetter, wantErr: registry.ErrInvalid, field: "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := certEnv(t, fnmt)
			p, err := e.reg.StartCertificate(ctx, registry.CertificateProof{Chain: []*x509.Certificate{tt.cert}, FromTLS: true}, "612345678")
			if tt.wantErr != nil {
				var fe *registry.FieldError
				if !errors.Is(err, tt.wantErr) || (tt.field != "" && (!errors.As(err, &fe) || fe.Field != tt.field)) {
					t.Fatalf("got %v, want %v on %q", err, tt.wantErr, tt.field)
				}
				if msgs, _ := e.outbox.Messages(ctx, "", 10); len(msgs) != 0 {
					t.Fatal("refused certificate still sent an SMS")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.CitizenID != tt.wantID || p.GivenName != tt.given || p.Surnames != tt.surname || p.Mobile != "+34******678" {
				t.Fatalf("pending %+v", p)
			}
			code := e.lastSMSCode(t, "+34612345678")
			conf, err := e.reg.ConfirmCertificate(ctx, registry.CertificateConfirmation{PendingID: p.ID, Code: code, Email: "juan@example.es", AcceptConditions: true})
			if err != nil {
				t.Fatal(err)
			}
			c := e.citizen(t, tt.wantID)
			if c.Level != "advanced" || c.Method != "electronic_certificate" || c.Email != "juan@example.es" || conf.ActivationCode == "" {
				t.Fatalf("citizen %+v conf %+v", c, conf)
			}
			if _, err := e.reg.ConfirmCertificate(ctx, registry.CertificateConfirmation{PendingID: p.ID, Code: code, Email: "juan@example.es", AcceptConditions: true}); !errors.Is(err, registry.ErrCodeUsed) {
				t.Fatalf("confirming twice: %v", err)
			}
		})
	}
}

func TestElectronicCertificateSMSCode(t *testing.T) {
	ctx := context.Background()
	fnmt := newPKI(t, "FNMT test")
	juan, _ := fnmt.issue(t, "juan", juanSubject)
	e := certEnv(t, fnmt)
	start := func() *registry.Pending {
		p, err := e.reg.StartCertificate(ctx, registry.CertificateProof{Chain: []*x509.Certificate{juan}, FromTLS: true}, "+34612345678")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	confirm := func(id, code string, accept bool) error {
		_, err := e.reg.ConfirmCertificate(ctx, registry.CertificateConfirmation{PendingID: id, Code: code, Email: "juan@example.es", AcceptConditions: accept})
		return err
	}
	p := start()
	code := e.lastSMSCode(t, "+34612345678")
	wrong := "2222"
	if code == wrong {
		wrong = "3333"
	}
	if err := confirm(p.ID, code, false); !errors.Is(err, registry.ErrConditions) {
		t.Fatalf("conditions not accepted: %v", err)
	}
	if err := confirm(p.ID, wrong, true); !errors.Is(err, registry.ErrCodeInvalid) {
		t.Fatalf("wrong code: %v", err)
	}
	confirm(p.ID, wrong, true)
	if err := confirm(p.ID, wrong, true); !errors.Is(err, registry.ErrTooManyAttempts) {
		t.Fatalf("third wrong code: %v", err)
	}
	if err := confirm(p.ID, code, true); !errors.Is(err, registry.ErrCodeUsed) && !errors.Is(err, registry.ErrTooManyAttempts) {
		t.Fatalf("right code after lockout: %v", err)
	}
	// The lock is the citizen's registrations', by the attempt policy's
	// rule: starting again sends no SMS and gives no fresh tries until
	// the lockout ends. (Before it, each start had its own three tries,
	// and the expiry check below started again at once.)
	messages := func() int {
		msgs, err := e.outbox.Messages(ctx, "+34612345678", 100)
		if err != nil {
			t.Fatal(err)
		}
		return len(msgs)
	}
	sent := messages()
	if _, err := e.reg.StartCertificate(ctx, registry.CertificateProof{Chain: []*x509.Certificate{juan}, FromTLS: true}, "+34612345678"); !errors.Is(err, registry.ErrTooManyAttempts) || !strings.Contains(err.Error(), "UTC") {
		t.Fatalf("start while locked: %v", err)
	}
	if n := messages(); n != sent {
		t.Fatalf("start while locked sent an SMS (%d, was %d)", n, sent)
	}
	// Its own scope: the citizen's signature codes are not locked by it.
	if err := policy.NewAttempts(e.db, policy.AttemptRules{}).Check(ctx, policy.OTPScope("12345678Z"), e.clock.Now()); err != nil {
		t.Fatalf("a registration lock locked the signing channel: %v", err)
	}
	e.clock.Add(policy.DefaultAttemptRules().Lockout)
	p = start()
	code = e.lastSMSCode(t, "+34612345678")
	e.clock.Add(11 * time.Minute)
	if err := confirm(p.ID, code, true); !errors.Is(err, registry.ErrCodeExpired) {
		t.Fatalf("expired code: %v", err)
	}
	if _, err := e.db.Citizen(ctx, "12345678Z"); err == nil {
		t.Fatal("failed confirmations registered the citizen")
	}
}

func TestElectronicCertificateChallenge(t *testing.T) {
	ctx := context.Background()
	fnmt := newPKI(t, "FNMT test")
	juan, key := fnmt.issue(t, "juan", juanSubject)
	e := certEnv(t, fnmt)
	// An existing basic citizen is upgraded by the certificate.
	if err := e.reg.PutFiscalRecord(ctx, "12345678Z", "Juan", "Español López", "Calle Sol 2, Sevilla"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.RequestLetter(ctx, "12345678Z"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.RedeemLetter(ctx, registry.Redemption{ID: "12345678Z", CSV: e.lastLetterCSV(t, "12345678Z"),
		Mobile: "612345678", Email: "j@example.es", AcceptConditions: true}); err != nil {
		t.Fatal(err)
	}

	sign := func(nonce []byte) []byte {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "nonce"), nonce, 0o600)
		openssl(t, dir, "dgst", "-sha256", "-sign", key, "-out", "sig", "nonce")
		sig, err := os.ReadFile(filepath.Join(dir, "sig"))
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	ch, err := e.reg.NewChallenge(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sig := sign(ch.Nonce)
	proof := registry.CertificateProof{Chain: []*x509.Certificate{juan}, ChallengeID: ch.ID, Nonce: ch.Nonce, Signature: sig}

	bad := proof
	bad.Signature = append([]byte{}, sig...)
	bad.Signature[len(bad.Signature)-1] ^= 1
	ch2, _ := e.reg.NewChallenge(ctx)
	bad.ChallengeID, bad.Nonce = ch2.ID, ch2.Nonce
	var fe *registry.FieldError
	if _, err := e.reg.StartCertificate(ctx, bad, "612345678"); !errors.As(err, &fe) || fe.Field != "signature" {
		t.Fatalf("bad signature: %v", err)
	}
	if _, err := e.reg.StartCertificate(ctx, registry.CertificateProof{Chain: proof.Chain}, "612345678"); !errors.As(err, &fe) || fe.Field != "signature" {
		t.Fatalf("no proof: %v", err)
	}

	p, err := e.reg.StartCertificate(ctx, proof, "612345678")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.StartCertificate(ctx, proof, "612345678"); !errors.Is(err, registry.ErrCodeUsed) {
		t.Fatalf("replayed challenge: %v", err)
	}
	conf, err := e.reg.ConfirmCertificate(ctx, registry.CertificateConfirmation{PendingID: p.ID, Code: e.lastSMSCode(t, "+34612345678"),
		Email: "juan@example.es", AcceptConditions: true})
	if err != nil {
		t.Fatal(err)
	}
	if !conf.Upgraded || conf.Citizen.Level != "advanced" {
		t.Fatalf("basic citizen not upgraded: %+v", conf)
	}
	if err := e.reg.MaySign(ctx, "12345678Z"); err != nil {
		t.Fatalf("upgraded citizen may not sign: %v", err)
	}
}
