package transaction

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/store"
)

// PolicyNone asks for no signature policy where the portal has a default.
const PolicyNone = "none"

// signOptions is how a document is signed beyond its format, kept with
// it (store.Document.SignOptions) from creation to signing, so a policy
// reconfigured meanwhile does not change what the citizen approved.
type signOptions struct {
	Op        signer.Operation `json:"op,omitempty"`
	Signature []byte           `json:"signature,omitempty"` // the existing CAdES, for cosign and countersign
	Attached  bool             `json:"attached,omitempty"`
	Policy    *storedPolicy    `json:"policy,omitempty"`
}

type storedPolicy struct {
	Name   string `json:"name"`
	OID    string `json:"oid"`
	Hash   string `json:"hash_alg"`
	Digest []byte `json:"hash"`
	URI    string `json:"uri,omitempty"`
}

var policyHashNames = map[string]string{"SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}

func (p *storedPolicy) policy() (*signer.Policy, error) {
	return signer.ParsePolicy(p.OID, p.Hash, base64.StdEncoding.EncodeToString(p.Digest), p.URI)
}

// policyNamed returns the policy a document asks for by name ("" takes
// the portal's default; "none" none): FirmaAGE always, others from
// Options.Policies.
func (s *Service) policyNamed(portalID, name string) (*storedPolicy, bool) {
	if name == "" {
		name = s.opt.PortalPolicies[portalID]
	}
	if name == "" || strings.EqualFold(name, PolicyNone) {
		return nil, true
	}
	var p *signer.Policy
	if strings.EqualFold(name, signer.PolicyNameAGE) {
		name, p = signer.PolicyNameAGE, &signer.PolicyAGE
	} else if p = s.opt.Policies[name]; p == nil {
		return nil, false
	}
	return &storedPolicy{Name: name, OID: p.OID.String(), Hash: policyHashNames[p.Hash.String()], Digest: p.Digest, URI: p.URI}, true
}

// signOptionsFor checks a document's operation, policy and packaging
// against its format and content, and encodes them; nil for a plain
// signature with no policy.
func (s *Service) signOptionsFor(portalID, field string, in DocumentInput, f signer.Format, d *store.Document, maxBytes int64) ([]byte, error) {
	if int64(len(in.Signature)) > maxBytes {
		return nil, &Error{Code: CodeDocumentTooLarge, Field: field + ".signature",
			Message: fmt.Sprintf("%s.signature is %d bytes; at most %d per document", field, len(in.Signature), maxBytes)}
	}
	op, err := signer.ParseOperation(string(in.Operation))
	if err != nil {
		return nil, invalid(field+".operation", "%q: want sign, cosign or countersign", in.Operation)
	}
	o := signOptions{Attached: in.Attached}
	if op != signer.OpSign {
		o.Op = op
	}
	if in.Attached && (f != signer.FormatCAdES || in.Content == nil) {
		return nil, &Error{Code: CodeUnsupportedFormat, Field: field + ".attached",
			Message: field + ": attached (mode implicit) is a CAdES signature of the whole content: give the content and format cades"}
	}
	switch {
	case op == signer.OpSign:
		if in.Signature != nil {
			return nil, invalid(field+".signature", "an existing signature is given only to cosign or countersign")
		}
	case f == signer.FormatPAdES && op == signer.OpCoSign:
		// The PDF is the existing signature: another field is added.
		if in.Signature != nil {
			return nil, invalid(field+".signature", "a PDF is co-signed by sending the signed PDF as the content, without a separate signature")
		}
	case f == signer.FormatCAdES:
		if in.Attached {
			return nil, invalid(field+".attached", "a cosignature or countersignature keeps the existing signature's packaging")
		}
		if len(in.Signature) == 0 {
			return nil, invalid(field+".signature", "%s needs the existing CAdES signature", op)
		}
		_, h, _ := ParseHash(d.Hash)
		// The existing signature must be over this document, checked now
		// rather than after the citizen approved; it is kept as sent.
		if _, err := signer.CoSignCheck(in.Signature, in.Content, d.Digest, h); err != nil {
			return nil, invalid(field+".signature", "%v", err)
		}
		o.Signature = in.Signature
	default:
		return nil, &Error{Code: CodeUnsupportedFormat, Field: field + ".operation",
			Message: fmt.Sprintf("%s: %s is made on CAdES signatures (and cosign on PDFs), not on %s", field, op, f)}
	}
	pol, ok := s.policyNamed(portalID, in.Policy)
	if !ok {
		return nil, invalid(field+".policy", "%q is not a configured signature policy (FirmaAGE, none, or one of the configuration's)", in.Policy)
	}
	if pol != nil && f != signer.FormatCAdES && f != signer.FormatPAdES && f != signer.FormatASiCSCAdES {
		if in.Policy == "" {
			pol = nil // the portal default applies where it can
		} else {
			return nil, &Error{Code: CodeUnsupportedFormat, Field: field + ".policy",
				Message: fmt.Sprintf("%s: signature policies are put in CAdES and PAdES signatures, not %s", field, f)}
		}
	}
	o.Policy = pol
	if o.Op == "" && o.Signature == nil && !o.Attached && o.Policy == nil {
		return nil, nil
	}
	b, err := json.Marshal(o)
	if err != nil {
		return nil, fmt.Errorf("encode sign options: %w", err)
	}
	return b, nil
}

func readSignOptions(b []byte) (signOptions, error) {
	var o signOptions
	if len(b) == 0 {
		return o, nil
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&o); err != nil {
		return o, fmt.Errorf("stored sign options: %w", err)
	}
	return o, nil
}

// signWith makes the document's signature as its options say.
func signWith(ctx context.Context, o signOptions, f signer.Format, formats signer.DefaultFormats, doc signer.Document,
	key crypto.Signer, chain []*x509.Certificate, opt signer.Options, po signer.PDFOptions) ([]byte, error) {
	if o.Policy != nil {
		p, err := o.Policy.policy()
		if err != nil {
			return nil, err
		}
		opt.Policy = p
	}
	opt.Attached = o.Attached
	if f == "" {
		f = formats.For(doc.Type)
	}
	switch {
	case o.Op == signer.OpCoSign && f == signer.FormatCAdES:
		digest := doc.Digest
		if doc.Content != nil {
			digest = nil
		}
		return signer.CoSign(ctx, o.Signature, doc.Content, digest, key, chain, opt)
	case o.Op == signer.OpCounterSign && f == signer.FormatCAdES:
		return signer.CounterSign(ctx, o.Signature, key, chain, opt)
	case o.Op == "" || o.Op == signer.OpSign || (o.Op == signer.OpCoSign && f == signer.FormatPAdES):
		return signer.SignDocument(ctx, f, formats, doc, key, chain, opt, po)
	}
	return nil, fmt.Errorf("%s of %s: %w", o.Op, f, signer.ErrFormat)
}
