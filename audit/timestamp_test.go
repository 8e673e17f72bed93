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

// An audited TSA records the timestamp of each checkpoint in the log; that
// record alone does not make the next round sign another checkpoint, or a
// quiet log would grow forever.
func TestCheckpointIgnoresOwnTimestampRecord(t *testing.T) {
	e := newEnv(t, audit.Options{})
	var l *audit.Log
	stamps := 0
	tsaStub := func(ctx context.Context, h crypto.Hash, d []byte) ([]byte, error) {
		stamps++
		// What tsa.AuditLog does for every token the TSA signs.
		if err := l.Append(ctx, &audit.Record{Event: audit.KeyUsed, Outcome: audit.Success,
			Actor: audit.Actor{Role: audit.RoleSystem, ID: "tsa"}, KeyID: "tsa-key",
			Documents: []audit.Document{audit.Digest(h, d)}}); err != nil {
			return nil, err
		}
		return []byte{0x30, 0x00}, nil
	}
	e.log.Close()
	var err error
	l, err = audit.Open(context.Background(), e.db, audit.Options{Origin: origin, Signer: e.signer, Timestamper: audit.TimestamperFunc(tsaStub)})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fill(t, l, 0, 3)
	c1 := checkpoint(t, l)
	c2 := checkpoint(t, l)
	if c1.Size != 3 || c2.Size != 3 || stamps != 1 || l.Size() != 4 {
		t.Fatalf("checkpoints %d, %d, %d stamps, log %d: want one checkpoint of 3 and the TSA's record", c1.Size, c2.Size, stamps, l.Size())
	}
	fill(t, l, 4, 5)
	if c3 := checkpoint(t, l); c3.Size != 5 || stamps != 2 {
		t.Fatalf("after a new record: checkpoint %d, %d stamps; want 5 and 2", c3.Size, stamps)
	}
}
