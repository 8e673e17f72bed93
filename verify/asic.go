package verify

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/firma-cloud/firma/signer/asic"
	"github.com/firma-cloud/firma/signer/xades"
)

// Formats of ASiC containers reported.
const (
	FormatASiCSCAdES = "asic-s-cades"
	FormatASiCSXAdES = "asic-s-xades"
	FormatASiCEXAdES = "asic-e-xades"
)

// ASiC verifies an ASiC-S or ASiC-E container: its structure (mimetype
// first and stored, within limits), then its signature over the documents
// it holds, each of which must be covered.
func (v *Verifier) ASiC(ctx context.Context, b []byte) (*Report, error) {
	start := time.Now()
	c, err := asic.Open(b, asic.Limits{})
	if err != nil {
		return nil, err
	}
	if c.SignatureName == asic.CAdESEntry {
		r, err := v.CAdES(ctx, c.Signature, bytes.NewReader(c.Documents[0].Content))
		if err != nil {
			return nil, err
		}
		for _, s := range r.Signatures {
			s.Format = FormatASiCSCAdES
		}
		return r, nil
	}
	format := FormatASiCSXAdES
	if c.MimeType == asic.MimeASiCE {
		format = FormatASiCEXAdES
	}
	// References name documents relative to the container's root.
	resolve := func(uri string) ([]byte, bool) {
		name, err := url.PathUnescape(uri)
		if err != nil {
			return nil, false
		}
		return c.Document(name)
	}
	vs, err := xades.Verify(c.Signature, resolve, xades.Limits{MaxBytes: MaxXMLBytes})
	if err != nil {
		return nil, err
	}
	out := make([]*Signature, 0, len(vs))
	for _, x := range vs {
		s := &Signature{Format: format, Level: string(baseLevel(x)), DigestAlg: hashNames[x.Hash], SigningTime: x.SigningTime}
		if x.Err == nil {
			covered := map[string]bool{}
			for _, u := range x.Detached {
				if n, err := url.PathUnescape(u); err == nil {
					covered[n] = true
				}
			}
			for _, d := range c.Documents {
				if !covered[d.Name] {
					x.Err = fmt.Errorf("%w: %q is in the container but not signed", xades.ErrBroken, d.Name)
					break
				}
			}
		}
		v.checkXAdES(ctx, s, x)
		out = append(out, s)
	}
	return v.finish(format, start, out...), nil
}
