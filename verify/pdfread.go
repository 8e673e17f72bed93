package verify

import (
	"errors"
	"fmt"

	"github.com/firma-cloud/firma/internal/pdfobj"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// PDF objects are read as package signer, which writes what this package
// reads, reads them (internal/pdfobj).
var (
	readContext = pdfobj.ReadContext
	dict        = pdfobj.Dict
	array       = pdfobj.Array
	name        = pdfobj.Name
	text        = pdfobj.Text
)

func catalog(ctx *model.Context) types.Dict {
	return dict(ctx.XRefTable, *ctx.XRefTable.Root)
}

// number reads a whole number; false if absent, fractional or of another
// type.
func number(xt *model.XRefTable, o types.Object) (int64, bool) {
	o, err := xt.Dereference(o)
	if err != nil {
		return 0, false
	}
	switch v := o.(type) {
	case types.Integer:
		return int64(v.Value()), true
	case types.Float:
		return int64(v.Value()), float64(int64(v.Value())) == v.Value()
	}
	return 0, false
}

// raw returns the bytes of a string, undoing hex or literal escapes but
// no text decoding: /Contents holds binary DER.
func raw(xt *model.XRefTable, o types.Object) []byte {
	o, err := xt.Dereference(o)
	if err != nil {
		return nil
	}
	switch v := o.(type) {
	case types.HexLiteral:
		b, err := v.Bytes()
		if err != nil {
			return nil
		}
		return b
	case types.StringLiteral:
		b, err := types.Unescape(v.Value())
		if err != nil {
			return nil
		}
		return b
	}
	return nil
}

// maxPages bounds the page tree walk.
const maxPages = 100000

// pageList returns the page dictionaries in order, refusing trees with
// cycles.
func pageList(xt *model.XRefTable, cat types.Dict) ([]types.Dict, error) {
	var out []types.Dict
	seen := map[int]bool{}
	var walk func(o types.Object, depth int) error
	walk = func(o types.Object, depth int) error {
		ir, ok := o.(types.IndirectRef)
		switch {
		case !ok:
			return errors.New("page tree node is not an indirect object")
		case depth > 64:
			return errors.New("page tree deeper than 64")
		case seen[ir.ObjectNumber.Value()]:
			return errors.New("page tree has a cycle")
		case len(out) > maxPages:
			return fmt.Errorf("more than %d pages", maxPages)
		}
		seen[ir.ObjectNumber.Value()] = true
		d := dict(xt, ir)
		if d == nil {
			return fmt.Errorf("page tree node %d is not a dictionary", ir.ObjectNumber.Value())
		}
		if name(xt, d["Type"]) != "Pages" {
			out = append(out, d)
			return nil
		}
		for _, k := range array(xt, d["Kids"]) {
			if err := walk(k, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(cat["Pages"], 0); err != nil {
		return nil, err
	}
	return out, nil
}
