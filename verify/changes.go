package verify

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"github.com/digitorus/pdf"
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

func fingerprints(doc []byte) (fps []pageFingerprint, err error) {
	// The PDF library panics on malformed input.
	defer func() {
		if r := recover(); r != nil {
			fps, err = nil, fmt.Errorf("%v", r)
		}
	}()
	r, err := pdf.NewReader(bytes.NewReader(doc), int64(len(doc)))
	if err != nil {
		return nil, err
	}
	if err := checkObjectStreams(r); err != nil {
		return nil, err
	}
	pages, err := pageList(r.Trailer().Key("Root"))
	if err != nil {
		return nil, err
	}
	for n, p := range pages {
		i := n + 1
		h := sha256.New()
		if err := streams(h, p.Key("Contents")); err != nil {
			return nil, fmt.Errorf("page %d: %w", i, err)
		}
		// Form XObjects the page draws, one level deep, by name.
		var res pdf.Value
		// Bounded: a malformed page tree may loop through /Parent.
		for v, depth := p, 0; !v.IsNull() && res.IsNull() && depth < 64; v, depth = v.Key("Parent"), depth+1 {
			res = v.Key("Resources")
		}
		xo := res.Key("XObject")
		for _, name := range xo.Keys() {
			fmt.Fprintf(h, "\x00/%s\x00", name)
			if err := streams(h, xo.Key(name)); err != nil {
				return nil, fmt.Errorf("page %d XObject %s: %w", i, name, err)
			}
		}
		fp := pageFingerprint{}
		copy(fp.content[:], h.Sum(nil))
		annots := p.Key("Annots")
		for j := range annots.Len() {
			a := annots.Index(j)
			ft := a.Key("FT").Name()
			if ft == "" {
				ft = a.Key("Parent").Key("FT").Name()
			}
			if a.Key("Subtype").Name() == "Widget" && ft == "Sig" {
				continue
			}
			fp.annots++
		}
		fps = append(fps, fp)
	}
	return fps, nil
}

// streams writes the decoded bytes of a stream or array of streams.
func streams(w io.Writer, v pdf.Value) error {
	switch v.Kind() {
	case pdf.Stream:
		rc := v.Reader()
		defer rc.Close()
		n, err := io.Copy(w, io.LimitReader(rc, maxStreamBytes+1))
		if err != nil {
			return err
		}
		if n > maxStreamBytes {
			return fmt.Errorf("stream over %d bytes decoded", maxStreamBytes)
		}
	case pdf.Array:
		for i := range v.Len() {
			if err := streams(w, v.Index(i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// maxPages bounds the page tree walk.
const maxPages = 100000

// pageList returns the leaves of the page tree in order. It replaces the
// PDF library's Page, which loops forever on a page tree with a cycle.
func pageList(catalog pdf.Value) ([]pdf.Value, error) {
	var out []pdf.Value
	seen := map[[2]uint64]bool{}
	var walk func(v pdf.Value, depth int) error
	walk = func(v pdf.Value, depth int) error {
		p := v.GetPtr()
		key := [2]uint64{uint64(p.GetID()), uint64(p.GetGen())}
		switch {
		case depth > 64:
			return errors.New("page tree deeper than 64")
		case p.GetID() != 0 && seen[key]:
			return errors.New("page tree has a cycle")
		case len(out) > maxPages:
			return fmt.Errorf("more than %d pages", maxPages)
		}
		seen[key] = true
		if v.Key("Type").Name() != "Pages" {
			if v.Kind() == pdf.Dict {
				out = append(out, v)
			}
			return nil
		}
		kids := v.Key("Kids")
		for i := range kids.Len() {
			if err := walk(kids.Index(i), depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(catalog.Key("Pages"), 0); err != nil {
		return nil, err
	}
	return out, nil
}
