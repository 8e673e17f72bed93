package signer

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/firma-cloud/firma/signer/ltv"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// extendPAdES raises the PAdES-B-T signature just made (c, encoded as
// cmsDER) to B-LT with a document security store holding the validation
// material of the signer's and the TSA's chains (ETSI EN 319 142-1
// 5.4.2), and to B-LTA with a document timestamp after it. Each is an
// incremental update, so the signature stays valid.
func extendPAdES(ctx context.Context, doc, cmsDER []byte, c *cms, opt Options) ([]byte, error) {
	m, err := gather(ctx, opt.Validation, c.chain, c.sigToken)
	if err != nil {
		return nil, err
	}
	out, err := AddDSS(doc, [][]byte{cmsDER}, m)
	if err != nil {
		return nil, err
	}
	if opt.Level != LevelLTA {
		return out, nil
	}
	return DocumentTimestamp(ctx, out, opt.Timestamper, opt.hash())
}

// AddDSS appends to the PDF doc an incremental update whose document
// security store holds m (certificates, OCSP responses and CRLs as
// streams) and a /VRI entry for each signature in sigs (the DER CMS of a
// signature's /Contents, keyed by its SHA-1 in upper-case hex) naming
// the material. What a DSS already there holds is kept.
func AddDSS(doc []byte, sigs [][]byte, m *ltv.Material) ([]byte, error) {
	u, err := readUpdate(doc, PDFOptions{})
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(len(doc) + 16<<10)
	b.Write(doc)
	if len(doc) > 0 && doc[len(doc)-1] != '\n' && doc[len(doc)-1] != '\r' {
		b.WriteByte('\n')
	}
	offsets := map[uint32]int{}
	gens := map[uint32]uint16{}
	next := u.size
	stream := func(data []byte) types.IndirectRef {
		id := next
		next++
		offsets[id], gens[id] = b.Len(), 0
		fmt.Fprintf(&b, "%d 0 obj\n<</Length %d>>\nstream\n", id, len(data))
		b.Write(data)
		b.WriteString("\nendstream\nendobj\n")
		return *types.NewIndirectRef(int(id), 0)
	}
	var certs, ocsps, crls types.Array
	for _, c := range m.Certs {
		certs = append(certs, stream(c.Raw))
	}
	for _, o := range m.OCSP {
		ocsps = append(ocsps, stream(o))
	}
	for _, c := range m.CRLs {
		crls = append(crls, stream(c))
	}

	dss := types.Dict{}
	if u.dss != nil {
		dss = u.dss.Clone().(types.Dict)
	}
	dss.Delete("Type")
	dss.Insert("Type", types.Name("DSS"))
	for _, kv := range []struct {
		key  string
		refs types.Array
	}{{"Certs", certs}, {"OCSPs", ocsps}, {"CRLs", crls}} {
		old, _ := dss[kv.key].(types.Array)
		all := append(old.Clone().(types.Array), kv.refs...)
		dss.Delete(kv.key)
		if len(all) > 0 {
			dss.Insert(kv.key, all)
		}
	}
	vri := types.Dict{}
	if u.vri != nil {
		vri = u.vri.Clone().(types.Dict)
	}
	for _, sig := range sigs {
		sum := sha1.Sum(sig)
		entry := types.Dict{}
		for _, kv := range []struct {
			key  string
			refs types.Array
		}{{"Cert", certs}, {"OCSP", ocsps}, {"CRL", crls}} {
			if len(kv.refs) > 0 {
				entry.Insert(kv.key, kv.refs)
			}
		}
		key := strings.ToUpper(hex.EncodeToString(sum[:]))
		vri.Delete(key)
		vri.Insert(key, entry)
	}
	dss.Delete("VRI")
	dss.Insert("VRI", vri)

	dssID := next
	next++
	offsets[dssID], gens[dssID] = b.Len(), 0
	fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", dssID, dss.PDFString())

	cat := u.catalog.Clone().(types.Dict)
	cat.Delete("DSS")
	cat.Insert("DSS", *types.NewIndirectRef(int(dssID), 0))
	offsets[u.catRef.id], gens[u.catRef.id] = b.Len(), u.catRef.gen
	fmt.Fprintf(&b, "%d %d obj\n%s\nendobj\n", u.catRef.id, u.catRef.gen, cat.PDFString())

	if err := u.finish(&b, offsets, gens, next, u.catRef); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
