package transaction_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/firma-cloud/firma/api/rest/portalhttp"
	"github.com/firma-cloud/firma/portal"
	"github.com/firma-cloud/firma/transaction"
)

// renderDark renders page 1 of pdf at 72 dpi with pdftoppm and counts
// the pixels darker than mid-grey inside r (PDF points from the bottom
// left, one point one pixel).
func renderDark(t *testing.T, pdf []byte, r [4]float64) int {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.pdf")
	os.WriteFile(in, pdf, 0o600)
	if out, err := run(t, "pdftoppm", "-r", "72", "-gray", "-f", "1", "-l", "1", "-singlefile", in, filepath.Join(dir, "page")); err != nil {
		t.Fatalf("pdftoppm: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "page.pgm"))
	if err != nil {
		t.Fatal(err)
	}
	var w, h, maxv int
	if _, err := fmt.Sscanf(string(b), "P5\n%d %d\n%d\n", &w, &h, &maxv); err != nil {
		t.Fatal(err)
	}
	px := b[len(fmt.Sprintf("P5\n%d %d\n%d\n", w, h, maxv)):]
	n := 0
	for y := int(r[1]); y < int(r[3]); y++ {
		for x := int(r[0]); x < int(r[2]); x++ {
			if row := h - 1 - y; row >= 0 && x < w && px[row*w+x] < 128 {
				n++
			}
		}
	}
	return n
}

// TestVisibleSignatureREST asks through POST /api/v1/transactions for a
// visible PAdES signature with a PNG image and a reason, and for a PDF
// without one: the approved results pass pdfsig and qpdf --check; the
// visible one draws in its box (rendered with pdftoppm), the invisible
// one leaves the page blank. What cannot be drawn is refused at
// creation, naming the field. Cost: one approval of two PDFs.
func TestVisibleSignatureREST(t *testing.T) {
	e := newEnv(t, nil)
	pt, err := e.portals.Create(e.ctx, portal.Spec{Name: "Sede", RedirectURLs: []string{okURL, errURL}, IssueAPIKey: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(portalhttp.NewHandler(e.svc, e.portals, nil, 0))
	defer srv.Close()
	rc := &restClient{t: t, url: srv.URL, key: pt.APIKey}
	citizen := e.advanced(34567890)
	pdf := readFile(t, "simple.pdf")
	form, err := os.ReadFile("../signer/testdata/form.pdf")
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewGray(image.Rect(0, 0, 40, 40)) // black
	var pngBytes bytes.Buffer
	png.Encode(&pngBytes, img)
	box := [4]float64{300, 100, 540, 170}
	if n := renderDark(t, pdf, box); n != 0 {
		t.Fatalf("the blank page has %d dark pixels in the box", n)
	}
	visible := &transaction.Appearance{Page: 1, Rect: box, Reason: "Conformidad con la resolución", Image: pngBytes.Bytes()}
	in := portalhttp.CreateJSON{SubjectID: citizen, OKURL: okURL, ErrorURL: errURL, Documents: []portalhttp.DocumentJSON{
		{Name: "visible.pdf", MediaType: "application/pdf", Content: pdf, VisibleSignature: visible},
		{Name: "invisible.pdf", MediaType: "application/pdf", Content: form}}}
	resp, body := rc.do("POST", "/api/v1/transactions", in, nil)
	var created struct {
		ID string `json:"transaction_id"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &created) != nil || created.ID == "" {
		t.Fatalf("create: %d %s", resp.StatusCode, body)
	}
	sess, code := e.login(created.ID, citizen)
	if _, err := e.approve(created.ID, sess, code); err != nil {
		t.Fatal(err)
	}
	r, err := e.svc.Results(e.ctx, pt.Portal.ID, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	verifyResults(t, e, r, [][]byte{pdf, form})
	if n := renderDark(t, r.Documents[0].Signature, [4]float64{box[0] + 6, box[1] + 6, box[0] + 60, box[3] - 6}); n < 1000 {
		t.Errorf("visible signature: %d dark pixels where its image is", n)
	}
	if n := renderDark(t, r.Documents[0].Signature, [4]float64{box[0] + 70, box[1], box[2], box[3]}); n < 50 {
		t.Errorf("visible signature: %d dark pixels where its text is", n)
	}
	if !bytes.Contains(r.Documents[0].Signature, []byte("(Reason: Conformidad con la resoluci")) {
		t.Error("the reason is not in the visible signature")
	}
	if n, before := renderDark(t, r.Documents[1].Signature, box), renderDark(t, form, box); n != before {
		t.Errorf("invisible signature: %d dark pixels in the box, %d before signing", n, before)
	}

	for _, tc := range []struct {
		name, field string
		doc         portalhttp.DocumentJSON
	}{
		{"not pades", "documents[0].visible_signature", portalhttp.DocumentJSON{Name: "a.txt", Content: []byte("a"), Format: "cades",
			VisibleSignature: &transaction.Appearance{}}},
		{"bad image", "documents[0].visible_signature.image", portalhttp.DocumentJSON{Name: "a.pdf", MediaType: "application/pdf", Content: pdf,
			VisibleSignature: &transaction.Appearance{Image: []byte("GIF89a")}}},
		{"tiny box", "documents[0].visible_signature.rect", portalhttp.DocumentJSON{Name: "a.pdf", MediaType: "application/pdf", Content: pdf,
			VisibleSignature: &transaction.Appearance{Rect: [4]float64{10, 10, 12, 12}}}},
		{"negative page", "documents[0].visible_signature.page", portalhttp.DocumentJSON{Name: "a.pdf", MediaType: "application/pdf", Content: pdf,
			VisibleSignature: &transaction.Appearance{Page: -1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := portalhttp.CreateJSON{SubjectID: citizen, OKURL: okURL, ErrorURL: errURL, Documents: []portalhttp.DocumentJSON{tc.doc}}
			resp, body := rc.do("POST", "/api/v1/transactions", in, nil)
			p := problem(t, resp, body, http.StatusBadRequest, transaction.CodeInvalidRequest)
			if p.Field != tc.field {
				t.Errorf("field %q, want %q", p.Field, tc.field)
			}
		})
	}
}
