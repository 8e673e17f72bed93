package xades

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"

	"github.com/beevik/etree"

	"github.com/firma-cloud/firma/errs"
)

// Errors of XML input, told apart with errors.Is.
var (
	// ErrMalformed is input that is not well-formed XML.
	ErrMalformed = errs.Sentinel(errs.Invalid, "malformed_xml", "malformed XML")
	// ErrDoctype is XML with a document type declaration: refused whole,
	// since entities declared there are how XXE and entity-expansion bombs
	// work, and a signed document never needs one.
	ErrDoctype = errs.Sentinel(errs.Invalid, "xml_doctype", "XML with a DOCTYPE is refused")
	// ErrTooLarge is XML over a size, depth or element-count limit.
	ErrTooLarge = errs.Sentinel(errs.TooLarge, "xml_too_large", "XML over the size limits")
)

// Limits bound what Parse accepts. The zero value is DefaultLimits.
type Limits struct {
	MaxBytes    int // whole input
	MaxDepth    int // element nesting
	MaxElements int // elements in all
	MaxAttrs    int // attributes on one element
}

// DefaultLimits suit documents a citizen signs: 16 MiB, 256 levels,
// a million elements, 256 attributes on one element.
var DefaultLimits = Limits{MaxBytes: 16 << 20, MaxDepth: 256, MaxElements: 1 << 20, MaxAttrs: 256}

func (l Limits) orDefault() Limits {
	d := DefaultLimits
	if l.MaxBytes > 0 {
		d.MaxBytes = l.MaxBytes
	}
	if l.MaxDepth > 0 {
		d.MaxDepth = l.MaxDepth
	}
	if l.MaxElements > 0 {
		d.MaxElements = l.MaxElements
	}
	if l.MaxAttrs > 0 {
		d.MaxAttrs = l.MaxAttrs
	}
	return d
}

// IsXML reports whether b looks like an XML document (after an optional
// BOM and white space, it starts with '<'), for choosing a default format.
func IsXML(b []byte) bool {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 1 && b[0] == '<' && (b[1] == '?' || b[1] == '!' || isNameStart(b[1]))
}

func isNameStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80
}

// Parse reads an XML document within the limits. It walks the tokens once
// with encoding/xml, which never expands entities other than the five
// predefined ones and never fetches anything, refusing any DOCTYPE (so no
// XXE and no entity bombs), mismatched tags, duplicate attributes (one
// copy would be signed and another read) and input over the limits, and
// builds the etree tree from the same tokens as it goes: the limits are
// checked before each element is added, so memory stays bounded, and the
// document is read once rather than once to check it and again to build it.
func Parse(b []byte, lim Limits) (*etree.Document, error) {
	p, err := parse(b, lim)
	if err != nil {
		return nil, err
	}
	return p.doc, nil
}

// parsed is a document with where its root element closes in the input:
// rootEnd is the offset of the root's end tag, or, for a root written as
// an empty-element tag, of its "/>"; selfClosed tells which. Sign puts an
// enveloped signature there, leaving every other byte of the document as
// the citizen sent it.
type parsed struct {
	doc        *etree.Document
	rootEnd    int
	selfClosed bool
	rootName   string
	// ends, when asked for, is where each element closes, for Extend to
	// add unsigned properties without rewriting what is signed.
	ends map[*etree.Element]elementEnd
}

type elementEnd struct {
	off        int
	selfClosed bool
}

// insert returns b, the document p was read from, with el as the root
// element's last child: the document's own bytes are kept as they came
// (the signature covers their canonical form, which re-serialising the
// whole tree would only reproduce at a cost) and only el is written out.
func (p *parsed) insert(b []byte, el *etree.Element) []byte {
	return insertAt(b, elementEnd{p.rootEnd, p.selfClosed}, p.rootName, el)
}

// insertAt returns b with els written out as the last children of the
// element named name that closes at end.
func insertAt(b []byte, end elementEnd, name string, els ...*etree.Element) []byte {
	var add bytes.Buffer
	for _, el := range els {
		el.WriteTo(&add, &etree.WriteSettings{})
	}
	out := make([]byte, 0, len(b)+add.Len()+len(name)+4)
	if end.selfClosed {
		// <e .../> becomes <e ...>added</e>.
		out = append(out, b[:end.off-2]...)
		out = append(out, '>')
		out = append(out, add.Bytes()...)
		out = append(out, "</"+name+">"...)
	} else {
		out = append(out, b[:end.off]...)
		out = append(out, add.Bytes()...)
	}
	return append(out, b[end.off:]...)
}

func parse(b []byte, lim Limits) (*parsed, error) {
	return parseTracking(b, lim, false)
}

func parseTracking(b []byte, lim Limits, track bool) (*parsed, error) {
	lim = lim.orDefault()
	if len(b) > lim.MaxBytes {
		return nil, fmt.Errorf("%d bytes, over %d: %w", len(b), lim.MaxBytes, ErrTooLarge)
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	// Only UTF-8 (and its ASCII subset) is read: a charset reader would be
	// one more parser of untrusted input.
	d.CharsetReader = func(label string, r io.Reader) (io.Reader, error) {
		switch label {
		case "utf-8", "UTF-8", "utf8", "us-ascii", "US-ASCII":
			return r, nil
		}
		return nil, fmt.Errorf("encoding %q not supported (want UTF-8)", label)
	}
	doc := etree.NewDocument()
	p := &parsed{doc: doc, rootEnd: -1}
	if track {
		p.ends = map[*etree.Element]elementEnd{}
	}
	elements, roots := 0, 0
	// RawToken leaves namespaces untranslated, as etree keeps them
	// (prefixes resolved on demand); tags are matched here.
	var open []xml.Name
	var startEnds []int64 // where each open element's start tag ends
	cur := &doc.Element
	for {
		before := d.InputOffset()
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrMalformed, line(b, d.InputOffset()), err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return nil, fmt.Errorf("line %d: %w", line(b, d.InputOffset()), ErrDoctype)
		case xml.StartElement:
			open = append(open, t.Name)
			startEnds = append(startEnds, d.InputOffset())
			elements++
			if len(open) == 1 {
				roots++
				if roots > 1 {
					return nil, fmt.Errorf("%w: line %d: a second root element", ErrMalformed, line(b, d.InputOffset()))
				}
			}
			if len(open) > lim.MaxDepth {
				return nil, fmt.Errorf("nesting over %d at line %d: %w", lim.MaxDepth, line(b, d.InputOffset()), ErrTooLarge)
			}
			if elements > lim.MaxElements {
				return nil, fmt.Errorf("more than %d elements: %w", lim.MaxElements, ErrTooLarge)
			}
			if len(t.Attr) > lim.MaxAttrs {
				return nil, fmt.Errorf("%d attributes at line %d: %w", len(t.Attr), line(b, d.InputOffset()), ErrTooLarge)
			}
			for i := range t.Attr {
				for j := range i {
					if t.Attr[i].Name == t.Attr[j].Name {
						return nil, fmt.Errorf("%w: line %d: attribute %s repeated", ErrMalformed, line(b, d.InputOffset()), t.Attr[i].Name.Local)
					}
				}
			}
			el := cur.CreateElement(t.Name.Local)
			el.Space = t.Name.Space
			el.Attr = make([]etree.Attr, 0, len(t.Attr))
			for _, a := range t.Attr {
				key := a.Name.Local
				if a.Name.Space != "" {
					key = a.Name.Space + ":" + key
				}
				el.CreateAttr(key, a.Value)
			}
			cur = el
		case xml.EndElement:
			if len(open) == 0 || open[len(open)-1] != t.Name {
				return nil, fmt.Errorf("%w: line %d: </%s> does not close the open element", ErrMalformed, line(b, d.InputOffset()), t.Name.Local)
			}
			open = open[:len(open)-1]
			// An empty-element tag's end comes with no bytes of its own,
			// right after the "/>" of its start.
			selfClosed := startEnds[len(startEnds)-1] == before && before >= 2 && string(b[before-2:before]) == "/>"
			startEnds = startEnds[:len(startEnds)-1]
			if p.ends != nil {
				p.ends[cur] = elementEnd{int(before), selfClosed}
			}
			if len(open) == 0 {
				p.rootEnd = int(before)
				p.selfClosed = selfClosed
				p.rootName = cur.FullTag()
			}
			cur = cur.Parent()
		case xml.CharData:
			if len(open) == 0 {
				if len(bytes.TrimSpace(t)) > 0 {
					return nil, fmt.Errorf("%w: line %d: text outside the root element", ErrMalformed, line(b, d.InputOffset()))
				}
				continue // white space around the root is no part of the document's data
			}
			cur.CreateText(string(t))
		case xml.Comment:
			cur.CreateComment(string(t))
		case xml.ProcInst:
			cur.CreateProcInst(t.Target, string(t.Inst))
		}
	}
	if len(open) > 0 {
		return nil, fmt.Errorf("%w: <%s> is not closed", ErrMalformed, open[len(open)-1].Local)
	}
	if roots != 1 {
		return nil, fmt.Errorf("%w: %d root elements (want 1)", ErrMalformed, roots)
	}
	return p, nil
}

// line is the 1-based line of offset in b.
func line(b []byte, off int64) int {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	return bytes.Count(b[:off], []byte("\n")) + 1
}
