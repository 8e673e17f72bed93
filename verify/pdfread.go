package verify

import (
	"bytes"
	"errors"
	"fmt"

	pdfcpuapi "github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// PDFs are read with pdfcpu, which reads every object up front and
// refuses malformed files with a reason (github.com/digitorus/pdf, the
// other candidate, loops forever on some). These helpers mirror the
// signer package's, which writes what this package reads.

func init() {
	// pdfcpu would otherwise read and write a configuration folder in
	// the user's home.
	pdfcpuapi.DisableConfigDir()
}

// readContext parses doc; panics of the library become errors.
func readContext(doc []byte) (ctx *model.Context, err error) {
	defer func() {
		if r := recover(); r != nil {
			ctx, err = nil, fmt.Errorf("%v", r)
		}
	}()
	if len(doc) == 0 {
		return nil, errors.New("empty file")
	}
	conf := model.NewDefaultConfiguration()
	conf.ValidationMode = model.ValidationRelaxed
	ctx, err = pdfcpuapi.ReadContext(bytes.NewReader(doc), conf)
	if err != nil {
		return nil, err
	}
	if ctx.XRefTable.Encrypt != nil {
		return nil, errors.New("encrypted PDFs are not supported")
	}
	if ctx.XRefTable.Root == nil {
		return nil, errors.New("no document catalog")
	}
	return ctx, nil
}

func catalog(ctx *model.Context) types.Dict {
	return dict(ctx.XRefTable, *ctx.XRefTable.Root)
}

// dict, array, name, number, text and raw read a value through any
// reference; the zero value means absent or of another type.
func dict(xt *model.XRefTable, o types.Object) types.Dict {
	d, err := xt.DereferenceDict(o)
	if err != nil {
		return nil
	}
	return d
}

func array(xt *model.XRefTable, o types.Object) types.Array {
	a, err := xt.DereferenceArray(o)
	if err != nil {
		return nil
	}
	return a
}

func name(xt *model.XRefTable, o types.Object) string {
	o, err := xt.Dereference(o)
	if n, ok := o.(types.Name); ok && err == nil {
		return n.Value()
	}
	return ""
}

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

func text(xt *model.XRefTable, o types.Object) string {
	o, err := xt.Dereference(o)
	if err != nil {
		return ""
	}
	var s string
	switch v := o.(type) {
	case types.StringLiteral:
		s, err = types.StringLiteralToString(v)
	case types.HexLiteral:
		s, err = types.HexLiteralToString(v)
	}
	if err != nil {
		return ""
	}
	return s
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
