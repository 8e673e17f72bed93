// Package pdfobj reads PDF objects through pdfcpu for the packages that
// write PAdES signatures (signer) and check them (verify), so that both
// read a file the same way.
//
// pdfcpu reads every object up front and refuses malformed files with a
// reason; github.com/digitorus/pdf, the other candidate, loops forever on
// some.
package pdfobj

import (
	"bytes"
	"errors"
	"fmt"

	pdfcpuapi "github.com/pdfcpu/pdfcpu/pkg/api"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

func init() {
	// pdfcpu would otherwise read and write a configuration folder in the
	// user's home.
	pdfcpuapi.DisableConfigDir()
}

// ReadContext parses doc, refusing encrypted files and files without a
// catalog; the library's rare panics become errors.
func ReadContext(doc []byte) (ctx *model.Context, err error) {
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
		return nil, errors.New("encrypted documents are not supported")
	}
	if ctx.XRefTable.Root == nil {
		return nil, errors.New("no document catalog")
	}
	return ctx, nil
}

// Dict, Array, Name and Text read a value through any reference; the zero
// value means absent or of another type.
func Dict(xt *model.XRefTable, o types.Object) types.Dict {
	d, err := xt.DereferenceDict(o)
	if err != nil {
		return nil
	}
	return d
}

// Array reads an array; nil if absent or of another type.
func Array(xt *model.XRefTable, o types.Object) types.Array {
	a, err := xt.DereferenceArray(o)
	if err != nil {
		return nil
	}
	return a
}

// Name reads a name's value; "" if absent or of another type.
func Name(xt *model.XRefTable, o types.Object) string {
	o, err := xt.Dereference(o)
	if n, ok := o.(types.Name); ok && err == nil {
		return n.Value()
	}
	return ""
}

// Text reads a literal or hex string as text; "" if absent or of another
// type.
func Text(xt *model.XRefTable, o types.Object) string {
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
