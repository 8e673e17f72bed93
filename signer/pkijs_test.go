package signer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signer/ltv"
	"github.com/firma-cloud/firma/verify/testpki"
)

// pkijsDir is the npm project of the PKI.js check, installed by make
// deps-test.
func pkijsDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("testdata/pkijs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "pkijs")); err != nil {
		t.Fatalf("pkijs is not installed (make deps-test runs npm ci in %s): %v", dir, err)
	}
	return dir
}

// TestArchiveTimestampPKIjs has verifiers nobody here wrote check the
// CAdES archive-time-stamp-v3: PKI.js (testdata/pkijs/check.js) parses
// the signature, checks each token's ats-hash-index-v3 against what the
// signature holds (EN 319 122-1 V1.1.1 5.5.2), and verifies each token's
// signature, chain and imprint over the bytes 5.5.3 names; openssl ts
// -verify checks each token again over those bytes. A B-LTA signature
// and the same renewed (two archive timestamps) pass; a changed content
// or a changed covered certificate fails both.
// Cost: one test PKI, three signatures' worth of timestamps, a dozen
// node and openssl runs.
func TestArchiveTimestampPKIjs(t *testing.T) {
	ctx := context.Background()
	js := pkijsDir(t)
	pki := testpki.New(t)
	dir := t.TempDir()
	tsaRootPEM := testpki.WritePEM(t, dir, "tsaroot.pem", pki.TSARoot.Cert)
	tsaRootDER := filepath.Join(dir, "tsaroot.der")
	os.WriteFile(tsaRootDER, pki.TSARoot.Cert.Raw, 0o600)
	key, chain := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	doc := []byte("Acta de archivo definitivo, 2026-12-08.\n")
	opt := signer.Options{Level: signer.LevelLTA, Timestamper: pki.Timestamper(t), Validation: &ltv.Gatherer{}}
	lta, err := signer.CAdESDocument(ctx, bytes.NewReader(doc), key, chain, opt)
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := signer.ExtendCAdES(ctx, lta, sha256Of(doc), opt)
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, sig, content []byte) (int, error) {
		t.Helper()
		d := t.TempDir()
		sigPath, contentPath := filepath.Join(d, "sig.p7s"), filepath.Join(d, "content")
		os.WriteFile(sigPath, sig, 0o600)
		os.WriteFile(contentPath, content, 0o600)
		cmd := exec.Command("node", filepath.Join(js, "check.js"), sigPath, contentPath, tsaRootDER, d)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return 0, &checkErr{stderr.String()}
		}
		var rep struct {
			ArchiveTimestamps []struct {
				ImprintOK, SignatureOK bool
			}
		}
		if err := json.Unmarshal(out, &rep); err != nil {
			t.Fatalf("check.js report: %v\n%s", err, out)
		}
		for i, a := range rep.ArchiveTimestamps {
			if !a.ImprintOK || !a.SignatureOK {
				t.Fatalf("archive timestamp %d: %+v", i+1, a)
			}
			o, err := run(t, "openssl", "ts", "-verify", "-data", filepath.Join(d, "ats-"+string(rune('1'+i))+".data"),
				"-in", filepath.Join(d, "ats-"+string(rune('1'+i))+".tst"), "-token_in", "-CAfile", tsaRootPEM)
			if err != nil || !strings.Contains(o, "Verification: OK") {
				t.Fatalf("openssl ts -verify of archive timestamp %d: %v\n%s", i+1, err, o)
			}
		}
		return len(rep.ArchiveTimestamps), nil
	}
	for _, tc := range []struct {
		name string
		sig  []byte
		n    int
	}{{"B-LTA", lta, 1}, {"renewed", renewed, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := check(t, tc.sig, doc)
			if err != nil || n != tc.n {
				t.Fatalf("%d archive timestamps checked (%v), want %d", n, err, tc.n)
			}
		})
	}
	// The signer's certificate, covered by the index: one byte of its
	// signature value changed keeps the encoding valid.
	at := bytes.Index(renewed, chain[0].Raw) + len(chain[0].Raw) - 4
	for name, in := range map[string][2][]byte{
		"changed content":     {renewed, append([]byte("X"), doc[1:]...)},
		"changed certificate": {flip(renewed, at), doc},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := check(t, in[0], in[1]); err == nil {
				t.Fatal("check.js accepted it")
			}
		})
	}
}

type checkErr struct{ stderr string }

func (e *checkErr) Error() string { return "check.js: " + e.stderr }
