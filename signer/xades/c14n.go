package xades

import (
	"bytes"
	"fmt"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// Canonicalisation methods (W3C C14N 1.0, 1.1 and Exclusive C14N 1.0).
// The algorithms themselves are github.com/russellhaering/goxmldsig's;
// this file only gives them the in-scope namespaces of a subtree and
// handles the document level.
const (
	C14N10     = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
	C14N10Cmt  = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments"
	C14N11     = "http://www.w3.org/2006/12/xml-c14n11"
	C14N11Cmt  = "http://www.w3.org/2006/12/xml-c14n11#WithComments"
	ExcC14N    = "http://www.w3.org/2001/10/xml-exc-c14n#"
	ExcC14NCmt = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
)

// canonicalizer returns the algorithm named by uri. prefixes is the
// InclusiveNamespaces PrefixList of exclusive C14N.
func canonicalizer(uri, prefixes string) (dsig.Canonicalizer, bool, error) {
	switch uri {
	case C14N10:
		return dsig.MakeC14N10RecCanonicalizer(), false, nil
	case C14N10Cmt:
		return dsig.MakeC14N10WithCommentsCanonicalizer(), true, nil
	case C14N11:
		return dsig.MakeC14N11Canonicalizer(), false, nil
	case C14N11Cmt:
		return dsig.MakeC14N11WithCommentsCanonicalizer(), true, nil
	case ExcC14N:
		return dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList(prefixes), false, nil
	case ExcC14NCmt:
		return dsig.MakeC14N10ExclusiveWithCommentsCanonicalizerWithPrefixList(prefixes), true, nil
	}
	return nil, false, fmt.Errorf("canonicalisation %q: %w", uri, ErrUnsupported)
}

func exclusive(uri string) bool { return uri == ExcC14N || uri == ExcC14NCmt }

// withoutComments is the variant of uri that drops comments: a reference
// to the document (URI="") or to an element by Id selects no comments, so
// a WithComments transform after it has none to keep.
func withoutComments(uri string) string {
	switch uri {
	case C14N10Cmt:
		return C14N10
	case C14N11Cmt:
		return C14N11
	case ExcC14NCmt:
		return ExcC14N
	}
	return uri
}

// canonElement canonicalises the subtree el as it stands in its document:
// a copy of it gets the namespace declarations in scope from its
// ancestors (exclusive C14N then drops those not visibly used) and, for
// inclusive C14N, the inherited xml:lang and xml:space.
func canonElement(el *etree.Element, uri, prefixes string) ([]byte, error) {
	return canon(el, uri, prefixes, false)
}

// canon is canonElement; consume lets it work on el itself rather than a
// copy when el has no ancestors to take namespaces from: exclusive C14N
// then rewrites el's tree in place, so the caller must not read it again.
// Copying a whole document costs about a quarter of a signature's XML work.
func canon(el *etree.Element, uri, prefixes string, consume bool) ([]byte, error) {
	c, _, err := canonicalizer(uri, prefixes)
	if err != nil {
		return nil, err
	}
	if consume && el.Parent() == nil {
		return c.Canonicalize(el)
	}
	cp := el.Copy()
	declared := map[string]bool{}
	for _, a := range cp.Attr {
		if a.Space == "xmlns" {
			declared[a.Key] = true
		} else if a.Space == "" && a.Key == "xmlns" {
			declared[""] = true
		} else if a.Space == "xml" {
			declared["xml:"+a.Key] = true
		}
	}
	for p := el.Parent(); p != nil; p = p.Parent() {
		for _, a := range p.Attr {
			switch {
			case a.Space == "xmlns" && !declared[a.Key]:
				declared[a.Key] = true
				cp.CreateAttr("xmlns:"+a.Key, a.Value)
			case a.Space == "" && a.Key == "xmlns" && !declared[""]:
				declared[""] = true
				// An empty default namespace in scope adds nothing.
				if a.Value != "" {
					cp.CreateAttr("xmlns", a.Value)
				}
			case a.Space == "xml" && !exclusive(uri) && (a.Key == "lang" || a.Key == "space") && !declared["xml:"+a.Key]:
				declared["xml:"+a.Key] = true
				cp.CreateAttr("xml:"+a.Key, a.Value)
			}
		}
	}
	return c.Canonicalize(cp)
}

// canonDocument canonicalises a whole document (a same-document reference
// URI=""): the root element plus the processing instructions (and, with
// comments, the comments) around it, each separated from the root by a
// line feed as C14N says; the XML declaration and white space outside the
// root are not part of it.
func canonDocument(doc *etree.Document, uri, prefixes string) ([]byte, error) {
	return canonDoc(doc, uri, prefixes, false)
}

// canonDoc is canonDocument; consume is canon's.
func canonDoc(doc *etree.Document, uri, prefixes string, consume bool) ([]byte, error) {
	_, comments, err := canonicalizer(uri, prefixes)
	if err != nil {
		return nil, err
	}
	var before, after bytes.Buffer
	seenRoot := false
	for _, t := range doc.Child {
		var s string
		switch t := t.(type) {
		case *etree.Element:
			seenRoot = true
			continue
		case *etree.ProcInst:
			if t.Target == "xml" {
				continue
			}
			s = "<?" + t.Target
			if t.Inst != "" {
				s += " " + t.Inst
			}
			s += "?>"
		case *etree.Comment:
			if !comments {
				continue
			}
			s = "<!--" + t.Data + "-->"
		default:
			continue
		}
		if seenRoot {
			after.WriteString("\n" + s)
		} else {
			before.WriteString(s + "\n")
		}
	}
	// The root is canonicalised without the document above it: an element
	// whose parent is the document has no ancestors to inherit from.
	r := doc.Root()
	var root []byte
	if consume {
		doc.RemoveChild(r)
		root, err = canon(r, uri, prefixes, true)
	} else {
		root, err = canonElement(r, uri, prefixes)
	}
	if err != nil {
		return nil, err
	}
	out := append(before.Bytes(), root...)
	return append(out, after.Bytes()...), nil
}
