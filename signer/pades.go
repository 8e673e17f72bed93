package signer

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/digitorus/pdf"
)

// ErrPDF reports a PDF that cannot be read or updated.
var ErrPDF = errors.New("bad pdf")

// PDFOptions tune a PAdES signature.
type PDFOptions struct {
	Page      int        // 1-based page that holds the field; 0 means 1
	Visible   bool       // draw the signature on the page
	Rect      [4]float64 // lower-left x, y, upper-right x, y; zero means a 220x60 box at the bottom left
	FieldName string     // zero means the first free "SignatureN"
	// Name, Reason, Location and ContactInfo fill the signature dictionary.
	Name, Reason, Location, ContactInfo string
	// ContentsSize is the number of bytes reserved for the CMS; zero
	// estimates it from the chain, the key and the level.
	ContentsSize int
}

// PAdES signs the PDF doc as PAdES-B-B or B-T (opt.Level) and returns the
// signed PDF: doc unchanged followed by an incremental update that adds a
// signature field whose /Contents is a detached CAdES over /ByteRange.
// Signatures already in doc stay valid.
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
	size := po.ContentsSize
	if size <= 0 {
		size = estimateCMS(key.Public(), chain, opt.Level)
	}
	// A too small estimate costs one more signature, never a broken file.
	for range 2 {
		out, gap, err := u.write(doc, po, at, size)
		if err != nil {
			return nil, err
		}
		hh := opt.hash().New()
		hh.Write(out[:gap[0]])
		hh.Write(out[gap[1]:])
		cms, err := signCMS(ctx, hh.Sum(nil), key, chain, opt, false)
		if err != nil {
			return nil, err
		}
		if len(cms) > size {
			size = len(cms) + 2048
			continue
		}
		hex.Encode(out[gap[0]+1:], cms)
		return out, nil
	}
	return nil, fmt.Errorf("signature does not fit its reserved space: %w", ErrPDF)
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

func estimateCMS(pub crypto.PublicKey, chain []*x509.Certificate, level Level) int {
	n := 2048
	for _, c := range chain {
		n += len(c.Raw)
	}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		n += p.Size()
	case *ecdsa.PublicKey:
		n += 2*(p.Curve.Params().BitSize+7)/8 + 16
	}
	if level == LevelT {
		// A token with a two-certificate TSA chain is 3-5 KB.
		n += 8192
	}
	return n
}

// update holds what the incremental update needs from the original file.
type update struct {
	prevXref   int64
	xrefStream bool
	size       uint32 // first free object number
	catalog    pdf.Value
	page       pdf.Value
	acroForm   pdf.Value // may be null
	fields     []pdf.Value
	annots     []pdf.Value
	fieldsPtr  ref // the object holding the Fields array, for direct fields
	annotsPtr  ref
	trailer    pdf.Value
	fieldName  string
	mediaBox   [4]float64
	// docTimestamp makes the update a document timestamp rather than a
	// signature.
	docTimestamp bool
}

// readUpdate parses doc with github.com/digitorus/pdf. The library panics
// on malformed files, so panics become ErrPDF.
func readUpdate(doc []byte, po PDFOptions) (u *update, err error) {
	defer func() {
		if r := recover(); r != nil {
			u, err = nil, fmt.Errorf("%w: %v", ErrPDF, r)
		}
	}()
	r, err := pdf.NewReader(bytes.NewReader(doc), int64(len(doc)))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPDF, err)
	}
	if err := checkObjectStreams(r); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPDF, err)
	}
	tr := r.Trailer()
	if !tr.Key("Encrypt").IsNull() {
		return nil, fmt.Errorf("%w: encrypted documents are not supported", ErrPDF)
	}
	u = &update{
		prevXref:   r.XrefInformation.StartPos,
		xrefStream: r.XrefInformation.Type == "stream",
		size:       uint32(tr.Key("Size").Int64()),
		catalog:    tr.Key("Root"),
		trailer:    tr,
	}
	if u.catalog.Kind() != pdf.Dict || u.size == 0 {
		return nil, fmt.Errorf("%w: no document catalog", ErrPDF)
	}
	// A certification signature with DocMDP P=1 forbids any change, our
	// signature included: adding one would invalidate it.
	refs := u.catalog.Key("Perms").Key("DocMDP").Key("Reference")
	for i := range refs.Len() {
		ref := refs.Index(i)
		if ref.Key("TransformMethod").Name() == "DocMDP" && ref.Key("TransformParams").Key("P").Int64() == 1 {
			return nil, fmt.Errorf("%w: the document is certified with no changes allowed (DocMDP P=1)", ErrPDF)
		}
	}
	n := po.Page
	if n == 0 {
		n = 1
	}
	pages, err := pageList(u.catalog)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPDF, err)
	}
	if n < 1 || n > len(pages) {
		return nil, fmt.Errorf("%w: page %d of %d", ErrPDF, n, len(pages))
	}
	u.page = pages[n-1]
	if u.page.Kind() != pdf.Dict || ptrOf(u.page) == ptrOf(u.catalog) || ptrOf(u.page).id == 0 {
		return nil, fmt.Errorf("%w: page %d is not an object", ErrPDF, n)
	}
	var mb pdf.Value
	// Bounded: a malformed page tree may loop through /Parent.
	for v, depth := u.page, 0; !v.IsNull() && mb.IsNull() && depth < 64; v, depth = v.Key("Parent"), depth+1 {
		mb = v.Key("MediaBox")
	}
	for i := range 4 {
		u.mediaBox[i] = mb.Index(i).Float64()
	}
	af := u.catalog.Key("AcroForm")
	if af.Kind() == pdf.Dict {
		u.acroForm = af
		fs := af.Key("Fields")
		u.fieldsPtr = ptrOf(fs)
		for i := range fs.Len() {
			u.fields = append(u.fields, fs.Index(i))
		}
	}
	an := u.page.Key("Annots")
	u.annotsPtr = ptrOf(an)
	for i := range an.Len() {
		u.annots = append(u.annots, an.Index(i))
	}
	names := map[string]bool{}
	for _, f := range u.fields {
		names[f.Key("T").Text()] = true
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

type ref struct {
	id  uint32
	gen uint16
}

func ptrOf(v pdf.Value) ref {
	p := v.GetPtr()
	return ref{p.GetID(), p.GetGen()}
}

// write lays out doc plus the update with /Contents holding size zero
// bytes, and returns the file and the offsets of the /Contents hex string
// (from '<' to just past '>'), which the signature does not cover.
func (u *update) write(doc []byte, po PDFOptions, at time.Time, size int) (out []byte, gap [2]int, err error) {
	// Objects are read lazily while they are copied, so the PDF library's
	// panics on malformed input can come from here too.
	defer func() {
		if r := recover(); r != nil {
			out, gap, err = nil, [2]int{}, fmt.Errorf("%w: %v", ErrPDF, r)
		}
	}()
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
	catRef, pageRef := ptrOf(u.catalog), ptrOf(u.page)

	// Catalog, pointing at the new AcroForm.
	begin(catRef)
	b.WriteString("<<")
	for _, k := range u.catalog.Keys() {
		if k == "AcroForm" {
			continue
		}
		writeName(&b, k)
		b.WriteByte(' ')
		writeValue(&b, u.catalog.Key(k), catRef)
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "/AcroForm %d 0 R>>", acroRef.id)
	end()

	// Page, with the widget added to its annotations.
	begin(pageRef)
	b.WriteString("<<")
	for _, k := range u.page.Keys() {
		if k == "Annots" {
			continue
		}
		writeName(&b, k)
		b.WriteByte(' ')
		writeValue(&b, u.page.Key(k), pageRef)
		b.WriteByte('\n')
	}
	b.WriteString("/Annots [")
	for _, a := range u.annots {
		writeValue(&b, a, u.annotsPtr)
		b.WriteByte(' ')
	}
	fmt.Fprintf(&b, "%d 0 R]>>", widgetRef.id)
	end()

	// AcroForm: the old one's entries, its fields and ours.
	begin(acroRef)
	b.WriteString("<<")
	if u.acroForm.Kind() == pdf.Dict {
		parent := ptrOf(u.acroForm)
		for _, k := range u.acroForm.Keys() {
			if k == "Fields" || k == "SigFlags" {
				continue
			}
			writeName(&b, k)
			b.WriteByte(' ')
			writeValue(&b, u.acroForm.Key(k), parent)
			b.WriteByte('\n')
		}
	}
	b.WriteString("/Fields [")
	for _, f := range u.fields {
		writeValue(&b, f, u.fieldsPtr)
		b.WriteByte(' ')
	}
	// SigFlags 3: SignaturesExist and AppendOnly.
	fmt.Fprintf(&b, "%d 0 R]\n/SigFlags 3>>", widgetRef.id)
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

	// Appearance: a box with who signed and when, or empty when invisible.
	w, h := rect[2]-rect[0], rect[3]-rect[1]
	var ap bytes.Buffer
	if po.Visible {
		fmt.Fprintf(&ap, "q 0.95 0.95 0.95 rg 0 0 %s %s re f 0.2 G 0.8 w 0.4 0.4 %s %s re S Q\n", num(w), num(h), num(w-0.8), num(h-0.8))
		lines := []string{"Signed by: " + po.Name, "Date: " + at.Format("2006-01-02 15:04:05 MST")}
		if po.Reason != "" {
			lines = append(lines, "Reason: "+po.Reason)
		}
		if po.Location != "" {
			lines = append(lines, "Location: "+po.Location)
		}
		fmt.Fprintf(&ap, "BT 0 g /F1 8 Tf 10 TL 4 %s Td\n", num(h-12))
		for _, l := range lines {
			ap.WriteString("(")
			ap.Write(escapeLiteral(winAnsi(l)))
			ap.WriteString(") Tj T*\n")
		}
		ap.WriteString("ET")
	}
	begin(apRef)
	fmt.Fprintf(&b, "<</Type /XObject /Subtype /Form /BBox [0 0 %s %s] /Resources <</Font <</F1 <</Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding>>>>>> /Length %d>>\nstream\n",
		num(w), num(h), ap.Len())
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
	gap = [2]int{b.Len(), 0}
	b.WriteByte('<')
	b.Write(bytes.Repeat([]byte{'0'}, 2*size))
	b.WriteByte('>')
	gap[1] = b.Len()
	b.WriteString(">>")
	end()

	// Cross-reference section in the kind the file already uses.
	xrefAt := b.Len()
	ids := make([]uint32, 0, len(offsets)+1)
	for id := range offsets {
		ids = append(ids, id)
	}
	trailerKeys := func() {
		fmt.Fprintf(&b, "/Prev %d /Root %d %d R", u.prevXref, catRef.id, catRef.gen)
		for _, k := range []string{"Info", "ID"} {
			if v := u.trailer.Key(k); !v.IsNull() {
				fmt.Fprintf(&b, " /%s ", k)
				writeValue(&b, v, ptrOf(u.trailer))
			}
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
			return nil, [2]int{}, fmt.Errorf("%w: file over 4 GiB", ErrPDF)
		}
		fmt.Fprintf(&b, "%d 0 obj\n<</Type /XRef /Size %d /W [1 4 2] /Index [", xref, next)
		for _, run := range runs(ids) {
			fmt.Fprintf(&b, "%d %d ", run[0], run[1])
		}
		b.WriteString("] ")
		trailerKeys()
		fmt.Fprintf(&b, " /Length %d>>\nstream\n", data.Len())
		b.Write(data.Bytes())
		b.WriteString("\nendstream\nendobj\n")
	} else {
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		b.WriteString("xref\n")
		i := 0
		for _, run := range runs(ids) {
			fmt.Fprintf(&b, "%d %d\n", run[0], run[1])
			for range run[1] {
				fmt.Fprintf(&b, "%010d %05d n\r\n", offsets[ids[i]], gens[ids[i]])
				i++
			}
		}
		fmt.Fprintf(&b, "trailer\n<</Size %d ", next)
		trailerKeys()
		b.WriteString(">>\n")
	}
	fmt.Fprintf(&b, "startxref\n%d\n%%%%EOF\n", xrefAt)

	out = b.Bytes()
	br := fmt.Sprintf("[0 %d %d %d]", gap[0], gap[1], len(out)-gap[1])
	if len(br) > 40 {
		return nil, [2]int{}, fmt.Errorf("%w: byte range too long", ErrPDF)
	}
	copy(out[brAt:], br)
	return out, gap, nil
}

// runs groups sorted ids into [first, count] subsections.
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

// writeValue writes v in PDF syntax. Values reached through a reference
// carry that object's pointer, so any pointer other than parent's is
// written back as a reference rather than copied.
func writeValue(b *bytes.Buffer, v pdf.Value, parent ref) {
	if p := ptrOf(v); p != parent && p.id != 0 {
		fmt.Fprintf(b, "%d %d R", p.id, p.gen)
		return
	}
	switch v.Kind() {
	case pdf.Null:
		b.WriteString("null")
	case pdf.Bool:
		b.WriteString(strconv.FormatBool(v.Bool()))
	case pdf.Integer:
		b.WriteString(strconv.FormatInt(v.Int64(), 10))
	case pdf.Real:
		b.WriteString(num(v.Float64()))
	case pdf.String:
		writeString(b, v.RawString())
	case pdf.Name:
		writeName(b, v.Name())
	case pdf.Array:
		b.WriteByte('[')
		for i := range v.Len() {
			if i > 0 {
				b.WriteByte(' ')
			}
			writeValue(b, v.Index(i), parent)
		}
		b.WriteByte(']')
	case pdf.Dict:
		b.WriteString("<<")
		for _, k := range v.Keys() {
			writeName(b, k)
			b.WriteByte(' ')
			writeValue(b, v.Key(k), parent)
			b.WriteByte('\n')
		}
		b.WriteString(">>")
	case pdf.Stream:
		// A direct stream cannot occur; streams are always indirect.
		b.WriteString("null")
	}
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

func writeName(b *bytes.Buffer, n string) {
	b.WriteByte('/')
	for i := 0; i < len(n); i++ {
		c := n[i]
		if c < 0x21 || c > 0x7e || strings.IndexByte("#()<>[]{}/%", c) >= 0 {
			fmt.Fprintf(b, "#%02X", c)
			continue
		}
		b.WriteByte(c)
	}
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

// checkObjectStreams refuses object streams that would hang the PDF
// library, which follows /Extends without noticing a cycle and reads /N
// entries even past the end of the stream. Each object stream is loaded
// directly (object streams never live in object streams) before any
// object inside one is resolved.
func checkObjectStreams(r *pdf.Reader) error {
	const maxN = 1 << 20
	xs := r.Xref()
	checked := map[uint32]bool{}
	for i := range xs {
		sp := xs[i].Stream()
		if sp.GetID() == 0 || checked[sp.GetID()] {
			continue
		}
		seen := map[uint32]bool{}
		for s := sp; s.GetID() != 0; {
			if seen[s.GetID()] {
				return fmt.Errorf("object stream %d extends itself", s.GetID())
			}
			seen[s.GetID()] = true
			checked[s.GetID()] = true
			v := r.Resolve(s, s)
			if v.Kind() != pdf.Stream || v.Key("Type").Name() != "ObjStm" {
				return fmt.Errorf("object %d is not an object stream", s.GetID())
			}
			if n := v.Key("N").Int64(); n < 0 || n > maxN {
				return fmt.Errorf("object stream %d claims %d objects", s.GetID(), n)
			}
			ext := v.Key("Extends")
			if ext.IsNull() {
				break
			}
			s = ext.GetPtr()
			if s == sp {
				return fmt.Errorf("object stream %d extends itself", sp.GetID())
			}
		}
	}
	return nil
}
