package ca_test

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/firma-cloud/firma/ca"
)

// outsideCA is a CA run by openssl with a software key, playing the
// external authority.
type outsideCA struct {
	cert, key string
	der       []byte
}

func newOutsideCA(t *testing.T, dir, name string) *outsideCA {
	t.Helper()
	o := &outsideCA{cert: filepath.Join(dir, name+".pem"), key: filepath.Join(dir, name+".key")}
	openssl(t, dir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", o.key, "-out", o.cert, "-days", "3650", "-subj", "/C=ES/O=Outside Trust/CN="+name,
		"-addext", "basicConstraints=critical,CA:true", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	o.der = readPEM(t, o.cert)
	return o
}

// sign issues a certificate for the CSR with the given extension section
// of testdata/ext-ca.cnf.
func (o *outsideCA) sign(t *testing.T, dir, csr, section, out string) []byte {
	t.Helper()
	ext, err := filepath.Abs("testdata/ext-ca.cnf")
	if err != nil {
		t.Fatal(err)
	}
	openssl(t, dir, "x509", "-req", "-in", csr, "-CA", o.cert, "-CAkey", o.key, "-set_serial", "0x"+randomHex(t),
		"-days", "365", "-extfile", ext, "-extensions", section, "-out", out)
	return readPEM(t, out)
}

func readPEM(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	return blk.Bytes
}

// softwareCSR makes a CSR for a fresh openssl key, i.e. a key that is not
// in the HSM.
func softwareCSR(t *testing.T, dir, name, subj string) string {
	t.Helper()
	csr := filepath.Join(dir, name+".csr")
	openssl(t, dir, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-nodes",
		"-keyout", filepath.Join(dir, name+".key"), "-out", csr, "-subj", subj)
	return csr
}

func TestExternalIssuingCA(t *testing.T) {
	e := newEnv(t, nil)
	outside := newOutsideCA(t, e.dir, "Outside Root")

	csrDER, key, err := e.ca.IssuingCSR(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if key.Owner != ca.OwnerIssuing {
		t.Errorf("issuing key owner %q", key.Owner)
	}
	csr := e.file("issuing.csr", "CERTIFICATE REQUEST", csrDER)
	mustContain(t, "csr self-signature", openssl(t, e.dir, "req", "-in", csr, "-verify", "-noout"), "verify OK")

	good := outside.sign(t, e.dir, csr, "v3_issuing", filepath.Join(e.dir, "issuing-ext.pem"))
	leaf := outside.sign(t, e.dir, csr, "v3_leaf", filepath.Join(e.dir, "not-a-ca.pem"))
	other := outside.sign(t, e.dir, softwareCSR(t, e.dir, "other", "/C=ES/O=Firma Test/CN=Other"), "v3_issuing", filepath.Join(e.dir, "other.pem"))
	otherRoot := newOutsideCA(t, e.dir, "Unrelated Root")

	tests := []struct {
		name string
		cert []byte
		root []byte
		want error
	}{
		{"key not in the HSM", other, outside.der, ca.ErrKeyMismatch},
		{"not a CA certificate", leaf, outside.der, ca.ErrBadCertificate},
		{"root did not sign it", good, otherRoot.der, ca.ErrBadCertificate},
		{"garbage", []byte("not a certificate"), nil, ca.ErrBadCertificate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.ca.ImportIssuing(e.ctx, tc.cert, tc.root); !errors.Is(err, tc.want) {
				t.Fatalf("ImportIssuing = %v, want %v", err, tc.want)
			}
			if e.ca.Issuing() != nil {
				t.Fatalf("a refused import set the issuing CA")
			}
		})
	}

	cert, err := e.ca.ImportIssuing(e.ctx, good, outside.der)
	if err != nil {
		t.Fatal(err)
	}
	if !cert.Equal(e.ca.Issuing()) {
		t.Fatalf("imported certificate is not the issuing CA")
	}
	if _, err := e.ca.ImportIssuing(e.ctx, good, outside.der); !errors.Is(err, ca.ErrAlreadyInitialised) {
		t.Errorf("second import = %v, want ErrAlreadyInitialised", err)
	}
	// init keeps the imported CA and makes no root of its own.
	res := e.init()
	if len(res.Created) != 0 || !res.Issuing.Equal(cert) || !res.Root.Equal(mustParse(t, outside.der)) {
		t.Fatalf("init after import created %v", res.Created)
	}

	e.advanced("12345678Z", "Juan", "Español")
	c, err := e.ca.EnsureCertificate(e.ctx, "12345678Z")
	if err != nil {
		t.Fatal(err)
	}
	issuing := e.file("issuing.pem", "CERTIFICATE", cert.Raw)
	citizen := e.file("citizen.pem", "CERTIFICATE", c.DER)
	mustContain(t, "chain to the outside root", openssl(t, e.dir, "verify", "-CAfile", outside.cert, "-untrusted", issuing, citizen), "citizen.pem: OK")
	mustContain(t, "ocsp", e.ocspStatus(outside.cert, issuing, citizen), "citizen.pem: good")
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestExternalCitizenCertificates(t *testing.T) {
	var outside *outsideCA
	e := newEnv(t, func(c *ca.Config) { c.Mode = ca.ModeExternal })
	outside = newOutsideCA(t, e.dir, "Outside Citizens CA")
	// Only the outside CA may sign imported certificates.
	strict, err := ca.New(ca.Config{Mode: ca.ModeExternal, ExternalIssuers: []*x509.Certificate{mustParse(t, outside.der)}}, e.ks, e.db, e.reg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.advanced("12345678Z", "Juan", "Español")

	pending, err := strict.EnsureCertificate(e.ctx, "12345678Z")
	if !errors.Is(err, ca.ErrPending) || pending == nil || len(pending.CSR) == 0 {
		t.Fatalf("EnsureCertificate in external mode = %v, %v; want a pending CSR", pending, err)
	}
	if again, err := strict.CSR(e.ctx, "12345678Z"); err != nil || again.ID != pending.ID {
		t.Fatalf("CSR again = %v, %v; want the same pending request", again, err)
	}
	if _, err := strict.Issue(e.ctx, "12345678Z"); !errors.Is(err, ca.ErrWrongMode) {
		t.Errorf("Issue in external mode = %v, want ErrWrongMode", err)
	}
	csr := e.file("citizen.csr", "CERTIFICATE REQUEST", pending.CSR)
	text := openssl(t, e.dir, "req", "-in", csr, "-verify", "-noout", "-text", "-nameopt", "RFC2253,-esc_msb")
	mustContain(t, "exported CSR", text, "verify OK", "serialNumber=IDCES-12345678Z", "CN=ESPAÑOL\\, JUAN - 12345678Z")

	subj := "/C=ES/serialNumber=IDCES-12345678Z/GN=Juan/SN=Español/CN=ESPAÑOL, JUAN - 12345678Z"
	wrongKey := outside.sign(t, e.dir, softwareCSR(t, e.dir, "wrong", subj), "v3_leaf", filepath.Join(e.dir, "wrong.pem"))
	otherCA := newOutsideCA(t, e.dir, "Rogue CA")
	rogue := otherCA.sign(t, e.dir, csr, "v3_leaf", filepath.Join(e.dir, "rogue.pem"))
	good := outside.sign(t, e.dir, csr, "v3_leaf", filepath.Join(e.dir, "citizen.pem"))

	tests := []struct {
		name string
		cert []byte
		want error
	}{
		{"certificate for another key", wrongKey, ca.ErrKeyMismatch},
		{"issuer not configured", rogue, ca.ErrBadCertificate},
		{"garbage", []byte{0x30, 0x01}, ca.ErrBadCertificate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := strict.Import(e.ctx, tc.cert); !errors.Is(err, tc.want) {
				t.Fatalf("Import = %v, want %v", err, tc.want)
			}
		})
	}

	c, err := strict.Import(e.ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != "valid" || c.KeyID != pending.KeyID || c.ID != pending.ID {
		t.Fatalf("imported %+v", c)
	}
	if cur, err := strict.EnsureCertificate(e.ctx, "12345678Z"); err != nil || cur.ID != c.ID {
		t.Fatalf("EnsureCertificate after import = %v, %v", cur, err)
	}
	mustContain(t, "openssl verify", openssl(t, e.dir, "verify", "-CAfile", outside.cert, filepath.Join(e.dir, "citizen.pem")), "citizen.pem: OK")
	digest, sig, err := sign(t, e.ks, c.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkSig(c.Cert, digest, sig); err != nil {
		t.Fatal(err)
	}
	if _, err := strict.Import(e.ctx, good); !errors.Is(err, ca.ErrNotFound) {
		t.Errorf("importing twice = %v, want ErrNotFound (no pending request)", err)
	}

	// Renewal makes a new key and CSR; importing its certificate
	// supersedes the old one and destroys the old key.
	next, err := strict.Renew(e.ctx, "12345678Z")
	if err != nil || next.Status != "pending" || next.KeyID == c.KeyID {
		t.Fatalf("Renew = %+v, %v", next, err)
	}
	csr2 := e.file("citizen2.csr", "CERTIFICATE REQUEST", next.CSR)
	if _, err := strict.Import(e.ctx, outside.sign(t, e.dir, csr2, "v3_leaf", filepath.Join(e.dir, "citizen2.pem"))); err != nil {
		t.Fatal(err)
	}
	old, err := strict.Certificate(e.ctx, c.ID)
	if err != nil || old.Status != "revoked" || old.Reason != ca.ReasonSuperseded {
		t.Fatalf("old certificate = %+v, %v", old, err)
	}
	if _, _, err := sign(t, e.ks, c.KeyID); err == nil {
		t.Errorf("superseded key still signs")
	}
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	// A leading 1 keeps the serial positive whatever the first byte is.
	return "1" + hex.EncodeToString(b)
}
