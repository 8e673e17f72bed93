package signer_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/verify/testpki"
)

// testImage is a w x h picture, black inside a transparent (PNG) or
// white (JPEG) border of 4 pixels.
func testImage(t *testing.T, format string, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.NRGBA{0, 0, 0, 0xff}
			if x < 4 || y < 4 || x >= w-4 || y >= h-4 {
				c = color.NRGBA{0xff, 0xff, 0xff, 0}
				if format == "jpeg" {
					c.A = 0xff
				}
			}
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	var err error
	if format == "png" {
		err = png.Encode(&b, img)
	} else {
		err = jpeg.Encode(&b, img, &jpeg.Options{Quality: 90})
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestPAdESVisibleImage draws visible signatures with a PNG (with
// transparency, a soft mask) and a JPEG image and a custom text, renders
// the page with pdftoppm and finds the
// image's dark pixels in the left of the box and the text's in the
// rest; pdfsig says the signature is valid and qpdf --check is clean.
// Bad images are refused. Cost: one test PKI, three signatures, a
// dozen tool runs.
func TestPAdESVisibleImage(t *testing.T) {
	ctx := context.Background()
	pki := testpki.New(t)
	dir := t.TempDir()
	nss := nssDB(t, testpki.WritePEM(t, dir, "root.pem", pki.Root.Cert))
	key, chain := pki.User(t, keystore.ECP256, "MARIA GARCIA LOPEZ")
	doc, err := os.ReadFile("testdata/simple.pdf")
	if err != nil {
		t.Fatal(err)
	}
	box := [4]float64{300, 100, 540, 170}
	imgBox := [4]float64{box[0] + 6, box[1] + 6, box[0] + 60, box[3] - 6}
	textBox := [4]float64{box[0] + 70, box[1], box[2], box[3]}
	w, h, blank := render(t, doc)
	if dark(w, h, blank, box) != 0 {
		t.Fatal("the unsigned page has dark pixels in the box")
	}
	for _, tc := range []struct {
		name, format, text string
	}{{"png with alpha", "png", ""}, {"jpeg and text", "jpeg", "Firmado por $$SUBJECTCN$$\nel $$SIGNDATE=dd/MM/yyyy$$"}} {
		t.Run(tc.name, func(t *testing.T) {
			po := signer.PDFOptions{Visible: true, Rect: box, Reason: "Conformidad", Text: tc.text, Image: testImage(t, tc.format, 64, 64)}
			at := time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)
			signed, err := signer.PAdES(ctx, doc, key, chain, signer.Options{SigningTime: at}, po)
			if err != nil {
				t.Fatal(err)
			}
			w, h, px := render(t, signed)
			if n := dark(w, h, px, imgBox); n < 1500 {
				t.Errorf("%d dark pixels where the image is, want most of its 54x58", n)
			}
			if n := dark(w, h, px, textBox); n < 50 {
				t.Errorf("%d dark pixels where the text is", n)
			}
			if tc.text != "" && !bytes.Contains(signed, []byte("(el 08/12/2026) Tj")) {
				t.Error("the custom text's date placeholder was not filled")
			}
			if o, err := qpdfCheck(t, signed); err != nil || !strings.Contains(o, "No syntax or stream encoding errors") {
				t.Fatalf("qpdf --check: %v\n%s", err, o)
			}
			st, o := pdfsig(t, nss, signed)
			if len(st) != 1 || st[0] != "Signature is Valid." {
				t.Fatalf("pdfsig: %q\n%s", st, o)
			}
			os.WriteFile(filepath.Join(dir, tc.format+".pdf"), signed, 0o600)
		})
	}
	for name, img := range map[string][]byte{
		"not an image": []byte("GIF89a nada"),
		"too large":    testImage(t, "png", 4096, 8),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := signer.PAdES(ctx, doc, key, chain, signer.Options{}, signer.PDFOptions{Visible: true, Image: img})
			if !errors.Is(err, signer.ErrImage) {
				t.Fatalf("%v, want ErrImage", err)
			}
		})
	}
}
