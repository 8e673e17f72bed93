package transaction_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/ca"
	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signer/asic"
	"github.com/firma-cloud/firma/store"
	"github.com/firma-cloud/firma/transaction"
)

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// threeDocs is a batch of one digest signed raw, one text document as
// CAdES and one PDF as PAdES.
func threeDocs(t *testing.T) ([]transaction.DocumentInput, [][]byte) {
	raw := []byte("notificación 2026-11-25 número 981")
	sum := sha256.Sum256(raw)
	txt, pdf := readFile(t, "resolucion.txt"), readFile(t, "simple.pdf")
	return []transaction.DocumentInput{
		{Name: "notificacion.txt", Digest: sum[:], Hash: "sha256", Format: signer.FormatRaw},
		{Name: "resolucion.txt", MediaType: "text/plain", Content: txt, Format: signer.FormatCAdES},
		{Name: "solicitud.pdf", MediaType: "application/pdf", Content: pdf},
	}, [][]byte{raw, txt, pdf}
}

// verifyResults checks every signature of a done transaction with tools
// nobody here wrote: openssl for raw and CAdES, pdfsig and qpdf for PAdES.
func verifyResults(t *testing.T, e *env, r *transaction.Results, contents [][]byte) {
	t.Helper()
	dir := t.TempDir()
	if len(r.Chain) < 2 {
		t.Fatalf("chain has %d certificates, want the signer and its issuers", len(r.Chain))
	}
	root := writePEM(t, filepath.Join(dir, "root.pem"), e.ca.Root().Raw)
	chain := writePEM(t, filepath.Join(dir, "chain.pem"), r.Chain[1:]...)
	leaf := writePEM(t, filepath.Join(dir, "leaf.pem"), r.Chain[0])
	if out, err := run(t, "openssl", "verify", "-CAfile", root, "-untrusted", chain, leaf); err != nil || !strings.Contains(out, ": OK") {
		t.Fatalf("openssl verify of the signer chain: %v\n%s", err, out)
	}
	pub := filepath.Join(dir, "pub.pem")
	if out, err := run(t, "openssl", "x509", "-in", leaf, "-pubkey", "-noout", "-out", pub); err != nil {
		t.Fatalf("openssl x509 -pubkey: %v\n%s", err, out)
	}
	for i, d := range r.Documents {
		if d.Status != transaction.DocSigned || len(d.Signature) == 0 {
			t.Fatalf("document %d: status %s (%s %s), want signed", i, d.Status, d.ErrorCode, d.Error)
		}
		content := filepath.Join(dir, "content")
		sig := filepath.Join(dir, "sig")
		if err := os.WriteFile(content, contents[i], 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(sig, d.Signature, 0o600); err != nil {
			t.Fatal(err)
		}
		switch d.Format {
		case signer.FormatRaw:
			dg := filepath.Join(dir, "digest")
			sum := sha256.Sum256(contents[i])
			os.WriteFile(dg, sum[:], 0o600)
			out, err := run(t, "openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-in", dg, "-sigfile", sig)
			if err != nil || !strings.Contains(out, "Signature Verified Successfully") {
				t.Fatalf("document %d: openssl pkeyutl -verify: %v\n%s", i, err, out)
			}
		case signer.FormatCAdES:
			out, err := run(t, "openssl", "cms", "-verify", "-binary", "-content", content, "-inform", "DER", "-in", sig,
				"-CAfile", root, "-purpose", "any", "-out", os.DevNull)
			if err != nil || !strings.Contains(out, "Verification successful") {
				t.Fatalf("document %d: openssl cms -verify: %v\n%s", i, err, out)
			}
		case signer.FormatPAdES:
			if !bytes.HasPrefix(d.Signature, contents[i]) {
				t.Fatalf("document %d: the signed PDF does not start with the original", i)
			}
			pdfPath := filepath.Join(dir, "signed.pdf")
			os.WriteFile(pdfPath, d.Signature, 0o600)
			if out, err := run(t, "qpdf", "--check", pdfPath); err != nil {
				t.Fatalf("document %d: qpdf --check: %v\n%s", i, err, out)
			}
			nss := filepath.Join(dir, "nss"+strconv.Itoa(i)) // one NSS database per PDF: certutil -N on an existing one waits for a password
			os.Mkdir(nss, 0o700)
			if out, err := run(t, "certutil", "-N", "-d", "sql:"+nss, "--empty-password"); err != nil {
				t.Fatalf("certutil -N: %v\n%s", err, out)
			}
			if out, err := run(t, "certutil", "-A", "-d", "sql:"+nss, "-n", "root", "-t", "CT,C,C", "-i", root); err != nil {
				t.Fatalf("certutil -A: %v\n%s", err, out)
			}
			out, _ := run(t, "pdfsig", "-nssdir", "sql:"+nss, pdfPath)
			if !strings.Contains(out, "Signature Validation: Signature is Valid.") {
				t.Fatalf("document %d: pdfsig:\n%s", i, out)
			}
		case signer.FormatXAdES:
			// xmlsec1 reads a detached document as a file named by the
			// reference's URI, relative to its working directory.
			if m := regexp.MustCompile(`URI="([^"#][^"]*)"`).FindSubmatch(d.Signature); m != nil {
				if err := os.WriteFile(filepath.Join(dir, string(m[1])), contents[i], 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command("xmlsec1", "--verify", "--trusted-pem", root, "--untrusted-pem", chain,
				"--enabled-reference-uris", "empty,same-doc,local,remote",
				"--id-attr:Id", "http://uri.etsi.org/01903/v1.3.2#:SignedProperties", sig)
			cmd.Dir = dir
			if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "OK") {
				t.Fatalf("document %d: xmlsec1 --verify: %v\n%s", i, err, out)
			}
		case signer.FormatASiCSCAdES, signer.FormatASiCSXAdES, signer.FormatASiCEXAdES:
			// unzip unpacks it; openssl or xmlsec1 checks the signature
			// over the document it holds, which must be the one sent.
			c, err := asic.Open(d.Signature, asic.Limits{})
			if err != nil || len(c.Documents) != 1 || !bytes.Equal(c.Documents[0].Content, contents[i]) {
				t.Fatalf("document %d: container: %v", i, err)
			}
			x := filepath.Join(dir, fmt.Sprintf("asic%d", i))
			if out, err := run(t, "unzip", "-q", sig, "-d", x); err != nil {
				t.Fatalf("document %d: unzip: %v\n%s", i, err, out)
			}
			var cmd *exec.Cmd
			if c.SignatureName == asic.CAdESEntry {
				cmd = exec.Command("openssl", "cms", "-verify", "-binary", "-content", c.Documents[0].Name, "-inform", "DER",
					"-in", asic.CAdESEntry, "-CAfile", root, "-purpose", "any", "-out", os.DevNull)
			} else {
				cmd = exec.Command("xmlsec1", "--verify", "--trusted-pem", root, "--untrusted-pem", chain,
					"--enabled-reference-uris", "empty,same-doc,local,remote",
					"--id-attr:Id", "http://uri.etsi.org/01903/v1.3.2#:SignedProperties", asic.XAdESEntry)
			}
			cmd.Dir = x
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("document %d: %s: %v\n%s", i, cmd.Args[0], err, out)
			}
		default:
			t.Fatalf("document %d: format %q", i, d.Format)
		}
	}
}

func TestApproveSignsEveryDocument(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Sede electrónica de prueba", nil)
	citizen := e.advanced(12345678)
	docs, contents := threeDocs(t)
	c := e.create(p, citizen, docs...)
	if c.RedirectURL != "https://firma.example.es/sign/"+c.ID {
		t.Errorf("redirect URL %q", c.RedirectURL)
	}

	v, err := e.svc.View(e.ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v.PortalName != p.Name || len(v.Documents) != 3 || v.Certificate != nil {
		t.Fatalf("view before sign-in: %+v", v)
	}
	sess, code := e.login(c.ID, citizen)
	if v, err := e.svc.SessionView(e.ctx, c.ID, sess); err != nil || v.Certificate == nil || !v.Certificate.WillIssue {
		t.Fatalf("view after sign-in: %v %+v", err, v)
	}
	_, sms := e.lastOTP(citizen)
	// The SMS names the portal, the number of documents and the approval
	// short code the page shows.
	for _, want := range []string{p.Name, "3 documentos", v.ApprovalCode} {
		if !strings.Contains(sms, want) {
			t.Errorf("SMS %q does not contain %q", sms, want)
		}
	}
	done, err := e.approve(c.ID, sess, code)
	if err != nil {
		t.Fatalf("approve: %v", err)
	}
	if done.State != transaction.StateDone || done.Summary != transaction.SummaryAllSigned {
		t.Fatalf("after approval: state %s summary %s (%s)", done.State, done.Summary, done.ErrorMessage)
	}
	if done.ReturnURL != okURL+"?transaction_id="+c.ID {
		t.Errorf("return URL %q", done.ReturnURL)
	}
	r, err := e.svc.Results(e.ctx, p.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	verifyResults(t, e, r, contents)
	// The certificate was issued on first use, for this citizen.
	certs, err := e.ca.Certificates(e.ctx, ca.ListOptions{Citizen: citizen})
	if err != nil || len(certs) != 1 || !bytes.Equal(certs[0].DER, r.Chain[0]) {
		t.Fatalf("citizen certificates after the first signature: %v, %d", err, len(certs))
	}
	if v, err := e.svc.SessionView(e.ctx, c.ID, sess); err != nil || v.Certificate == nil || !strings.Contains(v.Certificate.Subject, citizen) {
		t.Errorf("view of the done transaction names certificate %+v (%v)", v.Certificate, err)
	}

	// Replaying the approval form is refused.
	_, err = e.approve(c.ID, sess, code)
	wantCode(t, err, transaction.CodeAlreadyUsed)
}

func TestCreateRefusals(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Ayuntamiento", func(s *portal.Spec) { s.Limits.MaxDocuments = 2; s.Limits.MaxDocBytes = 1000 })
	adv := e.advanced(11111111)
	basic := e.basic(22222222)
	sum := sha256.Sum256([]byte("a"))
	sum2 := sha256.Sum256([]byte("b"))
	doc := transaction.DocumentInput{Name: "a", Digest: sum[:]}
	for _, tc := range []struct {
		name string
		req  transaction.CreateRequest
		code transaction.Code
		msg  string
	}{
		{"basic citizen", transaction.CreateRequest{CitizenID: basic, Documents: []transaction.DocumentInput{doc}, OKURL: okURL, ErrorURL: errURL},
			transaction.CodeWeakRegistration, "in person"},
		{"unknown citizen", transaction.CreateRequest{CitizenID: dni(33333333), Documents: []transaction.DocumentInput{doc}, OKURL: okURL, ErrorURL: errURL},
			transaction.CodeUnknownCitizen, ""},
		{"bad DNI letter", transaction.CreateRequest{CitizenID: "12345678A", Documents: []transaction.DocumentInput{doc}, OKURL: okURL, ErrorURL: errURL},
			transaction.CodeInvalidRequest, "citizen_id"},
		{"ok URL off the allow-list", transaction.CreateRequest{CitizenID: adv, Documents: []transaction.DocumentInput{doc},
			OKURL: "https://evil.example.com/ok", ErrorURL: errURL}, transaction.CodeBadRedirect, "ok_url"},
		{"error URL prefix of an allowed one", transaction.CreateRequest{CitizenID: adv, Documents: []transaction.DocumentInput{doc},
			OKURL: okURL, ErrorURL: errURL + "/../../x"}, transaction.CodeBadRedirect, "error_url"},
		{"too many documents", transaction.CreateRequest{CitizenID: adv, Documents: []transaction.DocumentInput{doc, {Name: "b", Digest: sum2[:]}, {Name: "c", Content: []byte("c")}},
			OKURL: okURL, ErrorURL: errURL}, transaction.CodeTooManyDocuments, "at most 2"},
		{"duplicate document", transaction.CreateRequest{CitizenID: adv, Documents: []transaction.DocumentInput{doc, {Name: "again", Content: []byte("a")}},
			OKURL: okURL, ErrorURL: errURL}, transaction.CodeDuplicateDocument, "documents[1]"},
		{"bad digest length", transaction.CreateRequest{CitizenID: adv, Documents: []transaction.DocumentInput{{Name: "x", Digest: sum[:20]}},
			OKURL: okURL, ErrorURL: errURL}, transaction.CodeBadDigest, "20 bytes"},
		{"digest length of another hash", transaction.CreateRequest{CitizenID: adv, Documents: []transaction.DocumentInput{{Name: "x", Digest: sum[:], Hash: "sha512"}},
			OKURL: okURL, ErrorURL: errURL}, transaction.CodeBadDigest, "sha512"},
		{"document too large", transaction.CreateRequest{CitizenID: adv, Documents: []transaction.DocumentInput{{Name: "x", Content: make([]byte, 1001)}},
			OKURL: okURL, ErrorURL: errURL}, transaction.CodeDocumentTooLarge, "1001 bytes"},
		{"pades of something not a PDF", transaction.CreateRequest{CitizenID: adv, Documents: []transaction.DocumentInput{{Name: "x.pdf", Content: []byte("GIF89a"), Format: signer.FormatPAdES}},
			OKURL: okURL, ErrorURL: errURL}, transaction.CodeInvalidDocument, "%PDF-"},
		{"pades of a digest", transaction.CreateRequest{CitizenID: adv, Documents: []transaction.DocumentInput{{Name: "x", Digest: sum[:], Format: signer.FormatPAdES}},
			OKURL: okURL, ErrorURL: errURL}, transaction.CodeUnsupportedFormat, "whole PDF"},
		{"no documents", transaction.CreateRequest{CitizenID: adv, OKURL: okURL, ErrorURL: errURL}, transaction.CodeInvalidRequest, "documents"},
		{"name with right-to-left override", transaction.CreateRequest{CitizenID: adv, Documents: []transaction.DocumentInput{doc, {Name: "x\u202egpj.exe", Content: []byte("n")}},
			OKURL: okURL, ErrorURL: errURL}, transaction.CodeInvalidRequest, "documents[1].name"},
		{"name with NUL", transaction.CreateRequest{CitizenID: adv, Documents: []transaction.DocumentInput{doc, {Name: "a\x00b.pdf", Content: []byte("n")}},
			OKURL: okURL, ErrorURL: errURL}, transaction.CodeInvalidRequest, "documents[1].name"},
		{"name with C1 control", transaction.CreateRequest{CitizenID: adv, Documents: []transaction.DocumentInput{doc, {Name: "a\u0085b", Content: []byte("n")}},
			OKURL: okURL, ErrorURL: errURL}, transaction.CodeInvalidRequest, "documents[1].name"},
		{"name with DEL", transaction.CreateRequest{CitizenID: adv, Documents: []transaction.DocumentInput{doc, {Name: "a\x7fb", Content: []byte("n")}},
			OKURL: okURL, ErrorURL: errURL}, transaction.CodeInvalidRequest, "documents[1].name"},
		{"name with first-strong isolate", transaction.CreateRequest{CitizenID: adv, Documents: []transaction.DocumentInput{doc, {Name: "\u2068a.pdf", Content: []byte("n")}},
			OKURL: okURL, ErrorURL: errURL}, transaction.CodeInvalidRequest, "documents[1].name"},
		{"name with right-to-left mark", transaction.CreateRequest{CitizenID: adv, Documents: []transaction.DocumentInput{doc, {Name: "a\u200f.pdf", Content: []byte("n")}},
			OKURL: okURL, ErrorURL: errURL}, transaction.CodeInvalidRequest, "documents[1].name"},
		{"name with Arabic letter mark", transaction.CreateRequest{CitizenID: adv, Documents: []transaction.DocumentInput{doc, {Name: "a\u061c.pdf", Content: []byte("n")}},
			OKURL: okURL, ErrorURL: errURL}, transaction.CodeInvalidRequest, "documents[1].name"},
		{"name with invalid UTF-8", transaction.CreateRequest{CitizenID: adv, Documents: []transaction.DocumentInput{doc, {Name: "a\xffb", Content: []byte("n")}},
			OKURL: okURL, ErrorURL: errURL}, transaction.CodeInvalidRequest, "documents[1].name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := e.svc.Create(e.ctx, p, tc.req)
			if c != nil {
				t.Fatalf("created %s", c.ID)
			}
			wantCode(t, err, tc.code)
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q does not mention %q", err, tc.msg)
			}
		})
	}
	// Nothing was stored by a refused request.
	ts, err := e.svc.List(e.ctx, p.ID, "", "", 100)
	if err != nil || len(ts) != 0 {
		t.Fatalf("after refusals: %d transactions stored (%v)", len(ts), err)
	}
}

func TestWrongOTPThreeTimesFails(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Portal", nil)
	citizen := e.advanced(12345678)
	docs, _ := threeDocs(t)
	c := e.create(p, citizen, docs...)
	sess, code := e.login(c.ID, citizen)
	wrong := "000000"
	if wrong == code {
		wrong = "111111"
	}
	for i, want := range []transaction.Code{transaction.CodeOTPInvalid, transaction.CodeOTPInvalid, transaction.CodeOTPLocked} {
		_, err := e.approve(c.ID, sess, wrong)
		wantCode(t, err, want)
		if i == 1 && !strings.Contains(err.Error(), "1 try left") {
			t.Errorf("second wrong code: %q does not say one try is left", err)
		}
	}
	// Even the right code is refused now, and the portal sees failed.
	_, err := e.approve(c.ID, sess, code)
	wantCode(t, err, transaction.CodeOTPLocked)
	tx, err := e.svc.Get(e.ctx, p.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if tx.State != transaction.StateFailed || tx.ErrorCode != transaction.CodeOTPLocked {
		t.Fatalf("state %s code %s, want failed otp_locked", tx.State, tx.ErrorCode)
	}
	for _, d := range tx.Documents {
		if d.Status != transaction.DocNotProcessed {
			t.Errorf("document %d: %s, want not_processed", d.Index, d.Status)
		}
	}
}

func TestExpiredOTPAndResendLimits(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Portal", nil)
	citizen := e.advanced(12345678)
	c := e.create(p, citizen, transaction.DocumentInput{Name: "a.txt", Content: []byte("hola")})
	sess, code := e.login(c.ID, citizen)

	// The code lives 5 minutes.
	e.clock.Add(5*time.Minute + time.Second)
	_, err := e.approve(c.ID, sess, code)
	wantCode(t, err, transaction.CodeOTPExpired)

	// Resends: 3 at most, 30 s apart; each voids the one before.
	for i := 1; i <= 3; i++ {
		st, err := e.svc.Resend(e.ctx, c.ID, sess)
		if err != nil {
			t.Fatalf("resend %d: %v", i, err)
		}
		if st.ResendsLeft != 3-i {
			t.Errorf("resend %d: %d left", i, st.ResendsLeft)
		}
		_, err = e.svc.Resend(e.ctx, c.ID, sess)
		if i < 3 {
			wantCode(t, err, transaction.CodeResendTooSoon)
		} else {
			wantCode(t, err, transaction.CodeResendLimit)
		}
		e.clock.Add(31 * time.Second)
	}
	_, err = e.svc.Resend(e.ctx, c.ID, sess)
	wantCode(t, err, transaction.CodeResendLimit)
	// The first code was voided by the resends (a wrong code now, which
	// costs a try); the newest works.
	newest, _ := e.lastOTP(citizen)
	if newest == code {
		t.Skip("the CSPRNG drew the same code twice")
	}
	_, err = e.approve(c.ID, sess, code)
	wantCode(t, err, transaction.CodeOTPInvalid)
	v, err := e.approve(c.ID, sess, newest)
	if err != nil || v.State != transaction.StateDone {
		t.Fatalf("approve with the newest code: %v %+v", err, v)
	}
}

func TestOTPBoundToTransaction(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Portal", nil)
	citizen := e.advanced(12345678)
	a := e.create(p, citizen, transaction.DocumentInput{Name: "a.txt", Content: []byte("documento A")})
	b := e.create(p, citizen, transaction.DocumentInput{Name: "b.txt", Content: []byte("documento B")})
	_, codeA := e.login(a.ID, citizen)
	sessB, codeB := e.login(b.ID, citizen)
	if codeA == codeB {
		t.Skip("the CSPRNG drew the same code twice")
	}
	_, err := e.approve(b.ID, sessB, codeA)
	wantCode(t, err, transaction.CodeOTPInvalid)
	// A's session does not work on B either.
	sessA, err := e.svc.Authenticate(e.ctx, a.ID, citizen, password)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.approve(b.ID, sessA.Token, codeB)
	wantCode(t, err, transaction.CodeSessionInvalid)
	if _, err := e.approve(b.ID, sessB, codeB); err != nil {
		t.Fatalf("B with its own code: %v", err)
	}
}

func TestPortalIsolation(t *testing.T) {
	e := newEnv(t, nil)
	pa := e.portal("Portal A", nil)
	pb := e.portal("Portal B", nil)
	citizen := e.advanced(12345678)
	c := e.create(pa, citizen, transaction.DocumentInput{Name: "a.txt", Content: []byte("a")})
	_, errB := e.svc.Get(e.ctx, pb.ID, c.ID)
	wantCode(t, errB, transaction.CodeNotFound)
	_, errMissing := e.svc.Get(e.ctx, pb.ID, strings.Repeat("ab", 16))
	if errB.Error() != errMissing.Error() {
		t.Errorf("another portal's transaction (%q) is told apart from a missing one (%q)", errB, errMissing)
	}
	_, err := e.svc.Results(e.ctx, pb.ID, c.ID)
	wantCode(t, err, transaction.CodeNotFound)
	_, err = e.svc.Cancel(e.ctx, pb.ID, c.ID)
	wantCode(t, err, transaction.CodeNotFound)
	if tx, err := e.svc.Get(e.ctx, pa.ID, c.ID); err != nil || tx.State != transaction.StateCreated {
		t.Fatalf("own portal: %v %+v", err, tx)
	}
}

func TestRestartMidTransaction(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Portal", nil)
	citizen := e.advanced(12345678)
	docs, contents := threeDocs(t)
	c := e.create(p, citizen, docs...)
	sess, code := e.login(c.ID, citizen)
	e.restart()
	v, err := e.svc.SessionView(e.ctx, c.ID, sess)
	if err != nil || v.State != transaction.StateOTPSent || v.OTP == nil {
		t.Fatalf("after restart: %v %+v", err, v)
	}
	done, err := e.approve(c.ID, sess, code)
	if err != nil || done.State != transaction.StateDone {
		t.Fatalf("approve after restart: %v %+v", err, done)
	}
	r, err := e.svc.Results(e.ctx, p.ID, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	verifyResults(t, e, r, contents)
}

func TestRejectAndCancel(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Portal", nil)
	citizen := e.advanced(12345678)
	a := e.create(p, citizen, transaction.DocumentInput{Name: "a.txt", Content: []byte("a")})
	// Holding the link is not being the citizen: no rejection before
	// sign-in.
	if _, err := e.svc.Reject(e.ctx, a.ID, ""); transaction.CodeOf(err) != transaction.CodeSessionInvalid {
		t.Fatalf("reject before sign-in: %v", err)
	}
	if v, err := e.svc.View(e.ctx, a.ID); err != nil || v.State != transaction.StateCreated {
		t.Fatalf("after the refused rejection: %v %+v", err, v)
	}
	sess, code := e.login(a.ID, citizen)
	if _, err := e.svc.Reject(e.ctx, a.ID, ""); transaction.CodeOf(err) != transaction.CodeSessionInvalid {
		t.Fatalf("reject after sign-in without the session: %v", err)
	}
	v, err := e.svc.Reject(e.ctx, a.ID, sess)
	if err != nil || v.State != transaction.StateRejected || v.ReturnURL != errURL+"?transaction_id="+a.ID {
		t.Fatalf("reject: %v %+v", err, v)
	}
	_, err = e.approve(a.ID, sess, code)
	wantCode(t, err, transaction.CodeCancelledByCitizen)

	b := e.create(p, citizen, transaction.DocumentInput{Name: "b.txt", Content: []byte("b")})
	tx, err := e.svc.Cancel(e.ctx, p.ID, b.ID)
	if err != nil || tx.State != transaction.StateCancelled {
		t.Fatalf("cancel: %v %+v", err, tx)
	}
	_, err = e.svc.Authenticate(e.ctx, b.ID, citizen, password)
	wantCode(t, err, transaction.CodeCancelled)
}

func TestTransactionExpires(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Portal", nil)
	citizen := e.advanced(12345678)
	c := e.create(p, citizen, transaction.DocumentInput{Name: "a.txt", Content: []byte("a")})
	e.clock.Add(10*time.Minute + time.Second)
	e.svc.Sweep(e.ctx)
	tx, err := e.svc.Get(e.ctx, p.ID, c.ID)
	if err != nil || tx.State != transaction.StateExpired || tx.ErrorCode != transaction.CodeExpired {
		t.Fatalf("after 10 minutes: %v %+v", err, tx)
	}
	_, err = e.svc.Authenticate(e.ctx, c.ID, citizen, password)
	wantCode(t, err, transaction.CodeExpired)
}

func TestAuthenticate(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Portal", nil)
	citizen := e.advanced(12345678)
	other := e.advanced(87654321)
	c := e.create(p, citizen, transaction.DocumentInput{Name: "a.txt", Content: []byte("a")})
	_, err := e.svc.Authenticate(e.ctx, c.ID, other, password)
	wantCode(t, err, transaction.CodeCitizenMismatch)
	_, err = e.svc.Authenticate(e.ctx, c.ID, citizen, "wrong password 123")
	wantCode(t, err, transaction.CodeBadCredentials)
	_, err = e.svc.SendOTP(e.ctx, c.ID, "")
	wantCode(t, err, transaction.CodeWrongState)
	e.clock.Add(time.Second) // the wait after a wrong password
	s, err := e.svc.Authenticate(e.ctx, c.ID, citizen, password)
	if err != nil || s.View.State != transaction.StateAuthenticated {
		t.Fatalf("authenticate: %v", err)
	}
	_, err = e.svc.SendOTP(e.ctx, c.ID, "forged-session")
	wantCode(t, err, transaction.CodeSessionInvalid)
}

func TestBatchStopOnErrorAndBestEffort(t *testing.T) {
	sum := sha256.Sum256([]byte("uno"))
	docs := []transaction.DocumentInput{
		{Name: "uno", Digest: sum[:], Format: signer.FormatRaw},
		{Name: "roto.pdf", MediaType: "application/pdf", Content: []byte("%PDF-1.7 this is not a PDF at all")},
		{Name: "tres.txt", Content: []byte("tres"), Format: signer.FormatCAdES},
	}
	for _, tc := range []struct {
		stop    bool
		want    []transaction.DocStatus
		summary transaction.Summary
	}{
		{true, []transaction.DocStatus{transaction.DocSigned, transaction.DocFailed, transaction.DocAborted}, transaction.SummarySomeFailed},
		{false, []transaction.DocStatus{transaction.DocSigned, transaction.DocFailed, transaction.DocSigned}, transaction.SummarySomeFailed},
	} {
		t.Run(map[bool]string{true: "stop on error", false: "best effort"}[tc.stop], func(t *testing.T) {
			e := newEnv(t, nil)
			p := e.portal("Portal", nil)
			citizen := e.advanced(12345678)
			c, err := e.svc.Create(e.ctx, p, transaction.CreateRequest{CitizenID: citizen, Documents: docs, OKURL: okURL, ErrorURL: errURL, StopOnError: tc.stop})
			if err != nil {
				t.Fatal(err)
			}
			sess, code := e.login(c.ID, citizen)
			v, err := e.approve(c.ID, sess, code)
			if err != nil {
				t.Fatal(err)
			}
			if v.State != transaction.StateDone || v.Summary != tc.summary {
				t.Fatalf("state %s summary %s", v.State, v.Summary)
			}
			r, err := e.svc.Results(e.ctx, p.ID, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			for i, d := range r.Documents {
				if d.Status != tc.want[i] {
					t.Errorf("document %d: %s (%s: %s), want %s", i, d.Status, d.ErrorCode, d.Error, tc.want[i])
				}
				if (d.Status == transaction.DocSigned) != (len(d.Signature) > 0) {
					t.Errorf("document %d: %s with %d signature bytes", i, d.Status, len(d.Signature))
				}
			}
			if r.Documents[1].ErrorCode != transaction.CodeInvalidDocument {
				t.Errorf("broken PDF: code %s, want invalid_document", r.Documents[1].ErrorCode)
			}
			verifyResults(t, e, &transaction.Results{Chain: r.Chain, Documents: r.Documents[:1]}, [][]byte{[]byte("uno")})
		})
	}
}

func TestIdempotencyAndRateLimit(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Portal", func(s *portal.Spec) { s.Limits.RatePerMin = 3 })
	citizen := e.advanced(12345678)
	req := transaction.CreateRequest{CitizenID: citizen, Documents: []transaction.DocumentInput{{Name: "a", Content: []byte("a")}},
		OKURL: okURL, ErrorURL: errURL, IdempotencyKey: "pedido-42"}
	first, err := e.svc.Create(e.ctx, p, req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.svc.Create(e.ctx, p, req)
	if err != nil || again.ID != first.ID || !again.Replayed {
		t.Fatalf("retry with the same key: %v %+v", err, again)
	}
	req.Documents[0].Content = []byte("b")
	_, err = e.svc.Create(e.ctx, p, req)
	wantCode(t, err, transaction.CodeIdempotencyReused)
	req.IdempotencyKey = ""
	for i := 0; i < 2; i++ {
		req.Documents[0].Content = []byte{byte(i)}
		if _, err := e.svc.Create(e.ctx, p, req); err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
	}
	_, err = e.svc.Create(e.ctx, p, req)
	wantCode(t, err, transaction.CodeRateLimited)
	e.clock.Add(61 * time.Second)
	if _, err := e.svc.Create(e.ctx, p, req); err != nil {
		t.Fatalf("a minute later: %v", err)
	}
}

// TestResumeAfterCrashMidSigning leaves a transaction approved but not
// signed, as a crash right after the approval would, restarts, and lets
// the background loop's Resume finish it.
func TestResumeAfterCrashMidSigning(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Portal", nil)
	citizen := e.advanced(12345678)
	docs, contents := threeDocs(t)
	c := e.create(p, citizen, docs...)
	e.login(c.ID, citizen)
	st, err := e.db.Transaction(e.ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	st.State, st.OTPHash, st.ApprovedAt = string(transaction.StateSigning), nil, e.clock.Now()
	if err := e.db.UpdateTransaction(e.ctx, st); err != nil {
		t.Fatal(err)
	}
	e.restart()
	if err := e.svc.Resume(e.ctx); err != nil {
		t.Fatal(err)
	}
	r, err := e.svc.Results(e.ctx, p.ID, c.ID)
	if err != nil || r.Transaction.State != transaction.StateDone {
		t.Fatalf("after resume: %v %+v", err, r.Transaction)
	}
	verifyResults(t, e, r, contents)
}

// TestResumeAfterCrashBeforeTheEnd leaves a transaction in signing with
// every document's outcome stored, as a crash after the last outcome and
// before the end would: Resume ends it done without activating the key
// again, since an activation with nothing to sign would have no key.used.
func TestResumeAfterCrashBeforeTheEnd(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Portal", nil)
	citizen := e.advanced(12345678)
	docs, contents := threeDocs(t)
	c := e.create(p, citizen, docs...)
	sess, code := e.login(c.ID, citizen)
	if _, err := e.approve(c.ID, sess, code); err != nil {
		t.Fatal(err)
	}
	activations := func() int {
		recs, err := e.db.QueryAudit(e.ctx, store.AuditFilter{Events: []string{string(audit.KeyActivated)}, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return len(recs)
	}
	before := activations()
	st, err := e.db.Transaction(e.ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	st.State, st.EndedAt, st.Summary = string(transaction.StateSigning), time.Time{}, ""
	if err := e.db.UpdateTransaction(e.ctx, st); err != nil {
		t.Fatal(err)
	}
	e.restart()
	if err := e.svc.Resume(e.ctx); err != nil {
		t.Fatal(err)
	}
	r, err := e.svc.Results(e.ctx, p.ID, c.ID)
	if err != nil || r.Transaction.State != transaction.StateDone {
		t.Fatalf("after resume: %v %+v", err, r.Transaction)
	}
	verifyResults(t, e, r, contents)
	if n := activations(); n != before {
		t.Fatalf("%d key.activated records after resuming a transaction with nothing left to sign, want %d", n, before)
	}
}

// TestRetentionPurgesDocuments keeps documents and results for the
// retention period after the end, then only the digests and outcomes.
func TestRetentionPurgesDocuments(t *testing.T) {
	e := newEnv(t, func(o *transaction.Options) { o.Retention = 24 * time.Hour })
	p := e.portal("Portal", nil)
	citizen := e.advanced(12345678)
	done := e.create(p, citizen, transaction.DocumentInput{Name: "a.txt", Content: []byte("a")})
	sess, code := e.login(done.ID, citizen)
	if _, err := e.approve(done.ID, sess, code); err != nil {
		t.Fatal(err)
	}
	expired := e.create(p, citizen, transaction.DocumentInput{Name: "b.txt", Content: []byte("b")})
	e.clock.Add(11 * time.Minute)
	e.svc.Sweep(e.ctx)
	e.clock.Add(23 * time.Hour)
	e.svc.Purge(e.ctx)
	if _, err := e.svc.Results(e.ctx, p.ID, done.ID); err != nil {
		t.Fatalf("within retention: %v", err)
	}
	e.clock.Add(2 * time.Hour)
	e.svc.Purge(e.ctx)
	_, err := e.svc.Results(e.ctx, p.ID, done.ID)
	wantCode(t, err, transaction.CodeResultsPurged)
	tx, err := e.svc.Get(e.ctx, p.ID, done.ID)
	if err != nil || tx.State != transaction.StateDone || tx.Documents[0].Status != transaction.DocSigned || len(tx.Documents[0].Digest) != 32 {
		t.Fatalf("state after the purge: %v %+v", err, tx)
	}
	docs, err := e.db.Documents(e.ctx, done.ID, true)
	if err != nil || docs[0].Content != nil || docs[0].Result != nil {
		t.Fatalf("stored document after the purge: %v %+v", err, docs[0])
	}
	// An expired transaction is purged too once its retention ends; a
	// live one keeps its documents.
	live := e.create(p, citizen, transaction.DocumentInput{Name: "c.txt", Content: []byte("c")})
	e.svc.Purge(e.ctx)
	docs, err = e.db.Documents(e.ctx, expired.ID, true)
	if err != nil || docs[0].Content != nil {
		t.Fatalf("expired transaction's document: %v %q", err, docs[0].Content)
	}
	docs, err = e.db.Documents(e.ctx, live.ID, true)
	if err != nil || string(docs[0].Content) != "c" {
		t.Fatalf("live transaction's document: %v %q", err, docs[0].Content)
	}
}

// The page's view before sign-in names no one: the masked DNI/NIE only,
// no certificate (its subject is the citizen's full name and DNI/NIE) and
// no masked mobile; the signed-in citizen's session view has them.
func TestViewBeforeSignInHidesTheCitizen(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Portal", nil)
	citizen := e.advanced(12345678)
	c := e.create(p, citizen, transaction.DocumentInput{Name: "a.txt", Content: []byte("a")})
	sess, _ := e.login(c.ID, citizen)
	for _, tc := range []struct {
		name     string
		session  string
		signedIn bool
	}{
		{"no session", "", false},
		{"forged session", "forged", false},
		{"the citizen's session", sess, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := e.svc.SessionView(e.ctx, c.ID, tc.session)
			if err != nil {
				t.Fatal(err)
			}
			if v.CitizenMasked != "****"+citizen[len(citizen)-4:] || v.PortalName != "Portal" || len(v.Documents) != 1 {
				t.Errorf("view: %+v", v)
			}
			if v.SignedIn != tc.signedIn || (v.Certificate != nil) != tc.signedIn || (v.OTP != nil) != tc.signedIn {
				t.Errorf("signed in %v: certificate %+v, otp %+v", v.SignedIn, v.Certificate, v.OTP)
			}
		})
	}
	v, err := e.svc.View(e.ctx, c.ID)
	if err != nil || v.SignedIn || v.Certificate != nil || v.OTP != nil {
		t.Fatalf("View: %v %+v", err, v)
	}
}

// Wrong passwords on the page delay the next try: "try again later",
// never a lock that says the DNI/NIE is registered.
func TestAuthenticateThrottled(t *testing.T) {
	e := newEnv(t, nil)
	p := e.portal("Portal", nil)
	citizen := e.advanced(12345678)
	c := e.create(p, citizen, transaction.DocumentInput{Name: "a.txt", Content: []byte("a")})
	_, err := e.svc.Authenticate(e.ctx, c.ID, citizen, "Wrong-Password-1")
	wantCode(t, err, transaction.CodeBadCredentials)
	_, err = e.svc.Authenticate(e.ctx, c.ID, citizen, password)
	wantCode(t, err, transaction.CodeLoginThrottled)
	if ee := errs.As(err); ee == nil || ee.Kind != errs.TooMany || ee.RetryAfter <= 0 {
		t.Fatalf("throttled login at the edge: %+v", ee)
	}
}
