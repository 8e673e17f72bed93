package facturae

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/signer/xades"
)

// ErrInvalid is an invoice that is not a FacturaE 3.2.x invoice that can
// be signed; the message names the line.
var ErrInvalid = errs.Sentinel(errs.Invalid, "invalid_facturae", "not a valid FacturaE invoice")

// Versions are the namespaces of the FacturaE versions taken, by their
// SchemaVersion.
var Versions = map[string]string{
	"3.2":   "http://www.facturae.es/Facturae/2009/v3.2/Facturae",
	"3.2.1": "http://www.facturae.es/Facturae/2014/v3.2.1/Facturae",
	"3.2.2": "http://www.facturae.gob.es/formato/Versiones/Facturaev3_2_2.xml",
}

// Sign checks the invoice and signs it enveloped with XAdES-EPES under
// the FacturaE policy 3.1; opt's level, hash, key options and timestamper
// are kept, its packaging and policy are FacturaE's. The FacturaE policy
// canonicalises with C14N 1.0, which every FacturaE validator runs.
func Sign(ctx context.Context, invoice []byte, key crypto.Signer, chain []*x509.Certificate, opt xades.Options) ([]byte, error) {
	if err := Check(invoice, opt.Limits); err != nil {
		return nil, err
	}
	opt.Packaging = xades.Enveloped
	opt.Policy = &xades.PolicyFacturae31
	if opt.Canonicalization == "" {
		opt.Canonicalization = xades.C14N10
	}
	if opt.MimeType == "" {
		opt.MimeType = "text/xml"
	}
	return xades.Sign(ctx, invoice, key, chain, opt)
}

// node is an element of the invoice with the line it starts on.
type node struct {
	name     xml.Name
	line     int
	text     strings.Builder
	children []*node
}

func (n *node) child(local string) *node {
	for _, c := range n.children {
		if c.name.Space == "" && c.name.Local == local {
			return c
		}
	}
	return nil
}

func (n *node) value(local string) string {
	if c := n.child(local); c != nil {
		return strings.TrimSpace(c.text.String())
	}
	return ""
}

func invalid(line int, format string, a ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrInvalid, line, fmt.Sprintf(format, a...))
}

// Check reads invoice as a FacturaE 3.2.x invoice (see the package
// documentation for what is checked).
func Check(invoice []byte, lim xades.Limits) error {
	// The safety walk first: nothing below reads XML it has not passed.
	if _, err := xades.Parse(invoice, lim); err != nil {
		return err
	}
	root, err := tree(invoice)
	if err != nil {
		return err
	}
	version := ""
	for v, ns := range Versions {
		if root.name.Space == ns {
			version = v
		}
	}
	if root.name.Local != "Facturae" || version == "" {
		return invalid(root.line, "the root element is {%s}%s, not Facturae in the namespace of FacturaE 3.2, 3.2.1 or 3.2.2", root.name.Space, root.name.Local)
	}
	// The root's content in the schema's order: FileHeader, Parties,
	// Invoices, Extensions?, ds:Signature?.
	if err := sequence(root, []step{{"FileHeader", 1}, {"Parties", 1}, {"Invoices", 1}, {"Extensions", 0}}, true); err != nil {
		return err
	}
	fh := root.child("FileHeader")
	if err := sequence(fh, []step{{"SchemaVersion", 1}, {"Modality", 1}, {"InvoiceIssuerType", 1}, {"ThirdParty", 0}, {"Batch", 1}, {"FactoringAssignmentData", 0}}, false); err != nil {
		return err
	}
	if got := fh.value("SchemaVersion"); got != version {
		return invalid(fh.child("SchemaVersion").line, "SchemaVersion %q in a FacturaE %s document", got, version)
	}
	modality := fh.value("Modality")
	if modality != "I" && modality != "L" {
		return invalid(fh.child("Modality").line, "Modality %q: want I (individual) or L (batch)", modality)
	}
	switch it := fh.value("InvoiceIssuerType"); it {
	case "EM", "RE":
	case "TE":
		if fh.child("ThirdParty") == nil {
			return invalid(fh.child("InvoiceIssuerType").line, "InvoiceIssuerType TE (a third party issues) needs ThirdParty")
		}
	default:
		return invalid(fh.child("InvoiceIssuerType").line, "InvoiceIssuerType %q: want EM, RE or TE", it)
	}
	batch := fh.child("Batch")
	if err := sequence(batch, []step{{"BatchIdentifier", 1}, {"InvoicesCount", 1}, {"TotalInvoicesAmount", 1}, {"TotalOutstandingAmount", 1},
		{"TotalExecutableAmount", 1}, {"InvoiceCurrencyCode", 1}}, false); err != nil {
		return err
	}
	count, err := strconv.Atoi(batch.value("InvoicesCount"))
	if err != nil || count < 1 {
		return invalid(batch.child("InvoicesCount").line, "InvoicesCount %q: want a positive whole number", batch.value("InvoicesCount"))
	}
	parties := root.child("Parties")
	if err := sequence(parties, []step{{"SellerParty", 1}, {"BuyerParty", 1}}, false); err != nil {
		return err
	}
	for _, p := range parties.children {
		if err := party(p); err != nil {
			return err
		}
	}
	invoices := root.child("Invoices")
	n := 0
	for _, inv := range invoices.children {
		if inv.name.Space != "" || inv.name.Local != "Invoice" {
			return invalid(inv.line, "<%s> in Invoices: want Invoice", inv.name.Local)
		}
		n++
		if err := sequence(inv, []step{{"InvoiceHeader", 1}, {"InvoiceIssueData", 1}, {"TaxesOutputs", 1}, {"TaxesWithheld", 0},
			{"InvoiceTotals", 1}, {"Items", 1}, {"PaymentDetails", 0}, {"LegalLiterals", 0}, {"AdditionalData", 0}}, false); err != nil {
			return err
		}
	}
	switch {
	case n == 0:
		return invalid(invoices.line, "Invoices holds no Invoice")
	case modality == "I" && n != 1:
		return invalid(invoices.line, "Modality I (individual) with %d invoices", n)
	case n != count:
		return invalid(batch.child("InvoicesCount").line, "InvoicesCount %d, but Invoices holds %d", count, n)
	}
	return nil
}

// party checks a SellerParty or BuyerParty: TaxIdentification, then the
// optional identification and centres, then LegalEntity or Individual.
func party(p *node) error {
	ti := p.child("TaxIdentification")
	if ti == nil || len(p.children) == 0 || p.children[0] != ti {
		return invalid(p.line, "%s: TaxIdentification must come first", p.name.Local)
	}
	if err := sequence(ti, []step{{"PersonTypeCode", 1}, {"ResidenceTypeCode", 1}, {"TaxIdentificationNumber", 1}}, false); err != nil {
		return err
	}
	if c := ti.value("PersonTypeCode"); c != "F" && c != "J" {
		return invalid(ti.child("PersonTypeCode").line, "PersonTypeCode %q: want F (individual) or J (legal entity)", c)
	}
	if c := ti.value("ResidenceTypeCode"); c != "E" && c != "R" && c != "U" {
		return invalid(ti.child("ResidenceTypeCode").line, "ResidenceTypeCode %q: want E, R or U", c)
	}
	last := p.children[len(p.children)-1]
	if last.name.Space != "" || (last.name.Local != "LegalEntity" && last.name.Local != "Individual") || (p.child("LegalEntity") != nil) == (p.child("Individual") != nil) {
		return invalid(p.line, "%s: want one LegalEntity or Individual, last", p.name.Local)
	}
	return nil
}

// step is an element of a sequence: its name and whether it is required.
type step struct {
	local    string
	required int
}

// sequence checks that n's child elements are steps, in order, each at
// most once and the required ones present. signature allows a
// ds:Signature last, which is refused: the invoice is signed already.
func sequence(n *node, steps []step, signature bool) error {
	i := 0
	for _, c := range n.children {
		if signature && c.name.Space == xades.NSDSig && c.name.Local == "Signature" {
			return invalid(c.line, "the invoice is signed already (FacturaE takes one signature)")
		}
		for i < len(steps) && (c.name.Space != "" || c.name.Local != steps[i].local) {
			if steps[i].required > 0 {
				return invalid(c.line, "<%s> in %s where %s is required", c.name.Local, n.name.Local, steps[i].local)
			}
			i++
		}
		if i == len(steps) {
			return invalid(c.line, "<%s> is not expected here in %s (out of order, repeated or unknown)", c.name.Local, n.name.Local)
		}
		i++
	}
	for ; i < len(steps); i++ {
		if steps[i].required > 0 {
			return invalid(n.line, "%s lacks %s", n.name.Local, steps[i].local)
		}
	}
	return nil
}

// tree reads b (already through xades.Parse) into nodes with lines and
// resolved namespaces.
func tree(b []byte) (*node, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = true
	d.CharsetReader = func(label string, r io.Reader) (io.Reader, error) { return r, nil } // UTF-8 only, checked by Parse
	var stack []*node
	var root *node
	line, counted := 1, int64(0) // lines up to offset counted
	for {
		start := d.InputOffset()
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", xades.ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			line += bytes.Count(b[counted:start], []byte("\n"))
			counted = start
			n := &node{name: t.Name, line: line}
			if len(stack) > 0 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			} else {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			}
		}
	}
	return root, nil
}
