package audit_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/tsa"
	"github.com/firma-cloud/firma/verify/testpki"
)

// Checkpoints are timestamped by an RFC 3161 TSA (the tsa package's
// server and client); openssl ts -verify accepts the token over the
// signed checkpoint, and so does VerifyExportWith with tsa.VerifyToken.
func TestCheckpointTimestamp(t *testing.T) {
	pki := testpki.New(t)
	ks := pki.Key(t, keystore.ECP256)
	ns, err := audit.NewNoteSigner(origin, ks)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := audit.NoteVerifierKey(origin, ks.Public())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := audit.NewNoteVerifiers(vkey)
	if err != nil {
		t.Fatal(err)
	}
	db, _ := openDB(t)
	l, err := audit.Open(context.Background(), db, audit.Options{Origin: origin, Signer: ns, Timestamper: pki.Timestamper(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fill(t, l, 0, 6)
	c := checkpoint(t, l)
	if len(c.Timestamp) == 0 {
		t.Fatal("checkpoint has no timestamp")
	}

	dir := t.TempDir()
	tok := filepath.Join(dir, "checkpoint.tst")
	if err := os.WriteFile(tok, c.Timestamp, 0o600); err != nil {
		t.Fatal(err)
	}
	roots := testpki.WritePEM(t, dir, "tsa-root.pem", pki.TSARoot.Cert)
	d := sha256.Sum256(c.Note)
	out, err := exec.Command("openssl", "ts", "-verify", "-digest", hex.EncodeToString(d[:]), "-token_in", "-in", tok, "-CAfile", roots).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verification: OK") {
		t.Fatalf("openssl ts -verify: %v\n%s", err, out)
	}
	other := sha256.Sum256(append(bytes.Clone(c.Note), 'x'))
	if out, err := exec.Command("openssl", "ts", "-verify", "-digest", hex.EncodeToString(other[:]), "-token_in", "-in", tok, "-CAfile", roots).CombinedOutput(); err == nil {
		t.Fatalf("openssl ts -verify accepted the token for another checkpoint:\n%s", out)
	}

	check := func(token []byte, h crypto.Hash, digest []byte) (time.Time, error) {
		tk, err := tsa.VerifyToken(token, tsa.VerifyOptions{Roots: testpki.Pool(pki.TSARoot.Cert), Hash: h, Digest: digest})
		if err != nil {
			return time.Time{}, err
		}
		return tk.Time, nil
	}
	var exp bytes.Buffer
	if err := audit.ExportStore(context.Background(), db, &exp); err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyExportWith(bytes.NewReader(exp.Bytes()), audit.VerifyOptions{Keys: keys, CheckTimestamp: check})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Timestamped != 1 || time.Since(rep.LastTimestamp) > time.Minute {
		t.Errorf("report %+v: want 1 verified timestamp, just now", rep)
	}
	// A token from another TSA (roots we do not trust) is refused.
	untrusted := func(token []byte, h crypto.Hash, digest []byte) (time.Time, error) {
		_, err := tsa.VerifyToken(token, tsa.VerifyOptions{Roots: testpki.Pool(pki.Root.Cert), Hash: h, Digest: digest})
		return time.Time{}, err
	}
	_, err = audit.VerifyExportWith(bytes.NewReader(exp.Bytes()), audit.VerifyOptions{Keys: keys, CheckTimestamp: untrusted})
	if !errors.Is(err, audit.ErrTampered) || !strings.Contains(err.Error(), "RFC 3161 timestamp") {
		t.Fatalf("untrusted TSA: %v", err)
	}
}
