package signer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/internal/pdfobj"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// ErrPDF reports a PDF that cannot be read or updated.
var ErrPDF = errs.Sentinel(errs.Invalid, "bad_pdf", "bad pdf")

// PDFOptions tune a PAdES signature.
type PDFOptions struct {
	Page      int        // 1-based page that holds the field; 0 means 1
	Visible   bool       // draw the signature on the page
	Rect      [4]float64 // lower-left x, y, upper-right x, y; zero means a 220x60 box at the bottom left
	FieldName string     // zero means the first free "SignatureN"
	// Name, Reason, Location and ContactInfo fill the signature dictionary.
	Name, Reason, Location, ContactInfo string
	// Text, when set, replaces the visible signature's lines (who, when,
	// why, where); "\n" breaks lines and $$SUBJECTCN$$, $$REASON$$,
	// $$LOCATION$$ and $$SIGNDATE=dd/MM/yyyy HH:mm$$ are filled in.
	Text string
	// Image is a PNG or JPEG drawn at the left of a visible signature
	// (at most MaxImageBytes).
	Image []byte
	// ContentsSize is the number of bytes reserved for the CMS; zero
	// estimates it from the chain, the key and the level.
	ContentsSize int
}

// PAdES signs the PDF doc as PAdES-B-B, B-T, B-LT or B-LTA (opt.Level)
// and returns the signed PDF: doc unchanged followed by an incremental
// update that adds a signature field whose /Contents is a detached CAdES
// over /ByteRange; at B-LT another update adds the document security
// store, at B-LTA a third a document timestamp. Signatures already in doc
// stay valid.
func PAdES(ctx context.Context, doc []byte, key crypto.Signer, chain []*x509.Certificate, opt Options, po PDFOptions) ([]byte, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("no certificate: %w", ErrCertificate)
	}
	u, err := readUpdate(doc, po)
	if err != nil {
		return nil, err
	}
	at := opt.SigningTime
	if at.IsZero() {
		at = time.Now()
	}
	at = at.UTC().Truncate(time.Second)
	opt.SigningTime = at
	if po.Visible && po.Name == "" {
		po.Name = chain[0].Subject.CommonName
	}
	// The CMS of a PAdES signature stops at B-T: the long-term material
	// goes in the document security store, after it.
	cmsOpt := opt
	if cmsOpt.Level.Rank() > 1 {
		cmsOpt.Level = LevelT
	}
	size := po.ContentsSize
	if size <= 0 {
		if size, err = reserveCMS(key, chain, cmsOpt); err != nil {
			return nil, err
		}
	}
	out, gap, err := u.write(doc, po, at, size)
	if err != nil {
		return nil, err
	}
	hh := opt.hash().New()
	hh.Write(out[:gap[0]])
	hh.Write(out[gap[1]:])
	c, err := prepareCMS(hh.Sum(nil), key, chain, cmsOpt, false)
	if err != nil {
		return nil, err
	}
	// One document, one use of the key: the space was reserved for the
	// longest signature the key can make, so it is never signed again.
	if err := c.sign(key); err != nil {
		return nil, err
	}
	if err := c.extend(ctx, cmsOpt); err != nil {
		return nil, err
	}
	der, err := c.encode()
	if err != nil {
		return nil, err
	}
	if len(der) > size {
		return nil, fmt.Errorf("signature of %d bytes does not fit the %d reserved: %w", len(der), size, ErrPDF)
	}
	hex.Encode(out[gap[0]+1:], der)
	if opt.Level.Rank() < 2 {
		return out, nil
	}
	return extendPAdES(ctx, out, der, c, opt)
}

// timestampAllowance is the room reserved for a signature timestamp
// token: RFC 3161 tokens with a three-certificate RSA-4096 chain stay
// under 9 KB.
const timestampAllowance = 12 << 10

// reserveCMS returns the exact size of the B-B CMS opt asks for, with the
// longest signature value the key can make, plus room for a timestamp
// token at B-T.
func reserveCMS(key crypto.Signer, chain []*x509.Certificate, opt Options) (int, error) {
	c, err := prepareCMS(make([]byte, opt.hash().Size()), key, chain, opt, false)
	if err != nil {
		return 0, err
	}
	c.si.Signature = make([]byte, c.maxSig)
	der, err := c.encode()
	if err != nil {
		return 0, err
	}
	n := len(der)
	if opt.Level.Rank() >= 1 {
		n += timestampAllowance
	}
	return n, nil
}

// DocumentTimestamp adds a PAdES document timestamp (SubFilter
// ETSI.RFC3161, as PAdES-B-LTA uses) to doc: an invisible field whose
// /Contents is an RFC 3161 token over the digest under h (0 means SHA-256)
// of the /ByteRange. Signatures already in doc stay valid.
func DocumentTimestamp(ctx context.Context, doc []byte, ts Timestamper, h crypto.Hash) ([]byte, error) {
	if ts == nil {
		return nil, fmt.Errorf("document timestamp: %w: no timestamper configured", ErrTimestamp)
	}
	if h == 0 {
		h = crypto.SHA256
	}
	if _, ok := digestOIDs[h]; !ok {
		return nil, fmt.Errorf("%v: %w (want SHA-256, SHA-384 or SHA-512)", h, ErrHash)
	}
	u, err := readUpdate(doc, PDFOptions{})
	if err != nil {
		return nil, err
	}
	u.docTimestamp = true
	size := 8192
	for range 2 {
		out, gap, err := u.write(doc, PDFOptions{}, time.Now().UTC(), size)
		if err != nil {
			return nil, err
		}
		hh := h.New()
		hh.Write(out[:gap[0]])
		hh.Write(out[gap[1]:])
		tok, err := ts.Timestamp(ctx, h, hh.Sum(nil))
		if err != nil {
			return nil, fmt.Errorf("document timestamp: %w: %w", ErrTimestamp, err)
		}
		if len(tok) > size {
			size = len(tok) + 2048
			continue
		}
		hex.Encode(out[gap[0]+1:], tok)
		return out, nil
	}
	return nil, fmt.Errorf("timestamp does not fit its reserved space: %w", ErrPDF)
}

// update holds what the incremental update needs from the original file.
type update struct {
	prevXref   int64
	xrefStream bool
	size       uint32 // first free object number
	catRef     ref
	catalog    types.Dict
	pageRef    ref
	page       types.Dict
	acroForm   types.Dict  // nil if the document has none
	fields     types.Array // the AcroForm's fields as they are written
	annots     types.Array // the page's annotations as they are written
	info       *types.IndirectRef
	id         types.Array
	fieldName  string
	mediaBox   [4]float64
	// docTimestamp makes the update a document timestamp rather than a
	// signature.
	docTimestamp bool
	// dss is the document security store already there, nil if none;
	// vri its /VRI.
	dss, vri types.Dict
}

// The incremental update is written here: github.com/digitorus/pdfsign
// hard-codes SubFilter adbe.pkcs7.detached and a TSA reached by URL (our
// timestamps come through Timestamper, checked by the tsa client), and
// pdfcpu writes whole files, not updates. Reading is pdfcpu's:
// github.com/digitorus/pdf loops forever on some malformed files.

// lastStartxref returns the offset the file's last startxref names and
// whether a cross-reference stream (rather than a table) is there.
func lastStartxref(doc []byte) (int64, bool, error) {
	i := bytes.LastIndex(doc, []byte("startxref"))
	if i < 0 {
		return 0, false, errors.New("no startxref")
	}
	var off int64
	if _, err := fmt.Sscan(string(doc[i+len("startxref"):min(len(doc), i+len("startxref")+32)]), &off); err != nil || off < 0 || off >= int64(len(doc)) {
		return 0, false, errors.New("bad startxref")
	}
	return off, !bytes.HasPrefix(bytes.TrimLeft(doc[off:], " \t\r\n"), []byte("xref")), nil
}

func readUpdate(doc []byte, po PDFOptions) (*update, error) {
	ctx, err := readContext(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPDF, err)
	}
	xt := ctx.XRefTable
	u := &update{info: xt.Info, id: xt.ID}
	if u.prevXref, u.xrefStream, err = lastStartxref(doc); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPDF, err)
	}
	// New objects take numbers past every entry of the cross-reference
	// table, free ones included (pdfcpu repairs /Size to the highest
	// object in use plus one, which could hand out a freed number).
	size := 0
	if xt.Size != nil {
		size = *xt.Size
	}
	for n := range xt.Table {
		size = max(size, n+1)
	}
	if size <= 0 || size >= 1<<31-8 {
		return nil, fmt.Errorf("%w: bad object numbers", ErrPDF)
	}
	u.size = uint32(size)
	u.catRef = refOf(*xt.Root)
	if u.catalog, err = xt.DereferenceDict(*xt.Root); err != nil || u.catalog == nil {
		return nil, fmt.Errorf("%w: no document catalog", ErrPDF)
	}
	// A certification signature with DocMDP P=1 forbids any change, our
	// signature included: adding one would invalidate it.
	perms := dict(xt, u.catalog["Perms"])
	refs := array(xt, dict(xt, perms["DocMDP"])["Reference"])
	for _, r := range refs {
		rd := dict(xt, r)
		if name(xt, rd["TransformMethod"]) == "DocMDP" && number(xt, dict(xt, rd["TransformParams"])["P"]) == 1 {
			return nil, fmt.Errorf("%w: the document is certified with no changes allowed (DocMDP P=1)", ErrPDF)
		}
	}
	n := po.Page
	if n == 0 {
		n = 1
	}
	pages, err := pageList(xt, u.catalog)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPDF, err)
	}
	if n < 1 || n > len(pages) {
		return nil, fmt.Errorf("%w: page %d of %d", ErrPDF, n, len(pages))
	}
	u.pageRef, u.page = pages[n-1].ref, pages[n-1].dict
	if u.pageRef == u.catRef {
		return nil, fmt.Errorf("%w: page %d is the catalog", ErrPDF, n)
	}
	// Bounded: a malformed page tree may loop through /Parent.
	var mb types.Array
	for d, depth := u.page, 0; d != nil && mb == nil && depth < 64; d, depth = dict(xt, d["Parent"]), depth+1 {
		mb = array(xt, d["MediaBox"])
	}
	for i := range min(4, len(mb)) {
		u.mediaBox[i] = number(xt, mb[i])
	}
	u.dss = dict(xt, u.catalog["DSS"])
	u.vri = dict(xt, u.dss["VRI"])
	u.acroForm = dict(xt, u.catalog["AcroForm"])
	u.fields = array(xt, u.acroForm["Fields"])
	u.annots = array(xt, u.page["Annots"])
	names := map[string]bool{}
	for _, f := range u.fields {
		names[text(xt, dict(xt, f)["T"])] = true
	}
	u.fieldName = po.FieldName
	if u.fieldName == "" {
		for i := 1; ; i++ {
			if name := "Signature" + strconv.Itoa(i); !names[name] {
				u.fieldName = name
				break
			}
		}
	} else if names[u.fieldName] {
		return nil, fmt.Errorf("%w: field %q already exists", ErrPDF, u.fieldName)
	}
	return u, nil
}

// PDF objects are read as package verify reads them (internal/pdfobj).
var (
	readContext = pdfobj.ReadContext
	dict        = pdfobj.Dict
	array       = pdfobj.Array
	name        = pdfobj.Name
	text        = pdfobj.Text
)

// number reads an integer or real; 0 if absent or of another type.
func number(xt *model.XRefTable, o types.Object) float64 {
	o, err := xt.Dereference(o)
	if err != nil {
		return 0
	}
	switch v := o.(type) {
	case types.Integer:
		return float64(v.Value())
	case types.Float:
		return v.Value()
	}
	return 0
}

// maxPages bounds the page tree walk.
const maxPages = 100000

type pageObj struct {
	ref  ref
	dict types.Dict
}

// pageList returns the leaves of the page tree in order, with their
// object numbers, refusing trees with cycles.
func pageList(xt *model.XRefTable, catalog types.Dict) ([]pageObj, error) {
	var out []pageObj
	seen := map[ref]bool{}
	var walk func(o types.Object, depth int) error
	walk = func(o types.Object, depth int) error {
		ir, ok := o.(types.IndirectRef)
		switch {
		case !ok:
			return errors.New("page tree node is not an indirect object")
		case depth > 64:
			return errors.New("page tree deeper than 64")
		case seen[refOf(ir)]:
			return errors.New("page tree has a cycle")
		case len(out) > maxPages:
			return fmt.Errorf("more than %d pages", maxPages)
		}
		seen[refOf(ir)] = true
		d := dict(xt, ir)
		if d == nil {
			return fmt.Errorf("page tree node %d is not a dictionary", ir.ObjectNumber.Value())
		}
		if name(xt, d["Type"]) != "Pages" {
			out = append(out, pageObj{refOf(ir), d})
			return nil
		}
		for _, k := range array(xt, d["Kids"]) {
			if err := walk(k, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(catalog["Pages"], 0); err != nil {
		return nil, err
	}
	return out, nil
}

type ref struct {
	id  uint32
	gen uint16
}

func refOf(ir types.IndirectRef) ref {
	return ref{uint32(ir.ObjectNumber.Value()), uint16(ir.GenerationNumber.Value())}
}

func (r ref) indirect() types.IndirectRef { return *types.NewIndirectRef(int(r.id), int(r.gen)) }

// write lays out doc plus the update with /Contents holding size zero
// bytes, and returns the file and the offsets of the /Contents hex string
// (from '<' to just past '>'), which the signature does not cover.
func (u *update) write(doc []byte, po PDFOptions, at time.Time, size int) ([]byte, [2]int, error) {
	var b bytes.Buffer
	b.Grow(len(doc) + 2*size + 4096)
	b.Write(doc)
	if len(doc) > 0 && doc[len(doc)-1] != '\n' && doc[len(doc)-1] != '\r' {
		b.WriteByte('\n')
	}
	offsets := map[uint32]int{}
	gens := map[uint32]uint16{}
	begin := func(r ref) {
		offsets[r.id] = b.Len()
		gens[r.id] = r.gen
		fmt.Fprintf(&b, "%d %d obj\n", r.id, r.gen)
	}
	end := func() { b.WriteString("\nendobj\n") }

	sigRef := ref{id: u.size}
	widgetRef := ref{id: u.size + 1}
	apRef := ref{id: u.size + 2}
	acroRef := ref{id: u.size + 3}
	next := u.size + 4
	catRef, pageRef := u.catRef, u.pageRef

	// The catalog, the page and the AcroForm are copied as pdfcpu read
	// them, references kept as references, with our field added.
	cat := u.catalog.Clone().(types.Dict)
	cat.Delete("AcroForm")
	cat.Insert("AcroForm", acroRef.indirect())
	begin(catRef)
	b.WriteString(cat.PDFString())
	end()

	page := u.page.Clone().(types.Dict)
	page.Delete("Annots")
	page.Insert("Annots", append(u.annots.Clone().(types.Array), widgetRef.indirect()))
	begin(pageRef)
	b.WriteString(page.PDFString())
	end()

	acro := types.Dict{}
	if u.acroForm != nil {
		acro = u.acroForm.Clone().(types.Dict)
	}
	acro.Delete("Fields")
	acro.Delete("SigFlags")
	acro.Insert("Fields", append(u.fields.Clone().(types.Array), widgetRef.indirect()))
	// SigFlags 3: SignaturesExist and AppendOnly.
	acro.Insert("SigFlags", types.Integer(3))
	begin(acroRef)
	b.WriteString(acro.PDFString())
	end()

	// Field merged with its widget annotation.
	rect := [4]float64{}
	if po.Visible {
		rect = po.Rect
		if rect == ([4]float64{}) {
			rect = [4]float64{u.mediaBox[0] + 36, u.mediaBox[1] + 36, u.mediaBox[0] + 256, u.mediaBox[1] + 96}
		}
	}
	begin(widgetRef)
	b.WriteString("<</Type /Annot /Subtype /Widget /FT /Sig /F 132 /T ")
	writeString(&b, u.fieldName)
	fmt.Fprintf(&b, " /V %d 0 R /P %d %d R /Rect [%s %s %s %s] /AP <</N %d 0 R>>>>",
		sigRef.id, pageRef.id, pageRef.gen, num(rect[0]), num(rect[1]), num(rect[2]), num(rect[3]), apRef.id)
	end()

	// Appearance: a box with who signed and when (and the image, at its
	// left), or empty when invisible.
	w, h := rect[2]-rect[0], rect[3]-rect[1]
	var ap bytes.Buffer
	var img *pdfImage
	if po.Visible && len(po.Image) > 0 {
		var err error
		if img, err = loadImage(po.Image); err != nil {
			return nil, [2]int{}, err
		}
	}
	xobjects := ""
	if po.Visible {
		fmt.Fprintf(&ap, "q 0.95 0.95 0.95 rg 0 0 %s %s re f 0.2 G 0.8 w 0.4 0.4 %s %s re S Q\n", num(w), num(h), num(w-0.8), num(h-0.8))
		textX := 4.0
		if img != nil {
			// The image fills the box's height at the left, keeping its
			// aspect ratio within half the width.
			ih := max(h-8, 1)
			iw := ih * float64(img.w) / float64(img.h)
			if iw > w/2 {
				iw, ih = w/2, w/2*float64(img.h)/float64(img.w)
			}
			fmt.Fprintf(&ap, "q %s 0 0 %s 4 %s cm /Im1 Do Q\n", num(iw), num(ih), num((h-ih)/2))
			textX = iw + 8
			imgRef := ref{id: next}
			next++
			smask := ""
			if img.smask != nil {
				maskRef := ref{id: next}
				next++
				begin(maskRef)
				fmt.Fprintf(&b, "<</Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode /Length %d>>\nstream\n",
					img.w, img.h, len(img.smask))
				b.Write(img.smask)
				b.WriteString("\nendstream")
				end()
				smask = fmt.Sprintf(" /SMask %d 0 R", maskRef.id)
			}
			begin(imgRef)
			fmt.Fprintf(&b, "<</Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /%s /BitsPerComponent 8 /Filter /%s%s /Length %d>>\nstream\n",
				img.w, img.h, img.colorSpace, img.filter, smask, len(img.data))
			b.Write(img.data)
			b.WriteString("\nendstream")
			end()
			xobjects = fmt.Sprintf(" /XObject <</Im1 %d 0 R>>", imgRef.id)
		}
		fmt.Fprintf(&ap, "BT 0 g /F1 8 Tf 10 TL %s %s Td\n", num(textX), num(h-12))
		for _, l := range appearanceLines(po, at) {
			ap.WriteString("(")
			ap.Write(escapeLiteral(winAnsi(l)))
			ap.WriteString(") Tj T*\n")
		}
		ap.WriteString("ET")
	}
	begin(apRef)
	fmt.Fprintf(&b, "<</Type /XObject /Subtype /Form /BBox [0 0 %s %s] /Resources <</Font <</F1 <</Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding>>>>%s>> /Length %d>>\nstream\n",
		num(w), num(h), xobjects, ap.Len())
	b.Write(ap.Bytes())
	b.WriteString("\nendstream")
	end()

	// Signature dictionary; /Contents and /ByteRange are filled in last.
	begin(sigRef)
	if u.docTimestamp {
		// ETSI EN 319 142-1 5.4: the time comes from the token only.
		b.WriteString("<</Type /DocTimeStamp /Filter /Adobe.PPKLite /SubFilter /ETSI.RFC3161")
	} else {
		b.WriteString("<</Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached /M ")
		writeString(&b, "D:"+at.Format("20060102150405")+"Z")
	}
	for _, kv := range [][2]string{{"Name", po.Name}, {"Reason", po.Reason}, {"Location", po.Location}, {"ContactInfo", po.ContactInfo}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, " /%s ", kv[0])
			writeString(&b, kv[1])
		}
	}
	b.WriteString("\n/ByteRange ")
	brAt := b.Len()
	b.WriteString(strings.Repeat(" ", 40))
	b.WriteString("\n/Contents ")
	gap := [2]int{b.Len(), 0}
	b.WriteByte('<')
	b.Write(bytes.Repeat([]byte{'0'}, 2*size))
	b.WriteByte('>')
	gap[1] = b.Len()
	b.WriteString(">>")
	end()

	if err := u.finish(&b, offsets, gens, next, catRef); err != nil {
		return nil, [2]int{}, err
	}

	out := b.Bytes()
	br := fmt.Sprintf("[0 %d %d %d]", gap[0], gap[1], len(out)-gap[1])
	if len(br) > 40 {
		return nil, [2]int{}, fmt.Errorf("%w: byte range too long", ErrPDF)
	}
	copy(out[brAt:], br)
	return out, gap, nil
}

// runs groups sorted ids into [first, count] subsections.
// finish writes the cross-reference section (in the kind the file
// already uses) of the objects at offsets, the trailer and startxref.
func (u *update) finish(bp *bytes.Buffer, offsets map[uint32]int, gens map[uint32]uint16, next uint32, catRef ref) error {
	b := bp
	// Cross-reference section in the kind the file already uses.
	xrefAt := b.Len()
	ids := make([]uint32, 0, len(offsets)+1)
	for id := range offsets {
		ids = append(ids, id)
	}
	trailerKeys := func() {
		fmt.Fprintf(b, "/Prev %d /Root %d %d R", u.prevXref, catRef.id, catRef.gen)
		if u.info != nil {
			fmt.Fprintf(b, " /Info %s", u.info.PDFString())
		}
		if len(u.id) > 0 {
			fmt.Fprintf(b, " /ID %s", u.id.PDFString())
		}
	}
	if u.xrefStream {
		xref := next
		next++
		offsets[xref] = xrefAt
		ids = append(ids, xref)
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		var data bytes.Buffer
		for _, id := range ids {
			o := offsets[id]
			data.Write([]byte{1, byte(o >> 24), byte(o >> 16), byte(o >> 8), byte(o), byte(gens[id] >> 8), byte(gens[id])})
		}
		if xrefAt > 1<<32-1 {
			return fmt.Errorf("%w: file over 4 GiB", ErrPDF)
		}
		fmt.Fprintf(b, "%d 0 obj\n<</Type /XRef /Size %d /W [1 4 2] /Index [", xref, next)
		for _, run := range runs(ids) {
			fmt.Fprintf(b, "%d %d ", run[0], run[1])
		}
		b.WriteString("] ")
		trailerKeys()
		fmt.Fprintf(b, " /Length %d>>\nstream\n", data.Len())
		b.Write(data.Bytes())
		b.WriteString("\nendstream\nendobj\n")
	} else {
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		b.WriteString("xref\n")
		i := 0
		for _, run := range runs(ids) {
			fmt.Fprintf(b, "%d %d\n", run[0], run[1])
			for range run[1] {
				fmt.Fprintf(b, "%010d %05d n\r\n", offsets[ids[i]], gens[ids[i]])
				i++
			}
		}
		fmt.Fprintf(b, "trailer\n<</Size %d ", next)
		trailerKeys()
		b.WriteString(">>\n")
	}
	fmt.Fprintf(b, "startxref\n%d\n%%%%EOF\n", xrefAt)
	return nil
}

func runs(ids []uint32) [][2]uint32 {
	var rs [][2]uint32
	for _, id := range ids {
		if n := len(rs); n > 0 && rs[n-1][0]+rs[n-1][1] == id {
			rs[n-1][1]++
			continue
		}
		rs = append(rs, [2]uint32{id, 1})
	}
	return rs
}

func num(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// writeString writes s as a hex string, which needs no escaping.
func writeString(b *bytes.Buffer, s string) {
	b.WriteByte('<')
	if !isASCII(s) {
		// Text strings outside ASCII go as UTF-16BE with a byte order mark.
		b.WriteString("FEFF")
		for _, r := range s {
			if r > 0xFFFF {
				r = '?'
			}
			fmt.Fprintf(b, "%04X", r)
		}
	} else {
		b.WriteString(strings.ToUpper(hex.EncodeToString([]byte(s))))
	}
	b.WriteByte('>')
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// winAnsi maps text to the WinAnsi bytes of the appearance font; runes it
// lacks become '?'.
func winAnsi(s string) []byte {
	var out []byte
	for _, r := range s {
		if r < 0x20 || (r > 0x7e && r < 0xa0) || r > 0xff {
			r = '?'
		}
		out = append(out, byte(r))
	}
	return out
}

func escapeLiteral(s []byte) []byte {
	var out []byte
	for _, c := range s {
		if c == '(' || c == ')' || c == '\\' {
			out = append(out, '\\')
		}
		out = append(out, c)
	}
	return out
}
