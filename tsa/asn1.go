package tsa

import (
	"crypto"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strconv"
	"time"
)

// OIDs used by the protocol and the token's CMS envelope.
var (
	oidTSTInfo            = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 1, 4}
	oidContentType        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidSigningCertificate = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 12}
	oidSigningCertV2      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 16, 2, 47}
	oidExtKeyUsage        = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidKPTimeStamping     = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 8}

	oidSHA1   = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
)

// The structures below are RFC 3161's and RFC 5035's. The timestamp library
// keeps its own unexported, and its response builder draws a random serial
// number and cannot encode fractional seconds, so the server needs these.

type request struct {
	Version        int
	MessageImprint messageImprint
	ReqPolicy      asn1.ObjectIdentifier `asn1:"optional"`
	Nonce          *big.Int              `asn1:"optional"`
	CertReq        bool                  `asn1:"optional,default:false"`
	Extensions     []pkix.Extension      `asn1:"tag:0,optional"`
}

type messageImprint struct {
	HashAlgorithm pkix.AlgorithmIdentifier
	HashedMessage []byte
}

type response struct {
	Status         pkiStatusInfo
	TimeStampToken asn1.RawValue `asn1:"optional"`
}

type pkiStatusInfo struct {
	Status       int
	StatusString []asn1.RawValue `asn1:"optional"` // PKIFreeText: UTF8Strings
	FailInfo     asn1.BitString  `asn1:"optional"`
}

type tstInfo struct {
	Version        int
	Policy         asn1.ObjectIdentifier
	MessageImprint messageImprint
	SerialNumber   *big.Int
	GenTime        asn1.RawValue    // GeneralizedTime, written by hand for fractions of a second
	Accuracy       accuracy         `asn1:"optional"`
	Ordering       bool             `asn1:"optional,default:false"`
	Nonce          *big.Int         `asn1:"optional"`
	TSA            asn1.RawValue    `asn1:"tag:0,optional"`
	Extensions     []pkix.Extension `asn1:"tag:1,optional"`
}

type accuracy struct {
	Seconds      int64 `asn1:"optional"`
	Milliseconds int64 `asn1:"tag:0,optional"`
	Microseconds int64 `asn1:"tag:1,optional"`
}

// essCertID and signingCertificate are RFC 2634's (SHA-1 only).
type essCertID struct {
	CertHash     []byte
	IssuerSerial issuerSerial `asn1:"optional"`
}

type signingCertificate struct {
	Certs    []essCertID
	Policies asn1.RawValue `asn1:"optional"`
}

// essCertIDv2 and signingCertificateV2 are RFC 5035's.
type essCertIDv2 struct {
	HashAlgorithm pkix.AlgorithmIdentifier `asn1:"optional"` // absent means SHA-256
	CertHash      []byte
	IssuerSerial  issuerSerial `asn1:"optional"`
}

type signingCertificateV2 struct {
	Certs    []essCertIDv2
	Policies asn1.RawValue `asn1:"optional"`
}

// issuerSerial's GeneralNames is kept raw: it is compared, not interpreted.
type issuerSerial struct {
	Issuer       asn1.RawValue
	SerialNumber *big.Int
}

// PKIStatus values (RFC 3161 section 2.4.2).
const (
	statusGranted         = 0
	statusGrantedWithMods = 1
	statusRejection       = 2
)

// FailInfo is a PKIFailureInfo bit (RFC 3161 section 2.4.2).
type FailInfo int

// PKIFailureInfo bits the server sets and the client reports. FailNone
// stands for no failure: a granted request.
const (
	FailNone                FailInfo = -1
	FailBadAlg              FailInfo = 0
	FailBadRequest          FailInfo = 2
	FailBadDataFormat       FailInfo = 5
	FailTimeNotAvailable    FailInfo = 14
	FailUnacceptedPolicy    FailInfo = 15
	FailUnacceptedExtension FailInfo = 16
	FailAddInfoNotAvailable FailInfo = 17
	FailSystemFailure       FailInfo = 25
)

// String returns the RFC 3161 name of the bit, as in "badDataFormat".
func (f FailInfo) String() string {
	switch f {
	case FailBadAlg:
		return "badAlg"
	case FailBadRequest:
		return "badRequest"
	case FailBadDataFormat:
		return "badDataFormat"
	case FailTimeNotAvailable:
		return "timeNotAvailable"
	case FailUnacceptedPolicy:
		return "unacceptedPolicy"
	case FailUnacceptedExtension:
		return "unacceptedExtension"
	case FailAddInfoNotAvailable:
		return "addInfoNotAvailable"
	case FailSystemFailure:
		return "systemFailure"
	}
	return "failInfo(" + strconv.Itoa(int(f)) + ")"
}

func failBits(f FailInfo) asn1.BitString {
	n := int(f) + 1
	b := make([]byte, (n+7)/8)
	b[int(f)/8] |= 0x80 >> (uint(f) % 8)
	return asn1.BitString{Bytes: b, BitLength: n}
}

var hashOIDs = []struct {
	h   crypto.Hash
	oid asn1.ObjectIdentifier
}{
	{crypto.SHA1, oidSHA1},
	{crypto.SHA256, oidSHA256},
	{crypto.SHA384, oidSHA384},
	{crypto.SHA512, oidSHA512},
}

func hashFromOID(oid asn1.ObjectIdentifier) crypto.Hash {
	for _, e := range hashOIDs {
		if e.oid.Equal(oid) {
			return e.h
		}
	}
	return 0
}

func oidFromHash(h crypto.Hash) asn1.ObjectIdentifier {
	for _, e := range hashOIDs {
		if e.h == h {
			return e.oid
		}
	}
	return nil
}

// generalizedTime encodes t in DER: UTC, no trailing zeros in the fraction.
// encoding/asn1 only writes whole seconds.
func generalizedTime(t time.Time) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagGeneralizedTime,
		Bytes: []byte(t.UTC().Format("20060102150405.999999999Z"))}
}

func accuracyOf(d time.Duration) accuracy {
	if d <= 0 {
		return accuracy{}
	}
	if d < time.Microsecond {
		d = time.Microsecond
	}
	s := d.Truncate(time.Second)
	ms := (d - s).Truncate(time.Millisecond)
	us := (d - s - ms).Truncate(time.Microsecond)
	return accuracy{Seconds: int64(s / time.Second), Milliseconds: int64(ms / time.Millisecond), Microseconds: int64(us / time.Microsecond)}
}
