package verify

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"fmt"

	"github.com/digitorus/pkcs7"

	"github.com/firma-cloud/firma/internal/cmsparse"
)

// maxBER bounds the BER input berToDER converts.
const maxBER = 1 << 20

// berToDER re-encodes a BER CMS SignedData (NSS, and so poppler and
// Firefox, write indefinite lengths) as DER with github.com/digitorus/pkcs7's
// BER reader. Signed attributes are DER already (CMS signs their DER
// encoding), so re-encoding keeps the bytes the signature covers.
func berToDER(b []byte) (der []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			der, err = nil, fmt.Errorf("ber: %v", r)
		}
	}()
	// A detached signature is kilobytes; the retries below must not run
	// over megabytes of garbage.
	if len(b) > maxBER {
		return nil, fmt.Errorf("ber: %d bytes, at most %d", len(b), maxBER)
	}
	// A PDF's /Contents pads the signature with zeros, which a BER reader
	// cannot tell from end-of-contents octets: strip them and put back as
	// many as the encoding needs.
	t := bytes.TrimRight(b, "\x00")
	var p7 *pkcs7.PKCS7
	for k := 0; k <= 32; k++ {
		in := append(bytes.Clone(t), make([]byte, k)...)
		if p7, err = cmsparse.PKCS7(in); err == nil {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if len(p7.Signers) == 0 || len(p7.Signers) > maxSigners {
		return nil, fmt.Errorf("%d signer infos, want 1 to %d", len(p7.Signers), maxSigners)
	}
	attrs := func(as any, tag int) (asn1.RawValue, error) {
		enc, err := asn1.Marshal(as)
		if err != nil {
			return asn1.RawValue{}, err
		}
		// as is a []attribute marshalled as a SEQUENCE OF: keep its
		// content, the attributes in the order they were signed.
		var seq asn1.RawValue
		if _, err := asn1.Unmarshal(enc, &seq); err != nil {
			return asn1.RawValue{}, err
		}
		if len(seq.Bytes) == 0 {
			return asn1.RawValue{}, nil
		}
		return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tag, IsCompound: true, Bytes: seq.Bytes}, nil
	}
	var infos []signerInfo
	var digestAlgs bytes.Buffer
	for _, s := range p7.Signers {
		signed, err := attrs(s.AuthenticatedAttributes, 0)
		if err != nil {
			return nil, err
		}
		if len(signed.Bytes) == 0 {
			return nil, errors.New("no signed attributes")
		}
		unsigned, err := attrs(s.UnauthenticatedAttributes, 1)
		if err != nil {
			return nil, err
		}
		sid, err := asn1.Marshal(issuerAndSerial{Issuer: s.IssuerAndSerialNumber.IssuerName, Serial: s.IssuerAndSerialNumber.SerialNumber})
		if err != nil {
			return nil, err
		}
		infos = append(infos, signerInfo{
			Version: s.Version, SID: asn1.RawValue{FullBytes: sid}, DigestAlgorithm: s.DigestAlgorithm,
			SignedAttrs: signed, SignatureAlgorithm: s.DigestEncryptionAlgorithm, Signature: s.EncryptedDigest,
			UnsignedAttrs: unsigned,
		})
		if da, err := asn1.Marshal(s.DigestAlgorithm); err == nil {
			digestAlgs.Write(da)
		}
	}
	var certs bytes.Buffer
	for _, c := range p7.Certificates {
		certs.Write(c.Raw)
	}
	// Marshalling needs the [0] EXPLICIT wrappers written by hand:
	// encoding/asn1 ignores explicit on a RawValue with FullBytes.
	type encapOut struct {
		EContentType asn1.ObjectIdentifier
		EContent     asn1.RawValue `asn1:"optional"`
	}
	type signedDataOut struct {
		Version          int
		DigestAlgorithms asn1.RawValue
		EncapContentInfo encapOut
		Certificates     asn1.RawValue `asn1:"optional"`
		SignerInfos      []signerInfo  `asn1:"set"`
	}
	type contentInfoOut struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue
	}
	sd := signedDataOut{
		Version:          1,
		DigestAlgorithms: asn1.RawValue{Tag: asn1.TagSet, IsCompound: true},
		EncapContentInfo: encapOut{EContentType: oidData},
		SignerInfos:      infos,
	}
	sd.DigestAlgorithms.Bytes = digestAlgs.Bytes()
	if certs.Len() > 0 {
		sd.Certificates = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: certs.Bytes()}
	}
	if p7.Content != nil {
		oct, err := asn1.Marshal(p7.Content)
		if err != nil {
			return nil, err
		}
		sd.EncapContentInfo.EContent = asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: oct}
	}
	inner, err := asn1.Marshal(sd)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(contentInfoOut{ContentType: oidSignedData, Content: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}})
}
