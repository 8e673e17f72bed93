package verify_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/verify"
	"github.com/firma-cloud/firma/verify/testpki"
)

func TestPDF(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	v := newVerifier(t, pki, nil)
	doc, err := os.ReadFile("../signer/testdata/simple.pdf")
	if err != nil {
		t.Fatal(err)
	}
	key, chain := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	key2, chain2 := pki.User(t, keystore.RSA2048, "LUIS MARTIN")
	opt := signer.Options{Level: signer.LevelT, Timestamper: pki.Timestamper(t)}
	once, err := signer.PAdES(ctx, doc, key, chain, opt, signer.PDFOptions{Visible: true})
	if err != nil {
		t.Fatal(err)
	}
	twice, err := signer.PAdES(ctx, once, key2, chain2, signer.Options{}, signer.PDFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	stamped, err := signer.DocumentTimestamp(ctx, twice, pki.Timestamper(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	// One byte of the first page's text, inside both signed ranges.
	at := len("%PDF-1.7\n") + 400
	tests := []struct {
		name     string
		pdf      []byte
		verdicts []verify.Verdict
		levels   []string
		whole    []bool
	}{
		{"signed once", once, []verify.Verdict{verify.Valid}, []string{"B-T"}, []bool{true}},
		{"signed twice", twice, []verify.Verdict{verify.Valid, verify.Valid}, []string{"B-T", "B-B"}, []bool{false, true}},
		{"changed after signing", flip(twice, at), []verify.Verdict{verify.Invalid, verify.Invalid}, []string{"B-T", "B-B"}, []bool{false, true}},
		{"document timestamp", stamped, []verify.Verdict{verify.Valid, verify.Valid, verify.Valid}, []string{"B-T", "B-B", ""}, []bool{false, false, true}},
		{"document timestamp, changed", flip(stamped, at), []verify.Verdict{verify.Invalid, verify.Invalid, verify.Invalid}, []string{"B-T", "B-B", ""}, []bool{false, false, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := v.PDF(ctx, tc.pdf)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Signatures) != len(tc.verdicts) {
				t.Fatalf("%d signatures, want %d", len(r.Signatures), len(tc.verdicts))
			}
			for i, s := range r.Signatures {
				if s.Verdict != tc.verdicts[i] || s.Level != tc.levels[i] || s.CoversWholeDocument == nil || *s.CoversWholeDocument != tc.whole[i] {
					t.Errorf("signature %d (%s): verdict %s level %s whole %v; checks %+v", i, s.Field, s.Verdict, s.Level, s.CoversWholeDocument, s.Checks)
				}
				if tc.levels[i] == "" {
					if s.Format != verify.FormatDocTimestamp || (s.Verdict == verify.Valid && s.TimestampTime.IsZero()) {
						t.Errorf("document timestamp %d: format %q time %v", i, s.Format, s.TimestampTime)
					}
					continue
				}
				if s.Format != verify.FormatPAdES || s.Field == "" || s.SigningTime.IsZero() {
					t.Errorf("signature %d: format %q field %q signing time %v", i, s.Format, s.Field, s.SigningTime)
				}
			}
		})
	}

	// A PDF that another tool signed and we did not: pdfsig's own output
	// cannot be produced here without an NSS key, so the unsigned and
	// malformed cases stand for outside input.
	if _, err := v.PDF(ctx, doc); !errors.Is(err, verify.ErrNoSignature) {
		t.Errorf("unsigned PDF: %v", err)
	}
	// Files on which the PDF library alone would loop forever.
	malformed := [][]byte{nil, []byte("%PDF-1.7\ngarbage"), twice[:len(twice)/2]}
	for _, f := range []string{"cyclic-page-tree.pdf", "objstm-extends-cycle.pdf", "objstm-huge-n.pdf"} {
		b, err := os.ReadFile("../signer/testdata/" + f)
		if err != nil {
			t.Fatal(err)
		}
		malformed = append(malformed, b)
	}
	for _, bad := range malformed {
		if r, err := v.PDF(ctx, bad); err == nil && r.Verdict == verify.Valid {
			t.Errorf("malformed PDF reported valid")
		}
	}
}

func FuzzPDF(f *testing.F) {
	doc, err := os.ReadFile("../signer/testdata/simple.pdf")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(doc)
	v, err := verify.New(verify.Config{Roots: testpki.Pool()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if r, err := v.PDF(context.Background(), in); err == nil && r.Verdict == verify.Valid {
			t.Fatal("random input verified as valid")
		}
	})
}

func FuzzCAdES(f *testing.F) {
	f.Add([]byte{0x30, 0x03, 0x06, 0x01, 0x00})
	v, err := verify.New(verify.Config{Roots: testpki.Pool()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if r, err := v.CAdES(context.Background(), in, nil); err == nil && r.Verdict == verify.Valid {
			t.Fatal("random input verified as valid")
		}
	})
}

// update appends an incremental update defining objs (number -> body) to
// doc, with a classic xref section chained to doc's.
func update(t *testing.T, doc []byte, objs map[int]string) []byte {
	t.Helper()
	var startxref, size int
	i := bytes.LastIndex(doc, []byte("startxref"))
	if _, err := fmt.Sscanf(string(doc[i:]), "startxref\n%d", &startxref); err != nil {
		t.Fatal(err)
	}
	j := bytes.LastIndex(doc, []byte("/Size "))
	if _, err := fmt.Sscanf(string(doc[j:]), "/Size %d", &size); err != nil {
		t.Fatal(err)
	}
	out := bytes.Clone(doc)
	nums := make([]int, 0, len(objs))
	for n := range objs {
		nums = append(nums, n)
		size = max(size, n+1)
	}
	sort.Ints(nums)
	offs := map[int]int{}
	for _, n := range nums {
		offs[n] = len(out)
		out = fmt.Appendf(out, "%d 0 obj\n%s\nendobj\n", n, objs[n])
	}
	x := len(out)
	out = append(out, "xref\n"...)
	for _, n := range nums {
		out = fmt.Appendf(out, "%d 1\n%010d 00000 n\r\n", n, offs[n])
	}
	root := regexp.MustCompile(`/Root (\d+ \d+ R)`).FindAllSubmatch(doc, -1)
	out = fmt.Appendf(out, "trailer\n<</Size %d /Prev %d /Root %s>>\nstartxref\n%d\n%%%%EOF\n", size, startxref, root[len(root)-1][1], x)
	return out
}

// Updates appended after a signature that change what the pages show are
// caught, though the signature itself still verifies (pdfsig only says
// "Not total document signed").
func TestPDFLaterChanges(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	v := newVerifier(t, pki, nil)
	doc, err := os.ReadFile("../signer/testdata/simple.pdf")
	if err != nil {
		t.Fatal(err)
	}
	key, chain := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	signed, err := signer.PAdES(ctx, doc, key, chain, signer.Options{}, signer.PDFOptions{})
	if err != nil {
		t.Fatal(err)
	}
	twice, err := signer.PAdES(ctx, signed, key, chain, signer.Options{}, signer.PDFOptions{Visible: true})
	if err != nil {
		t.Fatal(err)
	}
	text := "BT /F1 18 Tf 72 770 Td (Importe: 1.000.000 EUR) Tj ET\n"
	newContent := update(t, signed, map[int]string{4: fmt.Sprintf("<< /Length %d >>\nstream\n%sendstream", len(text), text)})
	// The page as the signature left it, with a note added to its annotations.
	page := regexp.MustCompile(`(?s)3 0 obj\n(.*?)\nendobj`).FindAllSubmatch(signed, -1)
	pageDict := regexp.MustCompile(`/Annots\s*\[`).ReplaceAllLiteralString(string(page[len(page)-1][1]), "/Annots [60 0 R ")
	if !strings.Contains(pageDict, "60 0 R") {
		t.Fatalf("no /Annots in the signed page: %s", pageDict)
	}
	newAnnot := update(t, signed, map[int]string{3: pageDict,
		60: "<< /Type /Annot /Subtype /FreeText /Rect [72 700 400 740] /Contents (Aprobado) /DA (/Helv 12 Tf 0 g) >>"})

	// The attacks are well-formed PDFs that readers display changed.
	for _, attack := range [][]byte{newContent, newAnnot} {
		path := filepath.Join(t.TempDir(), "attack.pdf")
		if err := os.WriteFile(path, attack, 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("qpdf", "--check", path).CombinedOutput(); err != nil {
			t.Fatalf("qpdf --check on the changed PDF: %v\n%s", err, out)
		}
	}
	tests := []struct {
		name    string
		pdf     []byte
		want    verify.Status
		reason  string
		verdict verify.Verdict
	}{
		{"whole document", signed, verify.Passed, "no update follows", verify.Valid},
		{"signed again", twice, verify.Passed, "left every page", verify.Valid},
		{"page content replaced", newContent, verify.Failed, "page 1 shows other content", verify.Invalid},
		{"annotation added", newAnnot, verify.Failed, "annotations other than signature fields", verify.Invalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := v.PDF(ctx, tc.pdf)
			if err != nil {
				t.Fatal(err)
			}
			s := r.Signatures[0]
			var c verify.Check
			for _, x := range s.Checks {
				if x.Name == verify.CheckChanges {
					c = x
				}
			}
			if c.Status != tc.want || !strings.Contains(c.Reason, tc.reason) || s.Verdict != tc.verdict {
				t.Fatalf("later-changes %s %q, verdict %s; want %s %q %s; checks %+v", c.Status, c.Reason, s.Verdict, tc.want, tc.reason, tc.verdict, s.Checks)
			}
			if statuses(s)[verify.CheckIntegrity] != verify.Passed {
				t.Errorf("the signature itself should still verify: %+v", s.Checks)
			}
		})
	}
}
