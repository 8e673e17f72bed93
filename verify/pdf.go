package verify

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"

	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/internal/cmsparse"
	"github.com/firma-cloud/firma/internal/pdfobj"
	"github.com/firma-cloud/firma/tsa"
)

// ErrNoSignature is returned for a PDF without signature fields.
var ErrNoSignature = errs.Sentinel(errs.Invalid, "no_signature", "no signature in the document")

// pdfSig is one signature dictionary found in a PDF.
type pdfSig struct {
	field     string
	subFilter string
	byteRange []int64
	contents  []byte
	m         string
}

// PDF verifies every signature of a PDF document.
func (v *Verifier) PDF(ctx context.Context, doc []byte) (*Report, error) {
	start := time.Now()
	sigs, err := pdfSignatures(doc)
	if err != nil {
		return nil, err
	}
	if len(sigs) == 0 {
		return nil, ErrNoSignature
	}
	dss, dssAt := readDSS(doc)
	// The DSS serves the whole document: with several signers it may
	// hold another signer's material alone.
	signers := 0
	for _, ps := range sigs {
		if ps.subFilter != "ETSI.RFC3161" {
			signers++
		}
	}
	var out []*Signature
	for _, ps := range sigs {
		out = append(out, v.pdfSignature(ctx, doc, ps, dss, signers))
	}
	archiveByDocTimestamp(out, sigs, dssAt)
	return v.finish("pades", start, out...), nil
}

// archiveByDocTimestamp raises B-LT signatures to B-LTA when a valid
// document timestamp covers the document security store (EN 319 142-1
// 5.5).
func archiveByDocTimestamp(out []*Signature, sigs []pdfSig, dssAt int) {
	if dssAt < 0 {
		return
	}
	for i, ts := range out {
		if ts.Format != FormatDocTimestamp || verdictOf(ts.Checks) != Valid || len(sigs[i].byteRange) != 4 || sigs[i].byteRange[1] <= int64(dssAt) {
			continue
		}
		for _, s := range out {
			if s.Level == "B-LT" {
				s.Level = "B-LTA"
				s.add(CheckArchiveTimestamp, Passed, fmt.Sprintf("document timestamp at %s by %s covers the signature and the document security store",
					ts.TimestampTime.UTC().Format(time.RFC3339), ts.TSA))
			}
		}
		return
	}
}

// readDSS returns the validation material of the PDF's document security
// store and where its dictionary is in the file; nil and -1 when there
// is none.
func readDSS(doc []byte) (*embedded, int) {
	ctx, err := pdfobj.ReadContext(doc)
	if err != nil {
		return nil, -1
	}
	xt := ctx.XRefTable
	cat, err := xt.Catalog()
	if err != nil {
		return nil, -1
	}
	dss := pdfobj.Dict(xt, cat["DSS"])
	if dss == nil {
		return nil, -1
	}
	e := &embedded{}
	stream := func(o types.Object) []byte {
		sd, _, err := xt.DereferenceStreamDict(o)
		if err != nil || sd == nil || sd.Decode() != nil {
			return nil
		}
		return sd.Content
	}
	for _, o := range pdfobj.Array(xt, dss["Certs"]) {
		if c, err := x509.ParseCertificate(stream(o)); err == nil {
			e.certs = append(e.certs, c)
		}
	}
	for _, o := range pdfobj.Array(xt, dss["OCSPs"]) {
		if b := stream(o); b != nil {
			e.ocsp = append(e.ocsp, b)
		}
	}
	for _, o := range pdfobj.Array(xt, dss["CRLs"]) {
		if l, err := x509.ParseRevocationList(stream(o)); err == nil {
			e.crls = append(e.crls, l)
		}
	}
	at := bytes.LastIndex(doc, []byte("/DSS"))
	if len(e.ocsp) == 0 && len(e.crls) == 0 {
		return nil, at
	}
	return e, at
}

func (v *Verifier) pdfSignature(ctx context.Context, doc []byte, ps pdfSig, dss *embedded, signers int) *Signature {
	s := &Signature{Format: FormatPAdES, Field: ps.field}
	switch ps.subFilter {
	case "ETSI.CAdES.detached":
	case "adbe.pkcs7.detached":
		s.Format = FormatPDFPKCS7
	case "ETSI.RFC3161":
		return v.docTimestamp(doc, ps)
	default:
		s.add(CheckIntegrity, Indeterminate, "signature sub-filter /"+ps.subFilter+" is not supported (want ETSI.CAdES.detached or adbe.pkcs7.detached)")
		return s
	}
	covered, whole, why := checkByteRange(doc, ps.byteRange)
	if covered == nil {
		s.add(CheckByteRange, Failed, why)
		return s
	}
	s.CoversWholeDocument = &whole
	s.add(CheckByteRange, Passed, why)
	st, why := changesAfter(doc, ps.byteRange, whole)
	s.add(CheckChanges, st, why)
	parts, err := parseCMS(ps.contents)
	if err != nil {
		s.add(CheckIntegrity, Failed, err.Error())
		return s
	}
	if len(parts) != 1 {
		s.add(CheckIntegrity, Failed, fmt.Sprintf("a PDF signature holds exactly one signer, this one %d", len(parts)))
		return s
	}
	p := parts[0]
	p.signers = signers
	if p.hash == 0 {
		s.DigestAlg = p.hashName
		s.add(CheckIntegrity, Failed, "digest algorithm "+p.hashName+" is not accepted (want SHA-256, SHA-384 or SHA-512)")
		return s
	}
	h := p.hash.New()
	for _, part := range covered {
		h.Write(part)
	}
	if dss != nil {
		p.ltv = dss.with(p.ltv)
		p.certs = append(p.certs, dss.certs...)
	}
	v.check(ctx, s, p, h.Sum(nil))
	if s.SigningTime.IsZero() {
		s.SigningTime = pdfDate(ps.m)
	}
	return s
}

// docTimestamp checks a PAdES document timestamp: a bare RFC 3161 token
// whose imprint is the digest of the byte range.
func (v *Verifier) docTimestamp(doc []byte, ps pdfSig) *Signature {
	s := &Signature{Format: FormatDocTimestamp, Field: ps.field}
	covered, whole, why := checkByteRange(doc, ps.byteRange)
	if covered == nil {
		s.add(CheckByteRange, Failed, why)
		return s
	}
	s.CoversWholeDocument = &whole
	s.add(CheckByteRange, Passed, why)
	st, why := changesAfter(doc, ps.byteRange, whole)
	s.add(CheckChanges, st, why)
	der := ps.contents
	var raw asn1.RawValue
	if _, err := asn1.Unmarshal(der, &raw); err == nil {
		der = raw.FullBytes // drop the zero padding
	}
	ts, err := cmsparse.Timestamp(der)
	if err != nil || !ts.HashAlgorithm.Available() {
		s.add(CheckTimestamp, Failed, fmt.Sprintf("document timestamp token does not verify: %v", err))
		return s
	}
	h := ts.HashAlgorithm.New()
	for _, part := range covered {
		h.Write(part)
	}
	tok, err := tsa.VerifyToken(der, tsa.VerifyOptions{Roots: v.cfg.TSARoots, Intermediates: v.cfg.Intermediates, Hash: ts.HashAlgorithm, Digest: h.Sum(nil)})
	switch {
	case errors.Is(err, tsa.ErrUntrusted):
		s.add(CheckTimestamp, Indeterminate, "document timestamp is intact but its TSA does not chain to a configured TSA root: "+err.Error())
		return s
	case err != nil:
		s.add(CheckTimestamp, Failed, "document timestamp: "+err.Error())
		return s
	}
	s.TimestampTime, s.TSA, s.ValidationTime = tok.Time, tok.Cert.Subject.String(), tok.Time
	s.add(CheckTimestamp, Passed, fmt.Sprintf("the covered bytes were timestamped at %s by %s (serial %s)",
		tok.Time.UTC().Format(time.RFC3339), tok.Cert.Subject.CommonName, tok.Serial))
	return s
}

// changesAfter runs laterChanges for a signature that does not cover the
// whole file.
func changesAfter(doc []byte, br []int64, whole bool) (Status, string) {
	if whole {
		return Passed, "no update follows the signature"
	}
	return laterChanges(doc, br[2]+br[3])
}

// checkByteRange returns the parts of doc a /ByteRange covers, whether it
// covers the whole file, and why it is acceptable or not. The one gap
// must be exactly the /Contents hex string, so no unsigned bytes other
// than the signature itself can hide inside the signed revision.
func checkByteRange(doc []byte, br []int64) ([][]byte, bool, string) {
	if len(br) != 4 {
		return nil, false, fmt.Sprintf("/ByteRange has %d numbers, want 4", len(br))
	}
	a, b, c, d := br[0], br[1], br[2], br[3]
	n := int64(len(doc))
	if a != 0 || b <= 0 || c <= b || d < 0 || c+d > n {
		return nil, false, fmt.Sprintf("/ByteRange %v does not fit the %d-byte file", br, n)
	}
	gap := doc[b:c]
	if len(gap) < 2 || gap[0] != '<' || gap[len(gap)-1] != '>' || !isHex(gap[1:len(gap)-1]) {
		return nil, false, "the bytes /ByteRange leaves out are not just the /Contents hex string"
	}
	end := c + d
	whole := end == n
	why := "covers the whole file except the signature value"
	if !whole {
		tail := bytes.TrimRight(doc[:end], "\r\n")
		if !bytes.HasSuffix(tail, []byte("%%EOF")) {
			return nil, false, "the signed range does not end a revision of the file"
		}
		why = fmt.Sprintf("covers revision of %d of %d bytes; the rest was appended later as incremental updates", end, n)
	}
	return [][]byte{doc[a:b], doc[c:end]}, whole, why
}

func isHex(b []byte) bool {
	for _, x := range b {
		if !('0' <= x && x <= '9' || 'a' <= x && x <= 'f' || 'A' <= x && x <= 'F') {
			return false
		}
	}
	return true
}

// pdfSignatures finds the signature fields of the latest revision.
func pdfSignatures(doc []byte) ([]pdfSig, error) {
	ctx, err := readContext(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: pdf: %w", ErrMalformed, err)
	}
	xt := ctx.XRefTable
	var sigs []pdfSig
	seen := map[string]bool{}
	visited := map[int]bool{}
	var walk func(o types.Object, fieldName, ft string, depth int)
	walk = func(o types.Object, fieldName, ft string, depth int) {
		// A field tree with a cycle or shared kids is walked once per node.
		if ir, ok := o.(types.IndirectRef); ok {
			if visited[ir.ObjectNumber.Value()] {
				return
			}
			visited[ir.ObjectNumber.Value()] = true
		}
		f := dict(xt, o)
		if depth > 32 || f == nil {
			return
		}
		if t := text(xt, f["T"]); t != "" {
			if fieldName != "" {
				fieldName += "."
			}
			fieldName += t
		}
		if x := name(xt, f["FT"]); x != "" {
			ft = x
		}
		for _, k := range array(xt, f["Kids"]) {
			walk(k, fieldName, ft, depth+1)
		}
		sv := dict(xt, f["V"])
		if ft != "Sig" || sv == nil || seen[fieldName] {
			return
		}
		seen[fieldName] = true
		ps := pdfSig{field: fieldName, subFilter: name(xt, sv["SubFilter"]), contents: raw(xt, sv["Contents"]), m: text(xt, sv["M"])}
		for _, x := range array(xt, sv["ByteRange"]) {
			n, ok := number(xt, x)
			if !ok {
				n = -1 // refused by checkByteRange
			}
			ps.byteRange = append(ps.byteRange, n)
		}
		sigs = append(sigs, ps)
	}
	for _, f := range array(xt, dict(xt, catalog(ctx)["AcroForm"])["Fields"]) {
		walk(f, "", "", 0)
	}
	return sigs, nil
}

// pdfDate parses a PDF date string (D:YYYYMMDDHHmmSSOHH'mm'); zero if it
// cannot.
func pdfDate(s string) time.Time {
	s = trimPrefix(s, "D:")
	for _, layout := range []string{"20060102150405Z07'00'", "20060102150405Z0700", "20060102150405Z07'00", "20060102150405Z", "20060102150405"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

func trimPrefix(s, p string) string {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}
