package transaction

import (
	"encoding/json"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/firma-cloud/firma/signer"
)

// Appearance asks for a visible PAdES signature: where it goes and what
// it shows. Without one a PDF gets an invisible signature.
type Appearance struct {
	// Page is 1-based; 0 means the first page.
	Page int `json:"page,omitempty"`
	// Rect is the box, in PDF points from the page's bottom left: lower
	// left x, y, upper right x, y. Zero means a 220x60 box at the bottom
	// left of the page.
	Rect [4]float64 `json:"rect,omitzero"`
	// Text replaces the default lines (signer name, date, reason); "\n"
	// breaks lines and $$SUBJECTCN$$, $$REASON$$, $$LOCATION$$ and
	// $$SIGNDATE=dd/MM/yyyy$$ are filled in.
	Text string `json:"text,omitempty"`
	// Reason and Location go in the signature dictionary and the default
	// text; an empty Reason keeps firma's.
	Reason   string `json:"reason,omitempty"`
	Location string `json:"location,omitempty"`
	// Image is a PNG or JPEG drawn at the left of the box.
	Image []byte `json:"image,omitempty"`
}

// Limits of an appearance's fields.
const (
	maxAppearanceText = 1000
	maxAppearanceWord = 200
)

// check refuses what would fail at signing, after the citizen approved.
func (a *Appearance) check(field string) error {
	field += ".visible_signature"
	if a.Page < 0 || a.Page > 100000 {
		return invalid(field+".page", "must be 1 or more (0: the first page)")
	}
	if a.Rect != ([4]float64{}) {
		for _, v := range a.Rect {
			if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > 14400 {
				return invalid(field+".rect", "coordinates must be numbers within a page (at most 14400 points)")
			}
		}
		if a.Rect[2]-a.Rect[0] < 20 || a.Rect[3]-a.Rect[1] < 10 {
			return invalid(field+".rect", "want lower-left x, y and upper-right x, y, at least 20 by 10 points")
		}
	}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"text", a.Text, maxAppearanceText}, {"reason", a.Reason, maxAppearanceWord}, {"location", a.Location, maxAppearanceWord}} {
		if !utf8.ValidString(f.v) || utf8.RuneCountInString(f.v) > f.max {
			return invalid(field+"."+f.name, "at most %d characters of UTF-8", f.max)
		}
	}
	if len(a.Image) > 0 {
		if err := signer.CheckImage(a.Image); err != nil {
			return invalid(field+".image", "%v", err)
		}
	}
	return nil
}

// pdfOptions puts a stored appearance (JSON) on the signature's options.
func pdfOptions(po signer.PDFOptions, stored []byte) (signer.PDFOptions, error) {
	if len(stored) == 0 {
		return po, nil
	}
	var a Appearance
	if err := json.Unmarshal(stored, &a); err != nil {
		return po, fmt.Errorf("stored visible signature: %w", err)
	}
	po.Visible, po.Page, po.Rect, po.Text, po.Location, po.Image = true, a.Page, a.Rect, a.Text, a.Location, a.Image
	if a.Reason != "" {
		po.Reason = a.Reason
	}
	return po, nil
}
