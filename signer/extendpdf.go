package signer

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"sort"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"

	"github.com/firma-cloud/firma/signer/ltv"
)

// pdfSignature is one signature dictionary of a PDF: its sub-filter, the
// DER in /Contents without the zero padding, and where its byte range
// ends (to order signatures as they were added).
type pdfSignature struct {
	subFilter string
	der       []byte
	end       int64
}

// pdfSignatures returns the signature and document timestamp
// dictionaries of doc, oldest first.
func pdfSignatures(doc []byte) ([]pdfSignature, error) {
	ctx, err := readContext(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPDF, err)
	}
	xt := ctx.XRefTable
	var out []pdfSignature
	for n, e := range xt.Table {
		if e == nil || e.Free || n == 0 {
			continue
		}
		d, ok := e.Object.(types.Dict)
		if !ok {
			continue
		}
		sf := name(xt, d["SubFilter"])
		switch sf {
		case "ETSI.CAdES.detached", "adbe.pkcs7.detached", "ETSI.RFC3161":
		default:
			continue
		}
		br := array(xt, d["ByteRange"])
		if len(br) != 4 {
			continue
		}
		var contents []byte
		switch v := d["Contents"].(type) {
		case types.HexLiteral:
			contents, _ = v.Bytes()
		case types.StringLiteral:
			contents, _ = types.Unescape(v.Value())
		}
		var raw asn1.RawValue
		if _, err := asn1.Unmarshal(contents, &raw); err != nil {
			return nil, fmt.Errorf("%w: object %d: /Contents is not DER: %v", ErrPDF, n, err)
		}
		out = append(out, pdfSignature{subFilter: sf, der: raw.FullBytes, end: int64(number(xt, br[2]) + number(xt, br[3]))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].end < out[j].end })
	return out, nil
}

// ExtendPAdES raises the signed PDF doc to opt.Level by incremental
// updates, so that every signature already there stays valid:
//   - B-T: the last signature must already carry a signature timestamp
//     (firma signs PDFs at B-T); nothing is added.
//   - B-LT: a document security store with the validation material of
//     every signature's chain, of their signature timestamps' TSAs and of
//     the TSAs of document timestamps already there.
//   - B-LTA: the same followed by a document timestamp. Run on a B-LTA
//     document it renews it: the material of the last document
//     timestamp's TSA goes in the store and a new timestamp covers it.
//
// No key is used. opt.Validation is needed from B-LT, opt.Timestamper at
// B-LTA.
func ExtendPAdES(ctx context.Context, doc []byte, opt Options) ([]byte, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	if opt.Level.Rank() < 1 {
		return nil, fmt.Errorf("extend to %q: %w (want B-T, B-LT or B-LTA)", opt.Level, ErrFormat)
	}
	sigs, err := pdfSignatures(doc)
	if err != nil {
		return nil, err
	}
	var cmsSigs [][]byte
	var chains [][]*x509.Certificate
	lastTimestamped := false
	for _, s := range sigs {
		if s.subFilter == "ETSI.RFC3161" {
			tsaChain, err := tokenCertificates(s.der)
			if err != nil {
				return nil, fmt.Errorf("document timestamp: %w: %w", ErrTimestamp, err)
			}
			chains = append(chains, tsaChain)
			continue
		}
		chain, tok, err := cmsChain(s.der)
		if err != nil {
			return nil, err
		}
		cmsSigs = append(cmsSigs, s.der)
		chains = append(chains, chain)
		lastTimestamped = tok != nil
		if tok != nil {
			tsaChain, err := tokenCertificates(tok)
			if err != nil {
				return nil, fmt.Errorf("signature timestamp: %w: %w", ErrTimestamp, err)
			}
			chains = append(chains, tsaChain)
		}
	}
	if len(cmsSigs) == 0 {
		return nil, fmt.Errorf("extend: %w: the PDF holds no signature", ErrFormat)
	}
	if !lastTimestamped {
		return nil, fmt.Errorf("extend: %w: the last signature of the PDF has no signature timestamp (B-B): only B-T and higher PDFs are raised", ErrFormat)
	}
	if opt.Level == LevelT {
		return doc, nil
	}
	if opt.Validation == nil {
		return nil, fmt.Errorf("extend to %s: %w: no validation material source configured", opt.Level, ErrValidation)
	}
	m, err := opt.Validation.Gather(ctx, chains...)
	if err != nil {
		if isRevoked(err) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrValidation, err)
	}
	out, err := AddDSS(doc, cmsSigs, m)
	if err != nil {
		return nil, err
	}
	if opt.Level != LevelLTA {
		return out, nil
	}
	return DocumentTimestamp(ctx, out, opt.Timestamper, opt.hash())
}

// PAdESSignatureTimestamp returns the signature timestamp token of the
// last CMS signature of a PDF, nil when it has none.
func PAdESSignatureTimestamp(doc []byte) ([]byte, error) {
	sigs, err := pdfSignatures(doc)
	if err != nil {
		return nil, err
	}
	for i := len(sigs) - 1; i >= 0; i-- {
		if sigs[i].subFilter == "ETSI.RFC3161" {
			continue
		}
		_, tok, err := cmsChain(sigs[i].der)
		return tok, err
	}
	return nil, fmt.Errorf("%w: the PDF holds no signature", ErrFormat)
}

// LastDocumentTimestamp returns the token of the last document timestamp
// of a PDF, nil when it has none.
func LastDocumentTimestamp(doc []byte) ([]byte, error) {
	sigs, err := pdfSignatures(doc)
	if err != nil {
		return nil, err
	}
	for i := len(sigs) - 1; i >= 0; i-- {
		if sigs[i].subFilter == "ETSI.RFC3161" {
			return sigs[i].der, nil
		}
	}
	return nil, nil
}

// cmsChain returns the certificates of a CMS SignedData, the signer's
// first, and the signature timestamp of its first SignerInfo (nil when
// none).
func cmsChain(der []byte) ([]*x509.Certificate, []byte, error) {
	var ci struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue `asn1:"explicit,tag:0"`
	}
	if _, err := asn1.Unmarshal(der, &ci); err != nil || !ci.Type.Equal(oidSignedData) {
		return nil, nil, fmt.Errorf("%w: a PDF signature is not a CMS SignedData (%v)", ErrFormat, err)
	}
	var sd struct {
		Version          int
		DigestAlgorithms asn1.RawValue
		EncapContentInfo asn1.RawValue
		Certificates     asn1.RawValue `asn1:"optional,tag:0"`
		CRLs             asn1.RawValue `asn1:"optional,tag:1"`
		SignerInfos      []signerInfo  `asn1:"set"`
	}
	if _, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil || len(sd.SignerInfos) == 0 {
		return nil, nil, fmt.Errorf("%w: signed data (%v)", ErrFormat, err)
	}
	certs, err := x509.ParseCertificates(sd.Certificates.Bytes)
	if err != nil || len(certs) == 0 {
		return nil, nil, fmt.Errorf("%w: a PDF signature carries no readable certificate (%v)", ErrFormat, err)
	}
	// The signer's certificate is the one named by the SignerInfo.
	sid := sd.SignerInfos[0].SID
	for i, c := range certs {
		if bytes.Equal(c.RawIssuer, sid.Issuer.FullBytes) && sid.Serial != nil && c.SerialNumber.Cmp(sid.Serial) == 0 {
			certs[0], certs[i] = certs[i], certs[0]
			break
		}
	}
	tok, err := SignatureTimestamp(der)
	if err != nil {
		return nil, nil, err
	}
	return certs, tok, nil
}

func isRevoked(err error) bool {
	return errors.Is(err, ltv.ErrRevoked)
}
