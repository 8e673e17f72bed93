package csc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/firma-cloud/firma/audit"
	"github.com/firma-cloud/firma/errs"
	"github.com/firma-cloud/firma/keystore"
	"github.com/firma-cloud/firma/signer"
	"github.com/firma-cloud/firma/signing"
)

// signatures/signDoc (CSC v2.2 11.11): firma builds the signature, in the
// formats its signer makes. A digest of documentDigests, or the digest of
// a whole document of documents (under the SAD's hash algorithm), must be
// one the SAD lists, exactly as for signHash, and each is signed once.

// Signature formats and levels signDoc offers, for info.
var (
	SignDocFormats           = []string{"C", "P"}
	SignDocEnvelopes         = [][]string{{"Detached"}, {"Revision"}}
	SignDocConformanceLevels = []string{"Ades-B-B"}
)

// SignDocItem is one entry of documentDigests (Digests set) or documents
// (Document set).
type SignDocItem struct {
	Digests          []string // base64, documentDigests.hashes
	HashAlgorithm    string   // documentDigests.hashAlgorithmOID
	Document         []byte   // documents.document, decoded
	SignatureFormat  string   // C or P
	ConformanceLevel string   // Ades-B-B (default)
	SignAlgo         string
	SignAlgoParams   string
	Envelope         string // signed_envelope_property
}

// SignDocRequest is signatures/signDoc's input, decoded.
type SignDocRequest struct {
	CredentialID string
	SAD          string
	Items        []SignDocItem
}

// SignDocResponse is signDoc's answer: whole signed documents (PAdES) and
// detached signatures (CAdES), each in request order.
type SignDocResponse struct {
	DocumentWithSignature []string `json:"DocumentWithSignature,omitempty"`
	SignatureObject       []string `json:"SignatureObject,omitempty"`
}

// signDocJob is one signature to make.
type signDocJob struct {
	format   signer.Format
	level    signer.Level
	digest   []byte // what the SAD lists
	document []byte // whole document, or nil for a digest
}

// SignDoc signs documents or digests the SAD authorised.
func (s *Service) SignDoc(ctx context.Context, caller Caller, r SignDocRequest) (raw [][]byte, pades []bool, err error) {
	if r.SAD == "" {
		r.SAD = caller.Token
	}
	switch {
	case r.SAD == "":
		return nil, nil, invalid("missing string parameter SAD")
	case strings.TrimSpace(r.CredentialID) == "":
		return nil, nil, invalid("missing string parameter credentialID")
	case len(r.Items) == 0:
		return nil, nil, invalid("missing parameter documentDigests or documents")
	}
	sad, now, err := s.liveSAD(ctx, caller, r.CredentialID, r.SAD)
	if err != nil {
		return nil, nil, err
	}
	h := hashByOID[sad.HashAlgo]
	c, err := s.credential(ctx, sad.CredentialID)
	if err != nil {
		return nil, nil, err
	}
	var (
		jobs   []signDocJob
		hashes [][]byte
		pss    bool
	)
	for i, it := range r.Items {
		f, level, err := signDocFormat(i, it)
		if err != nil {
			return nil, nil, err
		}
		if level == signer.LevelT && s.opt.Timestamper == nil {
			return nil, nil, invalid("item %d: Ades-B-T needs a time-stamping authority, which this service has not", i)
		}
		if c.key != nil && c.key.DestroyedAt.IsZero() {
			scheme, err := resolveSignAlgo(c.key.Type, it.SignAlgo, it.SignAlgoParams, h)
			if err != nil {
				return nil, nil, err
			}
			pss = pss || scheme == keystore.PSS
		}
		if it.Document != nil {
			d := h.New()
			d.Write(it.Document)
			jobs = append(jobs, signDocJob{format: f, level: level, digest: d.Sum(nil), document: it.Document})
			continue
		}
		if it.HashAlgorithm != "" && it.HashAlgorithm != sad.HashAlgo {
			return nil, nil, invalid("hashAlgorithmOID %s is not the %s the SAD was authorised for", it.HashAlgorithm, sad.HashAlgo)
		}
		ds, err := decodeHashes(it.Digests, h)
		if err != nil {
			return nil, nil, err
		}
		for _, d := range ds {
			jobs = append(jobs, signDocJob{format: f, level: level, digest: d})
		}
	}
	for _, j := range jobs {
		hashes = append(hashes, j.digest)
	}
	if err := sadAllows(sad, hashes); err != nil {
		return nil, nil, err
	}
	docs := auditDocs(h, hashes)
	g, err := s.opt.Signing.Authorise(ctx, signing.Request{Purpose: signing.PurposeCSC, Actor: audit.Actor{Role: audit.RolePortal, ID: caller.ID},
		Citizen: c.cert.Owner, Certificate: c.cert.ID, Portal: caller.ID, Documents: docs,
		Details:  map[string]string{"api": "csc", "credential_id": c.cert.ID, "method": "signDoc"},
		Evidence: &sadEvidence{st: s.opt.Store, id: sad.ID, hashes: hashes, now: now, log: s.log}})
	if err != nil {
		return nil, nil, s.authoriseError(ctx, sad.ID, now, err)
	}
	results := make([]signing.Result, len(jobs))
	for i, j := range jobs {
		var out []byte
		opt := signer.Options{Level: j.level, Hash: h, PSS: pss}
		if j.level == signer.LevelT {
			opt.Timestamper = s.opt.Timestamper
		}
		switch {
		case j.format == signer.FormatPAdES:
			out, err = signer.PAdES(ctx, j.document, g.Signer(ctx), g.Chain(), opt, signer.PDFOptions{Reason: "Cl@ve Firma (CSC signDoc)"})
		default: // CAdES, detached: over the document's digest either way

			out, err = signer.CAdES(ctx, j.digest, g.Signer(ctx), g.Chain(), opt)
		}
		if err != nil {
			s.giveBack(ctx, sad.ID, hashes)
			for k := range results {
				results[k] = signing.Result{Documents: docs[k : k+1], Format: string(jobs[k].format), Failure: "signing failed"}
			}
			if rerr := g.Release(ctx, results...); rerr != nil {
				s.log.ErrorContext(ctx, "csc: failed signDoc not recorded", "err", rerr)
			}
			if errors.Is(err, signer.ErrPDF) {
				return nil, nil, &errs.Error{Kind: errs.Invalid, Code: CodeInvalidRequest, Detail: fmt.Sprintf("documents[%d] is not a PDF firma can sign", i), Err: err}
			}
			return nil, nil, signError(err)
		}
		raw = append(raw, out)
		pades = append(pades, j.format == signer.FormatPAdES)
		results[i] = signing.Result{Documents: docs[i : i+1], Format: string(j.format)}
	}
	if err := g.Release(ctx, results...); err != nil {
		s.giveBack(ctx, sad.ID, hashes)
		return nil, nil, unavailable("the audit log is unavailable; no signature was released", err)
	}
	s.m.signatures.WithLabelValues("ok").Add(float64(len(jobs)))
	s.log.InfoContext(ctx, "csc documents signed", "portal", caller.ID, "credential", c.cert.ID, "count", len(jobs))
	return raw, pades, nil
}

func signDocFormat(i int, it SignDocItem) (signer.Format, signer.Level, error) {
	level := signer.LevelB
	switch it.ConformanceLevel {
	case "", "Ades-B-B", "AdES-B-B", "Ades-B":
	case "Ades-B-T", "AdES-B-T", "Ades-T":
		level = signer.LevelT
	default:
		return "", "", invalid("item %d: conformance_level %q is not offered; info lists conformance_levels", i, it.ConformanceLevel)
	}
	f, err := signDocKind(i, it)
	return f, level, err
}

func signDocKind(i int, it SignDocItem) (signer.Format, error) {
	if it.SignAlgo == "" {
		return "", invalid("item %d: missing string parameter signAlgo", i)
	}
	switch it.SignatureFormat {
	case "C":
		if it.Envelope != "" && it.Envelope != "Detached" {
			return "", invalid("item %d: CAdES is offered Detached only, not %q", i, it.Envelope)
		}
		return signer.FormatCAdES, nil
	case "P":
		if it.Document == nil {
			return "", invalid("item %d: PAdES needs the whole document in documents", i)
		}
		// An approval signature in a new revision; certification (DocMDP)
		// is not made.
		if it.Envelope != "" && it.Envelope != "Revision" {
			return "", invalid("item %d: PAdES is offered as Revision only, not %q", i, it.Envelope)
		}
		return signer.FormatPAdES, nil
	case "":
		return "", invalid("item %d: missing string parameter signature_format", i)
	}
	return "", invalid("item %d: signature_format %q is not offered; info lists C and P", i, it.SignatureFormat)
}

// Timestamp returns an RFC 3161 time-stamp token (DER) over a hash, from
// the service's TSA (signatures/timestamp).
func (s *Service) Timestamp(ctx context.Context, caller Caller, hashB64, hashAlgo, nonce string) ([]byte, error) {
	if s.opt.Timestamper == nil {
		return nil, errs.New(errs.FailedPrecondition, CodeInvalidRequest, "signatures/timestamp is not offered: this service has no time-stamping authority")
	}
	if nonce != "" {
		// The token's nonce would not be this one: refused rather than
		// dropped, since a client checks it.
		return nil, invalid("nonce is not offered; the TSA sets its own")
	}
	if hashB64 == "" {
		return nil, invalid("missing string parameter hash")
	}
	h, ok := hashByOID[hashAlgo]
	if !ok {
		return nil, invalid("hashAlgorithmOID %q: want the OID of SHA-256, SHA-384 or SHA-512", hashAlgo)
	}
	d, err := decodeHashes([]string{hashB64}, h)
	if err != nil {
		return nil, err
	}
	tok, err := s.opt.Timestamper.Timestamp(ctx, h, d[0])
	if err != nil {
		return nil, unavailable("the time-stamping authority is unavailable; try again", err)
	}
	s.log.InfoContext(ctx, "csc timestamp", "portal", caller.ID)
	return tok, nil
}
