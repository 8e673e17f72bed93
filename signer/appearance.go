package signer

import (
	"bytes"
	"compress/zlib"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // DecodeConfig of the JPEGs embedded as they are
	"image/png"
	"strings"
	"time"

	"github.com/firma-cloud/firma/errs"
)

// ErrImage reports a signature image that cannot be used.
var ErrImage = errs.Sentinel(errs.Invalid, "bad_image", "bad signature image")

// Limits of a signature image: it is drawn in a box of a few hundred
// points, so anything larger is a mistake or an attack.
const (
	MaxImageBytes  = 1 << 20
	maxImagePixels = 2048
)

// pdfImage is an image XObject ready to write: JPEG as it came
// (DCTDecode), PNG decoded and deflated, its alpha as a soft mask.
type pdfImage struct {
	w, h       int
	colorSpace string
	filter     string
	data       []byte
	smask      []byte // deflated 8-bit alpha, nil when opaque
}

// loadImage reads a PNG or JPEG signature image.
func loadImage(b []byte) (*pdfImage, error) {
	if len(b) > MaxImageBytes {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrImage, len(b), MaxImageBytes)
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: not a PNG or JPEG: %v", ErrImage, err)
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > maxImagePixels || cfg.Height > maxImagePixels {
		return nil, fmt.Errorf("%w: %dx%d pixels, at most %d on a side", ErrImage, cfg.Width, cfg.Height, maxImagePixels)
	}
	switch format {
	case "jpeg":
		// Embedded as it is: PDF's DCTDecode reads baseline and
		// progressive JPEGs. CMYK ones (Adobe's inverted) are refused.
		cs := map[color.Model]string{color.YCbCrModel: "DeviceRGB", color.GrayModel: "DeviceGray"}[cfg.ColorModel]
		if cs == "" {
			return nil, fmt.Errorf("%w: CMYK JPEG: use an RGB or greyscale one", ErrImage)
		}
		return &pdfImage{w: cfg.Width, h: cfg.Height, colorSpace: cs, filter: "DCTDecode", data: b}, nil
	case "png":
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrImage, err)
		}
		r := img.Bounds()
		rgb := make([]byte, 0, 3*r.Dx()*r.Dy())
		alpha := make([]byte, 0, r.Dx()*r.Dy())
		opaque := true
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				c := color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
				rgb = append(rgb, c.R, c.G, c.B)
				alpha = append(alpha, c.A)
				opaque = opaque && c.A == 0xff
			}
		}
		out := &pdfImage{w: r.Dx(), h: r.Dy(), colorSpace: "DeviceRGB", filter: "FlateDecode", data: deflate(rgb)}
		if !opaque {
			out.smask = deflate(alpha)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: %s: want PNG or JPEG", ErrImage, format)
}

// CheckImage tells whether b can be a signature image (PNG or JPEG,
// within the limits).
func CheckImage(b []byte) error {
	_, err := loadImage(b)
	return err
}

func deflate(b []byte) []byte {
	var out bytes.Buffer
	w := zlib.NewWriter(&out)
	w.Write(b) // a bytes.Buffer does not fail
	w.Close()
	return out.Bytes()
}

// appearanceLines is the text of a visible signature: po.Text with its
// placeholders filled, or who signed, when, why and where.
func appearanceLines(po PDFOptions, at time.Time) []string {
	if po.Text == "" {
		lines := []string{"Signed by: " + po.Name, "Date: " + at.Format("2006-01-02 15:04:05 MST")}
		if po.Reason != "" {
			lines = append(lines, "Reason: "+po.Reason)
		}
		if po.Location != "" {
			lines = append(lines, "Location: "+po.Location)
		}
		return lines
	}
	t := strings.ReplaceAll(po.Text, "$$SUBJECTCN$$", po.Name)
	t = strings.ReplaceAll(t, "$$REASON$$", po.Reason)
	t = strings.ReplaceAll(t, "$$LOCATION$$", po.Location)
	// $$SIGNDATE=pattern$$ with the Java date letters clients write.
	for {
		i := strings.Index(t, "$$SIGNDATE=")
		if i < 0 {
			break
		}
		j := strings.Index(t[i+len("$$SIGNDATE="):], "$$")
		if j < 0 {
			break
		}
		pat := t[i+len("$$SIGNDATE=") : i+len("$$SIGNDATE=")+j]
		layout := strings.NewReplacer("yyyy", "2006", "yy", "06", "MM", "01", "dd", "02", "HH", "15", "mm", "04", "ss", "05").Replace(pat)
		t = t[:i] + at.Format(layout) + t[i+len("$$SIGNDATE=")+j+2:]
	}
	t = strings.ReplaceAll(t, "\r\n", "\n")
	return strings.Split(t, "\n")
}
