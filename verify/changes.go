package verify

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// CheckChanges is the PAdES check that incremental updates after a
// signature left what the pages show alone.
const CheckChanges = "later-changes"

// maxStreamBytes bounds one decoded stream read for the comparison, so a
// compression bomb cannot exhaust memory.
const maxStreamBytes = 64 << 20

// pageFingerprint is what a page shows: its content streams, the form
// XObjects it draws, and its annotations other than signature widgets.
type pageFingerprint struct {
	content [32]byte
	annots  int
}

// laterChanges compares the revision a signature covers, doc[:end], with
// the whole file. Signing again, adding a document timestamp or filling a
// signature field only touch the catalog, the AcroForm and signature
// widgets; a change of page content, of the XObjects a page draws, of the
// page count or of other annotations is what an attacker appending an
// update would need, and is reported as failed.
func laterChanges(doc []byte, end int64) (Status, string) {
	before, err := fingerprints(doc[:end])
	if err != nil {
		return Indeterminate, "cannot read the signed revision to compare: " + err.Error()
	}
	after, err := fingerprints(doc)
	if err != nil {
		return Indeterminate, "cannot read the final revision to compare: " + err.Error()
	}
	if len(before) != len(after) {
		return Failed, fmt.Sprintf("pages were added or removed after signing: %d signed, %d now", len(before), len(after))
	}
	for i := range before {
		switch {
		case before[i].content != after[i].content:
			return Failed, fmt.Sprintf("page %d shows other content than the signed revision", i+1)
		case before[i].annots != after[i].annots:
			return Failed, fmt.Sprintf("page %d has %d annotations other than signature fields, the signed revision %d", i+1, after[i].annots, before[i].annots)
		}
	}
	return Passed, "later updates left every page's content and annotations as signed (only signatures, timestamps or form data were added)"
}

func fingerprints(doc []byte) ([]pageFingerprint, error) {
	ctx, err := readContext(doc)
	if err != nil {
		return nil, err
	}
	xt := ctx.XRefTable
	pages, err := pageList(xt, catalog(ctx))
	if err != nil {
		return nil, err
	}
	var fps []pageFingerprint
	for n, p := range pages {
		i := n + 1
		h := sha256.New()
		if err := streams(h, xt, p["Contents"], 0); err != nil {
			return nil, fmt.Errorf("page %d: %w", i, err)
		}
		// Form XObjects the page draws, one level deep, by name.
		// Bounded: a malformed page tree may loop through /Parent.
		var res types.Dict
		for d, depth := p, 0; d != nil && res == nil && depth < 64; d, depth = dict(xt, d["Parent"]), depth+1 {
			res = dict(xt, d["Resources"])
		}
		xo := dict(xt, res["XObject"])
		names := make([]string, 0, len(xo))
		for k := range xo {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			fmt.Fprintf(h, "\x00/%s\x00", k)
			if err := streams(h, xt, xo[k], 0); err != nil {
				return nil, fmt.Errorf("page %d XObject %s: %w", i, k, err)
			}
		}
		fp := pageFingerprint{}
		copy(fp.content[:], h.Sum(nil))
		for _, ao := range array(xt, p["Annots"]) {
			a := dict(xt, ao)
			ft := name(xt, a["FT"])
			if ft == "" {
				ft = name(xt, dict(xt, a["Parent"])["FT"])
			}
			if name(xt, a["Subtype"]) == "Widget" && ft == "Sig" {
				continue
			}
			fp.annots++
		}
		fps = append(fps, fp)
	}
	return fps, nil
}

// streams writes the decoded bytes of a stream or array of streams.
func streams(w io.Writer, xt *model.XRefTable, o types.Object, depth int) error {
	if depth > 4 {
		return errors.New("content arrays nested too deep")
	}
	if a := array(xt, o); a != nil {
		for _, x := range a {
			if err := streams(w, xt, x, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	sd, _, err := xt.DereferenceStreamDict(o)
	if err != nil || sd == nil {
		return nil // absent or not a stream: nothing drawn
	}
	if err := sd.DecodeWithLimit(maxStreamBytes); err != nil {
		return err
	}
	_, err = w.Write(sd.Content)
	return err
}
