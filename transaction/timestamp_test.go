package transaction_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/signer"
	softhsmtest "github.com/firma-cloud/firma/softhsm-test"
	"github.com/firma-cloud/firma/transaction"
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
	if _, err := e.svc.Approve(e.ctx, c.ID, sess, code); err != nil {
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
	if _, err := e.svc.Approve(e.ctx, c2.ID, sess, code); err != nil {
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
