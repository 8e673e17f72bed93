package verify

import (
	"bytes"
	"context"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
)

var (
	oidAttrCounterSignature = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 6}
	oidAttrSigPolicyID      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 15}
	oidSPQualifierURI       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 5, 1}
)

// CheckPolicy is the check of a declared signature policy whose document
// firma knows (the AGE policy): its hash must be that document's.
const CheckPolicy = "signature-policy"

// Policy is a signature policy a signer declared
// (signature-policy-identifier, ETSI EN 319 122-1 5.2.9).
type Policy struct {
	OID           string `json:"oid"`
	HashAlgorithm string `json:"hash_algorithm"`
	Hash          string `json:"hash"` // base64
	URI           string `json:"uri,omitempty"`
	// Name is the policy's name when firma knows it (FirmaAGE).
	Name string `json:"name,omitempty"`
}

// agePolicy is the Spanish AGE policy v1.9 (politica_de_firma_anexo_1.pdf)
// as AutoFirma and FIRe declare it, with the SHA-1 hash of its document.
var agePolicy = struct {
	oid  asn1.ObjectIdentifier
	hash []byte
}{asn1.ObjectIdentifier{2, 16, 724, 1, 3, 1, 1, 2, 1, 9}, mustBase64("G7roucf600+f03r/o0bAOQ6WAs0=")}

func mustBase64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

type sigPolicyID struct {
	ID   asn1.ObjectIdentifier
	Hash struct {
		Alg   pkix.AlgorithmIdentifier
		Value []byte
	}
	Qualifiers []struct {
		ID        asn1.ObjectIdentifier
		Qualifier asn1.RawValue
	} `asn1:"optional"`
}

// policy reports the signature-policy-identifier, if any, and checks the
// hash of a policy firma knows.
func (v *Verifier) policy(s *Signature, p *parsed) {
	raw, ok := p.signed[oidAttrSigPolicyID.String()]
	if !ok {
		return
	}
	var id sigPolicyID
	if rest, err := asn1.Unmarshal(raw.FullBytes, &id); err != nil || len(rest) != 0 {
		// signaturePolicyImplied (NULL) or a malformed value.
		if raw.Tag == asn1.TagNull {
			s.Policy = &Policy{Name: "implied"}
			return
		}
		s.add(CheckPolicy, Failed, "the signature-policy-identifier attribute is malformed")
		return
	}
	_, alg := hashOf(id.Hash.Alg.Algorithm)
	s.Policy = &Policy{OID: id.ID.String(), HashAlgorithm: alg, Hash: base64.StdEncoding.EncodeToString(id.Hash.Value)}
	for _, q := range id.Qualifiers {
		var uri string
		if q.ID.Equal(oidSPQualifierURI) {
			if _, err := asn1.Unmarshal(q.Qualifier.FullBytes, &uri); err == nil {
				s.Policy.URI = uri
			}
		}
	}
	if !id.ID.Equal(agePolicy.oid) {
		return
	}
	s.Policy.Name = "FirmaAGE"
	var want []byte
	switch alg {
	case "SHA-1":
		want = agePolicy.hash
	default:
		// Only the SHA-1 hash of the AGE document is published with the
		// policy; another algorithm's cannot be compared without it.
		s.add(CheckPolicy, Indeterminate, "the AGE policy is declared with a "+alg+" hash; firma knows its SHA-1 hash only")
		return
	}
	if !bytes.Equal(id.Hash.Value, want) {
		s.add(CheckPolicy, Failed, "the hash declared for the AGE policy v1.9 is not that of its document")
		return
	}
	s.add(CheckPolicy, Passed, fmt.Sprintf("AGE signature policy v1.9 (%s), hash of its document matches", agePolicy.oid))
}

// counterSignatures appends, after the signature at position parent (from
// 1) of out, a report for each countersignature p carries and, in turn,
// theirs. depth bounds the nesting a crafted signature could make deep.
func (v *Verifier) counterSignatures(ctx context.Context, out []*Signature, p *parsed, parent, depth int) []*Signature {
	vals := p.unsigned[oidAttrCounterSignature.String()]
	if depth >= maxCounterDepth {
		return out
	}
	for _, val := range vals {
		s := &Signature{Format: FormatCAdES, CounterSignatureOf: parent}
		c := &parsed{certs: p.certs, eType: p.eType, certsRaw: p.certsRaw, crlsRaw: p.crlsRaw, ltv: p.ltv, counter: true}
		if rest, err := asn1.Unmarshal(val.FullBytes, &c.si); err != nil || len(rest) != 0 {
			s.add(CheckIntegrity, Failed, "the countersignature is not a SignerInfo")
			out = append(out, s)
			continue
		}
		if err := c.read(); err != nil {
			s.add(CheckIntegrity, Failed, "countersignature: "+err.Error())
			out = append(out, s)
			continue
		}
		if c.hash == 0 {
			s = v.unsupportedHash(c)
			s.CounterSignatureOf = parent
			out = append(out, s)
			continue
		}
		h := c.hash.New()
		h.Write(p.si.Signature)
		v.check(ctx, s, c, h.Sum(nil))
		out = append(out, s)
		out = v.counterSignatures(ctx, out, c, len(out), depth+1)
	}
	return out
}

const maxCounterDepth = 8
